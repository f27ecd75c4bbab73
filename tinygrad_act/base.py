"""Base classes: `Layer`, the interface of everything composable, and `Activation`.

`Activation` holds everything elementwise activations share: input conversion
and validation, dtype rules, caching, and the chain rule. A subclass only says
its math, in `function` and `derivative`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from tinygrad_act import _engine

#: A floating-point array; what activations receive and return.
Array = npt.NDArray[np.floating[Any]]
#: What forward saves for backward: a tuple of arrays the shape of the input (or None).
Saved = tuple[Any, ...]


def as_float_array(x: npt.ArrayLike, owner: str) -> Array:
    """Return `x` as a float16/32/64 array; bool and integers become float64.

    Raises `TypeError` naming the dtype for anything else (complex, object,
    strings, datetimes, structured arrays, long double).
    """
    array = np.asarray(x)
    kind = array.dtype.kind
    if kind in "biu":
        return array.astype(np.float64)
    if kind == "f" and array.dtype.itemsize <= 8:
        return array
    raise TypeError(
        f"{owner} expects real floating-point input (float16, float32 or float64; "
        f"bool and integers are converted to float64), got dtype {array.dtype}"
    )


class Parameter:
    """A trainable array: ``data``, and ``grad`` of the same shape and dtype.

    Layers add to ``grad`` in backward; an optimizer reads it and updates ``data``.
    """

    def __init__(self, data: npt.ArrayLike) -> None:
        self.data: Array = np.array(data, dtype=np.float64)
        self.grad: Array = np.zeros_like(self.data)

    def zero_grad(self) -> None:
        """Set ``grad`` to zero, in place."""
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def working_dtypes(
    dtype: np.dtype[Any], *, float32_in_float64: bool
) -> tuple[np.dtype[Any], np.dtype[Any], np.dtype[Any]]:
    """The (compute, output, cache) dtypes for input of `dtype`."""
    if dtype == np.float16:
        # NOTE: NumPy's float16 ufuncs are slow and inexact; compute and cache in float32
        # so that forward and backward both round once.
        return np.dtype(np.float32), dtype, np.dtype(np.float32)
    if dtype == np.float32 and float32_in_float64:
        return np.dtype(np.float64), dtype, dtype
    return dtype, dtype, dtype


def check_grad_output(
    owner: Layer, grad_output: npt.ArrayLike, output_shape: tuple[int, ...] | None
) -> Array:
    """Convert `grad_output` for ``owner.backward``, or raise a clear error.

    `output_shape` is the shape of the last forward's output, None if forward
    has not run: a `RuntimeError`. A `grad_output` of another shape is a
    `ValueError` naming both shapes.
    """
    name = type(owner).__name__
    if output_shape is None:
        raise RuntimeError(f"{name}.backward called before forward: call forward(x) first")
    grad = as_float_array(grad_output, f"{name}.backward")
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
        """A copy of every parameter by name: ``np.savez(path, **layer.state_dict())``."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike]) -> None:
        """Load parameters saved by `state_dict`, bit for bit.

        A missing key, an unexpected key or a shape mismatch raises `ValueError`
        naming the parameter; the layer is then left unchanged.
        """
        name = type(self).__name__
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(
                f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        arrays = {key: np.asarray(value) for key, value in state.items()}
        for key, value in arrays.items():
            if value.shape != params[key].data.shape:
                raise ValueError(
                    f"{name}.load_state_dict: {key!r} has shape {value.shape}, "
                    f"the parameter has shape {params[key].data.shape}"
                )
        for key, value in arrays.items():
            params[key].data[...] = value

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


class Activation(Layer):
    r"""Base class for elementwise activations :math:`y = f(x)`.

    A subclass implements two methods:

    - ``function(x)`` returns :math:`f(x)`;
    - ``derivative(x, y)`` returns :math:`f'(x)` elementwise, given the input
      ``x`` and the output ``y = f(x)``.

    Class attributes say what backward needs, so the layer caches no more:
    set ``needs_input = False`` when :math:`f'` is a function of ``y`` alone
    (``derivative`` then receives ``x=None``), and ``needs_output = False``
    when it is a function of ``x`` alone (``y=None``).

    Extension point: an activation whose accurate derivative needs something
    other than ``x`` or ``y`` (for example :math:`1 - y` without cancellation)
    overrides the pair ``function_and_saved(x) -> (y, saved)`` and
    ``derivative_from_saved(*saved)`` instead; ``saved`` is a tuple of arrays
    the size of ``x``. `Sigmoid` and `Tanh` are built this way.

    The base class does the rest: converts the input (float16, float32 and
    float64 keep their dtype, bool and integers become float64, anything else
    is a `TypeError`); computes float16 in float32 and rounds once; keeps its
    own copy of what it caches, so changing the input or output in place after
    forward does not change backward; and applies the chain rule,
    ``grad_input = grad_output * f'(x)``.

    Examples
    --------
    A complete activation, the softsign :math:`f(x) = x / (1 + |x|)`:

    >>> import numpy as np
    >>> class Softsign(Activation):
    ...     def function(self, x):
    ...         return x / (1 + np.abs(x))
    ...     def derivative(self, x, y):
    ...         return 1 / (1 + np.abs(x)) ** 2
    ...     needs_output = False
    >>> layer = Softsign()
    >>> layer(np.array([-1.0, 0.0, 3.0]))
    array([-0.5 ,  0.  ,  0.75])
    >>> layer.backward(np.ones(3))
    array([0.25  , 1.    , 0.0625])
    """

    needs_input: ClassVar[bool] = True
    needs_output: ClassVar[bool] = True
    #: Points where f' jumps (ReLU's 0); gradient checks keep away from them.
    kinks: ClassVar[tuple[float, ...]] = ()
    #: Compute float32 input in float64 and round once. Set it when the
    #: float32 formula is not accurate enough (NumPy's float32 exp has errors
    #: of over 2 ulp).
    float32_in_float64: ClassVar[bool] = False

    # What the last forward left for backward; _shape is None until forward runs.
    _saved: Saved = ()
    _dtype: np.dtype[Any] = np.dtype(np.float64)
    _shape: tuple[int, ...] | None = None

    def function(self, x: Array) -> Array:
        """Return f(x) elementwise."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement function(x), "
            "or function_and_saved(x) with derivative_from_saved(*saved)"
        )

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        """Return f'(x) elementwise, given x and y = f(x)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement derivative(x, y), "
            "or function_and_saved(x) with derivative_from_saved(*saved)"
        )

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        """Return f(x) and the arrays backward needs (by default x and y)."""
        y = self.function(x)
        return y, (x if self.needs_input else None, y if self.needs_output else None)

    def derivative_from_saved(self, *saved: Any) -> Array:
        """Return f'(x) from what `function_and_saved` saved."""
        x, y = saved
        return self.derivative(x, y)

    def _dtypes(self, dtype: np.dtype[Any]) -> tuple[np.dtype[Any], np.dtype[Any], np.dtype[Any]]:
        return working_dtypes(dtype, float32_in_float64=self.float32_in_float64)

    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, type(self).__name__)
        # The cache is our own: a cache of the same size is overwritten, not reallocated.
        reuse = self._saved if self._shape == x.shape and self._dtype == x.dtype else ()
        y, saved = _engine.map_blocks(self.function_and_saved, x, (), self._dtypes(x.dtype), reuse)
        self._saved = saved
        self._dtype = x.dtype
        self._shape = x.shape
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        grad = check_grad_output(self, grad_output, self._shape)
        return _engine.map_blocks(self._chain_rule, grad, self._saved, self._dtypes(self._dtype))[0]

    def _chain_rule(self, grad: Array, *saved: Any) -> tuple[Array, Saved]:
        return grad * self.derivative_from_saved(*saved), ()
