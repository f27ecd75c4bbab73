"""Run an elementwise kernel over an array in cache-sized blocks.

A kernel is a function of NumPy arrays, ``kernel(x, *extra) -> (y, saved)``,
written as ordinary NumPy expressions. `map_blocks` hands it the input in
blocks small enough that the kernel's temporaries stay in cache, in the
compute dtype, and writes each block's results into the output arrays in the
storage dtype. Every result is a fresh array that shares no memory with the
inputs, so a layer can keep it as its own cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Saved = tuple[Any, ...]
Kernel = Callable[..., tuple[Array, Saved]]

#: Elements per block: the kernel's few temporaries of this size fit in L2.
BLOCK = 16384


def map_blocks(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    dtypes: tuple[np.dtype[Any], np.dtype[Any], np.dtype[Any]],
) -> tuple[Array, Saved]:
    """Apply `kernel` to `x` (and `extra`, arrays of the same shape) blockwise.

    `dtypes` are those the kernel computes in, the output is stored in, and the
    saved arrays are stored in. Returns the output and the saved arrays, in the
    shape of `x`.
    """
    if x.size <= BLOCK:
        return _map_whole(kernel, x, extra, *dtypes)
    return _map_in_blocks(kernel, x, extra, *dtypes)


def _map_whole(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    compute_dtype: np.dtype[Any],
    output_dtype: np.dtype[Any],
    saved_dtype: np.dtype[Any],
) -> tuple[Array, Saved]:
    inputs = (x, *extra)
    result, saved = kernel(*(_as(a, compute_dtype) for a in inputs))
    y = _owned(result, output_dtype, x.shape, inputs)
    return y, tuple(
        None if s is None else _owned(s, saved_dtype, x.shape, (*inputs, y)) for s in saved
    )


def _as(a: Array | None, dtype: np.dtype[Any]) -> Array | None:
    return None if a is None else a.astype(dtype, copy=False)


def _owned(a: Array, dtype: np.dtype[Any], shape: tuple[int, ...], others: Saved) -> Array:
    """`a` as an array of `dtype` and `shape` that shares memory with none of `others`."""
    with np.errstate(over="ignore"):  # NOTE: float16 results above 65504 round to inf
        result = np.asarray(a, dtype=dtype)
    if any(o is not None and np.may_share_memory(result, o) for o in others):
        result = result.copy()
    return np.broadcast_to(result, shape).copy() if result.shape != shape else result


def _map_in_blocks(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    compute_dtype: np.dtype[Any],
    output_dtype: np.dtype[Any],
    saved_dtype: np.dtype[Any],
) -> tuple[Array, Saved]:
    flat_inputs = [None if a is None else a.reshape(-1) for a in (x, *extra)]
    y = np.empty(x.size, output_dtype)
    saved: list[Array | None] | None = None
    for start in range(0, x.size, BLOCK):
        block = slice(start, start + BLOCK)
        y_block, saved_block = kernel(
            *(_as(a[block], compute_dtype) if a is not None else None for a in flat_inputs)
        )
        if saved is None:
            saved = [None if s is None else np.empty(x.size, saved_dtype) for s in saved_block]
        with np.errstate(over="ignore"):  # NOTE: float16 results above 65504 round to inf
            y[block] = y_block
            for out, s in zip(saved, saved_block, strict=True):
                if out is not None:
                    out[block] = s
    assert saved is not None
    return y.reshape(x.shape), tuple(None if s is None else s.reshape(x.shape) for s in saved)
