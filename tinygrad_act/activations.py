"""Activation layers: one small class per activation, its math and nothing else.

Elementwise activations subclass `Activation` and write their math once, as the
static method ``function_and_derivative(xp, x, ...)`` returning f(x) and f'(x)
(and ``derivatives(xp, x, ...)`` returning f'(x) and f''(x)), against the math
namespace ``xp``: NumPy, the compiled scalar functions, or another array library.
`Softmax`, `LogSoftmax`, `Softmin` and `GLU` act along an axis; `PReLU` has a
learnable slope and `RReLU` random ones: they are `Layer` subclasses.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api, _array_math, _memory, _numpy_math
from tinygrad_act._engine import (
    chain_rule,
    compiled_form_of,
    derivative_dtype,
    engine,
    evaluate,
    float32_input_of,
    float32_safe,
    float32_when,
    kernel_helper,
    rare_case,
    run_chunks,
    run_parts,
    step_derivative,
)
from tinygrad_act.base import (
    Activation,
    Array,
    Layer,
    Parameter,
    as_float_array,
    check_grad_output,
    check_real,
    is_grad_enabled,
)

# NOTE on kernels: each ``function_and_derivative`` runs on whole NumPy arrays and,
# compiled, on one float64 scalar at a time. So it uses only ``xp``'s functions,
# arithmetic and comparisons: no ``np.`` calls, no in-place updates, no indexing,
# and ``xp.where`` to choose, with both branches safe to compute everywhere.

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_ONE_OVER_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_ONE_OVER_SQRT_PI = 1 / math.sqrt(math.pi)
# -1/sqrt(2) as a sum of two floats, for the argument of erfc in GELU
_MINUS_SQRT_HALF = -0.7071067811865476
_MINUS_SQRT_HALF_TAIL = 4.833646656726457e-17
_VELTKAMP = 134217729.0  # 2^27 + 1: splits a float64 into two 26-bit halves
_MINUS_SQRT_HALF_HI = -0.7071067839860916  # its leading 26 bits (Veltkamp's split)
_MINUS_SQRT_HALF_LO = _MINUS_SQRT_HALF - _MINUS_SQRT_HALF_HI
_E_MINUS_64 = math.exp(-64)
_E_MINUS_32 = math.exp(-32)
_E_MINUS_640 = 1.1259823474166023e-278  # e^-640, correctly rounded
_E_MINUS_640_REST = 6.73534334829168e-17  # e^-640 = _E_MINUS_640 (1 + this), to 1e-33
_E_640 = 8.881133903158874e277  # e^640, correctly rounded
_E_640_REST = -5.571639323349616e-17  # e^640 = _E_640 (1 + this), to 1e-33
_E_MINUS_708 = 3.307553003638408e-308  # e^-708, correctly rounded (and normal)
#: Below this |x / alpha|, CELU's f = x (1 + x / (2 alpha) + ...) rounds to x itself.
_TINY_QUOTIENT = 2.0**-60
_DEEP_DENSITY = 6.398279740081261e-29  # e^-64 / sqrt(2 pi), correctly rounded
_GELU_CUBIC = 0.044715


def _logistic(x: Array, xp: Any = np, e: Array | None = None) -> tuple[Array, Array]:
    """sigma(x) and 1 - sigma(x) of an array of namespace `xp`, accurate in both tails;
    `e` is e^-|x| where the caller has it already."""
    if e is None:
        e = xp.exp(-xp.abs(x))  # NOTE: e^-|x| <= 1 never overflows
    r = 1 / (1 + e)
    return xp.where(x >= 0, r, e * r), xp.where(x >= 0, e * r, r)


class Sigmoid(Activation):
    r"""The logistic sigmoid.

    .. math::
        f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad f'(x) = \sigma(x)\,(1 - \sigma(x))

    Shape: input ``(*)``, output ``(*)``, the same shape.

    Notes
    -----
    With :math:`e = e^{-|x|} \le 1`, which never overflows, :math:`c = e/(1 + e) =
    \sigma(-|x|)` and :math:`\sigma(|x|) = 1 - c`: :math:`\sigma(x)` is
    :math:`1 - c` for :math:`x \ge 0` and :math:`c` otherwise, and :math:`f'(x) =
    c (1 - c)`. forward rounds :math:`f'(x)` once and caches it. ``s * (1 - s)`` from
    a rounded ``s`` is 0 once ``s`` rounds to 1 (x > 36.7 in float64), while
    :math:`c (1 - c)` stays accurate to an ulp or two in both tails. The kernel is
    `float32_safe`: on the compiled engine float32 input is computed in float32
    arithmetic, within 2.4 ulp for f and 3.2 for f' (every float32 with 2**-30 <= |x| <
    110, checked against float64).

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid = Sigmoid()
    >>> sigmoid(np.array([-40.0, 0.0, 40.0]))
    array([4.24835426e-18, 5.00000000e-01, 1.00000000e+00])
    >>> sigmoid.backward(np.ones(3))
    array([4.24835426e-18, 2.50000000e-01, 4.24835426e-18])
    """

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp_nonpositive(-xp.abs(x))
        c = e / (1 + e)  # sigma(-|x|), accurate in the tail
        # NOTE: sigma(|x|) = 1 - c, not 1 / (1 + e): one division an element, not two. c
        # <= 1/2, so the subtraction adds at most an ulp. (c = e r from r = 1 / (1 + e)
        # rounds once more, and was 4.02 ulp off in f' at x = 7.6238.)
        return xp.where(x >= 0, 1 - c, c), c - c * c

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        """f' and f'' = f' (1 - 2 sigma(x)) = -f' tanh(x/2): no cancellation anywhere."""
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        first = r * (e * r)
        # |f''| = e (1 - e) / (1 + e)^3, e = e^-|x|, with 1 - e = -expm1(-|x|) accurate near 0
        # and 1 + e = q + q_error exactly, (q + q_error)^-3 = q^-3 (1 - 3 q_error / q)
        q = 1 + e
        q_error = (1 - q) + e
        curvature = e * -xp.expm1(-xp.abs(x)) / (q * q * q) * (1 - 3 * q_error * r)
        # NOTE: + 0.0 makes f''(-0.0) = +0.0, as in PyTorch
        return first, xp.where(x >= 0, -curvature, curvature) + 0.0


class Tanh(Activation):
    r"""The hyperbolic tangent.

    .. math::
        f(x) = \tanh x, \qquad f'(x) = 1 - \tanh^2 x

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`1 - y^2` from a rounded :math:`y` is 0 once :math:`y` rounds to ±1
    (x > 19.1 in float64). Instead, with :math:`e = e^{-2|x|}`,
    :math:`m = 1 - |y| = 2e/(1 + e)` is accurate in the tail, and
    :math:`1 - y^2 = m\,(2 - m)`. The compiled engine's ``tanh`` computes the same
    :math:`e` and :math:`m`, written the same way, and LLVM computes each once for both.
    The kernel is `float32_safe`: on the compiled engine float32 input is computed in
    float32 arithmetic, within 0.88 ulp for f and 3.46 for f' (every float32 with
    2**-30 <= |x| < 110, checked against float64).

    Examples
    --------
    >>> tanh = Tanh()
    >>> tanh(np.array([0.0, 1.0, 30.0]))
    array([0.        , 0.76159416, 1.        ])
    >>> tanh.backward(np.ones(3))
    array([1.00000000e+00, 4.19974342e-01, 3.50260431e-26])
    """

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp_nonpositive(-2 * xp.abs(x))
        m = 2 * e / (1 + e)  # 1 - |tanh x|
        return xp.tanh(x), m * (2 - m)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        """f' and f'' = -2 tanh(x) f'."""
        e = xp.exp(-2 * xp.abs(x))
        m = 2 * e / (1 + e)
        return m * (2 - m), -2 * xp.tanh(x) * _tanh_derivative_scaled(xp, x)


class ReLU(Activation):
    r"""The rectified linear unit.

    .. math::
        f(x) = \max(x, 0), \qquad f'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    At the kink, :math:`f'(0) = 0`, and :math:`f(-0.0) = -0.0`, as in PyTorch. NaN
    propagates through forward and backward. Exact in any precision, the kernel is
    `float32_safe`: the compiled engine runs float32 input in float32.

    Examples
    --------
    >>> relu = ReLU()
    >>> relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    >>> relu.backward(np.ones(3))
    array([0., 0., 1.])
    """

    kinks = (0.0,)

    @staticmethod
    @float32_safe  # exact in any precision
    @step_derivative  # f' is 0 or 1: kept in a byte an element
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        # sign(f(x)) is 1, 0 (f(-0.0) is -0.0), or NaN for NaN: _step's result, in one pass
        y = xp.where(x < 0, 0.0, x)
        return y, xp.sign(y)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        return _step(xp, x, 0.0), _zero(xp, x)


@kernel_helper
def _step(xp: Any, x: Any, below: Any) -> Any:
    """1 for x > 0, `below` for x <= 0, NaN for NaN."""
    return xp.where(x > 0, 1.0, xp.where(x <= 0, below, x))


class LeakyReLU(Activation):
    r"""ReLU with a small slope for negative input.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ \text{negative\_slope} \cdot x & x \le 0 \end{cases},
        \qquad
        f'(x) = \begin{cases} 1 & x > 0 \\ \text{negative\_slope} & x \le 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    negative_slope : float
        Slope for :math:`x \le 0` (default 0.01), as in PyTorch; any finite number.

    Notes
    -----
    At the kink, :math:`f'(0)` = ``negative_slope``, as in PyTorch. NaN propagates.

    Examples
    --------
    >>> leaky = LeakyReLU(negative_slope=0.1)
    >>> leaky(np.array([-2.0, 0.0, 3.0]))
    array([-0.2,  0. ,  3. ])
    >>> leaky.backward(np.ones(3))
    array([0.1, 0.1, 1. ])
    """

    kinks = (0.0,)

    negative_slope: float

    def __init__(self, negative_slope: float = 0.01) -> None:
        self._settle(negative_slope=negative_slope)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        return _reals(type(self).__name__, settings, "negative_slope")

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, negative_slope: float) -> tuple[Any, Any]:
        return xp.where(x > 0, x, negative_slope * x), _step(xp, x, negative_slope)

    @staticmethod
    def derivatives(xp: Any, x: Any, negative_slope: float) -> tuple[Any, Any]:
        return _step(xp, x, negative_slope), _zero(xp, x)


