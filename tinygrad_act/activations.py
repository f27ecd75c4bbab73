"""Activation layers: one small class per activation, its math and nothing else.

Elementwise activations subclass `Activation` and give ``function`` and
``derivative`` (or, where an accurate derivative needs another saved value,
``function_and_saved`` and ``derivative_from_saved``). `Softmax` and
`LogSoftmax` act along an axis and are `Layer` subclasses.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_act.base import (
    Activation,
    Array,
    Layer,
    Saved,
    as_float_array,
    check_grad_output,
    working_dtypes,
)

_E_MINUS_64 = math.exp(-64)


def _no_inf_times_zero(x: Array, *, upper: bool = True) -> Array:
    """`x` clipped to [-1000, 1000] (only below, if not `upper`).

    Where a factor such as sigma(x) is exactly 0 or 1 (|x| > 745 in float64), the
    clipped x gives the same product, but -inf * 0 becomes 0 instead of NaN.
    """
    return np.clip(x, -1000, 1000 if upper else None)


def _logistic(x: Array) -> tuple[Array, Array]:
    """sigma(x) and 1 - sigma(x), both accurate in both tails and without overflow."""
    # NOTE: e^-|x| <= 1 never overflows; 1 - sigma(x) is e/(1+e) for x >= 0, not 1 - s.
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)  # sigma(|x|); and sigma(-|x|) = r * e
    step = np.greater_equal(x, 0, out=np.empty_like(x))  # 1.0 or 0.0, cheaper than np.where
    return r * np.maximum(e, step), r * np.maximum(e, 1 - step)


class Sigmoid(Activation):
    r"""The logistic sigmoid.

    .. math::
        f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad f'(x) = \sigma(x)\,(1 - \sigma(x))

    Shape: input ``(*)``, output ``(*)``, the same shape.

    Notes
    -----
    Forward and backward use :math:`c = \sigma(-|x|) = e^{-|x|} / (1 + e^{-|x|})`:
    :math:`e^{-|x|} \le 1` never overflows, and :math:`\sigma(x)` is :math:`1 - c`
    for :math:`x \ge 0` and :math:`c` otherwise. The layer caches :math:`c`, not
    the rounded output: :math:`1 - \sigma(x)` computed from a rounded
    :math:`\sigma(x)` is 0 once :math:`\sigma(x)` rounds to 1 (x > 36.7 in float64),
    while :math:`f'(x) = c\,(1 - c)` stays accurate to a few ulp in both tails.
    float32 is computed in float64 and rounded once.

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid = Sigmoid()
    >>> sigmoid(np.array([-40.0, 0.0, 40.0]))
    array([4.24835426e-18, 5.00000000e-01, 1.00000000e+00])
    >>> sigmoid.backward(np.ones(3))
    array([4.24835426e-18, 2.50000000e-01, 4.24835426e-18])
    """

    float32_in_float64 = True

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        # (out= reuses each temporary: the exp dominates, and every pass saved counts)
        e = np.abs(x)
        np.exp(np.negative(e, out=e), out=e)  # e^-|x| <= 1
        r = np.reciprocal(e + 1)  # sigma(|x|)
        c = e * r  # sigma(-|x|), exact in the tail
        # y is r for x >= 0, else c = r * e: r * max(e, [x >= 0]), cheaper than np.where
        y = np.greater_equal(x, 0, out=np.empty_like(x))
        return np.multiply(np.maximum(e, y, out=y), r, out=y), (c,)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (c,) = saved
        return c * (1 - c)


class Tanh(Activation):
    r"""The hyperbolic tangent.

    .. math::
        f(x) = \tanh x, \qquad f'(x) = 1 - \tanh^2 x

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`1 - y^2` from a rounded :math:`y` cancels for large :math:`|x|` (it is 0
    once :math:`y` rounds to ±1, x > 19.1 in float64). The layer caches
    :math:`m = 1 - |y| = 2e/(1 + e)` with :math:`e = e^{-2|x|}`, accurate in the tail,
    and returns :math:`1 - y^2 = m\,(2 - m)`. float32 is computed in float64.

    Examples
    --------
    >>> tanh = Tanh()
    >>> tanh(np.array([0.0, 1.0, 30.0]))
    array([0.        , 0.76159416, 1.        ])
    >>> tanh.backward(np.ones(3))
    array([1.00000000e+00, 4.19974342e-01, 3.50260431e-26])
    """

    float32_in_float64 = True

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        e = np.exp(-2 * np.minimum(np.abs(x), 1000))  # NOTE: 2|x| would overflow at the max
        return np.tanh(x), (2 * e / (1 + e),)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (m,) = saved
        return m * (2 - m)


class ReLU(Activation):
    r"""The rectified linear unit.

    .. math::
        f(x) = \max(x, 0), \qquad f'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    At the kink, :math:`f'(0) = 0`, as in PyTorch. NaN propagates through
    forward and backward. Caches only the output.

    Examples
    --------
    >>> relu = ReLU()
    >>> relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    >>> relu.backward(np.ones(3))
    array([0., 0., 1.])
    """

    needs_input = False
    kinks = (0.0,)

    def function(self, x: Array) -> Array:
        return np.maximum(x, 0)

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert y is not None
        return np.sign(y)  # y >= 0: 1 where y > 0, 0 where y == 0, NaN for NaN


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
        Slope for :math:`x \le 0` (default 0.01), as in PyTorch.

    Notes
    -----
    At the kink, :math:`f'(0)` = ``negative_slope``, as in PyTorch. NaN propagates.
    Caches only the input.

    Examples
    --------
    >>> leaky = LeakyReLU(negative_slope=0.1)
    >>> leaky(np.array([-2.0, 0.0, 3.0]))
    array([-0.2,  0. ,  3. ])
    >>> leaky.backward(np.ones(3))
    array([0.1, 0.1, 1. ])
    """

    needs_output = False
    kinks = (0.0,)

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = negative_slope

    def function(self, x: Array) -> Array:
        return np.where(x > 0, x, self.negative_slope * x)

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert x is not None
        slope = self.negative_slope
        if 0 <= slope <= 1:  # sign(x) is 1, 0 or -1 (NaN for NaN): the max is 1 or the slope
            return np.maximum(np.sign(x), slope)
        # heaviside(x, 0) is 1 for x > 0, else 0; heaviside(-x, 1) is its complement
        return np.heaviside(x, 0) + slope * np.heaviside(-x, 1)


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
        Scale of the negative part (default 1.0).

    Notes
    -----
    Uses ``expm1`` for :math:`e^x - 1`, accurate near 0. The derivative for
    :math:`x \le 0` is :math:`\alpha e^x` from the cached input, not :math:`y + \alpha`,
    which cancels for very negative :math:`x`. At the kink, :math:`f'(0) = \alpha`
    (1 for the default), as in PyTorch.

    Examples
    --------
    >>> elu = ELU()
    >>> elu(np.array([-50.0, 0.0, 2.0]))
    array([-1.,  0.,  2.])
    >>> elu.backward(np.ones(3))
    array([1.92874985e-22, 1.00000000e+00, 1.00000000e+00])
    """

    needs_output = False
    kinks = (0.0,)
    alpha: float

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def function(self, x: Array) -> Array:
        # NOTE: min(x, 0) keeps exp from overflowing on the branch that np.where discards
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert x is not None
        return np.where(x > 0, 1, self.alpha * np.exp(np.minimum(x, 0)))


