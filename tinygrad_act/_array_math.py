"""erfc, tanh and exact products from arithmetic and exp, for array libraries that lack them.

Exact GELU needs ``erfc``, which the array API standard lacks. PyTorch and CuPy have
accurate ones (within 3.1 ulp in float64, measured against mpmath on the CPU and on
CUDA). JAX's loses hundreds of ulp in the right tail (up to 494 measured), and
array-api-strict and NumPy have none (SciPy's ``erfcx`` is up to 7 ulp off): for them,
`erfc` here evaluates the compiled engine's polynomial for erfcx with whole-array
operations (compiled whole by ``jax.jit`` for JAX: see `tinygrad_act._array_api`; on
the NumPy engine through `tinygrad_act._numpy_math`). JAX's float64 ``tanh`` is up to 6.9
ulp from exact on the CPU (XLA's own approximation), near |x| = 20: `tanh` here takes
it from ``exp`` away from 0.

Both use ``exp``, ``floor``, ``abs``, ``minimum``, ``copysign``, ``where``,
comparisons and arithmetic (and `tanh` the library's ``tanh`` near 0). The products
whose rounding errors are carried split their factors with ``floor`` at fixed powers
of two, so that a fused multiply-add (XLA fuses under ``jax.jit``) leaves them intact;
it may still change the other roundings, by about half an ulp in the result.

`two_product` gives a product's rounding error exactly, as a fused multiply-add does on
the compiled engine: Dekker's product of Veltkamp's splits, which kernels use to carry
the rounding of an exponential's argument (`CELU`, `Softplus`).
"""

from __future__ import annotations

import math
from typing import Any

#: erfc(a) = 0 in float64 for a above 27.3; the clamp keeps a**2 and the polynomial finite.
ERFC_CLAMP = 28.0
#: (a + 4) e**(a**2) erfc(a) = P(q), q = (a - 4) / (a + 4), for 0 <= a <= 27.5 (q in
#: [-1, 0.746]); the constant term is carried as two floats. NOTE: weighted least squares in
#: mpmath on 176 Chebyshev nodes, reweighted towards minimax, each coefficient rounded to
#: float64 in turn and the later ones refitted: max relative error 0.032 * 2**-53 (degree 22).
ERFCX_P0 = (1.095995661000491, 5.875738141574173e-17)
ERFCX_P = (
    0.0,  # the constant term is ERFCX_P0
    -0.9765487290808821,
    0.7732087022652367,
    -0.5408538313132246,
    0.33085158787802676,
    -0.17401093724029845,
    0.07638151490907977,
    -0.026370053334528385,
    0.006112055657511452,
    -0.00028095891630205364,
    -0.000455052693454375,
    0.00017681308702176138,
    -3.635132031522751e-06,
    -1.8861778899785667e-05,
    4.694290158821694e-06,
    1.4260649129620056e-06,
    -8.459526920467777e-07,
    -7.792007645975627e-08,
    1.2390418944100643e-07,
    2.5510742352501612e-09,
    -1.539197810055648e-08,
    -3.589373004228265e-10,
    1.0253217616781864e-09,
)
TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def _on_grid(xp: Any, x: Any, step: float) -> Any:
    """x rounded down to a multiple of `step`, a power of two: exact."""
    return xp.floor(x / step) * step


def _two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """a + b rounded, and its rounding error exactly (TwoSum)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


def _product_and_error(xp: Any, a: Any, a_step: float, b: Any, b_step: float) -> tuple[Any, Any]:
    """a * b rounded, and its rounding error to within 2**-60 of the product, for
    |a| < 2**27 a_step and |b| < 2**26 b_step: the parts of a and b on those grids have
    27 and 26 bits, so their product is exact; the products with the low parts round."""
    product = a * b
    a_high, b_high = _on_grid(xp, a, a_step), _on_grid(xp, b, b_step)
    a_low, b_low = a - a_high, b - b_high
    error = ((a_high * b_high - product) + a_high * b_low + a_low * b_high) + a_low * b_low
    return product, error


#: Veltkamp's split for float64 and float32 (by significand bits): the factor 2**s + 1
#: (s = 27, 12), the magnitude above which v (2**s + 1) could overflow, and 2**(s + 1).
SPLIT = {53: (2.0**27 + 1, 2.0**995, 2.0**28), 24: (2.0**12 + 1, 2.0**114, 2.0**13)}


def split(xp: Any, v: Any, factor: float) -> tuple[Any, Any]:
    """v = hi + lo exactly, hi with the leading half of v's significant bits."""
    spread = factor * v
    hi = spread - (spread - v)
    return hi, v - hi