class ELU(Activation):
    r"""The exponential linear unit.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^x - 1) & x \le 0 \end{cases},
        \qquad
        f'(x) = \begin{cases} 1 & x > 0 \\ \alpha\,e^x & x \le 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    alpha : float
        Scale of the negative part (default 1.0); any finite number.

    Notes
    -----
    Uses ``expm1`` for :math:`e^x - 1`, accurate near 0. :math:`f'` for
    :math:`x \le 0` is :math:`\alpha e^x`, not :math:`y + \alpha`, which cancels for
    very negative :math:`x`. At the kink, :math:`f'(0) = \alpha` (1 for the default),
    and :math:`f(-0.0) = -0.0`, as in PyTorch. For :math:`|\alpha| > 1`,
    :math:`\alpha e^x` is normal a little below x = -708.39, where :math:`e^x` is
    subnormal: :math:`e^{x + 708}` is carried there and :math:`e^{-708}` applied last.
    For :math:`|\alpha| \le 1` (the default) that needs no scaling, and the kernel is
    `float32_safe`: on the compiled engine float32 input is computed in float32
    arithmetic, with ``alpha`` rounded to float32 (an ``alpha`` below float32's normal
    range runs in float64), within 1.5 ulp for f and 2.0 for f' (ELU(0.7), every float32
    with 2**-30 <= |x| < 110, checked against float64).

    Examples
    --------
    >>> elu = ELU()
    >>> elu(np.array([-50.0, 0.0, 2.0]))
    array([-1.,  0.,  2.])
    >>> elu.backward(np.ones(3))
    array([1.92874985e-22, 1.00000000e+00, 1.00000000e+00])
    """

    kinks = (0.0,)

    alpha: float

    def __init__(self, alpha: float = 1.0) -> None:
        self._settle(alpha=alpha)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        return _reals(type(self).__name__, settings, "alpha")

    def _kernel(self, derivative: bool) -> tuple[Any, tuple[float, ...], bool]:
        # |alpha| <= 1: alpha e^x is subnormal wherever e^x is, and the kernel without the
        # scaling gives the same f and f', faster
        kernel, parameters, compiled = super()._kernel(derivative)  # alpha checked
        if type(self) is ELU and abs(parameters[0]) <= 1:
            return _elu_alpha_within_1, parameters, True
        return kernel, parameters, compiled

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
        negative = xp.where(x > 0, 0.0, x)  # NOTE: keeps exp finite on the branch not taken
        slope = _alpha_exp(xp, negative, alpha)
        # NOTE: f(+-0.0) = alpha (+-0.0), as alpha expm1(+-0.0) is, written out: the loops
        # for float32 input lost the sign of alpha expm1(-0.0) beside _alpha_exp
        f = xp.where(x < 0, alpha * xp.expm1(negative), xp.where(x > 0, x, alpha * x))
        return f, xp.where(x > 0, 1.0, slope)

    @staticmethod
    def derivatives(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
        """f' and f'' = alpha e^x for x < 0, 0 for x >= 0 (PyTorch's f''(0))."""
        exp = _alpha_exp(xp, xp.where(x > 0, 0.0, x), alpha)
        return xp.where(x > 0, 1.0, exp), xp.where(x < 0, exp, _zero(xp, x))


@kernel_helper
def _alpha_exp(xp: Any, v: Any, alpha: float) -> Any:
    """alpha e^v for v <= 0, rounded once wherever it is normal.

    NOTE: below v = -708.39, e^v is subnormal while alpha e^v (|alpha| > 1) need not be:
    rounded to a subnormal first, it was 5e9 ulp off for alpha = 1e10 near v = -731. There
    e^(v + 708) is carried (v + 708 is exact, and alpha e^(v + 708) finite) and e^-708
    applied last.
    """
    deep = v < -708.39
    return alpha * xp.exp(xp.where(deep, v + 708, v)) * xp.where(deep, _E_MINUS_708, 1.0)


@float32_safe
def _elu_alpha_within_1(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
    """`ELU`'s kernel for |alpha| <= 1 (1, the default): alpha e^x needs no scaling, and
    the kernel keeps its bounds in float32 arithmetic. (Above 1, alpha e^x is normal
    where e^x is subnormal: in float32 from x = -87.3, in float64 from -708.4.)"""
    negative = xp.where(x > 0, 0.0, x)  # NOTE: keeps exp finite on the branch not taken
    return (
        xp.where(x > 0, x, alpha * xp.expm1(negative)),
        xp.where(x > 0, 1.0, alpha * xp.exp(negative)),
    )


class SELU(Activation):
    r"""The scaled exponential linear unit: ``scale * ELU(alpha)`` with fixed constants.

    .. math::
        f(x) = \lambda \begin{cases} x & x > 0 \\ \alpha\,(e^x - 1) & x \le 0 \end{cases},
        \qquad
        f'(x) = \lambda \begin{cases} 1 & x > 0 \\ \alpha\,e^x & x \le 0 \end{cases}

    with :math:`\alpha \approx 1.6733` and :math:`\lambda \approx 1.0507` (Klambauer et al.,
    2017; the same constants as PyTorch). :math:`f'(0) = \lambda\alpha`, as in PyTorch.
    The kernel is `float32_safe`, as ELU's: float32 within 2.27 ulp for f and f' on the
    compiled engine (every float32 with 2**-30 <= |x| < 110, checked against float64).

    Shape: input ``(*)``, output ``(*)``.

    Examples
    --------
    >>> selu = SELU()
    >>> selu(np.array([-1.0, 0.0, 1.0]))
    array([-1.11133074,  0.        ,  1.05070099])
    """

    kinks = (0.0,)
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any, alpha: float, scale: float) -> tuple[Any, Any]:
        negative = xp.where(x > 0, 0.0, x)
        return (
            scale * xp.where(x > 0, x, alpha * xp.expm1(negative)),
            scale * xp.where(x > 0, 1.0, alpha * xp.exp(negative)),
        )

    @staticmethod
    def derivatives(xp: Any, x: Any, alpha: float, scale: float) -> tuple[Any, Any]:
        """f' and f'' = scale alpha e^x for x < 0, 0 for x >= 0 (PyTorch's f''(0))."""
        exp = scale * (alpha * xp.exp(xp.where(x > 0, 0.0, x)))
        return xp.where(x > 0, scale, exp), xp.where(x < 0, exp, _zero(xp, x))


class Softplus(Activation):
    r"""A smooth ReLU.

    .. math::
        f(x) = \frac{1}{\beta} \log(1 + e^{\beta x}), \qquad f'(x) = \sigma(\beta x)

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    beta : float
        Sharpness (default 1.0), positive; larger is closer to ReLU.

    Notes
    -----
    Computed as :math:`\max(x, 0) + \log(1 + e^{-|z|}) / \beta`, :math:`z = \beta x`,
    with ``log1p``: no overflow at x = 1000, full relative accuracy at x = -1000.
    Unlike PyTorch, there is no ``threshold`` above which the result switches to
    ``x``: the exact form costs nothing here. :math:`\beta |x|` is carried as its
    rounded value plus the exact rounding error, so that for any :math:`\beta` the
    tails are as accurate as for :math:`\beta = 1` (rounding :math:`\beta x` alone
    would cost about :math:`|\beta x|` ulp, hundreds in the far left tail). Where
    :math:`e^{-\beta |x|}` is subnormal, :math:`f = e^{\beta x}/\beta` (for
    :math:`\beta < 1`) and :math:`f''` (for :math:`\beta > 1`) can still be normal:
    :math:`e^{640 - \beta|x|}` is carried there and :math:`e^{-640}` applied last. A
    :math:`\beta` that is a power of two from 1 up (the default) needs neither, and its
    kernel is `float32_safe`: on the compiled engine float32
    input is then computed in float32 arithmetic, within 1.64 ulp for f and 2.83 for f'
    (every float32 with 2**-30 <= |x| < 110, checked against float64, for beta 1 and 2).

    Examples
    --------
    >>> softplus = Softplus()
    >>> softplus(np.array([-1000.0, 0.0, 1000.0]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+03])
    >>> softplus.backward(np.ones(3))
    array([0. , 0.5, 1. ])
    """

    beta: float

    def __init__(self, beta: float = 1.0) -> None:
        self._settle(beta=beta)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        return _reals(type(self).__name__, settings, "beta", positive=True)

    def _kernel(self, derivative: bool) -> tuple[Any, tuple[float, ...], bool]:
        # a power of two from 1 up (an int too): the same f by the kernel without the
        # correction, faster, and f' without the rounding of 1 + e carried, which needs no
        # more (0.73 of its bound at beta = 1); below 1, f is normal where e^(beta x) is
        # subnormal: see the other kernel
        kernel, parameters, compiled = super()._kernel(derivative)  # beta checked
        beta = float(parameters[0]) if type(self) is Softplus else 0.0  # a subclass: its own
        if beta >= 1 and _array_math.power_of_two(beta):
            return _softplus_exact_product, parameters, True
        return kernel, parameters, compiled

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, beta: float) -> tuple[Any, Any]:
        e, scale = _exp_minus_product(xp, beta, x)
        tiny = e * scale  # e^(-beta |x|)
        r = _one_over_one_plus(xp, tiny)
        # NOTE: log1p(e) = e where e is scaled: f = e / beta is scaled last, rounded once
        f = xp.maximum(x, 0.0) + xp.log1p(e) / beta * scale
        return f, xp.where(x >= 0, r, tiny * r)

    @staticmethod
    def derivatives(xp: Any, x: Any, beta: float) -> tuple[Any, Any]:
        """f' = sigma(beta x) and f'' = beta sigma(beta x) sigma(-beta x)."""
        e, scale = _exp_minus_product(xp, beta, x)
        tiny = e * scale
        d = 1 + tiny
        r = 1 / d
        # NOTE: f'' = beta e / (1 + e)^2 with the rounding error of 1 + e carried (exact,
        # as e <= 1): 1 / (d + error)^2 = (1 - 2 error / d) / d^2 to first order
        second = beta * e / (d * d) * (1 - 2 * ((1 - d) + tiny) * r) * scale
        return xp.where(x >= 0, r, tiny * r), second


@kernel_helper
def _one_over_one_plus(xp: Any, e: Any) -> Any:
    """1 / (1 + e) for 0 <= e <= 1, with the rounding error of 1 + e (exact: Fast2Sum)
    carried to first order: only the division rounds."""
    d = 1 + e
    r = 1 / d
    return r - r * r * (e - (d - 1))


@kernel_helper
def _exp_minus_product(xp: Any, beta: float, x: Any) -> tuple[Any, Any]:
    """e^(-beta |x|) for beta > 0, with the rounding error of beta |x| carried, as a
    pair (e, scale) whose product it is: scale is 1, or e^-640 where e^(-beta |x|) is
    subnormal (beta |x| > 708.39), and there e = e^(640 - beta |x|) is normal.

    NOTE: beta |x| = z + lo exactly (|lo| <= half an ulp of z), and e^(-z - lo) =
    e^-z (1 - lo) to first order; 640 - z is exact. In the far left tail f = e / beta
    (beta < 1) and f'' = beta e (beta > 1) are normal where e^-z is not, and each is
    rounded once with the scale applied last: rounding e^-z to a subnormal first lost up
    to 860 ulp of f (beta = 1e-3) and 920 of f'' (beta = 1000.5). lo is dropped from z =
    1500 on, where e is 0 (and lo is NaN for |x| = inf). e lo would be subnormal in the
    far tail, and flushed to 0 where subnormals are (XLA on the CPU): 1 - lo is not. Its
    rounding, at most 2**-54, is carried as a second product, which a flush costs at most
    half an ulp (before, 1 - lo and the product each rounded: f' reached 4.3 ulp).
    """
    z, lo = xp.two_product(beta, xp.abs(x))
    deep = z > 708.39
    # NOTE: e^-640 rounded is off by a relative 6.7e-17: carried with lo, its sign fixed
    lo = xp.where(deep, lo - _E_MINUS_640_REST, lo)
    # 1 - lo = w + w_lo exactly (Fast2Sum), so that the factor rounds only in the product
    w_lo = xp.where(z < 1500.0, lo, 0.0)
    w = 1 - w_lo
    w_lo = (1 - w) - w_lo
    power = xp.exp_nonpositive(xp.where(deep, 640 - z, -z))
    return power * w + power * w_lo, xp.where(deep, _E_MINUS_640, 1.0)


@float32_safe
def _softplus_exact_product(xp: Any, x: Any, beta: float) -> tuple[Any, Any]:
    """`Softplus`'s kernel for a beta that is a power of two from 1 up (1, the default):
    beta x is exact, and nothing needs carrying, in float32 arithmetic too. (Below 1, f =
    log1p(e) / beta is normal in the left tail where e = e^(beta x) is already
    subnormal: in float32 arithmetic 512 ulp off for beta = 2**-10, in float64 511.)"""
    z = beta * x
    e = xp.exp_nonpositive(-xp.abs(z))
    r = 1 / (1 + e)
    # NOTE: times 1 / beta, an exact power of two: the same bits as dividing, without a
    # division an element
    return xp.maximum(x, 0.0) + xp.log1p(e) * (1 / beta), xp.where(z >= 0, r, e * r)


