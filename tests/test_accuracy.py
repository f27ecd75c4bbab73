"""Accuracy in ulp against mpmath, forward and backward, over the whole finite range.

Each test records its max ulp error; the test run prints the table at its end
(the README's accuracy table comes from it). Every test runs on every installed
engine; the mpmath values are computed once and shared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from tests.reference import (
    EXACT,
    cancelling,
    celu,
    gelu_tanh_parts,
    gelu_tanh_z,
    mish_parts,
    normal_cdf,
    normal_pdf,
    sigmoid,
    softplus,
    sweep,
    tanhshrink,
    ulp_error,
    ulp_errors,
)
from tinygrad_act import _engine
from tinygrad_act.activations import (
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from tinygrad_act.base import Activation, Layer

ENGINES = _engine.available_engines()


def engine_label(name: str, engine: str) -> str:
    """The accuracy table's row: the default engine's under the plain name."""
    return name if engine == _engine.engine() else f"{name} [{engine}]"


def four_ulp(dtype: str, x: Any) -> float:
    return 4


@dataclass
class Case:
    """An activation and the allowed ulp error of f and f' (its exact math is in EXACT)."""

    layer: Callable[[], Activation]
    forward_ulp: Callable[[str, Any], float] = four_ulp
    backward_ulp: Callable[[str, Any], float] = four_ulp


def gelu_tanh_allowed(dtype: str, x: Any) -> float:
    # float64 left tail: z = sqrt(2/pi) (x + 0.044715 x^3) is rounded up to six times (the
    # constant, three products, the sum, the last product), a relative 6 * 2**-53 that
    # costs up to 6 |2z| ulp in sigma(2z)
    return 4 + (6 * float(abs(2 * gelu_tanh_z(x))) if dtype == "float64" else 0)


def gelu_tanh_backward_allowed(dtype: str, x: Any) -> float:
    s, s_bar, dz, _ = gelu_tanh_parts(x)
    factor = cancelling(lambda x: s, lambda x: 2 * x * s * s_bar * dz, ulp=1)(dtype, x)
    return gelu_tanh_allowed(dtype, x) * factor


def mish_backward_allowed(dtype: str, x: Any) -> float:
    t, sech2, s = mish_parts(x)
    return cancelling(lambda x: t, lambda x: x * sech2 * s)(dtype, x)


CASES = {
    "Sigmoid": Case(Sigmoid),
    "Tanh": Case(Tanh),
    "ReLU": Case(ReLU),
    "LeakyReLU": Case(LeakyReLU),
    "ELU": Case(ELU),
    "SELU": Case(SELU),
    "Softplus": Case(Softplus),
    # beta x rounds: carried into exp, not hundreds of ulp in the left tail
    "Softplus(3.7)": Case(lambda: Softplus(beta=3.7)),
    "Softplus(0.3)": Case(lambda: Softplus(beta=0.3)),
    "SiLU": Case(
        SiLU,
        backward_ulp=cancelling(sigmoid, lambda x: x * sigmoid(x) * sigmoid(-x)),
    ),
    "GELU": Case(
        GELU,
        # erfc is within 3.3 ulp (1.2 compiled): x Phi(x) reached 3.9 on the NumPy engine
        forward_ulp=lambda dtype, x: 6 if dtype == "float64" else 4,
        backward_ulp=cancelling(normal_cdf, lambda x: x * normal_pdf(x), ulp=6),
    ),
    "GELU(tanh)": Case(
        lambda: GELU(approximate="tanh"),
        forward_ulp=gelu_tanh_allowed,
        backward_ulp=gelu_tanh_backward_allowed,
    ),
    "LogSigmoid": Case(LogSigmoid),
    "Softsign": Case(Softsign),
    "Mish": Case(Mish, backward_ulp=mish_backward_allowed),
    "Hardtanh": Case(Hardtanh),
    "ReLU6": Case(ReLU6),
    "Hardsigmoid": Case(Hardsigmoid),
    "Hardswish": Case(Hardswish),
    "CELU": Case(CELU),
    "CELU(0.5)": Case(lambda: CELU(alpha=0.5)),
    # x/alpha rounds: carried into exp, not hundreds of ulp in the left tail
    "CELU(0.01)": Case(lambda: CELU(alpha=0.01)),
    "CELU(0.3)": Case(lambda: CELU(alpha=0.3)),
    "CELU(3.3)": Case(lambda: CELU(alpha=3.3)),
    "Softshrink": Case(Softshrink),
    "Hardshrink": Case(Hardshrink),
    "Tanhshrink": Case(Tanhshrink),
    "Threshold(0.5, -2)": Case(lambda: Threshold(0.5, -2.0)),
}


