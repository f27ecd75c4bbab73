"""The toy data sets, and the seeded mini-batch iterator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_act.datasets import DATASETS, batches


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_datasets_are_seeded_balanced_and_two_dimensional(name: str) -> None:
    x, y = DATASETS[name](seed=3)
    x2, y2 = DATASETS[name](seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (len(y), 2)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - 0.5) < 0.1
    assert not np.array_equal(x, DATASETS[name](seed=4)[0])


def test_xor_labels_follow_the_quadrants() -> None:
    x, y = DATASETS["xor"](noise=0.0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(float))


def rows(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """x whose row i is (i, -i), y[i] = i: each batch shows which rows it holds."""
    index = np.arange(n, dtype=np.float64)
    return np.stack([index, -index], axis=1), index


@given(n=st.integers(0, 40), batch_size=st.integers(1, 50), drop_last=st.booleans())
def test_batches_cover_every_row_once_in_batch_size_pieces(
    n: int, batch_size: int, drop_last: bool
) -> None:
    x, y = rows(n)
    pieces = list(batches(x, y, batch_size, seed=n, drop_last=drop_last))
    sizes = [len(yb) for _, yb in pieces]
    expected = [batch_size] * (n // batch_size)
    if n % batch_size and not drop_last:
        expected.append(n % batch_size)  # the last partial batch is kept
    assert sizes == expected
    for xb, yb in pieces:
        np.testing.assert_array_equal(xb, np.stack([yb, -yb], axis=1))  # rows stay paired
    seen = np.concatenate([yb for _, yb in pieces]) if pieces else np.array([])
    assert len(set(seen.tolist())) == len(seen)  # no row twice
    if not drop_last:
        np.testing.assert_array_equal(np.sort(seen), y)


def test_batches_without_shuffle_keep_the_order() -> None:
    x, y = rows(7)
    assert [yb.tolist() for _, yb in batches(x, y, 3, shuffle=False)] == [
        [0.0, 1.0, 2.0],
        [3.0, 4.0, 5.0],
        [6.0],
    ]


def test_batches_are_seeded() -> None:
    x, y = rows(50)

    def order(seed: int | np.random.Generator) -> list[float]:
        return [float(v) for _, yb in batches(x, y, 8, seed=seed) for v in yb]

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert order(0) != y.tolist()
    generator = np.random.default_rng(0)
    first, second = order(generator), order(generator)  # one Generator: a new order each epoch
    assert first == order(0)
    assert first != second


def test_bad_arguments_raise_at_the_call() -> None:
    x, y = rows(4)
    with pytest.raises(ValueError, match="batches: batch_size must be positive, got 0"):
        batches(x, y, 0)
    with pytest.raises(TypeError, match=r"batches: batch_size must be an int, got 2\.5"):
        batches(x, y, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="batches: batch_size must be an int, got True"):
        batches(x, y, True)
    with pytest.raises(ValueError, match=r"same number of rows, got shapes \(4, 2\) and \(3,\)"):
        batches(x, y[:3], 2)
