"""gradcheck and gradgradcheck must pass correct layers and catch wrong ones, saying where."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tinygrad_act import (
    Activation,
    GradcheckError,
    Layer,
    Linear,
    Sequential,
    Sigmoid,
    Tanh,
    gradcheck,
)
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.gradcheck import gradgradcheck

Array = np.ndarray[Any, Any]


class WrongSigmoid(Activation):
    """Sigmoid with the classic mistake: f'(x) = f(x) instead of f(x)(1 - f(x))."""

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        y = 1 / (1 + xp.exp(-x))
        return y, y


class LogCosh(Activation):
    r"""A smooth test activation with f'': f = log cosh x, f' = tanh x, f'' = 1 - tanh^2 x.

    With :math:`e = e^{-2|x|}` and :math:`m = 1 - |\tanh x| = 2e / (1 + e)`:
    :math:`f = |x| + \log(1 + e) - \log 2` for :math:`|x| \ge 1` and
    :math:`\tfrac12 \log(1 + \sinh^2 x)` below, where the first form cancels;
    :math:`f'' = m (2 - m)`. Accurate to a few ulp everywhere.
    """

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        a = xp.abs(x)
        small = xp.minimum(a, 1.0)
        sinh = 0.5 * (xp.expm1(small) - xp.expm1(-small))
        near_zero = 0.5 * xp.log1p(sinh * sinh)
        tails = a + xp.log1p(xp.exp(-2 * a)) - 0.6931471805599453
        return xp.where(a < 1, near_zero, tails), xp.tanh(x)

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(-2 * xp.abs(x))
        m = 2 * e / (1 + e)
        return xp.tanh(x), m * (2 - m)


class LogCoshWrongSecond(LogCosh):
    """f'' with a forgotten square: 1 - tanh x instead of 1 - tanh^2 x."""

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        return xp.tanh(x), 1 - xp.tanh(x)


class CumulativeSum(Layer):
    """A layer that is not elementwise: y_i = x_0 + ... + x_i along the last axis."""

    def forward(self, x: npt.ArrayLike) -> Array:
        return np.cumsum(x, axis=-1)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        return np.flip(np.cumsum(np.flip(np.asarray(grad_output), -1), axis=-1), -1)


class ForgetsTheFlip(CumulativeSum):
    def backward(self, grad_output: npt.ArrayLike) -> Array:
        return np.cumsum(np.asarray(grad_output), axis=-1)


class IgnoresGradOutput(Sigmoid):
    """Returns f'(x) whatever grad_output is: right for ones only."""

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        return super().backward(np.ones(np.shape(grad_output)))


def test_passes_a_correct_activation() -> None:
    assert gradcheck(Sigmoid(), np.linspace(-4, 4, 12).reshape(3, 4), seed=0) is True


def test_passes_a_layer_that_is_not_elementwise() -> None:
    assert gradcheck(CumulativeSum(), np.arange(12.0).reshape(3, 4), seed=0)


def test_passes_at_large_inputs() -> None:
    x = np.array([-700.0, -40.0, 40.0, 1000.0])
    assert gradcheck(Sigmoid(), x)
    assert gradcheck(Tanh(), x)


