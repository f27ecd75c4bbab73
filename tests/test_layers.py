"""Linear and Sequential: hand-computed values, gradients, parameters and state dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_act import (
    Linear,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    get,
    gradcheck,
)
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.base import Activation, Array, Layer
from tinygrad_act.testing import float_arrays, parametrize_with_checks


def with_bias(layer: Linear, seed: int) -> Linear:
    """A nonzero bias keeps ReLU's kink away from the zero input that Hypothesis tries first."""
    assert layer.bias is not None
    layer.bias.data[...] = np.random.default_rng(seed).uniform(0.1, 1, layer.out_features)
    return layer


def small_linear() -> Linear:
    layer = Linear(2, 3, rng=0)
    layer.weight.data[...] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert layer.bias is not None
    layer.bias.data[...] = [0.5, -0.5, 1.0]
    return layer


@parametrize_with_checks(
    [
        Linear(3, 2, rng=0),
        Linear(1, 4, bias=False, init="he", rng=1),
        Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1), Softmax()),
        Sequential(with_bias(Linear(2, 5, rng=2), 0), ReLU(), Linear(5, 1, rng=3), Sigmoid()),
    ]
)
def test_layers_pass_the_testing_kit(layer: Layer, check: Any) -> None:
    check(layer)


class TestLinear:
    def test_forward_and_backward_by_hand(self) -> None:
        layer = small_linear()
        x = np.array([[1.0, 1.0], [2.0, 0.0]])
        np.testing.assert_array_equal(layer.forward(x), [[5.5, 6.5, 10.0], [2.5, 3.5, 7.0]])
        g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        # dL/dx = g W^T; dL/dW = x^T g; dL/db = column sums of g
        np.testing.assert_array_equal(layer.backward(g), [[1.0, 4.0], [5.0, 11.0]])
        np.testing.assert_array_equal(layer.weight.grad, [[1.0, 2.0, 2.0], [1.0, 0.0, 0.0]])
        assert layer.bias is not None
        np.testing.assert_array_equal(layer.bias.grad, [1.0, 1.0, 1.0])

    def test_gradients_accumulate_until_zero_grad(self) -> None:
        layer = small_linear()
        x, g = np.ones((1, 2)), np.ones((1, 3))
        for _ in range(3):
            layer.forward(x)
            layer.backward(g)
        np.testing.assert_array_equal(layer.weight.grad, np.full((2, 3), 3.0))
        layer.zero_grad()
        assert not layer.weight.grad.any()

    @given(x=float_arrays(np.float64, shape=st.sampled_from([(3,), (4, 3), (2, 2, 3)])))
    def test_gradcheck_input_and_parameters(self, x: np.ndarray[Any, Any]) -> None:
        assert gradcheck(Linear(3, 2, rng=0), x, seed=0)

    def test_gradcheck_catches_a_wrong_weight_gradient(self) -> None:
        class Forgets(Linear):
            def backward(self, grad_output: Any) -> Any:
                result = super().backward(grad_output)
                self.weight.grad *= 2
                return result

        with pytest.raises(AssertionError, match="parameter 'weight'"):
            gradcheck(Forgets(2, 2, rng=0), np.ones((3, 2)), seed=0)

    def test_seeded_initialisation_is_reproducible(self) -> None:
        a, b = Linear(5, 4, rng=7), Linear(5, 4, rng=7)
        np.testing.assert_array_equal(a.weight.data, b.weight.data)
        assert not np.array_equal(a.weight.data, Linear(5, 4, rng=8).weight.data)

    def test_initialisation_scales(self) -> None:
        xavier = Linear(300, 200, rng=0).weight.data
        assert np.abs(xavier).max() <= np.sqrt(6 / 500)
        assert xavier.std() == pytest.approx(np.sqrt(6 / 500) / np.sqrt(3), rel=0.02)
        he = Linear(300, 200, init="he", rng=0).weight.data
        assert he.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)

    def test_shape_errors_name_the_shapes(self) -> None:
        with pytest.raises(ValueError, match=r"shape \(4, 3\) does not end in in_features = 2"):
            Linear(2, 1).forward(np.ones((4, 3)))
        with pytest.raises(ValueError, match="must be positive"):
            Linear(0, 1)
        with pytest.raises(ValueError, match="'xavier' or 'he'"):
            Linear(1, 1, init="glorot")  # type: ignore[arg-type]

    def test_repr(self) -> None:
        assert repr(Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"
        assert repr(Parameter(np.zeros((2, 3)))) == "Parameter(shape=(2, 3), dtype=float64)"


class TestSequential:
    def test_chains_forward_and_runs_backward_in_reverse(self) -> None:
        first, second = small_linear(), Linear(3, 1, rng=0)
        model = Sequential(first, Tanh(), second)
        x = np.array([[0.1, -0.2]])
        hidden = np.tanh(x @ first.weight.data + first.bias.data)  # type: ignore[union-attr]
        np.testing.assert_allclose(model(x), hidden @ second.weight.data, rtol=1e-15)
        grad = model.backward(np.ones((1, 1)))
        expected = ((1 - hidden**2) * second.weight.data.T) @ first.weight.data.T
        np.testing.assert_allclose(grad, expected, rtol=1e-14)

    def test_parameters_indexing_len_and_repr(self) -> None:
        model = Sequential(Linear(2, 3), ReLU(), Linear(3, 1, bias=False))
        assert len(model) == 3
        assert isinstance(model[1], ReLU)
        assert [type(layer).__name__ for layer in model] == ["Linear", "ReLU", "Linear"]
        assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight"]
        assert len(model.parameters()) == 3
        assert repr(model).splitlines() == [
            "Sequential(",
            "  (0): Linear(in_features=2, out_features=3, bias=True)",
            "  (1): ReLU()",
            "  (2): Linear(in_features=3, out_features=1, bias=False)",
            ")",
        ]

    def test_rejects_what_is_not_a_layer(self) -> None:
        with pytest.raises(TypeError, match="item 1 is ufunc, not a Layer"):
            Sequential(ReLU(), np.tanh)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "name", sorted(n for n, cls in ACTIVATIONS.items() if issubclass(cls, Activation))
    )
    def test_a_whole_mlp_passes_gradcheck_with_each_activation(self, name: str) -> None:
        model = Sequential(
            with_bias(Linear(3, 5, rng=0), 0),
            get(name),
            with_bias(Linear(5, 2, rng=1), 1),
            get(name),
        )
        x = np.random.default_rng(2).uniform(-2, 2, (4, 3))
        assert gradcheck(model, x, seed=0)


