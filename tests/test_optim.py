"""Optimizers against their update rules, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_act import SGD, Adam, Parameter


def parameter(value: float, grad: float) -> Parameter:
    p = Parameter([value])
    p.grad[...] = grad
    return p


def test_sgd_step() -> None:
    p = parameter(1.0, 2.0)
    SGD([p], lr=0.25).step()
    np.testing.assert_array_equal(p.data, [0.5])


def test_sgd_momentum_accumulates_velocity() -> None:
    p = parameter(0.0, 1.0)
    optimizer = SGD([p], lr=0.5, momentum=0.5)
    optimizer.step()  # v = 1, p = -0.5
    optimizer.step()  # v = 0.5 * 1 + 1 = 1.5, p = -0.5 - 0.75
    np.testing.assert_array_equal(p.data, [-1.25])


def test_adam_first_steps() -> None:
    # with bias correction the first step is lr * g / (|g| + eps): lr in the sign of g
    p = parameter(1.0, 4.0)
    optimizer = Adam([p], lr=0.1, eps=0.0)
    optimizer.step()
    np.testing.assert_allclose(p.data, [0.9], rtol=1e-15)
    p.grad[...] = -4.0  # m = 0.9*0.4 - 0.4 = -0.04, m_hat = -0.04/0.19; v_hat = 16
    optimizer.step()
    np.testing.assert_allclose(p.data, [0.9 + 0.1 * (0.04 / 0.19) / 4], rtol=1e-14)


def test_zero_grad() -> None:
    params = [parameter(1.0, 3.0), parameter(2.0, -1.0)]
    Adam(params).zero_grad()
    assert all(not p.grad.any() for p in params)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: SGD(p, lr=0.0), "lr must be positive"),
        (lambda p: SGD(p, lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\)"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas must be in \[0, 1\)"),
        (lambda p: Adam([]), "empty list of parameters"),
    ],
)
def test_invalid_settings(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make([parameter(0.0, 0.0)])  # type: ignore[operator]
