"""GLU compiled, for the numba engine: one pass over the input in forward, one over
the gradient in backward.

The arrays are C-ordered. The input and its derivatives are seen as (outer, 2, m):
``x[o, 0]`` is the half ``a`` of row ``o``, ``x[o, 1]`` the gate ``b``; the output and
the gradient as (outer, m). Each element is computed in float64 by
`tinygrad_act.activations.glu_parts`, compiled, and rounded once to its array's
dtype.
``start`` and ``stop`` are positions in the flat (outer, m) space, so that threads may
share one row. Rows run one at a time (each a contiguous, vectorized loop), except
short ones (m below `SHORT_FORWARD` or `SHORT_BACKWARD`), whose whole rows run column
by column: a loop per row would cost more than its elements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba
import numpy as np
from numba.np.numpy_support import carray

from tinygrad_act import _engine, _numba_math, _team, activations
from tinygrad_act.activations import glu_parts

Array = Any
_F = TypeVar("_F", bound=Callable[..., Any])

_engine._register_helpers()  # `glu_parts`, for numba

#: Rows shorter than this run column by column, in forward and in backward: the
#: lengths from which a row's vectorized loop measured faster (float64, 10^6 elements).
SHORT_FORWARD = 8
SHORT_BACKWARD = 6

# numba's disk cache keys a loop on its own file alone, and these compile in code from
# others (the jobs, the team's too): the loops' names carry a hash of those, so that a
# change there is never served a stale loop.
_SOURCES = hashlib.sha256(
    b"".join(
        Path(module.__file__ or "").read_bytes() for module in (activations, _numba_math, _team)
    )
).hexdigest()[:16]


def _named(function: _F) -> _F:
    function.__qualname__ = f"{function.__qualname__}_{_SOURCES}"
    return function


#: The helpers below compile into the two loops, which numba caches with them. forward's
#: are called, not inlined: two inlined copies of its row loop took 4.2 s to compile,
#: against 3.1 s so, at the same speed.
_INNER: dict[str, Any] = {**_engine.KERNEL_OPTIONS, "nogil": True}


@numba.njit(inline="always", **_INNER)  # type: ignore[untyped-decorator]
def _forward_line(a: Array, b: Array, y: Array, by_a: Array, by_b: Array) -> None:
    """y = a sigma(b), and the derivatives by a and by b (None inside no_grad), along
    one line of elements: a row, or a column of whole rows."""
    for k in range(a.size):
        u = np.float64(a[k])
        value, gate, slope = glu_parts(_numba_math, u, np.float64(b[k]))
        y[k] = value
        if by_a is not None:
            by_a[k] = gate
            by_b[k] = slope


@numba.njit(**_INNER)  # type: ignore[untyped-decorator]
def _forward_rows(x: Array, y: Array, d: Array, start: int, stop: int) -> None:
    """Positions [start, stop), row by row."""
    _numba_math.wide_vectors()
    m = y.shape[1]
    while start < stop:
        o, k = start // m, start % m
        end = min(m, k + stop - start)
        a, b = x[o, 0, k:end], x[o, 1, k:end]
        if d is None:
            _forward_line(a, b, y[o, k:end], None, None)
        else:
            _forward_line(a, b, y[o, k:end], d[o, 0, k:end], d[o, 1, k:end])
        start += end - k


@numba.njit(**_INNER)  # type: ignore[untyped-decorator]
def _forward_columns(x: Array, y: Array, d: Array, first: int, last: int) -> None:
    """Whole rows [first, last), column by column."""
    _numba_math.wide_vectors()
    for k in range(y.shape[1]):
        a, b = x[first:last, 0, k], x[first:last, 1, k]
        if d is None:
            _forward_line(a, b, y[first:last, k], None, None)
        else:
            _forward_line(a, b, y[first:last, k], d[first:last, 0, k], d[first:last, 1, k])


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
@_named
def forward(x: Array, y: Array, d: Array, start: int, stop: int) -> None:
    """y and the derivatives `d` (None inside no_grad) of positions [start, stop)."""
    _numba_math.wide_vectors()
    m = y.shape[1]
    first, last = -(-start // m), stop // m  # the whole rows
    if m >= SHORT_FORWARD or first >= last:
        _forward_rows(x, y, d, start, stop)
        return
    _forward_rows(x, y, d, start, first * m)
    _forward_columns(x, y, d, first, last)
    _forward_rows(x, y, d, last * m, stop)


@numba.njit(inline="always", **_INNER)  # type: ignore[untyped-decorator]
def _backward_line(g: Array, by_a: Array, by_b: Array, out_a: Array, out_b: Array) -> None:
    """Both halves of the input's gradient along one line: g times each derivative,
    rounded once."""
    for k in range(g.size):
        h = np.float64(g[k])
        out_a[k] = h * np.float64(by_a[k])
        out_b[k] = h * np.float64(by_b[k])


@numba.njit(inline="always", **_INNER)  # type: ignore[untyped-decorator]
def _backward_rows(g: Array, d: Array, out: Array, start: int, stop: int) -> None:
    """Positions [start, stop), row by row (inlined: backward measured faster so, and
    its loop is small to compile, unlike forward's)."""
    m = g.shape[1]
    while start < stop:
        o, k = start // m, start % m
        end = min(m, k + stop - start)
        by_a, by_b = d[o, 0, k:end], d[o, 1, k:end]
        _backward_line(g[o, k:end], by_a, by_b, out[o, 0, k:end], out[o, 1, k:end])
        start += end - k


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
@_named
def backward(g: Array, d: Array, out: Array, start: int, stop: int) -> None:
    """The input's gradient `out` of positions [start, stop)."""
    _numba_math.wide_vectors()
    m = g.shape[1]
    first, last = -(-start // m), stop // m
    if m >= SHORT_BACKWARD or first >= last:
        _backward_rows(g, d, out, start, stop)
        return
    _backward_rows(g, d, out, start, first * m)
    for k in range(m):  # whole rows, column by column
        by_a, by_b = d[first:last, 0, k], d[first:last, 1, k]
        _backward_line(g[first:last, k], by_a, by_b, out[first:last, 0, k], out[first:last, 1, k])
    _backward_rows(g, d, out, last * m, stop)


# ---------------------------------------------------------------------------
# Whole arrays, on the thread team (see `tinygrad_act._team`) where they are large


def run_forward(x: Array, y: Array, d: Array) -> None:
    """`forward` over the whole arrays: on the team from `_engine.TEAM_START` outputs
    on several threads (inside no_grad, on the thread pool)."""
    n = y.size
    threads = min(_engine.get_num_threads(), n // _engine.TEAM_MIN)
    if threads > 1 and d is not None:
        job = _job(_forward_job, (y.dtype.type, x.dtype.type, d.dtype.type))
        # the count of positions is y's size; the job reads x and d from their addresses
        arrays = (y.reshape(-1), x.reshape(-1), d.reshape(-1))
        _team.run(lambda: forward(x, y, d, 0, n), job.address, arrays, threads, (y.shape[1],))
    else:
        _engine.run_chunks(n, lambda start, stop: forward(x, y, d, start, stop))


def run_backward(g: Array, d: Array, out: Array) -> None:
    """`backward` over the whole arrays, on the team where they are large."""
    n = g.size
    threads = min(_engine.get_num_threads(), n // _engine.TEAM_MIN)
    if threads > 1:
        job = _job(_backward_job, (g.dtype.type, d.dtype.type, out.dtype.type))
        arrays = (g.reshape(-1), d.reshape(-1), out.reshape(-1))
        _team.run(lambda: backward(g, d, out, 0, n), job.address, arrays, threads, (g.shape[1],))
    else:
        backward(g, d, out, 0, n)


_jobs: dict[tuple[Any, ...], Any] = {}


def _job(make: Callable[..., Any], kinds: tuple[Any, Any, Any]) -> Any:
    """The job `make` builds for arrays of the NumPy types `kinds`, compiled on first use."""
    return _engine.compiled_once(_jobs, (make, kinds), lambda: make(*kinds))


def _forward_job(*kinds: Any) -> Any:
    """forward's job: y (outer, m), x and d (outer, 2, m), m the job's first value."""
    return _team_job(True, *kinds)


def _backward_job(*kinds: Any) -> Any:
    """backward's job: g (outer, m), d and out (outer, 2, m), m the job's first value."""
    return _team_job(False, *kinds)


def _team_job(forward_pass: bool, first: Any, second: Any, third: Any) -> Any:
    """The job of `forward` or `backward` for arrays of the NumPy types given: a C
    function (numba prunes the other pass, `forward_pass` being a constant)."""

    def job(address: Any, thread: int) -> None:
        control = carray(address, _team.CONTROL)
        n = control[_team.COUNT]
        m = np.int64(carray(_team.pointer(control[_team.VALUES]), 1, np.float64)[0])
        flat = carray(_team.pointer(control[_team.ARRAYS]), (n // m, m), first)
        pair = carray(_team.pointer(control[_team.ARRAYS + 1]), (n // m, 2, m), second)
        other = carray(_team.pointer(control[_team.ARRAYS + 2]), (n // m, 2, m), third)
        part = thread  # its own part first
        while True:
            start, stop, part = _team.claim(control, part)
            if start >= stop:
                break
            try:
                if forward_pass:
                    forward(pair, flat, other, start, stop)
                else:
                    backward(flat, pair, other, start, stop)
            except Exception:  # never, with numpy's error model; as the team's other jobs
                _team.fail(control)
            _team.finish(control)

    names = "_".join(np.dtype(kind).name for kind in (first, second, third))
    pass_name = "forward" if forward_pass else "backward"
    job.__qualname__ = f"{pass_name}_job_{names}_{_SOURCES}"  # one cache entry each
    return numba.cfunc(_team.job_signature, cache=True, **_engine.KERNEL_OPTIONS)(job)
