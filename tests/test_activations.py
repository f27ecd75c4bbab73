"""Each activation against closed forms, mpmath and its mathematical properties."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_act import (
    ELU,
    GELU,
    SELU,
    Activation,
    Layer,
    LeakyReLU,
    LogSoftmax,
    Parameter,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    _engine,
    get,
    gradcheck,
)
from tinygrad_act.activations import (
    CELU,
    GLU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSigmoid,
    Mish,
    PReLU,
    ReLU6,
    RReLU,
    Softmin,
    Softshrink,
    Softsign,
    Tanhshrink,
    Threshold,
)
from tinygrad_act.testing import check_layer, float_arrays, shapes


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
        # both sides are within a few ulp of the truth: 4 ulp of 0.5 apart at most
        np.testing.assert_allclose(layer.forward(-x), 1 - layer.forward(x), rtol=0, atol=4.5e-16)

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


@pytest.mark.parametrize(
    ("layer", "x", "y", "dydx"),
    [
        (Tanh(), [0.0, np.log(2.0)], [0.0, 0.6], [1.0, 0.64]),
        (ReLU(), [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 1.0]),
        (LeakyReLU(0.1), [-2.0, 0.0, 3.0], [-0.2, 0.0, 3.0], [0.1, 0.1, 1.0]),
        (ELU(alpha=2.0), [-np.log(2.0), 0.0, 3.0], [-1.0, 0.0, 3.0], [1.0, 2.0, 1.0]),
        (SELU(), [0.0, 1.0], [0.0, 1.0507009873554805], [1.7580993408473766, 1.0507009873554805]),
        (Softplus(), [0.0, np.log(3.0)], [np.log(2.0), np.log(4.0)], [0.5, 0.75]),
        (Softplus(beta=2.0), [0.0], [np.log(2.0) / 2], [0.5]),
        (SiLU(), [0.0, np.log(3.0)], [0.0, 0.75 * np.log(3.0)], [0.5, 0.75 + 0.1875 * np.log(3.0)]),
        (
            GELU(),
            [0.0, 1.0],
            [0.0, 0.8413447460685429],
            [0.5, 0.8413447460685429 + 0.24197072451914337],
        ),
        (GELU(approximate="tanh"), [0.0], [0.0], [0.5]),
    ],
    ids=lambda v: repr(v) if isinstance(v, Layer) else "",
)
def test_closed_form_values(
    layer: Layer, x: list[float], y: list[float], dydx: list[float]
) -> None:
    np.testing.assert_allclose(layer.forward(np.array(x)), y, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(layer.backward(np.ones(len(x))), dydx, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize(
    ("layer", "at_zero"),
    [
        (ReLU(), 0.0),
        (LeakyReLU(0.01), 0.01),
        (LeakyReLU(0.3), 0.3),
        (LeakyReLU(1.5), 1.5),
        (LeakyReLU(-0.5), -0.5),
        (ELU(), 1.0),
        (ELU(0.5), 0.5),
    ],
    ids=repr,
)
def test_derivative_at_the_kink_follows_pytorch(layer: Layer, at_zero: float) -> None:
    layer.forward(np.zeros(3))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), at_zero)


def test_selu_derivative_at_zero_is_scale_times_alpha() -> None:
    layer = SELU()
    layer.forward(np.zeros(1))
    assert layer.backward(np.ones(1))[0] == SELU.scale * SELU.alpha


class TestTails:
    """Values that the usual formulas get wrong, from closed forms."""

    def test_softplus_does_not_overflow_and_keeps_the_left_tail(self) -> None:
        layer = Softplus()
        y = layer.forward(np.array([1000.0, -1000.0, -700.0, 40.0]))
        assert y[0] == 1000.0
        assert y[1] == 0.0  # e^-1000 is below the smallest float64
        assert y[2] == pytest.approx(np.exp(-700.0), rel=1e-15)
        assert y[3] == 40.0 + np.exp(-40.0)  # log(1 + e^40) rounded; PyTorch's threshold gives 40

    def test_tanh_derivative_keeps_relative_accuracy(self) -> None:
        layer = Tanh()
        layer.forward(np.array([20.0, -300.0]))
        # 1 - tanh^2 = 4 e^-2|x| / (1 + e^-2|x|)^2
        np.testing.assert_allclose(
            layer.backward(np.ones(2)), [4 * np.exp(-40.0), 4 * np.exp(-600.0)], rtol=1e-15
        )

    def test_elu_derivative_for_very_negative_x(self) -> None:
        layer = ELU()
        layer.forward(np.array([-40.0, -700.0]))
        # y + alpha would be 0 here; the derivative is e^x
        np.testing.assert_allclose(layer.backward(np.ones(2)), np.exp([-40.0, -700.0]), rtol=1e-15)

    def test_silu_both_tails(self) -> None:
        layer = SiLU()
        x = np.array([-50.0, 50.0, -1000.0, 1000.0, -np.inf, np.inf])
        np.testing.assert_allclose(
            layer.forward(x), [-50 * np.exp(-50.0), 50.0, 0.0, 1000.0, 0.0, np.inf], rtol=1e-14
        )
        grad = layer.backward(np.ones(6))
        np.testing.assert_allclose(grad[:2], [-49 * np.exp(-50.0), 1.0], rtol=1e-13)
        np.testing.assert_array_equal(grad[2:], [0.0, 1.0, 0.0, 1.0])

    def test_gelu_left_tail_against_the_asymptotic_series(self) -> None:
        # Phi(x) = phi(x) / |x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + ...) for x -> -inf
        x = -30.0
        phi = np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
        series = phi / -x * (1 - 1 / x**2 + 3 / x**4 - 15 / x**6 + 105 / x**8)
        assert GELU().forward(np.array([x]))[0] == pytest.approx(x * series, rel=1e-13)


class TestGELU:
    def test_rejects_unknown_approximation(self) -> None:
        with pytest.raises(ValueError, match="'none' or 'tanh', got 'erf'"):
            GELU(approximate="erf")  # type: ignore[arg-type]

    def test_exact_gelu_needs_no_scipy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """erfc is built from exp and arithmetic on every engine: x Phi(x) at x = 1 and
        x = -3 (0.8413447460685429 and -0.0040496940948902835, rounded from mpmath)."""
        monkeypatch.setitem(sys.modules, "scipy", None)
        monkeypatch.setitem(sys.modules, "scipy.special", None)
        with _engine.using("numpy"):
            y = GELU().forward(np.array([1.0, -3.0]))
        np.testing.assert_allclose(y, [0.8413447460685429, -0.0040496940948902835], rtol=5e-16)

    def test_tanh_approximation_is_close_to_exact(self) -> None:
        x = np.linspace(-6, 6, 101)
        np.testing.assert_allclose(GELU(approximate="tanh")(x), GELU()(x), atol=5e-4)


class TestSoftmax:
    def test_large_logits_give_the_exact_result_without_warning(self) -> None:
        expected = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
        np.testing.assert_allclose(
            Softmax()(np.array([1000.0, 1001.0, 1002.0])), expected, rtol=1e-15
        )

    @given(
        x=float_arrays(
            np.float64, shape=shapes(min_dims=1, min_side=1), min_value=-50, max_value=50
        )
    )
    def test_sums_to_one_along_any_axis(self, x: np.ndarray[Any, Any]) -> None:
        for axis in range(-x.ndim, x.ndim):
            y = Softmax(axis=axis)(x)
            assert np.all(y >= 0)
            np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)

    @given(
        x=float_arrays(
            np.float64, shape=shapes(min_dims=1, min_side=1), min_value=-50, max_value=50
        ),
        c=st.floats(-100, 100),
    )
    def test_invariant_to_adding_a_constant(self, x: np.ndarray[Any, Any], c: float) -> None:
        np.testing.assert_allclose(Softmax()(x + c), Softmax()(x), rtol=1e-12, atol=1e-300)

    @given(
        x=float_arrays(
            np.float64,
            shape=shapes(min_dims=1, max_dims=3, min_side=1),
            min_value=-10,
            max_value=10,
        )
    )
    def test_jacobian_is_symmetric_with_rows_summing_to_zero(self, x: np.ndarray[Any, Any]) -> None:
        jacobian = Softmax().jacobian(x)
        assert jacobian.shape == (*x.shape, x.shape[-1])
        np.testing.assert_allclose(jacobian, np.swapaxes(jacobian, -1, -2), atol=1e-16)
        np.testing.assert_allclose(jacobian.sum(axis=-1), 0.0, atol=1e-15)

    @given(
        x=float_arrays(np.float64, shape=(3, 4, 5), min_value=-10, max_value=10),
        g=float_arrays(np.float64, shape=(3, 4, 5), min_value=-1, max_value=1),
        axis=st.integers(-3, 2),
    )
    def test_backward_equals_jacobian_transpose_times_g(
        self, x: np.ndarray[Any, Any], g: np.ndarray[Any, Any], axis: int
    ) -> None:
        layer = Softmax(axis=axis)
        layer.forward(x)
        jacobian = layer.jacobian(x)  # (..., n, n) with axis last
        expected = np.einsum("...ij,...i->...j", jacobian, np.moveaxis(g, axis, -1))
        np.testing.assert_allclose(layer.backward(g), np.moveaxis(expected, -1, axis), atol=1e-15)

    def test_jacobian_closed_form(self) -> None:
        y = np.array([0.25, 0.25, 0.5])
        x = np.log(y)
        expected = np.diag(y) - np.outer(y, y)
        np.testing.assert_allclose(Softmax().jacobian(x), expected, atol=1e-16)

    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    def test_minus_infinity_gets_zero_and_infinity_gives_nan(self, dtype: str) -> None:
        inf, nan = np.inf, np.nan
        # rows without a finite maximum between ordinary ones, which the compiled
        # kernels compute apart
        x = np.array(
            [[-inf, 0, 0], [inf, 0, 1], [0, 0, 0], [nan, 0, 1], [inf, inf, 0], [1, 1, 1]], dtype
        )
        y = Softmax()(x)
        third = np.float64(1) / 3
        expected = [[0, 0.5, 0.5], [nan, 0, 0], [third] * 3, [nan] * 3, [nan, nan, 0], [third] * 3]
        np.testing.assert_array_equal(y, np.array(expected, dtype))


class TestLogSoftmax:
    @given(
        x=float_arrays(
            np.float64, shape=shapes(min_dims=1, min_side=1), min_value=-50, max_value=50
        )
    )
    def test_exp_is_softmax(self, x: np.ndarray[Any, Any]) -> None:
        np.testing.assert_allclose(np.exp(LogSoftmax()(x)), Softmax()(x), rtol=1e-13, atol=1e-300)

    def test_dominant_entry_keeps_its_tiny_log_probability(self) -> None:
        # log(1 / (1 + e^-40)) = -log1p(e^-40); a plain log(sum) rounds it to 0
        y = LogSoftmax()(np.array([0.0, -40.0, -40.0]))
        np.testing.assert_allclose(y, [-np.log1p(2 * np.exp(-40.0)), -40.0, -40.0], rtol=1e-15)

    def test_ties_at_the_maximum(self) -> None:
        np.testing.assert_allclose(LogSoftmax()(np.array([3.0, 3.0])), -np.log(2.0), rtol=1e-15)

    @given(
        x=float_arrays(np.float64, shape=(4, 6), min_value=-10, max_value=10),
        g=float_arrays(np.float64, shape=(4, 6), min_value=-1, max_value=1),
    )
    def test_backward_is_g_minus_softmax_times_sum_g(
        self, x: np.ndarray[Any, Any], g: np.ndarray[Any, Any]
    ) -> None:
        layer = LogSoftmax(axis=0)
        layer.forward(x)
        softmax = np.exp(x) / np.exp(x).sum(axis=0)
        np.testing.assert_allclose(layer.backward(g), g - softmax * g.sum(axis=0), atol=1e-14)


class TestGet:
    @pytest.mark.parametrize("name", ["relu", "ReLU", "RELU", "swish", "leaky_relu", "LogSoftmax"])
    def test_case_insensitive_with_aliases(self, name: str) -> None:
        assert isinstance(get(name), Layer)

    def test_passes_keyword_arguments(self) -> None:
        assert get("elu", alpha=0.5).alpha == 0.5  # type: ignore[attr-defined]

    def test_unknown_name_lists_the_valid_ones(self) -> None:
        with pytest.raises(
            KeyError, match="unknown activation 'rleu'; valid names: celu, elu, gelu"
        ):
            get("rleu")


# ---------------------------------------------------------------------------
# The rest of torch.nn's activations


def torch_like(layer: Layer, x: list[float]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    y = layer.forward(np.array(x))
    return y, layer.backward(np.ones(len(x)))


#: (layer, x, f(x), f'(x)) as PyTorch 2.13 gives them in float64, signed zeros included
#: (where PyTorch gives NaN at an infinity, we give the limit: not listed here)
PYTORCH_VALUES = [
    # LogSigmoid(inf): -0.0, the sign of the exact value near it (PyTorch: 0.0)
    (LogSigmoid(), [-0.0, 0.0, np.inf, -np.inf], [-np.log(2), -np.log(2), -0.0, -np.inf],
     [0.5, 0.5, 0.0, 1.0]),
    (Softsign(), [-0.0, 0.0], [-0.0, 0.0], [1.0, 1.0]),
    (Mish(), [-0.0, 0.0, np.inf], [-0.0, 0.0, np.inf], [0.6, 0.6, 1.0]),
    (Hardtanh(), [-0.0, 0.0, -1.0, 1.0, np.inf, -np.inf], [-0.0, 0.0, -1.0, 1.0, 1.0, -1.0],
     [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
    (ReLU6(), [-0.0, 0.0, 6.0, -1.0, np.inf], [-0.0, 0.0, 6.0, 0.0, 6.0], [0, 0, 0, 0, 0]),
    (Hardsigmoid(), [-0.0, 0.0, -3.0, 3.0, -5.0], [0.5, 0.5, 0.0, 1.0, 0.0],
     [1 / 6, 1 / 6, 0.0, 0.0, 0.0]),
    (Hardswish(), [-0.0, 0.0, -3.0, 3.0, -5.0, np.inf], [-0.0, 0.0, -0.0, 3.0, -0.0, np.inf],
     [0.5, 0.5, 0.0, 1.0, 0.0, 1.0]),
    (CELU(), [-0.0, 0.0, -np.inf, np.inf], [-0.0, 0.0, -1.0, np.inf], [1.0, 1.0, 0.0, 1.0]),
    (CELU(2.0), [-0.0, 0.0, -1.0], [-0.0, 0.0, 2 * np.expm1(-0.5)], [1.0, 1.0, np.exp(-0.5)]),
    (Softshrink(), [-0.0, 0.0, -0.3, 0.3, -0.5, 0.5, -np.inf],
     [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -np.inf], [0, 0, 0, 0, 0, 0, 1]),
    (Hardshrink(), [-0.0, 0.0, -0.3, 0.3, -0.5, 0.5, np.inf],
     [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.inf], [0, 0, 0, 0, 0, 0, 1]),
    (Tanhshrink(), [-0.0, 0.0, np.inf, -np.inf, 1e-200], [0.0, 0.0, np.inf, -np.inf, 0.0],
     [0.0, 0.0, 1.0, 1.0, 0.0]),
    (Threshold(0.0, -0.0), [-0.0, 0.0, 1.0, -np.inf], [-0.0, -0.0, 1.0, -0.0], [0, 0, 1, 0]),
    (Threshold(1.0, 5.0), [-0.0, 0.0, 1.0, 2.0], [5.0, 5.0, 5.0, 2.0], [0, 0, 0, 1]),
    (PReLU(), [-0.0, 0.0, -1.0], [-0.0, 0.0, -0.25], [0.25, 0.25, 0.25]),
    (RReLU().eval(), [-0.0, 0.0, -1.0], [-0.0, 0.0, -11 / 48], [11 / 48, 11 / 48, 11 / 48]),
]  # fmt: skip


@pytest.mark.parametrize(("layer", "x", "y", "dydx"), PYTORCH_VALUES, ids=repr)
def test_values_kinks_and_signed_zeros_follow_pytorch(
    layer: Layer, x: list[float], y: list[float], dydx: list[float]
) -> None:
    got_y, got_dydx = torch_like(layer, x)
    np.testing.assert_allclose(got_y, y, rtol=1e-15)
    np.testing.assert_array_equal(np.signbit(got_y), np.signbit(y))
    np.testing.assert_allclose(got_dydx, dydx, rtol=1e-15)


@pytest.mark.parametrize(
    "layer",
    [Sigmoid(), Tanh(), ReLU(), LeakyReLU(), ELU(), SELU(), Softplus(), SiLU(), GELU(),
     GELU(approximate="tanh")],
    ids=repr,
)  # fmt: skip
def test_signed_zero_of_the_first_activations_follows_pytorch(layer: Layer) -> None:
    # PyTorch: f(-0.0) = -0.0 for all of these but the sigmoid and softplus (0.5, log 2)
    y = layer.forward(np.array([-0.0, 0.0]))
    positive = isinstance(layer, Sigmoid | Softplus)
    assert list(np.signbit(y)) == [not positive, False]


@pytest.mark.parametrize(
    ("layer", "x", "d2"),
    [
        (Sigmoid(), [-0.0, 0.0], [0.0, 0.0]),
        (ELU(0.5), [-0.0, 0.0, -1.0], [0.0, 0.0, 0.5 * np.exp(-1.0)]),
        (SELU(), [0.0, 1.0], [0.0, 0.0]),
        (CELU(2.0), [-0.0, 0.0, -1.0], [0.0, 0.0, 0.5 * np.exp(-0.5)]),
        (Softplus(), [0.0], [0.25]),
        (GELU(), [0.0], [np.sqrt(2 / np.pi)]),
        (GELU(approximate="tanh"), [0.0], [np.sqrt(2 / np.pi)]),
        (Mish(), [0.0], [0.64]),
        (Hardswish(), [-3.0, 0.0, 3.0], [0.0, 1 / 3, 0.0]),
        (Softsign(), [0.0, 1.0], [0.0, -0.25]),
    ],
    ids=lambda v: repr(v) if isinstance(v, Layer) else "",
)
def test_second_derivative_closed_forms_and_pytorch_values_at_kinks(
    layer: Activation, x: list[float], d2: list[float]
) -> None:
    np.testing.assert_allclose(layer.second_derivative(np.array(x)), d2, rtol=1e-15)


class TestNewActivations:
    def test_log_sigmoid_is_accurate_at_plus_minus_1000(self) -> None:
        y = LogSigmoid()(np.array([-1000.0, 1000.0, 40.0, -40.0]))
        np.testing.assert_allclose(y, [-1000.0, -0.0, -np.exp(-40.0), -40.0 - np.exp(-40.0)])
        assert y[1] == 0.0

    def test_tanhshrink_keeps_relative_accuracy_near_zero(self) -> None:
        x = np.array([1e-100, 1e-8, 1e-3])
        # x - tanh x = x^3/3 - 2x^5/15 + 17x^7/315 - ...
        series = x**3 / 3 - 2 * x**5 / 15 + 17 * x**7 / 315
        np.testing.assert_allclose(Tanhshrink()(x), series, rtol=1e-15)

    def test_mish_tails(self) -> None:
        layer = Mish()
        y = layer.forward(np.array([-40.0, 40.0, -np.inf]))
        np.testing.assert_allclose(y[:2], [-40 * np.exp(-40.0), 40.0], rtol=1e-14)
        assert y[2] == 0.0
        # f' ~ (1 + x) e^x on the left
        np.testing.assert_allclose(layer.backward(np.ones(3))[0], -39 * np.exp(-40.0), rtol=1e-13)

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda: Hardtanh(1.0, 1.0), r"min_val must be less than max_val, got min_val=1\.0"),
            (lambda: Hardtanh(np.nan, 1.0), "min_val must be finite"),
            (lambda: Softshrink(-0.5), r"Softshrink: lambd must be >= 0, got -0\.5"),
            (lambda: Hardshrink(-1), "Hardshrink: lambd must be >= 0, got -1"),
            (lambda: CELU(0.0), r"CELU: alpha must not be 0"),
            (lambda: RReLU(0.5, 0.1), r"lower must be <= upper, got lower=0\.5 and upper=0\.1"),
            (lambda: PReLU(0), "num_parameters must be a positive int, got 0"),
            (lambda: PReLU(init=np.inf), "init must be finite"),
            (lambda: Threshold("a", 1.0), "threshold must be a real number"),  # type: ignore[arg-type]
        ],
    )
    def test_invalid_arguments_name_the_argument_and_value(self, make: Any, message: str) -> None:
        with pytest.raises((ValueError, TypeError), match=message):
            make()

    def test_get_reaches_every_new_one(self) -> None:
        names = [
            "logsigmoid", "log_sigmoid", "softsign", "mish", "hardtanh", "relu6", "hardsigmoid",
            "hardswish", "celu", "softshrink", "hardshrink", "tanhshrink", "threshold", "softmin",
            "prelu", "rrelu", "glu",
        ]  # fmt: skip
        for name in names:
            assert isinstance(get(name), Layer)
        assert get("Hardtanh", min_val=-2.0).min_val == -2.0  # type: ignore[attr-defined]


class TestPReLU:
    def test_per_channel_slopes_along_axis_1(self) -> None:
        layer = PReLU(num_parameters=3, init=0.1)
        layer.weight.data[...] = [0.1, 0.2, 0.3]
        x = -np.ones((2, 3, 4))
        y = layer.forward(x)
        np.testing.assert_array_equal(y[0, :, 0], [-0.1, -0.2, -0.3])
        grad = np.random.default_rng(0).standard_normal(x.shape)
        np.testing.assert_allclose(layer.backward(grad)[:, 1], 0.2 * grad[:, 1])
        # dL/da_c = sum over channel c of grad * x where x <= 0
        np.testing.assert_allclose(layer.weight.grad, -grad.sum(axis=(0, 2)))

    def test_wrong_channel_count_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match=r"3 channels along axis 1, got shape \(2, 4\)"):
            PReLU(3).forward(np.ones((2, 4)))

    def test_gradcheck_input_and_slopes(self) -> None:
        x = np.random.default_rng(1).uniform(-2, 2, (3, 2, 5))
        x[np.abs(x) < 1e-3] = 0.5
        assert gradcheck(PReLU(2, init=0.3), x, seed=0)
        assert gradcheck(PReLU(), x, seed=1)

    def test_weight_is_in_state_dict_and_trained(self) -> None:
        layer = PReLU()
        assert list(layer.state_dict()) == ["weight"]
        layer.load_state_dict({"weight": np.array([0.5])})
        np.testing.assert_array_equal(layer.forward(np.array([-2.0])), [-1.0])
        layer.backward(np.ones(1))
        np.testing.assert_array_equal(layer.weight.grad, [-2.0])

    def test_backward_uses_the_slope_of_its_forward(self) -> None:
        layer = PReLU()
        layer.forward(np.array([-1.0]))
        layer.weight.data[...] = 0.9  # an optimizer step between forward and backward
        np.testing.assert_array_equal(layer.backward(np.ones(1)), [0.25])


class TestRReLU:
    def test_training_slopes_are_seeded_uniform_and_used_by_backward(self) -> None:
        layer = RReLU(0.1, 0.3, rng=0)
        assert layer.training
        x = -np.ones(10000)
        y = layer.forward(x)
        slopes = -y
        assert slopes.min() >= 0.1
        assert slopes.max() <= 0.3
        assert abs(slopes.mean() - 0.2) < 0.005
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)), slopes)
        np.testing.assert_array_equal(RReLU(0.1, 0.3, rng=0).forward(x), y)

    def test_positive_inputs_pass_through(self) -> None:
        np.testing.assert_array_equal(RReLU(rng=0).forward(np.array([2.0, 3.0])), [2.0, 3.0])

    def test_eval_uses_the_mean_slope_and_train_switches_back(self) -> None:
        layer = RReLU(0.1, 0.3, rng=0).eval()
        assert not layer.training
        np.testing.assert_allclose(layer.forward(np.array([-1.0, 2.0])), [-0.2, 2.0])
        assert layer.train().training

    def test_gradcheck_in_inference(self) -> None:
        x = np.random.default_rng(2).uniform(-2, 2, (4, 3))
        assert gradcheck(RReLU().eval(), x, seed=0)


class TestGLU:
    def test_closed_form(self) -> None:
        x = np.array([[1.0, 2.0, 0.0, np.log(3.0)]])
        np.testing.assert_allclose(GLU()(x), [[0.5, 1.5]], rtol=1e-15)
        np.testing.assert_allclose(GLU(axis=0)(x.reshape(2, 2)), [[0.5, 1.5]], rtol=1e-15)

    def test_gradcheck_along_each_axis(self) -> None:
        x = np.random.default_rng(3).uniform(-3, 3, (2, 4, 6))
        for axis in (0, 1, -1):
            assert gradcheck(GLU(axis=axis), x, seed=0)

    def test_odd_size_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match=r"must be even, got shape \(2, 3\)"):
            GLU().forward(np.ones((2, 3)))

    def test_dim_is_accepted(self) -> None:
        assert GLU(dim=0).axis == 0


class TestSoftmin:
    def test_closed_form_and_jacobian(self) -> None:
        x = -np.log(np.array([1.0, 3.0]))
        np.testing.assert_allclose(Softmin()(x), [0.25, 0.75], rtol=1e-15)
        y = np.array([0.25, 0.75])
        np.testing.assert_allclose(Softmin().jacobian(x), -(np.diag(y) - np.outer(y, y)))

    def test_gradcheck(self) -> None:
        x = np.random.default_rng(4).uniform(-3, 3, (3, 5))
        assert gradcheck(Softmin(axis=0), x, seed=0)


# Every activation's defaults go through the kit in tests/test_base.py; here the kit's
# one-call form, check_layer, on other arguments.
@pytest.mark.parametrize(
    "make",
    [lambda: Hardtanh(-0.5, 2.0), lambda: CELU(0.5), lambda: Threshold(0.5, 3.0),
     lambda: Softmin(axis=0), lambda: RReLU(rng=0).eval(), lambda: GLU(axis=-2)],
    ids=lambda make: repr(make()),
)  # fmt: skip
def test_passes_the_testing_kit(make: Any) -> None:
    check_layer(make)


# ---------------------------------------------------------------------------
# Settings changed after the constructor: README, "One forward, one cache"


@pytest.fixture(params=_engine.available_engines())
def each_engine(request: pytest.FixtureRequest) -> Any:
    with _engine.using(request.param):
        yield request.param


@pytest.mark.parametrize(
    ("change", "x", "message"),
    [
        (lambda p: setattr(p, "num_parameters", 4), -np.ones((2, 4, 3)),
         r"num_parameters is 4, but weight has shape \(1,\)"),
        (lambda p: setattr(p, "weight", Parameter(np.full(2, 0.1))), -np.ones((2, 3, 3)),
         r"num_parameters is 3, but weight has shape \(2,\)"),
        (lambda p: setattr(p, "weight", Parameter(np.full((3, 1), 0.1))), -np.ones((2, 3, 3)),
         r"num_parameters is 3, but weight has shape \(3, 1\)"),
        (lambda p: setattr(p, "num_parameters", 0), -np.ones((2, 5)),
         "num_parameters must be a positive int, got 0"),
    ],
)  # fmt: skip
def test_prelu_slopes_that_do_not_match_are_refused_not_read_past(
    change: Any, x: Any, message: str, each_engine: str
) -> None:
    """On the compiled engine, the pass over the channels reads one slope per channel:
    a weight of another size must never reach it."""
    layer = PReLU(num_parameters=3 if x.shape[1] == 3 else 1)
    change(layer)
    with pytest.raises(ValueError, match=message):
        layer.forward(x)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(np.ones(x.shape))


def test_prelu_backward_refuses_a_weight_reshaped_since_forward(each_engine: str) -> None:
    layer = PReLU(num_parameters=2)
    layer.forward(-np.ones((1, 2, 3)))
    layer.weight = Parameter(np.full(3, 0.1))
    with pytest.raises(ValueError, match=r"forward used 2 slopes, but weight has shape \(3,\)"):
        layer.backward(np.ones((1, 2, 3)))


def test_prelu_backward_uses_the_slopes_forward_used(each_engine: str) -> None:
    layer = PReLU(num_parameters=2, init=0.5)
    x = -np.ones((1, 2, 3))
    layer.forward(x)
    layer.num_parameters = 1  # set after forward: backward still has forward's 2 slopes
    np.testing.assert_array_equal(layer.backward(np.ones(x.shape)), np.full(x.shape, 0.5))
    np.testing.assert_array_equal(layer.weight.grad, [-3.0, -3.0])


@pytest.mark.parametrize("make", [Softmax, LogSoftmax, Softmin, GLU])
@pytest.mark.parametrize("axis", [1.5, None, True, "0", -1.0])
def test_an_axis_set_after_the_constructor_is_checked_as_the_constructor_does(
    make: Any, axis: Any, each_engine: str
) -> None:
    layer = make()
    if axis is not None:  # None in the constructor is the default, -1
        with pytest.raises(TypeError, match=rf"{make.__name__}: axis must be an int, got"):
            make(axis=axis)
    layer.axis = axis
    with pytest.raises(TypeError, match=rf"{make.__name__}: axis must be an int, got"):
        layer.forward(np.ones((2, 4)))


@pytest.mark.parametrize("make", [Softmax, LogSoftmax, Softmin, GLU])
def test_backward_refuses_an_axis_changed_since_forward(make: Any, each_engine: str) -> None:
    layer = make(axis=-1)
    x = np.arange(16.0).reshape(4, 4) / 7
    y = layer.forward(x)
    layer.axis = 1  # the same axis of a 2-d array: fine
    first = layer.backward(np.ones(y.shape))
    layer.forward(x)
    layer.axis = 0  # another one: forward's cache does not hold its rows
    with pytest.raises(ValueError, match=r"forward ran along axis 1, but axis is 0 now"):
        layer.backward(np.ones(y.shape))
    layer.axis = 3  # out of range, though 3 % 2 == 1
    with pytest.raises(ValueError, match=r"forward ran along axis 1, but axis is 3 now"):
        layer.backward(np.ones(y.shape))
    layer.axis = 1
    np.testing.assert_array_equal(layer.backward(np.ones(y.shape)), first)


def test_axis_and_dim_together_are_refused_and_dim_is_named() -> None:
    with pytest.raises(TypeError, match="give axis or dim"):
        Softmax(axis=-1, dim=0)
    with pytest.raises(TypeError, match=r"Softmax: dim must be an int, got 1\.5"):
        Softmax(dim=1.5)  # type: ignore[arg-type]
    assert Softmax(dim=0).axis == 0
    assert Softmax().axis == -1
    assert LogSoftmax(None).axis == -1


@pytest.mark.parametrize("approximate", [np.array([1.0, 2.0]), None, "exact", 3])
def test_gelu_approximate_set_after_the_constructor_is_checked(approximate: Any) -> None:
    layer = GELU()
    layer.approximate = approximate
    for call in (layer.forward, layer.second_derivative):
        with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got"):
            call(np.ones(3))
    layer.approximate = np.str_("tanh")  # a str: fine
    np.testing.assert_array_equal(layer.forward(np.ones(3)), GELU("tanh").forward(np.ones(3)))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_logsigmoid_underflows_to_minus_zero_on_both_engines(dtype: str, each_engine: str) -> None:
    """log sigma(x) < 0 for every x: where it underflows, the result is -0.0."""
    big = [20.0, 104.0, 200.0, 746.0, 1e300]
    x = np.array([v for v in big if v <= float(np.finfo(dtype).max)] + [np.inf], dtype)
    y = LogSigmoid().forward(x)
    assert np.all(y <= 0)
    assert np.all(np.signbit(y)), y


@pytest.mark.parametrize(
    "layer", [SiLU(), Mish(), GELU(), GELU(approximate="tanh")], ids=repr
)  # fmt: skip
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_negative_derivative_underflows_to_minus_zero(
    layer: Layer, dtype: str, each_engine: str
) -> None:
    """f and f' < 0 below x = -1 for these: where they underflow, they are -0.0, as x e^x is."""
    x = np.array([-200.0, -800.0, -1e4, -1e300, -np.inf])
    x = x[np.abs(x) <= float(np.finfo(dtype).max)].astype(dtype)
    y = layer.forward(x)
    slope = layer.backward(np.ones_like(y))
    for values in (y, slope):
        assert np.all(values <= 0), (y, slope)
        assert np.all(np.signbit(values)), (y, slope)
