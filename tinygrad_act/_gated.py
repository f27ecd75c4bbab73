"""GLU compiled, for the numba engine: one pass over the input in forward, one over
the gradient in backward.

The arrays are C-ordered. The input and its derivatives are seen as (outer, 2, m):
``x[o, 0]`` is the half ``a`` of row ``o``, ``x[o, 1]`` the gate ``b``; the output and
the gradient as (outer, m). Each element is computed in float64 by GLU's own
`tinygrad_act.activations.gated`, compiled, and rounded once to its array's dtype.
``start`` and ``stop`` are positions in the flat (outer, m) space, so that threads may
share one row.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from tinygrad_act import _engine, _numba_math
from tinygrad_act.activations import gated

Array = Any

_engine._register_helpers()  # `gated`, for numba


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward_row(a: Array, b: Array, y: Array, by_a: Array, by_b: Array) -> None:
    """y = a sigma(b), and the derivatives by a and by b (None inside no_grad)."""
    for k in range(a.size):
        u = np.float64(a[k])
        gate, half = gated(_numba_math, u, np.float64(b[k]))
        y[k] = u * gate
        if by_a is not None:
            by_a[k] = gate
            by_b[k] = half


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward_row(g: Array, by_a: Array, by_b: Array, out_a: Array, out_b: Array) -> None:
    """Both halves of the input's gradient: g times each derivative, rounded once."""
    for k in range(g.size):
        h = np.float64(g[k])
        out_a[k] = h * np.float64(by_a[k])
        out_b[k] = h * np.float64(by_b[k])


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def forward(x: Array, y: Array, d: Array, start: int, stop: int) -> None:
    """y and the derivatives `d` (None inside no_grad) of positions [start, stop)."""
    m = y.shape[1]
    while start < stop:
        o, k = start // m, start % m
        end = min(m, k + stop - start)
        a, b = x[o, 0, k:end], x[o, 1, k:end]
        if d is None:
            _forward_row(a, b, y[o, k:end], None, None)
        else:
            _forward_row(a, b, y[o, k:end], d[o, 0, k:end], d[o, 1, k:end])
        start += end - k


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def backward(g: Array, d: Array, out: Array, start: int, stop: int) -> None:
    """The input's gradient `out` of positions [start, stop)."""
    m = g.shape[1]
    while start < stop:
        o, k = start // m, start % m
        end = min(m, k + stop - start)
        by_a, by_b = d[o, 0, k:end], d[o, 1, k:end]
        _backward_row(g[o, k:end], by_a, by_b, out[o, 0, k:end], out[o, 1, k:end])
        start += end - k
