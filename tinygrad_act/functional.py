"""Activations as plain functions: f, f' and f'' of every built-in, the tutorial's way.

For every elementwise activation ``name`` there are ``name(x, **parameters)``,
``name_derivative(x, **parameters)`` and ``name_second_derivative(x, **parameters)``,
with the parameters (and defaults) of its layer class: ``elu(x, alpha=1.0)``,
``leaky_relu_derivative(x, negative_slope=0.2)``. They run the layer's own kernels,
so accuracy and dtype rules are the layers': float16, float32 and float64 keep
their dtype and are computed in float64, rounded once; bool and integers become
float64. Nothing is cached.

`softmax`, `log_softmax` and `softmin` act along an axis. Their derivative is a
Jacobian, not an elementwise function, so it has no function here: use the
layer's ``backward`` for vector-Jacobian products, or `Softmax.jacobian`.

The tutorial's sigmoid and its derivative:

>>> import numpy as np
>>> x = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
>>> sigmoid(x)
array([[0.52497919],
       [0.549834  ],
       [0.57444252],
       [0.59868766],
       [0.62245933]])
>>> sigmoid_derivative(x)
array([[0.24937604],
       [0.24751657],
       [0.24445831],
       [0.24026075],
       [0.23500371]])

and where ``s * (1 - s)`` from a rounded ``s`` gives 0, the exact values:

>>> sigmoid_derivative(np.array([40.0, 700.0]))
array([4.24835426e-018, 9.85967654e-305])
>>> sigmoid_second_derivative(np.array([40.0, 700.0]))
array([-4.24835426e-018, -9.85967654e-305])
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api
from tinygrad_act.activations import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from tinygrad_act.base import Activation, Array, as_float_array, no_grad


def _value(layer: Activation, x: npt.ArrayLike) -> Array:
    y, _ = layer._evaluate(x, derivative=False)
    return y


def _wide(layer: Activation, x: npt.ArrayLike) -> tuple[Array, np.dtype[np.floating]]:
    """`x` as an array to compute on, and the dtype of the result.

    NOTE: float16 is passed as float64, so that f' and f'' round once to float16
    (the layers keep f' of float16 in float32, for backward).
    """
    array = as_float_array(x, type(layer).__name__)
    return (array.astype(np.float64) if array.dtype == np.float16 else array), array.dtype


def _first(layer: Activation, x: npt.ArrayLike) -> Array:
    if type(x) is not np.ndarray and _array_api.is_foreign(x):  # computed in its library
        _, derivative = layer._evaluate(x, derivative=True)
        foreign: Any = x
        xp = _array_api.namespace(foreign, type(layer).__name__)
        return _array_api.astype(xp, derivative, foreign.dtype)  # type: ignore[no-any-return]
    wide, dtype = _wide(layer, x)
    _, derivative = layer._evaluate(wide, derivative=True)
    assert derivative is not None  # asked for with derivative=True
    return derivative.astype(dtype, copy=False)


def _second(layer: Activation, x: npt.ArrayLike) -> Array:
    if type(x) is not np.ndarray and _array_api.is_foreign(x):  # computed in its library
        return layer.second_derivative(x)
    wide, dtype = _wide(layer, x)
    return layer.second_derivative(wide).astype(dtype, copy=False)


def sigmoid(x: npt.ArrayLike) -> Array:
    """f(x) = 1 / (1 + e^-x), elementwise (`Sigmoid`)."""
    return _value(Sigmoid(), x)


def sigmoid_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `sigmoid`, elementwise (`Sigmoid`)."""
    return _first(Sigmoid(), x)


def sigmoid_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `sigmoid`, elementwise (`Sigmoid`)."""
    return _second(Sigmoid(), x)


def tanh(x: npt.ArrayLike) -> Array:
    """f(x) = tanh x, elementwise (`Tanh`)."""
    return _value(Tanh(), x)


def tanh_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `tanh`, elementwise (`Tanh`)."""
    return _first(Tanh(), x)


def tanh_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `tanh`, elementwise (`Tanh`)."""
    return _second(Tanh(), x)


def relu(x: npt.ArrayLike) -> Array:
    """f(x) = max(x, 0), elementwise (`ReLU`)."""
    return _value(ReLU(), x)


def relu_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `relu`, elementwise (`ReLU`)."""
    return _first(ReLU(), x)


def relu_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `relu`, elementwise (`ReLU`)."""
    return _second(ReLU(), x)


def leaky_relu(x: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """f(x) = x for x > 0, negative_slope * x otherwise, elementwise (`LeakyReLU`)."""
    return _value(LeakyReLU(negative_slope), x)


def leaky_relu_derivative(x: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """f'(x) of `leaky_relu`, elementwise (`LeakyReLU`)."""
    return _first(LeakyReLU(negative_slope), x)


def leaky_relu_second_derivative(x: npt.ArrayLike, negative_slope: float = 0.01) -> Array:
    """f''(x) of `leaky_relu`, elementwise (`LeakyReLU`)."""
    return _second(LeakyReLU(negative_slope), x)


def elu(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f(x) = x for x > 0, alpha (e^x - 1) otherwise, elementwise (`ELU`)."""
    return _value(ELU(alpha), x)


def elu_derivative(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f'(x) of `elu`, elementwise (`ELU`)."""
    return _first(ELU(alpha), x)


def elu_second_derivative(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f''(x) of `elu`, elementwise (`ELU`)."""
    return _second(ELU(alpha), x)


def selu(x: npt.ArrayLike) -> Array:
    """f(x) = scale * elu(x, alpha) with SELU's constants, elementwise (`SELU`)."""
    return _value(SELU(), x)


def selu_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `selu`, elementwise (`SELU`)."""
    return _first(SELU(), x)


def selu_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `selu`, elementwise (`SELU`)."""
    return _second(SELU(), x)


def softplus(x: npt.ArrayLike, beta: float = 1.0) -> Array:
    """f(x) = log(1 + e^(beta x)) / beta, elementwise (`Softplus`)."""
    return _value(Softplus(beta), x)


def softplus_derivative(x: npt.ArrayLike, beta: float = 1.0) -> Array:
    """f'(x) of `softplus`, elementwise (`Softplus`)."""
    return _first(Softplus(beta), x)


def softplus_second_derivative(x: npt.ArrayLike, beta: float = 1.0) -> Array:
    """f''(x) of `softplus`, elementwise (`Softplus`)."""
    return _second(Softplus(beta), x)


def silu(x: npt.ArrayLike) -> Array:
    """f(x) = x sigma(x), elementwise (`SiLU`)."""
    return _value(SiLU(), x)


def silu_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `silu`, elementwise (`SiLU`)."""
    return _first(SiLU(), x)


def silu_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `silu`, elementwise (`SiLU`)."""
    return _second(SiLU(), x)


def gelu(x: npt.ArrayLike, approximate: Literal["none", "tanh"] = "none") -> Array:
    """f(x) = x Phi(x), or its tanh approximation, elementwise (`GELU`)."""
    return _value(GELU(approximate), x)


def gelu_derivative(x: npt.ArrayLike, approximate: Literal["none", "tanh"] = "none") -> Array:
    """f'(x) of `gelu`, elementwise (`GELU`)."""
    return _first(GELU(approximate), x)


def gelu_second_derivative(
    x: npt.ArrayLike, approximate: Literal["none", "tanh"] = "none"
) -> Array:
    """f''(x) of `gelu`, elementwise (`GELU`)."""
    return _second(GELU(approximate), x)


def log_sigmoid(x: npt.ArrayLike) -> Array:
    """f(x) = log sigma(x) = -softplus(-x), elementwise (`LogSigmoid`)."""
    return _value(LogSigmoid(), x)


def log_sigmoid_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `log_sigmoid`, elementwise (`LogSigmoid`)."""
    return _first(LogSigmoid(), x)


def log_sigmoid_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `log_sigmoid`, elementwise (`LogSigmoid`)."""
    return _second(LogSigmoid(), x)


def softsign(x: npt.ArrayLike) -> Array:
    """f(x) = x / (1 + |x|), elementwise (`Softsign`)."""
    return _value(Softsign(), x)


def softsign_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `softsign`, elementwise (`Softsign`)."""
    return _first(Softsign(), x)


def softsign_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `softsign`, elementwise (`Softsign`)."""
    return _second(Softsign(), x)


def mish(x: npt.ArrayLike) -> Array:
    """f(x) = x tanh(softplus(x)), elementwise (`Mish`)."""
    return _value(Mish(), x)


def mish_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `mish`, elementwise (`Mish`)."""
    return _first(Mish(), x)


def mish_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `mish`, elementwise (`Mish`)."""
    return _second(Mish(), x)


def hardtanh(x: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    """f(x) = x clipped to [min_val, max_val], elementwise (`Hardtanh`)."""
    return _value(Hardtanh(min_val, max_val), x)


def hardtanh_derivative(x: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    """f'(x) of `hardtanh`, elementwise (`Hardtanh`)."""
    return _first(Hardtanh(min_val, max_val), x)


def hardtanh_second_derivative(
    x: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0
) -> Array:
    """f''(x) of `hardtanh`, elementwise (`Hardtanh`)."""
    return _second(Hardtanh(min_val, max_val), x)


def relu6(x: npt.ArrayLike) -> Array:
    """f(x) = min(max(x, 0), 6), elementwise (`ReLU6`)."""
    return _value(ReLU6(), x)


def relu6_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `relu6`, elementwise (`ReLU6`)."""
    return _first(ReLU6(), x)


def relu6_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `relu6`, elementwise (`ReLU6`)."""
    return _second(ReLU6(), x)


def hardsigmoid(x: npt.ArrayLike) -> Array:
    """f(x) = (x + 3) / 6 clipped to [0, 1], elementwise (`Hardsigmoid`)."""
    return _value(Hardsigmoid(), x)


def hardsigmoid_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `hardsigmoid`, elementwise (`Hardsigmoid`)."""
    return _first(Hardsigmoid(), x)


def hardsigmoid_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `hardsigmoid`, elementwise (`Hardsigmoid`)."""
    return _second(Hardsigmoid(), x)


def hardswish(x: npt.ArrayLike) -> Array:
    """f(x) = x (x + 3) / 6 between -3 and 3, 0 below, x above, elementwise (`Hardswish`)."""
    return _value(Hardswish(), x)


def hardswish_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `hardswish`, elementwise (`Hardswish`)."""
    return _first(Hardswish(), x)


def hardswish_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `hardswish`, elementwise (`Hardswish`)."""
    return _second(Hardswish(), x)


def celu(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f(x) = x for x > 0, alpha (e^(x / alpha) - 1) otherwise, elementwise (`CELU`)."""
    return _value(CELU(alpha), x)


def celu_derivative(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f'(x) of `celu`, elementwise (`CELU`)."""
    return _first(CELU(alpha), x)


def celu_second_derivative(x: npt.ArrayLike, alpha: float = 1.0) -> Array:
    """f''(x) of `celu`, elementwise (`CELU`)."""
    return _second(CELU(alpha), x)


def softshrink(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f(x) = x shrunk towards 0 by lambd, elementwise (`Softshrink`)."""
    return _value(Softshrink(lambd), x)


def softshrink_derivative(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f'(x) of `softshrink`, elementwise (`Softshrink`)."""
    return _first(Softshrink(lambd), x)


def softshrink_second_derivative(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f''(x) of `softshrink`, elementwise (`Softshrink`)."""
    return _second(Softshrink(lambd), x)


def hardshrink(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f(x) = x where |x| > lambd, 0 otherwise, elementwise (`Hardshrink`)."""
    return _value(Hardshrink(lambd), x)


def hardshrink_derivative(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f'(x) of `hardshrink`, elementwise (`Hardshrink`)."""
    return _first(Hardshrink(lambd), x)


def hardshrink_second_derivative(x: npt.ArrayLike, lambd: float = 0.5) -> Array:
    """f''(x) of `hardshrink`, elementwise (`Hardshrink`)."""
    return _second(Hardshrink(lambd), x)


def tanhshrink(x: npt.ArrayLike) -> Array:
    """f(x) = x - tanh x, elementwise (`Tanhshrink`)."""
    return _value(Tanhshrink(), x)


def tanhshrink_derivative(x: npt.ArrayLike) -> Array:
    """f'(x) of `tanhshrink`, elementwise (`Tanhshrink`)."""
    return _first(Tanhshrink(), x)


def tanhshrink_second_derivative(x: npt.ArrayLike) -> Array:
    """f''(x) of `tanhshrink`, elementwise (`Tanhshrink`)."""
    return _second(Tanhshrink(), x)


def threshold(x: npt.ArrayLike, threshold: float = 0.0, value: float = 0.0) -> Array:
    """f(x) = x where x > threshold, value otherwise, elementwise (`Threshold`)."""
    return _value(Threshold(threshold, value), x)


def threshold_derivative(x: npt.ArrayLike, threshold: float = 0.0, value: float = 0.0) -> Array:
    """f'(x) of `threshold`, elementwise (`Threshold`)."""
    return _first(Threshold(threshold, value), x)


def threshold_second_derivative(
    x: npt.ArrayLike, threshold: float = 0.0, value: float = 0.0
) -> Array:
    """f''(x) of `threshold`, elementwise (`Threshold`)."""
    return _second(Threshold(threshold, value), x)


def softmax(x: npt.ArrayLike, axis: int = -1) -> Array:
    """Softmax along `axis` (`Softmax`): non-negative, sums to 1."""
    with no_grad():
        return Softmax(axis)(x)


def log_softmax(x: npt.ArrayLike, axis: int = -1) -> Array:
    """The logarithm of softmax along `axis` (`LogSoftmax`), accurate for tiny probabilities."""
    with no_grad():
        return LogSoftmax(axis)(x)


def softmin(x: npt.ArrayLike, axis: int = -1) -> Array:
    """Softmin along `axis` (`Softmin`): the softmax of -x."""
    with no_grad():
        return Softmin(axis)(x)
