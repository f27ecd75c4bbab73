"""Base classes: `Layer`, the interface of everything composable, and `Activation`.

`Activation` holds everything elementwise activations share: input conversion
and validation, dtype rules, caching, and the chain rule. A subclass only says
its math: ``function_and_derivative(xp, x, ...)``, written once and compiled, or
the plain NumPy pair ``function(x)`` and ``derivative(x, y)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api, _engine

_L = TypeVar("_L", bound="Layer")

#: A floating-point array; what activations receive and return.
Array = npt.NDArray[np.floating[Any]]

_grad_enabled = contextvars.ContextVar("tinygrad_act_grad_enabled", default=True)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inference without a cache: inside ``with no_grad():`` forward computes the
    output only and keeps nothing for backward, which then raises `RuntimeError`.

    As in PyTorch, it holds for the current thread (and context) only.

    >>> from tinygrad_act import Sigmoid
    >>> with no_grad():
    ...     Sigmoid()(np.zeros(2))
    array([0.5, 0.5])
    """
    token = _grad_enabled.set(False)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


def is_grad_enabled() -> bool:
    """False inside `no_grad`."""
    return _grad_enabled.get()


def check_real(owner: str, name: str, value: Any, *, positive: bool = False) -> float:
    """`value` as a float, or a clear error naming the argument: finite, and > 0 if `positive`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float64's range: its repr could be pages long
        raise ValueError(
            f"{owner}: {name} must be finite, got an integer beyond float64's range"
        ) from None
    if not math.isfinite(number) or (positive and number <= 0):
        need = "a positive finite number" if positive else "finite"
        raise ValueError(f"{owner}: {name} must be {need}, got {value!r}")
    return number


#: The dtypes taken as they are: float16, float32 and float64 in native byte order.
_NATIVE_FLOATS = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64))


def as_float_array(x: npt.ArrayLike, owner: str) -> Array:
    """Return `x` as a float16/32/64 array in native byte order; bool and integers
    become float64.

    Raises `TypeError` naming the dtype for anything else (complex, object,
    strings, datetimes, structured arrays, long double), and for masked arrays,
    whose mask would be silently dropped.
    """
    if type(x) is np.ndarray and x.dtype in _NATIVE_FLOATS:  # the common case, first
        return x
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{owner} does not take masked arrays: the mask would be ignored. "
            "Pass x.filled(value) or x.compressed() instead"
        )
    array = np.asarray(x)
    # NOTE: byte order never changes a result: non-native input is converted exactly
    dtype = _engine.input_dtype(array.dtype, owner)
    return array if array.dtype == dtype else array.astype(dtype)


class Parameter:
    """A trainable array: ``data``, and ``grad`` of the same shape and dtype.

    Layers add to ``grad`` in backward; an optimizer reads it and updates ``data``.
    """

    def __init__(self, data: npt.ArrayLike) -> None:
        self.data: Array = np.array(data, dtype=np.float64)
        self.grad: Array = np.zeros_like(self.data)

    def zero_grad(self) -> None:
        """Set ``grad`` to zero: in place for NumPy, a new array for other libraries."""
        if type(self.grad) is np.ndarray:
            self.grad[...] = 0
        else:
            self.grad = _array_api.namespace_of(self.grad).zeros_like(self.grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def check_grad_output(
    owner: Layer, grad_output: npt.ArrayLike, output_shape: tuple[int, ...] | None
) -> Array:
    """Convert `grad_output` for ``owner.backward``, or raise a clear error.

    `output_shape` is the shape of the last forward's output, None if forward
    has not run: a `RuntimeError`. A `grad_output` of another shape is a
    `ValueError` naming both shapes.
    """
    if (  # the common case, first: a native float array of the right shape
        type(grad_output) is np.ndarray
        and grad_output.shape == output_shape
        and grad_output.dtype in _NATIVE_FLOATS
    ):
        return grad_output
    name = type(owner).__name__
    if output_shape is None:
        raise RuntimeError(f"{name}.backward called before forward: call forward(x) first")
    if type(grad_output) is not np.ndarray:
        _array_api.refuse_foreign(name + ".backward", "grad_output", grad_output)
    grad = as_float_array(grad_output, name + ".backward")
    if grad.shape != output_shape:
        raise ValueError(
            f"{name}.backward: grad_output has shape {grad.shape}, "
            f"but the output of forward has shape {output_shape}"
        )
    return grad


class Layer:
    """Base of everything composable: activations, `Linear`, `Sequential`.

    A layer maps an array forward, and maps the gradient of a loss with
    respect to its output back to the gradient with respect to its input.
    Subclasses implement `forward` and `backward`.
    """

    def forward(self, x: npt.ArrayLike) -> Array:
        """Compute the output for input `x` and remember what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        """Return dL/dx given dL/dy of the most recent forward call."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def __call__(self, x: npt.ArrayLike) -> Array:
        return self.forward(x)

    def train(self: _L, mode: bool = True) -> _L:
        """Training mode, or inference with ``mode=False``, as in PyTorch; returns self.

        Only layers that behave differently in training (`RReLU`, with its random
        slopes) change; a `Sequential` passes it to every layer.
        """
        return self

    def eval(self: _L) -> _L:
        """Inference mode: ``train(False)``; returns self."""
        return self.train(False)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs; none for activations. Layers with parameters override it."""
        return []

    def parameters(self) -> list[Parameter]:
        """The trainable parameters, for an optimizer."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> dict[str, Array]:
        """A copy of every parameter by name, as NumPy arrays whatever the library of the
        parameters: ``np.savez(path, **layer.state_dict())``."""
        return {name: _array_api.to_numpy(p.data) for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike]) -> None:
        """Load parameters saved by `state_dict`, bit for bit.

        Everything is checked before anything is written: a missing or unexpected
        key, a shape mismatch, or a value that is not real numbers (complex,
        strings, objects, datetimes) raises `ValueError` or `TypeError` naming the
        entry, and the layer is left unchanged.
        """
        name = type(self).__name__
        params = dict(self.named_parameters())
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{name}.load_state_dict expects a mapping of name to array, "
                f"got {type(state).__name__}"
            )
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params), key=str)
        if missing or unexpected:
            raise ValueError(
                f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        arrays = {}
        for key, value in state.items():
            array = (
                _array_api.to_numpy(value) if _array_api.is_foreign(value) else np.asarray(value)
            )
            if array.dtype.kind not in "fiu" or array.dtype.itemsize > 8:
                raise TypeError(
                    f"{name}.load_state_dict: {key!r} has dtype {array.dtype}; "
                    "expected real floating-point or integer values"
                )
            if array.shape != params[key].data.shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} has shape {array.shape}, "
                    f"the parameter has shape {params[key].data.shape}"
                )
            arrays[key] = array
        for key, array in arrays.items():
            p = params[key]
            p.data = _array_api.update(p.data, _array_api.like(array, p.data))

    # What forward keeps for backward lives in one attribute, ``_cache``: the values,
    # and the thread that ran forward. `_remember` and `_recall` are the only way in.
    _cache: Any

    def _forget(self) -> None:
        """Drop the cache first thing in forward: a forward that fails leaves none."""
        self.__dict__.pop("_cache", None)

    def _remember(self, *values: Any) -> None:
        """Keep `values` for backward (nothing inside `no_grad`)."""
        if _grad_enabled.get():
            self._cache = (values, threading.get_ident())

    def _recall(self) -> tuple[Any, ...]:
        """What the last forward kept, or a `RuntimeError` saying why there is none."""
        cache = self.__dict__.get("_cache")
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called without a forward to go with it: "
                "call forward(x) first (outside no_grad)"
            )
        values, thread = cache
        if thread != threading.get_ident():
            raise RuntimeError(
                f"{type(self).__name__}.backward: the last forward of this layer ran in "
                "another thread; "
                "use one layer instance per thread"
            )
        return values  # type: ignore[no-any-return]

    def __copy__(self: _L) -> _L:
        """A shallow copy, parameters shared (as `copy.copy` of a PyTorch module), with
        a cache of its own: neither forward overwrites what the other's backward reads."""
        copied = type(self).__new__(type(self))
        copied.__dict__.update(self.__dict__)
        cache = self.__dict__.get("_cache")
        if cache is not None:
            values, thread = cache
            copied._cache = (_owned(values), thread)
        return copied

    def __getstate__(self) -> dict[str, Any]:
        # a cache belongs to this object and the thread that made it: copies start without
        state = dict(self.__dict__)
        if "_cache" in state:
            state["_cache"] = None
        return state

    @property
    def input_shape(self) -> tuple[int | None, ...] | None:
        """The trailing input dimensions this layer needs: None if any shape will do.

        Each entry is a required size, or None for any size: `Linear(3, 2)` needs
        ``(3,)``, `Softmax(axis=-1)` at least one dimension, ``(None,)``. The testing
        kit draws its inputs from this.
        """
        return None

    def __repr__(self) -> str:
        settings = ", ".join(
            f"{name}={value!r}" for name, value in vars(self).items() if not name.startswith("_")
        )
        return f"{type(self).__name__}({settings})"


