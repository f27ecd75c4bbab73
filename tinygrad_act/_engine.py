"""Engines: run an activation's kernel over every element of an array.

A kernel is an activation's math, written once against a namespace ``xp`` of math
functions: ``kernel(xp, x, *parameters) -> (f(x), f'(x))``. Two engines run it.

- **numba** (the ``fast`` extra): ``xp`` is `tinygrad_act._numba_math`, scalar
  functions that compile to SIMD; the kernel is compiled into one loop that reads
  each element once and writes f and f' in the same pass. Loops compile lazily,
  per kernel and dtype, and are cached on disk.
- **numpy** (the fallback): ``xp`` is `tinygrad_act._numpy_math`, NumPy's ufuncs,
  applied to cache-sized blocks of the array.

The dtype rule, for both: every element is computed in float64 and rounded once to
the input's dtype; f' is kept in the input's dtype, float16's in float32 (so that
backward, too, rounds once). Three exceptions, on the compiled engine: a kernel marked
`float32_safe` keeps its accuracy bound in float32 arithmetic, and float32 input runs
through it in float32, on twice as many SIMD lanes; a kernel may have a shorter twin
for float32 input (`float32_input_of`), still computed in float64 and rounded once; and
the f' of a kernel marked `step_derivative` (0 or one other constant) is kept for
backward as one byte an element. A kernel marked `rare_case` runs in blocks, each
through its common case first and again whole only if it holds an element of the rare
one. Large arrays run in chunks on several threads (the compiled loops on
`tinygrad_act._team`, the rest on a thread pool); each element's result depends on that
element alone, so results do not depend on the number of threads.
``TINYGRAD_ACT_ENGINE=numpy`` forces the fallback.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import importlib.util
import inspect
import marshal
import math
import operator
import os
import signal
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
import numpy.typing as npt

from tinygrad_act import _memory, _numpy_math

if TYPE_CHECKING:  # imported where the first pool starts: 4 ms that small arrays never need
    from concurrent.futures import ThreadPoolExecutor

Array = npt.NDArray[Any]
Kernel = Callable[..., tuple[Any, Any]]
_F = TypeVar("_F", bound=Callable[..., Any])

#: Elements per block of the NumPy engine: a kernel's temporaries of this size fit in L2.
BLOCK = 16384
#: Below this many elements, threads cost more than they save (the NumPy engine, the
#: compiled row kernels, and backward's product where it is NumPy's).
PARALLEL_MIN = 4 * BLOCK
#: The compiled elementwise loops' share per thread at least (see `_team`), and the
#: size from which they use more than one thread.
TEAM_MIN = BLOCK
TEAM_START = 2 * TEAM_MIN
ENGINE_VARIABLE = "TINYGRAD_ACT_ENGINE"
THREADS_VARIABLE = "TINYGRAD_ACT_NUM_THREADS"
ENGINES = ("numba", "numpy")
#: How numba compiles kernels: division by zero gives inf or NaN as in NumPy (and
#: vectorizes: Python's error model checks every division), and a * b + c may become
#: one fused multiply-add, which only removes a rounding.
KERNEL_OPTIONS: dict[str, Any] = {"error_model": "numpy", "fastmath": {"contract"}}
#: Loops also release the GIL, for other threads, and are cached on disk.
LOOP_OPTIONS: dict[str, Any] = {**KERNEL_OPTIONS, "nogil": True, "cache": True}


def _choose_engine() -> str:
    requested = os.environ.get(ENGINE_VARIABLE, "").strip().lower()
    if requested not in ("", *ENGINES):
        raise ValueError(
            f"{ENGINE_VARIABLE} must be 'numba' or 'numpy' (or unset), got {requested!r}"
        )
    have_numba = importlib.util.find_spec("numba") is not None
    if requested == "numba" and not have_numba:
        raise ImportError(
            f'{ENGINE_VARIABLE}=numba, but numba is not installed: pip install "tinygrad_act[fast]"'
        )
    return requested or ("numba" if have_numba else "numpy")


# Chosen on first use, not at import: a bad environment variable is then an error
# where the library is used, which a command line can report in one line.
_ENGINE: str | None = None
#: The engine `using` chose for the current thread (or task), over `_ENGINE`.
_USING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tinygrad_act_engine", default=None
)


def engine() -> str:
    """The engine in use: ``"numba"`` (compiled loops) or ``"numpy"`` (the fallback).

    numba is used when it can be imported (``pip install "tinygrad_act[fast]"``);
    the environment variable ``TINYGRAD_ACT_ENGINE=numpy`` forces the fallback.
    """
    chosen = _USING.get()
    if chosen is not None:
        return chosen
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _choose_engine()
    return _ENGINE


def requested() -> bool:
    """Whether an engine was asked for: by `using`, or by ``TINYGRAD_ACT_ENGINE``."""
    return _USING.get() is not None or bool(os.environ.get(ENGINE_VARIABLE, "").strip())


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Run the block on engine `name` ("numba" or "numpy").

    Like `no_grad` and ``np.errstate``, it holds for the calling thread (a context
    variable): other threads keep their engine.
    """
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")
    if name == "numba" and importlib.util.find_spec("numba") is None:
        raise ImportError('numba is not installed: pip install "tinygrad_act[fast]"')
    token = _USING.set(name)
    try:
        yield
    finally:
        _USING.reset(token)


def available_engines() -> tuple[str, ...]:
    """The engines that can run here: numpy always, numba when it is installed."""
    return ENGINES if importlib.util.find_spec("numba") is not None else ("numpy",)


def kernel_helper(function: _F) -> _F:
    """Mark a function that kernels call, so that numba compiles it into them too.

    numba is imported, and the function registered with it, only when the first
    kernel compiles: importing tinygrad_act stays fast.
    """
    _helpers.append(function)
    return function


def float32_safe(kernel: _F) -> _F:
    """Mark a kernel that keeps its accuracy bound when computed in float32 arithmetic.

    The compiled engine then runs float32 input through it in float32, with its
    numeric literals and parameters made float32 (a parameter beyond float32's normal
    range, above its largest or below its smallest normal number but 0, sends the
    call to the float64 loops) and its math functions from
    `tinygrad_act._numba_math32` (``exp``, ``exp_nonpositive``, ``expm1``, ``log1p``,
    ``tanh`` and the exact ones). Use it with
    ``@staticmethod``, in either order. The kernel must not close over local
    variables; one whose source Python cannot find (typed at a prompt) runs as an
    unmarked kernel, in float64.
    """
    function = kernel.__func__ if isinstance(kernel, staticmethod) else kernel
    if not isinstance(function, types.FunctionType):
        raise TypeError(
            f"float32_safe marks a kernel function (xp, x, ...) -> (f, f'), got {kernel!r}"
        )
    if function.__code__.co_freevars:
        raise TypeError(
            f"{function.__qualname__}: a float32_safe kernel must not close over local "
            f"variables ({', '.join(function.__code__.co_freevars)}): its source is "
            "recompiled without them"
        )
    function.float32_safe = function.__code__  # type: ignore[attr-defined]
    return kernel


def _marked(kernel: Kernel, mark: str) -> bool:
    """Whether `kernel` itself carries `mark` (`float32_safe`, `step_derivative`). A
    wrapper made with ``functools.wraps`` copies the attribute, but not the code it names."""
    return getattr(kernel, mark, None) is getattr(kernel, "__code__", False)


@overload
def step_derivative(kernel: _F, *, value: float = 1.0) -> _F: ...


@overload
def step_derivative(kernel: None = None, *, value: float = 1.0) -> Callable[[_F], _F]: ...


