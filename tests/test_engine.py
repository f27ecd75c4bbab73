"""Blocks and threads: the same results on any number of threads, caches reused, memory lean."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tinygrad_act import GELU, Activation, Sigmoid, SiLU, Tanh, get_num_threads, set_num_threads
from tinygrad_act.base import Array

LARGE = 300_001  # several blocks on each of several threads


@pytest.fixture
def threads() -> Iterator[None]:
    before = get_num_threads()
    yield
    set_num_threads(before)


@pytest.mark.parametrize("factory", [Sigmoid, Tanh, SiLU, GELU], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_results_do_not_depend_on_the_number_of_threads(
    factory: type[Activation], dtype: Any, threads: None
) -> None:
    x = np.random.default_rng(0).uniform(-20, 20, LARGE).astype(dtype)
    g = np.random.default_rng(1).standard_normal(LARGE).astype(dtype)
    results = []
    for n in (1, 2, 3):
        set_num_threads(n)
        layer = factory()
        results.append((layer.forward(x), layer.backward(g)))
    for y, grad in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(grad, results[0][1])


def test_set_num_threads_rejects_nonsense(threads: None) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            set_num_threads(bad)  # type: ignore[arg-type]
    set_num_threads(3)
    assert get_num_threads() == 3


def test_environment_variable_sets_the_default() -> None:
    code = "import tinygrad_act; print(tinygrad_act.get_num_threads())"
    env = {**os.environ, "TINYGRAD_ACT_NUM_THREADS": "5"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "5"
    env["TINYGRAD_ACT_NUM_THREADS"] = "many"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "TINYGRAD_ACT_NUM_THREADS must be a positive integer, got 'many'" in bad.stderr


class Overflows(Activation):
    """exp(x) overflows for x > 709; the caller silences it with np.errstate."""

    needs_input = False

    def function(self, x: Array) -> Array:
        y: Array = np.exp(x)
        return y

    def derivative(self, x: Array | None, y: Array | None) -> Array:
        assert y is not None
        return y


def test_errstate_of_the_caller_reaches_the_worker_threads(threads: None) -> None:
    set_num_threads(2)
    x = np.full(LARGE, 1000.0)
    with np.errstate(over="ignore"):
        assert np.isinf(Overflows().forward(x)).all()
    with pytest.raises(RuntimeWarning, match="overflow"):
        Overflows().forward(x)  # warnings are errors in the test suite


def test_an_exception_in_a_worker_thread_reaches_the_caller(threads: None) -> None:
    class Fails(Overflows):
        def function(self, x: Array) -> Array:
            if (x < 0).any():
                raise ArithmeticError("block with negative input")
            return x

    set_num_threads(2)
    x = np.ones(LARGE)
    x[-1000:] = -1  # only the last block, on another thread
    with pytest.raises(ArithmeticError, match="negative input"):
        Fails().forward(x)


def test_cache_is_reused_for_the_same_shape_and_stays_correct() -> None:
    layer = Sigmoid()
    x1 = np.random.default_rng(0).standard_normal(LARGE)
    x2 = np.random.default_rng(1).standard_normal(LARGE)
    layer.forward(x1)
    (cache,) = layer._saved
    layer.forward(x2)
    assert np.shares_memory(layer._saved[0], cache)  # overwritten in place, not reallocated
    grad = layer.backward(np.ones(LARGE))
    s = 1 / (1 + np.exp(-x2))
    np.testing.assert_allclose(grad, s * (1 - s), rtol=1e-14)
    layer.forward(x2[:-1])
    assert not np.shares_memory(layer._saved[0], cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_allocates_its_output_and_backward_its_result_only(dtype: Any) -> None:
    n = 2_000_000
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    g = np.ones(n, dtype)
    layer = Sigmoid()
    layer.forward(x)  # the cache now exists and will be reused
    array = n * np.dtype(dtype).itemsize
    calls: list[Callable[[], object]] = [lambda: layer.forward(x), lambda: layer.backward(g)]
    for call in calls:
        tracemalloc.start()
        call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # one array, plus a few block-sized temporaries per thread
        assert peak < array + 64 * 16384 * 8
