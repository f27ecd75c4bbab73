"""Losses against closed forms and finite differences, stable at extreme inputs."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from tinygrad_act import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Layer, MSELoss, gradcheck
from tinygrad_act.base import Array, as_float_array, check_grad_output
from tinygrad_act.losses import Loss
from tinygrad_act.testing import parametrize_with_checks


class LossLayer(Layer):
    """A loss with a target made from the input's shape, as a Layer with a 0-d output,
    so that gradcheck and the testing kit can check it."""

    def __init__(self, loss: Loss, target: Callable[[tuple[int, ...]], npt.NDArray[Any]]) -> None:
        self.loss, self.target = loss, target
        self._dtype: Any = None

    def forward(self, x: npt.ArrayLike) -> Array:
        p = as_float_array(x, repr(self))
        self._dtype = p.dtype
        with np.errstate(over="ignore"):  # a float16 loss can overflow to inf
            return np.asarray(self.loss(p, self.target(p.shape)), dtype=p.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        g = check_grad_output(self, grad_output, None if self._dtype is None else ())
        grad = self.loss.backward()  # the library's part: it must not warn
        with np.errstate(all="ignore"):  # this adapter's chain rule: inf * 0 is NaN, quietly
            return (g * grad).astype(self._dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.loss!r})"


def halves(shape: tuple[int, ...]) -> Array:
    return np.full(shape, 0.5)


def alternating(shape: tuple[int, ...]) -> Array:
    return (np.arange(int(np.prod(shape))).reshape(shape) % 2).astype(np.float64)


def labels(shape: tuple[int, ...]) -> npt.NDArray[Any]:
    return np.arange(int(np.prod(shape[:-1]))).reshape(shape[:-1]) % shape[-1]


class ProbabilityLayer(LossLayer):
    """BCELoss wants probabilities: squash the input into (0.05, 0.95) first."""

    def forward(self, x: npt.ArrayLike) -> Array:
        p = as_float_array(x, repr(self))
        self._dtype = p.dtype
        squashed = 0.5 + 0.45 * np.tanh(p.astype(np.float64))
        self._squash_grad = 0.45 * (1 - np.tanh(p.astype(np.float64)) ** 2)
        return np.asarray(self.loss(squashed, self.target(p.shape)), dtype=p.dtype)

    def backward(self, grad_output: npt.ArrayLike) -> Array:
        grad = super().backward(grad_output)
        with np.errstate(all="ignore"):
            return (grad * self._squash_grad).astype(self._dtype)


class WithClasses(LossLayer):
    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return (None,)


LAYERS = [
    LossLayer(MSELoss(), halves),
    ProbabilityLayer(BCELoss(), alternating),
    LossLayer(BCEWithLogitsLoss(), alternating),
    WithClasses(CrossEntropyLoss(), labels),
]


def refusals(layer: Layer) -> dict[str, str]:
    if isinstance(layer, ProbabilityLayer):  # tanh(NaN) is NaN, not a probability
        return {"no_warnings": "BCELoss refuses a NaN probability with a ValueError"}
    return {}


@parametrize_with_checks(LAYERS, expected_failed_checks=refusals)
def test_losses_pass_the_testing_kit(layer: Layer, check: Any) -> None:
    check(layer)


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_gradcheck(layer: Layer) -> None:
    x = np.random.default_rng(0).uniform(-3, 3, (4, 3))
    assert gradcheck(layer, x, seed=0)


def test_mse_closed_form() -> None:
    loss = MSELoss()
    assert loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 4.0]])) == 13 / 4
    np.testing.assert_array_equal(loss.backward(), [[0.0, 1.0], [1.5, 0.0]])


def test_bce_closed_form_and_clipping() -> None:
    loss = BCELoss()
    assert loss(np.array([0.8, 0.25]), np.array([1.0, 0.0])) == pytest.approx(
        -(np.log(0.8) + np.log(0.75)) / 2, rel=1e-15
    )
    np.testing.assert_allclose(loss.backward(), [-1 / 0.8 / 2, 1 / 0.75 / 2], rtol=1e-15)
    # probabilities of exactly 0 and 1: clipped to 1e-12, no log(0), finite gradient
    value = loss(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert value == pytest.approx(-np.log(1e-12), rel=1e-5)  # 1 - (1 - 1e-12) rounds
    assert np.isfinite(loss.backward()).all()


def test_bce_with_logits_is_stable_and_exact() -> None:
    loss = BCEWithLogitsLoss()
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0, np.inf, -np.inf])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    value = loss(z, t)
    # log(1 + e^-z) per element: 0, 0, 1000, 1000, log 2, 0, 0
    assert value == pytest.approx((2000 + np.log(2)) / 7, rel=1e-15)
    np.testing.assert_allclose(loss.backward() * 7, [0, 0, 1, -1, -0.5, 0, 0], atol=1e-300)
    # the sigmoid and the loss agree with the probability form where both are exact
    p = 1 / (1 + np.exp(-np.array([0.3, -1.2])))
    assert BCEWithLogitsLoss()(np.array([0.3, -1.2]), np.array([1.0, 0.0])) == pytest.approx(
        BCELoss()(p, np.array([1.0, 0.0])), rel=1e-14
    )


def test_cross_entropy_closed_form_and_large_logits() -> None:
    loss = CrossEntropyLoss()
    logits = np.array([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)]])
    value = loss(logits, np.array([1, 0]))
    assert value == pytest.approx((-np.log(0.75) - np.log(0.25)) / 2, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), [[0.125, -0.125], [-0.375, 0.375]], rtol=1e-12)


def test_float32_predictions_get_float32_gradients() -> None:
    loss = MSELoss()
    loss(np.ones(3, np.float32), np.zeros(3))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("loss", [MSELoss(), BCELoss(), BCEWithLogitsLoss()], ids=repr)
def test_shape_mismatch_names_both_shapes(loss: Loss) -> None:
    with pytest.raises(ValueError, match=r"prediction has shape \(3,\), target has shape \(3, 1\)"):
        loss(np.ones(3), np.ones((3, 1)))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, 1]), r"logits have shape \(2, 3\), labels have shape \(3,\)"),
        (np.array([0.0, 1.0]), "labels must be integers in \\[0, 3\\), got dtype float64"),
        (np.array([0, 3]), r"labels must be in \[0, 3\).*from 0 to 3"),
        (np.array([-1, 0]), r"from -1 to 0"),
    ],
)
def test_cross_entropy_label_errors(labels: Array, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrossEntropyLoss()(np.zeros((2, 3)), labels)


@pytest.mark.parametrize(
    "loss", [MSELoss(), BCELoss(), BCEWithLogitsLoss(), CrossEntropyLoss()], ids=repr
)
def test_backward_before_the_loss_raises(loss: Loss) -> None:
    with pytest.raises(RuntimeError, match="call loss\\(prediction, target\\) first"):
        loss.backward()


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan, np.inf, -np.inf, 1 + 1e-15])
def test_bce_refuses_probabilities_outside_0_1(bad: float) -> None:
    with pytest.raises(
        ValueError, match=r"BCELoss: prediction must be in \[0, 1\], got .* at index \(1,\)"
    ):
        BCELoss()(np.array([0.5, bad]), np.array([1.0, 0.0]))


@pytest.mark.parametrize("loss", [BCELoss(), BCEWithLogitsLoss()], ids=repr)
@pytest.mark.parametrize("bad", [2.0, -1.0, np.nan])
def test_bce_refuses_targets_outside_0_1(loss: Loss, bad: float) -> None:
    with pytest.raises(ValueError, match=r"target must be in \[0, 1\], got .* at index \(0, 1\)"):
        loss(np.full((1, 2), 0.5), np.array([[1.0, bad]]))


def test_bce_accepts_soft_targets_and_the_interval_ends() -> None:
    loss = BCELoss()
    value = loss(np.array([0.0, 1.0, 0.25]), np.array([0.0, 1.0, 0.5]))
    expected = -(0.5 * np.log(0.25) + 0.5 * np.log(0.75)) / 3  # the ends cost ~ 1e-12
    assert value == pytest.approx(expected, rel=1e-9)


def test_bce_float16_gradients_are_finite() -> None:
    loss = BCELoss()
    loss(np.array([0.0, 1.0, 1e-7, 0.5], dtype=np.float16), np.array([1.0, 0.0, 1.0, 1.0]))
    grad = loss.backward()
    assert grad.dtype == np.float16
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(np.sign(grad), [-1, 1, -1, -1])  # towards the target
    assert grad[3] == np.float16(-0.5)  # -1 / 0.5 / 4


SPECIAL = [0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, 65504.0, -1e5, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("loss", [MSELoss(), BCEWithLogitsLoss()], ids=repr)
def test_no_warnings_for_any_prediction_or_target(loss: Loss, dtype: type) -> None:
    values = np.array(SPECIAL)
    with np.errstate(over="ignore"):  # 1e300 is inf in float16 and float32
        prediction: Array = np.repeat(values, len(values)).astype(dtype)
    target = np.tile(values, len(values))
    if isinstance(loss, BCEWithLogitsLoss):
        target = np.tile(np.array([0.0, 1.0, 0.5]), len(prediction))[: len(prediction)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(prediction, target)
        grad = loss.backward()
    assert grad.dtype == dtype
    assert grad.shape == prediction.shape


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_no_warnings_for_bce_and_cross_entropy_at_the_extremes(dtype: type) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = BCELoss()
        bce(np.array([0.0, 1.0, 5e-324, 1.0 - 1e-16]).astype(dtype), np.array([1.0, 0.0, 1.0, 0.0]))
        assert np.isfinite(bce.backward()).all()
        cross_entropy = CrossEntropyLoss()
        with np.errstate(over="ignore"):
            logits: Array = np.array([SPECIAL, SPECIAL[::-1]]).astype(dtype)
        cross_entropy(logits, np.array([0, 8]))
        assert cross_entropy.backward().dtype == dtype


@pytest.mark.parametrize(
    ("loss", "target"),
    [
        (MSELoss(), np.array([[0.5, -1.0, 2.0], [0.0, 1.0, 3.0]])),
        (BCELoss(), np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])),
        (BCEWithLogitsLoss(), np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])),
        (CrossEntropyLoss(), np.array([2, 0])),
    ],
    ids=repr,
)
@pytest.mark.parametrize("dtype", ["f8", "f4", "f2"])
def test_byte_order_never_changes_a_result(loss: Loss, target: Array, dtype: str) -> None:
    prediction = np.array([[0.25, 0.5, 0.125], [0.75, 0.375, 1.0]])
    swapped = ">" if np.little_endian else "<"
    native_value = loss(prediction.astype("=" + dtype), target)
    native_grad = loss.backward()
    value = loss(prediction.astype(swapped + dtype), target.astype(target.dtype.newbyteorder()))
    grad = loss.backward()
    assert value == native_value
    assert grad.dtype == native_grad.dtype
    assert grad.dtype.isnative
    np.testing.assert_array_equal(grad, native_grad)


def test_bce_with_logits_gradient_keeps_its_digits_where_sigma_rounds_to_the_target() -> None:
    """sigma(z) - t for z = 26, 40 and t = 1 is -sigma(-z), about e^-z: a subtraction
    from the rounded sigma(z) loses every digit; the gradient must keep them all."""
    z = np.array([26.0, 40.0, -26.0, -40.0])
    target = np.array([1.0, 1.0, 0.0, 0.0])
    loss = BCEWithLogitsLoss()
    loss(z, target)
    e = np.exp(-np.abs(z))  # closed form: sigma(-|z|) = e / (1 + e)
    expected = np.array([-1.0, -1.0, 1.0, 1.0]) * e / (1 + e) / z.size
    np.testing.assert_allclose(loss.backward(), expected, rtol=4e-16)
