"""Optimizers against their update rules by hand and against PyTorch; resuming; argument checks."""

from __future__ import annotations

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
