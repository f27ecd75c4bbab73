"""Second derivatives against mpmath, in both tails, on every engine.

The target is 4 ulp where f'' is well conditioned. Near a zero of f'' (SiLU at
+-2.3994, Mish at -2.2564 and 1.4906, GELU's tanh form at +-1.4185) any float
evaluation of f'' written as a sum loses relative accuracy by the sum's
cancellation factor sum|t_i| / |sum t_i|; there the bound is 4 ulp times that
factor, and the absolute error stays a few eps. GELU's exact f'' = phi(x)(2 - x^2)
has no such loss: 2 - x^2 is computed exactly before its one rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from tests.reference import EXACT, cancelling, gelu_tanh_parts, gelu_tanh_z, mish_parts, sigmoid
from tests.test_accuracy import CASES, ENGINES, check_within, engine_label, exact_values
from tinygrad_act import Softplus, _engine
from tinygrad_act.activations import LogSigmoid, Sigmoid


def silu_terms() -> list[Callable[[Any], Any]]:
    return [
        lambda x: 2 * sigmoid(x) * sigmoid(-x),
        lambda x: -x * sigmoid(x) * sigmoid(-x) * mp.tanh(x / 2),
    ]


def mish_terms() -> list[Callable[[Any], Any]]:
    def part(x: Any, i: int) -> Any:
        t, sech2, s = mish_parts(x)
        return [2 * sech2 * s, x * sech2 * s * (1 - s), -2 * x * t * sech2 * s * s][i]

    return [lambda x, i=i: part(x, i) for i in range(3)]  # type: ignore[misc]


def gelu_tanh_terms() -> list[Callable[[Any], Any]]:
    def part(x: Any, i: int) -> Any:
        s, s_bar, dz, d2z = gelu_tanh_parts(x)
        z = gelu_tanh_z(x)
        return [
            4 * dz * s * s_bar,
            2 * x * d2z * s * s_bar,
            -4 * x * dz**2 * s * s_bar * mp.tanh(z),
        ][i]

    return [lambda x, i=i: part(x, i) for i in range(3)]  # type: ignore[misc]


def gelu_tanh_allowed(dtype: str, x: Any) -> float:
    # float64 left tail: z's up to six roundings (see test_accuracy.gelu_tanh_allowed)
    # cost up to 6 |2z| ulp in s (1 - s)
    tail = 6 * float(abs(2 * gelu_tanh_z(x))) if dtype == "float64" else 0
    return (4 + tail) * cancelling(*gelu_tanh_terms(), ulp=1)(dtype, x)


def four_ulp(dtype: str, x: Any) -> float:
    return 4


#: The allowed error of f'' in ulp, where it is not 4.
ALLOWED: dict[str, Callable[[str, Any], float]] = {
    "SiLU": cancelling(*silu_terms()),
    "Mish": cancelling(*mish_terms()),
    "GELU(tanh)": gelu_tanh_allowed,
}


@pytest.mark.parametrize("name", list(EXACT))
def test_reference_derivatives_agree_with_numerical_differentiation(name: str) -> None:
    """The hand-derived f' and f'' in tests/reference.py, against mpmath's mp.diff."""
    exact = EXACT[name]
    for v in [-30.0, -3.7, -1.1, -0.3, 0.4, 1.7, 5.2, 30.0]:  # away from every kink
        x = mp.mpf(v)
        for derivative, of in [(exact.df, exact.f), (exact.d2f, exact.df)]:
            numerical = mp.diff(of, x)
            assert abs(derivative(x) - numerical) <= mp.mpf(10) ** -25 * (1 + abs(numerical)), v


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_second_derivative_against_mpmath(
    name: str, dtype: str, engine: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    x, exact = exact_values(name, dtype, "d2f")
    with _engine.using(engine):
        got = CASES[name].layer().second_derivative(x)
    assert got.dtype == x.dtype
    worst = check_within(name, "f''", x, got, exact, ALLOWED.get(name, four_ulp))
    record_ulp(engine_label(f"{name} f''", engine), dtype, worst, float("nan"))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "zero"),
    [
        ("SiLU", -2.3994),
        ("SiLU", 2.3994),
        ("Mish", -2.2564),
        ("Mish", 1.4906),
        ("GELU", -1.4142),
        ("GELU", 1.4142),
        ("GELU(tanh)", -1.4185),
        ("GELU(tanh)", 1.4185),
    ],
)
def test_near_a_zero_of_f_second_within_the_cancellation_bound(
    name: str, zero: float, engine: str
) -> None:
    x = np.linspace(zero - 0.01, zero + 0.01, 201)
    with _engine.using(engine):
        got = CASES[name].layer().second_derivative(x)
    exact = [EXACT[name].d2f(mp.mpf(v)) for v in x.tolist()]
    check_within(name, "f''", x, got, exact, ALLOWED.get(name, four_ulp))
    # and the absolute error is a few eps
    assert np.max(np.abs(got - np.array([float(e) for e in exact]))) <= 4 * np.finfo(float).eps


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("dtype", "x"),
    [(np.float64, 40.0), (np.float64, 700.0), (np.float32, 20.0), (np.float32, 80.0)],
)
def test_sigmoid_curvature_does_not_vanish_in_the_tail(engine: str, dtype: Any, x: float) -> None:
    # f'' = s (1 - s)(1 - 2s) = -e^-x (1 - e^-x) / (1 + e^-x)^3; frameworks give 0 here
    with _engine.using(engine):
        got = Sigmoid().second_derivative(np.array([x], dtype))[0]
    assert got == pytest.approx(-np.exp(-x), rel=4 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("x", [40.0, 700.0])
def test_log_sigmoid_curvature_does_not_vanish_in_the_tail(engine: str, x: float) -> None:
    # f'' = -s (1 - s) = -e^-x / (1 + e^-x)^2
    with _engine.using(engine):
        got = LogSigmoid().second_derivative(np.array([x]))[0]
    assert got == pytest.approx(-np.exp(-x), rel=4 * float(np.finfo(float).eps))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(CASES))
def test_infinities_give_the_limit_and_nan_gives_nan(name: str, engine: str) -> None:
    layer = CASES[name].layer()
    with warnings.catch_warnings(), _engine.using(engine):
        warnings.simplefilter("error")
        got = layer.second_derivative(np.array([-np.inf, np.inf, np.nan]))
    # every f'' here tends to 0 in both tails
    np.testing.assert_array_equal(got[:2], [0.0, 0.0])
    assert np.isnan(got[2])


@pytest.mark.parametrize("name", list(CASES))
def test_float16_rounds_the_float64_value(name: str) -> None:
    x = np.linspace(-6, 6, 97)
    layer = CASES[name].layer()
    got = layer.second_derivative(x.astype(np.float16))
    assert got.dtype == np.float16
    exact = np.array([float(EXACT[name].d2f(mp.mpf(v))) for v in x.astype(np.float16).tolist()])
    # within one float16 ulp (the result rounds through float32 first)
    ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(got.astype(np.float64) - exact) <= ulp)


def test_a_float16_second_derivative_beyond_its_range_is_inf_quietly() -> None:
    # f''(0) of Softplus is beta sigma(0) (1 - sigma(0)) = beta / 4: 250,000, beyond float16
    layer = Softplus(beta=1e6)
    second = layer.second_derivative(np.zeros(3, np.float16))
    assert second.dtype == np.float16
    assert second.tolist() == [np.inf] * 3
    assert layer.second_derivative(np.zeros(1)).tolist() == [250_000.0]