def test_catches_a_wrong_derivative_and_shows_x_and_both_derivatives() -> None:
    x = np.array([[0.0, 0.5], [3.0, -1.0]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(WrongSigmoid(), x, seed=0)
    message = str(info.value)
    assert "WrongSigmoid()" in message
    assert "shape (2, 2)" in message
    assert "4 of 4 elements" in message
    # the worst relative mistake is where f = 0.95 and f' = 0.045: at x = 3, index (1, 0)
    assert "worst at index (1, 0): x = 3," in message
    s = 1 / (1 + np.exp(-3.0))
    computed = re.search(r"f'\(x\) = (\S+) by backward", message)
    estimated = re.search(r", (\S+) by finite differences", message)
    assert computed
    assert estimated
    assert float(computed.group(1)) == pytest.approx(s, rel=1e-7)  # f, as the layer says
    assert float(estimated.group(1)) == pytest.approx(s * (1 - s), rel=1e-7)  # the true f'


def test_catches_a_wrong_vector_jacobian_product_and_says_how_grad_output_was_drawn() -> None:
    with pytest.raises(GradcheckError) as info:
        gradcheck(ForgetsTheFlip(), np.ones((2, 3)), seed=0)
    message = str(info.value)
    assert re.search(r"elements mismatch; worst at index \(\d, \d\)", message)
    assert "sum(grad_output * f(x))" in message
    assert "standard normal, seed=0" in message


def test_catches_a_backward_that_ignores_grad_output() -> None:
    with pytest.raises(GradcheckError, match=r"backward\(grad_output\) is not grad_output \* f'"):
        gradcheck(IgnoresGradOutput(), np.linspace(-2, 2, 5), seed=0)


def test_returns_false_instead_of_raising_when_asked() -> None:
    assert gradcheck(WrongSigmoid(), np.ones(3), raise_exception=False, seed=0) is False


def test_nan_gradient_is_a_mismatch() -> None:
    class NanDerivative(Activation):
        @staticmethod
        def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
            return x, x * np.nan

    with pytest.raises(GradcheckError, match="1 of 1 elements"):
        gradcheck(NanDerivative(), np.zeros(1), seed=0)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("eps", 0.0),
        ("eps", -1e-6),
        ("eps", np.nan),
        ("eps", np.inf),
        ("atol", -1.0),
        ("atol", np.inf),
        ("rtol", -1e-3),
        ("rtol", np.nan),
    ],
)
def test_settings_out_of_range_are_refused_naming_the_argument(setting: str, value: float) -> None:
    settings: dict[str, Any] = {setting: value}
    with pytest.raises(ValueError, match=f"^gradcheck: {setting} must be"):
        gradcheck(Sigmoid(), np.zeros(2), **settings)
    with pytest.raises(ValueError, match=f"^gradgradcheck: {setting} must be"):
        gradgradcheck(LogCosh(), np.zeros(2), **settings)


def test_a_setting_that_is_not_a_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="eps must be a real number"):
        gradcheck(Sigmoid(), np.zeros(2), eps="1e-6")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_is_a_clear_error(bad: float) -> None:
    x = np.array([[0.0, 1.0], [bad, 2.0]])
    with pytest.raises(
        ValueError, match=r"1 non-finite element\(s\), the first \S+ at index \(1, 0\)"
    ):
        gradcheck(Sigmoid(), x)
    with pytest.raises(ValueError, match="non-finite"):
        gradgradcheck(LogCosh(), x)


def test_a_non_layer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="gradcheck checks a Layer, got ufunc"):
        gradcheck(np.tanh, np.zeros(2))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [Sigmoid, lambda: Linear(3, 2, rng=0), lambda: Sequential(Linear(3, 2, rng=0), Tanh())],
    ids=["Sigmoid", "Linear", "Sequential"],
)
def test_afterwards_the_cache_is_that_of_forward_at_x(make: Any) -> None:
    x = np.random.default_rng(0).uniform(-2, 2, (4, 3))
    grad_output = np.random.default_rng(1).standard_normal((4, 3 if make is Sigmoid else 2))
    fresh = make()
    fresh.forward(x)
    expected = fresh.backward(grad_output)
    layer = make()
    gradcheck(layer, x, seed=0)
    np.testing.assert_array_equal(layer.backward(grad_output), expected)


def test_does_not_modify_its_input() -> None:
    x = np.linspace(-1, 1, 5).astype(np.float32)
    before = x.copy()
    gradcheck(Sigmoid(), x, seed=0)
    gradgradcheck(LogCosh(), x)
    np.testing.assert_array_equal(x, before)


def test_passes_on_empty_input() -> None:
    assert gradcheck(Sigmoid(), np.zeros((0, 3)), seed=0)
    assert gradgradcheck(LogCosh(), np.zeros((0, 3)))


