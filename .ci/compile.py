"""Compile every built-in layer's numba loops into the disk cache of this checkout.

CI runs this on its second core while the compiled test pass starts on the first: that
pass is mostly numba compiling, one loop after another, and loads from the disk cache
each loop compiled here first. The loops compiled are the ones calls make: forward and
backward, forward under `no_grad`, and f'', for float64, float32 and float16 input, on
one thread and on the thread team. Run it from the repository root, with the
interpreter the tests use, so that it compiles the checkout's own modules.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinygrad_act  # noqa: E402
from tinygrad_act.activations import ACTIVATIONS  # noqa: E402
from tinygrad_act.base import Activation  # noqa: E402

DTYPES = (np.float64, np.float32, np.float16)


def run(threads: int, size: int, what: str) -> None:
    """Every built-in through the calls `what` names, on arrays of 2 x `size` elements."""
    tinygrad_act.set_num_threads(threads)
    for cls in ACTIVATIONS.values():
        for dtype in DTYPES:
            layer = cls()
            x = np.linspace(-3, 3, 2 * size).astype(dtype).reshape(2, size)
            if what == "backward":
                layer.backward(np.ones_like(layer.forward(x)))
            elif what == "no_grad":
                with tinygrad_act.no_grad():
                    layer.forward(x)
            elif isinstance(layer, Activation) and type(layer).derivatives is not None:
                layer.second_derivative(x)


def main() -> None:
    where = Path(tinygrad_act.__file__).resolve().parent
    if where != ROOT / "tinygrad_act":
        raise SystemExit(f"compiled {where}, not this checkout's tinygrad_act")
    if tinygrad_act.engine() != "numba":
        raise SystemExit("numba is not installed here: nothing to compile")
    start = time.perf_counter()
    # in the order the test files first need them
    for threads, size, what in [
        (1, 64, "backward"),
        (1, 64, "no_grad"),
        (1, 64, "second_derivative"),
        (2, 50_000, "backward"),
        (2, 50_000, "no_grad"),
    ]:
        run(threads, size, what)
        print(f"compiled: {what}, {threads} thread(s), {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
