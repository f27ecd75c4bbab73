"""The testing kit catches each kind of broken layer with the right check, and passes good ones."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tests.test_gradcheck import LogCosh, LogCoshWrongSecond
from tinygrad_act import (
    Activation,
    Layer,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    testing,
)
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.base import Array, as_float_array, check_grad_output
from tinygrad_act.testing import (
    CHECKS,
    check_backward_before_forward,
    check_cache_ownership,
    check_dtype_accuracy,
    check_dtypes,
    check_gradient,
    check_layer,
    check_no_mutation,
    check_no_warnings,
    check_repr,
    check_second_derivative,
    parametrize_with_checks,
)


class Softsign(Activation):
    """A correct user-defined activation: f(x) = x / (1 + |x|), f'(x) = 1 / (1 + |x|)^2."""

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        d = 1 / (1 + xp.abs(x))
        return x * d, d * d


class WrongDerivative(Softsign):
    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        d = 1 / (1 + xp.abs(x))
        return x * d, d  # forgot the square


class SaturatedSigmoid(Activation):
    """A sigmoid whose derivative is taken as 0 where it "saturates", |x| > 5.5: right on
    [-5.5, 5.5], wrong only in the tails (f'(6) is 0.0025, f'(-20) is 2e-9)."""

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r), xp.where(xp.abs(x) > 5.5, 0.0, r * e * r)


class ClipsFloat32InPlace(Softsign):
    """Clips float32 input in place, "to save a copy"; float64 input is left alone."""

    def forward(self, x: npt.ArrayLike) -> Array:
        if isinstance(x, np.ndarray) and x.dtype == np.float32:
            np.clip(x, -100, 100, out=x)
        return super().forward(x)


class ScalesFloat16GradOutputInPlace(Softsign):
    def backward(self, grad_output: npt.ArrayLike) -> Array:
        if isinstance(grad_output, np.ndarray) and grad_output.dtype == np.float16:
            grad_output *= 2
        return super().backward(grad_output)


class Float16BackwardThreeTimes(Softsign):
    """Right in float32 and float64; float16 backward is 3x too large."""

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        grad = super().backward(grad_output)
        return grad * 3 if grad.dtype == np.float16 else grad


class Float32ForwardOneUlpPerTen(Softsign):
    """float32 forward off by a relative 1e-6, about 8 ulp: too much for rounding once."""

    def forward(self, x: npt.ArrayLike) -> Array:
        y = super().forward(x)
        return y * np.float32(1 + 1e-6) if y.dtype == np.float32 else y