@float32_safe
@float32_when(lambda alpha: 0 < alpha <= 1)
def _celu_exact_quotient(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
    """`CELU`'s kernel for an alpha that is a power of two (1, the default): x / alpha is
    exact, and nothing needs carrying, in float32 arithmetic too for an alpha from 0 to
    1. (Beyond 1, x / alpha is subnormal in float32 for the smallest normal x, and loses
    bits; below 0, expm1(x / alpha) overflows before alpha brings it back.)"""
    # NOTE: 0 keeps exp finite on the branch not taken. Dividing inside the where, not
    # after it, keeps f(-0.0) = -0.0 on numba: compiled for float32 and float16 input,
    # where(x > 0, 0.0, x) / alpha lost the sign of -0.0.
    z = xp.where(x > 0, 0.0, x / alpha)
    # f = x where it rounds to x (see `CELU`'s kernel), z subnormal included
    keep = (x > 0) | (xp.abs(z) < _TINY_QUOTIENT)
    return xp.where(keep, x, alpha * xp.expm1(z)), xp.where(x > 0, 1.0, xp.exp(z))


@kernel_helper
def _silu_deep(xp: Any, x: Any) -> Any:
    """Where `SiLU`'s kernel rescales: x < -80, where 1 + e^x rounds to 1."""
    return x < -80


class SiLU(Activation):
    r"""The sigmoid-weighted linear unit, also called Swish.

    .. math::
        f(x) = x\,\sigma(x), \qquad f'(x) = \sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`\sigma(x)` and :math:`1 - \sigma(x)` are both computed from
    :math:`e^{-|x|}`, so neither tail overflows or cancels. Below x = -80, where
    :math:`1 + e^x` rounds to 1, :math:`e^{x + 32}` is carried instead (x + 32 is exact
    wherever :math:`e^{x + 32}` is not 0) and the product is scaled by :math:`e^{-32}`
    last, so that :math:`x e^x` is rounded once where :math:`e^x` alone would be
    subnormal (from x = -708). :math:`f'` has a zero at
    :math:`x \approx -1.2785`; for x < 0 it is computed as
    :math:`\sigma(x)\,(1 + x - x\,\sigma(x))`, where 1 + x is exact from x = -0.5 down,
    so that near the zero the sum cancels only the rounding error of
    :math:`x\,\sigma(x)`: its relative error still grows there in float64, but
    its absolute error stays about 1e-16. float32 is computed in float64 and rounded
    once: in float32 arithmetic, f' was up to 6.8 ulp off near its zero, beyond the
    4 ulp the testing kit allows float32.

    Examples
    --------
    >>> silu = SiLU()
    >>> silu(np.array([-800.0, 0.0, 2.0]))
    array([-0.        ,  0.        ,  1.76159416])
    >>> silu.backward(np.ones(3))
    array([-0.        ,  0.5       ,  1.09078425])
    """

    @staticmethod
    @rare_case(_silu_deep)
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        deep = xp.rarely(_silu_deep(xp, x))
        e = xp.exp_nonpositive(xp.where(deep, x + 32, -xp.abs(x)))
        # NOTE: sigma(x) by one division, 1 / (1 + e) or e / (1 + e); e times 1 / (1 + e)
        # rounds once more, which put f 3.90 ulp off (of 4) at x = -15.9405
        s = xp.where(x >= 0, 1.0, e) / (1 + e)  # sigma(x), times e^32 where deep
        complement = e * s  # 1 - sigma(x) for x >= 0, where alone it is used
        scale = xp.where(deep, _E_MINUS_32, 1.0)
        y = xp.maximum(x, -1000.0) * s * scale
        return y, _silu_slope(xp, x, s, complement) * scale

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        """f' and f'' = sigma(x) (1 - sigma(x)) (2 - x tanh(x/2)), zero at x = +-2.3994."""
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        s = xp.where(x >= 0, r, e * r)
        complement = xp.where(x >= 0, e * r, r)
        a = xp.clip(x, -1000.0, 1000.0)  # NOTE: inf * 0 would be NaN; the products are unchanged
        # NOTE: f'' ~ |x| e^-|x| is normal a little beyond where e^-|x| is not (|x| > 708):
        # there e^(64 - |x|) is carried and e^-64 applied last, so the product rounds once
        deep = xp.abs(x) > 512
        e_scaled = xp.exp(xp.where(deep, 64.0, 0.0) - xp.abs(x))
        r_scaled = 1 / (1 + e_scaled)
        scale = xp.where(deep, _E_MINUS_64, 1.0)
        tail = r_scaled * (e_scaled * r_scaled) * (2 - a * xp.tanh(0.5 * a))
        return _silu_slope(xp, x, s, complement), tail * scale


@kernel_helper
def _silu_slope(xp: Any, x: Any, s: Any, complement: Any) -> Any:
    """SiLU's f' from s = sigma(x) and its complement 1 - sigma(x). In `SiLU`'s deep
    tail (x < -80) s is sigma(x) times e^32, and so is the result: there x s is far
    below an ulp of 1 + x."""
    # NOTE: clipping x makes -inf * 0 a 0 (the limit), not NaN; the product is unchanged
    a = xp.clip(x, -1000.0, 1000.0)
    # NOTE: f' = sigma(x) (1 + x - x sigma(x)) for x < 0, where 1 + x is exact from
    # x = -0.5 down: near f''s zero the sum cancels only the rounding error of x sigma(x)
    return xp.where(x < 0, s * ((1 + a) - a * s), s * (1 + a * complement))


class GELU(Activation):
    r"""The Gaussian error linear unit.

    .. math::
        f(x) = x\,\Phi(x), \qquad f'(x) = \Phi(x) + x\,\varphi(x)

    where :math:`\Phi` is the standard normal CDF and :math:`\varphi` its density.
    With ``approximate="tanh"``,

    .. math::
        f(x) = \tfrac12 x\,(1 + \tanh z) = x\,\sigma(2z), \quad
        z = \sqrt{2/\pi}\,(x + 0.044715\,x^3),
        \qquad f'(x) = \sigma(2z) + 2x\,\sigma(2z)\,\sigma(-2z)\,z'(x)

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    approximate : {"none", "tanh"}
        "none" (the default, as in PyTorch) is exact; "tanh" is PyTorch's approximation.

    Notes
    -----
    :math:`\Phi(x) = \tfrac12 \operatorname{erfc}(t)` with :math:`t = -x/\sqrt2`. The
    rounding of :math:`t` alone would cost :math:`2t^2` ulp in the left tail (hundreds),
    so :math:`t = t_{hi} + t_{lo}` is carried exactly (Dekker's product) and
    :math:`\operatorname{erfc}(t_{hi} + t_{lo}) = \operatorname{erfc}(t_{hi})
    - \tfrac{2}{\sqrt\pi} e^{-t_{hi}^2} t_{lo}`. Likewise :math:`\varphi(x)` uses
    :math:`x^2` split exactly. Below x = -36, where :math:`\Phi(x)` nears the
    subnormals before f does, :math:`\Phi(x) = \varphi(x) S/|x|` with the asymptotic
    series :math:`S = 1 - x^{-2} + 3x^{-4} - \dots`, all scaled by :math:`e^{64}`
    until the last product. The tanh form uses :math:`\tfrac12(1 + \tanh z) =
    \sigma(2z)`, accurate in the left tail. :math:`f'` has a zero near
    :math:`x \approx -0.75`; close to it the relative error of :math:`f'` grows in float64.
    On the compiled engine, float64 input runs a form that takes :math:`e^{-x^2/2}` once for
    both :math:`\Phi` and :math:`\varphi` (`_gelu_compiled`), in two thirds of the time.
    Its float32 input runs a shorter form in float64
    arithmetic, whose :math:`\Phi` is within 1e-9 (two fitted polynomials, without
    the parts carried in two), rounded once: within 0.513 ulp for f and 0.515 for
    :math:`f'`, zero included (every float32 from 2**-30 to 25, both signs), in 0.4 of
    the time.

    Examples
    --------
    >>> gelu = GELU(approximate="tanh")
    >>> gelu(np.array([-1.0, 0.0, 1.0]))
    array([-0.15880801,  0.        ,  0.84119199])
    >>> gelu.backward(np.ones(3))
    array([-0.08296408,  0.5       ,  1.08296408])
    """

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        self.approximate = approximate
        self._check_approximate()

    def _kernel(self, derivative: bool) -> tuple[Any, tuple[float, ...], bool]:
        approximate = self.approximate
        if type(approximate) is not str:  # set since the constructor: a str, or an error
            self._check_approximate()
        if approximate == "tanh":
            return _gelu_tanh, (), True
        if approximate != "none":
            self._check_approximate()
        return _gelu, (), True

    def _check_approximate(self) -> None:
        """As the constructor: `approximate` may have been set since."""
        name = self.approximate
        if not isinstance(name, str) or name not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {name!r}")

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        return _gelu(xp, x)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        """The exact form's f' and f'' = phi(x) (2 - x^2); `second_derivative` picks the form."""
        a = xp.clip(x, -40.0, 40.0)
        hi, lo = _exact_square(xp, a)
        # NOTE: beyond |x| = 30, e^(64 - x^2/2) is carried and e^-64 applied last, so that
        # f'' ~ -x^2 phi(x) rounds once where phi(x) alone would be subnormal (|x| > 37.6)
        deep = xp.abs(a) > 30
        density = xp.exp(xp.where(deep, 64.0, 0.0) - 0.5 * hi) * (1 - 0.5 * lo)
        scale = xp.where(deep, _E_MINUS_64, 1.0)
        # NOTE: 2 - hi is exact near x^2 = 2 (Sterbenz), so f'' keeps its accuracy at its zeros
        second = density * _ONE_OVER_SQRT_2PI * ((2 - hi) - lo) * scale
        return _gelu(xp, x)[1], second

    def second_derivative(self, x: npt.ArrayLike) -> Array:
        self._check_approximate()
        if self.approximate == "none":
            return super().second_derivative(x)
        return self._second_derivative(_gelu_tanh_derivatives, x)


@kernel_helper
def _gelu(xp: Any, x: Any) -> tuple[Any, Any]:
    """Exact GELU: x Phi(x) and Phi(x) + x phi(x)."""
    a = xp.clip(x, -40.0, 40.0)  # beyond, Phi is 0 or 1 and phi is 0 in float64
    # t = -a / sqrt(2) = t_hi + t_lo, by Dekker's exact product with a two-part constant
    t_hi = a * _MINUS_SQRT_HALF
    split = _VELTKAMP * a
    a_hi = split - (split - a)
    a_lo = a - a_hi
    c_hi, c_lo = _MINUS_SQRT_HALF_HI, _MINUS_SQRT_HALF_LO
    t_lo = (((a_hi * c_hi - t_hi) + a_hi * c_lo + a_lo * c_hi) + a_lo * c_lo) + (
        a * _MINUS_SQRT_HALF_TAIL
    )
    # a^2 = hi + lo exactly; e^(-hi / 2) serves phi(a) = e^(-a^2 / 2) / sqrt(2 pi) and
    # the correction for t_lo, erfc'(t) t_lo = -2/sqrt(pi) e^(-t^2) t_lo, tiny beside erfc
    hi = a * a
    lo = ((a_hi * a_hi - hi) + 2 * a_hi * a_lo) + a_lo * a_lo
    # NOTE: below x = -36, Phi(x) and phi(x) near float64's subnormals (from x = -37.5)
    # while f and f' are still normal: there e^(64 - x^2/2) is carried, Phi(x) is
    # phi(x) S / |x| with S = 1 - 1/x^2 + 3/x^4 - ... (8 terms reach 1e-19), and e^-64
    # is applied last, so that nothing is rounded as a subnormal before it is multiplied
    deep = a < -36
    gauss = xp.exp_nonpositive(xp.where(deep, 64.0, 0.0) - 0.5 * hi)
    cdf = 0.5 * xp.erfc(t_hi) - _ONE_OVER_SQRT_PI * gauss * t_lo
    tail = gauss * (1 - 0.5 * lo)  # phi(x) sqrt(2 pi), times e^64 where deep
    density = tail * _ONE_OVER_SQRT_2PI
    # where deep, x Phi(x) = -phi(x) S
    u = 1 / xp.where(deep, hi, 1.0)
    series = 1 - u * (1 - u * (3 - u * (15 - u * (105 - u * (945 - u * (10395 - u * 135135))))))
    y, slope = xp.maximum(x, -1000.0) * cdf, cdf + a * density
    return (
        xp.where(deep, -(tail * series) * _DEEP_DENSITY, y),
        xp.where(deep, a * tail * (1 - series * u) * _DEEP_DENSITY, slope),
    )


@compiled_form_of(_gelu)
def _gelu_compiled(xp: Any, x: Any) -> tuple[Any, Any]:
    """Exact GELU on the compiled engine, for float64 input.

    `_gelu` takes e^(-x^2/2) twice, once inside erfc (of t, carried in two parts) and once
    for phi(x), and scales by e^64 below x = -36. Here `normal_tail` gives Phi(-|x|) and
    phi(x) from one exponential, each a normal float times 2^k, and 2^k is applied last,
    so that where Phi(x) is subnormal, f and f' are rounded as subnormals only in their
    last step, with no series: the loop
    takes 0.65 of `_gelu`'s time, f is within 1.95 ulp (3.24 for `_gelu` on the same
    points) and f' within 1.45 times its cancellation factor (3.76).
    """
    a = xp.clip(x, -40.0, 40.0)  # beyond, Phi is 0 or 1 and phi is 0 in float64
    tail, density, k = xp.normal_tail(a)  # Phi(-|a|) = tail 2^k, phi(a) = density 2^k
    cdf = 1 - xp.ldexp(tail, k)  # Phi(a) for a >= 0
    y = xp.where(a < 0, xp.ldexp(a * tail, k), x * cdf)
    slope = xp.where(a < 0, xp.ldexp(tail + a * density, k), cdf + a * xp.ldexp(density, k))
    return y, slope


#: `_gelu_float32`'s polynomials, lowest degree first: P(q) (halved) for Phi(-|x|),
#: |x| >= 1, and (Phi(x) - 1/2) / x in x^2 for |x| < 1.
_PHI_TAIL = (
    0.5479978307307043,
    -0.4882743589451779,
    0.3866043099702804,
    -0.27042719867420606,
    0.16542688705687045,
    -0.08700129787254596,
    0.03818098368744649,
    -0.013211384562627422,
    0.0030910021987324197,
    -6.35016335004082e-05,
    -0.00027124831474869177,
)
_PHI_CENTRAL = (
    0.39894228040143254,
    -0.06649038006690415,
    0.009973557009997329,
    -0.001187328214970036,
    0.00011543468418668516,
    -9.444642968312572e-06,
    6.659377655557975e-07,
    -4.117982215621137e-08,
    2.2310686417578675e-09,
    -9.125298302471769e-11,
    9.88022168729792e-15,
)


@float32_input_of(_gelu)
def _gelu_float32(xp: Any, x: Any) -> tuple[Any, Any]:
    """Exact GELU for float32 input on the compiled engine, in float64 arithmetic.

    A float32 result needs Phi(x) to about 1e-9, not float64's 1e-16, so the parts that
    `_gelu` carries in two (t, erfc's factors) are plain floats here, and its
    polynomial is shorter. Both its polynomials, `_PHI_TAIL` and `_PHI_CENTRAL`, were
    fitted by least squares in relative error on Chebyshev nodes (against SciPy's
    ``erfcx`` and mpmath's ``ncdf``).
    """
    # NOTE: beyond |x| = 20, f rounds to float32's -0.0 or x, and f' to -0.0 or 1
    a = xp.minimum(xp.abs(x), 20.0)
    h = a * a
    e = xp.exp_nonpositive(-0.5 * h)  # sqrt(2 pi) phi(x)
    # Phi(-a) = e P(q) / (u + 4), u = a / sqrt 2, q = (u - 4) / (u + 4), as erfc's (P
    # halved here): within 7.3e-10 for 1 <= a <= 20
    u = a * 0.7071067811865476
    r = 1 / (u + 4)
    q = (u - 4) * r
    p = _PHI_TAIL[-1]
    for c in _PHI_TAIL[-2::-1]:  # Horner's rule
        p = p * q + c
    m = p * r  # Phi(-a) / e
    tail = e * m  # Phi(-a)
    # (Phi(x) - 1/2) / x, a polynomial in x^2 within 4.9e-16 for |x| < 1: there,
    # 1/2 + x w keeps the bits that 1 - Phi(-a) would lose, and f' = 1/2 + x (w + phi),
    # whose terms cancel near its zero (x = -0.7518), as accurately as float64 allows
    w = _PHI_CENTRAL[-1]
    for c in _PHI_CENTRAL[-2::-1]:
        w = w * h + c
    small = a < 1
    density = e * 0.3989422804014327
    cdf = xp.where(small, 0.5 + x * w, xp.where(x < 0, tail, 1 - tail))
    clipped = xp.clip(x, -20.0, 20.0)
    slope = xp.where(small, 0.5 + x * (w + density), cdf + clipped * density)
    return xp.maximum(x, -20.0) * cdf, slope


@kernel_helper
def _gelu_tanh(xp: Any, x: Any) -> tuple[Any, Any]:
    """GELU's tanh approximation: x sigma(2z) and its derivative."""
    a = xp.clip(x, -100.0, 100.0)  # NOTE: keeps a^3 finite; beyond, sigma(2z) is 0 or 1
    z2 = 2 * _SQRT_2_OVER_PI * (a + _GELU_CUBIC * a * a * a)
    e = xp.exp_nonpositive(-xp.abs(z2))
    r = 1 / (1 + e)
    s = xp.where(z2 >= 0, r, e * r)  # sigma(2z)
    s_complement = xp.where(z2 >= 0, e * r, r)
    dz = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * a * a)
    slope = s + 2 * a * s * s_complement * dz
    # NOTE: f' < 0 below x = -1 (its zero is at -0.7518): where s underflows, the sum is
    # 0 + -0, which is +0; -|f'| gives the -0.0 of SiLU's x e^x
    return xp.maximum(x, -1000.0) * s, xp.where(x < -1, -xp.abs(slope), slope)


def _gelu_tanh_derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
    """GELU's tanh approximation: f' and f'' = 2 s (1 - s) (2 z' + x (z'' - 2 z'^2 tanh z)),
    with s = sigma(2z)."""
    a = xp.clip(x, -100.0, 100.0)
    z2 = 2 * _SQRT_2_OVER_PI * (a + _GELU_CUBIC * a * a * a)
    # NOTE: as in SiLU, e^(64 - |2z|) where e^-|2z| alone would be subnormal, e^-64 last
    deep = xp.abs(z2) > 512
    e = xp.exp(xp.where(deep, 64.0, 0.0) - xp.abs(z2))
    r = 1 / (1 + e)
    dz = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * a * a)
    d2z = _SQRT_2_OVER_PI * 6 * _GELU_CUBIC * a
    curvature = 2 * dz + a * (d2z - 2 * dz * dz * xp.tanh(0.5 * z2))
    second = 2 * (r * (e * r)) * curvature * xp.where(deep, _E_MINUS_64, 1.0)
    return _gelu_tanh(xp, x)[1], second


@kernel_helper
def _tanh_derivative_scaled(xp: Any, x: Any) -> Any:
    """1 - tanh^2 x, to be multiplied before it is rounded to a subnormal.

    NOTE: f'' = -2 tanh(x) (1 - tanh^2 x) stays normal slightly beyond where
    e^-2|x| becomes subnormal (|x| > 354); there e^(64 - 2|x|) is carried instead
    and e^-64 applied last, so the product rounds once.
    """
    deep = xp.abs(x) > 256
    e = xp.exp(xp.where(deep, 64.0, 0.0) - 2 * xp.abs(x))
    m = 2 * e / (1 + e)
    return m * (2 - m) * xp.where(deep, _E_MINUS_64, 1.0)


@kernel_helper
def _zero(xp: Any, x: Any) -> Any:
    """0, and NaN for NaN: the second derivative of a piecewise-linear activation."""
    return xp.where(xp.isnan(x), x, 0.0)


@kernel_helper
def _inside(xp: Any, x: Any, low: float, high: float, value: float) -> Any:
    """`value` for low < x < high, 0 elsewhere (the ends included), NaN for NaN."""
    return xp.where(x > low, xp.where(x < high, value, 0.0), _zero(xp, x))


@kernel_helper
def _above(xp: Any, x: Any, threshold: float) -> Any:
    """1 for x > threshold, 0 for x <= threshold, NaN for NaN (x or a threshold set to NaN)."""
    return xp.where(x > threshold, 1.0, xp.where(x <= threshold, 0.0, x - threshold))