class TestStateDict:
    def model(self, seed: int) -> Sequential:
        return Sequential(Linear(2, 4, rng=seed), Tanh(), Linear(4, 1, rng=seed + 1))

    def test_round_trip_through_npz_is_bit_exact(self, tmp_path: Path) -> None:
        source, target = self.model(0), self.model(10)
        state: dict[str, Any] = source.state_dict()
        np.savez(tmp_path / "model.npz", **state)
        with np.load(tmp_path / "model.npz") as saved:
            target.load_state_dict(dict(saved))
        for (name, a), (_, b) in zip(
            source.named_parameters(), target.named_parameters(), strict=True
        ):
            assert a.data.tobytes() == b.data.tobytes(), name
        x = np.random.default_rng(0).standard_normal((5, 2))
        assert source(x).tobytes() == target(x).tobytes()

    def test_state_dict_is_a_copy(self) -> None:
        model = self.model(0)
        state = model.state_dict()
        state["0.weight"][...] = 0
        assert model[0].weight.data.any()  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda d: d.pop("2.bias"), r"missing keys \['2.bias'\]"),
            (lambda d: d.update(extra=np.ones(1)), r"unexpected keys \['extra'\]"),
            (lambda d: d.update({"0.weight": np.ones((4, 2))}), r"'0.weight' has shape \(4, 2\)"),
        ],
        ids=["missing", "unexpected", "shape"],
    )
    def test_bad_dicts_raise_and_leave_the_model_unchanged(self, change: Any, message: str) -> None:
        model = self.model(0)
        before = model.state_dict()
        state = self.model(5).state_dict()
        change(state)
        with pytest.raises(ValueError, match=message):
            model.load_state_dict(state)
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(value, before[name])


class TestLinearArguments:
    @pytest.mark.parametrize(
        ("sizes", "error", "message"),
        [
            ((0, 1), ValueError, "Linear: in_features must be positive, got 0"),
            ((2, -3), ValueError, "Linear: out_features must be positive, got -3"),
            ((2.0, 1), TypeError, "Linear: in_features must be an int, got 2.0"),
            ((2, True), TypeError, "Linear: out_features must be an int, got True"),
            (("2", 1), TypeError, "Linear: in_features must be an int, got '2'"),
            ((np.float64(2), 1), TypeError, r"in_features must be an int, got np.float64\(2.0\)"),
        ],
    )
    def test_sizes_are_positive_ints(
        self, sizes: tuple[Any, Any], error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=message):
            Linear(*sizes)

    def test_numpy_integers_are_sizes(self) -> None:
        layer = Linear(np.int64(3), np.uint8(2), rng=0)
        assert repr(layer) == "Linear(in_features=3, out_features=2, bias=True)"
        assert type(layer.in_features) is int
        assert layer.forward(np.ones((1, 3))).shape == (1, 2)


@pytest.mark.parametrize("dtype", ["f8", "f4", "f2"])
def test_byte_order_never_changes_a_result(dtype: str) -> None:
    def run(order: str) -> tuple[Array, Array, Array]:
        model = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1))
        x = np.random.default_rng(0).normal(size=(5, 3)).astype(order + dtype)
        y = model.forward(x)
        grad = model.backward(np.ones((5, 2), dtype=order + dtype))
        return y, grad, model[0].parameters()[0].grad

    native, swapped = run("="), run(">" if np.little_endian else "<")
    for ours, reference in zip(swapped, native, strict=True):
        assert ours.dtype == reference.dtype  # native byte order, the same dtype
        assert ours.dtype.isnative
        np.testing.assert_array_equal(ours, reference)  # bit for bit


