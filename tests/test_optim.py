"""Optimizers against their update rules by hand and against PyTorch; resuming; argument checks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinygrad_act import SGD, Adam, BCEWithLogitsLoss, Linear, Parameter, Sequential, Tanh
from tinygrad_act.datasets import moons
from tinygrad_act.optim import AdamW, Optimizer


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


def test_sgd_nesterov_and_weight_decay_by_hand() -> None:
    p = parameter(2.0, 1.0)
    optimizer = SGD([p], lr=0.5, momentum=0.5, weight_decay=0.25, nesterov=True)
    optimizer.step()  # g = 1 + 0.25 * 2 = 1.5, v = 1.5, step g + 0.5 v = 2.25
    np.testing.assert_array_equal(p.data, [2.0 - 0.5 * 2.25])


def test_adam_first_steps() -> None:
    # with bias correction the first step is lr * g / (|g| + eps): lr in the sign of g
    p = parameter(1.0, 4.0)
    optimizer = Adam([p], lr=0.1, eps=1e-300)
    optimizer.step()
    np.testing.assert_allclose(p.data, [0.9], rtol=1e-15)
    p.grad[...] = -4.0  # m = 0.9*0.4 - 0.4 = -0.04, m_hat = -0.04/0.19; v_hat = 16
    optimizer.step()
    np.testing.assert_allclose(p.data, [0.9 + 0.1 * (0.04 / 0.19) / 4], rtol=1e-14)


def test_adam_weight_decay_is_added_to_the_gradient() -> None:
    # g = 0 + 0.5 * 2 = 1, and Adam's first step is lr in the sign of g
    p = parameter(2.0, 0.0)
    Adam([p], lr=0.1, eps=1e-300, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [1.9], rtol=1e-15)


def test_adamw_decays_the_weights_directly() -> None:
    # p = 2 * (1 - 0.1 * 0.5) = 1.9, then the Adam step of g = 4: -0.1
    p = parameter(2.0, 4.0)
    AdamW([p], lr=0.1, eps=1e-300, weight_decay=0.5).step()
    np.testing.assert_allclose(p.data, [1.8], rtol=1e-15)


def test_zero_grad() -> None:
    params = [parameter(1.0, 3.0), parameter(2.0, -1.0)]
    Adam(params).zero_grad()
    assert all(not p.grad.any() for p in params)


TORCH_CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.3}),
]


@pytest.mark.parametrize(("name", "settings"), TORCH_CASES)
def test_matches_pytorch(name: str, settings: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    ours = Parameter(start)
    theirs = torch.tensor(start, requires_grad=True)
    optimizer = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name]([ours], **settings)
    reference = getattr(torch.optim, name)([theirs], **settings)
    for _ in range(20):
        grad = rng.normal(size=start.shape)
        ours.grad[...] = grad
        theirs.grad = torch.tensor(grad)
        optimizer.step()
        reference.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Many parameters: each updated by its own rule, whatever the optimizer's layout

#: Shapes of different sizes and ranks, a scalar and an empty one among them.
SHAPES: list[tuple[int, ...]] = [(3, 4), (4,), (), (2, 0), (5, 1), (1,), (2, 3, 2)]


class ReferenceParameter:
    """One parameter and its optimizer state, updated by the documented formula."""

    def __init__(self, data: Any) -> None:
        self.data = np.array(data, dtype=np.float64)
        self.m = np.zeros_like(self.data)  # Adam's exp_avg, SGD's momentum_buffer
        self.v = np.zeros_like(self.data)  # Adam's exp_avg_sq

    def adam(self, g: Any, t: int, settings: dict[str, Any], decoupled: bool) -> None:
        lr, (beta1, beta2), eps = settings["lr"], settings["betas"], settings["eps"]
        weight_decay = settings["weight_decay"]
        if decoupled:
            self.data = self.data * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * self.data
        # NOTE: the documented operations in their documented order, so bit for bit
        self.m = beta1 * self.m + (1 - beta1) * g
        self.v = beta2 * self.v + (1 - beta2) * g * g
        m_hat, v_hat = self.m / (1 - beta1**t), self.v / (1 - beta2**t)
        self.data = self.data - lr * m_hat / (np.sqrt(v_hat) + eps)

    def sgd(self, g: Any, settings: dict[str, Any]) -> None:
        lr, momentum, weight_decay = settings["lr"], settings["momentum"], settings["weight_decay"]
        if weight_decay:
            g = g + weight_decay * self.data
        self.m = momentum * self.m + g
        direction = g + momentum * self.m if settings["nesterov"] else self.m
        self.data = self.data - lr * direction


OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}

MANY: list[tuple[str, dict[str, Any]]] = [
    ("Adam", {"lr": 0.02, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
    ("Adam", {"lr": 0.003, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01, "nesterov": True}),
]


def many_parameters(seed: int) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [Parameter(rng.normal(size=shape)) for shape in SHAPES]


def reference_step(
    name: str,
    settings: dict[str, Any],
    reference: list[ReferenceParameter],
    grads: list[Any],
    t: int,
) -> None:
    for r, g in zip(reference, grads, strict=True):
        if name == "SGD":
            r.sgd(g, settings)
        else:
            r.adam(g, t, settings, decoupled=name == "AdamW")


def random_grads(rng: np.random.Generator, params: list[Parameter]) -> list[Any]:
    """A gradient per parameter, its scale varying from parameter to parameter."""
    return [rng.normal(size=p.data.shape) * 10.0 ** rng.integers(-6, 4) for p in params]


@pytest.mark.parametrize(("name", "settings"), MANY, ids=lambda v: str(v))
def test_many_parameters_each_follow_the_formula(name: str, settings: dict[str, Any]) -> None:
    # the optimizers keep NumPy parameters' buffers end to end in one array: each
    # parameter must still follow its own rule, bit for bit, when its arrays are replaced
    rng = np.random.default_rng(1)
    params = many_parameters(0)
    reference = [ReferenceParameter(p.data) for p in params]
    optimizer = OPTIMIZER_CLASSES[name](params, **settings)
    for t in range(1, 13):
        grads = random_grads(rng, params)
        if t == 4:  # new arrays, as a user may assign them
            params[0].data = params[0].data.copy()
            params[4].grad = np.zeros_like(params[4].data)
        if t == 7:  # a float32 gradient is used as it is, in float32 where NumPy computes so
            params[1].grad = np.zeros(params[1].data.shape, np.float32)
        if t == 9:
            params[1].grad = np.zeros_like(params[1].data)
        for p, g in zip(params, grads, strict=True):
            p.grad[...] = g
        grads = [p.grad.copy() for p in params]
        optimizer.step()
        reference_step(name, settings, reference, grads, t)
        state = optimizer.state_dict()
        first = "momentum_buffer" if name == "SGD" else "exp_avg"
        for i, (p, r) in enumerate(zip(params, reference, strict=True)):
            where = f"{name}, step {t}, params[{i}] of shape {SHAPES[i]}"
            np.testing.assert_array_equal(p.data, r.data, err_msg=where)
            np.testing.assert_array_equal(state[f"{first}.{i}"], r.m, err_msg=where)
            if name != "SGD":
                np.testing.assert_array_equal(state[f"exp_avg_sq.{i}"], r.v, err_msg=where)


@pytest.mark.parametrize(("name", "settings"), MANY, ids=lambda v: str(v))
def test_a_replaced_buffer_entry_is_the_one_updated(name: str, settings: dict[str, Any]) -> None:
    # the optimizer's buffers are lists of arrays: replacing an entry is allowed, and
    # the steps that follow update the new entry, to the same bits as before
    rng = np.random.default_rng(2)
    params, twins = many_parameters(0), many_parameters(0)
    make = OPTIMIZER_CLASSES[name]
    optimizer, twin_optimizer = make(params, **settings), make(twins, **settings)
    buffer = type(optimizer).buffers[0]
    for t in range(1, 9):
        if t == 3:
            entries = getattr(twin_optimizer, buffer)
            replaced = entries[2] = entries[2].copy()
        grads = random_grads(rng, params)
        for p, twin, g in zip(params, twins, grads, strict=True):
            p.grad[...] = g
            twin.grad[...] = g
        optimizer.step()
        twin_optimizer.step()
        for i, (p, twin) in enumerate(zip(params, twins, strict=True)):
            np.testing.assert_array_equal(twin.data, p.data, err_msg=f"step {t}, params[{i}]")
    assert getattr(twin_optimizer, buffer)[2] is replaced
    np.testing.assert_array_equal(replaced, getattr(optimizer, buffer)[2])
    for key, value in optimizer.state_dict().items():
        np.testing.assert_array_equal(twin_optimizer.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize(("name", "settings"), MANY, ids=lambda v: str(v))
def test_a_deep_copy_trains_as_the_original_does(name: str, settings: dict[str, Any]) -> None:
    # a deep copy of the parameters and optimizer together copies each buffer view
    # into an array of its own: the copy must still follow the rule, to the bits
    rng = np.random.default_rng(3)
    params = many_parameters(0)
    reference = [ReferenceParameter(p.data) for p in params]
    copied, optimizer = copy.deepcopy((params, OPTIMIZER_CLASSES[name](params, **settings)))
    for t in range(1, 6):
        grads = random_grads(rng, copied)
        for p, g in zip(copied, grads, strict=True):
            p.grad[...] = g
        optimizer.step()
        reference_step(name, settings, reference, grads, t)
        for i, (p, r) in enumerate(zip(copied, reference, strict=True)):
            np.testing.assert_array_equal(p.data, r.data, err_msg=f"step {t}, params[{i}]")
    first = "momentum_buffer" if name == "SGD" else "exp_avg"
    state = optimizer.state_dict()
    for i, r in enumerate(reference):
        np.testing.assert_array_equal(state[f"{first}.{i}"], r.m)


@pytest.mark.parametrize(("name", "settings"), MANY, ids=lambda v: str(v))
def test_parameters_sharing_one_array_are_updated_in_turn(
    name: str, settings: dict[str, Any]
) -> None:
    # two parameters over one array: the second step reads the first one's result
    rng = np.random.default_rng(3)
    params = many_parameters(0)
    params[5].data, params[5].grad = params[1].data, np.zeros_like(params[1].data)
    reference = [ReferenceParameter(p.data) for p in params]
    optimizer = OPTIMIZER_CLASSES[name](params, **settings)
    for t in range(1, 6):
        grads = random_grads(rng, params)
        for p, g in zip(params, grads, strict=True):
            p.grad[...] = g
        optimizer.step()
        for i, (r, g) in enumerate(zip(reference, grads, strict=True)):
            if i == 5:
                r.data = reference[1].data  # the array as the step of params[1] left it
            reference_step(name, settings, [r], [g], t)
        reference[1].data = reference[5].data  # as the step of params[5] left it
        np.testing.assert_array_equal(params[1].data, reference[5].data, err_msg=f"step {t}")
        assert params[5].data is params[1].data


@pytest.mark.parametrize(("name", "settings"), MANY, ids=lambda v: str(v))
def test_a_gradient_of_another_shape_is_an_error(name: str, settings: dict[str, Any]) -> None:
    params = many_parameters(0)
    params[0].grad = np.ones((4, 3))  # as many numbers as the (3, 4) data, in another shape
    optimizer = OPTIMIZER_CLASSES[name](params, **settings)
    with pytest.raises(ValueError, match="broadcast"):
        optimizer.step()


def network(seed: int) -> Sequential:
    return Sequential(Linear(2, 8, rng=seed), Tanh(), Linear(8, 1, rng=seed + 1))


def train_steps(model: Sequential, optimizer: Optimizer, steps: int) -> None:
    x, y = moons(64, seed=0)
    loss_fn = BCEWithLogitsLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model.forward(x)[:, 0], y)
        model.backward(loss_fn.backward()[:, None])
        optimizer.step()


def save(path: Path, state: dict[str, Any]) -> None:
    np.savez(path, **state)


OPTIMIZERS: list[Callable[[list[Parameter]], Optimizer]] = [
    lambda params: SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda params: Adam(params, lr=0.02, weight_decay=1e-3),
    lambda params: AdamW(params, lr=0.02),
]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=["SGD", "Adam", "AdamW"])
def test_a_run_resumes_bit_for_bit(
    make: Callable[[list[Parameter]], Optimizer], tmp_path: Path
) -> None:
    model = network(0)
    optimizer = make(model.parameters())
    train_steps(model, optimizer, 7)
    save(tmp_path / "model.npz", model.state_dict())
    save(tmp_path / "optimizer.npz", optimizer.state_dict())
    train_steps(model, optimizer, 5)

    resumed = network(10)  # other weights, and an optimizer with other settings
    resumed_optimizer = make(resumed.parameters())
    resumed_optimizer.lr *= 3
    with np.load(tmp_path / "model.npz") as state:
        resumed.load_state_dict(dict(state))
    with np.load(tmp_path / "optimizer.npz") as state:
        resumed_optimizer.load_state_dict(dict(state))
    train_steps(resumed, resumed_optimizer, 5)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert optimizer.step_count == resumed_optimizer.step_count == 12


def test_state_dict_names_and_copies() -> None:
    model = network(0)
    optimizer = Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))
    train_steps(model, optimizer, 2)
    state = optimizer.state_dict()
    assert sorted(state) == sorted(
        ["step", "lr", "betas", "eps", "weight_decay"]
        + [f"{name}.{i}" for name in ("exp_avg", "exp_avg_sq") for i in range(4)]
    )
    assert state["step"] == 2
    np.testing.assert_array_equal(state["betas"], [0.8, 0.9])
    state["exp_avg.0"][...] = 123.0  # a copy: the optimizer is unchanged
    assert not np.any(optimizer.state_dict()["exp_avg.0"] == 123.0)


def test_load_state_dict_restores_settings() -> None:
    params = [parameter(0.0, 1.0)]
    source = SGD(params, lr=0.5, momentum=0.25, weight_decay=0.125)
    target = SGD([parameter(0.0, 1.0)], lr=0.1)
    target.load_state_dict(source.state_dict())
    assert (target.lr, target.momentum, target.weight_decay) == (0.5, 0.25, 0.125)


def bad_state(key: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(state: dict[str, Any]) -> dict[str, Any]:
        if value is None:
            del state[key]
        else:
            state[key] = value
        return state

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (bad_state("exp_avg.1", None), r"missing keys \['exp_avg.1'\]"),
        (bad_state("momentum", np.array(0.5)), r"unexpected keys \['momentum'\]"),
        (bad_state("exp_avg_sq.1", np.zeros(3)), r"'exp_avg_sq.1' has shape \(3,\), expected"),
        (bad_state("exp_avg_sq.1", np.array(["a", "b"])), "'exp_avg_sq.1' has dtype <U1"),
        (bad_state("exp_avg_sq.1", np.zeros(2, complex)), "'exp_avg_sq.1' has dtype complex128"),
        (bad_state("lr", np.array(np.inf)), "lr must be finite and positive, got inf"),
        (bad_state("betas", np.array([0.9, 1.0])), r"betas\[1\] must be in \[0, 1\), got 1.0"),
        (bad_state("step", np.array(-1)), "'step' must be an integer >= 0"),
        (bad_state("step", np.array(1.5)), "'step' must be an integer >= 0"),
    ],
)
def test_load_state_dict_checks_everything_before_loading(
    edit: Callable[[dict[str, Any]], dict[str, Any]], message: str
) -> None:
    params = [parameter(1.0, 1.0), Parameter([1.0, 2.0])]
    optimizer = Adam(params, lr=0.1)
    optimizer.step()
    state = {key: value + 1 for key, value in optimizer.state_dict().items()}  # all different
    state["betas"] = np.array([0.5, 0.5])
    before = optimizer.state_dict()
    with pytest.raises(ValueError, match=f"Adam.load_state_dict: .*{message}"):
        optimizer.load_state_dict(edit(state))
    after = optimizer.state_dict()
    for key in before:  # nothing was loaded
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def wrong(value: object) -> Any:
    """A value of the wrong type, passed on as if it were right."""
    return value


def one() -> list[Parameter]:
    return [parameter(0.0, 0.0)]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: SGD(one(), lr=0.0), ValueError, "SGD: lr must be finite and positive, got 0.0"),
        (lambda: SGD(one(), lr=-1), ValueError, "lr must be finite and positive, got -1"),
        (lambda: Adam(one(), lr=np.inf), ValueError, "lr must be finite and positive, got inf"),
        (lambda: Adam(one(), lr=np.nan), ValueError, "lr must be finite and positive, got nan"),
        (lambda: Adam(one(), lr=True), TypeError, "lr must be a real number, got True"),
        (lambda: Adam(one(), lr=wrong("0.1")), TypeError, "lr must be a real number, got '0.1'"),
        (lambda: Adam(one(), eps=0.0), ValueError, "eps must be finite and positive, got 0.0"),
        (lambda: Adam(one(), eps=-1), ValueError, "eps must be finite and positive, got -1"),
        (lambda: Adam(one(), eps=np.inf), ValueError, "eps must be finite and positive, got inf"),
        (lambda: Adam(one(), betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
        (lambda: Adam(one(), betas=(-0.1, 0.9)), ValueError, r"betas\[0\] must be in \[0, 1\)"),
        (lambda: Adam(one(), betas=(0.9, np.nan)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
        (
            lambda: Adam(one(), betas=wrong((0.9,))),
            ValueError,
            r"betas must be a pair .*got \(0.9,\)",
        ),
        (lambda: Adam(one(), betas=wrong(0.9)), ValueError, "betas must be a pair"),
        (lambda: AdamW(one(), weight_decay=-1), ValueError, "weight_decay must be finite and >= 0"),
        (lambda: Adam(one(), weight_decay=np.inf), ValueError, "weight_decay must be finite"),
        (lambda: SGD(one(), lr=0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: SGD(one(), lr=0.1, momentum=-0.5), ValueError, r"momentum must be in \[0, 1\)"),
        (lambda: SGD(one(), lr=0.1, weight_decay=-1), ValueError, "weight_decay must be finite"),
        (lambda: SGD(one(), lr=0.1, nesterov=True), ValueError, "nesterov=True needs a momentum"),
        (
            lambda: SGD(one(), lr=0.1, nesterov=wrong(1)),
            TypeError,
            "nesterov must be True or False",
        ),
        (lambda: Adam([]), ValueError, "Adam: got an empty list of parameters"),
        (
            lambda: Adam(wrong(one()[0])),
            TypeError,
            "params must be a list of Parameter.*got Parameter",
        ),
        (lambda: Adam(wrong(3)), TypeError, "params must be a list of Parameter.*got int"),
        (
            lambda: Adam(wrong([*one(), "w"])),
            TypeError,
            r"Adam: params\[1\] is str, not a Parameter",
        ),
        (lambda: Adam(np.ones(2)), TypeError, r"params\[0\] is float64, not a Parameter"),
        (lambda: Adam(one() * 2), ValueError, r"params\[1\] appears twice"),
    ],
)
def test_invalid_settings_name_the_argument_and_value(
    make: Callable[[], Optimizer], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_repr_shows_the_settings() -> None:
    assert repr(AdamW(one(), lr=0.5)) == (
        "AdamW(lr=0.5, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)"
    )
