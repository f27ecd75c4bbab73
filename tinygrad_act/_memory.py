"""Large results' memory, kept for the next call of the same size.

Each forward call returns a new array and each backward call another, so a training
loop frees and allocates arrays of the same sizes over and over. Below a few MiB the C
library's allocator hands back the memory just freed. A large array (32 MiB and up,
with glibc) is mapped fresh from the operating system instead, and its first write
faults every page in: at 10^7 elements that took as long as the activation's own
arithmetic, and more on two threads.

So results of `POOL_MIN` bytes and more are views of an array on a `_Lease`: an object
that holds a block of memory and, when the last array using it goes away, puts the
block back in a small pool. The next result of the same size in bytes reuses it, with
its pages already in place. The pool keeps at most `POOL_BYTES` of blocks that no array
uses, dropping the oldest first, and `free_buffers()` empties it.

A result then has ``base`` set (to the array on its lease) and ``flags.owndata`` False,
as a view does; everything else is as for an array from ``np.empty``.
"""

from __future__ import annotations

import collections
import math
import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

#: Results of this many bytes and more take their memory from the pool.
POOL_MIN = 1 << 25
#: The most memory the pool keeps for later, in bytes (its blocks no array uses).
POOL_BYTES = 1 << 28

_free: list[Any] = []  # blocks (1-d uint8 arrays), the most recently freed last
_kept = 0  # their bytes
_lock = threading.Lock()
# Blocks given back while the lock was taken, sorted into `_free` by the next holder.
# NOTE: a lease is freed whenever the last array using it goes, and on Python 3.12 and
# later a garbage collection can run at almost any point, also while this thread holds
# the lock: so a lease's finalizer never waits for the lock.
_returned: collections.deque[Any] = collections.deque()


def empty(shape: int | tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """A new C-ordered array of `shape` and `dtype`, uninitialised, as ``np.empty``; a
    large one takes a freed block of the same size from the pool if there is one."""
    global _kept
    n = shape if isinstance(shape, int) else math.prod(shape)
    nbytes = n * dtype.itemsize
    if nbytes < POOL_MIN:
        return np.empty(shape, dtype)
    block = None
    with _lock:
        _sort_returned()
        for index in range(len(_free) - 1, -1, -1):
            if _free[index].size == nbytes:
                block = _free.pop(index)
                _kept -= nbytes
                break
    _settle()
    if block is None:
        block = np.empty(nbytes, np.uint8)
    # a view of the array on the lease: its base, and its views' base, is an ndarray
    leased: npt.NDArray[Any] = np.asarray(_Lease(block, dtype, n))
    return leased[...] if isinstance(shape, int) else leased.reshape(shape)


def _give_back(block: Any) -> None:
    """Keep `block` for a later result, within the pool's size (a lease's finalizer)."""
    _returned.append(block)
    _settle()


def _settle() -> None:
    """Sort the blocks given back into the pool, unless the lock is taken: its holder
    then does it, as it calls this after it lets go of the lock."""
    while _returned and _lock.acquire(blocking=False):
        try:
            _sort_returned()
        finally:
            _lock.release()


def _sort_returned() -> None:
    """Move the blocks given back into the pool, then drop the oldest beyond its size;
    with the lock held."""
    global _kept
    while _returned:
        block = _returned.popleft()
        if block.size <= POOL_BYTES:
            _free.append(block)
            _kept += block.size
    while _kept > POOL_BYTES:
        _kept -= _free.pop(0).size


def free_buffers() -> None:
    """Return the memory the pool keeps for later results to the system allocator.

    Example:
        >>> import tinygrad_act
        >>> tinygrad_act.free_buffers()
    """
    global _kept
    with _lock:
        _returned.clear()
        _free.clear()
        _kept = 0
    _settle()


def _after_fork() -> None:  # another thread may have held the lock at the fork
    global _free, _kept, _lock, _returned
    _free, _kept, _lock, _returned = [], 0, threading.Lock(), collections.deque()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class _Lease:
    """A block of memory seen as an array (through ``__array_interface__``), given back
    to the pool when no array uses it any more."""

    __slots__ = ("__array_interface__", "block")

    def __init__(self, block: Any, dtype: np.dtype[Any], n: int) -> None:
        self.block = block
        address = block.__array_interface__["data"][0]
        self.__array_interface__ = {
            "shape": (n,),
            "typestr": dtype.str,
            "data": (address, False),
            "version": 3,
        }

    def __del__(self, give_back: Any = _give_back) -> None:
        give_back(self.block)