def test_a_big_endian_float64_input_is_computed_in_float64() -> None:
    layer = Linear(1, 1, bias=False, rng=0)
    layer.weight.data[...] = 1 / 3
    x = np.array([[1.0]], dtype=">f8")
    assert layer.forward(x)[0, 0] == 1 / 3  # float32 would round it


class TestSequentialHabits:
    def test_a_slice_is_a_sequential_of_the_same_layers(self) -> None:
        layers = [Linear(2, 3, rng=0), Tanh(), Linear(3, 1, rng=1), Sigmoid()]
        model = Sequential(*layers)
        head = model[:2]
        assert isinstance(head, Sequential)
        assert head.layers == layers[:2]
        assert model[2:].layers == layers[2:]
        assert model[::2].layers == [layers[0], layers[2]]
        x = np.random.default_rng(0).normal(size=(4, 2))
        np.testing.assert_array_equal(model[2:].forward(head.forward(x)), model.forward(x))

    def test_append_adds_a_layer_and_returns_the_model(self) -> None:
        model = Sequential(Linear(2, 3, rng=0))
        assert model.append(ReLU()) is model
        assert [type(layer).__name__ for layer in model] == ["Linear", "ReLU"]
        np.testing.assert_array_equal(
            model.forward(-np.ones((1, 2))), np.maximum(model[0].forward(-np.ones((1, 2))), 0)
        )
        with pytest.raises(TypeError, match=r"Sequential\.append: got ufunc, not a Layer"):
            model.append(np.abs)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("build", "where", "name"),
        [
            (lambda t, lin: Sequential(lin, t, Linear(2, 2), t), "1 and 3", "Tanh()"),
            (lambda t, lin: Sequential(lin, t, lin), "0 and 2", "Linear(in_features=2"),
            (lambda t, lin: Sequential(lin, Sequential(t, Linear(2, 2)), t), "1.0 and 2", "Tanh()"),
            (lambda t, lin: Sequential(lin, t).append(t), "1 and 2", "Tanh()"),
            (lambda t, lin: Sequential(Sequential(lin), Sequential(lin)), "0.0 and 1.0", "Linear"),
        ],
    )
    def test_one_instance_at_two_places_is_an_error(
        self, build: Any, where: str, name: str
    ) -> None:
        with pytest.raises(ValueError, match=r"same .* instance is at positions") as info:
            build(Tanh(), Linear(2, 2, rng=0))
        message = str(info.value)
        assert f"positions {where};" in message
        assert f"the same {name}" in message
        assert "use separate instances" in message

    def test_the_same_sub_network_twice_is_an_error(self) -> None:
        block = Sequential(Linear(2, 2, rng=0), Tanh())
        with pytest.raises(ValueError, match="same Sequential instance is at positions 0 and 1"):
            Sequential(block, block)

    def test_a_sequential_cannot_contain_itself(self) -> None:
        model = Sequential(Linear(2, 2, rng=0))
        with pytest.raises(ValueError, match=r"cannot contain itself \(at position 1\.0\)"):
            model.append(Sequential(model))
        assert len(model) == 1  # unchanged

    def test_a_failed_append_leaves_the_model_unchanged(self) -> None:
        act = Tanh()
        model = Sequential(Linear(2, 2, rng=0), act)
        with pytest.raises(ValueError, match="positions 1 and 2"):
            model.append(act)
        assert model.layers[-1] is act
        assert len(model) == 2


def test_train_and_eval_reach_every_layer_of_a_sequential() -> None:
    """PyTorch's habit: model.eval() for inference, model.train() to go on training."""
    from tinygrad_act import RReLU

    inner = RReLU(rng=0)
    model = Sequential(Linear(2, 2, rng=0), Sequential(inner, Tanh()))
    assert model.eval() is model
    assert inner.training is False
    x = np.array([[-1.0, -2.0]])
    np.testing.assert_array_equal(model.forward(x), model.forward(x))  # the mean slope
    model.train()
    assert inner.training is True


def test_a_forward_that_fails_midway_leaves_no_layer_a_stale_cache() -> None:
    """README, "One forward, one cache": the layers after the one that failed forget
    their last forward too, so backward adds nothing to any gradient."""
    net = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 1, rng=1))
    net.forward(np.ones((2, 3)))
    net.zero_grad()
    with pytest.raises(ValueError, match="in_features = 3"):
        net.forward(np.ones((2, 5)))
    with pytest.raises(RuntimeError, match=r"Linear\.backward called without a forward"):
        net.backward(np.ones((2, 1)))
    for p in net.parameters():
        assert p.grad is None or not np.any(p.grad)
    net.forward(np.ones((2, 3)))  # and it runs again as before
    assert net.backward(np.ones((2, 1))).shape == (2, 3)