class SELU(ELU):
    r"""The scaled exponential linear unit: ``scale * ELU(alpha)`` with fixed constants.

    .. math::
        f(x) = \lambda \begin{cases} x & x > 0 \\ \alpha\,(e^x - 1) & x \le 0 \end{cases},
        \qquad
        f'(x) = \lambda \begin{cases} 1 & x > 0 \\ \alpha\,e^x & x \le 0 \end{cases}

    with :math:`\alpha \approx 1.6733` and :math:`\lambda \approx 1.0507` (Klambauer et al.,
    2017; the same constants as PyTorch). :math:`f'(0) = \lambda\alpha`, as in PyTorch.

    Shape: input ``(*)``, output ``(*)``.

    Examples
    --------
    >>> selu = SELU()
    >>> selu(np.array([-1.0, 0.0, 1.0]))
    array([-1.11133074,  0.        ,  1.05070099])
    """

    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def __init__(self) -> None:
        pass  # alpha and scale are fixed constants

    def function(self, x: Array) -> Array:
        with np.errstate(over="ignore"):  # beyond the largest float / scale, inf is right
            return self.scale * super().function(x)

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        return self.scale * super().derivative(x, y)


class Softplus(Activation):
    r"""A smooth ReLU.

    .. math::
        f(x) = \frac{1}{\beta} \log(1 + e^{\beta x}), \qquad f'(x) = \sigma(\beta x)

    Shape: input ``(*)``, output ``(*)``.

    Parameters
    ----------
    beta : float
        Sharpness (default 1.0); larger is closer to ReLU.

    Notes
    -----
    Computed as :math:`\max(z, 0) + \log(1 + e^{-|z|})`, :math:`z = \beta x`, with
    ``log1p``: no overflow at x = 1000, full relative accuracy at x = -1000. Unlike
    PyTorch, there is no ``threshold`` above which the result switches to ``x``:
    the exact form costs nothing here. Caches :math:`\sigma(\beta x)`, the derivative
    itself. For :math:`\beta \ne 1` the rounding of :math:`\beta x` adds an error of
    about :math:`|\beta x|` ulp in the far left tail.

    Examples
    --------
    >>> softplus = Softplus()
    >>> softplus(np.array([-1000.0, 0.0, 1000.0]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+03])
    >>> softplus.backward(np.ones(3))
    array([0. , 0.5, 1. ])
    """

    float32_in_float64 = True

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = beta

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        with np.errstate(over="ignore"):  # beta * x beyond the largest float: inf is right
            z = self.beta * x
        s, _ = _logistic(z)
        return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / self.beta, (s,)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (s,) = saved
        return s