@functools.cache
def exact_values(name: str, dtype: str, which: str) -> tuple[Any, list[Any]]:
    """The sweep's points and the exact f, f' or f'' there (mpmath is slow: once per run)."""
    x = sweep(np.dtype(dtype), LIMIT[dtype])
    exact = getattr(EXACT[name], which)
    return x, [exact(mp.mpf(v)) for v in x.tolist()]


LIMIT = {"float32": 110.0, "float64": 750.0}  # beyond these the tails are flat or linear


def errors_in_ulp(got: np.ndarray[Any, Any], exact: list[Any], dtype: str) -> Any:
    return np.array([ulp_error(g, e, dtype) for g, e in zip(got.tolist(), exact, strict=True)])


def check_within(
    name: str,
    what: str,
    x: np.ndarray[Any, Any],
    got: np.ndarray[Any, Any],
    exact: list[Any],
    allowed: Callable[[str, Any], float],
) -> float:
    """Assert `got` is within `allowed` ulp of `exact` where that is a normal float; the max."""
    dtype = str(x.dtype)
    errors = errors_in_ulp(got, exact, dtype)
    # bounds hold where the exact result is a normal float; subnormals have fewer digits
    normal = np.array([abs(e) >= np.finfo(dtype).tiny for e in exact])
    bound = np.array([allowed(dtype, mp.mpf(v)) for v in x.tolist()])
    worst = np.argmax(np.where(normal, errors - bound, -np.inf))
    assert errors[worst] <= bound[worst], (
        f"{name} {what} at x = {x[worst]!r}: {errors[worst]:.3g} ulp, allowed {bound[worst]:.3g}"
    )
    return float(errors[normal].max(initial=0.0))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_within_4_ulp_of_mpmath(
    name: str, dtype: str, engine: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    """4 ulp, or the documented allowance where the problem itself is ill-conditioned."""
    case = CASES[name]
    x, exact_f = exact_values(name, dtype, "f")
    _, exact_df = exact_values(name, dtype, "df")
    layer = case.layer()
    with _engine.using(engine):
        y = layer.forward(x)
        dy = layer.backward(np.ones_like(x))
    forward = check_within(name, "f", x, y, exact_f, case.forward_ulp)
    backward = check_within(name, "f'", x, dy, exact_df, case.backward_ulp)
    record_ulp(engine_label(name, engine), dtype, forward, backward)


@pytest.mark.parametrize("engine", ENGINES)
def test_tanhshrink_within_3_3_ulp_where_its_continued_fraction_is_used(engine: str) -> None:
    """Below |x| = 1.5 (10**7 random points gave 3.18 ulp at worst; a denser search
    3.29, at the third point, where f is just below 1/4 and its ulp halves). The
    fraction's ten divisions, level by level, had given 4.125 ulp at the first point."""
    rng = np.random.default_rng(3)
    found = [0.18082391814379795, 1.0136532677827272, 1.0194986376134303, 1.0197712359121915]
    x = np.concatenate([found, [-1.0190488620171716], rng.uniform(0, 1.5, 2000)])
    x = np.concatenate([x, -x])
    with _engine.using(engine):
        y = Tanhshrink().forward(x)
    errors = ulp_errors(y, x, tanhshrink)
    assert errors.max() <= 3.3, (x[np.argmax(errors)], errors.max())


@pytest.mark.parametrize("engine", ENGINES)
def test_float32_gelu_rounds_about_once(engine: str) -> None:
    """float32 GELU: on the compiled engine its twin for float32 input (a shorter Phi in
    plain float64 arithmetic, `_gelu_float32`), on the NumPy engine the float64 kernel;
    either rounds a float64 value within about 1e-9 of exact. 4,000 float32 evenly
    spaced in their bits from 2**-30 to 20, both signs, and the nearest to f''s zero."""
    bits = np.linspace(np.float32(2**-30).view(np.int32), np.float32(20).view(np.int32), 2000)
    x = bits.astype(np.int32).view(np.float32)
    x = np.concatenate([x, -x, np.array([-0.7517941, -1.0, -0.99999994], np.float32)])
    with _engine.using(engine):
        layer = GELU()
        y = layer.forward(x)
        dy = layer.backward(np.ones_like(x))
    exact = EXACT["GELU"]
    for what, got, function in (("f", y, exact.f), ("f'", dy, exact.df)):
        errors = ulp_errors(got, x, function)
        worst = np.argmax(errors)
        assert errors[worst] <= 0.6, f"{what} at x = {x[worst]!r}: {errors[worst]:.3g} ulp"


#: Regions where a denser search than the sweep found bounds broken, and its worst points:
#: exact GELU where Phi(x) nears the subnormals (34 ulp) and near 0 on SciPy's erfcx (8.7),
#: Mish's left tail (f 4.3 ulp, f' 1.23 times its bound).
DENSE_REGIONS = {
    "GELU": ((-38.6, -35.0), (-0.5, 0.5), (-37.597698600562055, 0.007645679733706101)),
    "Mish": ((-30.0, -3.0), (-6.764193142182428, -14.421687054758586)),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", DENSE_REGIONS)
def test_bounds_hold_on_dense_points_where_they_once_broke(name: str, engine: str) -> None:
    *regions, found = DENSE_REGIONS[name]
    rng = np.random.default_rng(5)
    x = np.concatenate([found, *[rng.uniform(low, high, 300) for low, high in regions]])
    exact = EXACT[name]
    case = CASES[name]
    with _engine.using(engine):
        layer = case.layer()
        y = layer.forward(x)
        dy = layer.backward(np.ones_like(x))
    check_within(name, "f", x, y, [exact.f(mp.mpf(v)) for v in x.tolist()], case.forward_ulp)
    check_within(name, "f'", x, dy, [exact.df(mp.mpf(v)) for v in x.tolist()], case.backward_ulp)


def three_derivatives(make: Callable[[], Activation], x: Any, engine: str) -> tuple[Any, Any, Any]:
    """f, f' (from backward) and f'' of a layer made fresh on `engine`, at `x`."""
    with _engine.using(engine):
        layer = make()
        y = layer.forward(x)
        return y, layer.backward(np.ones_like(x)), layer.second_derivative(x)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("beta", [1e-3, 0.5, 0.3, 2.0**-10, 1e-40, 3.7, 1000.5, 1024.0])
def test_softplus_where_e_to_the_beta_x_is_subnormal(beta: float, engine: str) -> None:
    """Beyond beta x = -708.39, e^(beta x) is subnormal, while f = e^(beta x) / beta
    (beta < 1) and f'' = beta e^(beta x) (beta > 1) are still normal: rounded to a
    subnormal first, f was 860 ulp off for beta = 1e-3 and f'' 920 for beta = 1000.5."""
    rng = np.random.default_rng(11)
    x = -np.concatenate([rng.uniform(700, 830, 300), [708.4, 709.0, 714.9]]) / beta
    exact = softplus(beta)
    y, dy, d2y = three_derivatives(lambda: Softplus(beta=beta), x, engine)
    name = f"Softplus({beta})"
    for what, got, function in (("f", y, exact.f), ("f'", dy, exact.df), ("f''", d2y, exact.d2f)):
        check_within(name, what, x, got, [function(mp.mpf(v)) for v in x.tolist()], four_ulp)
    # each case has points where e^(beta x) is subnormal and f (beta < 1) or f'' is not
    normal = np.abs(y if beta < 1 else d2y) >= np.finfo(np.float64).tiny
    assert (normal & (beta * x < -708.4)).any()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("alpha", [2.0, -3.5, 1e10, 1e300])
def test_elu_slope_where_e_to_the_x_is_subnormal(alpha: float, dtype: str, engine: str) -> None:
    """f' = f'' = alpha e^x is normal a little beyond where e^x is subnormal (x = -708.39
    in float64, -87.34 in float32) for |alpha| > 1: rounded to a subnormal first, it was
    5e9 ulp off for alpha = 1e10 near x = -731."""
    rng = np.random.default_rng(13)
    subnormal = -708.39 if dtype == "float64" else -87.34  # below it, e^x is subnormal
    largest = np.log(float(np.finfo(dtype).max)) - np.log(abs(alpha))  # then alpha e^x overflows
    high = min(subnormal + 5, largest - 1)
    x = rng.uniform(subnormal - np.log(abs(alpha)) - 5, high, 400).astype(dtype)
    a = mp.mpf(alpha)
    _, dy, d2y = three_derivatives(lambda: ELU(alpha=alpha), x, engine)
    exact = [a * mp.exp(v) for v in x.tolist()]
    check_within(f"ELU({alpha})", "f'", x, dy, exact, four_ulp)
    check_within(f"ELU({alpha})", "f''", x, d2y, exact, four_ulp)
    assert ((x < subnormal) & (np.abs(dy) >= np.finfo(dtype).tiny)).any()  # the band is sampled


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("alpha", [-0.5, -0.3, -1e-3, -2.0, -3.3, -1e5])
def test_celu_with_a_negative_alpha_where_e_to_the_x_over_alpha_overflows(
    alpha: float, engine: str
) -> None:
    """For alpha < 0, q = x / alpha > 0 on the left, and e^q overflows from q = 709.78
    while f = alpha e^q (|alpha| < 1) and f'' = e^q / alpha (|alpha| > 1) are still
    finite: they were -inf there. Where the exact value is beyond float64, inf."""
    x = alpha * np.random.default_rng(17).uniform(700, 722, 400)
    exact = celu(alpha)
    y, dy, d2y = three_derivatives(lambda: CELU(alpha=alpha), x, engine)
    largest = float(np.finfo(np.float64).max)
    for what, got, function in (("f", y, exact.f), ("f'", dy, exact.df), ("f''", d2y, exact.d2f)):
        values = [function(mp.mpf(v)) for v in x.tolist()]
        finite = np.array([abs(v) <= largest for v in values])
        kept = [v for v, keep in zip(values, finite, strict=True) if keep]
        if kept:  # f of alpha = -1e5 is beyond float64 throughout
            check_within(f"CELU({alpha})", what, x[finite], got[finite], kept, four_ulp)
        assert np.isinf(got[~finite]).all(), what
    # each case has points where e^q overflows and f (|alpha| < 1) or f'' is finite
    band = np.isfinite(y if alpha > -1 else d2y) & (x / alpha > 709.79)
    assert band.any()


@pytest.mark.parametrize("engine", ENGINES)
def test_sigmoid_forward_within_3_ulp_including_subnormal_results(engine: str) -> None:
    for dtype in ["float32", "float64"]:
        x = sweep(np.dtype(dtype), LIMIT[dtype])
        with _engine.using(engine):
            y = Sigmoid().forward(x)
        assert ulp_errors(y, x, sigmoid).max() <= 3


def _sigma_near_powers_of_two() -> np.ndarray[Any, Any]:
    """x where sigma(-|x|) is within 0.3% of a power of two, both signs, and the points
    where a form of sigma(-|x|) that rounded once more (e * r, r = 1 / (1 + e)) was off
    the most: there one ulp of sigma(-|x|) is two of f', and the sweep's points miss
    these bands."""
    rng = np.random.default_rng(12)
    c = np.concatenate([2.0**-k * (1 + rng.uniform(-3e-3, 3e-3, 20)) for k in range(2, 45)])
    worst = [7.623759511248473, -12.476641631801861, -6.236467442695324, -9.010814080482259]
    x = np.concatenate([worst, np.log(1 / c - 1)])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("engine", ENGINES)
def test_sigmoid_and_glu_where_sigma_is_near_a_power_of_two(engine: str) -> None:
    x = _sigma_near_powers_of_two()
    with _engine.using(engine):
        sigmoid_layer = Sigmoid()
        y = sigmoid_layer.forward(x)
        slope = sigmoid_layer.backward(np.ones_like(x))
        glu = GLU(axis=0)
        glu.forward(np.stack([np.full_like(x, 0.99982), x]))
        _, by_gate = glu.backward(np.ones((1, x.size)))
    assert ulp_errors(y, x, sigmoid).max() <= 3
    assert ulp_errors(slope, x, lambda v: sigmoid(v) * sigmoid(-v)).max() <= 4
    gate_slope = ulp_errors(by_gate, x, lambda v: 0.99982 * sigmoid(v) * sigmoid(-v))
    assert gate_slope.max() <= 4


#: Points where roundings added up past a float64 bound on both engines, found by a
#: denser search than the sweep (where an exponential is just above a power of two and
#: the result just below one): Mish's left tail (f 4.22 ulp, f' 1.16 times its bound)
#: before t = n / (n + 2) carried its roundings and f' = e B, Softplus's f' for a
#: beta not a power of two (4.30 ulp) before 1 - lo and 1 / (1 + e) did.
_DENSE_FINDS = {
    "Mish": [
        -28.29798343554458,
        -15.197862045914443,
        -8.21418123317481,
        -8.214181233174878,
        -8.247301879131975,
        -8.259653060187478,
        -6.698821186709189,
        -16.63541032450944,
        -4.788151631571777,
        -7.569021663660973,
    ],
    "Softplus(3.7)": [-1.4976732290547996, -1.11977320532124, -1.3092437276437316],
    "Softplus(0.3)": [-30.036041994029045, -30.036080884544813, -25.41501560718104],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(_DENSE_FINDS))
def test_points_a_denser_search_found(name: str, engine: str) -> None:
    x = np.array(_DENSE_FINDS[name])
    case = CASES[name]
    with _engine.using(engine):
        layer = case.layer()
        y = layer.forward(x)
        slope = layer.backward(np.ones_like(x))
    for got, exact, allowed in (
        (y, EXACT[name].f, case.forward_ulp),
        (slope, EXACT[name].df, case.backward_ulp),
    ):
        bounds = np.array([allowed("float64", mp.mpf(v)) for v in x.tolist()])
        assert (ulp_errors(got, x, exact) <= bounds).all(), (name, ulp_errors(got, x, exact))


@pytest.mark.parametrize("engine", ENGINES)
def test_glu_gradient_where_sigma_is_just_above_a_power_of_two(engine: str) -> None:
    """a sigma(b) sigma(-b) at gates where sigma(b) is just above a power of two: 4.15 ulp
    before GLU carried sigma(-|b|) in two parts."""
    a = np.array([0.12353671212243332, -0.9509476587710171])
    b = np.array([-10.39423052134723, -11.08853369158971])
    with _engine.using(engine):
        glu = GLU(axis=0)
        glu.forward(np.stack([a, b]))
        _, by_gate = glu.backward(np.ones((1, 2)))
    pairs = zip(a.tolist(), b.tolist(), strict=True)
    exact = [mp.mpf(u) * sigmoid(mp.mpf(v)) * sigmoid(-mp.mpf(v)) for u, v in pairs]
    errors = [ulp_error(float(g), e, np.float64) for g, e in zip(by_gate, exact, strict=True)]
    assert max(errors) <= 4, errors


@pytest.mark.parametrize("engine", ENGINES)
def test_glu_where_sigma_is_subnormal_and_its_products_are_not(engine: str) -> None:
    """Below b = -708.4, sigma(b) is subnormal, while a sigma(b) and a sigma(b) sigma(-b)
    can be normal: each within 4 ulp (before, 4.05 ulp at b = -709.77, and 2e13 at
    a = 1e300, b = -740), and sigma(b) itself within 4 subnormal ulps."""
    a = np.array([6.8682154201854555, 1e300, 1e10, -3e5, 2.5])
    b = np.array([-709.7736670670748, -740.0, -725.3, -712.9, -30.0])
    with _engine.using(engine):
        glu = GLU(axis=0)
        y = glu.forward(np.stack([a, b]))[0]
        by_a, by_b = glu.backward(np.ones((1, a.size)))
    sigmas = [sigmoid(mp.mpf(v)) for v in b.tolist()]
    for got, exact in (
        (y, [mp.mpf(u) * s for u, s in zip(a.tolist(), sigmas, strict=True)]),
        (by_b, [mp.mpf(u) * s * (1 - s) for u, s in zip(a.tolist(), sigmas, strict=True)]),
        (by_a, sigmas),
    ):
        errors = [ulp_error(float(g), e, np.float64) for g, e in zip(got, exact, strict=True)]
        assert max(errors) <= 4, errors


def float32_ulp(exact: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The float32 ulp at each float64 value (2**-149 among the subnormals)."""
    _, exponent = np.frexp(np.abs(exact))
    ulp: np.ndarray[Any, Any] = np.maximum(np.ldexp(1.0, exponent - 24), 2.0**-149)
    return ulp


def _logistic_closed_forms(x: np.ndarray[Any, Any]) -> tuple[Any, Any]:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)), e / (1 + e) ** 2


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

#: The float32_safe built-ins (but ReLU, exact) and their float64 closed forms, f and f'
#: from NumPy's exp and expm1: a float64 rounding is 2**-29 float32 ulp.
FLOAT32_ARITHMETIC: dict[str, tuple[Callable[[], Activation], Callable[[Any], Any]]] = {
    "Sigmoid": (Sigmoid, _logistic_closed_forms),
    "LogSigmoid": (
        LogSigmoid,
        lambda x: (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), 1 / (1 + np.exp(x))),
    ),
    "Tanh": (
        Tanh,
        lambda x: (np.tanh(x), 4 * np.exp(-2 * np.abs(x)) / (1 + np.exp(-2 * np.abs(x))) ** 2),
    ),
    "ELU": (
        lambda: ELU(alpha=0.7),
        lambda x: (np.where(x > 0, x, 0.7 * np.expm1(x)), np.where(x > 0, 1, 0.7 * np.exp(x))),
    ),
    "SELU": (
        SELU,
        lambda x: (
            _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x)),
            _SELU_SCALE * np.where(x > 0, 1, _SELU_ALPHA * np.exp(x)),
        ),
    ),
    # a parameter that is a power of two: their float32_safe kernel without corrections
    "Softplus(2)": (
        lambda: Softplus(beta=2.0),
        lambda x: (
            np.maximum(x, 0) + np.log1p(np.exp(-2 * np.abs(x))) / 2,
            1 / (1 + np.exp(-2 * x)),
        ),
    ),
    "CELU(0.5)": (
        lambda: CELU(alpha=0.5),
        lambda x: (np.where(x > 0, x, 0.5 * np.expm1(2 * x)), np.where(x > 0, 1, np.exp(2 * x))),
    ),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", FLOAT32_ARITHMETIC)
def test_float32_arithmetic_within_4_ulp_on_a_dense_sweep(name: str, engine: str) -> None:
    """Every 257th float32 from 2**-30 to 110, both signs: the compiled engine computes
    these float32_safe kernels in float32, so their every rounding is checked."""
    make, closed_forms = FLOAT32_ARITHMETIC[name]
    kernel = make()._kernel(derivative=True)[0]
    assert getattr(kernel, "float32_safe", False)
    bits = np.arange(
        np.float32(2**-30).view(np.int32), np.float32(110).view(np.int32), 257, dtype=np.int32
    )
    x = np.concatenate([bits.view(np.float32), -bits.view(np.float32)])
    with _engine.using(engine):
        layer = make()
        y = layer.forward(x)
        dy = layer.backward(np.ones_like(x))
    exact_y, exact_dy = closed_forms(x.astype(np.float64))
    for what, got, exact in (("f", y, exact_y), ("f'", dy, exact_dy)):
        errors = np.abs(got - exact) / float32_ulp(exact)
        worst = np.argmax(errors)
        assert errors[worst] <= 4, f"{name} {what} at x = {x[worst]!r}: {errors[worst]:.3g} ulp"
    if engine == "numba":  # the float32 loops ran
        assert _engine._chosen[(kernel, np.dtype(np.float32))][1]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["SiLU", "GELU", "GELU(tanh)", "Mish"])
def test_near_the_zero_of_f_prime_the_absolute_error_is_a_few_eps(name: str, engine: str) -> None:
    x = np.linspace(-1.35, -0.7, 501)
    layer = CASES[name].layer()
    with _engine.using(engine):
        layer.forward(x)
        got = layer.backward(np.ones_like(x))
    exact = np.array([float(EXACT[name].df(mp.mpf(v))) for v in x.tolist()])
    assert np.max(np.abs(got - exact)) <= 4 * np.finfo(np.float64).eps


def softmax_rows(dtype: str) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """(logits, grad_output) batches: rows of 2 to 100 entries, logits up to a few 1000."""
    rng = np.random.default_rng(0)
    return [
        (
            (rng.standard_normal((4, n)) * scale).astype(dtype),
            rng.standard_normal((4, n)).astype(dtype),
        )
        for n in (2, 3, 10, 100)
        for scale in (0.1, 1.0, 10.0, 100.0, 1000.0)
    ]


#: Forward and backward of a layer on NumPy arrays x and g, NumPy results: through an
#: engine, or through another array library.
Run = Callable[[Layer, np.ndarray[Any, Any], np.ndarray[Any, Any]], tuple[Any, Any]]


def check_softmaxes(dtype: str, run: Run) -> dict[str, list[float]]:
    """Forward within 4 + log2(n) / 2 ulp (the row sum rounds); backward within 4 ulp
    times the cancellation factor of its sums, which no float evaluation avoids.

    The worst errors (scaled to 4 ulp bounds), {"Softmax": [f, f'], "LogSoftmax": ...}."""
    tiny = np.finfo(dtype).tiny
    worst = {"Softmax": [0.0, 0.0], "LogSoftmax": [0.0, 0.0]}
    for x, g in softmax_rows(dtype):
        y, dy = run(Softmax(), x, g)
        log_y, log_dy = run(LogSoftmax(), x, g)
        # softmin(x) = softmax(-x), its gradient the negated one: exactly, as negation is
        min_y, min_dy = run(Softmin(), -x, g)
        np.testing.assert_array_equal(min_y, y)
        np.testing.assert_array_equal(min_dy, -dy)
        n = x.shape[1]
        for row in range(x.shape[0]):
            xs = [mp.mpf(v) for v in x[row].tolist()]
            gs = [mp.mpf(v) for v in g[row].tolist()]
            # log p_i = -log(1 + sum_{j != i} e^(x_j - x_i)), exact even for dominant entries
            log_p = [
                -mp.log1p(mp.fsum(mp.exp(xj - xi) for j, xj in enumerate(xs) if j != i))
                for i, xi in enumerate(xs)
            ]
            p = [mp.exp(v) for v in log_p]
            g_dot_p = mp.fsum(a * b for a, b in zip(gs, p, strict=True))
            abs_dot = mp.fsum(abs(a * b) for a, b in zip(gs, p, strict=True))
            g_sum, abs_sum = mp.fsum(gs), mp.fsum(abs(v) for v in gs)
            for i in range(n):
                checks = [
                    ("Softmax", 0, y[row, i], p[i], abs(p[i])),
                    ("LogSoftmax", 0, log_y[row, i], log_p[i], abs(log_p[i])),
                    (
                        "Softmax",
                        1,
                        dy[row, i],
                        p[i] * (gs[i] - g_dot_p),
                        p[i] * (abs(gs[i]) + abs_dot),
                    ),
                    (
                        "LogSoftmax",
                        1,
                        log_dy[row, i],
                        gs[i] - p[i] * g_sum,
                        abs(gs[i]) + p[i] * abs_sum,
                    ),
                ]
                # magnitude / |exact| is 1 for forward, the cancellation factor for backward
                for name, which, got, exact, magnitude in checks:
                    if abs(exact) < tiny:
                        continue
                    factor = float(magnitude / abs(exact))
                    error = ulp_error(float(got), exact, dtype)
                    worst[name][which] = max(worst[name][which], error / factor)
                    assert error <= (4 + np.log2(n) / 2) * factor, (name, which, x[row], i)
    return worst


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_log_softmax_against_mpmath(
    dtype: str, engine: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    def run(layer: Layer, x: Any, g: Any) -> tuple[Any, Any]:
        with _engine.using(engine):
            return layer.forward(x), layer.backward(g)

    for name, (forward, backward) in check_softmaxes(dtype, run).items():
        record_ulp(engine_label(name, engine), dtype, forward, backward)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_glu_within_4_ulp_of_mpmath(
    dtype: str, engine: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    """GLU on pairs (a, b): the gate b over the whole range, a from a normal cloud.
    f is a sigma(b); f' (for a gradient of ones) is sigma(b) for a and
    a sigma(b) sigma(-b) for b, each in ulp of its own exact value."""
    b = sweep(dtype, 40.0)
    a = (np.random.default_rng(1).standard_normal(b.size) * 3).astype(dtype)
    with _engine.using(engine), np.errstate(all="ignore"):
        layer = GLU(axis=0)
        y = layer.forward(np.stack([a, b]))[0]
        by_a, by_b = layer.backward(np.ones((1, b.size), dtype))
    tiny = np.finfo(dtype).tiny
    worst = [0.0, 0.0]
    for i, (u, v) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        gate, u = sigmoid(mp.mpf(v)), mp.mpf(u)
        checks = [(0, y[i], u * gate), (1, by_a[i], gate), (1, by_b[i], u * gate * (1 - gate))]
        for which, got, exact in checks:
            if abs(exact) >= tiny:  # normal results, as everywhere in the table
                error = ulp_error(float(got), exact, dtype)
                assert error <= 4, (which, float(u), v, float(got))
                worst[which] = max(worst[which], error)
    record_ulp(engine_label("GLU", engine), dtype, *worst)


@pytest.mark.skipif("numba" not in ENGINES, reason="the compiled engine needs numba")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_softmax_backward_of_a_dominant_entry(dtype: str) -> None:
    """Where one entry dominates a row, its gradient p_k (g_k - <g, p>) is the sum of
    the small entries' p_j (g_k - g_j), with nothing cancelling when g_k is the largest
    g: the compiled engine gets every output to within a few ulp of the relative errors
    of p, so within 4 + log2(n) / 2 ulp times the cancellation factor of that sum (1 at
    the dominant entry). A mean of g taken in one pass errs there by up to n ulp of |g|."""
    rng = np.random.default_rng(3)
    gap = 30.0 if dtype == "float32" else 40.0
    n = 64
    x = np.concatenate([[0.0], -gap - rng.uniform(0, 4, n - 1)]).astype(dtype)
    g = np.concatenate([[3.0], rng.uniform(-2, 2.9, n - 1)]).astype(dtype)
    for batch in (x[None, :], np.repeat(x[None, :], 2000, axis=0)):  # 1 row, and threads
        grads = np.broadcast_to(g, batch.shape)
        layer = Softmax()
        with _engine.using("numba"):
            layer.forward(batch)
            got = layer.backward(grads)
        xs, gs = [mp.mpf(v) for v in x.tolist()], [mp.mpf(v) for v in g.tolist()]
        total = mp.fsum(mp.exp(v) for v in xs)
        p = [mp.exp(v) / total for v in xs]
        for i in range(n):
            terms = [p[i] * p[j] * (gs[i] - gs[j]) for j in range(n)]
            exact, magnitude = mp.fsum(terms), mp.fsum(abs(t) for t in terms)
            factor = float(magnitude / abs(exact))
            errors = [ulp_error(float(v), exact, dtype) for v in got[:, i].tolist()]
            assert max(errors) <= (4 + np.log2(n) / 2) * factor, (dtype, i, max(errors), factor)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_backward_of_extreme_gradients(dtype: str, engine: str) -> None:
    """grad_output with inf, -inf, NaN, or entries near half the largest float32: each
    output is p_i (g_i - <g, p> / sum(p)) evaluated in IEEE arithmetic (an infinite g
    makes the others -inf or inf, NaN where inf - inf), and where that is finite within
    4 + log2(n) / 2 ulp times the cancellation factor, as for ordinary gradients; no
    intermediate overflows (float32's g - <g, p> can, where the output does not)."""
    x = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, -30.0, -31.0, -40.0]], dtype)
    rows = [
        [1.0, 2.0, np.inf, 3.0],
        [1.0, -np.inf, 0.5, 2.0],
        [np.inf, -np.inf, 0.0, 1.0],
        [1.0, np.nan, 0.0, 0.0],
        [1.7e38, -1.7e38, 1.7e38, 1.0],
        [-1.7e38, 1.0, -1.7e38, 1.7e38],
    ]
    for g_row in rows:
        g = np.array([g_row, g_row], dtype)
        layer = Softmax()
        with _engine.using(engine):
            p = layer.forward(x)
            got = layer.backward(g)
        for row in range(2):
            ps, gs = [mp.mpf(float(v)) for v in p[row]], [mp.mpf(float(v)) for v in g[row]]
            finite = all(mp.isfinite(v) for v in gs)
            with np.errstate(all="ignore"):  # the IEEE reference, in float64
                p64, g64 = p[row].astype(np.float64), g[row].astype(np.float64)
                ieee = p64 * (g64 - np.sum(g64 * p64) / np.sum(p64))
            for i in range(4):
                if not finite:
                    assert np.array_equal(got[row, i], ieee[i].astype(dtype), equal_nan=True), (
                        engine,
                        dtype,
                        g_row,
                        row,
                        i,
                        got[row, i],
                        ieee[i],
                    )
                    continue
                mean = mp.fsum(a * b for a, b in zip(gs, ps, strict=True)) / mp.fsum(ps)
                exact = ps[i] * (gs[i] - mean)
                products = [abs(a * b) for a, b in zip(gs, ps, strict=True)]
                magnitude = ps[i] * (abs(gs[i]) + mp.fsum(products))
                error = ulp_error(float(got[row, i]), exact, dtype)
                factor = float(magnitude / abs(exact)) if exact else 1.0
                assert error <= (4 + np.log2(4) / 2) * factor, (engine, dtype, g_row, row, i)
