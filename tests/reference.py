"""Independent references for the tests: mpmath at high precision, and ulp distances."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def product_pairs(dtype: Any, seed: int = 0) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Pairs (a, b) of `dtype` across its whole range, whose product is finite and whose
    product's rounding error does not underflow: the domain where `two_product` is exact.
    Random signs and significands, factors from near the smallest normal to near the
    largest float (one huge and one tiny, where splitting the huge one would overflow)."""
    bits, emin = _FORMAT[np.dtype(dtype)]
    emax = -emin + 1
    rng = np.random.default_rng(seed)
    total = rng.integers(emin + 2 * bits, emax - 2, 3000)  # the exponent of a b
    a_exponent = np.clip(rng.integers(emin, emax, total.size), total - emax + 1, total - emin)
    a = np.ldexp(rng.uniform(1, 2, total.size), a_exponent) * rng.choice([-1, 1], total.size)
    b = np.ldexp(rng.uniform(1, 2, total.size), total - a_exponent) * rng.choice(
        [-1, 1], total.size
    )
    largest = float(np.finfo(dtype).max)
    edges = [(largest, 0.5), (largest / 3, 2.5), (2.0 ** (emax - 2) * 1.7, 0.3), (0.3, 7.0)]
    a = np.concatenate([a, [e[0] for e in edges], [-e[1] for e in edges]]).astype(dtype)
    b = np.concatenate([b, [e[1] for e in edges], [e[0] for e in edges]]).astype(dtype)
    return a, b


def exact_product_errors(
    a: npt.NDArray[Any], b: npt.NDArray[Any], product: Any, error: Any
) -> list[tuple[float, float]]:
    """The pairs (a, b) where product + error is not a b exactly."""
    from fractions import Fraction

    columns = (a.tolist(), b.tolist(), np.asarray(product).tolist(), np.asarray(error).tolist())
    return [
        (u, v)
        for u, v, p, e in zip(*columns, strict=True)
        if Fraction(u) * Fraction(v) != Fraction(p) + Fraction(e)
    ]


# ---------------------------------------------------------------------------
# Exact f, f' and f'' of every elementwise activation, in mpmath, with PyTorch's
# values at kinks. Each f'' is derived by hand; tests/test_second_derivatives.py
# checks every one against mpmath's numerical differentiation of f'.

MP = Callable[[Any], Any]
mp = mpmath
SQRT_2_OVER_PI = mp.sqrt(2 / mp.pi)
GELU_CUBIC = mp.mpf("0.044715")
SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")
SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")


def sigmoid(x: Any) -> Any:
    return 1 / (1 + mp.exp(-x))


def normal_cdf(x: Any) -> Any:
    # mpmath's erfc fails on huge arguments; there the value is 0 or 1 in any float format
    if abs(x) > 1e4:
        return mp.mpf(0 if x < 0 else 1)
    return mp.erfc(-x / mp.sqrt(2)) / 2


def normal_pdf(x: Any) -> Any:
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def gelu_tanh_z(x: Any) -> Any:
    return SQRT_2_OVER_PI * (x + GELU_CUBIC * x**3)


def gelu_tanh_parts(x: Any) -> tuple[Any, Any, Any, Any]:
    """s = sigma(2z), 1 - s, z' and z'' of GELU's tanh form."""
    z = gelu_tanh_z(x)
    dz = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x)
    return sigmoid(2 * z), sigmoid(-2 * z), dz, SQRT_2_OVER_PI * 6 * GELU_CUBIC * x


def mish_parts(x: Any) -> tuple[Any, Any, Any]:
    """t = tanh(softplus(x)), sech^2(softplus(x)) and sigma(x) of Mish."""
    softplus = x + mp.log1p(mp.exp(-x)) if x > 0 else mp.log1p(mp.exp(x))
    return mp.tanh(softplus), mp.sech(softplus) ** 2, sigmoid(x)


def step(x: Any, below: Any, above: Any) -> Any:
    return mp.mpf(above if x > 0 else below)


def inside(x: Any, low: float, high: float, value: Any) -> Any:
    """`value` on the open interval, 0 outside and at its ends."""
    return mp.mpf(value) if low < x < high else mp.mpf(0)


@dataclass(frozen=True)
class Exact:
    """f, f' and f'' of an activation, as functions of an mpmath number."""

    f: MP
    df: MP
    d2f: MP