def _no_kernel(xp: Any, x: Any, *parameters: Any) -> tuple[Any, Any]:
    raise NotImplementedError


def _owned(value: Any) -> Any:
    """`value` with every array in it (through tuples) copied; dtypes, shapes and
    numbers as they are."""
    if isinstance(value, tuple):
        return tuple(_owned(part) for part in value)
    if type(value) is np.ndarray:
        return value.copy()
    if isinstance(value, np.dtype | np.generic | int | float | str):
        return value
    return _array_api.copy(value) if _array_api.is_foreign(value) else value


class Activation(Layer):
    r"""Base class for elementwise activations :math:`y = f(x)`.

    A subclass says its math in one of two ways.

    - ``function_and_derivative(xp, x, *parameters)``, a static method returning
      :math:`f(x)` and :math:`f'(x)`, written with the math functions of the
      namespace ``xp`` (``xp.exp``, ``xp.where``, ... the array API's names) and
      arithmetic. The same source runs on NumPy arrays and, with numba installed,
      compiled into one SIMD loop over scalars. Names after ``x`` are read from
      the layer's attributes of the same name (``alpha`` is ``self.alpha``). All
      built-ins are written this way.
    - ``function(x)`` and ``derivative(x, y)``, plain NumPy expressions: simpler,
      and always run on the NumPy engine.

    forward computes :math:`f(x)` and :math:`f'(x)` together, rounds both once and
    keeps :math:`f'(x)`; backward is ``grad_output * f'(x)``, one pass. The base
    class does the rest: converts the input (float16, float32 and float64 keep
    their dtype, bool and integers become float64, anything else is a `TypeError`);
    computes in float64 and rounds once; keeps its own copy of what it caches, so
    changing the input or output in place after forward does not change backward.
    A kernel that stays within its accuracy bound in float32 arithmetic can say so
    with ``@float32_safe`` (under ``@staticmethod``): the compiled engine then runs
    float32 input in float32, twice as many elements per SIMD instruction.

    A layer keeps the cache of its last forward, for the thread that ran it: use
    one instance per thread. backward in a thread whose forward was not the last
    one is a `RuntimeError`, never a gradient that belongs to another input.

    Examples
    --------
    A complete activation, the softsign :math:`f(x) = x / (1 + |x|)`:

    >>> import numpy as np
    >>> class Softsign(Activation):
    ...     @staticmethod
    ...     def function_and_derivative(xp, x):
    ...         d = 1 / (1 + xp.abs(x))
    ...         return x * d, d * d
    >>> layer = Softsign()
    >>> layer(np.array([-1.0, 0.0, 3.0]))
    array([-0.5 ,  0.  ,  0.75])
    >>> layer.backward(np.ones(3))
    array([0.25  , 1.    , 0.0625])
    """

    #: Points where f' jumps (ReLU's 0); gradient checks keep away from them.
    kinks: ClassVar[tuple[float, ...]] = ()

    #: The math, a static method ``(xp, x, *parameters) -> (f(x), f'(x))``; see above.
    function_and_derivative: ClassVar[Callable[..., tuple[Any, Any]]] = staticmethod(_no_kernel)

    #: Optional, a static method like `function_and_derivative`:
    #: ``derivatives(xp, x, *parameters) -> (f'(x), f''(x))``. See `second_derivative`.
    derivatives: ClassVar[Any] = None

    def function(self, x: Array) -> Array:
        """Return f(x) elementwise (NumPy)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement function_and_derivative(xp, x), "
            "or function(x) and derivative(x, y)"
        )

    def derivative(self, x: Array, y: Array) -> Array:
        """Return f'(x) elementwise (NumPy), given x and y = f(x)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement function_and_derivative(xp, x), "
            "or function(x) and derivative(x, y)"
        )

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        """Those of `settings` (name: value) that the constructor checks, checked as it
        does, as floats; or a clear error. forward passes the values its kernel reads,
        which may have been set since the constructor (see `kernel_parameters`): a
        subclass whose kernel reads other names is held to none of its base's checks.
        Nothing here: a layer without settings."""
        return {}

    def _settle(self, **settings: Any) -> None:
        """Set `settings` as `_check_parameters` returns them (the constructor's part)."""
        for name, value in self._check_parameters(settings).items():
            setattr(self, name, value)

    def _kernel(self, derivative: bool) -> tuple[_engine.Kernel, tuple[float, ...], bool]:
        """The kernel, its parameters, and whether it may be compiled."""
        kernel = type(self).function_and_derivative
        if kernel is not _NO_KERNEL:
            return kernel, kernel_parameters(self, kernel), True

        def pair(xp: Any, x: Array) -> tuple[Array, Array | None]:
            y = self.function(x)
            return y, self.derivative(x, y) if derivative else None

        return pair, (), False

    def _evaluate(self, x: npt.ArrayLike, *, derivative: bool) -> tuple[Array, Array | None]:
        """f(x) and, if `derivative`, f'(x) (in its cache dtype), without touching the cache."""
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            return _array_api.evaluate(self, x, derivative=derivative)
        x = as_float_array(x, type(self).__name__)
        kernel, parameters, compiled = self._kernel(derivative)
        return _engine.evaluate(kernel, parameters, x, derivative=derivative, compiled=compiled)

    def second_derivative(self, x: npt.ArrayLike) -> Array:
        """f''(x) elementwise, in the dtype of `x`, from the class's `derivatives`.

        Raises `NotImplementedError` for an activation that does not provide it.
        Does not touch the cache.
        """
        kernel = type(self).derivatives
        if kernel is None:
            raise NotImplementedError(
                f"{type(self).__name__} does not provide f'': define the static method "
                "derivatives(xp, x, ...) returning (f'(x), f''(x))"
            )
        return self._second_derivative(kernel, x)

    def _second_derivative(self, kernel: _engine.Kernel, x: npt.ArrayLike) -> Array:
        """f''(x) in the dtype of `x`, by `kernel`, a ``derivatives(xp, x, ...)``."""
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            return _array_api.evaluate(self, x, derivative=True, second=True, kernel=kernel)[1]  # type: ignore[no-any-return]
        x = as_float_array(x, type(self).__name__)
        parameters = kernel_parameters(self, kernel)
        _, second = _engine.evaluate(kernel, parameters, x, derivative=True)
        assert second is not None
        with _engine.Quietly():  # NOTE: float16 f'' beyond 65504 rounds to inf, quietly
            return second.astype(x.dtype, copy=False)

    def forward(self, x: npt.ArrayLike) -> Array:
        if type(x) is not np.ndarray or x.dtype not in _NATIVE_FLOATS:  # not the common case
            self._forget()  # a forward that fails leaves no cache
            if _array_api.is_foreign(x):
                return self._forward_foreign(x)  # type: ignore[no-any-return]
            x = as_float_array(x, type(self).__name__)
        # Take the cache out first: a forward that fails leaves none, never a half-written one.
        old = self.__dict__.pop("_cache", None)
        thread = threading.get_ident()
        grad = _grad_enabled.get()
        reuse = None
        if grad and old is not None and old[1] == thread:  # never a buffer another thread reads
            derivative, dtype = old[0]
            if type(derivative) is np.ndarray and dtype == x.dtype and derivative.shape == x.shape:
                reuse = derivative  # overwritten, not reallocated
        kernel, parameters, compiled = self._kernel(grad)
        both = _engine.express(kernel, parameters, x, reuse) if grad and compiled else None
        if both is not None:  # the common small call, faster
            y, derivative = both
        else:
            y, derivative = _engine.evaluate(
                kernel,
                parameters,
                x,
                derivative=grad,
                reuse=reuse,
                compiled=compiled,
                for_backward=True,
            )
        if derivative is not None:  # f'(x) in its cache dtype, and x's dtype for backward
            self._cache = ((derivative, x.dtype), thread)
        return y

    def _forward_foreign(self, x: Any) -> Any:
        """forward on another library's array (torch, JAX, CuPy, Dask, ...): same rules."""
        self._forget()
        grad = _grad_enabled.get()
        y, derivative = _array_api.evaluate(self, x, derivative=grad)
        if derivative is not None:  # f'(x), a fresh array of that library: our own
            self._cache = ((derivative, y.dtype), threading.get_ident())
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        derivative, dtype = self._recall()
        if type(derivative) is not np.ndarray:  # forward ran on another library's array
            name = type(self).__name__ + ".backward"
            return _array_api.chain_rule(name, grad_output, derivative, dtype)  # type: ignore[no-any-return]
        grad = grad_output
        if (  # not the common case, a native float array of the right shape
            type(grad) is not np.ndarray
            or grad.shape != derivative.shape
            or grad.dtype not in _NATIVE_FLOATS
        ):
            grad = check_grad_output(self, grad_output, derivative.shape)
        if derivative.itemsize == 1:  # the compiled engine's step codes for f'
            steps = _engine.steps_of(type(self).function_and_derivative)
            return _engine.chain_rule_steps(grad, derivative, dtype, steps)
        return _engine.chain_rule(grad, derivative, dtype)