def dekker_error(product: Any, a_hi: Any, a_lo: Any, b_hi: Any, b_lo: Any) -> Any:
    """The rounding error of `product` = a b rounded, from the splits of a and b."""
    return ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def power_of_two(value: Any) -> bool:
    """Whether `value` is a float that is a power of two or its negative: a product with
    it, or a quotient by it, is then exact where it neither underflows nor overflows."""
    return type(value) is float and abs(math.frexp(value)[0]) == 0.5


def two_product(xp: Any, a: Any, b: Any, bits: int = 53) -> tuple[Any, Any]:
    """a * b rounded, and its rounding error (Dekker's product): exact for any finite a
    and b whose product is below the largest float (by a few parts in 10**8) and whose
    error does not underflow; inf or NaN where the product overflows. `bits`: 53 for
    float64, 24 for float32."""
    factor, limit, scale = SPLIT[bits]
    product = a * b
    # NOTE: a factor beyond `limit` would overflow in its split: it is divided by `scale`
    # and the other factor multiplied by it, which leaves a b as it was
    big_a, big_b = xp.abs(a) > limit, xp.abs(b) > limit
    a = a * xp.where(big_a, 1 / scale, xp.where(big_b, scale, 1.0))
    b = b * xp.where(big_b, 1 / scale, xp.where(big_a, scale, 1.0))
    a_hi, a_lo = split(xp, a, factor)
    b_hi, b_lo = split(xp, b, factor)
    return product, dekker_error(product, a_hi, a_lo, b_hi, b_lo)


def erfc(xp: Any, t: Any) -> Any:
    """1 - erf(t): in float64 within 3.3 ulp (measured against mpmath, on NumPy's and
    JAX's exp; 3.8 where ``jax.jit`` fuses it); in float32 (a device without float64)
    within 63 ulp, as JAX's own float32 erfc.

    For a = |t|: erfc(a) = P(q) / (a + 4) e**(-a**2), and erfc(t) = 2 - erfc(a) for
    t < 0. q and the last two steps of Horner's rule carry their rounding errors, as the
    compiled engine's erfc does; a**2 = a_high**2 + low with a_high on a grid of 2**-21,
    so that a_high**2 is exact in float64 and e**(-low) is a short series.
    """
    a = xp.minimum(xp.abs(t), ERFC_CLAMP)  # keeps NaN
    a_high = _on_grid(xp, a, 2.0**-21)
    a_low = a - a_high
    low = a_low * (2 * a_high + a_low)  # below 2**-15
    gauss = xp.exp(-(a_high * a_high)) * (1 - low * (1 - low * (0.5 - low / 6)))
    s, s_error = _two_sum(a, 4.0)
    d, d_error = _two_sum(a, -4.0)
    q = d / s
    product, product_error = _product_and_error(xp, q, 2.0**-26, s, 2.0**-21)
    q_tail = (((d - product) - product_error) + d_error - q * s_error) / s
    c = ERFCX_P
    p = c[22] * q + c[21]
    for coefficient in c[20:1:-1]:
        p = p * q + coefficient
    product, product_error = _product_and_error(xp, q, 2.0**-26, p, 2.0**-23)
    p, error = _two_sum(c[1], product)
    p_tail = error + product_error
    product, product_error = _product_and_error(xp, q, 2.0**-26, p, 2.0**-23)
    high, error = _two_sum(ERFCX_P0[0], product)
    # q_tail enters through P's slope (see _numba_math._erfcx_polynomial)
    slope = (high / s + 2.0 * a * high - TWO_OVER_SQRT_PI * s) * (s * s * 0.125)
    high_tail = (error + product_error + q * p_tail) + (ERFCX_P0[1] + slope * q_tail)
    # (high + high_tail) / (s + s_error), its quotient's rounding error kept
    ratio = high / s
    product, product_error = _product_and_error(xp, ratio, 2.0**-26, s, 2.0**-21)
    ratio_tail = (((high - product) - product_error) + high_tail - ratio * s_error) / s
    tail = (ratio + ratio_tail) * gauss
    return xp.where(t >= 0, tail, 2 - tail)


def tanh(xp: Any, x: Any) -> Any:
    """tanh(x): the library's own below |x| = 0.55, (1 - e) / (1 + e) with e = e**(-2|x|)
    above, where neither the subtraction nor the division loses more than an ulp."""
    a = xp.abs(x)
    e = xp.exp(-2 * a)
    return xp.where(a < 0.55, xp.tanh(x), xp.copysign((1 - e) / (1 + e), x))
