"""Softmax and LogSoftmax compiled row by row, for the numba engine.

Each row is read twice in forward, its maximum and then its exponentials, which
are summed in blocks of 128 on 8 lanes (as NumPy's pairwise sum does) and the
blocks with Neumaier's compensated sum. Every pass vectorizes. The formulas are
those of `Softmax` and `LogSoftmax` in `tinygrad_act.activations`, which documents
them; here they are written as loops over one row, which NumPy's whole-array form
cannot express. Rows are independent, so they run in chunks on the thread pool.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from tinygrad_act import _engine
from tinygrad_act import _numba_math as xp

Array = Any


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _sum(values: Array, lanes: Array) -> float:
    """The sum of `values`, as NumPy's pairwise sum does it: blocks of 128 summed on 8
    interleaved lanes (which vectorizes), and the blocks added by Neumaier's
    compensated sum. `lanes` is a scratch array of 8.

    A compensation that is not finite (a term of inf) is dropped, so the sum is inf,
    never NaN, for such a row.
    """
    n = values.size
    total, compensation = 0.0, 0.0
    for start in range(0, n, 128):
        stop = min(start + 128, n)
        whole = stop - (stop - start) % 8
        for k in range(8):
            lanes[k] = 0.0
        for j in range(start, whole, 8):
            for k in range(8):
                lanes[k] += values[j + k]
        block = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
            (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
        )
        for j in range(whole, stop):
            block += values[j]
        t = total + block
        if xp.abs(total) >= xp.abs(block):
            compensation += (total - t) + block
        else:
            compensation += (block - t) + total
        total = t
    return total + (compensation if xp.isfinite(compensation) else 0.0)


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _max(values: Array, lanes: Array) -> float:
    """The maximum of `values`, NaN if any is NaN, on 8 interleaved lanes (vectorizes)."""
    n = values.size
    whole = n - n % 8
    for k in range(8):
        lanes[k] = -np.inf
    for j in range(0, whole, 8):
        for k in range(8):
            v = values[j + k]
            lanes[k] = v if (v > lanes[k] or v != v) else lanes[k]
    m = -np.inf
    for j in range(8 + n - whole):
        v = lanes[j] if j < 8 else values[whole + j - 8]
        m = v if (v > m or v != v) else m
    return m


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward(x: Array, y: Array, log: bool) -> None:
    n = x.shape[1]
    exps = np.empty(n)
    lanes = np.empty(8)
    for i in range(x.shape[0]):
        m = _max(x[i], lanes)
        shift = -m if xp.isfinite(m) else 0.0
        for j in range(n):
            v = x[i, j]
            # e^(v - m), with the rounding error of v - m carried into exp (TwoSum)
            hi = v + shift
            b = hi - v
            lo = (v - (hi - b)) + (shift - b)
            e = xp.exp(hi) * (1.0 + (lo if xp.isfinite(hi) else 0.0))
            exps[j] = e
            y[i, j] = hi if log else e
        # the sum is 1 + rest, rest the sum without one maximal entry's exact 1: log1p(rest)
        # keeps the tiny outputs of a dominant entry
        if xp.isfinite(m):
            top = 0
            while x[i, top] != m:
                top += 1
            exps[top] = 0.0
            rest = _sum(exps, lanes)
        else:
            rest = _sum(exps, lanes) - 1.0
        if log:
            correction = xp.log1p(rest)
            for j in range(n):
                y[i, j] = y[i, j] - correction
        else:
            total = 1.0 + rest
            for j in range(n):
                y[i, j] = y[i, j] / total


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward(y: Array, g: Array, out: Array, log: bool) -> None:
    n = y.shape[1]
    terms = np.empty(n)
    lanes = np.empty(8)
    for i in range(y.shape[0]):
        for j in range(n):
            terms[j] = g[i, j] if log else g[i, j] * y[i, j]
        total = _sum(terms, lanes)
        for j in range(n):
            if log:
                out[i, j] = g[i, j] - xp.exp(y[i, j]) * total
            else:
                out[i, j] = y[i, j] * (g[i, j] - total)


def forward(rows: Array, *, log: bool) -> Array:
    """Softmax (or LogSoftmax) of each row of a C-ordered float64 2-d array."""
    y = np.empty_like(rows)
    _in_chunks(rows.shape, lambda a, b: _forward(rows[a:b], y[a:b], log))
    return y


def backward(y: Array, g: Array, *, log: bool) -> Array:
    """The vector-Jacobian product of each row, from the output `y`."""
    out = np.empty_like(y)
    _in_chunks(y.shape, lambda a, b: _backward(y[a:b], g[a:b], out[a:b], log))
    return out


def _in_chunks(shape: tuple[int, ...], task: Any) -> None:
    rows, n = shape
    if rows * n < _engine.PARALLEL_MIN or rows < 2:
        task(0, rows)
        return
    # run_chunks splits elements; convert its element bounds to whole rows
    per_row = max(n, 1)
    _engine.run_chunks(rows * per_row, lambda a, b: task(-(-a // per_row), -(-b // per_row)))
