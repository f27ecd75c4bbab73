"""The contract every built-in activation keeps: the testing kit's battery, and more."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tinygrad_act import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    Softmax,
    Softplus,
)
from tinygrad_act.activations import ACTIVATIONS, GLU, RReLU
from tinygrad_act.base import Layer
from tinygrad_act.testing import parametrize_with_checks

#: Every built-in activation with its defaults, and some with other settings.
CASES: dict[str, Callable[[], Layer]] = {
    **{name: cls for name, cls in sorted(ACTIVATIONS.items())},
    "rrelu": lambda: RReLU().eval(),  # random slopes while training; see test_activations
    "leakyrelu(0.2)": lambda: LeakyReLU(negative_slope=0.2),
    "leakyrelu(-0.5)": lambda: LeakyReLU(negative_slope=-0.5),
    "elu(0.5)": lambda: ELU(alpha=0.5),
    "softplus(2)": lambda: Softplus(beta=2.0),
    "gelu(tanh)": lambda: GELU(approximate="tanh"),
    "softmax(0)": lambda: Softmax(axis=0),
    "logsoftmax(1)": lambda: LogSoftmax(axis=1),
}


def needs_axis(layer: Layer) -> bool:
    return isinstance(layer, Softmax | LogSoftmax)


@pytest.fixture(params=list(CASES.values()), ids=list(CASES))
def layer(request: pytest.FixtureRequest) -> Layer:
    factory: Callable[[], Layer] = request.param
    made = factory()
    if isinstance(made, GLU):
        pytest.skip("GLU halves its axis, so these shapes do not fit; the kit checks it")
    return made


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1, 2, 3], np.int64), ([True, False], np.bool_), (np.arange(3, dtype=np.uint8), np.uint8)],
)
def test_bool_and_integers_become_float64(layer: Layer, values: Any, dtype: Any) -> None:
    x = np.atleast_2d(np.asarray(values, dtype=dtype))
    assert layer.forward(x).dtype == np.float64
    assert layer.backward(np.ones(x.shape, dtype=np.int64)).dtype == np.float64


def test_array_likes_are_accepted(layer: Layer) -> None:
    assert layer.forward([[0.5, -1.0], [2.0, 3.0]]).shape == (2, 2)
    assert layer.backward([[1, 1], [1, 1]]).dtype == np.float64
    if not needs_axis(layer):
        y = layer.forward(2.0)
        assert y.shape == ()
        assert y.dtype == np.float64
        assert layer.backward(1.0).shape == ()


@pytest.mark.parametrize("factory", [Softmax, LogSoftmax])
def test_axis_layers_reject_an_input_without_the_axis(factory: Callable[..., Layer]) -> None:
    with pytest.raises(ValueError, match=r"axis=2.*shape \(3, 4\)"):
        factory(axis=2).forward(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"shape \(\)"):
        factory().forward(1.0)


@pytest.mark.parametrize(
    "x",
    [
        np.array([1 + 2j]),
        np.array([1.0], dtype=object),
        np.array(["1.0"]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.zeros(2, dtype=[("a", "f8")]),
        np.array([1.0], dtype=np.longdouble),
    ],
    ids=["complex", "object", "string", "datetime", "structured", "longdouble"],
)
def test_unsupported_dtypes_raise_type_error_naming_the_dtype(layer: Layer, x: Any) -> None:
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        layer.forward(x)


def test_grad_output_of_unsupported_dtype_raises(layer: Layer) -> None:
    layer.forward(np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex128"):
        layer.backward(np.ones((2, 2), dtype=complex))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_no_warning_on_extreme_values(layer: Layer, dtype: Any) -> None:
    # pytest turns every warning into an error (see pyproject.toml)
    info = np.finfo(dtype)
    x = np.array([-1000, 1000, -np.inf, np.inf, np.nan, info.max, -info.max, info.tiny, 0.0])
    x = x.astype(dtype)
    if needs_axis(layer):
        x = x[:, None]  # each row one element; along axis 0 and 1 alike
    y = layer.forward(x)
    grad = layer.backward(np.ones_like(y))
    assert y.shape == grad.shape == x.shape
    if not needs_axis(layer):
        assert np.isnan(y[4])
        assert np.isnan(grad[4])
        assert not np.isnan(np.delete(y, 4)).any()


@pytest.mark.parametrize("size", [11, 100_001], ids=["small", "blocked"])
def test_layer_owns_its_cache(layer: Layer, size: int) -> None:
    grad_output = np.linspace(1, 2, size).reshape(-1, 1)
    fresh = copy.deepcopy(layer)
    fresh.forward(np.linspace(-5, 5, size).reshape(-1, 1))
    expected = fresh.backward(grad_output)

    x = np.linspace(-5, 5, size).reshape(-1, 1)
    y = layer.forward(x)
    x[:] = 123.0  # the caller reuses its buffers in place
    y[:] = -7.0
    np.testing.assert_array_equal(layer.backward(grad_output), expected)


@parametrize_with_checks(CASES.values())
def test_builtin_layers_pass_the_testing_kit(layer: Callable[[], Layer], check: Any) -> None:
    check(layer)
