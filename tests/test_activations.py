"""Each activation against closed forms, mpmath and its mathematical properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given

from tests.reference import sweep, ulp_errors
from tinygrad_act import Sigmoid
from tinygrad_act.testing import float_arrays

FLOAT_LIMIT = {np.float32: 110.0, np.float64: 750.0}  # beyond these, sigmoid's tails are flat


def mp_sigmoid(x: Any) -> Any:
    return 1 / (1 + mpmath.exp(-x))


def mp_sigmoid_derivative(x: Any) -> Any:
    # e^-|x| / (1 + e^-|x|)^2: the same function, written without cancellation
    e = mpmath.exp(-abs(x))
    return e / (1 + e) ** 2


class TestSigmoid:
    def test_tutorial_example(self) -> None:
        x = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
        layer = Sigmoid()
        y = layer.forward(x)
        grad = layer.backward(np.ones_like(x))
        expected_y = [[0.52497919], [0.549834], [0.57444252], [0.59868766], [0.62245933]]
        expected_grad = [[0.24937604], [0.24751657], [0.24445831], [0.24026075], [0.23500371]]
        np.testing.assert_allclose(y, expected_y, atol=5e-9)
        np.testing.assert_allclose(grad, expected_grad, atol=5e-9)

    def test_closed_form_values(self) -> None:
        layer = Sigmoid()
        x = np.array([0.0, np.log(3.0), -np.log(3.0), -np.inf, np.inf])
        np.testing.assert_allclose(layer.forward(x), [0.5, 0.75, 0.25, 0.0, 1.0], rtol=1e-15)
        np.testing.assert_allclose(
            layer.backward(np.full(5, 2.0)), [0.5, 0.375, 0.375, 0.0, 0.0], rtol=1e-15
        )

    def test_backward_is_grad_output_times_s_one_minus_s(self) -> None:
        x = np.linspace(-6, 6, 25)
        grad_output = np.random.default_rng(0).standard_normal(25)
        layer = Sigmoid()
        s = 1 / (1 + np.exp(-x))
        layer.forward(x)
        np.testing.assert_allclose(
            layer.backward(grad_output), grad_output * s * (1 - s), rtol=1e-13
        )

    @pytest.mark.parametrize(
        ("dtype", "x"),
        [(np.float64, 40.0), (np.float64, 700.0), (np.float32, 20.0), (np.float32, 80.0)],
    )
    def test_derivative_does_not_vanish_where_s_rounds_to_one(self, dtype: Any, x: float) -> None:
        # s*(1-s) from a rounded s is exactly 0 here; the true derivative is e^-x.
        layer = Sigmoid()
        assert layer.forward(np.array([x], dtype))[0] == 1
        grad = layer.backward(np.ones(1, dtype))
        assert grad[0] == pytest.approx(np.exp(-x), rel=4 * float(np.finfo(dtype).eps))

    @given(x=float_arrays(np.float64, min_value=-800, max_value=800))
    def test_range_is_zero_to_one(self, x: np.ndarray[Any, Any]) -> None:
        y = Sigmoid().forward(x)
        assert np.all((y >= 0) & (y <= 1))

    @given(x=float_arrays(np.float64, shape=(50,), min_value=-800, max_value=800))
    def test_monotone(self, x: np.ndarray[Any, Any]) -> None:
        y = Sigmoid().forward(np.sort(x))
        assert np.all(np.diff(y) >= 0)

    @given(x=float_arrays(np.float64, min_value=-40, max_value=40))
    def test_symmetry(self, x: np.ndarray[Any, Any]) -> None:
        layer = Sigmoid()
        np.testing.assert_allclose(layer.forward(-x), 1 - layer.forward(x), rtol=0, atol=2e-16)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_accuracy_against_mpmath(
        self, dtype: Any, record_ulp: Callable[[str, str, float, float], None]
    ) -> None:
        x = sweep(dtype, FLOAT_LIMIT[dtype])
        layer = Sigmoid()
        forward = ulp_errors(layer.forward(x), x, mp_sigmoid)
        backward = ulp_errors(layer.backward(np.ones_like(x)), x, mp_sigmoid_derivative)
        # backward is bounded where the true derivative is a normal float
        exact = [mp_sigmoid_derivative(mpmath.mpf(v)) for v in x.tolist()]
        normal = np.array([abs(d) >= np.finfo(dtype).tiny for d in exact])
        record_ulp("Sigmoid", np.dtype(dtype).name, forward.max(), backward[normal].max())
        assert forward.max() <= 3
        assert backward[normal].max() <= 4

    def test_float16_is_within_one_ulp_on_every_value(self) -> None:
        x = np.arange(2**16, dtype=np.uint16).view(np.float16)
        x = x[np.isfinite(x)]
        layer = Sigmoid()
        y = layer.forward(x)
        grad = layer.backward(np.ones_like(x))
        # reference: the closed forms in float64, whose error is far below a float16 ulp
        e = np.exp(-np.abs(x.astype(np.float64)))
        exact_y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        exact_grad = e / (1 + e) ** 2
        for got, exact in [(y, exact_y), (grad, exact_grad)]:
            ulp = np.spacing(exact.astype(np.float16)).astype(np.float64)
            assert np.max(np.abs(got - exact) / ulp) <= 1
