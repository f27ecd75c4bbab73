"""The contract every built-in activation keeps: shapes, dtypes, errors, warnings, caching."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_act import Activation, gradcheck
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.testing import float_arrays

FACTORIES = sorted(ACTIVATIONS.items())
IDS = [name for name, _ in FACTORIES]


@pytest.fixture(params=[cls for _, cls in FACTORIES], ids=IDS)
def layer(request: pytest.FixtureRequest) -> Activation:
    cls: type[Activation] = request.param
    return cls()


@pytest.mark.parametrize(
    "shape", [(), (0,), (7,), (7, 1), (1, 7), (2, 3, 4), (3, 0, 2), (2, 1, 3, 2)], ids=str
)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_shape_and_dtype_are_kept(layer: Activation, shape: tuple[int, ...], dtype: Any) -> None:
    x = np.random.default_rng(0).uniform(-3, 3, shape).astype(dtype)
    y = layer.forward(x)
    assert isinstance(y, np.ndarray)
    assert (y.shape, y.dtype) == (shape, np.dtype(dtype))
    grad = layer.backward(np.ones(shape, dtype))
    assert isinstance(grad, np.ndarray)
    assert (grad.shape, grad.dtype) == (shape, np.dtype(dtype))


def test_large_arrays_match_small_ones(layer: Activation) -> None:
    # Large inputs run in blocks; each element's result must not depend on it.
    x = np.random.default_rng(1).uniform(-30, 30, 100_003)
    grad_output = np.random.default_rng(2).standard_normal(x.size)
    y, grad = layer.forward(x), layer.backward(grad_output)
    pieces = [slice(0, 7), slice(50_000, 50_011), slice(100_000, None)]
    for piece in pieces:
        np.testing.assert_array_equal(layer.forward(x[piece]), y[piece])
        np.testing.assert_array_equal(layer.backward(grad_output[piece]), grad[piece])


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1, 2, 3], np.int64), ([True, False], np.bool_), (np.arange(3, dtype=np.uint8), np.uint8)],
)
def test_bool_and_integers_become_float64(layer: Activation, values: Any, dtype: Any) -> None:
    x = np.asarray(values, dtype=dtype)
    assert layer.forward(x).dtype == np.float64
    assert layer.backward(np.ones(x.shape, dtype=np.int64)).dtype == np.float64


def test_array_likes_are_accepted(layer: Activation) -> None:
    assert layer.forward([[0.5, -1.0]]).shape == (1, 2)
    y = layer.forward(2.0)
    assert y.shape == ()
    assert y.dtype == np.float64
    assert layer.backward(1.0).shape == ()


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
def test_unsupported_dtypes_raise_type_error_naming_the_dtype(layer: Activation, x: Any) -> None:
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        layer.forward(x)


def test_grad_output_of_unsupported_dtype_raises(layer: Activation) -> None:
    layer.forward(np.ones(2))
    with pytest.raises(TypeError, match="complex128"):
        layer.backward(np.ones(2, dtype=complex))


def test_backward_before_forward_raises(layer: Activation) -> None:
    with pytest.raises(RuntimeError, match=r"forward\(x\) first"):
        layer.backward(np.ones(3))


def test_grad_output_shape_mismatch_names_both_shapes(layer: Activation) -> None:
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        layer.backward(np.ones((3, 2)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_no_warning_on_extreme_values(layer: Activation, dtype: Any) -> None:
    # pytest turns every warning into an error (see pyproject.toml)
    info = np.finfo(dtype)
    x = np.array([-1000, 1000, -np.inf, np.inf, np.nan, info.max, -info.max, info.tiny, 0.0])
    x = x.astype(dtype)
    y = layer.forward(x)
    grad = layer.backward(np.ones_like(y))
    assert np.isnan(y[4])
    assert np.isnan(grad[4])
    assert not np.isnan(np.delete(y, 4)).any()


def test_arguments_are_never_modified(layer: Activation) -> None:
    x = np.linspace(-5, 5, 11)
    grad_output = np.linspace(1, 2, 11)
    x_before, grad_before = x.copy(), grad_output.copy()
    layer.forward(x)
    layer.backward(grad_output)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(grad_output, grad_before)


@pytest.mark.parametrize("size", [11, 100_001], ids=["small", "blocked"])
def test_layer_owns_its_cache(layer: Activation, size: int) -> None:
    grad_output = np.linspace(1, 2, size)
    fresh = type(layer)()
    fresh.forward(np.linspace(-5, 5, size))
    expected = fresh.backward(grad_output)

    x = np.linspace(-5, 5, size)
    y = layer.forward(x)
    x[:] = 123.0  # the caller reuses its buffers in place
    y[:] = -7.0
    np.testing.assert_array_equal(layer.backward(grad_output), expected)


@pytest.mark.parametrize("cls", [cls for _, cls in FACTORIES], ids=IDS)
@given(data=st.data())
def test_gradcheck_passes_on_random_arrays(cls: type[Activation], data: st.DataObject) -> None:
    x = data.draw(float_arrays(np.float64, min_value=-20, max_value=20, avoid=cls.kinks))
    assert gradcheck(cls(), x, seed=0)
