"""Accuracy in ulp against mpmath, forward and backward, over the whole finite range.

Each test records its max ulp error; the test run prints the table at its end
(the README's accuracy table comes from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from tests.reference import sweep, ulp_error, ulp_errors
from tinygrad_act import (
    ELU,
    GELU,
    SELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from tinygrad_act.base import Activation

MP = Callable[[Any], Any]
SQRT_2_OVER_PI = mp.sqrt(2 / mp.pi)
GELU_CUBIC = mp.mpf("0.044715")


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


def step(x: Any, below: Any, above: Any) -> Any:
    return mp.mpf(above if x > 0 else below)


def four_ulp(dtype: str, x: Any) -> float:
    return 4


def cancelling(*terms: MP, ulp: float = 4) -> Callable[[str, Any], float]:
    """`ulp` times the cancellation factor sum|t_i| / |sum t_i| of f' written as a sum.

    Near a zero of f' (SiLU at -1.2785, GELU at -0.7518) any float evaluation of the sum
    loses relative accuracy by this factor; the absolute error stays a few eps.
    """

    def allowed(dtype: str, x: Any) -> float:
        values = [t(x) for t in terms]
        total = abs(sum(values))
        return float(ulp * sum(abs(v) for v in values) / total) if total else np.inf

    return allowed


@dataclass
class Case:
    """An activation, its exact f and f' in mpmath, and the allowed ulp error of each."""

    layer: Callable[[], Activation]
    f: MP
    df: MP
    forward_ulp: Callable[[str, Any], float] = four_ulp
    backward_ulp: Callable[[str, Any], float] = four_ulp


SELU_A, SELU_S = mp.mpf(SELU.alpha), mp.mpf(SELU.scale)


def gelu_tanh_allowed(dtype: str, x: Any) -> float:
    # float64 left tail: the rounding of z (a relative eps) costs |2z| ulp in sigma(2z)
    return 4 + (2 * float(abs(2 * gelu_tanh_z(x))) if dtype == "float64" else 0)


CASES = {
    "Sigmoid": Case(Sigmoid, sigmoid, lambda x: sigmoid(x) * sigmoid(-x)),
    "Tanh": Case(Tanh, mp.tanh, lambda x: mp.sech(x) ** 2),
    "ReLU": Case(ReLU, lambda x: max(x, 0), lambda x: step(x, 0, 1)),
    "LeakyReLU": Case(
        LeakyReLU,
        lambda x: x if x > 0 else mp.mpf(0.01) * x,
        lambda x: step(x, mp.mpf(0.01), 1),
    ),
    "ELU": Case(ELU, lambda x: x if x > 0 else mp.expm1(x), lambda x: 1 if x > 0 else mp.exp(x)),
    "SELU": Case(
        SELU,
        lambda x: SELU_S * (x if x > 0 else SELU_A * mp.expm1(x)),
        lambda x: SELU_S * (1 if x > 0 else SELU_A * mp.exp(x)),
    ),
    "Softplus": Case(Softplus, lambda x: mp.log1p(mp.exp(x)), sigmoid),
    "SiLU": Case(
        SiLU,
        lambda x: x * sigmoid(x),
        lambda x: sigmoid(x) + x * sigmoid(x) * sigmoid(-x),
        backward_ulp=cancelling(sigmoid, lambda x: x * sigmoid(x) * sigmoid(-x)),
    ),
    "GELU": Case(
        GELU,
        lambda x: x * normal_cdf(x),
        lambda x: normal_cdf(x) + x * normal_pdf(x),
        # SciPy's erfcx, on which Phi rests, is itself up to 6 ulp from exact
        forward_ulp=lambda dtype, x: 6 if dtype == "float64" else 4,
        backward_ulp=cancelling(normal_cdf, lambda x: x * normal_pdf(x), ulp=6),
    ),
    "GELU(tanh)": Case(
        lambda: GELU(approximate="tanh"),
        lambda x: x * sigmoid(2 * gelu_tanh_z(x)),
        lambda x: (
            sigmoid(2 * gelu_tanh_z(x))
            + 2
            * x
            * sigmoid(2 * gelu_tanh_z(x))
            * sigmoid(-2 * gelu_tanh_z(x))
            * SQRT_2_OVER_PI
            * (1 + 3 * GELU_CUBIC * x * x)
        ),
        forward_ulp=gelu_tanh_allowed,
        backward_ulp=lambda dtype, x: (
            gelu_tanh_allowed(dtype, x)
            * float(
                cancelling(
                    lambda x: sigmoid(2 * gelu_tanh_z(x)),
                    lambda x: (
                        2
                        * x
                        * sigmoid(2 * gelu_tanh_z(x))
                        * sigmoid(-2 * gelu_tanh_z(x))
                        * SQRT_2_OVER_PI
                        * (1 + 3 * GELU_CUBIC * x * x)
                    ),
                    ulp=1,
                )(dtype, x)
            )
        ),
    ),
}

