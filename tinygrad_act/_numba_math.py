"""Scalar math functions compiled by numba: the ``xp`` namespace of the compiled engine.

An activation's formula is written once against a namespace ``xp`` with array-API
names (``xp.exp``, ``xp.where``, ...). For NumPy arrays ``xp`` is NumPy; for the
compiled engine it is this module, passed to a numba-jitted loop that calls the
formula on one float64 element at a time. Every function here takes and returns
float64 scalars and is inlined into the loop that calls it. None branches: choices
are selects, scaling by 2**k is built from bits, and divisions use ``np.divide``
(the ``/`` operator adds a zero check that stops LLVM from vectorizing the loop).
Special values follow NumPy: NaN in gives NaN out, +-inf give the IEEE limits, and
nothing raises.

Accuracy: max error in float64 ulp (subnormal results in subnormal ulps) over 4 million
points across the whole range, the worst checked against mpmath; speed: a loop
``y[i] = f(x[i])`` against NumPy's AVX-512 ufunc on the same AMD EPYC core:

============  =======  ==========  ===================================================
function      max ulp  vs NumPy    method
============  =======  ==========  ===================================================
exp           0.76     1.7x time   Cody-Waite reduction, Taylor polynomial, 2**k from bits
expm1         0.65     1.6x time   the same, with the rounding errors of the large sums kept
log           0.66     2.1x time   x = 2**e m, log(m) = 2 atanh((m - 1)/(m + 1))
log1p         0.67     1.7x time   log(1 + x) plus the rounding error of 1 + x
tanh          0.82     1.7x time   odd polynomial below 0.55; above, 1 - 2e/(1 + e), e = e**-2|x|
erfc          1.21     0.3x time   e**(-x**2) P(q) / (|x| + 4), q = (|x| - 4)/(|x| + 4) (vs SciPy)
normal_tail   1.16     0.3x time   Phi(-|x|) = e**(-x**2/2) erfcx(|x|/sqrt 2) / 2 and phi(x), as
                                   floats times 2**k (vs SciPy's ndtr and NumPy's exp)
============  =======  ==========  ===================================================

tanh's time is from an Intel Xeon (Emerald Rapids) core. Its e and 2e/(1 + e) are
written as `Tanh`'s kernel writes them for f', and LLVM computes each once for both: the
kernel's loop takes 2.6 ms per 10**6 float64 elements there, against 3.6 with a tanh
built on expm1 (1.5x NumPy's time alone there, but sharing nothing).

normal_tail's figures: its tail, on about a million points (density within 0.61), and a
loop writing both times 2**k, on the Intel Xeon. exp is within 0.65 ulp where its result is
a normal float (0.646 on 5 million points, expm1 0.644, against long double). Their
polynomial is evaluated by Estrin's scheme (`_exp_cubic_tail`): on an AMD EPYC Zen 5 core
a loop of exp takes 0.57 ns an element, against 0.65 by Horner's scheme and 0.55 to 0.66
for NumPy's. The other functions
(`abs`, `where`, `maximum`, `minimum`, `clip`, `sqrt`, `square`, `sign`, `isnan`,
`isfinite`, `copysign`) are exact and match NumPy's ufuncs on NaN, +-inf and
signed zeros; `two_product` gives a product and its rounding error exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import llvmlite.ir
import numba
import numpy as np
from numba.extending import intrinsic

from tinygrad_act._array_math import ERFC_CLAMP as _ERFC_CLAMP
from tinygrad_act._array_math import ERFCX_P as _ERFCX_P
from tinygrad_act._array_math import ERFCX_P0 as _ERFCX_P0
from tinygrad_act._array_math import TWO_OVER_SQRT_PI as _TWO_OVER_SQRT_PI

_F = TypeVar("_F", bound=Callable[..., Any])


def _scalar(function: _F) -> _F:
    """Compile `function` with numba, to be inlined (at numba IR level) wherever it is called."""
    return cast(_F, numba.njit(inline="always")(function))


@intrinsic
def _wide_vectors(typingctx: Any) -> tuple[Any, Callable[..., Any]]:
    """Called first in a compiled function, lets LLVM vectorize its loops with the widest
    registers the CPU has: 512-bit AVX-512 registers rather than 256-bit ones.

    LLVM's tuning for Intel's AVX-512 server CPUs (Skylake-SP to Emerald Rapids) prefers
    256-bit vectors, against the clock slowdown of the first of them; AMD's Zen 4 gets
    512. The kernels here are arithmetic per element, where twice the lanes win: on an
    Emerald Rapids core a loop of `tanh` (then built on `expm1`) took 2.68 ms per 10**6
    float64 elements with 512-bit vectors against 3.67 with 256. It sets the function
    attribute clang's ``-mprefer-vector-width=512`` sets; a CPU without AVX-512 keeps its
    own width.

    NOTE: numba's disk cache knows a cached loop by its own source file (but the kernel
    loops, whose names carry a hash of this file): after a change here alone, clear the
    caches of the modules that call it (an install writes every file anew).
    """

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        # NOTE: llvmlite lists only flag attributes; set.add skips that check, and
        # llvmlite writes the key="value" attribute into the IR as it is.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return numba.core.types.none(), codegen


wide_vectors = cast(Callable[[], None], _wide_vectors)


@intrinsic
def _fused_multiply_add(typingctx: Any, a: Any, b: Any, c: Any) -> tuple[Any, Callable[..., Any]]:
    """a * b + c rounded once, in the type of the three floats (LLVM's ``llvm.fma``).

    Unlike the ``contract`` flag, which lets LLVM fuse where it chooses, this always
    fuses: it is for sums whose exactness a result depends on. It is one instruction on
    CPUs with FMA (x86-64 since 2013, every ARM64); on an x86 CPU without it (or numba
    told to compile for a generic one, ``NUMBA_CPU_NAME=generic``) it is a call to the C
    library's ``fma`` for each element, exact but slow, and the loops that use it (`tanh`,
    `expm1`, `log`, `log1p`, `erfc`) do not vectorize. Numbers of other types (a layer's
    parameter set since its constructor to an int or a float32, in a float64 loop) are
    converted to float64 first.
    """
    kinds = (a, b, c)
    if not all(isinstance(kind, _NUMBER_TYPES) for kind in kinds):
        return None  # type: ignore[return-value]  # numba: no match for these types
    common = (
        a if a == b == c and isinstance(a, numba.core.types.Float) else numba.core.types.float64
    )

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        float_type = context.get_value_type(common)
        function_type = llvmlite.ir.FunctionType(float_type, [float_type] * 3)
        fma = builder.module.declare_intrinsic("llvm.fma", [float_type], function_type)
        values = [
            context.cast(builder, v, k, common) for v, k in zip(arguments, kinds, strict=True)
        ]
        return builder.call(fma, values)

    return common(a, b, c), codegen


_NUMBER_TYPES = (numba.core.types.Float, numba.core.types.Integer, numba.core.types.Boolean)


_fma = cast(Callable[[float, float, float], float], _fused_multiply_add)


@intrinsic
def _select_intrinsic(
    typingctx: Any, condition: Any, a: Any, b: Any
) -> tuple[Any, Callable[..., Any]]:
    """`a` if `condition` else `b`, as one LLVM ``select``: both are computed, and no
    branch is left for LLVM to keep.

    NOTE: ``a if condition else b`` compiles to a branch. LLVM turns one back into a
    select, but not always a chain of them (`sign`; the step codes of the compiled
    engine's loops): the store of the loop's result is then made in each branch, and
    vectorizes as a masked store per branch. On AMD's Zen 5, ReLU's loop takes 0.90 ms per
    10**6 float64 elements with those branches, and 0.26 with selects. A single choice (`where`,
    `maximum`) stays a branch: LLVM selects it, and there a select written out made
    ELU's loop slower (it spilled registers).
    """
    common = typingctx.unify_types(a, b)
    numbers = all(isinstance(kind, _NUMBER_TYPES) for kind in (a, b))
    if not isinstance(condition, numba.core.types.Boolean) or not numbers or common is None:
        # NOTE: numbers only: an array (or other reference-counted value) chosen so would
        # be returned without the reference its new owner needs
        return None  # type: ignore[return-value]  # numba: no match for these types

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        flag, first, second = arguments
        first = context.cast(builder, first, a, common)
        second = context.cast(builder, second, b, common)
        return builder.select(flag, first, second)

    return common(condition, a, b), codegen


select = cast(Callable[[bool, Any, Any], Any], _select_intrinsic)


_INV_LN2 = 1 / math.log(2)
# NOTE: ln 2 split as hi + lo, hi with 32 significant bits: k * hi is exact for |k| < 2**21.
_LN2_HI = float.fromhex("0x1.62e42fee00000p-1")
_LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
#: Adding 1.5 * 2**52 rounds a float of magnitude < 2**51 to an integer, kept in the low bits.
_ROUND_SHIFT = 1.5 * 2.0**52
_SQRT_HALF = math.sqrt(0.5)
_SMALLEST_NORMAL = 2.0**-1022
_TWO_54 = 2.0**54
#: Below this magnitude exp(x) - 1, log(1 + x) and tanh(x) round to x itself.
_TINY = 2.0**-54
#: 1 / n! for n = 0..13, the Taylor coefficients of e**r.
_INV_FACTORIAL = tuple(1 / math.factorial(n) for n in range(14))
#: Below this |x|, tanh is its odd polynomial; above, tanh|x| >= 1/2 (atanh(1/2) = 0.5493).
_TANH_POLYNOMIAL_LIMIT = 0.55
#: tanh x = x + x**3 P(x**2) for |x| < 0.55, P's coefficients from the lowest. NOTE: weighted
#: least squares in mpmath on 240 Chebyshev nodes in x**2, reweighted towards minimax (Lawson),
#: each coefficient rounded to float64 in turn and the later ones refitted: P within about
#: an ulp, which x**3 P(x**2) <= 0.1 x shrinks tenfold in the result.
_TANH_ODD = (
    -0.3333333333333333,
    0.13333333333332012,
    -0.0539682539666324,
    0.021869488456929244,
    -0.008863233538654121,
    0.003592098904061268,
    -0.0014555693178633796,
    0.000588478291964346,
    -0.00023327624760382444,
    8.289558266674086e-05,
    -1.9072836890171732e-05,
)
#: 2 / (2j + 3) for j = 0..9: log(1 + f) = 2 atanh(s) = 2s + s * sum_j 2 s**(2j + 2) / (2j + 3).
_ATANH_SERIES = tuple(2 / (2 * j + 3) for j in range(10))


# --- building blocks ---------------------------------------------------------------------


@_scalar
def _bits(x: float) -> np.int64:
    """The IEEE 754 bit pattern of the float64 `x`, as an int64."""
    bits: np.int64 = np.float64(x).view(np.int64)
    return bits


@_scalar
def _from_bits(bits: np.int64) -> float:
    """The float64 whose IEEE 754 bit pattern is `bits`."""
    return float(np.int64(bits).view(np.float64))


@_scalar
def _pow2(k: np.int64) -> float:
    """2.0**k for -1022 <= k <= 1023, built from its exponent bits."""
    return _from_bits((k + 1023) << 52)


@_scalar
def _fast_two_sum(a: float, b: float) -> tuple[float, float]:
    """a + b rounded, and its rounding error exactly, for |a| >= |b| or a = 0 (Fast2Sum)."""
    total = a + b
    return total, b - (total - a)


@_scalar
def _two_sum(a: float, b: float) -> tuple[float, float]:
    """a + b rounded, and its rounding error exactly, for any a and b (TwoSum)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


@_scalar
def _half_square(x: float) -> tuple[float, float]:
    """x**2 / 2 as hi + lo, hi rounded and lo its rounding error (exact unless it underflows)."""
    half = 0.5 * x
    hi = half * x
    return hi, _fma(half, x, -hi)


@_scalar
def _reduce(x: float, x_error: float = -0.0) -> tuple[np.int64, float, float]:
    """k, r and r_error with x + x_error = k ln2 + r + r_error, |r| <= ln(2)/2, for
    |x| < 2**50 and `x_error` at most half an ulp of x, such as the rounding error of
    the sum that gave x (-0.0, the default, adds nothing)."""
    # NOTE: adding 1.5 * 2**52 rounds x / ln2 to the integer k and leaves k in the low bits,
    # so no float -> int conversion (undefined for NaN) is needed. x - k ln2_hi is exact
    # (Cody-Waite); r_error is the rounding error of adding x_error - k ln2_lo (below
    # 2**-21, itself rounded far below the result's ulp).
    shifted = x * _INV_LN2 + _ROUND_SHIFT
    kf = shifted - _ROUND_SHIFT
    r, r_error = _fast_two_sum(x - kf * _LN2_HI, x_error - kf * _LN2_LO)
    return _bits(shifted) - _bits(_ROUND_SHIFT), r, r_error


@_scalar
def _exp_cubic_tail(r: float) -> float:
    """(e**r - 1 - r - r**2/2) / r**3 for |r| <= ln(2)/2, by its Taylor series to r**10.

    NOTE: evaluated by Estrin's scheme, in pairs of coefficients and powers r**2, r**4:
    a chain of 4 dependent operations (with fused multiply-adds) rather than Horner's 10,
    which left the loops around `exp` waiting on it. r**3 times this tail is at most
    0.009 of e**r, so the few more roundings of Estrin's scheme reach the result far
    below an ulp; on Zen 5 a loop of `exp` takes 0.57 ns an element so, against 0.65 by
    Horner's.
    """
    c = _INV_FACTORIAL
    r2 = r * r
    r4 = r2 * r2
    low = (c[3] + c[4] * r) + r2 * (c[5] + c[6] * r)
    middle = (c[7] + c[8] * r) + r2 * (c[9] + c[10] * r)
    high = (c[11] + c[12] * r) + r2 * c[13]
    return low + r4 * (middle + r4 * high)


@_scalar
def _exp_cubic_tail_by_horner(r: float) -> float:
    """`_exp_cubic_tail` by Horner's scheme."""
    c = _INV_FACTORIAL
    q = c[13]
    for j in range(12, 2, -1):
        q = q * r + c[j]
    return q


@_scalar
def _log_of_reduced(f: float, e: float, correction: float) -> float:
    """e ln 2 + log(1 + f + correction), for sqrt(1/2) - 1 <= f < sqrt(2) - 1, tiny correction."""
    # NOTE: with s = f / (2 + f), log(1 + f) = 2 atanh(s) = f - f**2/2 + s (f**2/2 + R(s**2)),
    # R the tail of the atanh series. f is exact, f**2/2 is split exactly in two, and the two
    # large sums (f - f**2/2 and e ln2_hi + ...) keep their rounding errors, which join the
    # small terms; e ln2_hi is exact.
    s: float = np.divide(f, 2.0 + f)  # np.divide: no zero check, which would stop vectorizing
    z = s * s
    c = _ATANH_SERIES
    p = c[9]
    p = p * z + c[8]
    p = p * z + c[7]
    p = p * z + c[6]
    p = p * z + c[5]
    p = p * z + c[4]
    p = p * z + c[3]
    p = p * z + c[2]
    p = p * z + c[1]
    p = p * z + c[0]
    half_square_hi, half_square_lo = _half_square(f)
    log_m, log_m_error = _fast_two_sum(f, -half_square_hi)
    result, result_error = _fast_two_sum(e * _LN2_HI, log_m)
    half_square = half_square_hi + half_square_lo
    small = s * (half_square + z * p) - half_square_lo + (e * _LN2_LO + correction)
    return result + ((result_error + log_m_error) + small)


# --- exponentials and logarithms ---------------------------------------------------------


#: For -1077 <= k <= 0, 2**(k + 60) is a normal float; a multiplication by 2**-60 then
#: makes the result subnormal where it is.
_DOWN = 2.0**-60


@_scalar
def _scaled_down(value: float, k: np.int64) -> float:
    """`value` 2**k for -1077 <= k <= 0: exact where the result is normal, and one
    rounding where it is subnormal (see `_DOWN`)."""
    return value * _pow2(k + 60) * _DOWN


@_scalar
def exp(x: float) -> float:
    """e**x, within 0.76 ulp (0.65 for normal results); 0 below -745.14, inf above 709.79."""
    # NOTE: x = k ln2 + r, e**x = 2**k e**r, e**r = (1 + r) + r**2 q(r) with the rounding error
    # of 1 + r kept (Fast2Sum). 2**k is applied as two factors 2**(k//2) 2**(k - k//2), each a
    # normal float, so nothing overflows early and a subnormal result rounds at the end.
    clamped = 710.0 if x > 710.0 else x  # these comparisons keep NaN
    clamped = -746.0 if clamped < -746.0 else clamped
    k, one_plus_r, small = _exp_parts(clamped)
    half = k >> 1
    return (one_plus_r + small) * _pow2(half) * _pow2(k - half)


@_scalar
def exp_nonpositive(x: float) -> float:
    """`exp` for x <= 0, bit for bit (NaN for NaN), with less work; for the arguments
    kernels build as -|x|. What x > 0 gives is not specified (e**x up to 667).

    NOTE: k <= 0 here, so 2**(k + 60) is a normal float, and one multiplication by
    2**-60 gives a subnormal result with the one rounding that `exp`'s two factors do.
    Without the upper clamp and with one power of two, a loop of this takes 0.47 ns an
    element on Zen 5, against 0.57 for `exp`; Sigmoid's and SiLU's loops take 17% less.
    """
    clamped = -746.0 if x < -746.0 else x  # NaN stays
    k, one_plus_r, small = _exp_parts(clamped)
    return _scaled_down(one_plus_r + small, k)


@_scalar
def _exp_parts(
    a: float, a_error: float = -0.0, horner: bool = False
) -> tuple[np.int64, float, float]:
    """k and e**r = (1 + r) + small, for a + a_error = k ln2 + r (see `exp`, `_reduce`);
    `horner`: the polynomial by `_exp_cubic_tail_by_horner`."""
    k, r, r_error = _reduce(a, a_error)
    one_plus_r, error = _fast_two_sum(1.0, r)
    tail = _exp_cubic_tail_by_horner(r) if horner else _exp_cubic_tail(r)
    return k, one_plus_r, error + (r * r * (0.5 + r * tail) + r_error * one_plus_r)


@_scalar
def exp_difference(x: float, m: float) -> float:
    """e**(x - m) for `x` <= `m`, `m` finite (`x` may be -inf), with the rounding error of
    x - m carried into the reduced argument: within 0.64 ulp of e**(x - m) exactly where
    the result is a normal float, and 0.76 subnormal ulps below, where it rounds twice
    (`tests/test_numba_math.py` checks pairs against mpmath, 0 included).

    For softmax: cheaper than `exp` of the rounded difference times (1 + its error), as
    the argument is never above 0 and the error joins r's.
    """
    # NOTE: d = x - m and its rounding error exactly (TwoSum); the error is kept only where d
    # is the argument itself (not below the clamp, where x = -inf or the result is 0)
    d, d_error = _two_sum(x, -m)
    a = d if d > -746.0 else -746.0
    d_error = d_error if a == d else 0.0
    # e**(a + d_error), with d_error joining the small part of the reduction
    # NOTE: its tail by Horner's scheme: by Estrin's, Softmax's row loop (this, then the
    # sum) took 5 to 10% longer on Zen 5, though a loop of this alone was faster
    k, one_plus_r, small = _exp_parts(a, d_error, horner=True)
    return _scaled_down(one_plus_r + small, k)


@_scalar
def expm1(x: float) -> float:
    """e**x - 1, within 0.65 ulp; x itself for tiny x, -1 below -37.5, inf above 709.79."""
    # NOTE: x = k ln2 + r; e**x - 1 = (2**k - 1) + 2**k r + 2**k r**2/2 + 2**k (r**3 q(r) + ...).
    # The large sums keep their rounding errors (Fast2Sum holds: each first term is the larger,
    # or 0), which join the small terms. k = 1024 would overflow 2**k: it is computed with
    # k = 1023 and the result doubled (the -1 is then far below the last bit).
    clamped = 710.0 if x > 710.0 else x
    clamped = -50.0 if clamped < -50.0 else clamped
    k, r, r_error = _reduce(clamped)
    half_square_hi, half_square_lo = _half_square(r)
    top = k if k < 1023 else np.int64(1023)
    scale = _pow2(top)
    total, error_1 = _two_sum(scale, -1.0)  # 2**k - 1 rounds for k > 53 and k < -53
    total, error_2 = _fast_two_sum(total, scale * r)
    total, error_3 = _fast_two_sum(total, scale * half_square_hi)
    tail = half_square_lo + r * r * r * _exp_cubic_tail(r) + r_error * (1.0 + r)
    result = total + (scale * tail + (error_1 + error_2 + error_3))
    result = result * (2.0 if k > top else 1.0)
    return x if math.fabs(x) < _TINY else result


@_scalar
def log(x: float) -> float:
    """The natural logarithm, within 0.66 ulp; -inf at +-0, NaN below 0, subnormal x handled."""
    # NOTE: x = 2**e m with sqrt(1/2) <= m < sqrt(2), read from the bits after subtracting
    # those of sqrt(1/2); subnormal x is first scaled by 2**54.
    subnormal = x < _SMALLEST_NORMAL
    scaled = x * _TWO_54 if subnormal else x
    bits = _bits(scaled)
    e = (bits - _bits(_SQRT_HALF)) >> 52
    m = _from_bits(bits - (e << 52))
    result = _log_of_reduced(m - 1.0, float(e) - (54.0 if subnormal else 0.0), 0.0)
    result = result if x < math.inf else x  # +inf and NaN
    result = -math.inf if x == 0.0 else result
    return math.nan if x < 0.0 else result


@_scalar
def log1p(x: float) -> float:
    """log(1 + x), within 0.67 ulp; x itself for tiny x, -inf at -1, NaN below -1."""
    # NOTE: u = 1 + x rounds; with c = 1 + x - u (exact), log(1 + x) = log(u) + c / u.
    # u >= 2**-53 for x > -1, so u is never subnormal.
    u, c = _two_sum(1.0, x)
    bits = _bits(u)
    e = (bits - _bits(_SQRT_HALF)) >> 52
    m = _from_bits(bits - (e << 52))
    result = _log_of_reduced(m - 1.0, float(e), np.divide(c, u))
    result = result if x < math.inf else x  # +inf and NaN
    result = x if math.fabs(x) < _TINY else result
    result = -math.inf if x == -1.0 else result
    return math.nan if x < -1.0 else result


@_scalar
def tanh(x: float) -> float:
    """The hyperbolic tangent, within 0.82 ulp; odd, x itself for tiny x, +-1 at +-inf."""
    # NOTE: below |x| = 0.55, an odd polynomial. Above, with e = e**-2|x| <= 1/3, tanh|x| =
    # 1 - m, m = 2e / (1 + e): m is rounded from a division, and its rounding error and that
    # of 1 + e are carried to the subtraction (from the division's remainder, exact by a
    # fused multiply-add, with 1 / (1 + e) = 1 - m/2); then only e's own error (0.64 ulp of
    # e: 0.64 / (1 + e)**2 ulp of the result, 0.41 at most, near e = 1/4) and the last
    # rounding remain. e and m are computed as a kernel writes them (`Tanh` does, for f'),
    # so that LLVM merges the two computations into one.
    a = math.fabs(x)
    e = exp_nonpositive(-2 * a)
    m: float = np.divide(2 * e, 1 + e)
    denominator, denominator_error = _fast_two_sum(1.0, e)
    remainder = _fma(-m, denominator, 2 * e)
    m_error = (remainder - m * denominator_error) * (1.0 - 0.5 * m)
    t, t_error = _fast_two_sum(1.0, -m)
    z = a * a
    c = _TANH_ODD
    q = c[10]
    q = q * z + c[9]
    q = q * z + c[8]
    q = q * z + c[7]
    q = q * z + c[6]
    q = q * z + c[5]
    q = q * z + c[4]
    q = q * z + c[3]
    q = q * z + c[2]
    q = q * z + c[1]
    q = q * z + c[0]
    result = a + a * (z * q) if a < _TANH_POLYNOMIAL_LIMIT else t + (t_error - m_error)
    return math.copysign(result, x)


@_scalar
def two_product(a: float, b: float) -> tuple[float, float]:
    """a * b rounded, and its rounding error: exact unless it underflows, by a fused
    multiply-add; inf or NaN where the product overflows."""
    product = a * b
    return product, _fma(a, b, -product)


# erfc's clamp and its polynomial P (below) are shared with the array libraries' erfc:
# see tinygrad_act/_array_math.py.


@_scalar
def _erfcx_polynomial(q: float, q_tail: float, a: float, s: float, r: float) -> tuple[float, float]:
    """P(q + q_tail) as hi + lo, for s = a + 4 and r = 1/s (the slope of P needs them)."""
    # NOTE: Horner's rule, its last two steps with their rounding errors kept (P(-1) = 4 is
    # a sum of like-signed terms). q_tail enters through P's slope, from
    # erfcx' = 2a erfcx - 2/sqrt(pi): dP/dq = (dP/da) (da/dq) = (P r + 2aP - 2s/sqrt(pi)) s**2/8.
    c = _ERFCX_P
    p = c[22]
    p = p * q + c[21]
    p = p * q + c[20]
    p = p * q + c[19]
    p = p * q + c[18]
    p = p * q + c[17]
    p = p * q + c[16]
    p = p * q + c[15]
    p = p * q + c[14]
    p = p * q + c[13]
    p = p * q + c[12]
    p = p * q + c[11]
    p = p * q + c[10]
    p = p * q + c[9]
    p = p * q + c[8]
    p = p * q + c[7]
    p = p * q + c[6]
    p = p * q + c[5]
    p = p * q + c[4]
    p = p * q + c[3]
    p = p * q + c[2]
    product, product_error = two_product(q, p)
    p, error = _two_sum(c[1], product)
    p_tail = error + product_error
    product, product_error = two_product(q, p)
    hi, error = _two_sum(_ERFCX_P0[0], product)
    slope = (hi * r + 2.0 * a * hi - _TWO_OVER_SQRT_PI * s) * (s * s * 0.125)
    return hi, (error + product_error + q * p_tail) + (_ERFCX_P0[1] + slope * q_tail)


@_scalar
def _erfcx_parts(a: float, a_error: float) -> tuple[float, float]:
    """e**(a**2) erfc(a) at a + a_error (a >= 0, a_error tiny) as hi + lo: P(q) / (a + 4)."""
    # NOTE: 1/(a + 4) is carried with the errors of the sum (a_error's included) and of
    # the division, q with that of 1 - 8/(a + 4); the product keeps its error.
    s, s_error = _two_sum(a, 4.0)
    s_error = s_error + a_error
    r: float = np.divide(1.0, s)
    product, product_error = two_product(s, r)
    r_tail = r * ((1.0 - product) - product_error - s_error * r)  # 1/(s + s_error) - r
    q, q_error = _two_sum(1.0, -8.0 * r)
    p, p_tail = _erfcx_polynomial(q, q_error - 8.0 * r_tail, a, s, r)
    f, f_error = two_product(p, r)
    return f, f_error + (p * r_tail + p_tail * r)


@_scalar
def erfc(x: float) -> float:
    """The complementary error function 1 - erf(x), within 1.21 ulp; 0 above 27.3, 2 below -6."""
    # NOTE: for a = |x|, erfc(a) = e**(-a**2) P(q) / (a + 4), with P above (Shepherd and
    # Laframboise's variable), and erfc(x) = 2 - erfc(a) for x < 0. Every factor is carried
    # as hi + lo: P(q) / (a + 4) (`_erfcx_parts`), a**2 = square + square_error exactly,
    # e**(-square) from exp's reduction as (1 + r) + the rest; the products keep their
    # errors (exact, from a fused multiply-add) until the last sum.
    a = math.fabs(x)
    a = _ERFC_CLAMP if a > _ERFC_CLAMP else a  # keeps NaN
    square, square_error = two_product(a, a)
    f, f_tail = _erfcx_parts(a, 0.0)
    # e**(-square) = 2**k (e_hi + e_lo), as in exp
    k, reduced, reduced_error = _reduce(-square)
    e_hi, error = _fast_two_sum(1.0, reduced)
    tail = reduced * reduced * (0.5 + reduced * _exp_cubic_tail(reduced))
    e_lo = error + (tail + reduced_error * e_hi)
    # (e_hi + e_lo) (1 - square_error) (f + f_tail)
    g, g_error = two_product(e_hi, f)
    small = e_lo * f
    z = g + ((g_error - square_error * (g + small)) + (e_hi + e_lo) * f_tail + small)
    half = k >> 1
    y = z * _pow2(half) * _pow2(k - half)
    return 2.0 - y if x < 0.0 else y


#: sqrt(1/2) - _SQRT_HALF; 1/sqrt(2 pi) as hi + lo.
_SQRT_HALF_TAIL = -4.833646656726457e-17
_ONE_OVER_SQRT_2PI = 0.3989422804014327
_ONE_OVER_SQRT_2PI_TAIL = -2.49232720227773e-17
#: Beyond |x| = 40, Phi(-|x|) and phi(x) are far below float64's smallest subnormal.
_NORMAL_CLAMP = 40.0


@_scalar
def normal_tail(x: float) -> tuple[float, float, np.int64]:
    """Phi(-|x|) and phi(x), the standard normal distribution's lower tail and density, as
    (tail, density, k) with Phi(-|x|) = tail 2**k and phi(x) = density 2**k, the power of
    two to be applied last (`ldexp`): where Phi(-|x|) is subnormal (|x| > 37.5), a product
    with it is then rounded as a subnormal only in its last step. tail is within 1.16 ulp
    of exact and density within 0.61, both normal floats, e**(-x**2/2) computed once for
    both; |x| above 40 counts as 40."""
    # NOTE: Phi(-b) = erfc(u) / 2 = e**(-b**2/2) erfcx(u) / 2 at b = |x|, u = b / sqrt 2.
    # u carries its rounding error (a fused multiply-add, and sqrt(1/2)'s own tail) into
    # erfcx; b**2 is split exactly, so that e**(-b**2/2) takes no rounding from u.
    b = math.fabs(x)
    b = _NORMAL_CLAMP if b > _NORMAL_CLAMP else b  # keeps NaN
    u = b * _SQRT_HALF
    u_error = _fma(b, _SQRT_HALF, -u) + b * _SQRT_HALF_TAIL
    f, f_tail = _erfcx_parts(u, u_error)
    square, square_error = two_product(b, b)
    k, e_hi, e_lo = _exp_parts(-0.5 * square, -0.5 * square_error)
    g, g_error = two_product(e_hi, f)
    small = e_lo * f
    tail = 0.5 * (g + ((g_error + (e_hi + e_lo) * f_tail) + small))
    density_tail = e_lo * _ONE_OVER_SQRT_2PI + e_hi * _ONE_OVER_SQRT_2PI_TAIL
    return tail, _fma(e_hi, _ONE_OVER_SQRT_2PI, density_tail), k


@_scalar
def ldexp(x: float, k: np.int64) -> float:
    """x 2**k for -2044 <= k <= 2046, like np.ldexp (NaN and +-inf kept): a product with
    2**(k//2), exact where it is a normal float, then with 2**(k - k//2), rounded once."""
    half = k >> 1
    return x * _pow2(half) * _pow2(k - half)


# --- exact functions ---------------------------------------------------------------------


@_scalar
def rarely(condition: bool) -> bool:
    """`condition`, which holds for few elements: see `tinygrad_act._engine.rare_case`."""
    return condition


@_scalar
def _never(condition: bool) -> bool:
    """False: `rarely` in the namespace of a `rare_case` kernel's common loop."""
    return False


@_scalar
def abs(x: float) -> float:
    """|x|, like np.abs (abs(-0.0) is 0.0)."""
    return math.fabs(x)


@_scalar
def where(condition: bool, a: float, b: float) -> float:
    """`a` if `condition` else `b`, like np.where."""
    return a if condition else b


@_scalar
def maximum(a: float, b: float) -> float:
    """The larger of `a` and `b`, like np.maximum: NaN if either is NaN, `b` if they are equal."""
    # NOTE: b == b is true for a constant b, and LLVM drops it: one comparison and a
    # blend (or vmaxpd), where `a > b or a != a` kept two comparisons and a mask `or`
    return b if a <= b else (a if b == b else b)


@_scalar
def minimum(a: float, b: float) -> float:
    """The smaller of `a` and `b`, like np.minimum: NaN if either is NaN, `b` if they are equal."""
    return b if a >= b else (a if b == b else b)


@_scalar
def clip(x: float, lo: float, hi: float) -> float:
    """`x` limited to [lo, hi], like np.clip: minimum(maximum(x, lo), hi), NaN if any is NaN."""
    # NOTE: where x equals a bound, a zero takes the bound's sign, as np.clip with array
    # bounds does (NumPy's loop for scalar bounds keeps x's sign instead).
    return minimum(maximum(x, lo), hi)


@_scalar
def sqrt(x: float) -> float:
    """The square root, like np.sqrt: NaN below 0 (no exception), sqrt(-0.0) is -0.0."""
    root: float = np.sqrt(x)
    return root


@_scalar
def square(x: float) -> float:
    """x * x."""
    return x * x


@_scalar
def sign(x: float) -> float:
    """-1, 0 or 1, like np.sign: sign(-0.0) is 0.0, sign(NaN) is NaN."""
    return select(x > 0.0, 1.0, select(x < 0.0, -1.0, select(x == 0.0, 0.0, x)))  # type: ignore[no-any-return]


@_scalar
def isnan(x: float) -> bool:
    """Whether `x` is NaN."""
    return x != x


@_scalar
def isfinite(x: float) -> bool:
    """Whether `x` is neither NaN nor +-inf."""
    return math.fabs(x) < math.inf


@_scalar
def copysign(x: float, y: float) -> float:
    """|x| with the sign bit of `y`, like np.copysign."""
    return math.copysign(x, y)
