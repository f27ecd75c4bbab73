"""The functional API: f, f' and f'' of every built-in against mpmath and closed forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from tests.reference import EXACT
from tests.test_accuracy import CASES, ENGINES, check_within
from tests.test_second_derivatives import ALLOWED, four_ulp
from tinygrad_act import _engine, functional
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.base import Activation

#: functional name, its keyword arguments, and the activation in tests/reference.py
FUNCTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("sigmoid", {}, "Sigmoid"),
    ("tanh", {}, "Tanh"),
    ("relu", {}, "ReLU"),
    ("leaky_relu", {}, "LeakyReLU"),
    ("elu", {}, "ELU"),
    ("selu", {}, "SELU"),
    ("softplus", {}, "Softplus"),
    ("silu", {}, "SiLU"),
    ("gelu", {}, "GELU"),
    ("gelu", {"approximate": "tanh"}, "GELU(tanh)"),
    ("log_sigmoid", {}, "LogSigmoid"),
    ("softsign", {}, "Softsign"),
    ("mish", {}, "Mish"),
    ("hardtanh", {}, "Hardtanh"),
    ("relu6", {}, "ReLU6"),
    ("hardsigmoid", {}, "Hardsigmoid"),
    ("hardswish", {}, "Hardswish"),
    ("celu", {}, "CELU"),
    ("celu", {"alpha": 0.5}, "CELU(0.5)"),
    ("softshrink", {}, "Softshrink"),
    ("hardshrink", {}, "Hardshrink"),
    ("tanhshrink", {}, "Tanhshrink"),
    ("threshold", {"threshold": 0.5, "value": -2.0}, "Threshold(0.5, -2)"),
]
POINTS = np.array([-700.0, -40.0, -3.3, -1.0, -0.2, 0.0, 0.7, 2.5, 40.0, 700.0])


def test_every_elementwise_built_in_has_its_three_functions() -> None:
    covered = {type(CASES[reference].layer()) for _, _, reference in FUNCTIONS}
    built_in = {cls for cls in ACTIVATIONS.values() if issubclass(cls, Activation)}
    assert built_in <= covered
    for name, _, _ in FUNCTIONS:
        for suffix in ("", "_derivative", "_second_derivative"):
            assert callable(getattr(functional, name + suffix))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kwargs", "reference"), FUNCTIONS, ids=lambda v: str(v))
def test_against_mpmath(
    name: str, kwargs: dict[str, Any], reference: str, dtype: str, engine: str
) -> None:
    x = POINTS.astype(dtype)
    exact = EXACT[reference]
    checks: list[tuple[str, str, Any, Callable[[str, Any], float]]] = [
        ("", "f", exact.f, CASES[reference].forward_ulp),
        ("_derivative", "f'", exact.df, CASES[reference].backward_ulp),
        ("_second_derivative", "f''", exact.d2f, ALLOWED.get(reference, four_ulp)),
    ]
    for suffix, what, f, allowed in checks:
        with _engine.using(engine):
            got = getattr(functional, name + suffix)(x, **kwargs)
        assert got.dtype == x.dtype
        assert got.shape == x.shape
        values = [f(mp.mpf(v)) for v in x.tolist()]
        check_within(f"{name}{suffix}", what, x, got, values, allowed)


def test_the_tutorial_values() -> None:
    x = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
    expected = [[0.52497919], [0.549834], [0.57444252], [0.59868766], [0.62245933]]
    expected_derivative = [[0.24937604], [0.24751657], [0.24445831], [0.24026075], [0.23500371]]
    np.testing.assert_allclose(functional.sigmoid(x), expected, atol=5e-9)
    np.testing.assert_allclose(functional.sigmoid_derivative(x), expected_derivative, atol=5e-9)


def test_parameters_are_passed_on() -> None:
    x = np.array([-2.0, 3.0])
    np.testing.assert_array_equal(functional.leaky_relu(x, negative_slope=0.5), [-1.0, 3.0])
    np.testing.assert_array_equal(functional.leaky_relu_derivative(x, 0.5), [0.5, 1.0])
    np.testing.assert_array_equal(functional.hardtanh(x, min_val=-1.5, max_val=2.0), [-1.5, 2.0])
    np.testing.assert_array_equal(functional.threshold(x, 2.5, 7.0), [7.0, 3.0])
    np.testing.assert_allclose(functional.softplus(np.zeros(1), beta=2.0), [np.log(2) / 2])
    np.testing.assert_allclose(functional.softplus_second_derivative(np.zeros(1), 2.0), [0.5])


def test_invalid_parameters_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"lambd must be >= 0, got -1\.0"):
        functional.softshrink(np.zeros(1), lambd=-1.0)
    with pytest.raises(ValueError, match="min_val must be less than max_val"):
        functional.hardtanh(np.zeros(1), min_val=1.0, max_val=1.0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_narrow_dtypes_round_the_float64_value_once(dtype: Any) -> None:
    x = np.linspace(-4, 4, 33).astype(dtype)
    points = [mp.mpf(v) for v in x.tolist()]
    for function, exact in [
        (functional.silu, EXACT["SiLU"].f),
        (functional.silu_derivative, EXACT["SiLU"].df),
        (functional.tanh_second_derivative, EXACT["Tanh"].d2f),
    ]:
        got = function(x)
        assert got.dtype == dtype
        # the exact value rounded to dtype, up to a last-bit tie in the float64 step
        expected = np.array([float(e) for e in map(exact, points)]).astype(dtype)
        assert np.max(np.abs(got.astype(float) - expected.astype(float))) <= np.max(
            np.spacing(np.abs(expected))
        )


def test_integers_and_lists_become_float64() -> None:
    assert functional.relu([1, -2]).dtype == np.float64
    assert functional.sigmoid_derivative(np.array([0])).tolist() == [0.25]
    assert functional.tanh_second_derivative(0).shape == ()


def test_softmax_family_along_an_axis() -> None:
    x = np.log(np.array([[1.0, 3.0], [1.0, 1.0]]))
    np.testing.assert_allclose(functional.softmax(x), [[0.25, 0.75], [0.5, 0.5]], rtol=1e-15)
    np.testing.assert_allclose(functional.softmax(x, axis=0), [[0.5, 0.75], [0.5, 0.25]])
    np.testing.assert_allclose(
        functional.log_softmax(x), np.log([[0.25, 0.75], [0.5, 0.5]]), rtol=1e-15
    )
    np.testing.assert_allclose(functional.softmin(x), [[0.75, 0.25], [0.5, 0.5]], rtol=1e-15)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "elu", "softplus"])
def test_other_array_libraries_get_their_own_arrays_back(name: str) -> None:
    """f, f' and f'' of an array-API array are computed in its library, returned in its
    type, and equal the NumPy results."""
    xp = pytest.importorskip("array_api_strict")
    values = np.array([-30.0, -1.0, -0.0, 0.5, 2.0, 40.0])
    for suffix in ("", "_derivative", "_second_derivative"):
        function = getattr(functional, name + suffix)
        got = function(xp.asarray(values))
        assert type(got) is type(xp.asarray(values)), f"{name}{suffix} changed the array type"
        with _engine.using("numpy"):
            np.testing.assert_array_equal(np.asarray(got), function(values))
