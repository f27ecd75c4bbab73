"""The NumPy namespace that activation kernels run on in the NumPy engine.

A kernel is written once against a namespace ``xp`` of math functions with the
array API's names (``xp.exp``, ``xp.where``, ...). Here they are NumPy's ufuncs,
applied to whole blocks of an array; `tinygrad_act._numba_math` has the same
names as scalar functions that numba compiles into one loop.

Beyond the standard, kernels may use ``erfc``, which NumPy lacks, and ``two_product``
(a product and its rounding error), which needs a fused multiply-add NumPy does not
have; both are built here from ``exp`` and arithmetic (`tinygrad_act._array_math`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_act import _array_math

abs = np.abs
clip = np.clip
copysign = np.copysign
exp = np.exp
exp_nonpositive = np.exp  # e**x for x <= 0: `_numba_math.exp_nonpositive`
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


def rarely(condition: Any) -> Any:
    """`condition` (`tinygrad_act._engine.rare_case`: only compiled loops use the hint)."""
    return condition


def where(condition: Any, a: Any, b: Any) -> Any:
    """``np.where``; for a NumPy bool and two scalars (the engine's one-element path),
    the chosen one as a float64 scalar, without np.where's 0-d array (0.7 us)."""
    if type(condition) is np.bool_ and type(a) is not np.ndarray and type(b) is not np.ndarray:
        return np.float64(a if condition else b)
    return np.where(condition, a, b)


def erfc(t: Any) -> Any:
    """The complementary error function, within 3.3 ulp in float64 (`_array_math.erfc`,
    the compiled engine's polynomial in whole-array operations).

    NOTE: SciPy's ``erfc`` rounds t^2 inside exp(-t^2) and loses hundreds of ulp in
    the right tail, and its ``erfcx`` is up to 7 ulp from exact below t = 5.
    """
    return _array_math.erfc(np, t)


def two_product(a: Any, b: Any) -> tuple[Any, Any]:
    """a * b rounded, and its rounding error exactly where the product is finite and the
    error does not underflow (`_array_math.two_product`: Dekker's product, where the
    compiled engine takes a fused multiply-add).

    A kernel's parameter times an array, the common case, is cheaper: the parameter is
    split once, and a power of two gives an error of 0 (a scalar) without a pass; two
    numbers (the one-element path) are multiplied in Python's float arithmetic.
    """
    if type(a) is not np.ndarray and type(b) is not np.ndarray:
        a, b = float(a), float(b)
        if not (abs(a) <= _LIMIT and abs(b) <= _LIMIT):  # a split could overflow: rare
            return _array_math.two_product(np, np.float64(a), np.float64(b))
        product = a * b
        error = _array_math.dekker_error(product, *_split(a), *_split(b))
        return np.float64(product), np.float64(error)
    if type(a) is float and type(b) is np.ndarray:
        a, b = b, a
    if type(b) is not float or type(a) is not np.ndarray or not 2.0**-960 < abs(b) < 2.0**960:
        return _array_math.two_product(np, a, b)
    product = a * b
    if _array_math.power_of_two(b):
        return product, 0.0
    # NOTE: a NaN error where |a| > 2**995, whose split overflows
    return product, _array_math.dekker_error(product, *_split(a), *_split(b))


_FACTOR, _LIMIT, _ = _array_math.SPLIT[53]


def _split(v: Any) -> tuple[Any, Any]:
    return _array_math.split(np, v, _FACTOR)