def step_derivative(kernel: Any = None, *, value: float = 1.0) -> Any:
    """Mark a kernel whose f' is 0 or `value` (NaN for NaN), `value` a constant: 1 for
    ReLU, Hardtanh or a threshold (``@step_derivative``), 1/6 for Hardsigmoid
    (``@step_derivative(value=1 / 6)``).

    The compiled engine then keeps f' for backward as `STEP_CODES`, one byte an element
    instead of eight, and backward reads it back in the same pass as its product. A
    function that returns f' (``derivative``) still gets floats. Use it with
    ``@staticmethod``, in either order. The kernel's f' must be 0 or `value` exactly as
    its loop computes it (in float32 for a `float32_safe` kernel's float32 loop, where
    `value` is rounded to float32 too): the loop keeps any other f' as NaN.
    """
    value = float(value)
    if not (math.isfinite(value) and value != 0.0):
        raise ValueError(f"step_derivative: value must be finite and not 0, got {value!r}")
    if kernel is None:
        return lambda kernel: step_derivative(kernel, value=value)
    function = kernel.__func__ if isinstance(kernel, staticmethod) else kernel
    function.step_derivative = function.__code__  # type: ignore[union-attr]
    with Quietly():  # NOTE: a value beyond float32's range rounds to inf, as f' would
        function.step_values = (value, float(np.float32(value)))  # type: ignore[union-attr]
    return kernel


#: `step_values` of a kernel without them: f' 1.
UNIT_STEPS = (1.0, 1.0)


def steps_of(kernel: Kernel) -> tuple[float, float]:
    """The f' a `step_derivative` kernel's code 1 stands for (`STEP_CODES`), and that
    value rounded to float32: its ``step_values``."""
    steps: tuple[float, float] = getattr(kernel, "step_values", UNIT_STEPS)
    return steps


def step_value(kernel: Kernel) -> float:
    """The f' a `step_derivative` kernel's code 1 stands for (`STEP_CODES`)."""
    return steps_of(kernel)[0]


def _stand_in(kernel: Kernel, twin: Kernel) -> Kernel:
    """`twin`, which the compiled engine runs for `kernel` (`compiled_form_of`,
    `float32_input_of`), once checked: backward reads the step codes a twin keeps as
    `kernel`'s `step_value` says."""
    if (
        twin is not kernel
        and _marked(twin, "step_derivative")
        and step_value(twin) != step_value(kernel)
    ):
        raise TypeError(
            f"{twin.__qualname__}: marked step_derivative with value {step_value(twin)!r}, "
            f"but it stands in for {kernel.__qualname__}, whose f' step is "
            f"{step_value(kernel)!r}: mark both with the same value"
        )
    return twin


def rare_case(predicate: Callable[..., Any]) -> Callable[[_F], _F]:
    """Mark a kernel with a branch that few elements take, as ``xp.rarely(c)`` with
    ``c = predicate(xp, x, *parameters)`` (a `kernel_helper`): SiLU's rescaling below
    x = -80, for one.

    The compiled engine then runs blocks of `RARE_BLOCK` elements through the kernel
    with ``xp.rarely`` False, so that LLVM drops the branch's work, and counts the
    elements for which `predicate` holds in the same pass; a block that has any runs
    again, through the whole kernel. The results are those of the whole kernel (a NaN's
    sign aside, which depends on an element's place in a vectorized loop anyway). A
    block with a rare element costs about twice as much: an array with one in every
    block took 1.5 to 1.7 times as long for SiLU. Use it with ``@staticmethod``, in
    either order.
    """

    def mark(kernel: _F) -> _F:
        function = kernel.__func__ if isinstance(kernel, staticmethod) else kernel
        function.rare_case = (function.__code__, predicate)  # type: ignore[attr-defined]
        return kernel

    return mark


def _rare_case(kernel: Kernel) -> Callable[..., Any] | None:
    """The predicate `kernel` itself was marked with by `rare_case`, if any."""
    code, predicate = getattr(kernel, "rare_case", (None, None))
    return predicate if code is getattr(kernel, "__code__", False) else None


#: Elements per block of a `rare_case` kernel's loops: a block that runs again is read
#: from the core's L2.
RARE_BLOCK = 4096


def _common_namespace(space: Any) -> Any:
    """`space` with ``rarely`` always False: the namespace of a `rare_case` kernel's
    common loop. A module in `sys.modules`, as numba's disk cache wants."""
    from tinygrad_act import _numba_math

    name = f"{space.__name__}_common"
    common = sys.modules.get(name)
    if common is None:
        common = types.ModuleType(name)
        common.__dict__.update({k: v for k, v in vars(space).items() if not k.startswith("__")})
        common.rarely = _numba_math._never  # type: ignore[attr-defined]
        sys.modules[name] = common
    return common


def float32_when(condition: Callable[..., bool]) -> Callable[[_F], _F]:
    """Mark a `float32_safe` kernel safe in float32 only for parameters that satisfy
    ``condition(*parameters)``; for others, float32 input takes its float64 loops."""

    def mark(kernel: _F) -> _F:
        kernel.float32_when = condition  # type: ignore[attr-defined]
        return kernel

    return mark


def float32_input_of(kernel: Kernel) -> Callable[[_F], _F]:
    """Mark a kernel that the compiled engine runs instead of `kernel` for float32 input.

    For a kernel whose float64 accuracy costs steps that a float32 result does not
    need: exact GELU's Phi(x), carried in two parts through a long polynomial for
    float64, is within 1e-9 of exact from a shorter one in plain float64 arithmetic,
    which rounds to float32 as well. The twin takes the same parameters; it may be
    `float32_safe`. The NumPy engine and other array libraries run `kernel`.
    """

    def mark(twin: _F) -> _F:
        kernel.float32_input = twin  # type: ignore[attr-defined]
        return twin

    return mark


def compiled_form_of(kernel: Kernel) -> Callable[[_F], _F]:
    """Mark a kernel that the compiled engine runs instead of `kernel` for float64 and
    float16 input (float32 input takes a twin from `float32_input_of` where there is one).

    For a kernel whose written form costs steps that the compiled engine's scalar
    functions can spare: exact GELU's Phi(x) and phi(x) each take an exponential of
    -x^2/2 through NumPy's ``exp`` and the ``erfc`` of the namespace, where
    `_numba_math.normal_tail` computes it once for both. The twin takes the same
    parameters and may call functions that only the compiled namespace has. The NumPy
    engine and other array libraries run `kernel`.
    """

    def mark(twin: _F) -> _F:
        kernel.compiled_form = twin  # type: ignore[attr-defined]
        return twin

    return mark


def _compiled_form(kernel: Kernel) -> Kernel:
    """The kernel the compiled engine runs for `kernel` in float64 (`compiled_form_of`)."""
    return _stand_in(kernel, getattr(kernel, "compiled_form", kernel))


#: f' of a `step_derivative` kernel as the compiled engine keeps it: the code 0 for 0, 1
#: for the kernel's `step_value`, 2 for anything else (NaN). ReLU then moves 34 bytes an
#: element through forward and backward in float64 instead of 48 (x, y and f'; g, f' and
#: the result).
STEP_CODES = np.dtype(np.uint8)


def step_table(value: float, dtype: np.dtype[Any]) -> Array:
    """What each of `STEP_CODES` stands for, in `dtype`: 0, `value` and NaN."""
    return np.array([0.0, value, np.nan], dtype)


_helpers: list[Callable[..., Any]] = []
_registered: set[Callable[..., Any]] = set()


def _register_helpers() -> None:
    from numba.extending import register_jitable

    for function in _helpers:
        if function not in _registered:
            register_jitable(inline="always")(function)  # registers `function` itself
            _registered.add(function)


# ---------------------------------------------------------------------------
# dtypes


