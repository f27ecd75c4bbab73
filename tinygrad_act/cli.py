"""Command line: ``python -m tinygrad_act`` or ``tinygrad-act``.

Exit status: 0 on success; 1 when the work fails (a gradient check, a missing
optional package, a file that cannot be written, training that diverges, no
memory left); 2 for bad arguments, which are refused before any work starts,
output paths first; 130 when interrupted (Ctrl-C). Every error is one line on
stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from tinygrad_act._engine import available_engines, engine, get_num_threads
from tinygrad_act.activations import ACTIVATIONS, GLU, RReLU, _AlongAxis, get, resolve
from tinygrad_act.base import Activation, Array, Layer
from tinygrad_act.datasets import DATASETS
from tinygrad_act.demo import DEFAULTS, ENGINE_CHOICES, train
from tinygrad_act.demo import plot as plot_result
from tinygrad_act.gradcheck import gradgradcheck, gradients, within_tolerance

if TYPE_CHECKING:  # pathlib takes 3 ms to import: only --plot and -o need it
    from pathlib import Path

PROG = "tinygrad-act"
TUTORIAL_VALUES = [0.1, 0.2, 0.3, 0.4, 0.5]
#: The demo's network is a toy: wider layers than this only cost minutes and memory.
MAX_HIDDEN = 1024
MAX_EPOCHS = 1_000_000
#: Options that take a value, so that ``--lr -inf`` reads as ``--lr=-inf``.
VALUE_OPTIONS = frozenset(
    {"--dataset", "--activation", "--hidden", "--epochs", "--lr", "--batch-size", "--seed"}
    | {"--plot", "-o", "--output"}
)
EXIT_STATUS = (
    "exit status: 0 success; 1 the work failed (a check, a missing package, a file\n"
    "that cannot be written, training that diverged); 2 bad arguments or settings;\n"
    "130 interrupted"
)


def version() -> str:
    """The installed package's version, from its metadata."""
    from importlib import metadata

    try:
        return metadata.version("tinygrad_act")
    except metadata.PackageNotFoundError:  # running from a source tree
        import tinygrad_act

        return str(tinygrad_act.__version__)


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help; descriptions kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, [], argparse.SUPPRESS) or "default" in text:
            return text  # no "(default: None)", and no default said twice
        return super()._get_help_string(action) or text