@kernel_helper
def _exact_square(xp: Any, a: Any) -> tuple[Any, Any]:
    """a^2 = hi + lo exactly (Dekker's product, with Veltkamp's split of a)."""
    split = _VELTKAMP * a
    a_hi = split - (split - a)
    a_lo = a - a_hi
    hi = a * a
    return hi, ((a_hi * a_hi - hi) + 2 * a_hi * a_lo) + a_lo * a_lo


class LogSigmoid(Activation):
    r"""The logarithm of the sigmoid: :math:`-\operatorname{softplus}(-x)`.

    .. math::
        f(x) = \log \sigma(x) = -\log(1 + e^{-x}), \qquad f'(x) = \sigma(-x),
        \qquad f''(x) = -\sigma(x)\,\sigma(-x)

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    Computed as :math:`\min(x, 0) - \log(1 + e^{-|x|})` with ``log1p``: no overflow
    at x = -1000 (where it is x), and :math:`-e^{-x}` to full relative accuracy at
    x = 40, where ``log(sigmoid(x))`` is 0. :math:`\sigma(\pm x)` come from
    :math:`e^{-|x|}` as in `Sigmoid`, so :math:`f''(40) = -e^{-40}`, not 0. The kernel
    is `float32_safe`: on the compiled engine float32 input is computed in float32
    arithmetic, within 1.64 ulp for f and 2.83 for f' (every float32 with 2**-30 <= |x|
    < 110, checked against float64).

    Examples
    --------
    >>> log_sigmoid = LogSigmoid()
    >>> log_sigmoid(np.array([-1000.0, 0.0, 40.0]))
    array([-1.00000000e+03, -6.93147181e-01, -4.24835426e-18])
    >>> log_sigmoid.backward(np.ones(3))
    array([1.00000000e+00, 5.00000000e-01, 4.24835426e-18])
    """

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp_nonpositive(-xp.abs(x))
        r = 1 / (1 + e)  # sigma(|x|)
        # NOTE: a negated sum, so that f is -0.0 where it underflows (x > 745 in float64),
        # as the exact value is negative; min(x, 0) - log1p(e) would be 0.0 - 0.0 = +0.0
        return -(xp.log1p(e) - xp.minimum(x, 0.0)), xp.where(x >= 0, e * r, r)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, e * r, r), -(r * (e * r))


class Softsign(Activation):
    r"""A sigmoid-shaped function with polynomial tails.

    .. math::
        f(x) = \frac{x}{1 + |x|}, \qquad f'(x) = \frac{1}{(1 + |x|)^2},
        \qquad f''(x) = \frac{-2 \operatorname{sign}(x)}{(1 + |x|)^3}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`f(\pm\infty) = \pm 1`, the limits (PyTorch gives NaN): the input is
    clipped to :math:`\pm 10^{300}`, where f already rounds to ±1. :math:`f'` is
    :math:`d \cdot d` with :math:`d = 1/(1 + |x|)`, which stays accurate where
    :math:`(1 + |x|)^2` would overflow. :math:`f''` jumps at 0 (from 2 to -2);
    :math:`f''(0) = 0`.

    Examples
    --------
    >>> softsign = Softsign()
    >>> softsign(np.array([-3.0, 0.0, 1.0]))
    array([-0.75,  0.  ,  0.5 ])
    >>> softsign.backward(np.ones(3))
    array([0.0625, 1.    , 0.25  ])
    """

    kinks = (0.0,)  # f'' jumps there

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        a = xp.clip(x, -1e300, 1e300)
        d = 1 / (1 + xp.abs(x))
        return a / (1 + xp.abs(a)), d * d

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        d = 1 / (1 + xp.abs(x))
        a = xp.minimum(xp.abs(x), 1e300)
        q = 1 + a
        q_error = xp.where(a > 1, (a - q) + 1, (1 - q) + a)  # 1 + |x| = q + q_error exactly
        # (q + q_error)^-3 = q^-3 (1 - 3 q_error / q): the rounding of 1 + |x| is undone
        return d * d, -2 * xp.sign(x) * ((1 - 3 * q_error * d) / (q * q * q))


@kernel_helper
def _mish_deep(xp: Any, x: Any) -> Any:
    """Where `_mish_parts` rescales: x < -512."""
    return x < -512


@kernel_helper
def _mish_parts(xp: Any, x: Any) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
    """Mish's pieces, from e = e^-|x| <= 1 (nothing overflows): t = tanh(softplus(x)),
    sigma(x), 1 - sigma(x), 1 - t^2 = k * m with m = e or 1, a scale, and e.

    With u = e^x, tanh(log(1 + u)) = n / (n + 2), n = u (u + 2). For x < 0, u = e:
    t = n / D, D = n + 2, and 1 - t^2 is computed as it reads. For x >= 0, u = 1/e:
    multiplied by e^2, t = (1 + 2e) / D and 1 - t = 2 e^2 / D, D = 1 + 2e + 2e^2, so
    1 - t^2 = (2e / D)(1 + t) e. The factor m of 1 - t^2 is kept apart so that e^2 never
    underflows before it is multiplied.
    Below x = -512, as in SiLU, e = e^(x + 64) (t and sigma carry the factor e^64,
    which is harmless there) and the results are multiplied by scale = e^-64 last.
    """
    positive = x >= 0
    deep = xp.rarely(_mish_deep(xp, x))
    e = xp.exp_nonpositive(xp.where(deep, x + 64, -xp.abs(x)))
    square = e * e
    n = 2 * e + square  # one rounding fewer than e * (e + 2), where it matters (e < 1)
    denominator = xp.where(positive, 1 + 2 * e * (1 + e), n + 2)
    t = xp.where(positive, 1 + 2 * e, n) / denominator
    # NOTE: for x < 0, the rounding errors of n and of n + 2 are carried into t = n / (n + 2)
    # (Fast2Sum: 2e >= e^2 and n < 4), with 1 / (n + 2) = (1 - t) / 2; likewise that of
    # 1 + e into 1 / (1 + e). Each was worth up to an ulp of f or f' in the left tail.
    n_error = square - (n - 2 * e)
    d_error = n - ((n + 2) - 2)
    t = xp.where(positive, t, t + (n_error * (1 - t) - t * d_error) * (0.5 - 0.5 * t))
    m = xp.where(positive, e, 1.0)
    r = _one_over_one_plus(xp, e)
    s, s_complement = xp.where(positive, r, e * r), xp.where(positive, e * r, r)
    # 1 - t^2 = k m: for x >= 0 from 1 - t = 2m / D, for x < 0 directly (t <= 0.61)
    k = xp.where(positive, 2 * m / denominator * (1 + t), 1 - t * t)
    return t, s, s_complement, k, m, xp.where(deep, _E_MINUS_64, 1.0), e


class Mish(Activation):
    r"""A self-regularised non-monotonic activation (Misra, 2019).

    .. math::
        f(x) = x \tanh(\operatorname{softplus}(x)), \qquad
        f'(x) = t + x\,S\,\sigma(x), \qquad
        f''(x) = S\,\sigma(x)\,\bigl(2 + x\,(1 - \sigma(x) - 2 t\,\sigma(x))\bigr)

    with :math:`t = \tanh(\operatorname{softplus}(x))` and :math:`S = 1 - t^2`.

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`t = n/(n + 2)` with :math:`n = e^x (e^x + 2)`, rewritten in
    :math:`e^{-|x|}` so that neither tail overflows; :math:`1 - t` is computed
    directly (it is :math:`2e^{-2x}/(1 + 2e^{-x} + 2e^{-2x})` for x > 0), so
    :math:`f'` and :math:`f''` keep their relative accuracy in the right tail, and
    in the left tail :math:`f \approx x e^x`. :math:`f(-\infty) = 0`, the limit
    (PyTorch gives NaN). :math:`f'` has a zero at :math:`x \approx -1.1924` and
    :math:`f''` zeros at :math:`x \approx -2.2564` and :math:`x \approx 1.4906`;
    close to them the relative error grows by the cancellation factor of the sum.

    Examples
    --------
    >>> mish = Mish()
    >>> mish(np.array([-1.0, 0.0, 1.0]))
    array([-0.30340146,  0.        ,  0.86509839])
    >>> mish.backward(np.ones(3))
    array([0.05921676, 0.6       , 1.04903622])
    """

    @staticmethod
    @rare_case(_mish_deep)
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        t, s, _, k, m, scale, e = _mish_parts(xp, x)
        # NOTE: clipping x makes -inf * 0 a 0 (the limit), not NaN; the product is unchanged
        a = xp.clip(x, -1000.0, 1000.0)
        # For x < 0, t and s are both nearly e: f' = e B with B = (1 + x) - e (1 + e) / D
        # - x e (4 + 8e + 4e^2 + e^3) / D^2, D = n + 2, 1 / D = (1 - t) / 2. 1 + x is exact
        # from x = -0.5 down, and the rest, small beside it in the tail, rounds little:
        # t + x k s rounded five times there, and reached 1.14 times its bound (x = -8.25).
        w = 0.5 - 0.5 * t
        cubic = 4 + e * (8 + e * (4 + e))
        tail = (1 + a) - e * (1 + e) * w - a * e * cubic * (w * w)
        slope = xp.where(x < 0, e * tail, t + (a * k * s) * m)
        return xp.maximum(x, -1000.0) * t * scale, slope * scale

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        t, s, s_complement, k, m, scale, _ = _mish_parts(xp, x)
        a = xp.clip(x, -1000.0, 1000.0)
        w = s_complement - 2 * t * s
        first = (t + (a * k * s) * m) * scale
        return first, (k * s * (2 + a * w)) * m * scale


class Hardtanh(Activation):
    r"""Clip to an interval.

    .. math::
        f(x) = \begin{cases} \text{min\_val} & x < \text{min\_val} \\
        \text{max\_val} & x > \text{max\_val} \\ x & \text{otherwise} \end{cases},
        \qquad f'(x) = \begin{cases} 1 & \text{min\_val} < x < \text{max\_val} \\
        0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    min_val, max_val : float
        The interval (default -1 and 1), finite, ``min_val < max_val``.

    Notes
    -----
    At both ends :math:`f' = 0`, as in PyTorch; :math:`f'' = 0`. ``-0.0`` stays
    ``-0.0``. NaN propagates through forward and backward.

    Examples
    --------
    >>> hardtanh = Hardtanh()
    >>> hardtanh(np.array([-2.0, 0.5, 1.0]))
    array([-1. ,  0.5,  1. ])
    >>> hardtanh.backward(np.ones(3))
    array([0., 1., 0.])
    """

    min_val: float
    max_val: float

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        self._settle(min_val=min_val, max_val=max_val)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        name = type(self).__name__
        checked = _reals(name, settings, "min_val", "max_val")
        if len(checked) == 2 and not checked["min_val"] < checked["max_val"]:
            raise ValueError(
                f"{name}: min_val must be less than max_val, got "
                f"min_val={settings['min_val']!r} and max_val={settings['max_val']!r}"
            )
        return checked

    @property
    def kinks(self) -> tuple[float, ...]:  # type: ignore[override]
        return (self.min_val, self.max_val)

    @staticmethod
    @step_derivative
    def function_and_derivative(xp: Any, x: Any, min_val: float, max_val: float) -> tuple[Any, Any]:
        y = xp.where(x < min_val, min_val, xp.where(x > max_val, max_val, x))
        return y, _inside(xp, x, min_val, max_val, 1.0)

    @staticmethod
    def derivatives(xp: Any, x: Any, min_val: float, max_val: float) -> tuple[Any, Any]:
        return _inside(xp, x, min_val, max_val, 1.0), _zero(xp, x)


class ReLU6(Hardtanh):
    r"""ReLU capped at 6: `Hardtanh` with ``min_val=0`` and ``max_val=6``.

    .. math::
        f(x) = \min(\max(x, 0), 6), \qquad
        f'(x) = \begin{cases} 1 & 0 < x < 6 \\ 0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`f'(0) = f'(6) = 0` and :math:`f(-0.0) = -0.0`, as in PyTorch.

    Examples
    --------
    >>> relu6 = ReLU6()
    >>> relu6(np.array([-1.0, 3.0, 8.0]))
    array([0., 3., 6.])
    """

    def __init__(self) -> None:
        super().__init__(0.0, 6.0)


class Hardsigmoid(Activation):
    r"""A piecewise-linear sigmoid.

    .. math::
        f(x) = \begin{cases} 0 & x \le -3 \\ 1 & x \ge 3 \\ (x + 3)/6 & \text{otherwise}
        \end{cases}, \qquad
        f'(x) = \begin{cases} 1/6 & -3 < x < 3 \\ 0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`(x + 3)/6`, not :math:`x/6 + 1/2`, which cancels near -3.
    :math:`f'(\pm 3) = 0`, as in PyTorch (whose 1/6 is rounded to float32 even in
    float64); :math:`f'' = 0`.

    Examples
    --------
    >>> hardsigmoid = Hardsigmoid()
    >>> hardsigmoid(np.array([-4.0, 0.0, 1.5]))
    array([0.  , 0.5 , 0.75])
    """

    kinks = (-3.0, 3.0)

    @staticmethod
    @step_derivative(value=1 / 6)  # f' is 0 or 1/6: kept in a byte an element
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        y = xp.where(x <= -3, 0.0, xp.where(x >= 3, 1.0, (x + 3) / 6))
        return y, _inside(xp, x, -3.0, 3.0, 1 / 6)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        return _inside(xp, x, -3.0, 3.0, 1 / 6), _zero(xp, x)


class Hardswish(Activation):
    r"""A piecewise-quadratic SiLU (Howard et al., 2019).

    .. math::
        f(x) = \begin{cases} 0 & x \le -3 \\ x & x \ge 3 \\ x (x + 3)/6 & \text{otherwise}
        \end{cases}, \qquad
        f'(x) = \begin{cases} 0 & x \le -3 \\ 1 & x \ge 3 \\ (2x + 3)/6 & \text{otherwise}
        \end{cases}

    and :math:`f'' = 1/3` on :math:`(-3, 3)`, 0 outside.

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    As in PyTorch, :math:`f'(-3) = 0`, :math:`f'(3) = 1`, and :math:`f(x) = -0.0` for
    :math:`x \le -3`. :math:`(2x + 3)/6` is exact before its one rounding near its
    zero at -1.5, where :math:`x/3 + 1/2` would cancel.

    Examples
    --------
    >>> hardswish = Hardswish()
    >>> hardswish(np.array([-4.0, 0.0, 1.5, 4.0]))
    array([-0.   ,  0.   ,  1.125,  4.   ])
    >>> hardswish.backward(np.ones(4))
    array([0. , 0.5, 1. , 1. ])
    """

    kinks = (-3.0, 3.0)

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        y = xp.where(x <= -3, -0.0, xp.where(x >= 3, x, x * (x + 3) / 6))
        return y, xp.where(x <= -3, 0.0, xp.where(x >= 3, 1.0, (2 * x + 3) / 6))

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        first = xp.where(x <= -3, 0.0, xp.where(x >= 3, 1.0, (2 * x + 3) / 6))
        return first, _inside(xp, x, -3.0, 3.0, 1 / 3)


