"""The training demo: an MLP built from these layers learns a toy data set.

This is the whole training loop of a hand-built network: forward, loss,
backward, optimizer step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tinygrad_act.activations import get
from tinygrad_act.base import Activation, Array
from tinygrad_act.datasets import DATASETS
from tinygrad_act.layers import Linear, Sequential
from tinygrad_act.losses import BCEWithLogitsLoss
from tinygrad_act.optim import Adam

#: Settings that reach the README's accuracy on each data set, in well under 10 s.
DEFAULTS: dict[str, dict[str, float]] = {
    "xor": {"hidden": 8, "epochs": 300, "lr": 0.05},
    "moons": {"hidden": 16, "epochs": 1000, "lr": 0.02},
    "spirals": {"hidden": 32, "epochs": 2000, "lr": 0.03},
}


@dataclass
class Result:
    """What `train` returns: the model, its data, and how training went."""

    model: Sequential
    x: Array
    y: Array
    losses: list[float] = field(default_factory=list)
    accuracy: float = 0.0
    seconds: float = 0.0


def mlp(activation: str, hidden: int, seed: int) -> Sequential:
    """2 -> hidden -> hidden -> 1, the given activation between the linear layers."""
    rng = np.random.default_rng(seed)
    act = get(activation)
    if not isinstance(act, Activation):
        raise ValueError(f"the demo needs an elementwise activation, not {act!r}")
    relu_like = activation.lower() in ("relu", "leakyrelu", "leaky_relu", "elu", "selu")
    init: Literal["xavier", "he"] = "he" if relu_like else "xavier"
    return Sequential(
        Linear(2, hidden, init=init, rng=rng),
        act,
        Linear(hidden, hidden, init=init, rng=rng),
        get(activation),
        Linear(hidden, 1, rng=rng),
    )


def accuracy(model: Sequential, x: Array, y: Array) -> float:
    """Fraction of points on the right side of the decision boundary (logit 0)."""
    return float(np.mean((model.forward(x)[:, 0] > 0) == (y > 0.5)))


def train(
    dataset: str = "moons",
    *,
    activation: str = "tanh",
    hidden: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float, float], None] | None = None,
    reports: int = 10,
) -> Result:
    """Train an MLP on `dataset` with full-batch Adam and `BCEWithLogitsLoss`.

    `hidden`, `epochs` and `lr` default to `DEFAULTS` for the data set.
    `progress(epoch, epochs, loss, accuracy)` is called `reports` times.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")
    settings = DEFAULTS[dataset]
    hidden = int(settings["hidden"]) if hidden is None else hidden
    epochs = int(settings["epochs"]) if epochs is None else epochs
    lr = settings["lr"] if lr is None else lr

    x, y = DATASETS[dataset](seed=seed)
    model = mlp(activation, hidden, seed)
    loss_fn = BCEWithLogitsLoss()
    optimizer = Adam(model.parameters(), lr=lr)
    result = Result(model, x, y)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        logits = model.forward(x)
        result.losses.append(loss_fn(logits[:, 0], y))
        model.backward(loss_fn.backward()[:, None])
        optimizer.step()
        if progress is not None and (epoch % max(epochs // reports, 1) == 0 or epoch == epochs):
            progress(epoch, epochs, result.losses[-1], accuracy(model, x, y))
    result.seconds = time.perf_counter() - start
    result.accuracy = accuracy(model, x, y)
    return result


def plot(result: Result, path: str) -> None:
    """Save the decision boundary with the data, and the loss curve, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    low, high = result.x.min(axis=0) - 0.3, result.x.max(axis=0) + 0.3
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    logits = result.model.forward(grid)[:, 0].reshape(gx.shape)
    left.contourf(gx, gy, logits > 0, levels=1, colors=["#c6dbef", "#fdd0a2"])
    left.contour(gx, gy, logits, levels=[0], colors="black", linewidths=1)
    left.scatter(*result.x.T, c=result.y, cmap="coolwarm", s=10, edgecolors="none")
    left.set_title(f"decision boundary, training accuracy {result.accuracy:.1%}")
    right.plot(np.arange(1, len(result.losses) + 1), result.losses)
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("loss")
    right.set_title("training loss")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
