"""The ``xp`` namespace of kernels that the compiled engine runs in float32.

A kernel marked `float32_safe` keeps its accuracy bound when its arithmetic is done
in float32, so for float32 input the compiled engine runs it on float32 scalars:
AVX-512 then works on 16 elements at a time instead of 8. Its numeric literals are
made float32 too (see `tinygrad_act._engine`), and its math functions come from
here. ``exp`` and ``exp_nonpositive`` are float32 throughout; the exact functions
(``abs``, ``where``, ...) are `tinygrad_act._numba_math`'s, which keep float32
float32, but ``sign``, whose results are float32 constants here.

``exp`` is within 1.02 ulp where its result is a normal float (every float32 with
2**-30 <= |x| < 89 checked against float64; the worst at x = -5.88), and 0.75
subnormal ulps below (every 31st float32 down to -110). Carrying the rounding error of
1 + r would take it to 0.68 ulp at 15% more time; Sigmoid, its user, is no more
accurate for it (2.40 ulp for f, 3.22 for f', every float32 with 2**-30 <= |x| < 110).
``expm1`` is within 0.95 ulp (the same check as exp's), ``tanh`` within 0.88 ulp
(every float32 with 2**-30 <= |x| < 12; beyond, it is +-1 exactly, as it rounds), and
``log1p`` within 0.86 ulp (every float32 with |x| >= 2**-30 and x > -1).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_act._numba_math import (
    _fast_two_sum,
    _fma,
    _scalar,
    _two_sum,
    abs,
    clip,
    copysign,
    isnan,
    maximum,
    minimum,
    rarely,
    select,
    square,
    two_product,
    where,
)

__all__ = [
    "abs",
    "clip",
    "copysign",
    "exp",
    "exp_nonpositive",
    "expm1",
    "isnan",
    "log1p",
    "maximum",
    "minimum",
    "rarely",
    "sign",
    "square",
    "tanh",
    "two_product",
    "where",
]

_F = np.float32
_INV_LN2 = _F(1 / math.log(2))
# NOTE: ln 2 split as hi + lo, hi with 9 significant bits: k * hi is exact for |k| < 2**15.
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(math.log(2) - 0.693359375)
#: Adding 1.5 * 2**23 rounds a float32 of magnitude < 2**22 to an integer, kept in the low bits.
_ROUND_SHIFT = _F(1.5 * 2.0**23)
_ROUND_SHIFT_BITS = np.int32(_ROUND_SHIFT.view(np.int32))
#: e**x overflows float32 above 88.73 and rounds to 0 below -103.98.
_HIGHEST, _LOWEST = _F(89.0), _F(-104.0)
#: e**r = 1 + r + r**2 P(r) on |r| <= ln(2)/2: Cephes' expf coefficients, highest first.
_P = tuple(
    _F(c)
    for c in (
        1.9875691500e-4,
        1.3981999507e-3,
        8.3334519073e-3,
        4.1665795894e-2,
        1.6666665459e-1,
        5.0000001201e-1,
    )
)
_ONE = _F(1.0)
_MINUS_ONE = _F(-1.0)
_ZERO = _F(0.0)
_INFINITY, _NAN = _F(np.inf), _F(np.nan)
_NEGATIVE_ZERO = _F(-0.0)
_EXPONENT_BIAS = np.int32(127)
_MANTISSA_BITS = np.int32(23)


@_scalar
def sign(x: np.float32) -> np.float32:
    """-1, 0 or 1 in float32, like np.sign: sign(-0.0) is 0.0, sign(NaN) is NaN."""
    return select(x > _ZERO, _ONE, select(x < _ZERO, _MINUS_ONE, select(x == _ZERO, _ZERO, x)))  # type: ignore[no-any-return]


@_scalar
def _pow2(k: np.int32) -> np.float32:
    """2.0**k in float32 for -126 <= k <= 127, built from its exponent bits."""
    return np.int32((k + _EXPONENT_BIAS) << _MANTISSA_BITS).view(np.float32)  # type: ignore[no-any-return]


@_scalar
def _reduce(
    a: np.float32, a_error: np.float32 = _NEGATIVE_ZERO
) -> tuple[np.int32, np.float32, np.float32, np.float32]:
    """k, r, r's rounding error and P(r) with a + a_error = k ln2 + r + r_error,
    |r| <= ln(2)/2, and e**r = 1 + r + r**2 P(r); `a_error` is at most half an ulp of a,
    such as the rounding error of the sum that gave a (-0.0, the default, adds nothing).
    A caller that does not use r_error does not compute it: it is inlined."""
    # NOTE: k from the low bits of a * (1/ln2) + 1.5 * 2**23 (no float -> int conversion);
    # a - k ln2_hi is exact (Cody-Waite), and a_error - k ln2_lo (below 0.04) is added to it
    # in r's rounding, whose error Fast2Sum gives.
    shifted = a * _INV_LN2 + _ROUND_SHIFT
    kf = shifted - _ROUND_SHIFT
    k = np.int32(np.float32(shifted).view(np.int32) - _ROUND_SHIFT_BITS)
    r, r_error = _fast_two_sum(a - kf * _LN2_HI, a_error - kf * _LN2_LO)
    p = _P[0] * r + _P[1]
    p = p * r + _P[2]
    p = p * r + _P[3]
    p = p * r + _P[4]
    p = p * r + _P[5]
    return k, r, r_error, p  # type: ignore[return-value]  # float32 stays float32


@_scalar
def exp(x: np.float32) -> np.float32:
    """e**x for a float32 `x`, in float32 arithmetic."""
    a = x if x < _HIGHEST else _HIGHEST  # NaN too: restored at the end
    a = a if a > _LOWEST else _LOWEST
    k, r, _, p = _reduce(a)
    m = _ONE + (r + p * (r * r))
    # 2**k as two factors, so that a subnormal result is rounded once
    half = np.int32(k >> np.int32(1))
    result = m * _pow2(half) * _pow2(np.int32(k - half))
    return result if x == x else x


#: 2**24 and 2**-24: 2**(k + 24) is a normal float32 for -150 <= k <= 0, and one
#: multiplication by 2**-24 then rounds a subnormal result once (at k = -150, e**r 2**-126
#: may be subnormal and round twice, but the result is below 2**-150 and rounds to 0).
_UP_BIAS = np.int32(127 + 24)
_DOWN = _F(2.0**-24)


@_scalar
def _scaled_down(value: np.float32, k: np.int32) -> np.float32:
    """`value` 2**k in float32 for -150 <= k <= 0, rounded once (see `_UP_BIAS`)."""
    up = np.int32((k + _UP_BIAS) << _MANTISSA_BITS).view(np.float32)
    return value * up * _DOWN  # type: ignore[no-any-return]


@_scalar
def exp_nonpositive(x: np.float32) -> np.float32:
    """`exp` for float32 x <= 0, bit for bit (NaN for NaN), with less work: no upper
    clamp, and one power of two (2**(k + 24), normal for k <= 0) then 2**-24, which
    rounds a subnormal result once as `exp`'s two factors do. What x > 0 gives is not
    specified."""
    a = _LOWEST if x < _LOWEST else x  # NaN stays, and gives NaN
    k, r, _, p = _reduce(a)
    m = _ONE + (r + p * (r * r))
    return _scaled_down(m, k)


#: Below -20, e**x - 1 rounds to -1; clamped there, 2**k stays normal.
_EXPM1_LOWEST = _F(-20.0)
_HALF, _TWO = _F(0.5), _F(2.0)


@_scalar
def expm1(x: np.float32) -> np.float32:
    """e**x - 1 for a float32 `x`, in float32 arithmetic; x itself at +-0 and NaN."""
    a = x if x < _HIGHEST else _HIGHEST
    a = a if a > _EXPM1_LOWEST else _EXPM1_LOWEST
    # NOTE: r's rounding error is kept: cancellation against 2**(k-1) - 1/2 below would
    # magnify it
    k, r, r_error, p = _reduce(a)
    # e**r - 1, the result itself for k = 0
    small, small_error = _fast_two_sum(r, p * (r * r) + r_error)  # type: ignore[arg-type]
    # NOTE: e**x - 1 = 2 (2**(k-1) (e**r - 1) + (2**(k-1) - 1/2)): 2**(k-1) is finite up to
    # the clamp at 89, and doubling is exact. For k != 0, |2**(k-1) - 1/2| >=
    # |2**(k-1) (e**r - 1)|; the rounding errors of both sums are kept (Fast2Sum), as is
    # that of e**r - 1: the terms partly cancel.
    half_scale = _pow2(np.int32(k - np.int32(1)))
    offset, offset_error = _two_sum(half_scale, -_HALF)  # type: ignore[arg-type]  # float32
    total, total_error = _fast_two_sum(offset, half_scale * small)
    error = total_error + (offset_error + half_scale * small_error)
    hi = small if k == 0 else _TWO * total
    lo = small_error if k == 0 else _TWO * error
    result = hi + lo
    return result if x != 0 and x == x else x  # type: ignore[return-value]  # float32 stays


#: Below this |x|, tanh is its odd polynomial; above, tanh|x| >= 1/2 (atanh(1/2) = 0.5493).
_TANH_POLYNOMIAL_LIMIT = _F(0.55)
#: tanh x = x + x**3 P(x**2) for |x| < 0.55, P's coefficients from the lowest: a fit of its
#: own, made as float64's (`tinygrad_act._numba_math`), each coefficient rounded to float32.
_TANH_ODD = tuple(
    _F(c)
    for c in (
        -0.3333333432674408,
        0.1333349347114563,
        -0.054010968655347824,
        0.022257477045059204,
        -0.010214709676802158,
        0.004788218531757593,
    )
)


@_scalar
def tanh(x: np.float32) -> np.float32:
    """The hyperbolic tangent of a float32 `x`, in float32 arithmetic, as
    `tinygrad_act._numba_math.tanh` computes it in float64."""
    # NOTE: below |x| = 0.55, an odd polynomial; above, with e = e**-2|x|, tanh|x| = 1 - m,
    # m = 2e / (1 + e) corrected by the rounding errors of its division and of 1 + e. e and
    # m are written as `Tanh`'s kernel writes them, so that LLVM merges the two.
    a = abs(x)  # type: ignore[arg-type]  # generic: float32 stays float32
    e = exp_nonpositive(-_TWO * a)
    m = _TWO * e / (_ONE + e)
    denominator, denominator_error = _fast_two_sum(_ONE, e)  # type: ignore[arg-type]
    remainder = _fma(-m, denominator, _TWO * e)
    m_error = (remainder - m * denominator_error) * (_ONE - _HALF * m)
    t, t_error = _fast_two_sum(_ONE, -m)
    z = a * a
    c = _TANH_ODD
    q = c[5]
    q = q * z + c[4]
    q = q * z + c[3]
    q = q * z + c[2]
    q = q * z + c[1]
    q = q * z + c[0]
    result = a + a * (z * q) if a < _TANH_POLYNOMIAL_LIMIT else t + (t_error - m_error)
    return copysign(result, x)  # type: ignore[arg-type, return-value]  # float32 stays float32


#: sqrt(1/2)'s bits: log1p reduces 1 + x to 2**e m with sqrt(1/2) <= m < sqrt(2).
_SQRT_HALF_BITS = np.int32(_F(math.sqrt(0.5)).view(np.int32))
#: 2 / (2j + 3), j = 0..3: log(1 + f) = f - f**2/2 + s (f**2/2 + sum_j 2 z**(j + 1) / (2j + 3))
#: with s = f / (2 + f), z = s**2 (the series of 2 atanh s; the next term is below 0.03 ulp).
_ATANH_SERIES = tuple(_F(2 / (2 * j + 3)) for j in range(4))


@_scalar
def log1p(x: np.float32) -> np.float32:
    """log(1 + x) for a float32 `x`, in float32 arithmetic; x itself at +-0, -inf at -1,
    NaN below -1 and for NaN."""
    # NOTE: u = 1 + x and its rounding error c exactly (TwoSum); log(1 + x) = log(u) + c / u.
    # u = 2**e m, read from u's bits less sqrt(1/2)'s, and f = m - 1 is exact; log(1 + f)
    # is summed as f - (f**2/2 - s (f**2/2 + R)) with the small terms last.
    u, c = _two_sum(_ONE, x)  # type: ignore[arg-type]  # generic: float32 stays float32
    bits = np.float32(u).view(np.int32)
    e = np.int32((bits - _SQRT_HALF_BITS) >> _MANTISSA_BITS)
    f = np.int32(bits - (e << _MANTISSA_BITS)).view(np.float32) - _ONE
    s = f / (_TWO + f)
    z = s * s
    r = _ATANH_SERIES[3] * z + _ATANH_SERIES[2]
    r = r * z + _ATANH_SERIES[1]
    r = (r * z + _ATANH_SERIES[0]) * z
    half_square = _HALF * f * f
    ef = np.float32(e)
    small = s * (half_square + r) + (ef * _LN2_LO + c / u)
    result = ef * _LN2_HI + (f - (half_square - small))
    result = result if u < _INFINITY else u  # +inf, and NaN
    result = -_INFINITY if u == _ZERO else result
    result = _NAN if x < -_ONE else result
    return result if x != _ZERO else x  # type: ignore[return-value]


#: e**x rounds to 0 below -103.98, where it is half the smallest subnormal (2**-150).
_SOFTMAX_LOWEST = _F(-104.0)


@_scalar
def exp_difference(x: np.float32, m: np.float32) -> np.float32:
    """e**(x - m) for float32 `x` <= `m`, `m` finite (`x` may be -inf), in float32
    arithmetic, with the rounding error of x - m carried into the reduced argument.

    Within 0.81 ulp of e**(x - m) exactly where the result is a normal float, 0.77
    subnormal ulps below (4 million pairs checked against float64;
    `tests/test_numba_math.py` checks pairs against mpmath).
    """
    # NOTE: d = x - m rounded and its error exactly (TwoSum); the error is kept only where
    # d is the argument itself (not below the clamp, where x = -inf or d overflows)
    d, d_error = _two_sum(x, -m)  # type: ignore[arg-type]  # generic: float32 stays float32
    a = d if d > _SOFTMAX_LOWEST else _SOFTMAX_LOWEST
    d_error = d_error if a == d else _ZERO
    # as in `exp`, a + d_error = k ln2 + r; the rounding error of 1 + r is kept (that of r
    # is below 0.1 ulp), which takes the result from 1.22 ulp to 0.81
    k, r, _, p = _reduce(a, d_error)  # type: ignore[arg-type]
    s = _ONE + r
    e_r = s + (((_ONE - s) + r) + p * (r * r))
    return _scaled_down(e_r, k)
