"""A team of threads for the compiled loops (numba engine only).

The calling thread leads: it writes a job into a small ``control`` array of int64
counters (the arrays' addresses, the element count, the chunk size), opens it, and
then works on it itself, chunk by chunk. Workers run compiled code the whole time they
are busy, without the GIL: each spins until a job opens, joins it, claims chunks until
none is left, and spins again. So neither side waits for the other to wake, which on
a virtual machine takes 30 to 40 us each way, nor for the GIL. A worker that finds no
job for about 4 ms sleeps until the next call wakes it; that call then runs mostly on
the calling thread.

The array is cut into one part per thread, the same parts in every call of its size.
Each thread claims the chunks of its own part first, so that what it wrote in one call
(a forward's f') is still in its core's cache for the next (the backward that reads
it), and then helps with the other parts. A worker that joins late simply does less,
and each element's result is the same whichever thread computes it.

A job (`job_signature`) is a small compiled function of the control array: it reads
the arrays back from it and runs a compiled loop on each chunk it claims. The calling
thread runs the same job, so every element goes through the same machine code.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from tinygrad_act._numba_math import wide_vectors

# The control array: one job at a time.
STATE, DONE, SIZE, COUNT, JOB, LIMIT, VALUES = range(7)
#: Where the job's arrays' addresses go (up to 4), and each worker's sleeping flag.
ARRAYS, SLEEPING = 8, 16
#: Set when a chunk's loop raised (the caller then runs the loop alone, to raise it).
FAILED = 12
#: Workers at most (more threads than this run as this many).
MAX_WORKERS = 48
#: The counters of the next chunk of each thread's part: the calling thread's (0) and
#: each worker's (1, 2, ...), a cache line apart.
PARTS, LINE = SLEEPING + MAX_WORKERS, 8
CONTROL = PARTS + LINE * (MAX_WORKERS + 1)
# STATE holds the job's number, a closed flag, and the number of workers in the job.
_NUMBER, _CLOSED, _ACTIVE = 1 << 10, 1 << 9, (1 << 9) - 1
#: Elements per chunk at least and at most (a 2 MiB page of float64); between, about 8
#: chunks per thread.
CHUNK_MIN, CHUNK_MAX = 2048, 1 << 18
#: How long a worker spins without a job before it sleeps: a woken thread is slow to
#: help (on a virtual machine it often starts on the caller's core), so calls a few
#: milliseconds apart, as in a training loop, should find the workers spinning.
SPIN_SECONDS = 0.004
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _intrinsic(typing: Callable[..., Any]) -> Any:
    """numba's `intrinsic`: a function compiled code calls, written as LLVM IR."""
    return intrinsic(typing)


def _address(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    view = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
        context, builder, array_type, view, [index]
    )


