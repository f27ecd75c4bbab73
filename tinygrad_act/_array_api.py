"""Other array libraries: PyTorch, CuPy, JAX, array-api-strict and Dask.

An array that is not NumPy's is computed in its own library, on its own device,
by the same kernels (``function_and_derivative(xp, x, ...)``) with ``xp`` the
library's array-API namespace, `array_api_compat.array_namespace(x)`, wrapped in
a `Namespace` that adds what the standard lacks. Nothing here calls
``np.asarray`` on such an array, and nothing writes into one in place (JAX's
arrays are immutable).

Dask arrays of NumPy chunks are the exception: each chunk runs on the NumPy (or
numba) engine, lazily, through ``map_blocks``; see `dask_elementwise`.

array-api-compat is optional: it is imported only when an input is neither a
NumPy array nor a Python number or list (``pip install "tinygrad_act[array-api]"``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_math, _engine

#: Another library's array, typed as the NumPy arrays it stands in for.
Array = npt.NDArray[Any]

# What is never another library's array: the NumPy path converts these.
_NUMPY_OR_PYTHON = (np.ndarray, np.generic, list, tuple, int, float, complex, str, bytes)


def is_foreign(x: Any) -> bool:
    """Whether `x` is an array of another library (not NumPy's, not a list or a number)."""
    if x is None or isinstance(x, _NUMPY_OR_PYTHON):
        return False
    try:
        import array_api_compat
    except ImportError:
        if hasattr(x, "__array_namespace__") or hasattr(x, "__dlpack__"):
            raise ImportError(
                f"{type_name(x)} input needs array-api-compat: "
                'pip install "tinygrad_act[array-api]"'
            ) from None
        return False
    return bool(array_api_compat.is_array_api_obj(x))


def is_dask(x: Any) -> bool:
    """Whether `x` is a Dask array (call after `is_foreign`)."""
    import array_api_compat

    return bool(array_api_compat.is_dask_array(x))


def type_name(x: Any) -> str:
    """``torch.Tensor``, ``numpy.ndarray``: the type of `x` as users know it."""
    module = type(x).__module__.split(".")[0]
    return f"{module}.{type(x).__name__}"


def library(xp: Any) -> str:
    """The library of namespace `xp`: "torch", "jax", "cupy", "dask", "array_api_strict"."""
    name: str = xp.__name__
    return name.removeprefix("array_api_compat.").split(".")[0]


# ---------------------------------------------------------------------------
# The namespace the kernels see


def _torch_erfc() -> Callable[[Any], Any]:
    import torch

    return torch.special.erfc  # type: ignore[no-any-return, unused-ignore]


@functools.cache
def _jax_compiled(name: str) -> Callable[[Any], Any]:
    """`_array_math`'s function `name` on JAX arrays, compiled whole by XLA (erfc's 80
    array operations one by one took 8 times as long)."""
    import jax  # type: ignore[import-not-found, unused-ignore]

    function = functools.partial(getattr(_array_math, name), jax.numpy)
    return jax.jit(function)  # type: ignore[no-any-return, unused-ignore]


def _cupy_erfc() -> Callable[[Any], Any]:
    import cupyx.scipy.special  # type: ignore[import-not-found, unused-ignore]

    return cupyx.scipy.special.erfc  # type: ignore[no-any-return, unused-ignore]


#: erfc, which the array API standard does not have: the library's own where it is
#: accurate (within 3.1 ulp, on the CPU and on CUDA), else `_array_math.erfc` (compiled
#: for JAX; called as it is for any other library).
ERFC: dict[str, Callable[[], Callable[[Any], Any]]] = {
    "torch": _torch_erfc,
    "cupy": _cupy_erfc,
    "jax": functools.partial(_jax_compiled, "erfc"),
}

#: Whether a (library, device, setting) has float64; see `Namespace`.
_FLOAT64: dict[tuple[str, str, object], bool] = {}


def _float64_setting(library: str) -> object:
    """What decides float64 besides the device: JAX's ``jax_enable_x64``, which can
    change while a program runs (None for the other libraries)."""
    if library != "jax":
        return None
    import jax  # type: ignore[import-not-found, unused-ignore]

    return getattr(jax.config, "jax_enable_x64", None)


class Namespace:
    """An array library's namespace, as kernels use it.

    Every name is the library's array-API function (``exp``, ``where``, ``max``,
    ...), with these additions: ``where``, ``maximum``, ``minimum`` and
    ``copysign`` take Python numbers for either argument (made arrays of the
    compute dtype, on the device); ``erfc`` comes from `ERFC` or `_array_math`, as
    does JAX's ``tanh``; ``two_product`` (a product and its rounding error) from
    `_array_math`; ``exp_nonpositive`` is ``exp`` (the compiled engine's is cheaper for
    x <= 0), and ``rarely`` returns its argument (a hint to the compiled engine, see
    `tinygrad_act._engine.rare_case`); and ``dtype`` is the compute dtype, float64 unless the device
    has none (for JAX: unless ``jax_enable_x64`` is off).
    """

    def __init__(self, x: Any) -> None:
        import array_api_compat

        self.xp = array_api_compat.array_namespace(x)
        self.library = library(self.xp)
        self.device = array_api_compat.device(x)
        key = (self.library, str(self.device), _float64_setting(self.library))
        if key not in _FLOAT64:
            # NOTE: Apple's MPS and array-api-strict's "no_float64" device lack float64 (an
            # error); JAX without jax_enable_x64 gives float32 with a warning: no float64
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    probe = self.xp.asarray(0.0, dtype=self.xp.float64, device=self.device)
                    _FLOAT64[key] = probe.dtype == self.xp.float64
                except Exception:
                    _FLOAT64[key] = False
        self.dtype = self.xp.float64 if _FLOAT64[key] else self.xp.float32
        self._constants: dict[float, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.xp, name)

    def array(self, value: Any) -> Any:
        """`value`, a Python number made a 0-d array of the compute dtype on the device."""
        if not isinstance(value, int | float):
            return value
        constant = self._constants.get(value)
        if constant is None:
            constant = self.xp.asarray(float(value), dtype=self.dtype, device=self.device)
            self._constants[value] = constant
        return constant

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.xp.where(condition, self.array(a), self.array(b))

    def maximum(self, a: Any, b: Any) -> Any:
        return self.xp.maximum(self.array(a), self.array(b))

    def minimum(self, a: Any, b: Any) -> Any:
        return self.xp.minimum(self.array(a), self.array(b))

    def copysign(self, a: Any, b: Any) -> Any:
        return self.xp.copysign(self.array(a), self.array(b))

    def erfc(self, t: Any) -> Any:
        make = ERFC.get(self.library)
        return _array_math.erfc(self, t) if make is None else make()(t)

    def rarely(self, condition: Any) -> Any:
        """`condition` (`tinygrad_act._engine.rare_case`: only compiled loops use the hint)."""
        return condition

    def exp_nonpositive(self, x: Any) -> Any:
        """e**x, for x <= 0 (the compiled engine's cheaper `exp` there)."""
        return self.xp.exp(x)

    def tanh(self, x: Any) -> Any:
        # NOTE: XLA's float64 tanh on the CPU is up to 6.9 ulp from exact near |x| = 20
        return _jax_compiled("tanh")(x) if self.library == "jax" else self.xp.tanh(x)

    def two_product(self, a: Any, b: Any) -> tuple[Any, Any]:
        """a * b rounded, and its rounding error (`_array_math.two_product`)."""
        bits = 53 if self.dtype == self.xp.float64 else 24
        return _array_math.two_product(self, self.array(a), self.array(b), bits)

    def derivative_dtype(self, dtype: Any) -> Any:
        """f' is kept in the input's dtype, float16's in float32 (as on NumPy), and so is
        that of any other float narrower than float32 (PyTorch's bfloat16)."""
        return self.xp.float32 if self.xp.finfo(dtype).bits < 32 else dtype

    def float_input(self, x: Any, owner: str) -> Any:
        """`x` if real floating; bool and integers in float64 (float32 without it)."""
        if self.xp.isdtype(x.dtype, "real floating"):
            return x
        if self.xp.isdtype(x.dtype, ("bool", "integral")):
            return self.xp.astype(x, self.dtype)
        raise TypeError(
            f"{owner} expects real floating-point input (float16, float32 or float64; "
            f"bool and integers are converted to float64), got {self.library} dtype {x.dtype}"
        )

    def own(self, result: Any, x: Any) -> Any:
        """`result`, copied if it is `x` itself, so that the caller owns it."""
        return self.xp.asarray(result, copy=True) if result is x else result


def namespace(x: Any, owner: str) -> Namespace:
    """The `Namespace` of a foreign array `x`, or a `TypeError` if its library has none."""
    try:
        return Namespace(x)
    except TypeError:
        raise TypeError(f"{owner} does not take {type_name(x)} input") from None


def detach(x: Any) -> Any:
    """A torch tensor without its autograd graph (our layers differentiate by hand)."""
    return x.detach() if hasattr(x, "requires_grad") and hasattr(x, "detach") else x


def check_same(owner: str, what: str, reference: Any, value: Any) -> Any:
    """`value` (detached), if it is an array of `reference`'s library on its device.

    Otherwise a `TypeError` naming both types, or a `ValueError` naming both devices.
    """
    import array_api_compat

    same = is_foreign(value) and (
        array_api_compat.array_namespace(value) is array_api_compat.array_namespace(reference)
    )
    if not same:
        raise TypeError(
            f"{owner}: forward ran on {type_name(reference)}, but {what} is "
            f"{type_name(value)}; pass {what} as a {type_name(reference)} (on the same device)"
        )
    here, there = array_api_compat.device(reference), array_api_compat.device(value)
    if here != there:
        raise ValueError(f"{owner}: forward ran on device {here}, but {what} is on {there}")
    return detach(value)


def refuse_foreign(owner: str, what: str, value: Any) -> None:
    """A `TypeError` for a foreign `value` given where NumPy's forward ran."""
    if type(value) is not np.ndarray and is_foreign(value):
        raise TypeError(
            f"{owner}: forward ran on numpy.ndarray, but {what} is {type_name(value)}; "
            f"pass {what} as a numpy.ndarray, or run forward on {type_name(value)}"
        )


def check_shape(owner: str, what: str, value: Any, shape: tuple[Any, ...]) -> None:
    if tuple(value.shape) != tuple(shape):
        raise ValueError(
            f"{owner}: {what} has shape {tuple(value.shape)}, "
            f"but the output of forward has shape {tuple(shape)}"
        )


# ---------------------------------------------------------------------------
# Elementwise activations


def evaluate(
    layer: Any, x: Any, *, derivative: bool, second: bool = False, kernel: Any = None
) -> tuple[Any, Any]:
    """f(x) and f'(x) (or f' and f'' with `second`) of an activation, on `x`'s library.

    The dtype rules are NumPy's: computed in float64 (float32 on a device without
    float64) and rounded once; f in `x`'s dtype, f' in its `derivative_dtype`.
    """
    owner = type(layer).__name__
    if is_dask(x):
        return dask_elementwise(layer, x, derivative=derivative, second=second, kernel=kernel)
    space = namespace(x, owner)
    x = space.float_input(detach(x), owner)
    if kernel is not None:
        parameters: tuple[float, ...] = _kernel_parameters(layer, kernel)
    else:
        kernel, parameters, compiled = layer._kernel(derivative)
        if not compiled:
            raise TypeError(
                f"{owner} is written with NumPy (function and derivative), so it runs on "
                f"NumPy arrays only, not {type_name(x)}; write function_and_derivative(xp, x) "
                "to run on any array library"
            )
    wide = space.astype(x, space.dtype, copy=False)
    with np.errstate(all="ignore"):  # NOTE: array-api-strict computes with NumPy: quietly
        y, d = kernel(space, wide, *parameters)
    y = space.own(space.astype(_full(space, y, x), x.dtype, copy=False), x)
    if derivative or second:
        dtype = x.dtype if second else space.derivative_dtype(x.dtype)
        d = space.own(space.astype(_full(space, d, x), dtype, copy=False), x)
        return y, d
    return y, None


def _kernel_parameters(layer: Any, kernel: Any) -> tuple[float, ...]:
    from tinygrad_act.base import kernel_parameters

    return kernel_parameters(layer, kernel)


def _full(space: Namespace, value: Any, like: Any) -> Any:
    """A kernel's result as an array of `like`'s shape (a kernel may return a number)."""
    if isinstance(value, int | float):
        return space.full(like.shape, float(value), dtype=space.dtype, device=space.device)
    return value


def chain_rule(owner: str, grad_output: Any, derivative: Any, dtype: Any) -> Any:
    """``grad_output * derivative`` in the wider dtype, rounded once to `dtype`."""
    if is_dask(derivative):
        return dask_chain_rule(owner, grad_output, derivative, dtype)
    grad = check_same(owner, "grad_output", derivative, grad_output)
    check_shape(owner, "grad_output", grad, derivative.shape)
    space = namespace(derivative, owner)
    grad = space.float_input(grad, owner + ".backward")
    with np.errstate(all="ignore"):
        return space.astype(grad * derivative, dtype)


def copy(x: Any) -> Any:
    """A copy of a foreign array (an equal, separate object for immutable ones)."""
    if is_dask(x):
        return x.copy()
    return Namespace(x).asarray(x, copy=True)


# ---------------------------------------------------------------------------
# Dask: NumPy chunks, lazily


def _check_dask(owner: str, x: Any) -> Any:
    """`x` with a real floating dtype in native byte order (bool and integers: float64)."""
    if type(x._meta) is not np.ndarray:
        raise TypeError(
            f"{owner} takes Dask arrays of NumPy chunks, got chunks of {type_name(x._meta)}"
        )
    dtype = _engine.input_dtype(x.dtype, owner)
    return x if x.dtype == dtype else x.astype(dtype)


def _values_block(block: Any, kernel: Any, parameters: Any, compiled: bool) -> Any:
    return _engine.evaluate(kernel, parameters, block, derivative=False, compiled=compiled)[0]


def _derivative_block(block: Any, kernel: Any, parameters: Any, compiled: bool) -> Any:
    return _engine.evaluate(kernel, parameters, block, derivative=True, compiled=compiled)[1]


def dask_elementwise(
    layer: Any, x: Any, *, derivative: bool, second: bool = False, kernel: Any = None
) -> tuple[Any, Any]:
    """f(x) and f'(x) as lazy Dask arrays: each chunk on the NumPy/numba engine.

    Two graphs, so that f' is computed only where it is used (by backward), chunk
    by chunk, and neither graph keeps the other's results in memory.
    """
    owner = type(layer).__name__
    x = _check_dask(owner, x)
    if kernel is not None:
        parameters = _kernel_parameters(layer, kernel)
        compiled = True
    else:
        kernel, parameters, compiled = layer._kernel(derivative)
    # NOTE: the engine in use now, not where the chunks are computed later (another
    # thread, outside a `_engine.using` block)
    compiled = compiled and _engine.engine() == "numba"
    settings = (kernel, parameters, compiled)
    if second:
        first = x.map_blocks(_values_block, *settings, dtype=x.dtype)
        return first, x.map_blocks(_derivative_block, *settings, dtype=x.dtype)
    y = x.map_blocks(_values_block, *settings, dtype=x.dtype)
    if not derivative:
        return y, None
    dtype = _engine.derivative_dtype(x.dtype)
    return y, x.map_blocks(_derivative_block, *settings, dtype=dtype)


def _chain_rule_block(grad: Any, derivative: Any, dtype: Any) -> Any:
    from tinygrad_act.base import as_float_array

    return _engine.chain_rule(as_float_array(grad, "backward"), derivative, dtype)


def dask_chain_rule(owner: str, grad_output: Any, derivative: Any, dtype: Any) -> Any:
    import dask.array as da

    grad = check_same(owner, "grad_output", derivative, grad_output)
    check_shape(owner, "grad_output", grad, derivative.shape)
    grad = _check_dask(owner + ".backward", grad)
    if grad.chunks != derivative.chunks:  # block i must meet block i: the gradient's split
        grad = grad.rechunk(derivative.chunks)
    map_blocks: Any = da.map_blocks
    return map_blocks(_chain_rule_block, grad, derivative, dtype, dtype=dtype)


# ---------------------------------------------------------------------------
# Parameters, buffers and conversions


def namespace_of(a: Any) -> Any:
    """The namespace to compute with on `a`: NumPy's module for NumPy arrays, else
    the `Namespace` of its library."""
    return np if type(a) is np.ndarray else Namespace(a)


def to_numpy(a: Any) -> Any:
    """A NumPy copy of any array (through the host for device arrays)."""
    if isinstance(a, np.ndarray):
        return np.array(a)
    if is_dask(a):
        return np.asarray(a.compute())
    import array_api_compat

    a = detach(a)
    if array_api_compat.is_torch_array(a):
        return a.cpu().numpy().copy()
    if array_api_compat.is_cupy_array(a):
        return a.get()
    if array_api_compat.is_jax_array(a):
        return np.array(a)  # JAX copies it from its device
    return np.from_dlpack(a).copy()


def like(value: Any, reference: Any) -> Any:
    """`value` (NumPy or any library) as an array of `reference`'s library, device and dtype."""
    if type(reference) is np.ndarray:
        return value if type(value) is np.ndarray else to_numpy(value)
    import array_api_compat

    if (
        type(value) is type(reference)
        and value.dtype == reference.dtype
        and array_api_compat.device(value) == array_api_compat.device(reference)
    ):
        return value
    space = Namespace(reference)
    host = value if type(value) is np.ndarray else to_numpy(value)
    return space.asarray(host, dtype=reference.dtype, device=space.device)


def update(array: Any, value: Any) -> Any:
    """`array` holding `value`: written in place for NumPy, a new array otherwise
    (JAX's arrays are immutable, and so we treat every other library's)."""
    if type(array) is np.ndarray:
        array[...] = value
        return array
    return value


def accumulate(p: Any, value: Any) -> None:
    """``p.grad += value``: in place for NumPy, a new array for other libraries."""
    if type(p.grad) is np.ndarray:
        p.grad += value
    else:
        p.grad = p.grad + value


def follow(parameters: Any, x: Any) -> None:
    """Move each parameter (data and grad) to the library and device of `x`, if not there.

    A foreign `x` gets float64 parameters (float32 on a device without float64);
    NumPy input moves them back to NumPy float64.
    """
    for p in parameters:
        if type(x) is np.ndarray:
            if type(p.data) is not np.ndarray:
                p.data = np.asarray(to_numpy(p.data), np.float64)
                p.grad = np.asarray(to_numpy(p.grad), np.float64)
            continue
        import array_api_compat

        space = Namespace(x)
        data = p.data
        same = (
            type(data) is not np.ndarray
            and array_api_compat.array_namespace(data) is space.xp
            and array_api_compat.device(data) == space.device
        )
        if not same:
            template = space.zeros((), dtype=space.dtype, device=space.device)
            p.data = like(data, template)
            p.grad = like(p.grad, template)


# ---------------------------------------------------------------------------
# Layers written with the namespace (Softmax, GLU, PReLU, Linear, the losses)


def prepare(owner: str, x: Any, *, dask: bool = False) -> tuple[Namespace, Array, Array]:
    """For a foreign `x`: its `Namespace`, `x` in a float dtype, and `x` in the compute dtype.

    Dask arrays are a `TypeError` unless `dask`: only the layers that say so take them.
    """
    if not dask and is_dask(x):
        raise TypeError(
            f"{owner} does not take Dask arrays: the elementwise activations, Softmax, "
            "LogSoftmax and Softmin do; compute this step in NumPy (x.compute())"
        )
    space = namespace(x, owner)
    x = space.float_input(detach(x), owner)
    return space, x, space.astype(x, space.dtype)  # a copy: our own, for the cache


def quiet(function: Callable[..., Any], *arrays: Any) -> Any:
    """``function(*arrays)`` without NumPy's warnings (array-api-strict computes with NumPy)."""
    with np.errstate(all="ignore"):
        return function(*arrays)


def dask_rows(owner: str, x: Any, axis: int) -> Any:
    """`x` rechunked lazily so that each chunk holds whole rows along `axis`.

    The chunks along the other axes stay as they are: block i of the result holds
    the rows of block i of `x`. A row must fit in memory; the array need not.
    """
    x = _check_dask(owner, x)
    axis = axis % x.ndim
    return x if len(x.chunks[axis]) == 1 else x.rechunk({axis: -1})


def dask_rowwise(function: Callable[..., Any], *arrays: Any, dtype: Any) -> Any:
    """``function(*chunks)`` for aligned chunks of Dask arrays, lazily."""
    import dask.array as da

    map_blocks: Any = da.map_blocks
    return map_blocks(function, *arrays, dtype=dtype)


def float_array(x: Any, owner: str) -> Array:
    """A foreign `x` in a real floating dtype (Dask: NumPy chunks), detached."""
    if is_dask(x):
        return _check_dask(owner, x)  # type: ignore[no-any-return]
    return namespace(x, owner).float_input(detach(x), owner)  # type: ignore[no-any-return]


def astype(xp: Any, a: Any, dtype: Any) -> Any:
    """`a` in `dtype`, a new array: NumPy's method, or the standard's function.

    A value beyond the dtype's range becomes inf, quietly.
    """
    if xp is np:
        with np.errstate(over="ignore", invalid="ignore"):
            return a.astype(dtype)
    return xp.astype(a, dtype)
