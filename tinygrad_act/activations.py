"""Activation layers: one small class per activation, its math and nothing else.

Elementwise activations subclass `Activation` and give ``function`` and
``derivative`` (or, where an accurate derivative needs another saved value,
``function_and_saved`` and ``derivative_from_saved``). `Softmax` and
`LogSoftmax` act along an axis and are `Layer` subclasses.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tinygrad_act import _numpy_math
from tinygrad_act._engine import engine, kernel_helper
from tinygrad_act.base import (
    Activation,
    Array,
    Layer,
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
_GELU_CUBIC = 0.044715


def _logistic(x: Array) -> tuple[Array, Array]:
    """sigma(x) and 1 - sigma(x) of a NumPy array, both accurate in both tails."""
    e = np.exp(-np.abs(x))  # NOTE: e^-|x| <= 1 never overflows
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r), np.where(x >= 0, e * r, r)


class Sigmoid(Activation):
    r"""The logistic sigmoid.

    .. math::
        f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad f'(x) = \sigma(x)\,(1 - \sigma(x))

    Shape: input ``(*)``, output ``(*)``, the same shape.

    Notes
    -----
    With :math:`e = e^{-|x|} \le 1`, which never overflows, :math:`r = 1/(1 + e) =
    \sigma(|x|)` and :math:`c = e r = \sigma(-|x|)`: :math:`\sigma(x)` is :math:`r` for
    :math:`x \ge 0` and :math:`c` otherwise, and :math:`f'(x) = r c`. forward rounds
    :math:`f'(x)` once and caches it. ``s * (1 - s)`` from a rounded ``s`` is 0 once
    ``s`` rounds to 1 (x > 36.7 in float64), while :math:`r c` stays accurate to an
    ulp or two in both tails.

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
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)  # sigma(|x|)
        c = e * r  # sigma(-|x|), exact in the tail
        return xp.where(x >= 0, r, c), r * c


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
    :math:`1 - y^2 = m\,(2 - m)`.

    Examples
    --------
    >>> tanh = Tanh()
    >>> tanh(np.array([0.0, 1.0, 30.0]))
    array([0.        , 0.76159416, 1.        ])
    >>> tanh.backward(np.ones(3))
    array([1.00000000e+00, 4.19974342e-01, 3.50260431e-26])
    """

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(-2 * xp.abs(x))
        m = 2 * e / (1 + e)  # 1 - |tanh x|
        return xp.tanh(x), m * (2 - m)


class ReLU(Activation):
    r"""The rectified linear unit.

    .. math::
        f(x) = \max(x, 0), \qquad f'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    At the kink, :math:`f'(0) = 0`, and :math:`f(-0.0) = -0.0`, as in PyTorch. NaN
    propagates through forward and backward.

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
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        return xp.where(x < 0, 0.0, x), _step(xp, x, 0.0)


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

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = check_real("LeakyReLU", "negative_slope", negative_slope)

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, negative_slope: float) -> tuple[Any, Any]:
        return xp.where(x > 0, x, negative_slope * x), _step(xp, x, negative_slope)


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
    and :math:`f(-0.0) = -0.0`, as in PyTorch.

    Examples
    --------
    >>> elu = ELU()
    >>> elu(np.array([-50.0, 0.0, 2.0]))
    array([-1.,  0.,  2.])
    >>> elu.backward(np.ones(3))
    array([1.92874985e-22, 1.00000000e+00, 1.00000000e+00])
    """

    kinks = (0.0,)

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_real("ELU", "alpha", alpha)

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, alpha: float) -> tuple[Any, Any]:
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
    def function_and_derivative(xp: Any, x: Any, alpha: float, scale: float) -> tuple[Any, Any]:
        negative = xp.where(x > 0, 0.0, x)
        return (
            scale * xp.where(x > 0, x, alpha * xp.expm1(negative)),
            scale * xp.where(x > 0, 1.0, alpha * xp.exp(negative)),
        )


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
    ``x``: the exact form costs nothing here. For :math:`\beta \ne 1` the rounding
    of :math:`\beta x` adds an error of about :math:`|\beta x|` ulp in the far left
    tail.

    Examples
    --------
    >>> softplus = Softplus()
    >>> softplus(np.array([-1000.0, 0.0, 1000.0]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+03])
    >>> softplus.backward(np.ones(3))
    array([0. , 0.5, 1. ])
    """

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = check_real("Softplus", "beta", beta, positive=True)

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, beta: float) -> tuple[Any, Any]:
        z = beta * x
        e = xp.exp(-xp.abs(z))
        r = 1 / (1 + e)
        return xp.maximum(x, 0.0) + xp.log1p(e) / beta, xp.where(z >= 0, r, e * r)


class SiLU(Activation):
    r"""The sigmoid-weighted linear unit, also called Swish.

    .. math::
        f(x) = x\,\sigma(x), \qquad f'(x) = \sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)

    Shape: input ``(*)``, output ``(*)``.

    Notes
    -----
    :math:`\sigma(x)` and :math:`1 - \sigma(x)` are both computed from
    :math:`e^{-|x|}`, so neither tail overflows or cancels. Below x = -512, where
    :math:`\sigma(x) \approx e^x` would become subnormal before it is multiplied by
    x, :math:`e^{x + 64}` is carried instead (x + 64 is exact there) and the product
    is scaled by :math:`e^{-64}` last, so the result rounds once. :math:`f'` has a
    zero at :math:`x \approx -1.2785`; close to it, the relative error of :math:`f'`
    in float64 grows (the absolute error stays about 1e-16).

    Examples
    --------
    >>> silu = SiLU()
    >>> silu(np.array([-800.0, 0.0, 2.0]))
    array([-0.        ,  0.        ,  1.76159416])
    >>> silu.backward(np.ones(3))
    array([-0.        ,  0.5       ,  1.09078425])
    """

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        deep = x < -512
        e = xp.exp(xp.where(deep, x + 64, -xp.abs(x)))
        r = 1 / (1 + e)
        s = xp.where(x >= 0, r, e * r)  # sigma(x), times e^64 where deep
        complement = xp.where(x >= 0, e * r, r)  # 1 - sigma(x)
        scale = xp.where(deep, _E_MINUS_64, 1.0)
        # NOTE: clipping x makes -inf * 0 a 0 (the limit), not NaN; the product is unchanged
        clipped = xp.clip(x, -1000.0, 1000.0)
        y = xp.maximum(x, -1000.0) * s * scale
        return y, s * (1 + clipped * complement) * scale


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
        "none" (the default, as in PyTorch) is exact; on the NumPy engine it needs
        SciPy for ``erfc`` (``pip install "tinygrad_act[gelu]"``). "tanh" needs nothing.

    Notes
    -----
    :math:`\Phi(x) = \tfrac12 \operatorname{erfc}(t)` with :math:`t = -x/\sqrt2`. The
    rounding of :math:`t` alone would cost :math:`2t^2` ulp in the left tail (hundreds),
    so :math:`t = t_{hi} + t_{lo}` is carried exactly (Dekker's product) and
    :math:`\operatorname{erfc}(t_{hi} + t_{lo}) = \operatorname{erfc}(t_{hi})
    - \tfrac{2}{\sqrt\pi} e^{-t_{hi}^2} t_{lo}`. Likewise :math:`\varphi(x)` uses
    :math:`x^2` split exactly. The tanh form uses :math:`\tfrac12(1 + \tanh z) =
    \sigma(2z)`, accurate in the left tail. :math:`f'` has a zero near
    :math:`x \approx -0.75`; close to it the relative error of :math:`f'` grows in float64.

    Examples
    --------
    >>> gelu = GELU(approximate="tanh")
    >>> gelu(np.array([-1.0, 0.0, 1.0]))
    array([-0.15880801,  0.        ,  0.84119199])
    >>> gelu.backward(np.ones(3))
    array([-0.08296408,  0.5       ,  1.08296408])
    """

    def __init__(self, approximate: Literal["none", "tanh"] = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        if approximate == "none" and engine() == "numpy":
            _numpy_math.erfc(0.0)  # fail now, naming the extra to install, rather than in forward
        self.approximate = approximate

    def _kernel(self, derivative: bool) -> tuple[Any, tuple[float, ...], bool]:
        if self.approximate == "tanh":
            return _gelu_tanh, (), True
        return _gelu, (), True

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        return _gelu(xp, x)


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
    cdf = 0.5 * xp.erfc(t_hi) - _ONE_OVER_SQRT_PI * xp.exp(-t_hi * t_hi) * t_lo
    # phi(a) = exp(-a^2 / 2) / sqrt(2 pi), with a^2 = hi + lo exactly
    hi = a * a
    lo = ((a_hi * a_hi - hi) + 2 * a_hi * a_lo) + a_lo * a_lo
    density = xp.exp(-0.5 * hi) * (1 - 0.5 * lo) * _ONE_OVER_SQRT_2PI
    return xp.maximum(x, -1000.0) * cdf, cdf + a * density


def _gelu_tanh(xp: Any, x: Any) -> tuple[Any, Any]:
    """GELU's tanh approximation: x sigma(2z) and its derivative."""
    a = xp.clip(x, -100.0, 100.0)  # NOTE: keeps a^3 finite; beyond, sigma(2z) is 0 or 1
    z2 = 2 * _SQRT_2_OVER_PI * (a + _GELU_CUBIC * a * a * a)
    e = xp.exp(-xp.abs(z2))
    r = 1 / (1 + e)
    s = xp.where(z2 >= 0, r, e * r)  # sigma(2z)
    s_complement = xp.where(z2 >= 0, e * r, r)
    dz = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * a * a)
    return xp.maximum(x, -1000.0) * s, s + 2 * a * s * s_complement * dz


