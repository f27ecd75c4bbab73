"""Independent references for the tests: mpmath at high precision, and ulp distances."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import mpmath
import numpy as np
import numpy.typing as npt

mpmath.mp.prec = 160

#: Significand bits and smallest normal exponent of each dtype.
_FORMAT = {
    np.dtype(np.float16): (11, -14),
    np.dtype(np.float32): (24, -126),
    np.dtype(np.float64): (53, -1022),
}


def ulp_errors(
    got: npt.NDArray[Any], x: npt.NDArray[Any], exact: Callable[[Any], Any]
) -> npt.NDArray[np.float64]:
    """Distance of each `got` from ``exact(x)`` (an mpmath function), in ulp of `got`'s dtype.

    The ulp is that of the exact value: 2**(e - p + 1) for 2**e <= |exact| < 2**(e + 1),
    with e clamped to the smallest normal exponent (so subnormals count in subnormal steps).
    """
    values = zip(got.ravel().tolist(), x.ravel().tolist(), strict=True)
    return np.array([ulp_error(g, exact(mpmath.mpf(v)), got.dtype) for g, v in values])


def ulp_error(got: float, exact: Any, dtype: Any) -> float:
    """Distance of `got` from the mpmath value `exact`, in ulp of `exact` in `dtype`."""
    bits, emin = _FORMAT[np.dtype(dtype)]
    if mpmath.isnan(exact) or mpmath.isinf(exact):
        return 0.0 if got == float(exact) or (got != got and mpmath.isnan(exact)) else np.inf
    exponent = emin if exact == 0 else max(int(mpmath.floor(mpmath.log(abs(exact), 2))), emin)
    return float(abs(mpmath.mpf(got) - exact) / mpmath.ldexp(1, exponent - bits + 1))


def sweep(dtype: Any, limit: float, seed: int = 0) -> npt.NDArray[Any]:
    """Points over the whole finite range of `dtype`, dense where `|x| <= limit`.

    Uniform points in [-limit, limit], a standard-normal cloud near zero, log-spaced
    magnitudes from the smallest subnormal to the largest finite value, both signs.
    """
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    exponents = np.linspace(info.minexp - info.nmant, info.maxexp - 1, 400).astype(int)
    magnitudes = np.ldexp(rng.uniform(1, 2, 400), exponents)
    parts: Iterable[npt.NDArray[Any]] = (
        rng.uniform(-limit, limit, 1500),
        rng.standard_normal(500) * 4,
        magnitudes,
        -magnitudes,
        np.array([0.0, 1.0, -1.0, limit, -limit]),
    )
    return np.concatenate([p.astype(dtype) for p in parts])
