"""Command line: ``python -m tinygrad_act`` or ``tinygrad-act``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from tinygrad_act.activations import ACTIVATIONS, get
from tinygrad_act.gradcheck import gradients, within_tolerance

TUTORIAL_VALUES = [0.1, 0.2, 0.3, 0.4, 0.5]


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _activation(name: str) -> str:
    if name.lower() not in ACTIVATIONS:
        raise argparse.ArgumentTypeError(
            f"unknown activation {name!r}; valid names: {', '.join(sorted(ACTIVATIONS))}"
        )
    return name.lower()


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
    return parser


def _show(name: str, values: list[float]) -> int:
    layer = get(name)
    x = np.array(values or TUTORIAL_VALUES, dtype=np.float64)
    y = layer.forward(x)
    dydx = layer.backward(np.ones_like(y))
    print("".join(f"{heading:>15}" for heading in ("x", "f(x)", "f'(x)")))
    for row in zip(x, y, dydx, strict=True):
        print("".join(f"{v:>15.8g}" for v in row))
    return 0


def _check(seed: int) -> int:
    rng = np.random.default_rng(seed)
    print(f"{'activation':<12} {'result':<6} {'max abs error':>14}")
    failures = 0
    for name in sorted(ACTIVATIONS):
        layer = get(name)
        x = rng.uniform(-4.0, 4.0, size=(8, 16))
        worst = 0.0
        passed = True
        for _, numerical, analytical in gradients(layer, x, seed=seed):
            worst = max(worst, float(np.abs(analytical - numerical).max(initial=0.0)))
            passed &= bool(within_tolerance(numerical, analytical).all())
        failures += not passed
        print(f"{name:<12} {'pass' if passed else 'FAIL':<6} {worst:>14.3g}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _build_parser().parse_args(argv)
    if args.command == "show":
        return _show(args.name, args.values)
    return _check(args.seed)


def main_exit() -> None:
    """Entry point of the ``tinygrad-act`` console script."""
    sys.exit(main())
