"""The testing kit catches each kind of broken layer with the right check, and passes good ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tinygrad_act import Activation, Layer, Sigmoid
from tinygrad_act.base import Array, check_grad_output
from tinygrad_act.testing import (
    CHECKS,
    check_cache_ownership,
    check_dtypes,
    check_gradient,
    check_layer,
    check_no_mutation,
    check_no_warnings,
    check_repr,
)


class Softsign(Activation):
    """A correct user-defined activation: f(x) = x / (1 + |x|), f'(x) = 1 / (1 + |x|)^2."""

    needs_output = False

    def function(self, x: Array) -> Array:
        clipped: Array = np.clip(x, -1e30, 1e30)  # inf / inf would be NaN; f is +-1 before
        y: Array = clipped / (1 + np.abs(clipped))
        return y

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert x is not None
        return (1 / (1 + np.abs(x))) ** 2  # not 1 / (1 + |x|)^2: that square overflows


class WrongDerivative(Softsign):
    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert x is not None
        return 1 / (1 + np.abs(x))  # forgot the square


class MutatesInput(Softsign):
    def function(self, x: Array) -> Array:
        np.divide(x, 1 + np.abs(x), out=x)  # "saves memory" by writing into the input
        return np.array(x)


class NaiveSigmoid(Activation):
    needs_input = False

    def function(self, x: Array) -> Array:
        return 1 / (1 + np.exp(-x))  # overflows for x < -709

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert y is not None
        return y * (1 - y)


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


def test_a_correct_user_activation_passes_every_check() -> None:
    check_layer(Softsign)
    check_layer(Softsign())


@pytest.mark.parametrize(
    ("layer", "check", "name", "words"),
    [
        (WrongDerivative(), check_gradient, "gradient", "finite differences give"),
        (MutatesInput(), check_no_mutation, "no_mutation", "modified its input"),
        (ChangesDtype(), check_dtypes, "dtypes", "input returned float64"),
        (NaiveSigmoid(), check_no_warnings, "no_warnings", "overflow"),
        (ReadsCallersOutput(), check_cache_ownership, "cache_ownership", "own copy"),
    ],
    ids=["wrong-derivative", "mutates-input", "changes-dtype", "warns", "reads-callers-output"],
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


def test_gradient_failure_reports_the_shrunk_input_in_plain_words() -> None:
    with pytest.raises(AssertionError) as info:
        check_gradient(WrongDerivative)
    message = str(info.value)
    # Hypothesis shrinks to a single element; f' = 1/(1+|x|) vs 1/(1+|x|)^2
    assert "derivative at x = " in message
    assert "by backward; finite differences give" in message
    assert "Smallest failing input found: array(" in message


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
    run = pytester.runpytest("-q", "-p", "no:cacheprovider", "-k", "ReLU")
    run.assert_outcomes(passed=len(CHECKS) - 1, skipped=1)