@_intrinsic
def _add(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    """``array[index] += value`` as one atomic step; the value before."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        where = _address(context, builder, signature.args[0], arguments[0], arguments[1])
        return builder.atomic_rmw("add", where, arguments[2], "seq_cst")

    return types.int64(array, index, types.int64), codegen


@_intrinsic
def _swap(typingctx: Any, array: Any, index: Any, old: Any, new: Any) -> Any:
    """Set ``array[index]`` to `new` if it is still `old`, atomically; whether it was."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        where = _address(context, builder, signature.args[0], arguments[0], arguments[1])
        pair = builder.cmpxchg(where, arguments[2], arguments[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return types.boolean(array, index, types.int64, types.int64), codegen


@_intrinsic
def _load(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index]``, read from memory every time (another thread may change it)."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        where = _address(context, builder, signature.args[0], arguments[0], arguments[1])
        return builder.load_atomic(where, "seq_cst", 8)

    return types.int64(array, index), codegen


@_intrinsic
def _store(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    """``array[index] = value``, seen by other threads after everything written before."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        where = _address(context, builder, signature.args[0], arguments[0], arguments[1])
        builder.store_atomic(arguments[2], where, "seq_cst", 8)
        return context.get_dummy_value()

    return types.void(array, index, types.int64), codegen


@_intrinsic
def _pause(typingctx: Any) -> Any:
    """x86's ``pause``, the hint that this thread is spinning; nothing elsewhere."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        if _X86:
            function_type = ir.FunctionType(ir.VoidType(), [])
            name = "llvm.x86.sse2.pause"
            pause = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
                builder.module, function_type, name
            )
            builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen


@_intrinsic
def pointer(typingctx: Any, address: Any) -> Any:
    """An address held in an int64, as a pointer for ``numba.carray``."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        return builder.inttoptr(arguments[0], ir.IntType(8).as_pointer())

    return types.voidptr(types.int64), codegen


@_intrinsic
def _call(typingctx: Any, address: Any, control: Any, thread: Any) -> Any:
    """Call the job at `address` (a `job_signature` function) with `control`, as the
    team's thread `thread` (0 the calling thread, 1 + i worker i)."""

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        view = context.make_array(signature.args[1])(context, builder, arguments[1])
        argument_types = [ir.IntType(64).as_pointer(), ir.IntType(64)]
        function_type = ir.FunctionType(ir.VoidType(), argument_types)
        function = builder.inttoptr(arguments[0], function_type.as_pointer())
        builder.call(function, [view.data, arguments[2]])
        return context.get_dummy_value()

    return types.void(types.int64, control, types.int64), codegen


#: The signature of a job: a function of the control array's address and of the number
#: of the thread that runs it.
job_signature = types.void(types.CPointer(types.int64), types.int64)  # type: ignore[no-untyped-call]


@numba.njit(inline="always", nogil=True)
def claim(control: Any, part: int) -> tuple[int, int, int]:
    """The bounds of the next chunk nobody has claimed, from `part` or else from the
    parts after it in turn, and the part it came from; an empty range when none is left.
    A thread passes its own number first, then the part it last took a chunk from."""
    size, n = control[SIZE], control[COUNT]
    chunks = (n + size - 1) // size
    parts = control[LIMIT] + 1
    for _ in range(parts):
        chunk = _add(control, PARTS + LINE * part, 1)
        if chunk < (part + 1) * chunks // parts:  # the next part's first chunk
            return chunk * size, min(chunk * size + size, n), part
        part = part + 1 if part + 1 < parts else 0
    return n, n, part


@numba.njit(inline="always", nogil=True)
def finish(control: Any) -> None:
    """Count a claimed chunk as done, after its results are written."""
    _add(control, DONE, 1)


@numba.njit(inline="always", nogil=True)
def fail(control: Any) -> None:
    """Note that a chunk's loop raised: `run` repeats the call on the calling thread."""
    _store(control, FAILED, 1)


@numba.njit(inline="always", nogil=True)
def open_job(control: Any, a: Any, b: Any, c: Any) -> None:
    """Open a job over the elements of arrays `a`, `b` and `c` (None for two arrays)."""
    control[ARRAYS] = a.ctypes.data
    control[ARRAYS + 1] = b.ctypes.data
    if c is not None:
        control[ARRAYS + 2] = c.ctypes.data
    n = control[COUNT] = a.size
    control[FAILED] = 0
    control[DONE] = 0
    chunks = (n + control[SIZE] - 1) // control[SIZE]
    parts = control[LIMIT] + 1
    for part in range(parts):  # thread i's part: from chunk i * chunks // parts on
        control[PARTS + LINE * part] = part * chunks // parts
    number = _load(control, STATE) // _NUMBER + 1
    _store(control, STATE, number * _NUMBER)


@numba.njit(inline="always", nogil=True)
def close_job(control: Any) -> int:
    """Wait until every chunk is done and no worker is in the job any more, then close
    it; 1 if a worker that may join was asleep (the caller wakes it), else 0."""
    chunks = (control[COUNT] + control[SIZE] - 1) // control[SIZE]
    while _load(control, DONE) < chunks:
        _pause()
    while True:
        state = _load(control, STATE)
        if state & _ACTIVE == 0 and _swap(control, STATE, state, state | _CLOSED):
            break
        _pause()
    for worker in range(control[LIMIT]):
        if _load(control, SLEEPING + worker):
            return 1
    return 0


@numba.njit(nogil=True, cache=True)
def _serve(control: Any, worker: int, seen: int, spins: int) -> int:
    """Worker `worker`'s loop: join each job that opens, until `spins` pauses pass
    without one; then mark it asleep and return the last job's number it saw."""
    idle = 0
    while True:
        state = _load(control, STATE)
        number = state // _NUMBER
        if number != seen:
            seen = number
            if worker >= control[LIMIT]:  # not in this call's team: it sleeps in time
                continue
            idle = 0
            while not state & _CLOSED and state // _NUMBER == seen:
                if _load(control, DONE) * control[SIZE] >= control[COUNT]:
                    break  # every chunk is done: joining would only delay the close
                if _swap(control, STATE, state, state + 1):
                    _call(control[JOB], control, worker + 1)
                    _add(control, STATE, -1)
                    break
                state = _load(control, STATE)
            continue
        idle += 1
        if idle > spins:
            _store(control, SLEEPING + worker, 1)
            if _load(control, STATE) // _NUMBER == seen:  # else a job opened meanwhile
                return seen
            _store(control, SLEEPING + worker, 0)
            idle = 0
            continue
        _pause()


@numba.njit(nogil=True, cache=True)
def _awake(control: Any, worker: int) -> None:
    _store(control, SLEEPING + worker, 0)


def _pauses(seconds: float) -> int:
    """About how many of `_serve`'s idle turns take `seconds` on this machine."""
    control = np.zeros(CONTROL, np.int64)
    control[LIMIT] = 1
    turns = 1 << 12
    _serve(control, 0, 0, 16)  # compiled, or loaded from disk, before it is timed
    fastest = float("inf")
    for _ in range(3):  # the fastest of three: a noisy neighbour only slows one down
        start = time.perf_counter()
        _serve(control, 0, 0, turns)
        fastest = min(fastest, time.perf_counter() - start)
    return max(16, int(turns * seconds / max(fastest, 1e-9)))


class _Team:
    """The control array, its values (the job's parameters), and the workers."""

    def __init__(self) -> None:
        self.control = np.zeros(CONTROL, np.int64)
        self.values = np.zeros(3, np.float64)  # MAX_PARAMETERS
        self.control[VALUES] = self.values.ctypes.data
        self.control[STATE] = _CLOSED  # job 0, closed
        self.lead = threading.Lock()  # one calling thread leads the team at a time
        self.wakeups: list[threading.Event] = []  # one for each worker
        self.spins = _pauses(SPIN_SECONDS)

    def hire(self, workers: int) -> None:
        while len(self.wakeups) < workers:
            worker = len(self.wakeups)
            self.wakeups.append(threading.Event())  # first: the thread reads it
            thread = threading.Thread(
                target=self.work, args=(worker,), name="tinygrad_act", daemon=True
            )
            try:
                thread.start()
            except BaseException:  # an interrupt, say
                if thread.ident is None:  # it never started: its index is free again
                    self.wakeups.pop()
                raise

    def work(self, worker: int) -> None:
        # a worker without a core of its own would spin in the way of those with one
        spins = self.spins if worker + 2 <= _cores() else 0
        seen = int(self.control[STATE]) // _NUMBER
        wakeup = self.wakeups[worker]
        while True:
            seen = _serve(self.control, worker, seen, spins)
            wakeup.wait()  # returns at once if woken since it last woke
            wakeup.clear()
            _awake(self.control, worker)

    def wake(self, workers: int) -> None:
        """Wake those of the first `workers` workers that sleep."""
        for worker in range(workers):
            if self.control[SLEEPING + worker]:
                self.wakeups[worker].set()


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_team: _Team | None = None  # started by the first call that needs it
_starting = threading.Lock()


def _after_fork() -> None:  # a child process has only the thread that forked
    global _team, _starting
    _team = None
    _starting = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@numba.njit(nogil=True, cache=True)
def _lead(control: Any, job: int, a: Any, b: Any, c: Any) -> int:
    """Open a job over `a`, `b` and `c` (None for two arrays), take part in it as the
    workers do, and close it; `close_job`'s result."""
    open_job(control, a, b, c)
    _call(job, control, 0)
    return close_job(control)


def run(
    alone: Callable[[], Any],
    job: int,
    arrays: tuple[Any, ...],
    threads: int,
    parameters: tuple[float, ...] = (),
) -> None:
    """Run `job` (the address of a compiled job) over `arrays` (2 or 3, 1-d, C-ordered,
    of one size) on the calling thread and up to `threads` - 1 workers, passing it
    `parameters` in the control array's values; or `alone()` if another thread leads
    the team, or if the job's loop raised (so that the exception reaches the caller).
    The job gets the first array's size as its count and the others' addresses only:
    a job may read them as larger (GLU's, see `_gated`)."""
    global _team
    team = _team
    if team is None:
        with _starting:
            team = _team = _team or _Team()
    if not team.lead.acquire(blocking=False):  # another thread leads: run alone
        alone()
        return
    try:
        workers = min(threads - 1, MAX_WORKERS)
        team.hire(workers)
        control = team.control
        control[LIMIT] = workers
        control[JOB] = job
        n = arrays[0].size
        size = max(CHUNK_MIN, min(CHUNK_MAX, n // (8 * (workers + 1))))
        control[SIZE] = size // 256 * 256  # whole cache lines, whole SIMD blocks
        if parameters:
            team.values[: len(parameters)] = parameters
        if control[SLEEPING : SLEEPING + workers].any():
            team.wake(workers)  # they join this job if it lasts long enough, else the next
        third = arrays[2] if len(arrays) == 3 else None
        if _lead(control, job, arrays[0], arrays[1], third):
            team.wake(workers)
        failed = control[FAILED]
    finally:
        team.lead.release()
    if failed:
        alone()


# ---------------------------------------------------------------------------
# The chain rule's product, grad_output * f', for backward


@numba.njit(nogil=True, cache=True, error_model="numpy")
def product(g: Any, f: Any, out: Any) -> None:
    """``out[i] = g[i] * f[i]``, computed in the wider dtype of g and f."""
    wide_vectors()
    for i in range(out.size):
        out[i] = g[i] * f[i]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def step_product(g: Any, codes: Any, out: Any, step: float) -> None:
    """``out[i] = g[i] * f'`` for f' kept as codes (`_engine.STEP_CODES`): 0 for 0, 1 for
    `step` (a float64 holding f' in its own dtype), 2 for NaN. The product is computed
    in float64 (exact for float32 g and f') and then rounded to out's dtype: the bits of
    `product` with f' as floats."""
    wide_vectors()
    for i in range(out.size):
        code = codes[i]
        out[i] = g[i] * (step if code == 1 else 0.0 if code == 0 else np.nan)


_product_jobs: dict[tuple[Any, ...], Any] = {}


def product_job(kinds: tuple[Any, Any, Any]) -> Any:
    """`product`'s job for arrays of the dtypes `kinds` (g, f, out), or `step_product`'s
    where f is uint8 (its `step` the first of the values `run` passes): a C function."""
    from tinygrad_act._engine import compiled_once

    return compiled_once(_product_jobs, kinds, lambda: _product_job(*kinds))


def _product_job(first: Any, second: Any, third: Any) -> Any:
    codes = second == np.uint8  # a constant: numba compiles one branch

    def job(address: Any, thread: int) -> None:
        control = carray(address, CONTROL)
        n = control[COUNT]
        g = carray(pointer(control[ARRAYS]), n, first)
        f = carray(pointer(control[ARRAYS + 1]), n, second)
        out = carray(pointer(control[ARRAYS + 2]), n, third)
        part = thread  # its own part first
        while True:
            start, stop, part = claim(control, part)
            if start >= stop:
                break
            if codes:
                step = carray(pointer(control[VALUES]), 1, np.float64)[0]
                step_product(g[start:stop], f[start:stop], out[start:stop], step)
            else:
                product(g[start:stop], f[start:stop], out[start:stop])
            finish(control)

    # one name for each dtypes: see _engine._unique
    kinds = [np.dtype(kind).name for kind in (first, second, third)]
    job.__qualname__ = "_".join(["product_job", *kinds])
    return numba.cfunc(job_signature, cache=True, error_model="numpy")(job)