class SiLU(Activation):
    r"""The sigmoid-weighted linear unit, also called Swish.

    .. math::
        f(x) = x\,\sigma(x), \qquad f'(x) = \sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`\sigma(x)` and :math:`1 - \sigma(x)` are both computed from
    :math:`e^{-|x|}`, so neither tail overflows or cancels; below x = -708, where
    :math:`\sigma(x)` is subnormal, :math:`e^x` is carried scaled by :math:`e^{64}`
    into the product with x, so the result rounds once. forward computes
    :math:`f'(x)` from the same :math:`\sigma(x)` and caches it: one array, and
    backward is a single product. :math:`f'` has a zero
    at :math:`x \approx -1.2785`; close to it, the relative error of :math:`f'`
    in float64 grows (the absolute error stays about 1e-16).

    Examples
    --------
    >>> silu = SiLU()
    >>> silu(np.array([-800.0, 0.0, 2.0]))
    array([-0.        ,  0.        ,  1.76159416])
    >>> silu.backward(np.ones(3))
    array([-0.        ,  0.5       ,  1.09078425])
    """

    float32_in_float64 = True

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        s, s_complement = _logistic(x)
        y = _no_inf_times_zero(x, upper=False) * s
        dydx = s * (1 + _no_inf_times_zero(x) * s_complement)
        # NOTE: below x = -708, sigma(x) = e^x is subnormal, with fewer digits, before it is
        # multiplied by x. There, e^x = e^(x + 64) e^-64 (x + 64 is exact) keeps the digits
        # until the one final rounding; 1 - sigma(x) is exactly 1.
        deep = x < -512
        if deep.any():
            tail = np.maximum(x[deep], -1000)  # -inf * 0 would be NaN; 0 is right
            scaled = np.exp(tail + 64)
            y[deep] = tail * scaled * _E_MINUS_64
            dydx[deep] = (1 + tail) * scaled * _E_MINUS_64
        return y, (dydx,)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (dydx,) = saved
        return dydx


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
        "none" (the default, as in PyTorch) is exact and needs SciPy for
        :math:`\Phi` (``pip install "tinygrad_act[gelu]"``); "tanh" needs nothing.

    Notes
    -----
    :math:`\Phi(-|x|) = \tfrac12 \operatorname{erfcx}(|x|/\sqrt2)\, e^{-x^2/2}`, with
    :math:`x^2` carried exactly into the exponential: accurate in the left tail,
    where :math:`\tfrac12(1 + \operatorname{erf})` cancels and SciPy's ``erfc``
    loses hundreds of ulp. The tanh form
    uses :math:`\tfrac12(1 + \tanh z) = \sigma(2z)` for the same reason. forward
    computes :math:`f'(x)` from the same terms and caches it. :math:`f'` has a zero
    near :math:`x \approx -0.75`; close to it the relative error of :math:`f'` grows
    in float64.

    Examples
    --------
    >>> gelu = GELU(approximate="tanh")
    >>> gelu(np.array([-1.0, 0.0, 1.0]))
    array([-0.15880801,  0.        ,  0.84119199])
    >>> gelu.backward(np.ones(3))
    array([-0.08296408,  0.5       ,  1.08296408])
    """

    float32_in_float64 = True

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        if approximate == "none":
            _erfcx()  # fail now, naming the extra to install, rather than in forward
        self.approximate = approximate

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        if self.approximate == "tanh":
            s, s_complement = _logistic(2 * _gelu_tanh_z(x))
            # NOTE: beyond |x| = 100, s * s_complement is 0; clipping keeps x^2 finite
            dz = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * np.square(np.clip(x, -100, 100)))
            cdf, dydx = s, s + 2 * _no_inf_times_zero(x) * s * s_complement * dz
        else:
            gaussian = _gaussian(x)
            cdf = _normal_cdf(x, gaussian)
            dydx = cdf + np.clip(x, -40, 40) * gaussian / math.sqrt(2 * math.pi)
        return _no_inf_times_zero(x, upper=False) * cdf, (dydx,)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (dydx,) = saved
        return dydx


def _gelu_tanh_z(x: Array) -> Array:
    # NOTE: |x| <= 100 keeps x^3 finite; beyond it sigma(2z) is exactly 0 or 1 anyway.
    x = np.clip(x, -100, 100)
    return math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)


def _erfcx() -> Any:
    try:
        from scipy.special import erfcx
    except ImportError:
        raise ImportError(
            'GELU(approximate="none") needs SciPy: pip install "tinygrad_act[gelu]", '
            'or use GELU(approximate="tanh")'
        ) from None
    return erfcx


def _gaussian(x: Array) -> Array:
    """exp(-x^2 / 2), accurate to an ulp or two even where x^2 is large.

    NOTE: rounding x^2 to float64 changes exp(-x^2/2) by a relative x^2/2 * 2^-53
    (500 ulp at x = -32). Dekker's exact product gives x^2 = hi + lo, and
    exp(-(hi + lo)/2) = exp(-hi/2) * (1 - lo/2) to well below an ulp. For |x| > 40
    the result is 0 in float64; clipping keeps the split from overflowing.
    """
    x = np.clip(x, -40, 40)
    t = 134217729.0 * x  # 2^27 + 1: Veltkamp's split of x into two 26-bit halves
    x_hi = t - (t - x)
    x_lo = x - x_hi
    hi = x * x
    lo = ((x_hi * x_hi - hi) + 2 * x_hi * x_lo) + x_lo * x_lo
    return np.exp(-0.5 * hi) * (1 - 0.5 * lo)


def _normal_cdf(x: Array, gaussian: Array) -> Array:
    """Phi(x) = 1/2 erfc(-x / sqrt 2), accurate in both tails, given ``_gaussian(x)``.

    NOTE: SciPy's erfc and ndtr lose up to hundreds of ulp in the tail (they round
    x^2 inside exp). Instead Phi(-|x|) = 1/2 erfcx(|x| / sqrt 2) * exp(-x^2 / 2),
    with the scaled erfcx (smooth, insensitive to rounding its argument) and
    `_gaussian`; Phi(|x|) = 1 - Phi(-|x|).
    """
    lower: Array = 0.5 * _erfcx()(np.abs(x) / math.sqrt(2)) * gaussian
    return np.where(x < 0, lower, 1 - lower)


class _AlongAxis(Layer):
    """Shared by `Softmax` and `LogSoftmax`: conversion, dtypes and the cache.

    A subclass gives ``function(x)``, normalising along ``self.axis``, and
    ``vjp(y, g)``, the vector-Jacobian product from the output ``y``.
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis
        self._y: Array | None = None
        self._dtype: np.dtype[Any] = np.dtype(np.float64)

    def function(self, x: Array) -> Array:
        raise NotImplementedError

    def vjp(self, y: Array, g: Array) -> Array:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (None,) * (self.axis + 1 if self.axis >= 0 else -self.axis)

    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, type(self).__name__)
        _check_axis(self, x, self.axis)
        compute, output, cache = working_dtypes(x.dtype, float32_in_float64=True)
        # NOTE: +inf and NaN give NaN (see Softmax), without a warning.
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            y = self.function(x.astype(compute, copy=False))
        self._y, self._dtype = y.astype(cache), x.dtype  # a copy: the cache is our own
        return y.astype(output, copy=False)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        y = self._y
        grad = check_grad_output(self, grad_output, None if y is None else y.shape)
        assert y is not None
        compute, output, _ = working_dtypes(self._dtype, float32_in_float64=True)
        with np.errstate(invalid="ignore", over="ignore"):
            result = self.vjp(y.astype(compute, copy=False), grad.astype(compute, copy=False))
        return result.astype(output, copy=False)


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
    place, NaN a row of NaN, as in PyTorch. float32 is computed in float64. Caches
    the output.

    Examples
    --------
    >>> softmax = Softmax()
    >>> softmax(np.array([1000.0, 1001.0, 1002.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax.jacobian(np.array([0.0, 0.0]))
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """

    def function(self, x: Array) -> Array:
        _, e = _exp_minus_max(x, self.axis)
        return e / np.sum(e, axis=self.axis, keepdims=True)  # type: ignore[no-any-return]

    def vjp(self, y: Array, g: Array) -> Array:
        return y * (g - np.sum(g * y, axis=self.axis, keepdims=True))  # type: ignore[no-any-return]

    def jacobian(self, x: npt.ArrayLike) -> Array:
        r"""The explicit Jacobian :math:`\operatorname{diag}(y) - y y^\top` of each row.

        Returns shape ``(..., n, n)``: `axis` moved last, then expanded to a square
        matrix. Computed in float64, returned in the input's dtype. Does not touch
        the cache.
        """
        x = as_float_array(x, "Softmax.jacobian")
        _check_axis(self, x, self.axis)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            y = np.moveaxis(self.function(x.astype(np.float64)), self.axis, -1)
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
    :math:`\log \sum` rounds them away). float32 is computed in float64. Caches the
    output.

    Examples
    --------
    >>> log_softmax = LogSoftmax()
    >>> log_softmax(np.array([0.0, -40.0]))
    array([-4.24835426e-18, -4.00000000e+01])
    """

    def function(self, x: Array) -> Array:
        shifted, e = _exp_minus_max(x, self.axis)
        is_max = shifted == 0
        # the sum of e^(x_j - m) without one maximal entry's 1 (other maxima count 1 each)
        rest = np.sum(np.where(is_max, 0, e), axis=self.axis, keepdims=True)
        rest += np.sum(is_max, axis=self.axis, keepdims=True) - 1
        return shifted - np.log1p(rest)  # type: ignore[no-any-return]

    def vjp(self, y: Array, g: Array) -> Array:
        return g - np.exp(y) * np.sum(g, axis=self.axis, keepdims=True)  # type: ignore[no-any-return]


def _exp_minus_max(x: Array, axis: int) -> tuple[Array, Array]:
    """``x - m`` and ``exp(x - m)``, with ``m`` the maximum along `axis` (0 if not finite).

    NOTE: ``x - m`` rounds by up to half its ulp (1e-13 at 1000), and ``exp`` turns that
    absolute error into a relative one of hundreds of ulp. Knuth's TwoSum gives the
    exact remainder ``lo`` of the subtraction, and ``exp(hi + lo) = exp(hi) (1 + lo)``.
    """
    m = np.max(x, axis=axis, keepdims=True) if x.size else x
    minus_m = -np.where(np.isfinite(m), m, 0)
    hi = x + minus_m
    b = hi - x
    lo = (x - (hi - b)) + (minus_m - b)
    return hi, np.exp(hi) * (1 + np.where(np.isfinite(hi), lo, 0))


def _check_axis(layer: Layer, x: Array, axis: int) -> None:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"{type(layer).__name__}(axis={axis}) needs an input with more than "
            f"{axis if axis >= 0 else -axis - 1} dimensions, got shape {x.shape}"
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
}
#: Other accepted spellings.
ALIASES = {"swish": "silu", "leaky_relu": "leakyrelu", "log_softmax": "logsoftmax"}


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
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        valid = ", ".join(sorted([*ACTIVATIONS, *ALIASES]))
        raise KeyError(f"unknown activation {name!r}; valid names: {valid}")
    return key