class _AlongAxis(Layer):
    """Shared by `Softmax` and `LogSoftmax`: conversion, dtypes, layout and the cache.

    A subclass gives ``function(x)`` and ``vjp(y, g)``, the vector-Jacobian product
    from the output ``y``, both along the last axis of a C-ordered float64 array.
    The layer moves `axis` last and makes the rows contiguous first, so every
    layout and every axis computes each row the same way: the results are
    bit-identical whatever the memory layout.
    """

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        name = type(self).__name__
        if dim is not None:  # PyTorch's name for it
            if axis != -1:
                raise TypeError(f"{name}: give axis or dim (its PyTorch name), not both")
            axis = dim
        if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
            raise TypeError(f"{name}: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def function(self, x: Array) -> Array:
        raise NotImplementedError

    def vjp(self, y: Array, g: Array) -> Array:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (None,) * (self.axis + 1 if self.axis >= 0 else -self.axis)

    def _rows(self, a: Array) -> Array:
        """`a` in float64 with `axis` last, C-ordered."""
        return np.ascontiguousarray(np.moveaxis(a, self.axis, -1), dtype=np.float64)

    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, type(self).__name__)
        _check_axis(self, x, self.axis)
        self.__dict__.pop("_cache", None)
        # NOTE: +inf and NaN give NaN (see Softmax), without a warning.
        with np.errstate(all="ignore"):
            y = self._compiled("forward", self._rows(x))
        if is_grad_enabled():  # y (float64, axis last) is a fresh array: our own
            self._cache = (y, x.dtype, threading.get_ident())
        with np.errstate(all="ignore"):
            return np.moveaxis(y, -1, self.axis).astype(x.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        name = type(self).__name__
        cache = self.__dict__.get("_cache")
        if cache is None:
            raise RuntimeError(
                f"{name}.backward called without a forward to go with it: call forward(x) "
                "first (outside no_grad)"
            )
        y, dtype, thread = cache
        if thread != threading.get_ident():
            raise RuntimeError(
                f"{name}.backward: the last forward of this layer ran in another thread; "
                "use one layer instance per thread"
            )
        shape = list(y.shape[:-1])
        shape.insert(self.axis % y.ndim, y.shape[-1])
        grad = check_grad_output(self, grad_output, tuple(shape))
        with np.errstate(all="ignore"):
            result = self._compiled("backward", y, self._rows(grad))
            return np.moveaxis(result, -1, self.axis).astype(dtype)

    def _compiled(self, which: str, *rows: Array) -> Array:
        """`function` or `vjp` of rows, by the compiled row kernels when the engine is numba."""
        shape = rows[0].shape
        if engine() != "numba" or rows[0].size == 0:
            return self.function(*rows) if which == "forward" else self.vjp(*rows)
        from tinygrad_act import _rows

        flat = [r.reshape(-1, shape[-1]) for r in rows]
        log = isinstance(self, LogSoftmax)
        if which == "forward":
            return _rows.forward(flat[0], log=log).reshape(shape)
        return _rows.backward(flat[0], flat[1], log=log).reshape(shape)


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
        _, e = _exp_minus_max(x)
        return e / np.sum(e, axis=-1, keepdims=True)  # type: ignore[no-any-return]

    def vjp(self, y: Array, g: Array) -> Array:
        return y * (g - np.sum(g * y, axis=-1, keepdims=True))  # type: ignore[no-any-return]

    def jacobian(self, x: npt.ArrayLike) -> Array:
        r"""The explicit Jacobian :math:`\operatorname{diag}(y) - y y^\top` of each row.

        Returns shape ``(..., n, n)``: `axis` moved last, then expanded to a square
        matrix. Computed in float64, returned in the input's dtype. Does not touch
        the cache.
        """
        x = as_float_array(x, "Softmax.jacobian")
        _check_axis(self, x, self.axis)
        with np.errstate(all="ignore"):
            y = self.function(self._rows(x))
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
        shifted, e = _exp_minus_max(x)
        is_max = shifted == 0
        # the sum of e^(x_j - m) without one maximal entry's 1 (other maxima count 1 each)
        rest = np.sum(np.where(is_max, 0, e), axis=-1, keepdims=True)
        rest += np.sum(is_max, axis=-1, keepdims=True) - 1
        return shifted - np.log1p(rest)  # type: ignore[no-any-return]

    def vjp(self, y: Array, g: Array) -> Array:
        return g - np.exp(y) * np.sum(g, axis=-1, keepdims=True)  # type: ignore[no-any-return]


def _exp_minus_max(x: Array) -> tuple[Array, Array]:
    """``x - m`` and ``exp(x - m)``, with ``m`` the maximum along the last axis (0 if not
    finite).

    NOTE: ``x - m`` rounds by up to half its ulp (1e-13 at 1000), and ``exp`` turns that
    absolute error into a relative one of hundreds of ulp. Knuth's TwoSum gives the
    exact remainder ``lo`` of the subtraction, and ``exp(hi + lo) = exp(hi) (1 + lo)``.
    """
    m = np.max(x, axis=-1, keepdims=True) if x.size else x
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
    if not isinstance(name, str):
        raise TypeError(f"activation name must be a str, got {type(name).__name__}: {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        valid = ", ".join(sorted([*ACTIVATIONS, *ALIASES]))
        raise KeyError(f"unknown activation {name!r}; valid names: {valid}")
    return key
