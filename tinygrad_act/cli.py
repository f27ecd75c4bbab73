"""Command line: ``python -m tinygrad_act`` or ``tinygrad-act``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from tinygrad_act.activations import ACTIVATIONS, ALIASES, get
from tinygrad_act.base import Activation, Array, Layer
from tinygrad_act.gradcheck import gradients, within_tolerance

TUTORIAL_VALUES = [0.1, 0.2, 0.3, 0.4, 0.5]


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _activation(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        valid = ", ".join(sorted([*ACTIVATIONS, *ALIASES]))
        raise argparse.ArgumentTypeError(f"unknown activation {name!r}; valid names: {valid}")
    return key


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
    try:
        import matplotlib
    except ImportError:
        print(
            'tinygrad-act: plot needs matplotlib: pip install "tinygrad_act[plot]"', file=sys.stderr
        )
        return 1
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "show":
            return _show(args.name, args.values)
        if args.command == "plot":
            return _plot(args.names, args.output)
        return _check(args.seed)
    except (ImportError, OSError) as error:
        print(f"tinygrad-act: {error}", file=sys.stderr)
        return 1


def main_exit() -> None:
    """Entry point of the ``tinygrad-act`` console script."""
    sys.exit(main())