LIMIT = {"float32": 110.0, "float64": 750.0}  # beyond these the tails are flat or linear


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_within_4_ulp_of_mpmath(
    name: str, dtype: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    """4 ulp, or the documented allowance where the problem itself is ill-conditioned."""
    case = CASES[name]
    x = sweep(np.dtype(dtype), LIMIT[dtype])
    layer = case.layer()
    forward = ulp_errors(layer.forward(x), x, case.f)
    backward = ulp_errors(layer.backward(np.ones_like(x)), x, case.df)
    # bounds hold where the exact result is a normal float; subnormals have fewer digits
    tiny = np.finfo(dtype).tiny
    points = [mp.mpf(v) for v in x.tolist()]
    normal_f = np.array([abs(case.f(v)) >= tiny for v in points])
    normal_df = np.array([abs(case.df(v)) >= tiny for v in points])
    record_ulp(name, dtype, forward[normal_f].max(), backward[normal_df].max())

    allowed_f = np.array([case.forward_ulp(dtype, v) for v in points])
    allowed_df = np.array([case.backward_ulp(dtype, v) for v in points])
    worst_f = np.argmax(np.where(normal_f, forward - allowed_f, -np.inf))
    worst_df = np.argmax(np.where(normal_df, backward - allowed_df, -np.inf))
    assert forward[worst_f] <= allowed_f[worst_f], f"forward at x = {x[worst_f]!r}"
    assert backward[worst_df] <= allowed_df[worst_df], f"backward at x = {x[worst_df]!r}"


def test_sigmoid_forward_within_3_ulp_including_subnormal_results() -> None:
    for dtype in ["float32", "float64"]:
        x = sweep(np.dtype(dtype), LIMIT[dtype])
        assert ulp_errors(Sigmoid().forward(x), x, sigmoid).max() <= 3


@pytest.mark.parametrize("name", ["SiLU", "GELU", "GELU(tanh)"])
def test_near_the_zero_of_f_prime_the_absolute_error_is_a_few_eps(name: str) -> None:
    x = np.linspace(-1.35, -0.7, 2001)
    layer = CASES[name].layer()
    layer.forward(x)
    got = layer.backward(np.ones_like(x))
    exact = np.array([float(CASES[name].df(mp.mpf(v))) for v in x.tolist()])
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_log_softmax_against_mpmath(
    dtype: str, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    """Forward within 4 + log2(n) / 2 ulp (the row sum rounds); backward within 4 ulp
    times the cancellation factor of its sums, which no float evaluation avoids."""
    tiny = np.finfo(dtype).tiny
    worst = {"Softmax": [0.0, 0.0], "LogSoftmax": [0.0, 0.0]}
    for x, g in softmax_rows(dtype):
        softmax, log_softmax = Softmax(), LogSoftmax()
        y, dy = softmax.forward(x), softmax.backward(g)
        log_y, log_dy = log_softmax.forward(x), log_softmax.backward(g)
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
    for name, (forward, backward) in worst.items():
        record_ulp(name, dtype, forward, backward)
