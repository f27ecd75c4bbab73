"""Run an elementwise kernel over an array in cache-sized blocks, on several threads.

A kernel is a function of NumPy arrays, ``kernel(x, *extra) -> (y, saved)``,
written as ordinary NumPy expressions. `map_blocks` hands it the input in
blocks small enough that the kernel's temporaries stay in cache, in the
compute dtype, and writes each block's results into the output arrays in the
storage dtype. NumPy's ufuncs release the GIL, so blocks run in parallel on a
thread pool. Every element's result depends on that element alone, so results
do not depend on the block size or the number of threads.

Every result is a fresh array that shares no memory with the inputs, so a
layer can keep it as its own cache; a layer may hand its previous cache back
as ``reuse`` to be overwritten instead of allocating anew.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Saved = tuple[Any, ...]
Kernel = Callable[..., tuple[Array, Saved]]

#: Elements per block: the kernel's few temporaries of this size fit in L2.
BLOCK = 16384
#: Below this many elements, threads cost more than they save.
PARALLEL_MIN = 4 * BLOCK
ENVIRONMENT_VARIABLE = "TINYGRAD_ACT_NUM_THREADS"


def _default_threads() -> int:
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise ValueError(
                f"{ENVIRONMENT_VARIABLE} must be a positive integer, got {configured!r}"
            ) from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_lock = threading.Lock()
_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def set_num_threads(n: int) -> None:
    """Use `n` threads for large arrays (default: the environment variable
    ``TINYGRAD_ACT_NUM_THREADS``, else every available core). Arrays below
    65,536 elements always run on the calling thread."""
    global _threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _threads = n


def get_num_threads() -> int:
    """The number of threads large arrays run on."""
    return _threads


def _executor(threads: int) -> ThreadPoolExecutor:
    """A pool of at least `threads` workers, kept for the life of the process."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < threads:
            old, _pool = _pool, ThreadPoolExecutor(threads, thread_name_prefix="tinygrad_act")
            _pool_size = threads
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def map_blocks(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    dtypes: tuple[np.dtype[Any], np.dtype[Any], np.dtype[Any]],
    reuse: Saved = (),
) -> tuple[Array, Saved]:
    """Apply `kernel` to `x` (and `extra`, arrays of the same shape) blockwise.

    `dtypes` are those the kernel computes in, the output is stored in, and the
    saved arrays are stored in. `reuse` may hold arrays of the saved arrays' shape
    and dtype to overwrite. Returns the output and the saved arrays, in the shape
    of `x`.
    """
    if x.size <= BLOCK:
        return _map_whole(kernel, x, extra, *dtypes)
    return _map_in_blocks(kernel, x, extra, *dtypes, reuse)


def _map_whole(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    compute_dtype: np.dtype[Any],
    output_dtype: np.dtype[Any],
    saved_dtype: np.dtype[Any],
) -> tuple[Array, Saved]:
    # Kernels see 1-d arrays: a 0-d input would turn their results into NumPy scalars.
    flat = (x.size,)
    inputs = tuple(None if a is None else a.reshape(flat) for a in (x, *extra))
    result, saved = kernel(*(_as(a, compute_dtype) for a in inputs))
    y = _owned(result, output_dtype, flat, inputs)
    kept = (None if s is None else _owned(s, saved_dtype, flat, (*inputs, y)) for s in saved)
    return y.reshape(x.shape), tuple(None if s is None else s.reshape(x.shape) for s in kept)


def _as(a: Array | None, dtype: np.dtype[Any]) -> Array | None:
    return None if a is None else a.astype(dtype, copy=False)


def _blocks(inputs: list[Array | None], block: slice, dtype: np.dtype[Any]) -> list[Array | None]:
    return [None if a is None else a[block].astype(dtype, copy=False) for a in inputs]


def _owned(a: Array, dtype: np.dtype[Any], shape: tuple[int, ...], others: Saved) -> Array:
    """`a` as an array of `dtype` and `shape` that shares memory with none of `others`."""
    if not isinstance(a, np.ndarray) or a.dtype != dtype:  # a cast makes a fresh array
        with np.errstate(over="ignore"):  # NOTE: float16 results above 65504 round to inf
            a = np.asarray(a, dtype=dtype)
        fresh = True
    else:  # a new ufunc result owns its memory; an input or a view of one does not
        fresh = a.base is None and all(a is not o for o in others)
    if a.shape != shape:
        broadcast: Array = np.broadcast_to(a, shape).copy()
        return broadcast
    return a if fresh else a.copy()


def _map_in_blocks(
    kernel: Kernel,
    x: Array,
    extra: Saved,
    compute_dtype: np.dtype[Any],
    output_dtype: np.dtype[Any],
    saved_dtype: np.dtype[Any],
    reuse: Saved,
) -> tuple[Array, Saved]:
    n = x.size
    inputs = [None if a is None else a.reshape(-1) for a in (x, *extra)]
    y = np.empty(n, output_dtype)
    outputs: list[Array | None] = [y]

    def write(block: slice, results: Saved) -> None:
        with np.errstate(over="ignore"):  # NOTE: float16 results above 65504 round to inf
            for out, value in zip(outputs, results, strict=True):
                if out is not None:
                    out[block] = value

    def run(start: int, stop: int) -> None:
        for begin in range(start, stop, BLOCK):
            block = slice(begin, min(begin + BLOCK, stop))
            y_block, saved_block = kernel(*_blocks(inputs, block, compute_dtype))
            write(block, (y_block, *saved_block))

    # The first block shows which saved arrays the kernel returns.
    first = slice(0, BLOCK)
    y_block, saved_block = kernel(*_blocks(inputs, first, compute_dtype))
    for i, s in enumerate(saved_block):
        old = reuse[i] if i < len(reuse) else None
        if s is None:
            outputs.append(None)
        elif old is not None and old.size == n and old.dtype == saved_dtype:
            outputs.append(old.reshape(-1))
        else:
            outputs.append(np.empty(n, saved_dtype))
    write(first, (y_block, *saved_block))

    threads = min(_threads, n // PARALLEL_MIN)
    if threads <= 1:
        run(BLOCK, n)
    else:
        bounds = np.linspace(BLOCK, n, threads + 1).astype(int)
        caller = np.geterr()  # the caller's np.errstate, which worker threads do not inherit

        def task(start: int, stop: int) -> None:
            with np.errstate(**caller):
                run(start, stop)

        futures = [
            _executor(threads).submit(task, int(a), int(b)) for a, b in itertools.pairwise(bounds)
        ]
        for future in futures:
            future.result()
    return y.reshape(x.shape), tuple(None if s is None else s.reshape(x.shape) for s in outputs[1:])