class CELU(Activation):
    r"""The continuously differentiable exponential linear unit (Barron, 2017).

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ \alpha\,(e^{x/\alpha} - 1) & x \le 0 \end{cases},
        \qquad
        f'(x) = \begin{cases} 1 & x > 0 \\ e^{x/\alpha} & x \le 0 \end{cases},
        \qquad
        f''(x) = \begin{cases} 0 & x \ge 0 \\ e^{x/\alpha}/\alpha & x < 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    alpha : float
        Scale of the negative part (default 1.0); finite and not 0, as in PyTorch.

    Notes
    -----
    ``expm1`` keeps :math:`f` accurate near 0. :math:`f'(0) = 1` for every
    :math:`\alpha` (unlike ELU's :math:`\alpha`), :math:`f''(0) = 0` and
    :math:`f(-0.0) = -0.0`, as in PyTorch. :math:`x/\alpha` is carried as its rounded
    value :math:`q` plus the rest :math:`r`, from the division's exact remainder, with
    :math:`e^{q + r} = e^q (1 + r)` and :math:`e^{q + r} - 1 = (e^q - 1) + e^q r`, so that
    for any :math:`\alpha` the left tail is as accurate as for :math:`\alpha = 1`
    (rounding :math:`x/\alpha` alone would cost about :math:`|x/\alpha|` ulp, hundreds
    where :math:`e^{x/\alpha}` nears the subnormals). Below :math:`|x/\alpha| = 2^{-60}`,
    :math:`f = x`, which the exact value rounds to (for a large :math:`\alpha`,
    :math:`x/\alpha` is subnormal there and has lost bits, which
    :math:`\alpha(e^{x/\alpha} - 1)` would carry). For :math:`\alpha < 0`,
    :math:`e^{x/\alpha}` overflows from :math:`x/\alpha = 709.78` on, where
    :math:`f` (:math:`|\alpha| < 1`) and :math:`f''` (:math:`|\alpha| > 1`) need not:
    :math:`e^{x/\alpha - 640}` is carried there and :math:`e^{640}` applied last. A
    positive :math:`\alpha` that is a power of two needs no correction; from 0 to 1
    (1, the default), its kernel is
    `float32_safe`: on the compiled engine float32 input is then computed in float32
    arithmetic, within 0.94 ulp for f and 1.01 for f' (every float32 with 2**-30 <= |x|
    < 110, checked against float64, for alpha 1 and 0.5).

    Examples
    --------
    >>> celu = CELU(alpha=2.0)
    >>> celu(np.array([-2.0, 0.0, 1.0]))
    array([-1.26424112,  0.        ,  1.        ])
    >>> celu.backward(np.ones(3))
    array([0.36787944, 1.        , 1.        ])
    """

    kinks = (0.0,)

    alpha: float

    def __init__(self, alpha: float = 1.0) -> None:
        self._settle(alpha=alpha)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        name = type(self).__name__
        checked = _reals(name, settings, "alpha")
        if checked.get("alpha") == 0:
            alpha = settings["alpha"]
            raise ValueError(f"{name}: alpha must not be 0 (f divides x by it), got {alpha!r}")
        return checked

    def _kernel(self, derivative: bool) -> tuple[Any, tuple[float, ...], bool]:
        # a positive power of two: the same f and f' by the kernel without the correction,
        # faster (below 0, alpha e^(x / alpha) is finite where e^(x / alpha) overflows)
        kernel, parameters, compiled = super()._kernel(derivative)  # alpha checked
        alpha = parameters[0] if type(self) is CELU else 0.0  # a subclass: its kernel
        if alpha > 0 and _array_math.power_of_two(alpha):
            return _celu_exact_quotient, parameters, True
        return kernel, parameters, compiled

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
        q, r = _quotient(xp, x, alpha)
        # NOTE: e^(q + r) = e^q (1 + r), e^(q + r) - 1 = (e^q - 1) (1 + r) + r to first order;
        # x itself for x >= 0 keeps f(-0.0) = -0.0 (and NaN NaN)
        # below |q| = 2**-60, f = x (1 + q/2 + ...) rounds to x; alpha e^q - alpha would
        # lose the bits of a subnormal q (alpha > 1)
        away = (x < 0) & (xp.abs(q) >= _TINY_QUOTIENT)
        # beyond q = 709 (alpha < 0), e^q overflows first where alpha e^q need not (|alpha|
        # < 1): there e^(q - 640) - 1 = e^(q - 640) is carried, and e^640 applied last
        # (e^640 rounded is off by a relative 5.6e-17: carried with r, its sign fixed)
        big = q > 709.0
        m = xp.expm1(xp.where(big, q - 640, q))
        rest = xp.where(big, r + _E_640_REST, r)
        f = xp.where(away, alpha * (m * (1 + rest) + r) * xp.where(big, _E_640, 1.0), x)
        return f, xp.where(x > 0, 1.0, xp.exp(q) * (1 + r))

    @staticmethod
    def derivatives(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
        q, r = _quotient(xp, x, alpha)
        # NOTE: for |alpha| < 1, f'' = e^q / alpha is normal where e^q is not (below q =
        # -708.39): there e^(q + 64) is carried instead (q + 64 is exact), e^-64 applied
        # last; for alpha < -1, it is finite where e^q is not (beyond q = 709.78): there
        # e^(q - 640), and e^640
        deep = q < -708.39
        big = q > 709.0
        rest = xp.where(big, r + _E_640_REST, r)  # see function_and_derivative
        derivative = xp.exp(q + xp.where(deep, 64.0, xp.where(big, -640.0, 0.0))) * (1 + rest)
        scale = xp.where(deep, _E_MINUS_64, xp.where(big, _E_640, 1.0))
        second = xp.where(x < 0, derivative / alpha * scale, _zero(xp, x))
        return xp.where(x > 0, 1.0, derivative * scale), second


@kernel_helper
def _quotient(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
    """q = x / alpha rounded (0 for x > 0), and the rest r = x / alpha - q (|r| <= half
    an ulp of q) to within an ulp of r, where 2**-8 < |q| < 10**6; elsewhere r = -0.0.

    NOTE: the remainder x - q alpha is a float, and computed exactly: x minus q alpha
    rounded (exact by Sterbenz's lemma), minus that rounding's error (`two_product`); r
    is its quotient by alpha. Below |q| = 2**-8 rounding q costs e^q nothing (and where
    subnormals are flushed, as by XLA on the CPU, the error of a tiny q alpha is not
    exact); beyond 10**6, e^q is 0 or inf, and r NaN for x = -inf.
    """
    v = xp.where(x > 0, 0.0, x)  # NOTE: 0 keeps exp finite on the branch not taken
    q = v / alpha
    product, error = xp.two_product(q, alpha)
    r = ((v - product) - error) / alpha
    # NOTE: -0.0, which added to a zero keeps its sign: f(x) = -0.0 where x / alpha does
    return q, xp.where((xp.abs(q) > 2**-8) & (xp.abs(q) < 1e6), r, -0.0)


class _Shrink(Activation):
    """Shared by `Softshrink` and `Hardshrink`: the threshold and the kinks at its ends."""

    lambd: float

    def __init__(self, lambd: float = 0.5) -> None:
        self._settle(lambd=lambd)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        if "lambd" not in settings:
            return {}
        return {"lambd": _non_negative(type(self).__name__, "lambd", settings["lambd"])}

    @property
    def kinks(self) -> tuple[float, ...]:  # type: ignore[override]
        return (-self.lambd, self.lambd)


class Softshrink(_Shrink):
    r"""Soft thresholding: shrink towards 0 by ``lambd``.

    .. math::
        f(x) = \begin{cases} x - \lambda & x > \lambda \\ x + \lambda & x < -\lambda \\
        0 & \text{otherwise} \end{cases}, \qquad
        f'(x) = \begin{cases} 1 & |x| > \lambda \\ 0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    lambd : float
        The threshold :math:`\lambda \ge 0` (default 0.5), PyTorch's name.

    Notes
    -----
    As in PyTorch, :math:`f'(\pm\lambda) = 0` and :math:`f = +0.0` on
    :math:`[-\lambda, \lambda]`, ``-0.0`` included; :math:`f'' = 0`.

    Examples
    --------
    >>> softshrink = Softshrink()
    >>> softshrink(np.array([-2.0, 0.25, 1.0]))
    array([-1.5,  0. ,  0.5])
    """

    @staticmethod
    @step_derivative
    def function_and_derivative(xp: Any, x: Any, lambd: float) -> tuple[Any, Any]:
        y = xp.where(x > lambd, x - lambd, xp.where(x < -lambd, x + lambd, _zero(xp, x)))
        return y, _above(xp, xp.abs(x), lambd)

    @staticmethod
    def derivatives(xp: Any, x: Any, lambd: float) -> tuple[Any, Any]:
        return _above(xp, xp.abs(x), lambd), _zero(xp, x)


class Hardshrink(_Shrink):
    r"""Hard thresholding: 0 on :math:`[-\lambda, \lambda]`, the identity outside.

    .. math::
        f(x) = \begin{cases} x & |x| > \lambda \\ 0 & \text{otherwise} \end{cases},
        \qquad
        f'(x) = \begin{cases} 1 & |x| > \lambda \\ 0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    lambd : float
        The threshold :math:`\lambda \ge 0` (default 0.5).

    Notes
    -----
    :math:`f` jumps at :math:`\pm\lambda`, where, as in PyTorch, :math:`f = 0` and
    :math:`f' = 0`; :math:`f'' = 0`. :math:`f(-0.0) = +0.0`.

    Examples
    --------
    >>> hardshrink = Hardshrink()
    >>> hardshrink(np.array([-2.0, 0.25, 1.0]))
    array([-2.,  0.,  1.])
    """

    @staticmethod
    @step_derivative
    def function_and_derivative(xp: Any, x: Any, lambd: float) -> tuple[Any, Any]:
        y = xp.where(x > lambd, x, xp.where(x < -lambd, x, _zero(xp, x)))
        return y, _above(xp, xp.abs(x), lambd)

    @staticmethod
    def derivatives(xp: Any, x: Any, lambd: float) -> tuple[Any, Any]:
        return _above(xp, xp.abs(x), lambd), _zero(xp, x)


def _reals(owner: str, settings: Mapping[str, Any], *names: str, **rule: bool) -> dict[str, float]:
    """Those of `names` in `settings`, each a float by `check_real` (its `rule`), or a
    clear error."""
    return {
        name: check_real(owner, name, settings[name], **rule) for name in names if name in settings
    }


def _non_negative(owner: str, name: str, value: Any) -> float:
    number = check_real(owner, name, value)
    if number < 0:
        raise ValueError(f"{owner}: {name} must be >= 0, got {value!r}")
    return number


#: The inner levels of Lambert's continued fraction for tanh, multiplied out:
#: s / (5 + s / (7 + ... + s / 21)) = s P(s) / Q(s), P and Q lowest power first, scaled
#: so that P(0) = 1 and Q(0) = 5. Every coefficient is positive: neither sum cancels.
_LAMBERT_P = tuple(c / 916620705 for c in (916620705, 43648605, 546975, 1950, 1))
_LAMBERT_Q = tuple(c / 916620705 for c in (4583103525, 349188840, 6891885, 42900, 65))


class Tanhshrink(Activation):
    r"""The difference between x and its tanh.

    .. math::
        f(x) = x - \tanh x, \qquad f'(x) = \tanh^2 x,
        \qquad f''(x) = 2 \tanh x\,(1 - \tanh^2 x)

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`x - \tanh x \approx x^3/3` cancels for small :math:`|x|`. Below
    :math:`|x| = 1.5` it is computed from Lambert's continued fraction
    :math:`\tanh x = x/(1 + R)`, :math:`R = x^2/(3 + x^2/(5 + \dots))`: then
    :math:`x - \tanh x = x R/(1 + R) = x^3/(3 + x^2 + r)`, with :math:`r` the
    fraction's levels from 5 on. Ten levels reach full float64 precision at 1.5;
    :math:`r` is computed multiplied out, :math:`x^2 P(x^2)/Q(x^2)`, with two
    polynomials of positive terms. Every term is positive, and an error in
    :math:`r` shrinks by :math:`r/(3 + x^2 + r) < 0.1`: within 3.3 ulp. Above, the
    subtraction loses at most an ulp. :math:`1 - \tanh^2` in :math:`f''` is computed
    as in `Tanh`. :math:`f(\pm 0) = +0.0`, as in PyTorch.

    Examples
    --------
    >>> tanhshrink = Tanhshrink()
    >>> tanhshrink(np.array([1e-6, 1.0, 3.0]))
    array([3.33333333e-19, 2.38405844e-01, 2.00494525e+00])
    >>> tanhshrink.backward(np.ones(3))
    array([1.00000000e-12, 5.80025658e-01, 9.90133963e-01])
    """

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        t = xp.tanh(x)
        a = xp.clip(x, -1.5, 1.5)
        s = a * a
        p, q = _LAMBERT_P[-1], _LAMBERT_Q[-1]
        for c in _LAMBERT_P[-2::-1]:  # Horner's rule
            p = p * s + c
        for c in _LAMBERT_Q[-2::-1]:
            q = q * s + c
        r = s * p / q  # s / (5 + s / (7 + ... + s / 21))
        # NOTE: + 0.0 turns -0.0 into +0.0, as PyTorch's x - tanh(x) does
        return xp.where(xp.abs(x) < 1.5, a * s / (3 + (s + r)), x - t) + 0.0, t * t

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        t = xp.tanh(x)
        return t * t, 2 * t * _tanh_derivative_scaled(xp, x)


class Threshold(Activation):
    r"""Replace values at or below a threshold by a constant.

    .. math::
        f(x) = \begin{cases} x & x > \text{threshold} \\ \text{value} & \text{otherwise}
        \end{cases}, \qquad
        f'(x) = \begin{cases} 1 & x > \text{threshold} \\ 0 & \text{otherwise} \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    threshold, value : float
        PyTorch requires both; here they default to 0, which makes ``Threshold()``
        a ReLU, so that ``get("threshold")`` works.

    Notes
    -----
    :math:`f` jumps at the threshold unless ``value`` equals it; there
    :math:`f = \text{value}` and :math:`f' = 0`, as in PyTorch. :math:`f'' = 0`. NaN
    propagates.

    Examples
    --------
    >>> threshold = Threshold(0.1, 20.0)
    >>> threshold(np.array([-1.0, 0.1, 2.0]))
    array([20., 20.,  2.])
    """

    threshold: float
    value: float

    def __init__(self, threshold: float = 0.0, value: float = 0.0) -> None:
        self._settle(threshold=threshold, value=value)

    def _check_parameters(self, settings: Mapping[str, Any]) -> dict[str, float]:
        return _reals(type(self).__name__, settings, "threshold", "value")

    @property
    def kinks(self) -> tuple[float, ...]:  # type: ignore[override]
        return (self.threshold,)

    @staticmethod
    @step_derivative
    def function_and_derivative(xp: Any, x: Any, threshold: float, value: float) -> tuple[Any, Any]:
        return xp.where(x <= threshold, value, x), _above(xp, x, threshold)

    @staticmethod
    def derivatives(xp: Any, x: Any, threshold: float, value: float) -> tuple[Any, Any]:
        return _above(xp, x, threshold), _zero(xp, x)


class _AlongAxis(Layer):
    """Shared by `Softmax` and `LogSoftmax`: conversion, dtypes, layout and the cache
    (and by `GLU`, for its ``axis`` argument).

    A subclass gives ``function(xp, x, axis)``, ``softmax(xp, y)``, the softmax
    from the output ``y``, and ``vjp(xp, p, g, axis)``, the vector-Jacobian product
    from the softmax ``p``, written with the array API's functions of namespace
    ``xp``. forward keeps the softmax: Softmax's output itself, LogSoftmax's
    :math:`e^y`, which its row kernels get as the exponentials over their sum, so
    that its backward needs no ``exp``. On NumPy the layer moves `axis` last and makes
    the rows contiguous first (or, along axis 0 of a C-ordered float32 or float64 array
    of at least 64 rows, the compiled kernels copy blocks of columns into rows in cache,
    see `_columns`), so every layout and
    every axis computes each row the same way: the results are bit-identical
    whatever the memory layout. Other
    libraries compute along `axis` in their own namespace; Dask arrays row by
    row, each chunk on NumPy (see `_array_api.dask_rows`).
    """

    def __init__(self, axis: int | None = None, *, dim: int | None = None) -> None:
        name = type(self).__name__
        if dim is None:
            self.axis = _valid_axis(name, -1 if axis is None else axis)
        elif axis is None:  # PyTorch's name for it
            self.axis = _valid_axis(name, dim, "dim")
        else:
            raise TypeError(f"{name}: give axis or dim (its PyTorch name), not both")

    #: Whether the row kernels compute the log of the softmax (LogSoftmax).
    _log: ClassVar[bool] = False

    def function(self, xp: Any, x: Array, axis: int) -> Array:
        raise NotImplementedError

    def softmax(self, xp: Any, y: Array) -> Array:
        raise NotImplementedError

    def vjp(self, xp: Any, p: Array, g: Array, axis: int) -> Array:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (None,) * (self.axis + 1 if self.axis >= 0 else -self.axis)

    def _rows(self, a: Array, dtype: Any = np.float64) -> Array:
        """`a` in `dtype` with `axis` last, C-ordered."""
        return np.ascontiguousarray(_axis_last(a, self.axis), dtype=dtype)

    def _columns(self, a: Array, dtype: Any) -> Array | None:
        """`a` as a 2-d array whose columns are the rows, where the compiled kernels can
        read them there (a C-ordered float32 or float64 array along axis 0, not empty,
        rows of at least 64): they copy blocks of columns into rows in cache, which
        gives the bits of `_rows` without its copy of the whole array. Else None.
        """
        if (
            engine() == "numba"
            and a.ndim >= 2
            and self.axis % a.ndim == 0
            and a.dtype == dtype
            and dtype in (np.float32, np.float64)
            and a.size > 0
            and a.shape[0] >= 64
            and a.flags.c_contiguous
        ):
            return a.reshape(a.shape[0], -1)
        return None

    @staticmethod
    def _row_dtype(dtype: Any) -> Any:
        """The dtype the rows are computed in: float32 stays float32 on the compiled row
        kernels, which sum in float64; everything else is float64."""
        return np.float32 if dtype == np.float32 and engine() == "numba" else np.float64

    def forward(self, x: npt.ArrayLike) -> Array:
        old = self.__dict__.pop("_cache", None)  # first: a forward that fails leaves none
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            return self._forward_foreign(x)  # type: ignore[no-any-return]
        x = as_float_array(x, type(self).__name__)
        _check_axis(self, x, self.axis)
        wide = self._row_dtype(x.dtype)
        shape = _axis_last(x, self.axis).shape
        # the last softmax kept is overwritten, not reallocated, where it has the same
        # shape and dtype and no other thread reads it
        kept = old[0][0] if old is not None and old[1] == threading.get_ident() else None
        same = type(kept) is np.ndarray and kept.shape == shape and kept.dtype == wide
        reuse = kept if same else None
        old = kept = None  # else it is let go before the new arrays are made
        columns = self._columns(x, wide)
        rows = self._rows(x, wide) if columns is None else columns
        # NOTE: +inf and NaN give NaN (see Softmax), without a warning.
        with np.errstate(all="ignore"):
            y, p = self._compiled(
                "forward",
                rows,
                dtype=x.dtype,
                reuse=reuse,
                columns=columns is not None,
                shape=shape,
            )
        self._remember(p, x.dtype, self.axis)  # p (in the rows' dtype, axis last): our own
        with np.errstate(all="ignore"):
            # the output is the caller's: a copy where it is the softmax kept
            return _axis_back(y, self.axis).astype(x.dtype, copy=y is p)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        p, dtype, axis = self._recall()
        _check_same_axis(self, axis, p.ndim)
        if type(p) is not np.ndarray:
            return self._backward_foreign(grad_output, p, dtype)  # type: ignore[no-any-return]
        shape = list(p.shape[:-1])
        shape.insert(self.axis % p.ndim, p.shape[-1])
        grad = check_grad_output(self, grad_output, tuple(shape))
        columns = self._columns(grad, p.dtype)
        with np.errstate(all="ignore"):
            # grad_output in p's dtype (float32 rows round a float64 one)
            if columns is None:
                result = self._compiled("backward", p, self._rows(grad, p.dtype))
            else:
                result = self._compiled("backward", p, columns, columns=True, shape=p.shape)
            # result is a fresh array: no copy
            return _axis_back(result, self.axis).astype(dtype, copy=False)

    def _forward_foreign(self, x: Any) -> Any:
        """forward on another library's array; the softmax kept (in the compute dtype,
        in `x`'s layout) for backward."""
        name = type(self).__name__
        self._forget()
        _valid_axis(name, self.axis)
        if _array_api.is_dask(x):  # each chunk holds whole rows, computed as on NumPy
            rows = _array_api.dask_rows(name, x, self.axis)
            _check_axis(self, rows, self.axis)
            wide = self._row_dtype(rows.dtype)
            y = _array_api.dask_rowwise(self._numpy_rows, rows, dtype=wide)
            p = y
            if self._log:  # p as in memory: from the row kernels
                p = _array_api.dask_rowwise(self._numpy_softmax, rows, dtype=wide)
            self._remember(p, rows.dtype, self.axis)
            return y.astype(rows.dtype)
        space, x, wide = _array_api.prepare(name, x)
        _check_axis(self, x, self.axis)
        y = _array_api.quiet(self.function, space, wide, self.axis)
        p = _array_api.quiet(self.softmax, space, y)
        self._remember(p, x.dtype, self.axis)  # a fresh array of that library: our own
        return space.astype(y, x.dtype)

    def _backward_foreign(self, grad_output: Any, p: Any, dtype: Any) -> Any:
        name = type(self).__name__ + ".backward"
        grad = _array_api.check_same(name, "grad_output", p, grad_output)
        _array_api.check_shape(name, "grad_output", grad, p.shape)
        if _array_api.is_dask(p):
            grad = _array_api.dask_rows(name, grad, self.axis).rechunk(p.chunks)
            result = _array_api.dask_rowwise(self._numpy_vjp, p, grad, dtype=p.dtype)
            return result.astype(dtype)
        space = _array_api.namespace(p, name)
        g = space.astype(space.float_input(grad, name), space.dtype)
        return space.astype(_array_api.quiet(self.vjp, space, p, g, self.axis), dtype)

    def _numpy_rows(self, x: Array) -> Array:
        """forward of a NumPy chunk of whole rows, in the rows' dtype and its layout (for
        Dask)."""
        x = as_float_array(x, type(self).__name__)
        with np.errstate(all="ignore"):
            y, _ = self._compiled("forward", self._rows(x, self._row_dtype(x.dtype)))
        return _axis_back(y, self.axis)

    def _numpy_softmax(self, x: Array) -> Array:
        """The softmax forward keeps, of a NumPy chunk of whole rows (for Dask)."""
        x = as_float_array(x, type(self).__name__)
        with np.errstate(all="ignore"):
            _, p = self._compiled("forward", self._rows(x, self._row_dtype(x.dtype)))
        return _axis_back(p, self.axis)

    def _numpy_vjp(self, p: Array, g: Array) -> Array:
        """backward of NumPy chunks of whole rows, in p's dtype and their layout (for
        Dask)."""
        g = as_float_array(g, type(self).__name__)
        rows = self._rows(p, p.dtype)
        with np.errstate(all="ignore"):
            result = self._compiled("backward", rows, self._rows(g, rows.dtype))
        return _axis_back(result, self.axis)

    def _compiled(
        self,
        which: str,
        *rows: Array,
        dtype: Any = np.float64,
        reuse: Array | None = None,
        columns: bool = False,
        shape: tuple[int, ...] | None = None,
    ) -> Any:
        """forward: the output of rows and their softmax, the softmax written into
        `reuse` where given, the output rounded to `dtype` where the row kernels can
        (else float64); backward: `vjp` of rows. By the compiled row kernels when the
        engine is numba. With `columns` (numba only), the last array given is a 2-d
        array whose columns are the rows, and `shape` the shape of the rows."""
        # LogSoftmax's float32 output is rounded once by its kernels; Softmax's is p itself
        out = np.float32 if self._log and dtype == np.float32 else np.float64
        if columns and shape is not None:
            from tinygrad_act import _rows

            n = shape[-1]
            if which == "forward":
                into = None if reuse is None else reuse.reshape(-1, n)
                y, p = _rows.forward(rows[0], log=self._log, dtype=out, reuse=into, columns=True)
                return y.reshape(shape), p.reshape(shape)
            softmax = rows[0].reshape(-1, n)
            return _rows.backward(softmax, rows[1], log=self._log, columns=True).reshape(shape)
        shape = rows[0].shape
        if engine() != "numba" or rows[0].size == 0:
            if which == "forward":
                y = self.function(np, rows[0], -1)
                return y, self.softmax(np, y)
            return self.vjp(np, rows[0], rows[1], -1)
        from tinygrad_act import _rows

        flat = [r.reshape(-1, shape[-1]) for r in rows]
        if which == "forward":
            kept = None if reuse is None else reuse.reshape(flat[0].shape)
            y, p = _rows.forward(flat[0], log=self._log, dtype=out, reuse=kept)
            shaped = y.reshape(shape)
            return shaped, (shaped if p is y else p.reshape(shape))
        return _rows.backward(flat[0], flat[1], log=self._log).reshape(shape)


class Softmax(_AlongAxis):
    r"""Softmax along an axis: non-negative outputs that sum to 1.

    .. math::
        y_i = \frac{e^{x_i}}{\sum_j e^{x_j}}, \qquad
        \frac{\partial y_i}{\partial x_j} = y_i\,(\delta_{ij} - y_j),
        \quad J = \operatorname{diag}(y) - y\,y^\top

    Backward never forms :math:`J`: the vector-Jacobian product is
    :math:`J^\top g = y \odot (g - \langle g, y \rangle)`, O(n) per row.
    `jacobian` returns :math:`J` itself, for teaching and tests.

    Shape: input ``(*)`` with at least one dimension, output the same; the
    softmax runs along `axis`.

    Parameters
    ----------
    axis : int
        The axis that sums to 1 (default -1, the last).

    Notes
    -----
    Subtracts the row maximum before ``exp`` (softmax is invariant to adding a
    constant), so large logits neither overflow nor warn: ``[1000, 1001, 1002]``
    gives the same as ``[0, 1, 2]``. The rounding error of that subtraction is
    carried into ``exp``, which keeps outputs within a few ulp for logits of any
    size. Entries of -inf get 0; +inf gives NaN in its
    place, NaN a row of NaN, as in PyTorch. float32 is computed in float32 with
    float64 sums by the compiled engine, in float64 by NumPy. Caches the output.

    Examples
    --------
    >>> softmax = Softmax()
    >>> softmax(np.array([1000.0, 1001.0, 1002.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax.jacobian(np.array([0.0, 0.0]))
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """

    def function(self, xp: Any, x: Array, axis: int) -> Array:
        _, e = _exp_minus_max(xp, x, axis)
        return e / xp.sum(e, axis=axis, keepdims=True)  # type: ignore[no-any-return]

    def softmax(self, xp: Any, y: Array) -> Array:
        return y

    def vjp(self, xp: Any, p: Array, g: Array, axis: int) -> Array:
        return p * (g - xp.sum(g * p, axis=axis, keepdims=True))  # type: ignore[no-any-return]

    def jacobian(self, x: npt.ArrayLike) -> Array:
        r"""The explicit Jacobian :math:`\operatorname{diag}(y) - y y^\top` of each row.

        Returns shape ``(..., n, n)``: `axis` moved last, then expanded to a square
        matrix. Computed in float64, returned in the input's dtype. Does not touch
        the cache.
        """
        x = as_float_array(x, "Softmax.jacobian")
        _check_axis(self, x, self.axis)
        with np.errstate(all="ignore"):
            y = self.function(np, self._rows(x), -1)
        column, row = y[..., :, None], y[..., None, :]
        return (column * np.eye(y.shape[-1]) - column * row).astype(x.dtype)


class LogSoftmax(_AlongAxis):
    r"""The logarithm of softmax along an axis.

    .. math::
        y_i = x_i - \log \sum_j e^{x_j}, \qquad
        \frac{\partial y_i}{\partial x_j} = \delta_{ij} - e^{y_j},
        \qquad J^\top g = g - e^{y} \sum_i g_i

    Shape: input ``(*)`` with at least one dimension, output the same; along `axis`.

    Parameters
    ----------
    axis : int
        The axis to normalise over (default -1).

    Notes
    -----
    With :math:`m` the row maximum, :math:`\log \sum_j e^{x_j} = m + \log(1 + S)`,
    where :math:`S` sums :math:`e^{x_j - m}` over all but one maximal entry, and
    ``log1p`` keeps the tiny outputs of a dominant entry accurate (a plain
    :math:`\log \sum` rounds them away). float32 is computed as in `Softmax`. Caches
    the softmax :math:`e^y`, which forward gets as the exponentials over their sum, so
    backward needs no ``exp``.

    Examples
    --------
    >>> log_softmax = LogSoftmax()
    >>> log_softmax(np.array([0.0, -40.0]))
    array([-4.24835426e-18, -4.00000000e+01])
    """

    _log = True

    def function(self, xp: Any, x: Array, axis: int) -> Array:
        shifted, e = _exp_minus_max(xp, x, axis)
        is_max = shifted == 0
        # the sum of e^(x_j - m) without one maximal entry's 1 (other maxima count 1 each)
        rest = xp.sum(xp.where(is_max, 0.0, e), axis=axis, keepdims=True)
        rest = rest + (xp.sum(xp.where(is_max, 1.0, 0.0), axis=axis, keepdims=True) - 1)
        return shifted - xp.log1p(rest)  # type: ignore[no-any-return]

    def softmax(self, xp: Any, y: Array) -> Array:
        return xp.exp(y)  # type: ignore[no-any-return]

    def vjp(self, xp: Any, p: Array, g: Array, axis: int) -> Array:
        return g - p * xp.sum(g, axis=axis, keepdims=True)  # type: ignore[no-any-return]


class Softmin(Softmax):
    r"""Softmin along an axis: the softmax of :math:`-x`.

    .. math::
        y_i = \frac{e^{-x_i}}{\sum_j e^{-x_j}}, \qquad
        \frac{\partial y_i}{\partial x_j} = -y_i\,(\delta_{ij} - y_j)

    Shape: input ``(*)`` with at least one dimension, output the same; along `axis`.

    Parameters
    ----------
    axis : int
        The axis that sums to 1 (default -1).

    Notes
    -----
    It is `Softmax` run on :math:`-x` (negation is exact), with backward and the
    Jacobian negated by the chain rule: everything said of Softmax holds, for small
    entries, large entries and +inf (which gets 0) alike.

    Examples
    --------
    >>> Softmin()(np.array([1.0, 2.0]))
    array([0.73105858, 0.26894142])
    """

    def forward(self, x: npt.ArrayLike) -> Array:
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            self._forget()  # a forward that fails leaves no cache
            return super().forward(-_array_api.float_array(x, "Softmin"))
        try:
            negated = np.negative(as_float_array(x, "Softmin"))
        except BaseException:
            self._forget()  # a forward that fails leaves no cache
            raise
        # the cache is left for Softmax's forward, which overwrites its buffer
        return super().forward(negated)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        result = super().backward(grad_output)
        if type(result) is np.ndarray:
            return np.negative(result, out=result)  # a fresh array: ours to negate
        return -result

    def jacobian(self, x: npt.ArrayLike) -> Array:
        return np.negative(super().jacobian(np.negative(as_float_array(x, "Softmin.jacobian"))))


class PReLU(Layer):
    r"""LeakyReLU with a learned slope :math:`a`, shared or one per channel.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ a_c\,x & x \le 0 \end{cases}, \qquad
        \frac{\partial f}{\partial x} = \begin{cases} 1 & x > 0 \\ a_c & x \le 0 \end{cases},
        \qquad
        \frac{\partial L}{\partial a_c} = \sum_{x \le 0 \text{ in channel } c}
        \frac{\partial L}{\partial y}\,x

    Shape: input ``(*)``, output the same. With ``num_parameters > 1`` the input
    needs at least two dimensions, and the channels are along axis 1 (``(N, C, *)``),
    as in PyTorch.

    Parameters
    ----------
    num_parameters : int
        1 (the default: one slope for everything) or the number of channels.
    init : float
        The initial slope (default 0.25).

    Notes
    -----
    The slope is the `Parameter` ``weight``, in `named_parameters` and so in
    `state_dict`; backward adds to its ``grad``. :math:`f'(0) = a` and
    :math:`f(-0.0) = -0.0`, as in PyTorch. forward keeps the input (float64) and
    the slopes it used, so an optimizer step between forward and backward does not
    change the gradient. float16 and float32 are computed in float64 and rounded once.

    Examples
    --------
    >>> prelu = PReLU(num_parameters=2, init=0.1)
    >>> prelu(np.array([[-1.0, -1.0], [2.0, -3.0]]))
    array([[-0.1, -0.1],
           [ 2. , -0.3]])
    >>> prelu.backward(np.ones((2, 2)))
    array([[0.1, 0.1],
           [1. , 0.1]])
    >>> prelu.weight.grad
    array([-1., -4.])
    """

    kinks = (0.0,)

    def __init__(self, num_parameters: int = 1, init: float = 0.25) -> None:
        self.num_parameters = _count(num_parameters)
        self.weight = Parameter(np.full(self.num_parameters, check_real("PReLU", "init", init)))

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [("weight", self.weight)]

    def _slope(self, xp: Any, x: Array) -> Array:
        """The slopes, shaped to broadcast against `x` (channels along axis 1): a copy,
        as forward keeps what it used."""
        # NOTE: num_parameters and weight may have been set since the constructor; the
        # compiled pass reads as many slopes as there are channels
        count = _count(self.num_parameters)
        held = tuple(self.weight.data.shape)
        if held != (count,):
            raise ValueError(
                f"PReLU: num_parameters is {count}, but weight has shape {held}: give "
                f"weight shape ({count},), or set num_parameters to match it"
            )
        shape: tuple[int, ...] = ()
        if count > 1:
            if x.ndim < 2 or x.shape[1] != count:
                raise ValueError(
                    f"PReLU(num_parameters={count}) needs an input with {count} channels "
                    f"along axis 1, got shape {tuple(x.shape)}"
                )
            shape = (-1,) + (1,) * (x.ndim - 2)
        slope = xp.reshape(self.weight.data, shape)
        return slope.copy() if xp is np else _array_api.copy(slope)  # type: ignore[no-any-return]

    def forward(self, x: npt.ArrayLike) -> Array:
        xp: Any = np
        self._forget()  # first: a forward that fails leaves no cache
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            xp, x, wide = _array_api.prepare("PReLU", x)
        else:
            x = as_float_array(x, "PReLU")
            if x.itemsize != 2 and engine() == "numba":
                return self._forward_compiled(x)
            wide = x.astype(np.float64, order="C")  # any layout sums the same way
        _array_api.follow([self.weight], wide)  # the slopes live where the input does
        slope = self._slope(xp, x)
        with np.errstate(all="ignore"):
            y = xp.where(wide > 0, wide, slope * wide)
        self._remember(wide, slope, x.dtype)
        return _array_api.astype(xp, y, x.dtype)  # type: ignore[no-any-return]

    def _forward_compiled(self, x: Array) -> Array:
        """forward on the numba engine: one compiled pass (see `_channels`), keeping a
        C-ordered copy of x in its own dtype."""
        from tinygrad_act import _channels

        _array_api.follow([self.weight], x)
        slope = self._slope(np, x)
        # our own copy, for backward (the caller may change x meanwhile); none in no_grad
        kept = np.array(x, order="C") if is_grad_enabled() else np.ascontiguousarray(x)
        y = np.empty(x.shape, x.dtype)
        rates = slope.reshape(-1).astype(np.float64, copy=False)  # as NumPy widens them
        flat_x, flat_y = kept.reshape(-1), y.reshape(-1)
        for part, view, part_rates in _prelu_parts(x.shape, rates):
            x_part, y_part = flat_x[part].reshape(view), flat_y[part].reshape(view)
            task = functools.partial(_channels.forward, x_part, part_rates, y_part)
            run_parts(view[1], x_part.size, task)
        self._remember(kept, slope, x.dtype)
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        x, slope, dtype = self._recall()
        slopes = math.prod(slope.shape)  # forward's: one, or one per channel
        if tuple(self.weight.data.shape) != (slopes,):  # set since forward
            raise ValueError(
                f"PReLU.backward: forward used {slopes} slopes, but weight has shape "
                f"{tuple(self.weight.data.shape)} now; call forward again"
            )
        xp: Any = np
        if (
            type(x) is np.ndarray
            and x.dtype == dtype  # C-ordered in x's dtype: not NumPy's float64 of float32 x
            and x.itemsize != 2
            and engine() == "numba"
        ):
            return self._backward_compiled(x, slope, dtype, grad_output)
        if type(x) is not np.ndarray:  # forward ran on another library's array
            name = "PReLU.backward"
            xp = _array_api.namespace(x, name)
            grad = _array_api.check_same(name, "grad_output", x, grad_output)
            _array_api.check_shape(name, "grad_output", grad, x.shape)
            grad = xp.astype(xp.float_input(grad, name), x.dtype)
        else:
            grad = check_grad_output(self, grad_output, x.shape).astype(np.float64, order="C")
        with np.errstate(all="ignore"):
            positive = x > 0
            weight_grad = xp.where(positive, 0.0, grad * x)
            other_axes = tuple(i for i in range(x.ndim) if slopes == 1 or i != 1)
            total = xp.reshape(xp.sum(weight_grad, axis=other_axes), (-1,))
            _array_api.accumulate(self.weight, total)
            # NaN gives NaN, as in every activation
            derivative = xp.where(positive, 1.0, xp.where(x <= 0, slope, math.nan))
            return _array_api.astype(xp, grad * derivative, dtype)  # type: ignore[no-any-return]

    def _backward_compiled(self, x: Array, slope: Array, dtype: Any, grad_output: Any) -> Array:
        """backward after `_forward_compiled`: one compiled pass for both gradients."""
        from tinygrad_act import _channels

        grad = check_grad_output(self, grad_output, x.shape)
        if grad.itemsize == 2:  # numba has no float16: widened, exactly
            grad = grad.astype(np.float32)
        grad = np.ascontiguousarray(grad)
        out = np.empty(x.shape, dtype)
        rates = slope.reshape(-1).astype(np.float64, copy=False)
        flat = x.reshape(-1), grad.reshape(-1), out.reshape(-1)
        sums = []
        for part, view, part_rates in _prelu_parts(x.shape, rates):
            x_part, g_part, out_part = (a[part].reshape(view) for a in flat)
            sums.append(np.zeros(view[1]))
            task = functools.partial(
                _channels.backward, x_part, g_part, part_rates, out_part, sums[-1]
            )
            run_parts(view[1], x_part.size, task)
        # one slope: the segments' sums, each the same whatever the threads, summed
        total = sums[0] if slope.size > 1 else np.concatenate(sums).sum(keepdims=True)
        _array_api.accumulate(self.weight, total)
        return out


#: PReLU with one slope: its compiled passes cut the array into segments of this many
#: elements, each a channel of its own for the threads; a fixed size, so that the
#: slope's sum is the same whatever their number.
_PRELU_SEGMENT = 65_536


def _prelu_parts(
    shape: tuple[int, ...], rates: Array
) -> list[tuple[slice, tuple[int, int, int], Array]]:
    """PReLU's compiled passes over an array of `shape` with the float64 slopes `rates`:
    flat ranges, each seen as (outer, channels, inner), and each channel's slope. A slope
    per channel: the whole array, channels along axis 1. One slope: segments of
    `_PRELU_SEGMENT` elements as channels, then the rest as one more."""
    n = math.prod(shape)
    if rates.size > 1:
        return [(slice(0, n), (shape[0], shape[1], math.prod(shape[2:])), rates)]
    whole = n // _PRELU_SEGMENT * _PRELU_SEGMENT
    parts = []
    if whole:
        segments = whole // _PRELU_SEGMENT
        parts.append((slice(0, whole), (1, segments, _PRELU_SEGMENT), np.repeat(rates, segments)))
    if n > whole or not parts:
        parts.append((slice(whole, n), (1, 1, n - whole), rates))
    return parts


def _count(num_parameters: Any) -> int:
    """PReLU's `num_parameters` as an int, positive, or a clear error."""
    if (
        isinstance(num_parameters, bool)
        or not isinstance(num_parameters, int | np.integer)
        or num_parameters < 1
    ):
        raise ValueError(f"PReLU: num_parameters must be a positive int, got {num_parameters!r}")
    if num_parameters > np.iinfo(np.intp).max:
        raise ValueError(f"PReLU: num_parameters must fit an array, got {num_parameters!r}")
    return int(num_parameters)


def _slope_bounds(lower: Any, upper: Any) -> tuple[float, float]:
    """RReLU's `lower` and `upper` as floats, finite and in order, or a clear error."""
    low, high = check_real("RReLU", "lower", lower), check_real("RReLU", "upper", upper)
    if low > high:
        raise ValueError(f"RReLU: lower must be <= upper, got lower={lower!r} and upper={upper!r}")
    return low, high


class RReLU(Layer):
    r"""Randomized leaky ReLU (Xu et al., 2015): random slopes while training.

    .. math::
        f(x) = \begin{cases} x & x > 0 \\ a\,x & x \le 0 \end{cases}, \qquad
        a \sim U(\text{lower}, \text{upper}) \text{ while training},\quad
        a = \frac{\text{lower} + \text{upper}}{2} \text{ in inference}

    Shape: input ``(*)``, output the same.

    Parameters
    ----------
    lower, upper : float
        The range of the slopes (default 1/8 and 1/3), ``lower <= upper``.
    rng : numpy.random.Generator or int, optional
        The source of the slopes, or a seed for one.

    Notes
    -----
    As in PyTorch, a new layer is in training mode: every forward draws a slope
    for each element :math:`x \le 0`, and backward uses the slopes of that forward.
    ``eval()`` switches to the mean slope (a `LeakyReLU`), ``train()`` back; the
    ``training`` attribute says which. :math:`f'(0) = a` and :math:`f(-0.0) = -0.0`.

    Examples
    --------
    >>> rrelu = RReLU(rng=0)
    >>> rrelu(np.array([-1.0, 2.0])).round(4)
    array([-0.2577,  2.    ])
    >>> rrelu.eval()(np.array([-1.0, 2.0]))
    array([-0.22916667,  2.        ])
    """

    kinks = (0.0,)

    def __init__(
        self,
        lower: float = 1 / 8,
        upper: float = 1 / 3,
        *,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        self.lower, self.upper = _slope_bounds(lower, upper)
        self.training = True
        self._rng = np.random.default_rng(rng)

    def train(self, mode: bool = True) -> RReLU:
        """Training mode (random slopes), or inference with ``mode=False``; returns self."""
        self.training = bool(mode)
        return self

    def forward(self, x: npt.ArrayLike) -> Array:
        xp: Any = np
        self._forget()  # first: a forward that fails leaves no cache
        _slope_bounds(self.lower, self.upper)  # as the constructor: they may have been set since
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            xp, x, wide = _array_api.prepare("RReLU", x)
        else:
            x = as_float_array(x, "RReLU")
            if not self.training:  # the mean slope: LeakyReLU's loop, compiled where it is
                mean = (self.lower + self.upper) / 2
                grad = is_grad_enabled()
                kernel = LeakyReLU.function_and_derivative
                y, kept = evaluate(kernel, (mean,), x, derivative=grad)
                self._remember(kept, x.dtype)
                return y
            if x.itemsize != 2 and engine() == "numba":
                return self._forward_compiled(x)
            wide = x.astype(np.float64)
        slope: Any = (self.lower + self.upper) / 2
        if self.training:  # drawn by NumPy, then moved to the input's library and device
            slope = _array_api.like(self._rng.uniform(self.lower, self.upper, x.shape), wide)
        # NaN gives NaN, as in every activation
        derivative = xp.where(wide > 0, 1.0, xp.where(wide <= 0, slope, math.nan))
        with np.errstate(all="ignore"):
            y = xp.where(wide > 0, wide, slope * wide)
        self._remember(derivative, x.dtype)
        return _array_api.astype(xp, y, x.dtype)  # type: ignore[no-any-return]

    def _forward_compiled(self, x: Array) -> Array:
        """forward while training on the numba engine: NumPy draws the slopes (float64,
        in x's C order), then one compiled pass (see `_channels`) writes y, and f' over
        the slopes: the bits of the NumPy path, f' in float64 as there."""
        from tinygrad_act import _channels

        slopes = self._rng.uniform(self.lower, self.upper, x.shape)
        y = np.empty(x.shape, x.dtype)
        values, rates, out = np.ravel(x), slopes.reshape(-1), y.reshape(-1)
        run_chunks(
            x.size,
            lambda start, stop: _channels.random_slopes(
                values[start:stop], rates[start:stop], out[start:stop]
            ),
        )
        self._remember(slopes, x.dtype)
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        derivative, dtype = self._recall()
        if type(derivative) is not np.ndarray:
            return _array_api.chain_rule("RReLU.backward", grad_output, derivative, dtype)  # type: ignore[no-any-return]
        grad = check_grad_output(self, grad_output, derivative.shape)
        return chain_rule(grad, derivative, dtype)


class GLU(_AlongAxis):
    r"""The gated linear unit (Dauphin et al., 2017): half of the axis gates the other.

    .. math::
        x = (a, b) \text{ along the axis}, \qquad f(x) = a \odot \sigma(b), \qquad
        \frac{\partial L}{\partial a} = g \odot \sigma(b), \quad
        \frac{\partial L}{\partial b} = g \odot a\,\sigma(b)\,\sigma(-b)

    Shape: input ``(*, 2n, *)``, output ``(*, n, *)``: the size along `axis` halves.

    Parameters
    ----------
    axis : int
        The axis to split (default -1); its size must be even.

    Notes
    -----
    :math:`\sigma(b)` and :math:`\sigma(-b)` are both computed from
    :math:`e^{-|b|}` by `Sigmoid`'s kernel, in float64; the output is rounded once.
    forward keeps f' of both halves rounded to the input's dtype (float16's to float32),
    as every activation does, and backward multiplies it by the gradient, one product
    per element rounded once. With numba, forward and backward are each one compiled
    pass (`tinygrad_act._gated`), on several threads for large arrays.

    Examples
    --------
    >>> glu = GLU()
    >>> glu(np.array([1.0, 2.0, 0.0, 40.0]))
    array([0.5, 2. ])
    """

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        if self.axis < 0:
            return (2,) + (None,) * (-self.axis - 1)
        return (None,) * self.axis + (2,)

    def forward(self, x: npt.ArrayLike) -> Array:
        old = self.__dict__.pop("_cache", None)  # first: a forward that fails leaves none
        if type(x) is not np.ndarray and _array_api.is_foreign(x):
            return self._forward_foreign(x)  # type: ignore[no-any-return]
        x = as_float_array(x, "GLU")
        self._check(x)
        # C-ordered, every axis is (outer, 2, m): the halves a and b of row o are
        # x[o, 0] and x[o, 1], whatever the axis, and no axis moves
        axis = self.axis % x.ndim
        outer = math.prod(x.shape[:axis])
        n = x.shape[axis] // 2  # the output's size along the axis
        rows = np.ascontiguousarray(x).reshape(outer, 2, n * math.prod(x.shape[axis + 1 :]))
        shape = (*x.shape[:axis], n, *x.shape[axis + 1 :])
        y = _memory.empty((outer, rows.shape[2]), x.dtype)
        # f' of both halves, in the input's dtype (float16's in float32), overwriting the
        # last forward's where it fits and no other thread reads it
        d = None
        if is_grad_enabled():
            kept = derivative_dtype(x.dtype)
            if old is not None and old[1] == threading.get_ident():
                d = old[0][0]
                if type(d) is not np.ndarray or d.shape != rows.shape or d.dtype != kept:
                    d = None
            if d is None:
                d = _memory.empty(rows.shape, kept)
        if x.itemsize != 2 and engine() == "numba":
            from tinygrad_act import _gated

            _gated.run_forward(rows, y, d)
        else:
            with np.errstate(all="ignore"):
                wide = rows.astype(np.float64, copy=False)
                a = wide[:, 0]
                value, gate, slope = glu_parts(_numpy_math, a, wide[:, 1])
                np.copyto(y, value, casting="unsafe")
                if d is not None:
                    d[:, 0], d[:, 1] = gate, slope
        if d is not None:
            self._remember(d, x.dtype, shape, self.axis)
        return y.reshape(shape)

    def _check(self, x: Any) -> None:
        _check_axis(self, x, self.axis)
        if x.shape[self.axis] % 2:
            raise ValueError(
                f"GLU(axis={self.axis}) splits its axis into two halves: its size must be "
                f"even, got shape {tuple(x.shape)}"
            )

    def _forward_foreign(self, x: Any) -> Any:
        """forward on another library's array, along the axis in its own namespace."""
        xp, x, wide = _array_api.prepare("GLU", x)  # wide: a fresh copy, our own
        self._check(x)
        size = x.shape[self.axis]
        a, b = _slice(wide, self.axis, 0, size // 2), _slice(wide, self.axis, size // 2, size)
        with np.errstate(all="ignore"):
            y, gate, slope = glu_parts(xp, a, b)
            self._remember((gate, slope), x.dtype, tuple(y.shape), self.axis)
        return xp.astype(y, x.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        d, dtype, shape, axis = self._recall()
        _check_same_axis(self, axis, len(shape))
        if type(d) is not np.ndarray:  # forward ran on another library's array
            gate, slope = d
            name = "GLU.backward"
            xp = _array_api.namespace(gate, name)
            grad = _array_api.check_same(name, "grad_output", gate, grad_output)
            _array_api.check_shape(name, "grad_output", grad, shape)
            g = xp.astype(xp.float_input(grad, name), gate.dtype)
            with np.errstate(all="ignore"):
                result = xp.concat([g * gate, g * slope], axis=self.axis)
            return xp.astype(result, dtype)  # type: ignore[no-any-return]
        grad = check_grad_output(self, grad_output, shape)
        axis = self.axis % len(shape)
        out = _memory.empty(d.shape, dtype)
        if dtype.itemsize != 2 and engine() == "numba":
            from tinygrad_act import _gated

            if grad.itemsize == 2:  # numba has no float16: widened, exactly
                grad = grad.astype(np.float32)
            g = np.ascontiguousarray(grad).reshape(d.shape[0], d.shape[2])
            _gated.run_backward(g, d, out)
        else:
            g = np.reshape(grad, (d.shape[0], 1, d.shape[2]))
            # NOTE: a float16 or float32 g times float32 f' is exact in float64, so such
            # float16 results round once
            wide = np.float64 if dtype.itemsize == 2 else None
            with np.errstate(all="ignore"):
                np.multiply(g, d, out=out, dtype=wide, casting="unsafe")
        gradient: Array = out.reshape((*shape[:axis], 2 * shape[axis], *shape[axis + 1 :]))
        return gradient


@kernel_helper
def glu_parts(xp: Any, a: Any, b: Any) -> tuple[Any, Any, Any]:
    """GLU's f = a sigma(b) and its derivatives by a and by b, sigma(b) and
    a sigma(b) sigma(-b), with sigma as `Sigmoid`'s kernel computes it: for NumPy, the
    other array libraries, and compiled (see `tinygrad_act._gated`).

    NOTE: the product with a rounds once more than Sigmoid's f', so c = sigma(-|b|) is
    carried as c + c_lo: the division's remainder (exact, from `two_product`) and the
    rounding error of 1 + e (exact: e <= 1), over 1 + e as a product with 1 - c. Where c
    is just above a power of two its own rounding is a relative 2**-52: the gradient by
    b reached 4.15 ulp (b = -10.394). In Sigmoid's own kernel this would cost a sixth of
    its loop's time for no bound it needs. Below b = -512, as in SiLU, e = e^(b + 64)
    and the results are multiplied by e^-64 last: where sigma(b) is subnormal (below
    b = -708.4), f and the gradient by b can still be normal, and a product with a
    subnormal sigma(b) lost up to all its bits.
    """
    deep = b < -512
    e = xp.exp_nonpositive(xp.where(deep, b + 64, -xp.abs(b)))
    d = 1 + e
    c = e / d
    product, product_error = xp.two_product(c, d)
    c_lo = ((e - product) - product_error - c * (e - (d - 1))) * (1 - c)
    sigma = xp.where(b >= 0, (1 - c) - c_lo, c + c_lo)  # times e^64 where deep
    slope = (c - c * c) + c_lo * (1 - 2 * c)
    scale = xp.where(deep, _E_MINUS_64, 1.0)
    return (a * sigma) * scale, sigma * scale, (a * slope) * scale


def _exp_minus_max(xp: Any, x: Array, axis: int) -> tuple[Array, Array]:
    """``x - m`` and ``exp(x - m)``, with ``m`` the maximum along `axis` (0 if not
    finite), in namespace `xp`.

    NOTE: ``x - m`` rounds by up to half its ulp (1e-13 at 1000), and ``exp`` turns that
    absolute error into a relative one of hundreds of ulp. Knuth's TwoSum gives the
    exact remainder ``lo`` of the subtraction, and ``exp(hi + lo) = exp(hi) (1 + lo)``.
    """
    m = xp.max(x, axis=axis, keepdims=True) if math.prod(x.shape) else x
    minus_m = -xp.where(xp.isfinite(m), m, 0.0)
    hi = x + minus_m
    b = hi - x
    lo = (x - (hi - b)) + (minus_m - b)
    return hi, xp.exp(hi) * (1 + xp.where(xp.isfinite(hi), lo, 0.0))


def _slice(x: Array, axis: int, start: int, stop: int) -> Array:
    """``x[..., start:stop, ...]`` along `axis` (a view on NumPy)."""
    return x[(slice(None),) * (axis % x.ndim) + (slice(start, stop), ...)]


def _valid_axis(name: str, axis: Any, argument: str = "axis") -> int:
    """`axis` as an int, or a clear error (bool is refused: it is not an axis)."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{name}: {argument} must be an int, got {axis!r}")
    return int(axis)


def _axis_last(a: Array, axis: int) -> Array:
    """`a` with `axis` moved last, as ``np.moveaxis(a, axis, -1)`` (an `axis` out of
    range raises its error), at a fraction of its cost: `a` itself where `axis` is
    last already, else one transpose."""
    ndim = a.ndim
    if not -ndim <= axis < ndim:
        return np.moveaxis(a, axis, -1)
    axis %= ndim
    if axis == ndim - 1:
        return a
    return a.transpose((*range(axis), *range(axis + 1, ndim), axis))  # type: ignore[no-any-return]


def _axis_back(a: Array, axis: int) -> Array:
    """The inverse of `_axis_last`: `a`'s last axis moved to `axis`."""
    ndim = a.ndim
    if not -ndim <= axis < ndim:
        return np.moveaxis(a, -1, axis)
    axis %= ndim
    if axis == ndim - 1:
        return a
    return a.transpose((*range(axis), ndim - 1, *range(axis, ndim - 1)))  # type: ignore[no-any-return]


def _check_axis(layer: Any, x: Array, axis: Any) -> None:
    """`layer.axis` (which may have been set since the constructor) fits `x`."""
    axis = _valid_axis(type(layer).__name__, axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"{type(layer).__name__}(axis={axis}) needs an input with more than "
            f"{axis if axis >= 0 else -axis - 1} dimensions, got shape {tuple(x.shape)}"
        )


def _check_same_axis(layer: Any, axis: int, ndim: int) -> None:
    """backward's check that `layer.axis` still names the axis forward used."""
    now = _valid_axis(type(layer).__name__, layer.axis)
    if not -ndim <= now < ndim or now % ndim != axis % ndim:
        raise ValueError(
            f"{type(layer).__name__}.backward: forward ran along axis {axis}, but axis is "
            f"{now} now; call forward again"
        )


#: Built-in activations by lower-case name, for `get` and the command line.
ACTIVATIONS: dict[str, type[Layer]] = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leakyrelu": LeakyReLU,
    "elu": ELU,
    "selu": SELU,
    "softplus": Softplus,
    "silu": SiLU,
    "gelu": GELU,
    "softmax": Softmax,
    "logsoftmax": LogSoftmax,
    "logsigmoid": LogSigmoid,
    "softsign": Softsign,
    "mish": Mish,
    "hardtanh": Hardtanh,
    "relu6": ReLU6,
    "hardsigmoid": Hardsigmoid,
    "hardswish": Hardswish,
    "celu": CELU,
    "softshrink": Softshrink,
    "hardshrink": Hardshrink,
    "tanhshrink": Tanhshrink,
    "threshold": Threshold,
    "softmin": Softmin,
    "prelu": PReLU,
    "rrelu": RReLU,
    "glu": GLU,
}
#: Other accepted spellings.
ALIASES = {
    "swish": "silu",
    "leaky_relu": "leakyrelu",
    "log_softmax": "logsoftmax",
    "log_sigmoid": "logsigmoid",
    "hard_tanh": "hardtanh",
    "hard_sigmoid": "hardsigmoid",
    "hard_swish": "hardswish",
}


def get(name: str, **kwargs: Any) -> Layer:
    """Return a new activation by name (case-insensitive), e.g. ``get("relu")``.

    Keyword arguments go to its constructor. Unknown names raise `KeyError`
    listing the valid ones.

    >>> get("LeakyReLU", negative_slope=0.2)
    LeakyReLU(negative_slope=0.2)
    """
    return ACTIVATIONS[resolve(name)](**kwargs)


def resolve(name: str) -> str:
    """The key in `ACTIVATIONS` for `name` (case-insensitive, aliases allowed).

    Unknown names raise `KeyError` listing the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str, got {type(name).__name__}: {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        valid = ", ".join(sorted([*ACTIVATIONS, *ALIASES]))
        raise KeyError(f"unknown activation {name!r}; valid names: {valid}")
    return key