_NO_KERNEL = _no_kernel
_PARAMETERS: dict[Any, tuple[int, tuple[str, ...], Callable[[Any], Any]]] = {}
_NUMBERS = (int, float, np.integer, np.floating, np.bool_)
_PLAIN_NUMBERS = frozenset({int, float, bool, np.float64, np.float32, np.int64})


def kernel_parameters(layer: Any, kernel: Any) -> tuple[float, ...]:
    """The values of `kernel`'s parameters (its arguments after ``x``), read from the
    layer's attributes of the same names. forward does this on every call: the reader
    is made once per kernel, with `operator.attrgetter`.

    Each must be a number (bool included): an attribute set to anything else after the
    constructor checked it (a string, None, an array) is a `TypeError` here, naming
    the class and the attribute, never a compiler's error, and never an array
    broadcast against x. Values other than the floats checked last go through the
    layer's ``_check_parameters``, the constructor's own checks (NaN, inf, a negative
    `Softplus` beta, a `Hardtanh` whose min_val is not below max_val: each a clear
    error). An int beyond int64, a float16 and a long double, which numba does not
    take, are passed as their float; an int beyond float64 is a `ValueError`.
    """
    count, names, read = _PARAMETERS.get(kernel) or _reader(kernel)
    # NOTE: floats the layer checked last, the common case, return first; anything else
    # is checked below (an int or a bool equal to a float checked last, too)
    checked = layer.__dict__.get("_checked")
    last = checked[1] if checked is not None and checked[0] is names else None
    if count == 1:  # attrgetter of one name returns the value itself
        value = read(layer)
        values: tuple[Any, ...] = (value,)
        if type(value) is float and values == last:
            return values
    elif count == 2:
        values = read(layer)
        a, b = values
        if type(a) is float is type(b) and values == last:
            return values
    elif not count:
        return ()
    else:
        values = read(layer)
    for i, value in enumerate(values):
        if type(value) not in _PLAIN_NUMBERS and not isinstance(value, _NUMBERS):
            name = names[i]
            raise TypeError(f"{type(layer).__name__}: {name} must be a number, got {value!r}")
    layer._check_parameters(dict(zip(names, values, strict=True)))
    layer.__dict__["_checked"] = (names, values)
    # numba takes no int beyond int64 and no float16 or long double: their float, as
    # NumPy takes them (an int beyond float64 is a ValueError)
    beyond = [type(value) is int and not _INT64_MIN <= value <= _INT64_MAX for value in values]
    odd = [isinstance(value, np.floating) and type(value) not in _PLAIN_NUMBERS for value in values]
    if any(beyond) or any(odd):
        owner = type(layer).__name__
        return tuple(
            [
                check_real(owner, names[i], v) if beyond[i] else float(v) if odd[i] else v
                for i, v in enumerate(values)
            ]
        )
    return values


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _reader(kernel: Any) -> tuple[int, tuple[str, ...], Callable[[Any], Any]]:
    """`kernel`'s number of parameters, their names and their reader, kept in
    `_PARAMETERS`."""
    names = tuple(inspect.signature(kernel).parameters)[2:]
    names = _NAMES.setdefault(names, names)  # one object for a class's kernels: see above
    reader = len(names), names, (operator.attrgetter(*names) if names else _no_parameters)
    _PARAMETERS[kernel] = reader
    return reader


def _no_parameters(layer: Any) -> tuple[float, ...]:
    return ()