def one_minus_two_sigmoid(x: Any) -> Any:
    """1 - 2 sigma(x) = -tanh(x/2): the difference would cancel, even in mpmath, near 0."""
    return -mp.tanh(x / 2)


def tanhshrink(x: Any) -> Any:
    """x - tanh x, with the precision raised by the bits that cancel (about x^2)."""
    extra = 2 * max(0, -int(mp.floor(mp.log(abs(x), 2)))) + 20 if x else 0
    with mp.extraprec(extra):
        return +(x - mp.tanh(x))


def _silu_d2(x: Any) -> Any:
    return sigmoid(x) * sigmoid(-x) * (2 + x * one_minus_two_sigmoid(x))


def _gelu_tanh_d1(x: Any) -> Any:
    s, s_bar, dz, _ = gelu_tanh_parts(x)
    return s + 2 * x * s * s_bar * dz


def _gelu_tanh_d2(x: Any) -> Any:
    # s' = 2 z' s (1 - s); s'' = 2 z'' s (1 - s) + 4 z'^2 s (1 - s) (1 - 2s); f'' = 2 s' + x s''
    s, s_bar, dz, d2z = gelu_tanh_parts(x)
    z = gelu_tanh_z(x)
    return 4 * dz * s * s_bar + x * (
        2 * d2z * s * s_bar + 4 * dz**2 * s * s_bar * one_minus_two_sigmoid(2 * z)
    )


def _mish_d1(x: Any) -> Any:
    t, sech2, s = mish_parts(x)
    return t + x * sech2 * s


def _mish_d2(x: Any) -> Any:
    # (sech^2 u)' = -2 t sech^2 u u', u' = sigma, sigma' = sigma (1 - sigma)
    t, sech2, s = mish_parts(x)
    return 2 * sech2 * s + x * (-2 * t * sech2 * s * s + sech2 * s * (1 - s))


def celu(alpha: float) -> Exact:
    """CELU's f, f' and f'' for the float64 `alpha`, taken as its exact value."""
    a = mp.mpf(alpha)
    return Exact(
        lambda x: x if x > 0 else a * mp.expm1(x / a),
        lambda x: 1 if x > 0 else mp.exp(x / a),
        lambda x: mp.exp(x / a) / a if x < 0 else mp.mpf(0),
    )


def softplus(beta: float) -> Exact:
    """Softplus's f, f' and f'' for the float64 `beta`, taken as its exact value."""
    b = mp.mpf(beta)
    return Exact(
        lambda x: mp.log1p(mp.exp(b * x)) / b,
        lambda x: sigmoid(b * x),
        lambda x: b * sigmoid(b * x) * sigmoid(-b * x),
    )


