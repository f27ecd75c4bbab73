"""The pool of large results' memory: reused once freed, never while an array uses it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tinygrad_act import ReLU, Sigmoid, Softmax, Tanh, _engine, _memory, free_buffers, no_grad

N = 100_000  # above the engines' small-array paths, and above POOL_MIN below
ENGINES = _engine.available_engines()


@pytest.fixture(params=ENGINES)
def small_pool(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A pool that takes arrays from 64 KiB, empty before and after, on each engine."""
    monkeypatch.setattr(_memory, "POOL_MIN", 1 << 16)
    gc.collect()  # no result of an earlier test comes back to the pool in this one
    free_buffers()
    with _engine.using(request.param):
        yield request.param
    free_buffers()


def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_freed_result_is_reused_by_the_next_result_of_its_size(
    dtype: Any, small_pool: str
) -> None:
    rng = np.random.default_rng(0)
    x, x2 = rng.uniform(-10, 10, (2, N)).astype(dtype)
    layer = Sigmoid()
    y = layer.forward(x)
    address = y.ctypes.data
    del y
    other = np.empty_like(x)  # the C allocator would give this the memory just freed
    y2 = layer.forward(x2)
    assert not np.shares_memory(other, y2)
    assert y2.ctypes.data == address, "the freed block was not reused"
    assert y2.dtype == dtype
    assert y2.shape == (N,)
    assert y2.flags.c_contiguous
    assert y2.flags.writeable
    # every element written afresh: nothing of the previous result is left
    np.testing.assert_allclose(y2, sigmoid(x2.astype(np.float64)), rtol=2e-7, atol=0)


def test_a_result_in_use_is_never_handed_out_again(small_pool: str) -> None:
    x = np.linspace(-4, 4, N)
    y = Tanh().forward(x)
    view = y[::2]  # only a view of the result is left
    del y
    gc.collect()
    others = [ReLU().forward(-x) for _ in range(3)]
    assert not any(np.shares_memory(view, other) for other in others)
    np.testing.assert_allclose(view, np.tanh(x[::2]), rtol=1e-15)
    np.testing.assert_array_equal(others[0], np.maximum(-x, 0))


def test_a_softmax_in_use_is_never_handed_out_again(small_pool: str) -> None:
    x = np.random.default_rng(3).standard_normal((100, 1000))
    p = Softmax(axis=0).forward(x)
    column = p.T[0]  # only a view of the result's transpose is left
    del p
    others = [Softmax(axis=0).forward(x + k) for k in range(3)]
    assert not any(np.shares_memory(column, other) for other in others)
    expected = np.exp(x[:, 0] - x[:, 0].max())
    np.testing.assert_allclose(column, expected / expected.sum(), rtol=1e-14)


def test_a_result_is_an_ordinary_array(small_pool: str) -> None:
    x = np.linspace(-3, 3, N)
    y = Sigmoid().forward(x)
    y.flags.writeable = False
    y.flags.writeable = True  # a result owns its memory, as far as NumPy is concerned
    y[0] = 7.0
    assert y[0] == 7.0
    reversed_view = y[::-1]
    assert np.may_share_memory(reversed_view, y)
    assert reversed_view.base is y.base  # one owner, as optimizers check
    np.testing.assert_allclose(y[1:], sigmoid(x[1:]), rtol=1e-15)


def test_a_freed_gradient_is_reused_by_the_next_backward(small_pool: str) -> None:
    rng = np.random.default_rng(1)
    x, g, g2 = rng.standard_normal((3, 100, 1000))
    layer = Sigmoid()
    layer.forward(x)
    s = sigmoid(x)
    grad = layer.backward(g)
    np.testing.assert_allclose(grad, g * s * (1 - s), rtol=1e-13)
    address = grad.ctypes.data
    del grad
    other = np.empty_like(x)  # the C allocator would give this the memory just freed
    again = layer.backward(g2)
    assert not np.shares_memory(other, again)
    assert again.ctypes.data == address
    assert again.shape == x.shape
    np.testing.assert_allclose(again, g2 * s * (1 - s), rtol=1e-13)


def test_a_freed_softmax_is_reused_by_the_next_softmax(small_pool: str) -> None:
    if small_pool != "numba":
        pytest.skip("the NumPy engine's softmaxes return NumPy's own arrays")
    x = np.random.default_rng(2).standard_normal((100, 1000))
    layer = Softmax()
    address = layer.forward(x).ctypes.data
    shifted = x + 1  # the C allocator would give this the memory just freed
    p = layer.forward(shifted)  # the same softmax: each row is shifted by one
    assert p.ctypes.data == address
    expected = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, expected / expected.sum(axis=1, keepdims=True), rtol=1e-14)


def test_a_result_freed_while_the_pool_is_locked_never_waits(small_pool: str) -> None:
    x = np.linspace(-1, 1, N)
    with no_grad():
        results = [Sigmoid().forward(x)]
    address = results[0].ctypes.data
    freed = threading.Event()

    def free_while_locked() -> None:  # as a garbage collection inside the lock would
        with _memory._lock:
            results.clear()
        freed.set()

    with pytest.MonkeyPatch.context() as patch:  # a lock of its own: were the thread to
        patch.setattr(_memory, "_lock", threading.Lock())  # hang, it would keep that one
        thread = threading.Thread(target=free_while_locked, daemon=True)
        thread.start()
        thread.join(timeout=20)
    assert freed.is_set(), "freeing a result waited for the pool's lock"
    with no_grad():
        again = Sigmoid().forward(-x)  # the block, given back meanwhile, is reused
    assert again.ctypes.data == address
    np.testing.assert_allclose(again, sigmoid(-x), rtol=1e-15)


def test_the_pool_keeps_at_most_pool_bytes(
    small_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_memory, "POOL_BYTES", 3 * (N + 4) * 8)
    with no_grad():  # no caches: only the results come and go
        results = [ReLU().forward(np.full(N + k, 1.0)) for k in range(5)]  # five sizes
    while results:
        results.pop(0)  # freed in order
    assert [block.size for block in _memory._free] == [(N + k) * 8 for k in (2, 3, 4)]
    free_buffers()
    assert _memory._free == []


def test_small_arrays_are_plain_numpy_arrays(small_pool: str) -> None:
    y = Sigmoid().forward(np.zeros(1000))
    assert y.flags.owndata
    np.testing.assert_array_equal(y, 0.5)


def test_threads_taking_and_freeing_results_never_share_one(small_pool: str) -> None:
    failures: list[str] = []

    def work(seed: int) -> None:
        x = np.random.default_rng(seed).standard_normal(N)
        expected = sigmoid(x)
        layer = Sigmoid()
        for _ in range(50):
            y = layer.forward(x)
            if not np.array_equal(y, layer.forward(x)) or not np.allclose(y, expected):
                failures.append(f"thread {seed}: a result changed while in use")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
