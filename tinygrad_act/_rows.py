"""Softmax and LogSoftmax compiled row by row, for the numba engine.

Each row is read three times in forward: its maximum, its exponentials, which are
summed in blocks of 128 on 8 lanes (as NumPy's pairwise sum does) and the blocks
with Neumaier's compensated sum, and the outputs. LogSoftmax also writes the
softmax, which its backward takes: dividing the exponentials by their sum costs
less than an ``exp`` per element in backward, and is as accurate. The formulas are
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


#: Flips the magnitude bits of a negative float64's bit pattern (see `_order`).
_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _order(bits: np.int64) -> np.int64:
    """A float64's bit pattern as an int64 that sorts as the floats do (-0 below +0).

    Its own inverse. NOTE: for a positive float the pattern already sorts; a negative
    one is its sign bit and its magnitude, and flipping the magnitude bits reverses it.
    """
    return bits ^ ((bits >> 63) & _MAGNITUDE)  # type: ignore[no-any-return]


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _max(values: Array) -> float:
    """The maximum of `values`, NaN if any is NaN.

    Compared as integers (`_order`): an integer maximum vectorizes, a float one with
    NaN kept does not.
    """
    best = np.int64(-(2**63))  # below every float
    nans = 0
    for j in range(values.size):
        v = values[j]
        key = _order(xp._bits(v))
        best = key if key > best else best
        nans += v != v
    return np.nan if nans else xp._from_bits(_order(best))


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward(x: Array, y: Array, p: Array, log: bool) -> None:
    """Softmax of each row into y; or LogSoftmax into y and the softmax into p."""
    n = x.shape[1]
    exps = np.empty(n)
    lanes = np.empty(8)
    for i in range(x.shape[0]):
        m = _max(x[i])
        finite = xp.isfinite(m)
        shift = -m if finite else 0.0
        maxima = 0
        for j in range(n):
            v = x[i, j]
            # e^(v - m), with the rounding error of v - m carried into exp (TwoSum)
            hi = v + shift
            b = hi - v
            lo = (v - (hi - b)) + (shift - b)
            e = xp.exp(hi) * (1.0 + (lo if xp.isfinite(hi) else 0.0))
            # v - m is 0 exactly at a maximum, whose e is an exact 1: counted, not summed
            top = finite and hi == 0.0
            exps[j] = 0.0 if top else e
            maxima += top
        # the sum is 1 + rest, rest the sum without one maximal entry's 1: log1p(rest) keeps
        # the tiny outputs of a dominant entry (without a finite maximum, rest is sum - 1)
        rest = _sum(exps, lanes) + (maxima - 1)
        total = 1.0 + rest
        if log:
            correction = xp.log1p(rest)
            for j in range(n):
                hi = x[i, j] + shift
                y[i, j] = hi - correction
                p[i, j] = (1.0 if (finite and hi == 0.0) else exps[j]) / total
        else:
            for j in range(n):
                hi = x[i, j] + shift
                y[i, j] = (1.0 if (finite and hi == 0.0) else exps[j]) / total


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward(p: Array, g: Array, out: Array, log: bool) -> None:
    """The vector-Jacobian product of each row, from its softmax p."""
    n = p.shape[1]
    terms = np.empty(n)
    lanes = np.empty(8)
    for i in range(p.shape[0]):
        if log:
            total = _sum(g[i], lanes)
            for j in range(n):
                out[i, j] = g[i, j] - p[i, j] * total
        else:
            for j in range(n):
                terms[j] = g[i, j] * p[i, j]
            total = _sum(terms, lanes)
            for j in range(n):
                out[i, j] = p[i, j] * (g[i, j] - total)


def forward(rows: Array, *, log: bool, dtype: Any, reuse: Array | None) -> tuple[Array, Array]:
    """Softmax (or LogSoftmax) of each row of a C-ordered float64 2-d array, and the
    rows' softmax, which backward takes (for Softmax, the same array).

    LogSoftmax's output is rounded once to `dtype` (float32 or float64); the softmax
    is float64, written into `reuse` where given (an array of the rows' shape that
    nothing else reads) rather than into a new array.
    """
    p = np.empty_like(rows) if reuse is None else reuse
    y = np.empty(rows.shape, dtype) if log else p
    _in_chunks(rows.shape, lambda a, b: _forward(rows[a:b], y[a:b], p[a:b], log))
    return y, p


def backward(p: Array, g: Array, *, log: bool) -> Array:
    """The vector-Jacobian product of each row, from the rows' softmax `p`."""
    out = np.empty_like(p)
    _in_chunks(p.shape, lambda a, b: _backward(p[a:b], g[a:b], out[a:b], log))
    return out


def _in_chunks(shape: tuple[int, ...], task: Any) -> None:
    rows, n = shape
    if rows * n < _engine.PARALLEL_MIN or rows < 2:
        task(0, rows)
        return
    # run_chunks splits elements; convert its element bounds to whole rows
    per_row = max(n, 1)
    _engine.run_chunks(rows * per_row, lambda a, b: task(-(-a // per_row), -(-b // per_row)))
