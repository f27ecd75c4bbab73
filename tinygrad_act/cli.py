"""Command line: ``python -m tinygrad_act`` or ``tinygrad-act``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from tinygrad_act.activations import ACTIVATIONS, get, resolve
from tinygrad_act.base import Activation, Array, Layer
from tinygrad_act.datasets import DATASETS
from tinygrad_act.demo import DEFAULTS, train
from tinygrad_act.demo import plot as plot_result
from tinygrad_act.gradcheck import gradients, within_tolerance

TUTORIAL_VALUES = [0.1, 0.2, 0.3, 0.4, 0.5]


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _activation(name: str) -> str:
    try:
        return resolve(name)
    except KeyError as error:
        raise argparse.ArgumentTypeError(error.args[0]) from None


def _elementwise(name: str) -> str:
    key = _activation(name)
    if not issubclass(ACTIVATIONS[key], Activation):
        valid = ", ".join(
            k for k, cls in sorted(ACTIVATIONS.items()) if issubclass(cls, Activation)
        )
        raise argparse.ArgumentTypeError(
            f"{name!r} is not elementwise; the demo's hidden layers need one of: {valid}"
        )
    return key


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="tinygrad-act",
        description="Activation layers with explicit forward and backward.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    show = commands.add_parser("show", help="print x, f(x) and f'(x) for an activation")
    show.add_argument("name", type=_activation, help="activation name, e.g. sigmoid")
    show.add_argument(
        "values", type=float, nargs="*", help="points x (default: 0.1 0.2 0.3 0.4 0.5)"
    )

    check = commands.add_parser("check", help="gradcheck every built-in activation")
    check.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    demo = commands.add_parser("demo", help="train a small MLP on a toy data set")
    demo.add_argument("--dataset", choices=sorted(DATASETS), default="moons")
    demo.add_argument("--activation", type=_elementwise, default="tanh", metavar="NAME")
    demo.add_argument("--hidden", type=_positive_int, metavar="N", help="hidden units")
    demo.add_argument("--epochs", type=_positive_int, metavar="N")
    demo.add_argument("--lr", type=_positive_float, metavar="X", help="Adam learning rate")
    demo.add_argument("--seed", type=int, default=0, metavar="N")
    demo.add_argument("--plot", metavar="FILE.png", help="save boundary and loss curve")

    plot = commands.add_parser("plot", help="draw f and f' of activations to a PNG")
    plot.add_argument("names", type=_activation, nargs="+", metavar="NAME")
    plot.add_argument("-o", "--output", required=True, metavar="FILE.png")
    return parser


def _diagonal(layer: Layer, y: Array) -> Array:
    """dy_i/dx_i after ``layer.forward``: backward of ones for an elementwise layer."""
    if isinstance(layer, Activation):
        return layer.backward(np.ones_like(y))
    diagonal = np.empty_like(y)
    for index in np.ndindex(y.shape):
        unit = np.zeros_like(y)
        unit[index] = 1
        diagonal[index] = layer.backward(unit)[index]
    return diagonal


def _show(name: str, values: list[float]) -> int:
    layer = get(name)
    x = np.array(values or TUTORIAL_VALUES, dtype=np.float64)
    y = layer.forward(x)
    dydx = _diagonal(layer, y)
    derivative = "f'(x)" if isinstance(layer, Activation) else "dy_i/dx_i"
    print("".join(f"{heading:>15}" for heading in ("x", "f(x)", derivative)))
    for row in zip(x, y, dydx, strict=True):
        print("".join(f"{v:>15.8g}" for v in row))
    return 0


def _check(seed: int) -> int:
    rng = np.random.default_rng(seed)
    print(f"{'activation':<12} {'result':<6} {'max abs error':>14}")
    failures = 0
    for name in sorted(ACTIVATIONS):
        try:
            layer = get(name)
        except ImportError as error:
            print(f"{name:<12} {'skip':<6} {'':>14}  {error}")
            continue
        x = rng.uniform(-4.0, 4.0, size=(8, 16))
        kinks = getattr(layer, "kinks", ())
        for kink in kinks:  # finite differences mean nothing across a kink
            x = np.where(np.abs(x - kink) < 1e-3, kink + 0.5, x)
        worst = 0.0
        passed = True
        for _, numerical, analytical in gradients(layer, x, seed=seed):
            worst = max(worst, float(np.abs(analytical - numerical).max(initial=0.0)))
            passed &= bool(within_tolerance(numerical, analytical).all())
        failures += not passed
        print(f"{name:<12} {'pass' if passed else 'FAIL':<6} {worst:>14.3g}")
    return 1 if failures else 0


def _plot(names: list[str], output: str) -> int:
    _require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    x = np.linspace(-5, 5, 401)
    for panel, name in zip(axes.flat, names, strict=False):
        layer = get(name)
        if isinstance(layer, Activation):
            y = layer.forward(x)
            dydx = _diagonal(layer, y)
            panel.set_title(repr(layer))
        else:  # along an axis: the first of two entries, (x, 0)
            pairs = np.stack([x, np.zeros_like(x)], axis=-1)
            y, dydx = (a[:, 0] for a in _pair_output(layer, pairs))
            panel.set_title(f"{layer!r} of (x, 0), first entry")
        panel.plot(x, y, label="f(x)")
        panel.plot(x, dydx, label="f'(x)", linestyle="--")
        panel.axhline(0, color="grey", linewidth=0.5)
        panel.axvline(0, color="grey", linewidth=0.5)
        panel.legend()
    for panel in list(axes.flat)[len(names) :]:
        panel.set_visible(False)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    print(f"wrote {output}")
    return 0


def _pair_output(layer: Layer, pairs: Array) -> tuple[Array, Array]:
    y = layer.forward(pairs)
    unit = np.zeros_like(y)
    unit[:, 0] = 1
    return y, layer.backward(unit)


def _demo(args: argparse.Namespace) -> int:
    if args.plot:
        _require_matplotlib()
    settings = {**DEFAULTS[args.dataset]}
    for name in ("hidden", "epochs", "lr"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    print(
        f"training a 2-{int(settings['hidden'])}-{int(settings['hidden'])}-1 MLP "
        f"({args.activation}) on {args.dataset} for {int(settings['epochs'])} epochs, "
        f"Adam lr={settings['lr']:g}, seed {args.seed}"
    )

    def report(epoch: int, epochs: int, loss: float, accuracy: float) -> None:
        print(
            f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {loss:.4f}  accuracy {accuracy:6.1%}"
        )

    result = train(
        args.dataset,
        activation=args.activation,
        hidden=int(settings["hidden"]),
        epochs=int(settings["epochs"]),
        lr=settings["lr"],
        seed=args.seed,
        progress=report,
    )
    print(f"final training accuracy {result.accuracy:.1%} in {result.seconds:.2f} s")
    if args.plot:
        plot_result(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "tinygrad_act[plot]"') from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "show":
            return _show(args.name, args.values)
        if args.command == "plot":
            return _plot(args.names, args.output)
        if args.command == "demo":
            return _demo(args)
        return _check(args.seed)
    except (ImportError, OSError, ValueError) as error:
        print(f"tinygrad-act: {error}", file=sys.stderr)
        return 1


def main_exit() -> None:
    """Entry point of the ``tinygrad-act`` console script."""
    sys.exit(main())