class Tanh64(Layer):
    """A hand-written tanh layer that keeps its cache as ``_cache``, the kit's convention."""

    def __init__(self) -> None:
        self._cache: Array | None = None

    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, "Tanh64")
        y: Array = np.tanh(x.astype(np.float64))
        self._cache = y
        return y.astype(x.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        y = self._cache
        grad = check_grad_output(self, grad_output, None if y is None else y.shape)
        assert y is not None
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, quietly
            return (grad * (1 - y**2)).astype(grad.dtype)


class ReadsCallersOutput(Layer):
    """A hand-written tanh layer that caches the very array it returns."""

    def __init__(self) -> None:
        self._y: Array | None = None

    def forward(self, x: npt.ArrayLike) -> Array:
        y: Array = np.tanh(np.asarray(x))
        self._y = y
        return y

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        y = self._y
        grad = check_grad_output(self, grad_output, None if y is None else y.shape)
        assert y is not None
        return (grad * (1 - y**2)).astype(y.dtype)


class ChangesDtype(ReadsCallersOutput):
    def forward(self, x: npt.ArrayLike) -> Array:
        y: Array = np.tanh(np.asarray(x, dtype=np.float64))  # always float64
        self._y = y
        return np.array(y)


class NaiveSigmoid(Tanh64):
    def forward(self, x: npt.ArrayLike) -> Array:
        x = as_float_array(x, "NaiveSigmoid")
        y: Array = 1 / (1 + np.exp(-x.astype(np.float64)))  # overflows for x < -709
        self._cache = y
        return y.astype(x.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        y = self._cache
        grad = check_grad_output(self, grad_output, None if y is None else y.shape)
        assert y is not None
        return (grad * y * (1 - y)).astype(grad.dtype)


def test_a_correct_user_activation_passes_every_check() -> None:
    check_layer(Softsign)
    check_layer(Softsign())


def test_a_correct_user_layer_passes_every_check() -> None:
    check_layer(Tanh64)


@pytest.mark.parametrize(
    ("layer", "check", "name", "words"),
    [
        (WrongDerivative(), check_gradient, "gradient", "finite differences give"),
        (SaturatedSigmoid(), check_gradient, "gradient", "finite differences give"),
        (
            ClipsFloat32InPlace(),
            check_no_mutation,
            "no_mutation",
            "modified its input x in place (float32)",
        ),
        (
            ScalesFloat16GradOutputInPlace(),
            check_no_mutation,
            "no_mutation",
            "modified grad_output in place (float16)",
        ),
        (
            Float16BackwardThreeTimes(),
            check_dtype_accuracy,
            "dtype_accuracy",
            "backward in float16",
        ),
        (
            Float32ForwardOneUlpPerTen(),
            check_dtype_accuracy,
            "dtype_accuracy",
            "forward in float32",
        ),
        (ChangesDtype(), check_dtypes, "dtypes", "input returned float64"),
        (NaiveSigmoid(), check_no_warnings, "no_warnings", "overflow"),
        (ReadsCallersOutput(), check_cache_ownership, "cache_ownership", "own copy"),
        (
            LogCoshWrongSecond(),
            check_second_derivative,
            "second_derivative",
            "finite differences of f' give",
        ),
    ],
    ids=[
        "wrong-derivative",
        "wrong-only-in-the-tails",
        "mutates-float32-input",
        "mutates-float16-grad-output",
        "float16-backward-3x",
        "float32-forward-8-ulp",
        "changes-dtype",
        "warns",
        "reads-callers-output",
        "wrong-second-derivative",
    ],
)
def test_each_broken_layer_is_caught_by_its_check(
    layer: Layer, check: Any, name: str, words: str
) -> None:
    with pytest.raises(AssertionError) as specific:
        check(layer)
    with pytest.raises(AssertionError) as battery:
        check_layer(layer)
    for message in (str(specific.value), str(battery.value)):
        assert f"check {name!r} failed for {type(layer).__name__}" in message
        assert words in message


def test_gradient_failure_reports_the_input_in_plain_words() -> None:
    with pytest.raises(AssertionError) as info:
        check_gradient(WrongDerivative)
    message = str(info.value)
    # f' = 1/(1+|x|) vs 1/(1+|x|)^2, found at the fixed points first
    assert "derivative at x = " in message
    assert "by backward; finite differences give" in message
    assert "Failing input: array(" in message


class TailWrong(Activation):
    """tanh, with f' doubled beyond x = 5 (about 5% of the kit's random draws land there)."""

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        t = xp.tanh(x)
        d = 1 - t * t
        return t, xp.where(x > 5.0, 2 * d, d)


def test_a_derivative_wrong_beyond_5_is_found_with_a_single_random_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gradient check also looks at fixed points in both tails, so a range where f'
    is wrong is found in every run, not only where the random draws land in it."""
    monkeypatch.setattr(testing, "MAX_EXAMPLES", 1)
    with pytest.raises(AssertionError) as info:
        check_gradient(TailWrong)
    found = re.search(r"derivative at x = (\S+) is", str(info.value))
    assert found is not None
    assert float(found.group(1)) > 5
    check_gradient(Tanh)  # and a right tanh passes the same points


class TanhWrongSecondBelowMinus5(Tanh):
    """tanh, with f'' doubled only below x = -5."""

    @staticmethod
    def derivatives(xp: Any, x: Any) -> tuple[Any, Any]:
        t = xp.tanh(x)
        d = 1 - t * t
        second = -2 * t * d
        return d, xp.where(x < -5.0, 2 * second, second)


def test_a_second_derivative_wrong_below_minus_5_is_found_with_a_single_random_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(testing, "MAX_EXAMPLES", 1)
    with pytest.raises(AssertionError, match=r"f''\(x\) at x = -"):
        check_second_derivative(TanhWrongSecondBelowMinus5)
    check_second_derivative(Tanh)


def test_the_kit_names_a_callable_that_is_not_a_factory() -> None:
    with pytest.raises(TypeError, match=r"tanh.*called with no arguments"):
        check_layer(np.tanh)  # type: ignore[arg-type]


def test_a_derivative_wrong_only_in_the_tails_is_found_in_the_tails() -> None:
    with pytest.raises(AssertionError) as info:
        check_gradient(SaturatedSigmoid)
    found = re.search(r"derivative at x = (\S+) is (\S+) by backward", str(info.value))
    assert found is not None
    x = float(found.group(1))
    assert abs(x) > 5.5
    assert float(found.group(2)) == 0.0
    # and the same inputs pass a correct sigmoid, tails included
    check_gradient(Sigmoid)


def test_dtype_accuracy_allows_the_roundings_of_a_sum_that_cancels() -> None:
    """float32 x = [-266, -435] through Linear, ReLU, Linear, Sigmoid: the second Linear's
    sum cancels, and the gradient is 2.4e-7 from float64's, where moving all of x up or
    down by 4 ulp moves float64's by 8.1e-9 only (found by Hypothesis); moving each
    element its own way covers it."""

    def network() -> Layer:
        first = Linear(2, 5, rng=2)
        assert first.bias is not None
        first.bias.data[...] = np.random.default_rng(0).uniform(0.1, 1, 5)
        return Sequential(first, ReLU(), Linear(5, 1, rng=3), Sigmoid())

    x = np.array([-266.0, -435.0], np.float32)
    testing._agrees_with_float64(network, x, elementwise=False)  # raises if off


def test_float16_failure_shows_both_results_and_the_values() -> None:
    with pytest.raises(AssertionError) as info:
        check_dtype_accuracy(Float16BackwardThreeTimes)
    message = str(info.value)
    assert "backward in float16 is np.float16(" in message
    assert "float64 gives np.float64(" in message
    assert "x = np.float16(" in message
    assert "grad_output = np.float16(" in message
    assert "more than 4 ulp of float16" in message


def test_second_derivative_check_is_skipped_for_layers_without_it() -> None:
    check_second_derivative(Softsign)  # no derivatives: nothing to check, no failure
    check_second_derivative(Tanh64)
    check_second_derivative(LogCosh)


class TestAlreadyRunInstances:
    """The kit works on fresh copies: an instance that has run forward is checked as new,
    and the instance itself keeps its cache."""

    @pytest.mark.parametrize(
        "layer",
        [Sigmoid(), Softmax(axis=0), Sequential(Softmax(), Tanh()), Tanh64(), Softsign()],
        ids=repr,
    )
    def test_backward_before_forward_passes(self, layer: Layer) -> None:
        x = np.linspace(-1, 1, 6).reshape(3, 2)
        layer.forward(x)
        expected = layer.backward(np.ones((3, 2)))
        check_backward_before_forward(layer)
        check_layer(layer)
        np.testing.assert_array_equal(layer.backward(np.ones((3, 2))), expected)

    def test_linear(self) -> None:
        layer = Linear(2, 3, rng=0)
        layer.forward(np.ones((4, 2)))
        check_backward_before_forward(layer)

    def test_a_layer_whose_backward_never_raises_still_fails(self) -> None:
        class NoCheck(Tanh64):
            def backward(self, grad_output: npt.ArrayLike) -> Array:
                return np.zeros(np.shape(grad_output))

        with pytest.raises(AssertionError, match="backward before forward raised no error"):
            check_backward_before_forward(NoCheck)


@pytest.mark.parametrize(
    "not_a_layer",
    [object(), 3.0, "relu", None],
    ids=["object", "float", "str", "None"],
)
def test_something_that_is_not_a_layer_is_a_type_error(not_a_layer: Any) -> None:
    with pytest.raises(TypeError, match="a Layer instance, or a callable that returns a new one"):
        check_layer(not_a_layer)
    with pytest.raises(TypeError, match="a Layer instance"):
        check_gradient(not_a_layer)
    with pytest.raises(TypeError, match="a Layer instance"):
        parametrize_with_checks([not_a_layer])


def test_a_factory_that_does_not_make_a_layer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"returned ndarray: .*, not a Layer"):
        check_layer(lambda: np.zeros(3))  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match="returned object"):
        check_layer(object)  # type: ignore[arg-type]


def test_checks_leave_the_given_instance_alone() -> None:
    layer = Linear(3, 2, rng=0)
    before = copy.deepcopy(layer.state_dict())
    check_layer(layer)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert not layer.weight.grad.any()


def test_expected_failed_checks_are_skipped() -> None:
    check_layer(NaiveSigmoid(), expected_failed_checks={"no_warnings": "naive formula"})


def test_unknown_check_names_are_rejected() -> None:
    with pytest.raises(KeyError, match="unknown checks \\['gradients'\\]"):
        check_layer(Sigmoid(), expected_failed_checks={"gradients": "typo"})


def test_repr_check_rejects_the_default_object_repr() -> None:
    class Anonymous(Softsign):
        __repr__ = object.__repr__

    with pytest.raises(AssertionError, match="check 'repr' failed"):
        check_repr(Anonymous())


def test_parametrize_with_checks_makes_one_test_per_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import numpy as np
        from tinygrad_act import ReLU, Sigmoid
        from tinygrad_act.testing import parametrize_with_checks

        def skips(layer):
            return {"repr": "demo"} if isinstance(layer, ReLU) else {}

        @parametrize_with_checks([Sigmoid(), ReLU], expected_failed_checks=skips)
        def test_builtin(layer, check):
            check(layer)
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "--collect-only")
    ids = [line for line in result.outlines if "::test_builtin[" in line]
    assert len(ids) == 2 * len(CHECKS)
    assert any("test_builtin[Sigmoid()-gradient]" in line for line in ids)
    run = pytester.runpytest("-q", "-p", "no:cacheprovider", "-k", "ReLU and not second")
    run.assert_outcomes(passed=len(CHECKS) - 2, skipped=1)


def test_the_second_derivative_check_is_skipped_with_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from tinygrad_act import Linear
        from tinygrad_act.testing import parametrize_with_checks

        @parametrize_with_checks([Linear(2, 1, rng=0)])
        def test_layer(layer, check):
            check(layer)
        """
    )
    run = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=len(CHECKS) - 1, skipped=1)
    run.stdout.fnmatch_lines(["*Linear does not provide f''*"])


def with_bias(layer: Linear) -> Linear:
    """A nonzero bias keeps ReLU's kink away from the zero input that Hypothesis tries first."""
    assert layer.bias is not None
    layer.bias.data[...] = np.linspace(0.1, 1, layer.out_features)
    return layer


#: The layers that are not activations (every activation goes through the kit in
#: tests/test_base.py, with its variants).
BUILTINS: list[Any] = [
    Linear(3, 2, rng=0),
    Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1), Softmax()),
    Sequential(with_bias(Linear(2, 5, rng=2)), ACTIVATIONS["relu"](), Linear(5, 1, rng=3)),
]


@parametrize_with_checks(BUILTINS)
def test_every_other_builtin_layer_passes_the_kit(layer: Layer, check: Any) -> None:
    check(layer)
