"""Toy two-class data sets in the plane, made with NumPy alone and seeded, and `batches`."""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from tinygrad_act.base import Array


def xor(n_samples: int = 200, *, noise: float = 0.1, seed: int = 0) -> tuple[Array, Array]:
    """Points around the corners (±1, ±1); label 1 where the signs differ.

    Returns ``(x, y)``: ``x`` of shape (n_samples, 2), ``y`` of 0s and 1s.
    """
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n_samples, 2))
    x = 2.0 * corners - 1 + noise * rng.standard_normal((n_samples, 2))
    return x, (corners[:, 0] ^ corners[:, 1]).astype(np.float64)


def moons(n_samples: int = 400, *, noise: float = 0.1, seed: int = 0) -> tuple[Array, Array]:
    """Two interleaving half circles, centred near the origin."""
    rng = np.random.default_rng(seed)
    label = np.arange(n_samples) % 2
    angle = rng.uniform(0, np.pi, n_samples)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    x = np.where(label[:, None] == 0, upper, lower) - [0.5, 0.25]
    return x + noise * rng.standard_normal((n_samples, 2)), label.astype(np.float64)


def spirals(
    n_samples: int = 400, *, noise: float = 0.05, turns: float = 1.5, seed: int = 0
) -> tuple[Array, Array]:
    """Two interleaved spirals of `turns` turns each, radius up to 1."""
    rng = np.random.default_rng(seed)
    label = np.arange(n_samples) % 2
    t = np.sqrt(rng.uniform(0.02, 1, n_samples))  # even density along the arm
    angle = 2 * np.pi * turns * t + np.pi * label
    x = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x + noise * rng.standard_normal((n_samples, 2)), label.astype(np.float64)


DATASETS = {"xor": xor, "moons": moons, "spirals": spirals}


def batches(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = 0,
    drop_last: bool = False,
) -> Iterator[tuple[Array, Array]]:
    """Mini-batches ``(xb, yb)`` of matching rows of `x` and `y`: one pass over the data.

    Like a PyTorch ``DataLoader`` over ``(x, y)``: with ``shuffle=True`` the rows
    come in a random order drawn from `seed` (an int or a Generator: pass the
    same Generator every epoch for a new order each epoch, reproducibly);
    otherwise in order. The last batch is smaller when `batch_size` does not
    divide the number of rows, unless ``drop_last=True`` leaves it out.

    Examples
    --------
    >>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
    >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False)]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    >>> [yb.tolist() for _, yb in batches(x, y, 2, shuffle=False, drop_last=True)]
    [[0.0, 1.0], [2.0, 3.0]]
    """
    xs, ys = np.asarray(x), np.asarray(y)
    if xs.ndim == 0 or ys.ndim == 0 or len(xs) != len(ys):
        raise ValueError(
            f"batches: x and y need the same number of rows, got shapes {xs.shape} and {ys.shape}"
        )
    _check_batch_size(batch_size, "batches")
    n = len(xs)
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    # NOTE: a generator expression, so that bad arguments raise here, not at the first next()
    starts = range(0, stop, batch_size)
    return ((xs[order[i : i + batch_size]], ys[order[i : i + batch_size]]) for i in starts)


def _check_batch_size(batch_size: int, owner: str) -> None:
    """Raise `TypeError` unless `batch_size` is an int, `ValueError` unless positive;
    the message names `owner`, the function it was given to."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"{owner}: batch_size must be an int, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be positive, got {batch_size}")