EXACT: dict[str, Exact] = {
    "Sigmoid": Exact(
        sigmoid,
        lambda x: sigmoid(x) * sigmoid(-x),
        lambda x: sigmoid(x) * sigmoid(-x) * one_minus_two_sigmoid(x),
    ),
    "Tanh": Exact(mp.tanh, lambda x: mp.sech(x) ** 2, lambda x: -2 * mp.tanh(x) * mp.sech(x) ** 2),
    "ReLU": Exact(lambda x: max(x, 0), lambda x: step(x, 0, 1), lambda x: mp.mpf(0)),
    "LeakyReLU": Exact(
        lambda x: x if x > 0 else mp.mpf(0.01) * x,
        lambda x: step(x, mp.mpf(0.01), 1),
        lambda x: mp.mpf(0),
    ),
    "ELU": Exact(
        lambda x: x if x > 0 else mp.expm1(x),
        lambda x: 1 if x > 0 else mp.exp(x),
        lambda x: mp.exp(x) if x < 0 else mp.mpf(0),
    ),
    "SELU": Exact(
        lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * mp.expm1(x)),
        lambda x: SELU_SCALE * (1 if x > 0 else SELU_ALPHA * mp.exp(x)),
        lambda x: SELU_SCALE * SELU_ALPHA * mp.exp(x) if x < 0 else mp.mpf(0),
    ),
    "Softplus": Exact(lambda x: mp.log1p(mp.exp(x)), sigmoid, lambda x: sigmoid(x) * sigmoid(-x)),
    "SiLU": Exact(
        lambda x: x * sigmoid(x), lambda x: sigmoid(x) + x * sigmoid(x) * sigmoid(-x), _silu_d2
    ),
    "GELU": Exact(
        lambda x: x * normal_cdf(x),
        lambda x: normal_cdf(x) + x * normal_pdf(x),
        lambda x: normal_pdf(x) * (2 - x * x),
    ),
    "GELU(tanh)": Exact(lambda x: x * gelu_tanh_parts(x)[0], _gelu_tanh_d1, _gelu_tanh_d2),
    "LogSigmoid": Exact(
        lambda x: -mp.log1p(mp.exp(-x)),
        lambda x: sigmoid(-x),
        lambda x: -sigmoid(x) * sigmoid(-x),
    ),
    "Softsign": Exact(
        lambda x: x / (1 + abs(x)),
        lambda x: 1 / (1 + abs(x)) ** 2,
        lambda x: -2 * mp.sign(x) / (1 + abs(x)) ** 3,
    ),
    "Mish": Exact(lambda x: x * mish_parts(x)[0], _mish_d1, _mish_d2),
    "Hardtanh": Exact(
        lambda x: min(max(x, -1), 1), lambda x: inside(x, -1, 1, 1), lambda x: mp.mpf(0)
    ),
    "ReLU6": Exact(lambda x: min(max(x, 0), 6), lambda x: inside(x, 0, 6, 1), lambda x: mp.mpf(0)),
    "Hardsigmoid": Exact(
        lambda x: min(max((x + 3) / 6, 0), 1),
        lambda x: inside(x, -3, 3, mp.mpf(1) / 6),
        lambda x: mp.mpf(0),
    ),
    "Hardswish": Exact(
        lambda x: x * min(max(x + 3, 0), 6) / 6,
        # PyTorch: 0 at -3, 1 at 3
        lambda x: mp.mpf(0) if x <= -3 else mp.mpf(1) if x >= 3 else x / 3 + mp.mpf(1) / 2,
        lambda x: inside(x, -3, 3, mp.mpf(1) / 3),
    ),
    "CELU": Exact(
        lambda x: x if x > 0 else mp.expm1(x),
        lambda x: 1 if x > 0 else mp.exp(x),
        lambda x: mp.exp(x) if x < 0 else mp.mpf(0),
    ),
    "CELU(0.5)": Exact(
        lambda x: x if x > 0 else mp.mpf(0.5) * mp.expm1(2 * x),
        lambda x: 1 if x > 0 else mp.exp(2 * x),
        lambda x: 2 * mp.exp(2 * x) if x < 0 else mp.mpf(0),
    ),
    # parameters that are not powers of two: x/alpha and beta x round
    "CELU(0.01)": celu(0.01),
    "CELU(0.3)": celu(0.3),
    "CELU(3.3)": celu(3.3),
    "Softplus(3.7)": softplus(3.7),
    "Softplus(0.3)": softplus(0.3),
    "Softshrink": Exact(
        lambda x: x - mp.mpf(0.5) if x > 0.5 else x + mp.mpf(0.5) if x < -0.5 else mp.mpf(0),
        lambda x: mp.mpf(1 if abs(x) > 0.5 else 0),
        lambda x: mp.mpf(0),
    ),
    "Hardshrink": Exact(
        lambda x: x if abs(x) > 0.5 else mp.mpf(0),
        lambda x: mp.mpf(1 if abs(x) > 0.5 else 0),
        lambda x: mp.mpf(0),
    ),
    "Tanhshrink": Exact(
        tanhshrink,
        lambda x: mp.tanh(x) ** 2,
        lambda x: 2 * mp.tanh(x) * mp.sech(x) ** 2,
    ),
    "Threshold(0.5, -2)": Exact(
        lambda x: x if x > 0.5 else mp.mpf(-2),
        lambda x: mp.mpf(1 if x > 0.5 else 0),
        lambda x: mp.mpf(0),
    ),
}


def cancelling(*terms: MP, ulp: float = 4) -> Callable[[str, Any], float]:
    """`ulp` times the cancellation factor sum|t_i| / |sum t_i| of a result written as a sum.

    Near a zero of f' or f'' (SiLU's f' at -1.2785, GELU's at -0.7518) any float
    evaluation of the sum loses relative accuracy by this factor; the absolute
    error stays a few eps.
    """

    def allowed(dtype: str, x: Any) -> float:
        values = [t(x) for t in terms]
        total = abs(sum(values))
        return float(ulp * sum(abs(v) for v in values) / total) if total else np.inf

    return allowed
