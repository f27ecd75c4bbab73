"""gradcheck must pass correct layers and catch wrong ones, saying where."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tinygrad_act import Activation, GradcheckError, Layer, Sigmoid, gradcheck

Array = np.ndarray[Any, Any]


class WrongSigmoid(Activation):
    """Sigmoid with the classic mistake: f'(x) = f(x) instead of f(x)(1 - f(x))."""

    needs_input = False

    def function(self, x: Array) -> Array:
        return 1 / (1 + np.exp(-x))

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert y is not None
        return y


class CumulativeSum(Layer):
    """A layer that is not elementwise: y_i = x_0 + ... + x_i along the last axis."""

    def forward(self, x: npt.ArrayLike) -> Array:
        return np.cumsum(x, axis=-1)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        return np.flip(np.cumsum(np.flip(np.asarray(grad_output), -1), axis=-1), -1)


class ForgetsTheFlip(CumulativeSum):
    def backward(self, grad_output: npt.ArrayLike) -> Array:
        return np.cumsum(np.asarray(grad_output), axis=-1)


def test_passes_a_correct_activation() -> None:
    assert gradcheck(Sigmoid(), np.linspace(-4, 4, 12).reshape(3, 4), seed=0) is True


def test_passes_a_layer_that_is_not_elementwise() -> None:
    assert gradcheck(CumulativeSum(), np.arange(12.0).reshape(3, 4), seed=0)


def test_catches_a_wrong_derivative_and_names_the_worst_index() -> None:
    x = np.array([[0.0, 0.5], [3.0, -1.0]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSigmoid(), x, seed=0)
    message = str(info.value)
    assert "WrongSigmoid()" in message
    assert "shape (2, 2)" in message
    assert "4 of 4 elements mismatch" in message
    # the worst relative mistake is where f = 0.95 and f' = 0.045: at x = 3, index (1, 0)
    assert "worst at index (1, 0)" in message
    assert "numerical" in message
    assert "analytical" in message


def test_catches_a_wrong_vector_jacobian_product() -> None:
    with pytest.raises(GradcheckError, match=r"elements mismatch; worst at index \(\d, \d\)"):
        gradcheck(ForgetsTheFlip(), np.ones((2, 3)), seed=0)


def test_returns_false_instead_of_raising_when_asked() -> None:
    assert gradcheck(WrongSigmoid(), np.ones(3), raise_exception=False, seed=0) is False


def test_nan_gradient_is_a_mismatch() -> None:
    class NanDerivative(WrongSigmoid):
        def derivative(self, x: Array | None, y: Array | None) -> Array:
            assert y is not None
            return np.full(y.shape, np.nan)

    with pytest.raises(GradcheckError, match="1 of 1 elements"):
        gradcheck(NanDerivative(), np.zeros(1), seed=0)


def test_does_not_modify_its_input() -> None:
    x = np.linspace(-1, 1, 5).astype(np.float32)
    before = x.copy()
    gradcheck(Sigmoid(), x, seed=0)
    np.testing.assert_array_equal(x, before)


def test_passes_on_empty_input() -> None:
    assert gradcheck(Sigmoid(), np.zeros((0, 3)), seed=0)


def test_wrong_gradient_shape_is_reported() -> None:
    class Flattens(CumulativeSum):
        def backward(self, grad_output: npt.ArrayLike) -> Array:
            return np.asarray(grad_output).ravel()

    with pytest.raises(GradcheckError, match=r"shape \(6,\) for an input of shape \(2, 3\)"):
        gradcheck(Flattens(), np.ones((2, 3)), seed=0)
