"""The training demo: an MLP built from these layers learns a toy data set.

This is the whole training loop of a hand-built network: forward, loss,
backward, optimizer step; full-batch or in seeded mini-batches, with the
learning rate decayed to 0 on a cosine.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tinygrad_act import _engine
from tinygrad_act.activations import get
from tinygrad_act.base import Activation, Array
from tinygrad_act.datasets import DATASETS, _check_batch_size, batches
from tinygrad_act.layers import Linear, Sequential
from tinygrad_act.losses import BCEWithLogitsLoss
from tinygrad_act.optim import Adam

if TYPE_CHECKING:  # pathlib takes 3 ms to import, and only annotations need it here
    from pathlib import Path

#: Settings that reach 100% training accuracy on each data set, smoothly (checked on
#: seeds 0 to 9: accuracy never falls by more than 3 points once past 90%), in about 1 s.
DEFAULTS: dict[str, dict[str, float]] = {
    "xor": {"hidden": 8, "epochs": 300, "lr": 0.05},
    "moons": {"hidden": 16, "epochs": 500, "lr": 0.02},
    "spirals": {"hidden": 32, "epochs": 1000, "lr": 0.01},
}
#: Training stops with an error once the loss exceeds its first value this many times.
DIVERGED = 1000.0
#: The first layer's initial weights are this many times Xavier's (see `mlp`).
INPUT_SCALE = 5.0
#: What the compiled engine saves over the NumPy engine in one training step of this
#: network (about 7 us of calls, and 2 ns for each element of each activation layer),
#: and what it costs first in a fresh process, with its loops cached: 0.25 s to import
#: numba and load them. Measured on a 2-core AMD EPYC (AVX-512); see `choose_engine`.
STEP_SAVING, ELEMENT_SAVING, COMPILED_START = 7e-6, 2e-9, 0.25
ENGINE_CHOICES = ("auto", *_engine.ENGINES)


@dataclass
class Result:
    """What `train` returns: the model, its data, and how training went."""

    model: Sequential
    x: Array
    y: Array
    dataset: str = ""
    activation: str = ""
    hidden: int = 0
    losses: list[float] = field(default_factory=list)
    accuracy: float = 0.0
    seconds: float = 0.0
    engine: str = ""


def mlp(activation: str, hidden: int, seed: int) -> Sequential:
    """2 -> hidden -> hidden -> 1, the given activation between the linear layers.

    The first layer's weights start `INPUT_SCALE` times larger than its init
    gives. NOTE: the data vary on a scale of about 0.3 (the gap between a
    spiral's arms) over a range of about 2; with Xavier's weights each first-layer
    unit is nearly linear over that range, and full-batch Adam on spirals then
    stalls in poor minima or recovers through a collapse. Wider weights start the
    units with the resolution the data need.
    """
    rng = np.random.default_rng(seed)
    act = get(activation)
    if not isinstance(act, Activation):
        raise ValueError(f"the demo needs an elementwise activation, not {act!r}")
    relu_like = activation.lower() in ("relu", "leakyrelu", "leaky_relu", "elu", "selu")
    init: Literal["xavier", "he"] = "he" if relu_like else "xavier"
    first = Linear(2, hidden, init=init, rng=rng)
    first.weight.data *= INPUT_SCALE
    return Sequential(
        first,
        act,
        Linear(hidden, hidden, init=init, rng=rng),
        get(activation),
        Linear(hidden, 1, rng=rng),
    )


def choose_engine(points: int, hidden: int, epochs: int, batch_size: int | None) -> str:
    """The engine ``train(engine="auto")`` runs on: numba where the run is long enough
    to pay back numba's start-up, else numpy.

    NOTE: a demo run is short. On moons with the defaults the compiled engine saves
    about 30 us a step, 15 ms in all, and starting numba costs 0.25 s: the whole
    command would take twice as long. A run whose estimated saving exceeds
    `COMPILED_START` (wider layers, more epochs, small batches) gets numba. An
    engine asked for (``TINYGRAD_ACT_ENGINE``, or `_engine.using`) is kept: moons with 400
    points and 16 hidden units runs on numpy for 1,000 epochs, and with 1,024 hidden
    units on numba.
    """
    if _engine.requested() or _engine.engine() == "numpy":
        return _engine.engine()
    batch = points if batch_size is None else min(batch_size, points)
    steps = epochs * -(-points // batch)
    saving = steps * (STEP_SAVING + 2 * batch * hidden * ELEMENT_SAVING)
    return "numba" if saving > COMPILED_START else "numpy"


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
    batch_size: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float, float], None] | None = None,
    reports: int = 10,
    engine: str = "auto",
) -> Result:
    """Train an MLP on `dataset` with Adam and `BCEWithLogitsLoss`.

    `hidden`, `epochs` and `lr` default to `DEFAULTS` for the data set. The
    learning rate falls from `lr` to 0 on a cosine over the epochs (PyTorch's
    ``CosineAnnealingLR``), so that training ends calmly. `batch_size` None
    trains full-batch; otherwise each epoch takes `datasets.batches` in a new
    order drawn from `seed`. `seed` also draws the data and the weights.
    ``progress(epoch, epochs, loss, accuracy)`` is called `reports` times;
    ``Result.losses`` has the loss over all the data at the start of each epoch.
    `engine` is "numba", "numpy", or "auto" for `choose_engine`'s choice; it is
    the calling thread's engine while `train` runs (other threads keep theirs).

    Raises `FloatingPointError` as soon as the loss is NaN or above `DIVERGED`
    times its first value: the learning rate is too large.
    """
    if dataset not in DATASETS:
        raise ValueError(f"train: unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")
    if engine not in ENGINE_CHOICES:
        raise ValueError(
            f"train: unknown engine {engine!r}; valid names: {', '.join(ENGINE_CHOICES)}"
        )
    settings = DEFAULTS[dataset]
    hidden = int(settings["hidden"]) if hidden is None else hidden
    epochs = int(settings["epochs"]) if epochs is None else epochs
    lr = settings["lr"] if lr is None else lr

    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"train: epochs must be an int, got {epochs!r}")
    x, y = DATASETS[dataset](seed=seed)
    model = mlp(activation, hidden, seed)  # checks the activation and hidden
    if batch_size is not None:
        _check_batch_size(batch_size, "train")  # before the engine is chosen by it
    if engine == "auto":
        engine = choose_engine(len(x), hidden, epochs, batch_size)
    loss_fn = BCEWithLogitsLoss()
    optimizer = Adam(model.parameters(), lr=lr)
    order = np.random.default_rng(seed)
    result = Result(model, x, y, dataset, activation, hidden, engine=engine)
    with _engine.using(engine):  # this thread's engine, until training ends
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            optimizer.lr = lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
            if batch_size is None:  # the loss of this epoch's step is the loss over all data
                result.losses.append(_step(model, loss_fn, optimizer, x, y))
            else:
                result.losses.append(loss_fn(model.forward(x)[:, 0], y))
                for xb, yb in batches(x, y, batch_size, seed=order):
                    _step(model, loss_fn, optimizer, xb, yb)
            loss = result.losses[-1]
            if not loss <= DIVERGED * result.losses[0]:  # NaN too
                raise FloatingPointError(
                    f"training diverged: the loss is {loss:.4g} at epoch {epoch}, from "
                    f"{result.losses[0]:.4g} at the start; try a smaller learning rate than {lr:g}"
                )
            if progress is not None and (epoch % max(epochs // reports, 1) == 0 or epoch == epochs):
                progress(epoch, epochs, result.losses[-1], accuracy(model, x, y))
        result.seconds = time.perf_counter() - start
        result.accuracy = accuracy(model, x, y)
    return result


def _step(
    model: Sequential, loss_fn: BCEWithLogitsLoss, optimizer: Adam, x: Array, y: Array
) -> float:
    """One Adam step on the batch ``(x, y)``; returns the loss before it."""
    optimizer.zero_grad()
    loss = loss_fn(model.forward(x)[:, 0], y)
    model.backward(loss_fn.backward()[:, None])
    optimizer.step()
    return loss


def plot(result: Result, path: str | Path) -> None:
    """Save `figure` of the result as a PNG at `path`."""
    from matplotlib import pyplot as plt

    drawing = figure(result)
    drawing.savefig(path, dpi=100, format="png")
    plt.close(drawing)


def figure(result: Result) -> Any:
    """A matplotlib figure: the decision boundary over the data, and the loss curve.

    Axes x1 and x2, a legend for the two classes, and a `title` that names the
    data set, the network, the activation and the final accuracy.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    drawing, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    low, high = result.x.min(axis=0) - 0.3, result.x.max(axis=0) + 0.3
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    with _engine.using(result.engine or _engine.engine()):
        logits = result.model.forward(grid)[:, 0].reshape(gx.shape)
    left.contourf(gx, gy, logits > 0, levels=1, colors=["#c6dbef", "#fdd0a2"])
    left.contour(gx, gy, logits, levels=[0], colors="black", linewidths=1)
    for label, color in ((0, "#2166ac"), (1, "#d6604d")):
        points = result.x[result.y == label]
        left.scatter(*points.T, color=color, s=10, edgecolors="none", label=f"class {label}")
    left.legend(loc="upper right")
    left.set_xlabel("x1")
    left.set_ylabel("x2")
    left.set_title("decision boundary")
    right.plot(np.arange(1, len(result.losses) + 1), result.losses)
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("loss")
    right.set_title("training loss")
    drawing.suptitle(title(result))
    drawing.tight_layout()
    return drawing


def title(result: Result) -> str:
    """The picture's title: data set, network, activation and final accuracy."""
    hidden = result.hidden
    return (
        f"{result.dataset}: 2-{hidden}-{hidden}-1 MLP with {result.activation}, "
        f"training accuracy {result.accuracy:.1%}"
    )