class _Version(argparse.Action):
    """--version: reads the package's metadata only when asked (importing
    `importlib.metadata` takes about 12 ms, a twentieth of a short demo)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        print(f"{PROG} {version()}")
        parser.exit()


def _names(elementwise_only: bool = False, same_shape: bool = False) -> list[str]:
    return [
        name
        for name, cls in sorted(ACTIVATIONS.items())
        if (not elementwise_only or issubclass(cls, Activation))
        and (not same_shape or not issubclass(cls, GLU))
    ]


def _activation(name: str) -> str:
    try:
        return resolve(name)
    except KeyError as error:
        raise argparse.ArgumentTypeError(error.args[0]) from None


def _shown(name: str) -> str:
    """An argparse type for `show`: a layer whose output has its input's shape (GLU's
    has half of it)."""
    key = _activation(name)
    if issubclass(ACTIVATIONS[key], GLU):
        raise argparse.ArgumentTypeError(
            f"{name!r} maps each pair of values to one; show needs a layer whose output has "
            f"its input's shape, one of: {', '.join(_names(same_shape=True))}"
        )
    return key


def _elementwise(name: str) -> str:
    key = _activation(name)
    if not issubclass(ACTIVATIONS[key], Activation):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not elementwise; the demo's hidden layers need one of: "
            f"{', '.join(_names(elementwise_only=True))}"
        )
    return key


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], with a message naming the value."""

    def parse(text: str) -> int:
        wanted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high:,}"
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    return parse


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _point(text: str) -> float:
    """An argparse type for `show`'s points: a float64, inf and nan as written; a finite
    number beyond float64's range is refused rather than shown as inf."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if math.isinf(value) and "inf" not in text.lower():
        raise argparse.ArgumentTypeError(f"{text!r} is beyond float64's range (1.8e308)")
    return value


def _png(text: str) -> Path:
    """An output path: a .png name in an existing, writable folder, not a folder itself."""
    from pathlib import Path

    if not text:
        raise argparse.ArgumentTypeError("must be a file name ending in .png, got ''")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name ending in .png")
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"must be a file name ending in .png, got {text!r}")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(folder)!r} of {text!r} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    # NOTE: a folder can refuse new files whatever its permissions say (/proc, a read-only
    # mount, root's access): opened for appending, which changes nothing in a file there,
    # and a file made here removed again
    existed = os.path.lexists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {error.strerror}") from None
    finally:
        if not existed:
            path.unlink(missing_ok=True)
    return path


def _build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Activation layers with explicit forward and backward.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, required=True
    )
    names = ", ".join(_names())

    show = commands.add_parser(
        "show",
        help="print x, f(x) and f'(x) for an activation",
        description="Print x, f(x) and f'(x) at the given points.\n"
        "Negative and special values work as they are: show sigmoid -1e5 -inf nan",
        formatter_class=_Formatter,
        epilog=EXIT_STATUS,
    )
    shown = ", ".join(_names(same_shape=True))
    show.add_argument("name", type=_shown, metavar="NAME", help=f"one of: {shown}")
    show.add_argument(
        "values",
        type=_point,
        nargs="*",
        default=[],
        metavar="X",
        help="points x (default: the tutorial's 0.1 0.2 0.3 0.4 0.5)",
    )

    check = commands.add_parser(
        "check",
        help="gradcheck every built-in activation",
        description="Check every built-in activation's backward against finite differences.",
        formatter_class=_Formatter,
        epilog=EXIT_STATUS,
    )
    check.add_argument("--seed", type=_integer(0), default=0, metavar="N", help="random seed")

    demo = commands.add_parser(
        "demo",
        help="train a small MLP on a toy data set",
        description="Train a 2-N-N-1 MLP with Adam and print its progress.",
        formatter_class=_Formatter,
        epilog=EXIT_STATUS,
    )

    def per_dataset(key: str) -> str:
        return ", ".join(f"{d} {DEFAULTS[d][key]:g}" for d in sorted(DEFAULTS))

    demo.add_argument("--dataset", choices=sorted(DATASETS), default="moons", help="data set")
    demo.add_argument(
        "--activation",
        type=_elementwise,
        default="tanh",
        metavar="NAME",
        help=f"hidden activation, one of: {', '.join(_names(elementwise_only=True))}",
    )
    demo.add_argument(
        "--hidden",
        type=_integer(1, MAX_HIDDEN),
        metavar="N",
        help=f"hidden units per layer (default per data set: {per_dataset('hidden')})",
    )
    demo.add_argument(
        "--epochs",
        type=_integer(1, MAX_EPOCHS),
        metavar="N",
        help=f"passes over the data (default per data set: {per_dataset('epochs')})",
    )
    demo.add_argument(
        "--lr",
        type=_learning_rate,
        metavar="X",
        help="Adam's initial learning rate, decayed to 0 on a cosine "
        f"(default per data set: {per_dataset('lr')})",
    )
    demo.add_argument(
        "--batch-size",
        type=_integer(1),
        metavar="N",
        help="points per Adam step, in a new seeded order each epoch "
        "(default: all points, full-batch)",
    )
    demo.add_argument(
        "--seed", type=_integer(0), default=0, metavar="N", help="seed of the data and weights"
    )
    demo.add_argument(
        "--plot", type=_png, metavar="FILE.png", help="save the decision boundary and loss curve"
    )
    demo.add_argument(
        "--engine",
        choices=ENGINE_CHOICES,
        default="auto",
        help="numba, numpy, or auto: numba only for a run long enough to pay back its "
        "start-up (about 0.25 s)",
    )

    plot = commands.add_parser(
        "plot",
        help="draw f and f' of activations to a PNG",
        description="Draw f and f' of each activation, one panel each, to a PNG file.",
        formatter_class=_Formatter,
        epilog=EXIT_STATUS,
    )
    plot.add_argument("names", type=_activation, nargs="+", metavar="NAME", help=f"one of: {names}")
    plot.add_argument(
        "-o", "--output", type=_png, required=True, metavar="FILE.png", help="the file to write"
    )
    return parser


def _looks_negative(token: str) -> bool:
    if not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def _numbers_as_values(argv: list[str]) -> list[str]:
    """Let negative and special numbers through argparse, which takes ``-1e5`` for an option.

    ``--lr -inf`` becomes ``--lr=-inf``; ``show NAME -1e5`` becomes ``show NAME -- -1e5``.
    """
    tokens: list[str] = []
    for token in argv:
        if "--" in tokens or not _looks_negative(token):
            tokens.append(token)
        elif tokens and tokens[-1] in VALUE_OPTIONS:
            tokens[-1] = f"{tokens[-1]}={token}"
        else:
            tokens += ["--", token]
    return tokens


def _diagonal(layer: Layer, y: Array) -> Array:
    """dy_i/dx_i after ``layer.forward``: backward of ones for an elementwise layer."""
    if not isinstance(layer, _AlongAxis):
        return layer.backward(np.ones_like(y))
    diagonal = np.empty_like(y)
    for index in np.ndindex(y.shape):
        unit = np.zeros_like(y)
        unit[index] = 1
        diagonal[index] = layer.backward(unit)[index]
    return diagonal


def _layer(name: str) -> Layer:
    """A new built-in by name, RReLU in its inference form (its training slopes are random)."""
    layer = get(name)
    return layer.eval() if isinstance(layer, RReLU) else layer


def _show(name: str, values: list[float]) -> int:
    layer = _layer(name)
    x = np.array(values or TUTORIAL_VALUES, dtype=np.float64)
    y = layer.forward(x)
    if y.shape != x.shape:
        raise ValueError(
            f"{name} maps {x.size} values to {y.size}: show needs a layer whose output has "
            "its input's shape"
        )
    dydx = _diagonal(layer, y)
    derivative = "dy_i/dx_i" if isinstance(layer, _AlongAxis) else "f'(x)"
    print("".join(f"{heading:>15}" for heading in ("x", "f(x)", derivative)))
    for row in zip(x, y, dydx, strict=True):
        print("".join(f"{v:>15.8g}" for v in row))
    return 0


def _has_second_derivative(layer: Layer) -> bool:
    if not isinstance(layer, Activation):
        return False
    cls = type(layer)
    return cls.derivatives is not None or cls.second_derivative is not Activation.second_derivative


def _check(seed: int) -> int:
    """gradcheck every built-in; gradgradcheck those that provide f''."""
    rng = np.random.default_rng(seed)
    second_heading = "f''"
    print(f"{'activation':<12} {'result':<6} {'max abs error':>14} {second_heading:>9}")
    failures = 0
    for name in sorted(ACTIVATIONS):
        try:
            layer = get(name)
        except ImportError as error:
            print(f"{name:<12} {'skip':<6} {'':>14}  {error}")
            continue
        if isinstance(layer, RReLU):  # random slopes while training: check its inference form
            layer.eval()
        x = rng.uniform(-4.0, 4.0, size=(8, 16))
        kinks = getattr(layer, "kinks", ())
        for kink in kinks:  # finite differences mean nothing across a kink
            x = np.where(np.abs(x - kink) < 1e-3, kink + 0.5, x)
        worst = 0.0
        passed = True
        for _, numerical, analytical in gradients(layer, x, seed=seed):
            worst = max(worst, float(np.abs(analytical - numerical).max(initial=0.0)))
            passed &= bool(within_tolerance(numerical, analytical).all())
        second = "-"
        if _has_second_derivative(layer):
            second_ok = gradgradcheck(layer, x, raise_exception=False)
            second = "pass" if second_ok else "FAIL"
            passed &= second_ok
        failures += not passed
        print(f"{name:<12} {'pass' if passed else 'FAIL':<6} {worst:>14.3g} {second:>9}")
    return 1 if failures else 0


def _plot(names: list[str], output: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    x = np.linspace(-5, 5, 401)
    for panel, name in zip(axes.flat, names, strict=False):
        layer = _layer(name)
        title = repr(layer) if len(repr(layer)) <= 32 else type(layer).__name__
        if not isinstance(layer, _AlongAxis):  # elementwise, PReLU and RReLU included
            y = layer.forward(x)
            dydx = _diagonal(layer, y)
            panel.set_title(title, fontsize="medium")
        else:  # along an axis: the first of two entries, (x, 0)
            pairs = np.stack([x, np.zeros_like(x)], axis=-1)
            y, dydx = (a[:, 0] for a in _pair_output(layer, pairs))
            panel.set_title(f"{title} of (x, 0), first entry", fontsize="medium")
        panel.plot(x, y, label="f(x)")
        panel.plot(x, dydx, label="f'(x)", linestyle="--")
        panel.axhline(0, color="grey", linewidth=0.5)
        panel.axvline(0, color="grey", linewidth=0.5)
        panel.set_xlabel("x")
        panel.legend()
    for panel in list(axes.flat)[len(names) :]:
        panel.set_visible(False)
    figure.tight_layout()
    figure.savefig(output, dpi=100, format="png")
    plt.close(figure)
    print(f"wrote {output}")
    return 0


def _pair_output(layer: Layer, pairs: Array) -> tuple[Array, Array]:
    y = layer.forward(pairs)
    unit = np.zeros_like(y)
    unit[:, 0] = 1
    return y, layer.backward(unit)


def _demo(args: argparse.Namespace) -> int:
    settings = {**DEFAULTS[args.dataset]}
    for name in ("hidden", "epochs", "lr"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    hidden, epochs = int(settings["hidden"]), int(settings["epochs"])
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    # NOTE: NumPy imports numpy.random on first use, and a Ctrl-C that arrives while its
    # compiled modules load is lost there (the demo trained on): loaded before training
    import numpy.random  # noqa: F401

    print(
        f"training a 2-{hidden}-{hidden}-1 MLP ({args.activation}) on {args.dataset} for "
        f"{epochs} epochs, Adam lr={settings['lr']:g}, {batch}, seed {args.seed}"
    )

    def report(epoch: int, epochs: int, loss: float, accuracy: float) -> None:
        print(
            f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {loss:.4g}  accuracy {accuracy:6.1%}"
        )

    result = train(
        args.dataset,
        activation=args.activation,
        hidden=hidden,
        epochs=epochs,
        lr=settings["lr"],
        batch_size=args.batch_size,
        seed=args.seed,
        progress=report,
        engine=args.engine,
    )
    print(
        f"final training accuracy {result.accuracy:.1%} in {result.seconds:.2f} s "
        f"on the {result.engine} engine"
    )
    if args.plot:
        plot_result(result, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _require_matplotlib(option: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f'{option} needs matplotlib: pip install "tinygrad_act[plot]"') from None


def _run(args: argparse.Namespace) -> int:
    if args.command == "show":
        return _show(args.name, args.values)
    if args.command == "plot":
        _require_matplotlib("plot")
        return _plot(args.names, args.output)
    if args.command == "demo":
        if args.plot:
            _require_matplotlib("--plot")
        if args.engine == "numba" and "numba" not in available_engines():
            raise ImportError('--engine numba needs numba: pip install "tinygrad_act[fast]"')
        return _demo(args)
    return _check(args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default ``sys.argv[1:]``); returns the exit status.

    Without arguments, prints the usage and returns 2.
    """
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _build_parser()
        if not tokens:
            parser.print_help(sys.stderr)
            return 2
        try:
            args = parser.parse_args(_numbers_as_values(tokens))
        except SystemExit as exit_:  # --help, --version and bad arguments
            return exit_.code if isinstance(exit_.code, int) else 2
        try:  # the environment's settings, checked before any work like the arguments
            engine()
            get_num_threads()
        except (ValueError, ImportError) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        # NOTE: CPython 3.11 marks a KeyboardInterrupt that leaves code run by ``exec`` of
        # a string (numba's and the dataclasses' generated code, as they load) unhandled,
        # though it was caught here, and then ends the process by SIGINT at exit, not
        # with 130; the next ``exec`` of a string clears the mark
        exec("None")
        return 130
    except MemoryError:
        print(f"{PROG}: out of memory; try smaller settings", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away, as in `tinygrad-act check | head -1`
        # NOTE: point stdout at /dev/null, or Python's final flush reports the pipe again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ImportError, OSError, ValueError, FloatingPointError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1


def main_exit() -> None:
    """Entry point of the ``tinygrad-act`` console script."""
    sys.exit(main())
