"""Toy two-class data sets in the plane, made with NumPy alone and seeded."""

from __future__ import annotations

import numpy as np

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