def input_dtype(dtype: np.dtype[Any], owner: str) -> np.dtype[Any]:
    """The dtype an input of `dtype` is taken in: float16/32/64 in native byte order
    (converted exactly), float64 for bool and integers; a `TypeError` naming the dtype
    for anything else (complex, object, strings, datetimes, long double)."""
    if dtype.kind == "f" and dtype.itemsize <= 8:
        native: np.dtype[Any] = dtype.newbyteorder("=")
        return native
    if dtype.kind in "biu":
        return _FLOAT64
    raise TypeError(
        f"{owner} expects real floating-point input (float16, float32 or float64; "
        f"bool and integers are converted to float64), got dtype {dtype}"
    )


def derivative_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype f' is kept in for input of `dtype`: its own, float16's in float32."""
    return _FLOAT32 if dtype.itemsize == 2 else dtype


_FLOAT16, _FLOAT32, _FLOAT64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


# ---------------------------------------------------------------------------
# Threads


def _default_threads() -> int:
    configured = os.environ.get(THREADS_VARIABLE)
    if configured:
        try:
            n = int(configured)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"{THREADS_VARIABLE} must be a positive integer, got {configured!r}"
            ) from None
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_threads: int | None = None  # from the environment on first use, like the engine
_pool_lock = threading.Lock()
# Pools are never shut down: another thread may be submitting to an older one.
_pools: list[tuple[int, ThreadPoolExecutor]] = []


def set_num_threads(n: int) -> None:
    """Use `n` threads for large arrays (default: the environment variable
    ``TINYGRAD_ACT_NUM_THREADS``, else every available core). The compiled elementwise
    loops give each thread 16,384 elements at least; the NumPy engine and the softmaxes
    keep arrays under 65,536 elements on the calling thread."""
    global _threads
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n!r}")
    _threads = int(n)


def get_num_threads() -> int:
    """The number of threads large arrays run on."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def _executor(workers: int) -> ThreadPoolExecutor:
    from concurrent.futures import ThreadPoolExecutor

    with _pool_lock:
        if not _pools or _pools[-1][0] < workers:
            _pools.append((workers, ThreadPoolExecutor(workers, thread_name_prefix="tinygrad_act")))
        return _pools[-1][1]


