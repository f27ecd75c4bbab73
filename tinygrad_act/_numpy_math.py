"""The NumPy namespace that activation kernels run on in the NumPy engine.

A kernel is written once against a namespace ``xp`` of math functions with the
array API's names (``xp.exp``, ``xp.where``, ...). Here they are NumPy's ufuncs,
applied to whole blocks of an array; `tinygrad_act._numba_math` has the same
names as scalar functions that numba compiles into one loop.

Beyond the standard, kernels may use ``erfc``, which NumPy lacks; it comes from
SciPy (the ``gelu`` extra) and is made accurate in the tail here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

abs = np.abs
clip = np.clip
copysign = np.copysign
exp = np.exp
expm1 = np.expm1
isfinite = np.isfinite
isnan = np.isnan
log = np.log
log1p = np.log1p
maximum = np.maximum
minimum = np.minimum
sign = np.sign
sqrt = np.sqrt
square = np.square
tanh = np.tanh


def where(condition: Any, a: Any, b: Any) -> Any:
    """``np.where``; for a NumPy bool and two scalars (the engine's one-element path),
    the chosen one as a float64 scalar, without np.where's 0-d array (0.7 us)."""
    if type(condition) is np.bool_ and type(a) is not np.ndarray and type(b) is not np.ndarray:
        return np.float64(a if condition else b)
    return np.where(condition, a, b)


def erfc(t: Any) -> Any:
    """The complementary error function, accurate to a few ulp in both tails.

    NOTE: SciPy's ``erfc`` rounds t^2 inside exp(-t^2) and loses hundreds of ulp in
    the right tail. Here erfc(|t|) = erfcx(|t|) exp(-t^2), with the scaled ``erfcx``
    (smooth, insensitive to rounding) and t^2 = hi + lo split exactly by Dekker's
    product, so that exp(-t^2) = exp(-hi) (1 - lo) to well below an ulp; beyond
    |t| = 27.3 the result is 0 (or 2) in float64 anyway.
    """
    a = np.minimum(np.abs(t), 27.3)
    split = 134217729.0 * a  # 2^27 + 1: Veltkamp's split of a into two 26-bit halves
    a_hi = split - (split - a)
    a_lo = a - a_hi
    hi = a * a
    lo = ((a_hi * a_hi - hi) + 2 * a_hi * a_lo) + a_lo * a_lo
    tail = _erfcx()(a) * (np.exp(-hi) * (1 - lo))
    return np.where(t >= 0, tail, 2 - tail)


def _erfcx() -> Any:
    try:
        from scipy.special import erfcx
    except ImportError:
        raise ImportError(
            'GELU(approximate="none") on the NumPy engine needs SciPy: '
            'pip install "tinygrad_act[gelu]" (or "tinygrad_act[fast]" for the compiled '
            'engine), or use GELU(approximate="tanh")'
        ) from None
    return erfcx