def test_wrong_gradient_shape_is_reported() -> None:
    class Flattens(CumulativeSum):
        def backward(self, grad_output: npt.ArrayLike) -> Array:
            return np.asarray(grad_output).ravel()

    with pytest.raises(GradcheckError, match=r"shape \(6,\) for an input of shape \(2, 3\)"):
        gradcheck(Flattens(), np.ones((2, 3)), seed=0)


class TestGradgradcheck:
    def test_passes_a_correct_second_derivative(self) -> None:
        x = np.concatenate([np.linspace(-6, 6, 25), [-30.0, 30.0]])
        assert gradgradcheck(LogCosh(), x) is True

    def test_catches_a_wrong_second_derivative_and_says_where(self) -> None:
        x = np.array([0.0, 1.0, -2.0])
        with pytest.raises(GradcheckError) as info:
            gradgradcheck(LogCoshWrongSecond(), x)
        message = str(info.value)
        assert message.startswith("gradgradcheck failed for LogCoshWrongSecond():")
        assert "2 of 3 elements of x (shape (3,))" in message
        # 1 - tanh(x) against 1 - tanh(x)^2: worst relatively at x = -2 (1.96 against 0.07)
        assert "worst at index (2,): x = -2," in message
        computed = re.search(r"f''\(x\) = (\S+) by second_derivative", message)
        estimated = re.search(r", (\S+) by finite differences of backward", message)
        assert computed
        assert estimated
        assert float(computed.group(1)) == pytest.approx(1 - np.tanh(-2.0), rel=1e-7)
        assert float(estimated.group(1)) == pytest.approx(1 - np.tanh(-2.0) ** 2, rel=1e-6)
        assert "abs error" in message
        assert "rel error" in message

    def test_returns_false_instead_of_raising_when_asked(self) -> None:
        assert gradgradcheck(LogCoshWrongSecond(), np.ones(2), raise_exception=False) is False

    def test_a_layer_without_second_derivative_is_refused(self) -> None:
        with pytest.raises(NotImplementedError, match="WrongSigmoid does not provide f''"):
            gradgradcheck(WrongSigmoid(), np.zeros(2))
        with pytest.raises(TypeError, match="CumulativeSum has no second_derivative"):
            gradgradcheck(CumulativeSum(), np.zeros(2))

    def test_afterwards_the_cache_is_that_of_forward_at_x(self) -> None:
        x = np.linspace(-3, 3, 7)
        layer = LogCosh()
        gradgradcheck(layer, x)
        fresh = LogCosh()
        fresh.forward(x)
        np.testing.assert_array_equal(layer.backward(np.ones(7)), fresh.backward(np.ones(7)))


ELEMENTWISE = [cls for cls in ACTIVATIONS.values() if issubclass(cls, Activation)]


@pytest.mark.parametrize("cls", ELEMENTWISE, ids=lambda cls: cls.__name__)
def test_gradgradcheck_passes_every_builtin_that_provides_second_derivatives(cls: Any) -> None:
    layer = cls()
    if cls.derivatives is None:
        pytest.skip(f"{cls.__name__} does not provide f'' yet")
    x = np.concatenate([np.linspace(-6, 6, 49), [-40.0, -20.0, 20.0, 40.0]])
    for kink in layer.kinks:
        x = x[np.abs(x - kink) > 1e-3]
    assert gradgradcheck(layer, x)


def test_a_random_forward_is_named_as_the_cause() -> None:
    """RReLU draws new slopes in every forward while training: finite differences of it
    mean nothing, and gradcheck says so rather than blame the derivative."""
    x = np.linspace(-2.0, 2.0, 8)
    with pytest.raises(GradcheckError, match=r"RReLU: two forward calls .* call \.eval\(\)"):
        gradcheck(ACTIVATIONS["rrelu"](rng=0), x)  # type: ignore[call-arg]
    assert gradcheck(ACTIVATIONS["rrelu"](rng=0).eval(), x)  # type: ignore[call-arg]