def run_chunks(n: int, task: Callable[[int, int], object]) -> None:
    """Call ``task(start, stop)`` over [0, n) in block-aligned chunks, on several threads.

    The calling thread runs the first chunk itself. Worker threads run under the
    caller's `np.errstate`, which they do not inherit.
    """
    threads = min(get_num_threads(), n // PARALLEL_MIN)
    if threads <= 1:
        task(0, n)
        return
    step = -(-n // threads // BLOCK) * BLOCK
    _run_bounds([(start, min(start + step, n)) for start in range(0, n, step)], task)


def run_parts(parts: int, elements: int, task: Callable[[int, int], object]) -> None:
    """Call ``task(first, last)`` over [0, parts) in contiguous ranges, one per thread,
    for work of `elements` elements in all (several threads from `PARALLEL_MIN` up).

    For work whose results must not depend on the split: each part is computed whole by
    one thread, whichever it is (PReLU's channels, each with its slope's sum).
    """
    threads = min(get_num_threads(), elements // PARALLEL_MIN, parts)
    if threads <= 1:
        task(0, parts)
        return
    _run_bounds([(parts * i // threads, parts * (i + 1) // threads) for i in range(threads)], task)


def _run_bounds(bounds: list[tuple[int, int]], task: Callable[[int, int], object]) -> None:
    """``task(start, stop)`` for each of `bounds`: the first on the calling thread, the
    others on the pool, under the caller's `np.errstate`."""
    caller = np.geterr()

    def run(start: int, stop: int) -> None:
        with np.errstate(**caller):
            task(start, stop)

    pool = _executor(len(bounds) - 1)
    futures = [pool.submit(run, start, stop) for start, stop in bounds[1:]]
    try:
        task(*bounds[0])
    finally:
        for future in futures:
            future.result()


# ---------------------------------------------------------------------------
# Evaluation


def _ignore_all() -> Any:
    """NumPy's error state that ignores everything, and the context variable holding the
    current one (NumPy 2.x keeps it there); None where NumPy has neither."""
    try:
        from numpy._core._ufunc_config import _extobj_contextvar  # type: ignore[attr-defined]
        from numpy._core.umath import _make_extobj

        return _extobj_contextvar, _make_extobj(all="ignore")
    except (ImportError, AttributeError, TypeError):  # another NumPy: np.errstate
        return None


_IGNORE_ALL = _ignore_all()


class Quietly:
    """``np.errstate(all="ignore")`` at a third of its cost: the IEEE results (inf, 0,
    NaN) without warnings. errstate takes about 1 us to enter and leave, as long as the
    rest of a forward of one element; setting NumPy's error-state context variable
    directly takes a third of that. Like errstate, it holds for the calling thread."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        if _IGNORE_ALL is None:
            self._token: Any = np.errstate(all="ignore")
            self._token.__enter__()
        else:
            self._token = _IGNORE_ALL[0].set(_IGNORE_ALL[1])

    def __exit__(self, *exception: object) -> None:
        if _IGNORE_ALL is None:
            self._token.__exit__(*exception)
        else:
            _IGNORE_ALL[0].reset(self._token)


def evaluate(
    kernel: Kernel,
    parameters: tuple[float, ...],
    x: Array,
    *,
    derivative: bool,
    reuse: Array | None = None,
    compiled: bool = True,
    for_backward: bool = False,
) -> tuple[Array, Array | None]:
    """f(x) and, if `derivative`, f'(x) of `kernel` for every element of `x`.

    `x` is a float16, float32 or float64 array in native byte order. Returns fresh
    arrays in the shape of `x`: f in its dtype, f' in `derivative_dtype`. With
    `for_backward`, f' is what a layer keeps for `chain_rule`: a `step_derivative`
    kernel's `STEP_CODES` on the compiled engine. `reuse` may be an array that
    `evaluate` returned as f' before, to overwrite instead of allocating where it has
    the shape and dtype of this call's f'.
    `compiled=False` runs the NumPy engine whatever the engine in use.
    """
    flat = x if x.ndim == 1 else x.reshape(-1)  # a view when x is contiguous, else a copy
    if compiled and (_USING.get() or _ENGINE or engine()) == "numba":
        key = (kernel, x.dtype)
        chosen = _chosen.get(key) or _choose_loops(key)
        if chosen[0] is not None:
            direct: list[Any] | None = chosen[2]
            if chosen[1] and parameters:  # the float32 loops take float32 parameters
                if _fit_float32(parameters, kernel):
                    parameters = tuple([np.float32(p) for p in parameters])
                else:  # one beyond float32's normal range (or NaN): the float64 loops take it
                    chosen = _compiled(_compiled_form(kernel)), False, [None, None]
                    direct = None
            elif parameters and not _floats(parameters):
                direct = None  # an int, say: numba compiles (and picks) loops for it
            return _evaluate_compiled(
                chosen, direct, parameters, x, flat, derivative, reuse, for_backward, kernel
            )
    n = x.size
    dtype = derivative_dtype(x.dtype)
    if reuse is not None and reuse.itemsize == 1:  # codes the compiled engine kept
        reuse = None
    if n == 1 and kernel.__module__ in _SCALAR_MODULES:
        return _evaluate_scalar(kernel, parameters, x, flat, dtype, derivative)
    if n <= BLOCK:  # one block: no threads, no copies the kernel has not made already
        with Quietly():
            result = kernel(_numpy_math, flat.astype(_FLOAT64, copy=False), *parameters)
            # the kernel's own fresh arrays where it made them: `reuse` would cost a copy
            y = _fresh(result[0], x.dtype, n, flat)
            d = _fresh(result[1], dtype, n, flat, y) if derivative else None
        if x.ndim == 1:
            return y, d
        return y.reshape(x.shape), None if d is None else d.reshape(x.shape)
    y = _memory.empty(n, x.dtype)
    d = None
    if derivative:
        d = reuse.reshape(-1) if reuse is not None else _memory.empty(n, dtype)

    def task(start: int, stop: int) -> None:
        for begin in range(start, stop, BLOCK):
            block = slice(begin, min(begin + BLOCK, stop))
            result = kernel(_numpy_math, flat[block].astype(_FLOAT64, copy=False), *parameters)
            y[block] = result[0]
            if d is not None:
                d[block] = result[1]

    with np.errstate(all="ignore"):  # the IEEE results (inf, 0, NaN), quietly
        run_chunks(n, task)
    return y.reshape(x.shape), None if d is None else d.reshape(x.shape)


#: Modules whose kernels are written for NumPy scalars as well as arrays (no indexing,
#: no shapes), so that one element can run on a NumPy scalar.
_SCALAR_MODULES = frozenset({"tinygrad_act.activations"})


def _evaluate_scalar(
    kernel: Kernel,
    parameters: tuple[float, ...],
    x: Array,
    flat: Array,
    dtype: np.dtype[Any],
    derivative: bool,
) -> tuple[Array, Array | None]:
    """`evaluate` of one element on the NumPy engine: the kernel on a NumPy float64
    scalar, whose arithmetic skips the ufunc machinery (0.5 us an operation on a
    1-element array, about 0.1 us on a scalar). The same C loops run, so the bits
    are those of the array path."""
    with Quietly():
        f, d = kernel(_numpy_math, _FLOAT64.type(flat[0]), *parameters)
        y = np.empty(1, x.dtype)
        y[0] = f  # rounded once to x's dtype
        kept = None
        if derivative:
            kept = np.empty(1, dtype)
            kept[0] = d
    if x.ndim == 1:
        return y, kept
    return y.reshape(x.shape), None if kept is None else kept.reshape(x.shape)


def _fresh(
    value: Any, dtype: np.dtype[Any], n: int, source: Array, taken: Array | None = None
) -> Array:
    """`value` (a kernel's result) as a new 1-d array of `dtype` that nothing else holds:
    not `source`, nor `taken` (f, where a kernel returned one array as f and f')."""
    if (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and value.shape == (n,)
        and value.base is None  # a ufunc's fresh result, not a view of the input
        and value is not source
        and value is not taken
    ):
        return value
    out = np.empty(n, dtype)
    out[...] = value  # a scalar (a constant f') broadcasts
    return out


def _evaluate_compiled(
    chosen: Chosen,
    direct: list[Any] | None,
    parameters: tuple[float, ...],
    x: Array,
    flat: Array,
    derivative: bool,
    reuse: Array | None,
    for_backward: bool,
    kernel: Kernel,
) -> tuple[Array, Array | None]:
    """`evaluate` on `chosen`'s loops (`kernel`'s); `direct`, their machine code (see
    `_choose_loops`), or None where the parameters are of other types."""
    both, value_only = chosen[0]  # type: ignore[misc]
    half = x.itemsize == 2  # float16
    if half:  # numba has no float16: widen (exactly); f in float64, rounded once at the end
        flat = flat.astype(_FLOAT64)
    elif not flat.flags.carray:  # C-contiguous, aligned and writeable
        flat = flat.copy()  # one compiled loop per dtype, for C-ordered writeable arrays
    n = x.size
    new = np.empty if n < TEAM_START else _memory.empty  # no more work for small arrays
    y = new(n, flat.dtype)
    d = None
    codes = False  # whether f' comes out of the loop as STEP_CODES
    if derivative:
        codes = both.step_derivative
        if reuse is None or (reuse.itemsize == 1) != codes:  # codes (1 byte) or floats
            d = new(n, STEP_CODES if codes else derivative_dtype(x.dtype))
        else:
            d = reuse if reuse.ndim == 1 else reuse.reshape(-1)
    if n < TEAM_START or get_num_threads() == 1:
        # the loop's machine code, without numba's dispatch (0.1 to 0.2 us a call)
        if d is None:
            if direct is not None and direct[1] is not None:
                direct[1](flat, y, parameters)
            else:
                value_only(flat, y, parameters)
                if direct is not None:
                    direct[1] = machine_code(value_only, (flat, y, parameters))
        elif direct is not None and direct[0] is not None:
            direct[0](flat, y, d, parameters)
        else:
            both(flat, y, d, parameters)
            if direct is not None:
                direct[0] = machine_code(both, (flat, y, d, parameters))
                if not half:  # see `express`
                    _express[kernel, x.dtype] = [direct[0], d.dtype, chosen[1], ((), ())]
    else:
        from tinygrad_act import _team

        threads = min(get_num_threads(), n // TEAM_MIN)
        kinds = tuple([_kind(p) for p in parameters])
        if d is None:
            job = value_only.jobs((flat.dtype.type, y.dtype.type), kinds)
            alone = lambda: value_only(flat, y, parameters)  # noqa: E731
            _team.run(alone, job.address, (flat, y), threads, parameters)
        else:
            job = both.jobs((flat.dtype.type, y.dtype.type, d.dtype.type), kinds)
            alone = lambda: both(flat, y, d, parameters)  # noqa: E731
            _team.run(alone, job.address, (flat, y, d), threads, parameters)
    if half:
        with np.errstate(over="ignore"):  # NOTE: float16 results above 65504 round to inf
            y = y.astype(_FLOAT16)
    if codes and not for_backward:
        d = step_table(step_value(kernel), derivative_dtype(x.dtype))[d]
    if x.ndim == 1:
        return y, d
    return y.reshape(x.shape), None if d is None else d.reshape(x.shape)


#: `express`'s lanes: for (kernel, float32 or float64), the machine code of the loop of
#: f and f' for float parameters (float32 ones for a float32 loop), the dtype it keeps
#: f' in, whether it is a float32 loop, and the last parameters it converted to
#: float32 with their conversion.
_express: dict[tuple[Kernel, np.dtype[Any]], list[Any]] = {}


def express(
    kernel: Kernel, parameters: tuple[float, ...], x: Array, reuse: Array | None
) -> tuple[Array, Array] | None:
    """``evaluate(kernel, parameters, x, derivative=True, reuse=reuse,
    for_backward=True)`` for the common small call, in about 60% of its time, or None
    where the call is not the common one.

    The common call: numba's engine, under `TEAM_START` elements of float32 or
    float64, C-ordered, with float parameters, once `evaluate` has run that loop.
    `reuse` must be None or what such a call returned as f' for the shape and dtype
    of `x`.
    """
    lane = _express.get((kernel, x.dtype))
    if (
        lane is None
        or x.size >= TEAM_START
        or not x.flags.carray  # the machine code reads x as C-ordered and aligned
        or (_USING.get() or _ENGINE) != "numba"
    ):
        return None
    code, kept, native, last = lane
    if not parameters:
        pass
    elif native:  # the same float objects as last time, or floats to convert
        same = last[0]
        if not (
            len(same) == len(parameters)
            and same[0] is parameters[0]
            and same[-1] is parameters[-1]
            and (len(parameters) < 3 or all(map(operator.is_, same, parameters)))
        ):
            if not (_floats(parameters) and _fit_float32(parameters, kernel)):
                return None  # an int, say, or a float beyond float32's normal range, or NaN
            lane[3] = last = parameters, tuple([np.float32(p) for p in parameters])
        parameters = last[1]
    elif not _floats(parameters):
        return None
    y = np.empty(x.shape, x.dtype)
    d = reuse if reuse is not None and reuse.dtype == kept else np.empty(x.shape, kept)
    if x.ndim == 1:
        code(x, y, d, parameters)
        return y, d
    kept_flat = d.reshape(-1)  # a view of a C-ordered d; else a copy, which is returned
    code(x.reshape(-1), y.reshape(-1), kept_flat, parameters)
    return y, kept_flat.reshape(x.shape)


def _kind(parameter: Any) -> Any:
    """The NumPy type numba gives `parameter` (a Python int is int64 everywhere)."""
    if isinstance(parameter, int) and not isinstance(parameter, bool):
        return np.int64
    return np.asarray(parameter).dtype.type


def chain_rule(grad_output: Array, derivative: Array, dtype: np.dtype[Any]) -> Array:
    """``grad_output * derivative`` in the wider of the two dtypes, rounded once to `dtype`
    (`chain_rule_steps` for f' kept as `STEP_CODES`)."""
    n = derivative.size
    if n < TEAM_START and grad_output.dtype == dtype:  # the common small call, lean
        # (f' of float16 input is float32: the paths below)
        product = _products.get(dtype) if derivative.dtype == dtype else None
        if (
            product is not None
            and grad_output.flags.carray  # C-ordered and aligned (and writeable)
            and derivative.flags.c_contiguous  # this package's own: aligned
            and (_USING.get() or _ENGINE) == "numba"
        ):
            result = np.empty(derivative.shape, dtype)
            if derivative.ndim == 1:
                product(grad_output, derivative, result)
            else:
                product(grad_output.reshape(-1), derivative.reshape(-1), result.reshape(-1))
            return result
    if derivative.dtype == STEP_CODES:
        raise TypeError("chain_rule: f' kept as step codes goes to chain_rule_steps")
    if (
        (_USING.get() or _ENGINE or engine()) == "numba"
        and grad_output.itemsize != 2  # numba has no float16
        and dtype.itemsize != 2
        and grad_output.flags.carray  # one compiled loop per dtype pair
    ):
        if n < TEAM_START:
            result = np.empty(derivative.shape, dtype)
            g, f, out = grad_output.reshape(-1), derivative.reshape(-1), result.reshape(-1)
            loop = _product_loop or _product()
            loop(g, f, out)
            if g.dtype == f.dtype == dtype and dtype not in _products and f.flags.carray:
                _products[dtype] = machine_code(loop, (g, f, out))  # for the next calls
            return result
        # the team's workers read f' from its address, as C-ordered
        if get_num_threads() > 1 and derivative.flags.carray:
            out = _memory.empty(n, dtype)
            g, f = grad_output.reshape(-1), derivative.reshape(-1)
            product = _product_loop or _product()
            team = _team_module
            job = team.product_job((g.dtype.type, f.dtype.type, out.dtype.type))
            threads = min(get_num_threads(), n // TEAM_MIN)
            team.run(lambda: product(g, f, out), job.address, (g, f, out), threads)
            return out.reshape(derivative.shape)
    small = n < PARALLEL_MIN
    if small and derivative.ndim and grad_output.dtype == derivative.dtype == dtype:
        with Quietly():  # inf * 0 is NaN, a huge product inf: quietly
            same: Array = grad_output * derivative
        return same
    # NOTE: float16 times float32 is exact in float64, so float16 results round once
    wide = _FLOAT64 if dtype.itemsize == 2 else None
    if small:
        result = np.empty(derivative.shape, dtype)
        with Quietly():
            np.multiply(grad_output, derivative, out=result, dtype=wide, casting="unsafe")
        return result
    out = _memory.empty(n, dtype)
    result = out.reshape(derivative.shape)
    g, f = grad_output.reshape(-1), derivative.reshape(-1)
    with np.errstate(all="ignore"):  # for the worker threads too (see run_chunks)
        run_chunks(
            out.size,
            lambda a, b: np.multiply(g[a:b], f[a:b], out=out[a:b], dtype=wide, casting="unsafe"),
        )
    return result


def chain_rule_steps(
    grad_output: Array, codes: Array, dtype: np.dtype[Any], steps: tuple[float, float]
) -> Array:
    """`chain_rule` for f' kept as `STEP_CODES`, with `steps` the kernel's
    ``step_values``: the value code 1 stands for, and that value rounded to float32 (f'
    of float32 and float16 input is kept in float32)."""
    step = steps[dtype.itemsize != 8]
    if codes.size < TEAM_START and grad_output.dtype == dtype:  # the common small call
        product = _step_products.get(dtype)
        if (
            product is not None
            and grad_output.flags.carray  # C-ordered and aligned (and writeable)
            and codes.flags.c_contiguous  # this package's own
            and (_USING.get() or _ENGINE) == "numba"
        ):
            result = np.empty(codes.shape, dtype)
            if codes.ndim == 1:
                product(grad_output, codes, result, step)
            else:
                product(grad_output.reshape(-1), codes.reshape(-1), result.reshape(-1), step)
            return result
    return _chain_rule_codes(grad_output, codes, dtype, step)


_product_loop: Any = None
_team_module: Any = None
#: The product's machine code for g, f' and the result all of one dtype.
_products: dict[np.dtype[Any], Any] = {}
#: `_team.step_product`'s machine code for g and the result both of one dtype (and a
#: float64 value of code 1).
_step_products: dict[np.dtype[Any], Any] = {}


def _chain_rule_codes(grad_output: Array, codes: Array, dtype: np.dtype[Any], step: float) -> Array:
    """`chain_rule_steps`'s work: ``grad_output`` times 0, `step` or NaN, with the bits
    of the product with f' as floats (in f''s dtype, the wider of it and grad_output's,
    float64 for a float16 result), rounded once to `dtype`; one pass reads the codes and
    writes the product."""
    n = codes.size
    if (
        (_USING.get() or _ENGINE or engine()) != "numba"
        or grad_output.itemsize == 2  # numba has no float16
        or dtype.itemsize == 2
    ):
        values = step_table(step, derivative_dtype(dtype))
        wide = _FLOAT64 if dtype.itemsize == 2 else None
        if n < PARALLEL_MIN:
            result = np.empty(codes.shape, dtype)
            with Quietly():
                np.multiply(grad_output, values[codes], out=result, dtype=wide, casting="unsafe")
            return result
        out = _memory.empty(n, dtype)
        g, f = grad_output.reshape(-1), codes.reshape(-1)
        with np.errstate(all="ignore"):  # for the worker threads too (see run_chunks)
            run_chunks(
                n,
                lambda a, b: np.multiply(
                    g[a:b], values[f[a:b]], out=out[a:b], dtype=wide, casting="unsafe"
                ),
            )
        return out.reshape(codes.shape)
    g, f = grad_output.reshape(-1), codes.reshape(-1)
    if not g.flags.carray:  # one compiled loop per dtype pair, for C-ordered arrays
        g = g.copy()
    if _team_module is None:
        _product()  # imports the team's module
    team = _team_module
    if n < TEAM_START or get_num_threads() == 1:
        out = np.empty(n, dtype) if n < TEAM_START else _memory.empty(n, dtype)
        team.step_product(g, f, out, step)
        if g.dtype == dtype and dtype not in _step_products:  # for the next calls
            _step_products[dtype] = machine_code(team.step_product, (g, f, out, step))
    else:
        out = _memory.empty(n, dtype)
        job = team.product_job((g.dtype.type, f.dtype.type, out.dtype.type))
        threads = min(get_num_threads(), n // TEAM_MIN)
        alone = lambda: team.step_product(g, f, out, step)  # noqa: E731
        team.run(alone, job.address, (g, f, out), threads, (step,))
    return out.reshape(codes.shape)


def _product() -> Any:
    """`tinygrad_act._team.product`, imported on first use (it imports numba)."""
    global _product_loop, _team_module
    from tinygrad_act import _team

    _team_module = _team
    _product_loop = _team.product
    return _product_loop


# ---------------------------------------------------------------------------
# Compiling kernels with numba


class _CompileLock:
    """A lock held while numba compiles a kernel's loops (or loads them from its disk
    cache), a thread team's job (see _team), or a row kernel's first call (see _rows).

    On the main thread, a Ctrl-C (SIGINT) that arrives while it is held is raised when it
    is let go. NOTE: numba and llvmlite run Python code while they compile, some of it
    called back from LLVM (llvmlite's object cache), where a KeyboardInterrupt is reported
    as ignored and lost; and one raised inside ``exec`` of a string (as numba's and the
    dataclasses' generated code runs) makes CPython 3.11 end the process by SIGINT at exit,
    even where it was caught (`tinygrad_act.cli` clears that).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # the main thread's SIGINT handler it replaced, and the signals held back
        self._held: tuple[Any, list[int]] | None = None

    def __enter__(self) -> None:
        # NOTE: the handler that holds SIGINT back is in place before the lock is taken,
        # and stays until it is let go: a KeyboardInterrupt between the two would leave
        # the lock taken for good
        held = None
        # (not where SIGINT's handler was set outside Python: it could not be put back)
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not None
        ):
            received: list[int] = []
            with contextlib.suppress(ValueError):  # not the main interpreter
                previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(1))
                held = (previous, received)
        try:
            self._lock.acquire()
        except BaseException:
            _put_back(held)
            raise
        self._held = held  # the main thread's only: other threads leave it None

    def __exit__(self, *exception: object) -> None:
        held = None
        if threading.current_thread() is threading.main_thread():
            held, self._held = self._held, None
        self._lock.release()
        _put_back(held)


def _put_back(held: tuple[Any, list[int]] | None) -> None:
    """Put back the SIGINT handler `_CompileLock` replaced, and send it the SIGINT held
    back, if one came."""
    if held is not None:
        previous, received = held
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # to the handler it had: here, at once


#: See `_CompileLock`.
compile_lock = _CompileLock()


def compiled_once(cache: dict[Any, Any], key: Any, build: Callable[[], Any]) -> Any:
    """``cache[key]``, made by `build()` the first time, under `compile_lock`: one
    thread compiles it, and the others wait for it and take it."""
    value = cache.get(key)
    if value is None:
        with compile_lock:
            value = cache.get(key)
            if value is None:
                value = cache[key] = build()
    return value


_loops: dict[tuple[Kernel, bool], tuple[Any, Any] | None] = {}


#: What each (kernel, dtype) runs on (see `_choose_loops`).
Chosen = tuple[tuple[Any, Any] | None, bool, list[Any]]
_chosen: dict[tuple[Kernel, np.dtype[Any]], Chosen] = {}

#: Numbers from here up in magnitude round to inf in float32.
_FLOAT32_LIMIT = 3.4028235677973366e38
#: float32's smallest normal number: below it a float32 keeps fewer than 24 bits.
_FLOAT32_TINY = 2.0**-126


def _fit_float32(parameters: tuple[Any, ...], kernel: Kernel) -> bool:
    """Whether every parameter rounds to a finite float32 with all its 24 bits: 0, or
    a magnitude from float32's smallest normal number to its largest (NaN does not fit),
    and `kernel`'s own condition holds where it has one (`float32_when`). A subnormal
    parameter would lose most of its bits, and one that rounds to 0 would make a
    quotient by it inf. A NumPy scalar is compared as a Python number:
    float32(0.5) < 3.4028235677973366e38 would round the limit to float32, which
    overflows."""
    for p in parameters:
        size = abs(p.item() if isinstance(p, np.generic) else p)
        if not (_FLOAT32_TINY <= size < _FLOAT32_LIMIT or size == 0):
            return False
    condition = getattr(kernel, "float32_when", None)
    return condition is None or bool(condition(*parameters))


def float32_is_float64_rounded(kernel: Kernel, parameters: tuple[Any, ...]) -> bool:
    """Whether the compiled engine gives float32 input to `kernel` with `parameters`
    the float64 kernel's results rounded once: not where it computes them in float32
    arithmetic (`float32_safe`) or by a twin (`float32_input_of`)."""
    if getattr(kernel, "float32_input", None) is not None:
        return False
    kernel = _compiled_form(kernel)  # what `_choose_loops` runs
    return not (_marked(kernel, "float32_safe") and _fit_float32(parameters, kernel))


#: The parameter types of float64 loops' machine code (see `machine_code`).
_FLOAT_TYPES = frozenset({float, np.float64})


def _floats(parameters: tuple[Any, ...]) -> bool:
    """Whether the (one or more) parameters are all of `_FLOAT_TYPES`."""
    # the common cases, one or two Python floats, without building a set of types
    if type(parameters[0]) is float is type(parameters[-1]) and len(parameters) < 3:
        return True
    return _FLOAT_TYPES.issuperset(map(type, parameters))


def _choose_loops(key: tuple[Kernel, np.dtype[Any]]) -> Chosen:
    """`_chosen`'s entry for `key`, three things:

    - a `float32_safe` kernel's float32 loops for float32 input, else its float64
      loops (None where it cannot compile), those of its compiled form where it has one
      (`compiled_form_of`); for float32 input, those of the kernel's twin where it has
      one (`float32_input_of`);
    - whether they compute in float32;
    - their machine code for arrays of that dtype and float parameters (float32 ones
      for float32 loops), both loops' in that order, each None until it is first run
      with parameters of those types.
    """
    kernel, dtype = key
    twin = getattr(kernel, "float32_input", None) if dtype == _FLOAT32 else None
    kernel = _compiled_form(kernel) if twin is None else _stand_in(kernel, twin)
    loops = None
    if dtype == _FLOAT32 and _marked(kernel, "float32_safe"):
        loops = _compiled(kernel, True)
    native = loops is not None
    chosen = (loops if native else _compiled(kernel)), native, [None, None]
    _chosen[key] = chosen
    return chosen


def machine_code(loop: Any, arguments: tuple[Any, ...]) -> Any:
    """The compiled function a numba dispatcher `loop` runs for `arguments` (after a call
    with them), to call directly: it skips numba's matching of the argument types, 0.1
    to 0.2 us of a call.

    It must only ever be given arguments of exactly those types. It refuses an array of
    another dtype, but not one of another layout: it reads a strided or misaligned
    array as if it were C-ordered, and writes to a read-only one.
    """
    types = tuple([loop.typeof_pyval(argument) for argument in arguments])
    return loop.overloads[types].entry_point


def _compiled(kernel: Kernel, native: bool = False) -> tuple[Any, Any] | None:
    """The two compiled loops of `kernel` (f and f', f only); None if it cannot compile.

    `native`: the float32 loops of a `float32_safe` kernel, computed in float32.
    """
    key = (kernel, native)
    loops = _loops.get(key)
    if loops is None and key not in _loops:
        with compile_lock:
            if key not in _loops:
                _loops[key] = _make_loops(kernel, native)
            loops = _loops[key]
    return loops


def _make_loops(kernel: Kernel, native: bool) -> tuple[Any, Any] | None:
    import numba

    from tinygrad_act import _numba_math, _numba_math32, _team

    _register_helpers()
    space = _numba_math32 if native else _numba_math
    where = f"{kernel.__module__}.{kernel.__qualname__}"
    step = _marked(kernel, "step_derivative")
    precision = ("float32" if native else "float64") + ("_step" if step else "")
    name = f"tinygrad_act._kernels.{where}.{precision}.{_digest(kernel, space)}"
    holder = types.ModuleType(name)
    # inlined into the loop, or LLVM leaves a large kernel as a call and nothing vectorizes
    source = kernel
    if native:
        try:
            source = _with_float32_literals(kernel)
        except OSError:  # no source to recompile: the float64 loops serve
            return None
    holder.kernel = numba.njit(source, inline="always", **KERNEL_OPTIONS)  # type: ignore[attr-defined]
    holder.xp = space  # type: ignore[attr-defined]
    predicate = _rare_case(kernel)
    if predicate is not None:
        # NOTE: the predicate as the kernel calls it (a helper keeps its float64 literals in
        # a float32 loop too), so that it counts exactly the elements the kernel sends on
        holder.xp_common = _common_namespace(space)  # type: ignore[attr-defined]
        holder.predicate = numba.njit(predicate, inline="always", **KERNEL_OPTIONS)  # type: ignore[attr-defined]
    holder.wide_vectors = _numba_math.wide_vectors  # type: ignore[attr-defined]
    holder.select = _numba_math.select  # type: ignore[attr-defined]
    sys.modules[name] = holder
    arity = len(_sample_parameters(kernel))
    if arity > MAX_PARAMETERS:
        if kernel.__module__.startswith("tinygrad_act."):
            raise TypeError(f"{where}: at most {MAX_PARAMETERS} parameters compile")
        return None
    if step:  # code 1's f', in the loop's precision
        value = steps_of(kernel)[1 if native else 0]
        holder.step_value = (np.float32 if native else np.float64)(value)  # type: ignore[attr-defined]
    both, value_only = _loop_pair(holder, arity, native, step, predicate is not None, numba, _team)
    sample = np.zeros(1, np.float32 if native else np.float64)
    parameters = _sample_parameters(kernel)
    if native:
        parameters = tuple([np.float32(p) for p in parameters])
    kept = np.empty(1, STEP_CODES if step else sample.dtype)
    try:  # compile now, so that a kernel numba cannot type is found here
        both(sample, np.empty_like(sample), kept, parameters)
    except numba.core.errors.NumbaError as error:
        if kernel.__module__.startswith("tinygrad_act."):
            raise
        # NOTE: a user's kernel that numba cannot compile (it calls np.* directly, say)
        # still runs, on the NumPy engine: slower, never wrong.
        del error
        return None
    return both, value_only


def _digest(kernel: Kernel, space: Any) -> str:
    """A hash of `kernel`'s code, its source file (and its `rare_case` predicate's), the
    values that numba compiles into its loop as constants (those it closes over, the
    plain values of the globals it names, its step's value) and the math namespaces it
    compiles with (`space`). numba caches a loop on disk under a key that includes the
    module objects it closes over, by name; the name carries this hash, so that a
    changed kernel, or another kernel of the same code, never loads a stale loop."""
    import hashlib  # here, not at import: 4 ms that only compiling needs
    from pathlib import Path

    from tinygrad_act import _numba_math, _team

    # NOTE: marshal's version 2, which writes no back-references: from version 3 on, an
    # object is written as a reference or not by its reference count, so the bytes (and a
    # loop's cache name) changed once numba had compiled the kernel and held its constants.
    digest = hashlib.sha256(marshal.dumps(kernel.__code__, 2))
    predicate = _rare_case(kernel)
    # numba compiles these values into the loop as constants
    for function in (kernel, predicate):
        for cell in getattr(function, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                _hash_constant(digest, cell.cell_contents)
        names = getattr(getattr(function, "__code__", None), "co_names", ())
        scope = getattr(function, "__globals__", {})
        for name in names:
            value = scope.get(name)
            if isinstance(value, _PLAIN_CONSTANTS):  # not modules, functions, classes
                digest.update(name.encode())
                _hash_constant(digest, value)
    if _marked(kernel, "step_derivative"):
        _hash_constant(digest, steps_of(kernel))
    for path in (
        inspect.getsourcefile(kernel),
        predicate and inspect.getsourcefile(predicate),
        _numba_math.__file__,
        space.__file__,
        _team.__file__,
    ):
        with contextlib.suppress(OSError, TypeError):  # no file: the code digest alone
            digest.update(Path(path or "").read_bytes())
    return digest.hexdigest()[:16]


#: The globals a kernel names that `_digest` hashes by value.
_PLAIN_CONSTANTS = (int, float, complex, str, bytes, tuple, np.ndarray, np.generic)


def _hash_constant(digest: Any, value: Any) -> None:
    """Feed `digest` what tells `value` (a kernel's constant) from any other: a number's
    type and bits (NaN's sign and payload too), an array's dtype, shape and data, the
    items of a tuple or list; else the type and ``repr``, or the object's address where
    it has no repr (an address differs from process to process: such a kernel compiles
    in each, never takes another's loop)."""
    if isinstance(value, (np.ndarray, np.generic)):
        digest.update(repr((value.dtype.str, np.shape(value))).encode())
        try:
            digest.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
        except (TypeError, ValueError):  # objects
            digest.update(f"at {id(value)}".encode())
    elif isinstance(value, (float, complex)):
        _hash_constant(digest, np.asarray(value))
    elif isinstance(value, (tuple, list)):
        digest.update(f"{type(value).__name__}{len(value)}(".encode())
        for item in value:
            _hash_constant(digest, item)
        digest.update(b")")
    else:
        try:
            text = repr(value)
        except Exception:
            text = f"at {id(value)}"
        digest.update(f"{type(value).__module__}.{type(value).__qualname__}:{text}".encode())


def _sample_parameters(kernel: Kernel) -> tuple[float, ...]:
    return (1.0,) * (len(inspect.signature(kernel).parameters) - 2)


#: Parameters a compiled kernel may take after x (numba inlines no call with *args).
MAX_PARAMETERS = 3


def _loop_pair(
    holder: Any, arity: int, native: bool, step: bool, rare: bool, numba: Any, _team: Any
) -> tuple[Any, Any]:
    """The loops over a kernel of `arity` parameters: f and f', and f only; each element
    widened to float64 first unless `native`; f' kept as `STEP_CODES` if `step` (code 1
    for ``holder.step_value``); in blocks, each through the kernel's common case first,
    if `rare` (see `rare_case`).

    numba prunes the branches for other arities before it compiles, as `arity` is a
    constant of the closure.
    """

    @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
    def spread(function: Any, space: Any, v: float, p: tuple[float, ...]) -> Any:
        """function(space, v, *p): the kernel's (or its predicate's) call."""
        if arity == 0:
            return function(space, v)
        if arity == 1:
            return function(space, v, p[0])
        if arity == 2:
            return function(space, v, p[0], p[1])
        return function(space, v, p[0], p[1], p[2])

    # through the module, like the kernel: a dispatcher in the closure would change
    # the on-disk cache's key in every process
    holder.spread = spread

    @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
    def call(v: float, p: tuple[float, ...]) -> tuple[float, float]:
        return holder.spread(holder.kernel, holder.xp, v, p)  # type: ignore[no-any-return]

    holder.call = call
    if rare:

        @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
        def call_common(v: float, p: tuple[float, ...]) -> tuple[float, float]:
            return holder.spread(holder.kernel, holder.xp_common, v, p)  # type: ignore[no-any-return]

        @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
        def is_rare(v: float, p: tuple[float, ...]) -> bool:
            return holder.spread(holder.predicate, holder.xp, v, p)  # type: ignore[no-any-return]

        holder.call_common = call_common
        holder.is_rare = is_rare

    @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
    def element(v: Any) -> Any:
        if native:
            return v
        return np.float64(v)

    holder.element = element

    @numba.njit(inline="always", **KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
    def keep(slope: Any) -> Any:
        if step:
            one = holder.select(slope == holder.step_value, np.uint8(1), np.uint8(2))
            return holder.select(slope == 0, np.uint8(0), one)
        return slope

    holder.keep = keep

    def both(x: Array, y: Array, d: Array, parameters: tuple[float, ...]) -> None:
        holder.wide_vectors()
        for i in range(x.size):
            value, slope = holder.call(holder.element(x[i]), parameters)
            y[i] = value
            d[i] = holder.keep(slope)

    def value_only(x: Array, y: Array, parameters: tuple[float, ...]) -> None:
        holder.wide_vectors()
        for i in range(x.size):
            y[i] = holder.call(holder.element(x[i]), parameters)[0]

    if rare:
        # NOTE: each block's common loop is a function of its own, called on views: the
        # same loop written inside the loop over blocks did not vectorize
        def both_common(x: Array, y: Array, d: Array, parameters: tuple[float, ...]) -> int:
            holder.wide_vectors()
            found = 0
            for i in range(x.size):
                v = holder.element(x[i])
                value, slope = holder.call_common(v, parameters)
                y[i] = value
                d[i] = holder.keep(slope)
                found += holder.is_rare(v, parameters)
            return found

        def value_only_common(x: Array, y: Array, parameters: tuple[float, ...]) -> int:
            holder.wide_vectors()
            found = 0
            for i in range(x.size):
                v = holder.element(x[i])
                y[i] = holder.call_common(v, parameters)[0]
                found += holder.is_rare(v, parameters)
            return found

        holder.both_whole = numba.njit(**LOOP_OPTIONS)(_unique(both, holder))
        holder.value_only_whole = numba.njit(**LOOP_OPTIONS)(_unique(value_only, holder))
        holder.both_common = numba.njit(**LOOP_OPTIONS)(_unique(both_common, holder))
        holder.value_only_common = numba.njit(**LOOP_OPTIONS)(_unique(value_only_common, holder))

        def both_blocks(x: Array, y: Array, d: Array, parameters: tuple[float, ...]) -> None:
            for start in range(0, x.size, RARE_BLOCK):
                stop = min(start + RARE_BLOCK, x.size)
                part = (x[start:stop], y[start:stop], d[start:stop])
                if holder.both_common(*part, parameters):
                    holder.both_whole(*part, parameters)

        def value_only_blocks(x: Array, y: Array, parameters: tuple[float, ...]) -> None:
            for start in range(0, x.size, RARE_BLOCK):
                stop = min(start + RARE_BLOCK, x.size)
                if holder.value_only_common(x[start:stop], y[start:stop], parameters):
                    holder.value_only_whole(x[start:stop], y[start:stop], parameters)

        both, value_only = both_blocks, value_only_blocks

    # the jobs call the loops, compiled once, on each chunk
    holder.both = numba.njit(**LOOP_OPTIONS)(_unique(both, holder))
    holder.value_only = numba.njit(**LOOP_OPTIONS)(_unique(value_only, holder))
    holder.team = _team

    def jobs(arrays: tuple[Any, ...], parameters: tuple[Any, ...]) -> Any:
        """The job of `both` (3 arrays: x, y, f') or `value_only` (2) for `_team`, for
        arrays and parameters of the NumPy types given: a C function, compiled on
        first use."""
        build = lambda: _job(holder, arrays, parameters, numba, _team)  # noqa: E731
        return compiled_once(holder.jobs, (arrays, parameters), build)

    holder.jobs = {}
    holder.both.jobs = holder.value_only.jobs = jobs
    holder.both.step_derivative = step
    return holder.both, holder.value_only


def _job(
    holder: Any, arrays: tuple[Any, ...], parameters: tuple[Any, ...], numba: Any, _team: Any
) -> Any:
    """A job for `_team`: `holder`'s loop, chunk by chunk, over the arrays the control
    array holds, of the NumPy types `arrays` (x, y, f'; or x, y), with its parameters
    read back as the types `parameters` (those of the calling thread's call). The loop
    itself is the one a call on one thread runs, so that every thread runs the same
    machine code, and only this small wrapper compiles anew."""
    first, second, third = arrays[0], arrays[1], arrays[-1]
    three = len(arrays) == 3
    count = len(parameters)
    one, two, last = (*parameters, np.float64, np.float64, np.float64)[:3]

    def job(address: Any, thread: int) -> None:
        team = numba.carray(address, holder.team.CONTROL)
        n = team[holder.team.COUNT]
        at = holder.team.ARRAYS
        x = numba.carray(holder.team.pointer(team[at]), n, first)
        y = numba.carray(holder.team.pointer(team[at + 1]), n, second)
        d = numba.carray(holder.team.pointer(team[at + 2 if three else at + 1]), n, third)
        v = numba.carray(holder.team.pointer(team[holder.team.VALUES]), 3, np.float64)
        if count == 0:
            p: tuple[Any, ...] = ()
        elif count == 1:
            p = (one(v[0]),)
        elif count == 2:
            p = (one(v[0]), two(v[1]))
        else:
            p = (one(v[0]), two(v[1]), last(v[2]))
        part = thread  # its own part first
        while True:
            start, stop, part = holder.team.claim(team, part)
            if start >= stop:
                break
            try:
                if three:
                    holder.both(x[start:stop], y[start:stop], d[start:stop], p)
                else:
                    holder.value_only(x[start:stop], y[start:stop], p)
            except Exception:  # a user's kernel may raise: the chunk still counts as done
                holder.team.fail(team)
            holder.team.finish(team)

    kinds = "_".join([np.dtype(kind).name for kind in arrays]) + "_"
    kinds += "_".join([np.dtype(kind).name for kind in parameters])
    return numba.cfunc(_team.job_signature, cache=True, **KERNEL_OPTIONS)(
        _unique(job, holder, kinds)
    )


def _unique(function: _F, holder: Any, kinds: str = "") -> _F:
    """`function`, renamed after `holder`'s kernel (its precision and digest) and
    `kinds`. numba names a compiled function after its Python name and a counter of
    the process that compiled it, so two kernels' loops compiled in two processes can
    load from the disk cache under one name, and a job that calls one of them would
    then call either."""
    precision, digest = holder.__name__.split(".")[-2:]
    function.__qualname__ = "_".join(filter(None, (function.__name__, precision, digest, kinds)))
    return function


class _Float32Literals(ast.NodeTransformer):
    """Wraps each int and float literal in ``__float32__(...)``, except exponents and
    subscripts: numba widens float32 arithmetic with a Python number to float64."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) not in (int, float):
            return node
        call = ast.Call(ast.Name("__float32__", ast.Load()), [node], [])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node.left = self.visit(node.left)
        if not isinstance(node.op, ast.Pow):  # x ** 2 stays a multiplication
            node.right = self.visit(node.right)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        node.value = self.visit(node.value)
        return node


def _with_float32_literals(kernel: Kernel) -> Kernel:
    """`kernel` recompiled from its source with float32 literals (see `_Float32Literals`)."""
    where = f"{kernel.__module__}.{kernel.__qualname__}"
    lines, first = inspect.getsourcelines(kernel)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    function.decorator_list = []
    tree = ast.fix_missing_locations(_Float32Literals().visit(tree))
    ast.increment_lineno(tree, first - 1)  # tracebacks point at the kernel's own lines
    scope = {**kernel.__globals__, "__float32__": np.float32}
    exec(compile(tree, inspect.getsourcefile(kernel) or where, "exec"), scope)
    return scope[function.name]  # type: ignore[no-any-return]
