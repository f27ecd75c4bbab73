"""Engines, blocks and threads: the same results everywhere, caches owned, memory lean."""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import mpmath
import numpy as np
import pytest

from tests.reference import EXACT, ulp_error
from tinygrad_act import (
    CELU,
    ELU,
    GELU,
    Activation,
    Hardshrink,
    Hardsigmoid,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softshrink,
    Tanh,
    Threshold,
    _engine,
    activations,
    engine,
    float32_safe,
    get_num_threads,
    no_grad,
    set_num_threads,
)
from tinygrad_act.activations import ACTIVATIONS, GLU
from tinygrad_act.base import Array

LARGE = 300_001  # several chunks, on each of several threads
ENGINES = _engine.available_engines()
NEEDS_NUMBA = pytest.mark.skipif("numba" not in ENGINES, reason="numba is not installed")


#: For subprocesses that test the compiled engine: without the variable that forces one.
NUMBA_ENVIRONMENT = {k: v for k, v in os.environ.items() if k != _engine.ENGINE_VARIABLE}


@pytest.fixture
def numba_engine() -> Iterator[None]:
    """The compiled engine, whatever ``TINYGRAD_ACT_ENGINE`` says, for tests of its team."""
    with _engine.using("numba"):
        yield


@pytest.fixture
def threads() -> Iterator[None]:
    before = get_num_threads()
    yield
    set_num_threads(before)


@pytest.fixture(params=ENGINES)
def each_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    with _engine.using(request.param):
        yield request.param


#: Inputs of SiLU's and Mish's rare branch (x < -80, x < -512), in the band where f and
#: f' are normal or subnormal while e^x alone is subnormal or 0, and far beyond.
RARE_INPUTS = [-712.5, -745.0, -709.0, -760.0, -90.0, -600.0, -1e300, -np.inf]


@NEEDS_NUMBA
@pytest.mark.parametrize("factory", [SiLU, Mish], ids=lambda f: f.__name__)
def test_rare_elements_among_common_ones_keep_the_whole_kernels_accuracy(
    factory: type[Activation], threads: None
) -> None:
    """A kernel marked `rare_case` runs blocks through its common case first: a block
    with one rare element, at either end or inside, runs again whole. Each rare element
    is checked against mpmath, and the results against one thread's."""
    block = _engine.RARE_BLOCK
    x = np.random.default_rng(2).uniform(-5, 5, LARGE)
    positions = [0, block - 1, block, 3 * block + 17, LARGE // 2, LARGE - block, LARGE - 1]
    for position, value in zip(positions, itertools.cycle(RARE_INPUTS), strict=False):
        x[position] = value
    x[5 * block : 5 * block + len(RARE_INPUTS)] = RARE_INPUTS  # a block of several
    exact = EXACT[factory.__name__]
    results = []
    with _engine.using("numba"):
        for n in (1, 2):
            set_num_threads(n)
            layer = factory()
            results.append((layer.forward(x), layer.backward(np.ones(LARGE))))
        with no_grad():  # the loop of f alone
            inference = factory().forward(x)
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    np.testing.assert_array_equal(inference, results[0][0])
    y, slope = results[0]
    for position in [*positions, *range(5 * block, 5 * block + len(RARE_INPUTS))]:
        v = mpmath.mpf(x[position])
        f, d = (exact.f(v), exact.df(v)) if np.isfinite(x[position]) else (0, 0)  # at -inf
        for name, got, want in (("f", y[position], f), ("f'", slope[position], d)):
            error = ulp_error(got, want, np.float64)
            where = f"{factory.__name__} {name}({x[position]!r})"
            assert error <= 4, f"{where} = {got!r}: {error:.3g} ulp from mpmath's"


@_engine.kernel_helper
def _below_minus_1_1(xp: Any, x: Any) -> Any:
    return x < -1.1  # not a float32: float32(-1.1) is below it


class RareSeven(Activation):
    """7 where x < -1.1 (a rare branch), x elsewhere; float32 arithmetic is exact here."""

    @staticmethod
    @float32_safe
    @_engine.rare_case(_below_minus_1_1)
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        rare = xp.rarely(_below_minus_1_1(xp, x))
        return xp.where(rare, 7.0, x), xp.where(rare, 0.0, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rare_case_counts_the_elements_its_kernel_sends_on(
    dtype: type[np.floating[Any]], each_engine: str
) -> None:
    """In float32 loops too, the predicate counts what the kernel's own call of it
    decides (its float64 literal): float32(-1.1) < -1.1 takes the rare branch."""
    x = np.linspace(-1, 1, 3 * _engine.RARE_BLOCK).astype(dtype)
    x[_engine.RARE_BLOCK + 5] = dtype(-1.1)
    y = RareSeven().forward(x)
    expected = np.where(x.astype(np.float64) < -1.1, 7.0, x)
    np.testing.assert_array_equal(y, expected.astype(dtype))


@pytest.mark.parametrize("factory", [Sigmoid, Tanh, SiLU, GELU], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_results_do_not_depend_on_the_number_of_threads(
    factory: type[Activation], dtype: Any, threads: None, each_engine: str
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


@pytest.mark.parametrize("shape", [(3, 70_001), (5, 3, 40_000)], ids=["one slope", "3 slopes"])
def test_prelu_results_do_not_depend_on_the_number_of_threads(
    shape: tuple[int, ...], threads: None, each_engine: str
) -> None:
    """PReLU's passes on several threads (whole channels each; one slope's array cut
    into fixed segments): the same outputs and the same slopes' gradient, bit for bit,
    and the gradient within a float64 sum's error bound of the exact sum."""
    import math

    from tinygrad_act import PReLU

    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape) * 3
    g = rng.standard_normal(shape)
    channels = 1 if len(shape) == 2 else shape[1]
    results = []
    for n in (1, 2, 3):
        set_num_threads(n)
        layer = PReLU(channels, init=-0.3)
        y = layer.forward(x)
        results.append((y, layer.backward(g), layer.weight.grad.copy()))
    for y, dx, slopes in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
        np.testing.assert_array_equal(slopes, results[0][2])
    terms = np.where(x > 0, 0.0, g * x)
    for c in range(channels):
        chosen = terms if channels == 1 else terms[:, c]
        bound = chosen.size * 2.0**-53 * np.abs(chosen).sum()
        assert abs(results[0][2][c] - math.fsum(chosen.ravel())) <= bound


@pytest.mark.parametrize("factory", [Sigmoid, Tanh], ids=lambda f: f.__name__)
def test_the_engines_agree_within_their_accuracy_bounds(factory: type[Activation]) -> None:
    """Each engine is within 4 ulp of exact (test_accuracy), so within 8 of each other."""
    if len(ENGINES) < 2:
        pytest.skip("numba is not installed: only the NumPy engine can run")
    x = np.random.default_rng(0).uniform(-30, 30, 10_000)
    outputs = []
    for name in ENGINES:
        with _engine.using(name):
            layer = factory()
            outputs.append((layer.forward(x), layer.backward(np.ones_like(x))))
    (y1, d1), (y2, d2) = outputs
    assert np.all(np.abs(y1 - y2) <= 8 * np.spacing(np.abs(y1)))
    assert np.all(np.abs(d1 - d2) <= 8 * np.spacing(np.abs(d1)))


def test_set_num_threads_rejects_nonsense(threads: None) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            set_num_threads(bad)  # type: ignore[arg-type]
    set_num_threads(3)
    assert get_num_threads() == 3


def _run(code: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **variables}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_environment_variables_set_the_threads_and_the_engine() -> None:
    out = _run(
        "import tinygrad_act; print(tinygrad_act.get_num_threads())",
        **{"TINYGRAD_ACT_NUM_THREADS": "5"},
    )
    assert out.stdout.strip() == "5"
    bad = _run(
        "import tinygrad_act; tinygrad_act.get_num_threads()", TINYGRAD_ACT_NUM_THREADS="many"
    )
    assert "TINYGRAD_ACT_NUM_THREADS must be a positive integer, got 'many'" in bad.stderr
    forced = _run("import tinygrad_act; print(tinygrad_act.engine())", TINYGRAD_ACT_ENGINE="numpy")
    assert forced.stdout.strip() == "numpy"
    wrong = _run("import tinygrad_act; tinygrad_act.engine()", TINYGRAD_ACT_ENGINE="cuda")
    assert "TINYGRAD_ACT_ENGINE must be 'numba' or 'numpy' (or unset), got 'cuda'" in wrong.stderr


def test_engine_names_the_one_in_use() -> None:
    assert engine() in ENGINES
    with _engine.using("numpy"):
        assert engine() == "numpy"
    with pytest.raises(ValueError, match="engine must be one of"), _engine.using("gpu"):
        pass


class Fails(Activation):
    """An activation written with NumPy that refuses negative input, block by block."""

    def function(self, x: Array) -> Array:
        if (x < 0).any():
            raise ArithmeticError("block with negative input")
        return x

    def derivative(self, x: Array, y: Array) -> Array:
        return np.ones_like(x)


def test_an_exception_in_a_worker_thread_reaches_the_caller(threads: None) -> None:
    set_num_threads(2)
    x = np.ones(LARGE)
    x[-1000:] = -1  # only the last block, on another thread
    with pytest.raises(ArithmeticError, match="negative input"):
        Fails().forward(x)


def test_a_failed_forward_leaves_no_cache_to_misuse() -> None:
    layer = Fails()
    layer.forward(np.ones(LARGE))
    x = np.ones(LARGE)
    x[-1000:] = -1
    with pytest.raises(ArithmeticError):
        layer.forward(x)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(np.ones(LARGE))


def test_a_kernel_numba_cannot_compile_still_runs() -> None:
    class Square(Activation):
        @staticmethod
        def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
            return np.square(x), 2 * np.asarray(x)  # np.* on a scalar: not for numba

    layer = Square()
    np.testing.assert_array_equal(layer.forward(np.array([1.0, -3.0])), [1.0, 9.0])
    np.testing.assert_array_equal(layer.backward(np.ones(2)), [2.0, -6.0])


class Exp(Activation):
    """A user's activation whose kernel returns one array as both f and f'."""

    @staticmethod
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        e = xp.exp(x)
        return e, e


def test_an_output_is_never_the_cache_the_next_forward_overwrites(each_engine: str) -> None:
    layer = Exp()
    x = np.array([0.0, 1.0])
    with _engine.using("numpy"):
        first = layer.forward(x)
    kept = first.copy()
    second = layer.forward(x + 1)  # overwrites the cache, not the first output
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(second, np.exp(x + 1), rtol=1e-15)
    np.testing.assert_array_equal(layer.backward(np.ones(2)), second)


class OnePlusMinusOne(Activation):
    """(x + 1) - 1: 0 for x = 1e-8 in float32 arithmetic, x itself in float64."""

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
        return (x + 1) - 1, 1 + 0 * x


@NEEDS_NUMBA
def test_float32_safe_kernels_run_float32_input_in_float32() -> None:
    x = np.full(3, 1e-8, np.float32)
    with _engine.using("numba"):
        layer = OnePlusMinusOne()
        np.testing.assert_array_equal(layer.forward(x), 0.0)  # float32 literals, float32 sums
        np.testing.assert_array_equal(layer.backward(np.ones(3, np.float32)), 1.0)
        np.testing.assert_array_equal(layer.forward(x.astype(np.float64)), x)  # float64
    with _engine.using("numpy"):  # the NumPy engine computes in float64
        np.testing.assert_array_equal(layer.forward(x), x)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_relu_is_exact_in_float32_arithmetic(engine_name: str) -> None:
    """ReLU is float32_safe: float32 input runs in float32 on the compiled engine, with
    every result as NumPy's float64 formula rounds it, signed zeros and NaN included."""
    tiny = np.float32(2**-149)
    x = np.array([-0.0, 0.0, -1.5, 2.5, np.nan, np.inf, -np.inf, tiny, -tiny], np.float32)
    wide = x.astype(np.float64)
    with _engine.using(engine_name):
        layer = ReLU()
        y = layer.forward(x)
        slope = layer.backward(np.ones_like(x))
    assert getattr(ReLU.function_and_derivative, "float32_safe", False)
    assert y.dtype == slope.dtype == np.float32
    expected_y = np.where(wide < 0, 0.0, wide).astype(np.float32)
    expected_slope = np.where(wide > 0, 1.0, np.where(wide <= 0, 0.0, np.nan)).astype(np.float32)
    assert y.tobytes() == expected_y.tobytes(), y
    assert slope.tobytes() == expected_slope.tobytes(), slope
    if engine_name == "numba":  # the float32 loops ran
        assert _engine._chosen[(ReLU.function_and_derivative, np.dtype(np.float32))][1]


@NEEDS_NUMBA
def test_a_parameter_beyond_float32_takes_the_float64_loops() -> None:
    """ELU is float32_safe, but an alpha beyond float32's range would round to inf in
    its float32 loops: the float64 loops take it, as the NumPy engine does."""
    x = np.array([-1e-30, -1e-3, -0.0, 0.0, -50.0], np.float32)
    results = []
    for engine_name in ("numba", "numpy"):
        with _engine.using(engine_name):
            layer = ELU(alpha=1e39)
            results.append((layer.forward(x), layer.backward(np.ones_like(x))))
    (y, slope), (expected_y, expected_slope) = results
    assert y.tobytes() == expected_y.tobytes(), y
    assert slope.tobytes() == expected_slope.tobytes(), slope
    assert np.isfinite(y[:4]).all()


@NEEDS_NUMBA
@pytest.mark.parametrize(
    "make",
    [lambda: CELU(alpha=2.0**-160), lambda: Softplus(beta=2.0**-140)],
    ids=["CELU", "Softplus"],
)
def test_a_parameter_below_float32s_normal_range_takes_the_float64_loops(make: Any) -> None:
    """A power of two runs CELU's and Softplus's float32_safe kernel, but 2**-160 rounds
    to 0 in float32 (f(-0.0) would be -0.0 / 0 = NaN) and 2**-140 keeps 10 bits (exact
    here, but no other such number is): the float64 loops take them, as the NumPy
    engine does."""
    x = np.array([-0.0, 0.0, -1e-45, 1e-45, -1.5, 2.5, -1e30, 1e30], np.float32)
    results = []
    for engine_name in ("numba", "numpy"):
        with _engine.using(engine_name):
            layer = make()
            results.append((layer.forward(x), layer.backward(np.ones_like(x))))
    (y, slope), (expected_y, expected_slope) = results
    assert y.tobytes() == expected_y.tobytes(), y
    assert slope.tobytes() == expected_slope.tobytes(), slope
    assert not np.isnan(y).any()


@NEEDS_NUMBA
def test_celu_and_softplus_run_float32_in_float32_only_for_a_power_of_two() -> None:
    """With another parameter their kernel corrects the rounding of x / alpha or beta x
    in float64 arithmetic: a float32 parameter rounded would cost about |x / alpha| ulp.
    CELU's alpha must also be from 0 to 1 (see the next test), Softplus's beta at least 1
    (see `test_softplus_below_beta_1_keeps_its_left_tail_in_float32`)."""
    for layer, native in [
        (CELU(), True),
        (CELU(alpha=0.25), True),
        (CELU(alpha=0.3), False),
        (CELU(alpha=4.0), False),
        (CELU(alpha=-0.5), False),
        (Softplus(), True),
        (Softplus(beta=4.0), True),
        (Softplus(beta=0.25), False),
        (Softplus(beta=3.7), False),
    ]:
        kernel, parameters, _ = layer._kernel(derivative=True)
        assert _engine.float32_is_float64_rounded(kernel, parameters) is not native, layer


@pytest.mark.parametrize(
    ("beta", "x", "exact"),
    [(2.0**-10, -96397.195, 1.33886105e-38), (0.25, -352.9518, 1.90899077e-38)],
)
def test_softplus_below_beta_1_keeps_its_left_tail_in_float32(
    beta: float, x: float, exact: float
) -> None:
    """f = log1p(e^(beta x)) / beta is a normal float32 there while e^(beta x) is
    subnormal in float32: computed in float32 arithmetic it was 512 and 2.7 ulp off (the
    exact values are mpmath's, to 9 digits). Such a beta takes the float64 loops, as the
    NumPy engine does, and f rounds once."""
    values = np.array([x], np.float32)
    results = []
    for engine_name in ENGINES:
        with _engine.using(engine_name):
            results.append(Softplus(beta=beta).forward(values))
    for y in results:
        assert y.dtype == np.float32
        assert abs(float(y[0]) - exact) <= 0.5 * float(np.spacing(np.float32(exact))), y
    assert len({y.tobytes() for y in results}) == 1


@pytest.mark.parametrize("alpha", [1024.0, 2.0**40, 1000.5, 1e300])
def test_celu_of_a_tiny_x_is_x_for_a_large_alpha(alpha: float) -> None:
    """f = alpha expm1(x / alpha) = x (1 + x / (2 alpha) + ...) rounds to x for these x;
    x / alpha is subnormal for most, and alpha times it was up to 345 ulp off (alpha =
    1024 at x = -2.4386e-308), 5e11 for alpha = 2**40."""
    x = np.array([-2.4386e-308, -3.9e-308, -1e-300, -1e-200, -5e-324, -0.0])
    for engine_name in ENGINES:
        with _engine.using(engine_name):
            layer = CELU(alpha=alpha)
            y = layer.forward(x)
            slope = layer.backward(np.ones_like(x))
        assert y.tobytes() == x.tobytes(), (engine_name, y)
        assert (slope == 1.0).all(), (engine_name, slope)


@NEEDS_NUMBA
def test_gelu_runs_its_float32_twin_for_float32_input() -> None:
    """Exact GELU's float32 input takes `_gelu_float32`'s loops (float64 arithmetic),
    float64 input those of its compiled form, `_gelu_compiled`; both give f(-0.0) = -0.0
    and the same limits."""
    x = np.array([-np.inf, -30.0, -0.0, 0.0, 30.0, np.inf, np.nan])
    with _engine.using("numba"):
        results = []
        for dtype in (np.float32, np.float64):
            layer = GELU()
            results.append((layer.forward(x.astype(dtype)), layer.backward(np.ones(7, dtype))))
    kernel = GELU()._kernel(derivative=True)[0]
    assert _engine._chosen[(kernel, np.dtype(np.float32))][0] is _engine._compiled(
        activations._gelu_float32
    )
    assert _engine._chosen[(kernel, np.dtype(np.float64))][0] is _engine._compiled(
        activations._gelu_compiled
    )
    (y32, d32), (y64, d64) = results
    assert y32.tobytes() == y64.astype(np.float32).tobytes(), y32
    assert d32.tobytes() == d64.astype(np.float32).tobytes(), d32


@NEEDS_NUMBA
@pytest.mark.parametrize(
    ("alpha", "x"), [(-0.5, -44.4), (1024.0, -3e-38), (2.0**40, -1e-30), (2.0**100, -1e-30)]
)
def test_celu_beyond_alpha_1_or_below_0_rounds_float32_once(alpha: float, x: float) -> None:
    """In float32 arithmetic, expm1(x / alpha) overflows for alpha = -0.5 at x = -44.4,
    where f is -1.84e38, and x / alpha is subnormal for alpha = 1024 at x = -3e-38 (26
    ulp off); such an alpha takes the float64 loops, as the NumPy engine does."""
    values = np.array([x, -0.0, 1.0], np.float32)
    results = []
    for engine_name in ("numba", "numpy"):
        with _engine.using(engine_name):
            layer = CELU(alpha=alpha)
            results.append((layer.forward(values), layer.backward(np.ones(3, np.float32))))
    (y, slope), (expected_y, expected_slope) = results
    assert y.tobytes() == expected_y.tobytes(), y
    assert slope.tobytes() == expected_slope.tobytes(), slope
    assert np.isfinite(y).all()
    assert y[0] != 0


@NEEDS_NUMBA
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("alpha", np.float32(0.3)),
        ("alpha", -3),
        ("beta", 2),
        ("alpha", np.float16(0.5)),
        ("beta", np.longdouble(0.3)),
    ],
)
def test_parameters_set_to_other_numbers_compile(name: str, value: Any) -> None:
    """A parameter set since the constructor to an int or a float32 reaches the fused
    multiply-adds of CELU's and Softplus's corrections as its float64 value; a float16
    or a long double, which numba does not take, as its float: on each engine, the same
    bits as the parameter set to that float. (The engines may differ in the last bit:
    numba fuses products into sums where NumPy rounds each.)"""
    x = np.array([-1.0, -0.0, 2.0, -50.0])
    for engine_name in ("numba", "numpy"):
        results = []
        for setting in (value, float(value)):
            layer = CELU(alpha=0.3) if name == "alpha" else Softplus(beta=3.7)
            setattr(layer, name, setting)
            with _engine.using(engine_name):
                results.append((layer.forward(x), layer.backward(np.ones(4))))
        (y, slope), (expected_y, expected_slope) = results
        assert y.tobytes() == expected_y.tobytes(), (engine_name, y)
        assert slope.tobytes() == expected_slope.tobytes(), (engine_name, slope)


def test_float32_safe_refuses_what_it_cannot_mark() -> None:
    offset = 1.0

    def kernel(xp: Any, x: Any) -> tuple[Any, Any]:
        return x + offset, 1.0

    with pytest.raises(TypeError, match=r"must not close over local variables \(offset\)"):
        float32_safe(kernel)
    with pytest.raises(TypeError, match="marks a kernel function"):
        float32_safe(3)  # type: ignore[type-var]


def test_float32_safe_over_staticmethod_marks_the_function() -> None:
    class Cube(Activation):
        @float32_safe
        @staticmethod
        def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
            return x * x * x, 3 * x * x

    assert Cube.function_and_derivative.float32_safe  # type: ignore[attr-defined]
    np.testing.assert_array_equal(Cube().forward(np.array([2.0], np.float32)), [8.0])


@NEEDS_NUMBA
def test_a_float32_safe_kernel_without_source_runs_in_float64() -> None:
    scope: dict[str, Any] = {}
    exec("def kernel(xp, x):\n    return (x + 1) - 1, 1 + 0 * x\n", scope)  # no source file
    kernel = float32_safe(scope["kernel"])
    x = np.full(3, 1e-8, np.float32)
    y, d = _engine.evaluate(kernel, (), x, derivative=True)
    np.testing.assert_array_equal(y, x)  # (x + 1) - 1 in float64, rounded: x itself
    assert d is not None
    assert y.dtype == d.dtype == np.float32


def test_cache_is_reused_for_the_same_shape_and_stays_correct(each_engine: str) -> None:
    layer = Sigmoid()
    x1 = np.random.default_rng(0).standard_normal(LARGE)
    x2 = np.random.default_rng(1).standard_normal(LARGE)
    layer.forward(x1)
    cache = layer._recall()[0]
    layer.forward(x2)
    assert np.shares_memory(layer._recall()[0], cache)  # overwritten, not reallocated
    grad = layer.backward(np.ones(LARGE))
    s = 1 / (1 + np.exp(-x2))
    np.testing.assert_allclose(grad, s * (1 - s), rtol=1e-14)
    layer.forward(x2[:-1])
    assert not np.shares_memory(layer._recall()[0], cache)


@NEEDS_NUMBA
@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_small_caches_are_reused_whatever_dtype_object_the_input_has(
    shape: tuple[int, ...], numba_engine: None
) -> None:
    """Each unpickled array carries a float64 dtype equal to NumPy's but an object of
    its own: the compiled engine still overwrites the cache, and f' is still ELU's."""
    layer = ELU()
    x = np.linspace(-3.0, 3.0, math.prod(shape)).reshape(shape)
    first, second = pickle.loads(pickle.dumps(x)), pickle.loads(pickle.dumps(x / 2))
    assert first.dtype == second.dtype == np.float64
    layer.forward(first)
    cache = layer._recall()[0]
    layer.forward(second)
    assert np.shares_memory(layer._recall()[0], cache)  # overwritten, not reallocated
    expected = np.where(x > 0, 1.0, np.exp(np.minimum(x / 2, 0.0)))
    np.testing.assert_allclose(layer.backward(np.ones(shape)), expected, rtol=1e-15)


def test_copies_are_independent() -> None:
    x1, x2 = np.linspace(-3, 3, 7), np.linspace(5, 9, 7)
    layer = Sigmoid()
    layer.forward(x1)
    expected = layer.backward(np.ones(7))
    for copied in (copy.copy(layer), copy.deepcopy(layer)):
        copied.forward(x2)
        np.testing.assert_array_equal(layer.backward(np.ones(7)), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_allocates_its_output_and_backward_its_result_only(
    dtype: Any, each_engine: str
) -> None:
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


@NEEDS_NUMBA
@pytest.mark.parametrize(("kind", "arrays"), [(Softmax, 1), (LogSoftmax, 1), (Softmin, 2)])
def test_the_softmaxes_allocate_their_output_and_backward_its_result_only(
    kind: type[Softmax], arrays: int, numba_engine: None
) -> None:
    """On the compiled engine; Softmin negates x first: one more array in forward. (The
    NumPy engine computes the whole array with NumPy's expressions.)"""
    layer = kind()
    x = np.random.default_rng(0).standard_normal((1000, 2000))
    g = np.ones_like(x)
    layer.forward(x)  # the softmax kept now exists and will be overwritten
    calls: list[tuple[Callable[[], object], int]] = [
        (lambda: layer.forward(x), arrays),
        (lambda: layer.backward(g), 1),
    ]
    for call, count in calls:
        tracemalloc.start()
        call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # `count` arrays, plus a few row-sized temporaries per thread
        assert count * x.nbytes <= peak < count * x.nbytes + 64 * 16384 * 8


def test_no_grad_computes_the_output_and_keeps_nothing(each_engine: str) -> None:
    x = np.linspace(-5, 5, 11)
    layer = Tanh()
    layer.forward(x)
    with no_grad():
        y = layer.forward(x)
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-15)
    assert vars(layer).get("_cache") is None
    with pytest.raises(RuntimeError, match="outside no_grad"):
        layer.backward(np.ones_like(x))


def test_separate_layers_in_many_threads_always_work(threads: None) -> None:
    x = np.random.default_rng(0).standard_normal(LARGE)
    expected = Sigmoid().forward(x)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for n in range(1, 5):
                set_num_threads(1 + (i + n) % 4)  # the pool grows while others submit
                layer = Sigmoid()
                np.testing.assert_array_equal(layer.forward(x), expected)
                layer.backward(np.ones_like(x))
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []


def test_one_instance_in_two_threads_is_an_error_never_a_wrong_gradient() -> None:
    layer = Sigmoid()
    layer.forward(np.zeros(3))
    done = threading.Event()

    def other() -> None:
        layer.forward(np.full(3, 10.0))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert done.is_set()
    with pytest.raises(RuntimeError, match="ran in another thread"):
        layer.backward(np.ones(3))


PROBE = """
import re, sys, numpy as np, tinygrad_act as t
from tinygrad_act import _engine, _team
layers = (t.Sigmoid(), t.ELU(), t.Tanh(), t.SiLU(), t.Softplus(), t.GELU(approximate="tanh"))
loops = []
for layer in layers:
    layer.forward(np.ones(4))
    loops.append((type(layer).__name__, _engine._compiled(layer._kernel(True)[0])[0], "pd"))
t.Sigmoid().forward(np.ones(4, np.float32))  # float32_safe: float32 arithmetic
native = _engine._compiled(t.Sigmoid.function_and_derivative, True)[0]
loops.append(("Sigmoid[float32]", native, "ps"))
relu = t.ReLU()  # f' kept as bytes: the loop of forward, and backward's product
relu.forward(np.ones(4))
relu.backward(np.ones(4))
loops.append(("ReLU", _engine._compiled(t.ReLU.function_and_derivative)[0], "pd"))
loops.append(("ReLU.backward", _team.step_product, "pd"))
for dtype in (np.float64, np.float32):  # GLU's loops: float64 arithmetic for both
    glu = t.GLU()
    with _engine.using("numba"):
        glu.forward(np.ones((3, 4), dtype))
        glu.backward(np.ones((3, 2), dtype))
from tinygrad_act import _gated
loops += [("GLU", _gated.forward, "pd"), ("GLU.backward", _gated.backward, "p[sd]")]
t.Softmax().forward(np.ones((3, 4)))
from tinygrad_act import _rows
loops.append(("Softmax", _rows._forward, "pd"))
t.set_num_threads(2)  # the team's loops: the caller's share, and the workers' jobs
for dtype in (np.float64, np.float32):
    layer = t.Sigmoid()
    layer.forward(np.ones(10**5, dtype))
    layer.backward(np.ones(10**5, dtype))
both = _engine._compiled(t.Sigmoid.function_and_derivative)[0]
jobs = [("job[float64]", both.jobs((np.float64,) * 3, ()), "8 x double>")]
jobs.append(("job[float32]", native.jobs((np.float32,) * 3, ()), "16 x float>"))
jobs.append(("product[float64]", _team.product_job((np.float64,) * 3), "8 x double>"))
codes = (np.float64, np.uint8, np.float64)
jobs.append(("step_product[float64]", _team.product_job(codes), "8 x double>"))
for name, both, suffix in loops:
    if sys.argv[1] == "asm":
        for signature in both.signatures:  # each dtype's; the jobs call these too
            asm = both.inspect_asm(signature)
            packed = r"\\bv\\w+" + suffix + r"\\s+[^\\n]*%"
            widest = len(re.findall(packed + "zmm", asm))
            print(name, len(re.findall(packed + "[yz]mm", asm)), widest)
    else:
        print(name, sum(both.stats.cache_hits.values()))
for name, job, vector in jobs:
    if sys.argv[1] == "asm":
        llvm = job.inspect_llvm()
        print(name, len(re.findall(r"\\d+ x (?:double|float)>", llvm)), llvm.count(vector))
    else:
        print(name, job.cache_hits)
"""


def _has_avx512() -> bool:
    import llvmlite.binding

    return "+avx512f" in llvmlite.binding.get_host_cpu_features().flatten().split(",")


@NEEDS_NUMBA
def test_compiled_loops_vectorize_and_are_cached_on_disk(tmp_path: Any) -> None:
    """Each loop has packed SIMD instructions, for each dtype, and so do the thread
    team's jobs (which call the same loops), on 512-bit registers where the CPU has
    AVX-512; a second process loads them all from disk."""
    env = {**NUMBA_ENVIRONMENT, "NUMBA_CACHE_DIR": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-c", PROBE, "asm"], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    wide = _has_avx512()
    for line in first.stdout.splitlines():
        name, packed, widest = line.split()
        assert int(packed) > 10, f"{name}: the compiled loop did not vectorize"
        # NOTE: on Intel's AVX-512 CPUs LLVM would choose 256-bit vectors by itself
        assert int(widest) > 10 or not wide, f"{name}: not vectorized on 512-bit registers"
    second = subprocess.run(
        [sys.executable, "-c", PROBE, "hits"], env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stderr
    hits = dict(line.split() for line in second.stdout.splitlines())
    assert len(hits) == 16
    assert all(int(n) >= 1 for n in hits.values()), hits


@NEEDS_NUMBA
def test_a_loops_cache_name_does_not_depend_on_reference_counts() -> None:
    """The hash in a loop's name reads the kernel's code with marshal's version 2: from
    version 3 on, marshal writes an object once and refers back to it only where its
    reference count is above 1, so the hash changed once numba held the kernel's
    constants, and a second process compiled anew instead of loading from disk."""
    from tinygrad_act import _numba_math

    scope: dict[str, Any] = {}
    exec("def kernel(xp, x):\n    return 0.123456789 * x, 0.987654321\n", scope)
    kernel = scope["kernel"]
    before = _engine._digest(kernel, _numba_math)
    held = list(kernel.__code__.co_consts)  # as compiling the kernel does
    assert _engine._digest(kernel, _numba_math) == before
    assert 0.987654321 in held


@NEEDS_NUMBA
def test_loops_cached_by_separate_processes_stay_apart(tmp_path: Any) -> None:
    """Two kernels' loops, each compiled and cached by a process of its own, then both
    loaded by a third, whose thread team's jobs call them: each job calls its own
    kernel's loop."""
    env = {**NUMBA_ENVIRONMENT, "NUMBA_CACHE_DIR": str(tmp_path)}
    for layer in ("t.Sigmoid()", "t.GELU(approximate='tanh')", "t.Tanh()"):
        script = f"import numpy as np, tinygrad_act as t; {layer}.forward(np.ones(3))"
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
    script = """
import numpy as np, tinygrad_act as t
x = np.linspace(-6, 6, 100_000)
layers = t.Sigmoid(), t.GELU(approximate="tanh"), t.Tanh()
t.set_num_threads(1)
[layer.forward(x[:3]) for layer in layers]  # all three loaded from disk
t.set_num_threads(2)
y = [layer.forward(x) for layer in layers]
np.save(__import__("sys").argv[1], np.stack(y))
"""
    out = tmp_path / "y.npy"
    done = subprocess.run([sys.executable, "-c", script, out], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    sigmoid, gelu, tanh = np.load(out)
    x = np.linspace(-6, 6, 100_000)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-x)), rtol=1e-14)
    inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)  # x (1 + tanh u) / 2 = x / (1 + e^-2u)
    np.testing.assert_allclose(gelu, x / (1 + np.exp(-2 * inner)), rtol=1e-13)
    np.testing.assert_allclose(tanh, np.tanh(x), rtol=1e-14)


ELEMENTWISE = sorted(name for name, cls in ACTIVATIONS.items() if issubclass(cls, Activation))
#: Both tails, the branch points, and the special values.
POINTS = [-1e308, -800.0, -40.0, -3.0, -1e-300, -0.0, 0.0, 5e-324, 0.5, 2.3994, 30.0, 710.0]
POINTS += [np.inf, -np.inf, np.nan]


def assert_same_bits(actual: Array, expected: Array) -> None:
    """The same bits, -0.0 apart from 0.0; NaN where NaN, of either sign (NumPy's own
    loops do not keep NaN's sign from one array length to another)."""
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan)
    kind = {2: np.uint16, 4: np.uint32, 8: np.uint64}[expected.itemsize]
    np.testing.assert_array_equal(actual[~nan].view(kind), expected[~nan].view(kind))


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_one_element_gives_the_bits_it_has_in_a_larger_array(
    name: str, dtype: Any, each_engine: str
) -> None:
    """One element runs on a NumPy scalar in the NumPy engine: the same C loops, so
    the same bits as the element in an array, for f, f' (backward) and f''."""
    with np.errstate(over="ignore"):  # float16: the large points become +-inf
        x = np.array(POINTS).astype(dtype)
    layer = ACTIVATIONS[name]()
    assert isinstance(layer, Activation)
    y, grad = layer.forward(x), layer.backward(np.ones_like(x))
    second = layer.second_derivative(x) if type(layer).derivatives is not None else None
    for i, shape in zip(range(x.size), itertools.cycle([(1,), (), (1, 1)])):
        one = x[i : i + 1].reshape(shape)
        assert_same_bits(layer.forward(one).ravel(), y[i : i + 1])
        assert_same_bits(layer.backward(np.ones_like(one)).ravel(), grad[i : i + 1])
        if second is not None:
            assert_same_bits(layer.second_derivative(one).ravel(), second[i : i + 1])
        with no_grad():
            assert_same_bits(layer.forward(one).ravel(), y[i : i + 1])


@NEEDS_NUMBA
def test_using_sets_the_engine_of_the_calling_thread_only() -> None:
    seen: list[str] = []
    outside = engine()
    other = "numpy" if outside == "numba" else "numba"
    with _engine.using(other):
        worker = threading.Thread(target=lambda: seen.append(engine()))
        worker.start()
        worker.join()
        assert engine() == other
    assert seen == [outside]
    assert engine() == outside


@pytest.mark.parametrize("numpy_has_the_context_variable", [True, False])
def test_quietly_ignores_floating_point_errors_and_restores_the_state(
    numpy_has_the_context_variable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not numpy_has_the_context_variable:
        monkeypatch.setattr(_engine, "_IGNORE_ALL", None)
    before = np.geterr()
    with _engine.Quietly():  # warnings are errors in this test suite
        assert np.geterr() == {
            "divide": "ignore",
            "over": "ignore",
            "under": "ignore",
            "invalid": "ignore",
        }
        assert np.divide(np.ones(2), 0.0).tolist() == [np.inf, np.inf]
    assert np.geterr() == before
    with pytest.raises(RuntimeWarning):
        np.divide(np.ones(2), 0.0)


@NEEDS_NUMBA
@pytest.mark.parametrize("n", [2 * _engine.TEAM_MIN, 2 * _engine.TEAM_MIN + 1, 100_003, 1_000_001])
@pytest.mark.parametrize("threads_in_team", [2, 3, 5])
def test_the_thread_team_computes_every_element_once(n: int, threads_in_team: int) -> None:
    """Each thread claims its own part's chunks first, then the others': every element
    is written, with the bits the loop gives it alone, whatever the size and the number
    of threads (here more than the cores: the extra workers join late, or not at all)."""
    from tinygrad_act import _team

    loops = _engine._compiled(ELU(alpha=0.3)._kernel(True)[0])
    assert loops is not None
    both, value_only = loops
    x = np.random.default_rng(n).uniform(-30, 30, n)
    parameters = (0.3,)
    y, d = np.empty(n), np.empty(n)
    both(x, y, d, parameters)

    def alone() -> None:  # only when another thread leads the team
        raise AssertionError("the team was busy")

    for loop, outputs in ((both, 2), (value_only, 1)):
        team_outputs = tuple(np.full(n, np.nan) for _ in range(outputs))
        job = loop.jobs((np.float64,) * (1 + outputs), (np.float64,))
        _team.run(alone, job.address, (x, *team_outputs), threads_in_team, parameters)
        np.testing.assert_array_equal(team_outputs[0], y)
        if outputs == 2:
            np.testing.assert_array_equal(team_outputs[1], d)
    g = np.random.default_rng(1).standard_normal(n)
    product = np.full(n, np.nan)
    job = _team.product_job((np.float64,) * 3)
    _team.run(alone, job.address, (g, d, product), threads_in_team)
    np.testing.assert_array_equal(product, g * d)


RAISES = """
import numpy as np, tinygrad_act as t
class Picky(t.Activation):
    @staticmethod
    def function_and_derivative(xp, x):
        if x > 1e300:
            raise ValueError("x is too large")
        return x, x * 0.0 + 1.0
t.set_num_threads(2)
x = np.zeros(100_000)
x[77_777] = 1e301
try:
    Picky().forward(x)
except ValueError as error:
    print(error)
try:
    with t.no_grad():
        Picky().forward(x)
except ValueError as error:
    print(error)
print(Picky().forward(np.ones(100_000)).sum())
"""


@NEEDS_NUMBA
def test_a_kernel_that_raises_on_the_thread_team_raises_in_the_caller(tmp_path: Any) -> None:
    """A user's kernel raising in a team's job: the call raises the kernel's exception,
    and the team serves the next call (in a process of its own: were the team to wait
    for the failed chunk, it would wait for ever)."""
    env = {**NUMBA_ENVIRONMENT, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", RAISES], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["x is too large", "x is too large", "100000.0", ""]


@NEEDS_NUMBA
def test_workers_sleep_when_idle_and_wake_for_the_next_call(
    threads: None, numba_engine: None
) -> None:
    import time

    from tinygrad_act import _team

    set_num_threads(2)
    x = np.random.default_rng(0).standard_normal(LARGE)
    expected = Sigmoid().forward(x)
    Sigmoid().forward(x)  # the team's worker exists and has spun
    assert _team._team is not None
    asleep = _team._team.control[_team.SLEEPING : _team.SLEEPING + 1]
    deadline = time.monotonic() + 10
    while not asleep[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert asleep[0], "the idle worker never went to sleep"
    while asleep[0] and time.monotonic() < deadline:  # calls keep it awake once woken
        np.testing.assert_array_equal(Sigmoid().forward(x), expected)
    assert not asleep[0], "the calls did not wake the worker"


FORK = """
import os, sys, numpy as np, tinygrad_act as t
t.set_num_threads(2)
x = np.random.default_rng(0).standard_normal(300_001)
expected = t.Sigmoid().forward(x)
pid = os.fork()
if pid == 0:  # the child has no workers: it hires its own
    ok = np.array_equal(t.Sigmoid().forward(x), expected)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@NEEDS_NUMBA
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_runs_on_its_own_team() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORK],
        env=NUMBA_ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


class Shrunk(Activation):
    """A user's float32_safe activation with a parameter (float32 arithmetic)."""

    def __init__(self, alpha: float = 0.3) -> None:
        super().__init__()
        self.alpha = alpha

    @staticmethod
    @float32_safe
    def function_and_derivative(xp: Any, x: Any, alpha: Any) -> tuple[Any, Any]:
        e = xp.exp(-alpha * xp.abs(x))
        q = 1 + alpha * e
        return x / q, 1 / (q * q) + e * alpha


class Power(Activation):
    """A user's activation with an integer parameter: x ** 3 multiplies, x ** 3.0 does not."""

    def __init__(self, p: int = 3) -> None:
        super().__init__()
        self.p = p

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, p: Any) -> tuple[Any, Any]:
        return x**p, p * x ** (p - 1)


@NEEDS_NUMBA
@pytest.mark.parametrize(
    ("factory", "dtype"), [(Shrunk, np.float32), (Power, np.float64)], ids=["float32", "int"]
)
def test_every_thread_computes_with_the_parameters_types_of_the_caller(
    factory: type[Activation], dtype: Any, threads: None
) -> None:
    x = np.random.default_rng(0).uniform(-10, 10, 1_000_003).astype(dtype)
    set_num_threads(1)
    expected = factory().forward(x)
    set_num_threads(4)
    for _ in range(3):  # workers join at different points each time
        np.testing.assert_array_equal(factory().forward(x), expected)


@NEEDS_NUMBA
def test_more_threads_than_the_team_can_hold_run_as_many_as_it_can(
    threads: None, numba_engine: None
) -> None:
    from tinygrad_act import _team

    x = np.random.default_rng(0).standard_normal(_engine.TEAM_MIN * (_team.MAX_WORKERS + 9))
    set_num_threads(1)
    expected = Sigmoid().forward(x)
    set_num_threads(_team.MAX_WORKERS + 8)
    np.testing.assert_array_equal(Sigmoid().forward(x), expected)
    assert _team._team is not None
    assert len(_team._team.wakeups) == _team.MAX_WORKERS


def test_the_chain_rule_of_a_strided_derivative(threads: None, each_engine: str) -> None:
    """Threads read the arrays from their addresses: a strided f' must not reach them."""
    set_num_threads(2)
    rng = np.random.default_rng(0)
    derivative = rng.standard_normal(2_000_002)[::2]
    g = rng.standard_normal(derivative.size)
    for _ in range(20):  # a worker joins once it has started and spins
        result = _engine.chain_rule(g, derivative, np.dtype(np.float64))
        np.testing.assert_array_equal(result, g * derivative)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_chain_rule_of_small_arrays_in_any_layout(dtype: Any, each_engine: str) -> None:
    """Small arrays run the product's machine code, which reads memory as C-ordered:
    a strided, Fortran-ordered or read-only f' or gradient must still give the exact
    product."""
    rng = np.random.default_rng(1)
    kind = np.dtype(dtype)
    contiguous = rng.standard_normal(12).astype(dtype)
    read_only = contiguous.copy()
    read_only.flags.writeable = False
    for derivative in [
        contiguous,  # first, so that the machine code exists
        rng.standard_normal(24).astype(dtype)[::2],
        np.asfortranarray(rng.standard_normal((3, 4)).astype(dtype)),
        read_only,
        contiguous,
    ]:
        g = rng.standard_normal(derivative.shape).astype(dtype)
        strided = np.repeat(g, 2, axis=-1)[..., ::2]
        for grad in (g, strided, np.asfortranarray(g), np.ascontiguousarray(g)):
            result = _engine.chain_rule(grad, derivative, kind)
            assert result.dtype == kind
            np.testing.assert_array_equal(result, grad * derivative)


class Squared(Activation):
    """A user's activation f = scale**2 x, its parameter squared in its own type."""

    def __init__(self, scale: Any) -> None:
        super().__init__()
        self.scale = scale

    @staticmethod
    def function_and_derivative(xp: Any, x: Any, scale: Any) -> tuple[Any, Any]:
        return (scale * scale) * x, scale * scale + 0 * x


@pytest.mark.parametrize("size", [1, 7])
def test_parameters_of_each_type_give_their_own_value(size: int, each_engine: str) -> None:
    """Small arrays skip numba's type matching: a parameter of another type than the
    last call's still computes with its own value, in any order, with and without
    the derivative."""
    from tinygrad_act import LeakyReLU

    x = np.full(size, -3.0)
    for value in [3, 0.1, np.float32(0.1), np.float64(0.7), 3, np.int8(-2), 0.1]:
        square = np.float64(value * value)  # in the parameter's own type, as numba does
        leaky, squared = LeakyReLU(), Squared(value)
        leaky.negative_slope = value
        for layer, slope in ((leaky, np.float64(value)), (squared, square)):
            with no_grad():
                np.testing.assert_array_equal(layer.forward(x), x * slope, err_msg=repr(value))
            np.testing.assert_array_equal(layer.forward(x), x * slope, err_msg=repr(value))
            np.testing.assert_array_equal(layer.backward(np.ones(size)), np.full(size, slope))


@pytest.mark.parametrize("size", [1, 7])
def test_float32_parameters_follow_every_change_of_value(size: int, each_engine: str) -> None:
    """ELU's float32 loops take alpha in float32: each call computes with the value set
    now, of any type, in any order, in two layers taking turns (-0.0 apart from 0.0).
    At -50, expm1 is -1 in float32, so f is -float32(alpha) exactly; an alpha beyond
    float32's range takes the float64 loops, whose f, -1e39, rounds to -inf."""
    x = np.full(size, -50.0, np.float32)
    values: list[Any] = [1.0, 2.5, -0.0, 0.0, np.float32(0.5), 3, 1e39, 0.25, 1.0]
    first, second = ELU(), ELU()
    for value in values:
        first.alpha = value
        second.alpha = -2.0
        for layer, alpha in ((first, value), (second, -2.0), (first, value)):
            beyond = float(alpha) == 1e39
            expected = np.full(size, -np.inf if beyond else -np.float32(alpha), np.float32)
            y = layer.forward(x)
            assert y.dtype == np.float32
            np.testing.assert_array_equal(y, expected, err_msg=repr(value))
            assert (np.signbit(y) == np.signbit(expected)).all(), value


@pytest.mark.parametrize("size", [1, 7])
def test_an_integer_parameter_beyond_int64_computes_as_its_float(
    size: int, each_engine: str
) -> None:
    """numba takes no int beyond int64: such a parameter computes as the float it rounds
    to, as NumPy takes it, never a compiler's error; one beyond float64's range is a
    ValueError naming it, in the constructor and wherever the kernel runs."""
    x = np.full(size, -0.5)
    for value in (2**64, -(2**70)):
        layer = ELU()
        layer.alpha = value
        alpha = float(value)
        np.testing.assert_allclose(layer.forward(x), alpha * np.expm1(x), rtol=4e-16)
        np.testing.assert_allclose(layer.backward(np.ones(size)), alpha * np.exp(x), rtol=4e-16)
        np.testing.assert_allclose(layer.second_derivative(x), alpha * np.exp(x), rtol=4e-16)
    message = "ELU: alpha must be finite, got an integer beyond float64's range"
    with pytest.raises(ValueError, match=message):
        ELU(alpha=10**400)
    layer = ELU()
    layer.alpha = 10**400
    for compute in (layer.forward, layer.second_derivative):
        with pytest.raises(ValueError, match=message):
            compute(x)


BAD_PARAMETERS: list[tuple[Any, str]] = [
    ("0.5", "must be a number, got '0.5'"),
    (None, "must be a number, got None"),
    ([0.5], r"must be a number, got \[0\.5\]"),
    (np.array([0.5, 2.0]), r"must be a number, got array\(\[0\.5, 2\. \]\)"),
    (np.int64(10), ""),  # numbers compute, as 10.0 does
    (np.float32(10), ""),
    (np.float64(10), ""),
]


@pytest.mark.parametrize(("value", "message"), BAD_PARAMETERS)
@pytest.mark.parametrize("size", [1, 7])
def test_a_parameter_set_to_a_non_number_is_a_clear_error(
    value: Any, message: str, size: int, each_engine: str
) -> None:
    """An attribute a kernel reads, set after the constructor checked it, is checked when
    forward reads it: the class and attribute named, no compiler error, no array
    broadcast against x; the failed forward leaves no cache behind."""
    from tinygrad_act import ELU, Hardtanh

    x = np.full(size, -0.5)
    for layer, name in [
        (ELU(), "alpha"),
        (Hardtanh(), "max_val"),
        (Squared(2.0), "scale"),  # a user's kernel
    ]:
        layer.forward(x)
        setattr(layer, name, value)
        if not message:
            twin = type(layer).__new__(type(layer))
            twin.__dict__.update({**vars(layer), name: 10.0})
            np.testing.assert_array_equal(layer.forward(x), twin.forward(x))
            continue
        where = f"{type(layer).__name__}: {name} "
        for compute in (layer.forward, layer.second_derivative):
            if compute == layer.second_derivative and isinstance(layer, Squared):
                continue  # no f''
            with pytest.raises(TypeError, match=re.escape(where) + message):
                compute(x)
        with no_grad(), pytest.raises(TypeError, match=re.escape(where) + message):
            layer.forward(x)
        with pytest.raises(RuntimeError, match="forward"):
            layer.backward(np.ones(size))


@pytest.mark.parametrize("training", [True, False])
def test_rrelu_and_gelu_check_settings_changed_after_the_constructor(
    training: bool, each_engine: str
) -> None:
    """RReLU's bounds and GELU's form are read by forward itself, and checked there as
    the constructor checks them."""
    from tinygrad_act import GELU, RReLU

    x = np.full(7, -0.5)
    cases: list[tuple[Any, Any, type[Exception], str]] = [
        (np.array([0.1, 0.2]), 0.3, TypeError, "RReLU: lower must be a real number"),
        (0.1, None, TypeError, "RReLU: upper must be a real number, got None"),
        (0.4, 0.2, ValueError, "RReLU: lower must be <= upper, got lower=0.4 and upper=0.2"),
        (0.1, np.nan, ValueError, "RReLU: upper must be finite, got nan"),
    ]
    for lower, upper, error, message in cases:
        rrelu = RReLU().train(training)
        rrelu.forward(x)
        rrelu.lower, rrelu.upper = lower, upper
        with pytest.raises(error, match=re.escape(message)):
            rrelu.forward(x)
        with pytest.raises(RuntimeError, match="forward"):
            rrelu.backward(np.ones(7))
    gelu = GELU()
    gelu.approximate = "tan"  # type: ignore[assignment]
    for compute in (gelu.forward, gelu.second_derivative):
        with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got"):
            compute(x)


@pytest.mark.parametrize("backward_engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 3])
def test_prelu_in_any_layout_against_its_closed_form(
    dtype: Any, channels: int, backward_engine: str, each_engine: str
) -> None:
    """PReLU's compiled pass (and NumPy's, and either engine's backward after either's
    forward): outputs rounded once from float64, the slopes' gradient within the error
    bound of a float64 sum of its terms (n u sum |t|) of the exact sum (math.fsum)."""
    import math

    from tinygrad_act import PReLU

    rng = np.random.default_rng(2)
    slopes = np.array([0.25, -0.5, 3.0])[:channels]
    base = rng.standard_normal((4, 3, 5, 2)) * 3
    base[0, :, 0, 0] = [np.nan, -0.0, 0.0]
    for x in (base, np.asfortranarray(base), base[:, :, ::2], base.transpose(0, 1, 3, 2)):
        x = x.astype(dtype)
        layer = PReLU(channels)
        layer.weight.data[:] = slopes
        wide = x.astype(np.float64)
        slope = slopes.reshape((-1, 1, 1)) if channels > 1 else slopes[0]
        with np.errstate(invalid="ignore"):
            expected = np.where(wide > 0, wide, slope * wide).astype(dtype)
        y = layer.forward(x)
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(y, expected)
        g = rng.standard_normal(x.shape).astype(np.float32)
        with _engine.using(backward_engine):
            dx = layer.backward(g)
        factor = np.where(wide > 0, 1.0, np.where(wide <= 0, slope, np.nan))
        np.testing.assert_array_equal(dx, (g * factor).astype(dtype))
        terms = np.where(wide > 0, 0.0, g.astype(np.float64) * wide)
        for c in range(channels):
            chosen = terms[:, c] if channels > 1 else terms
            finite = chosen[~np.isnan(chosen)]
            exact = math.fsum(finite.ravel()) if finite.size == chosen.size else np.nan
            scale = np.abs(chosen[~np.isnan(chosen)]).sum()
            got = layer.weight.grad[c]
            if np.isnan(exact):
                assert np.isnan(got)
            else:
                assert abs(got - exact) <= chosen.size * 2.0**-53 * scale


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_a_forward_that_fails_leaves_no_cache_for_backward(name: str, each_engine: str) -> None:
    """Bad input after a good forward: backward must not answer with the old cache."""
    from tinygrad_act import Linear, RReLU

    for layer in (ACTIVATIONS[name](), Linear(4, 4, rng=0)):
        if isinstance(layer, RReLU):
            layer.eval()
        x = np.linspace(-2.0, 2.0, 8).reshape(2, 4)
        layer.forward(x)
        with pytest.raises(TypeError, match="complex"):
            layer.forward(x.astype(complex))
        with pytest.raises(RuntimeError, match="without a forward"):
            layer.backward(np.ones((2, 4)))
        layer.forward(x)
        with pytest.raises(KeyboardInterrupt):
            layer.forward(_Interrupted())  # Ctrl-C while forward converts its input
        with pytest.raises(RuntimeError, match="without a forward"):
            layer.backward(np.ones((2, 4)))


class _Interrupted:
    """An array-like whose conversion is interrupted."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> Array:
        raise KeyboardInterrupt


def test_prelu_takes_slopes_of_any_real_dtype(each_engine: str) -> None:
    from tinygrad_act import PReLU

    layer = PReLU()
    layer.weight.data = np.array([0.5], np.float16)
    np.testing.assert_array_equal(layer.forward(np.array([-1.0, 2.0])), [-0.5, 2.0])
    np.testing.assert_array_equal(layer.backward(np.ones(2)), [0.5, 1.0])


def _glu_closed_form(x: Array, axis: int) -> tuple[Array, Array, Array]:
    """a, sigma(b) and sigma(b) sigma(-b) in float64, by the textbook formula (accurate
    for the moderate b of these tests)."""
    wide = np.moveaxis(x.astype(np.float64), axis, 0)
    a, b = wide[: len(wide) // 2], wide[len(wide) // 2 :]
    gate = 1 / (1 + np.exp(-b))
    return a, gate, gate / (1 + np.exp(b))


@pytest.mark.parametrize("backward_engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_glu_in_any_layout_and_axis_against_its_closed_form(
    dtype: Any, axis: int, backward_engine: str, each_engine: str
) -> None:
    """GLU compiled (and on NumPy, and either engine's backward after either's forward):
    float16 and float32 rounded once from float64, f' kept in the input's dtype (float16's
    in float32), so that backward is g f' rounded once; float64 within a few eps. Every
    layout gives the same bits."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((4, 6, 8)) * 3
    base[0, 0, 0], base[0, 3, 0] = -0.0, np.nan  # a signed zero, and a NaN gate
    wider = np.zeros((4, 6, 16), dtype)
    wider[:, :, ::2] = base
    shape = list(base.shape)
    shape[axis] //= 2
    g = rng.standard_normal(shape).astype(dtype)
    first = None
    layouts = (  # the same values in four memory layouts
        base.astype(dtype),
        np.asfortranarray(base, dtype),
        wider[:, :, ::2],
        np.ascontiguousarray(base.transpose(2, 0, 1), dtype).transpose(1, 2, 0),
    )
    for x in layouts:
        before = x.copy()
        layer = GLU(axis=axis)
        y = layer.forward(x)
        with _engine.using(backward_engine):
            dx = layer.backward(g)
        np.testing.assert_array_equal(x, before)  # never changed
        a, gate, slope = _glu_closed_form(x, axis)
        kept = np.float32 if dtype == np.float16 else dtype
        wide_g = np.moveaxis(g.astype(np.float64), axis, 0)
        expected = [
            a * gate,
            wide_g * gate.astype(kept),
            wide_g * (a * slope).astype(kept),
        ]
        got = [np.moveaxis(y, axis, 0)]
        got += np.split(np.moveaxis(dx, axis, 0), 2)
        assert y.dtype == dx.dtype == dtype
        for result, exact in zip(got, expected, strict=True):
            if dtype == np.float64:
                np.testing.assert_allclose(result, exact, rtol=8 * 2.0**-53, atol=0)
            else:
                np.testing.assert_array_equal(result, exact.astype(dtype))
        if first is None:
            first = (y, dx)
        else:  # bit-identical whatever the layout
            np.testing.assert_array_equal(y.view(np.uint8), first[0].view(np.uint8))
            np.testing.assert_array_equal(dx.view(np.uint8), first[1].view(np.uint8))


def test_glu_outputs_are_never_its_cache(each_engine: str) -> None:
    """A second forward overwrites the first's cache, never an output the caller holds;
    inside no_grad forward gives the same output and keeps nothing."""
    rng = np.random.default_rng(4)
    layer = GLU()
    x1, x2 = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 3, 8))
    y1 = layer.forward(x1)
    dx1 = layer.backward(np.ones_like(y1))
    saved = y1.copy(), dx1.copy()
    y2 = layer.forward(x2)
    dx2 = layer.backward(np.ones_like(y2))
    np.testing.assert_array_equal(y1, saved[0])
    np.testing.assert_array_equal(dx1, saved[1])
    assert not np.array_equal(dx2, dx1)
    with no_grad():
        np.testing.assert_array_equal(layer.forward(x2), y2)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(np.ones_like(y2))


def test_glu_gradient_of_another_dtype_rounds_once(each_engine: str) -> None:
    """A float64 gradient after float32 input: g f' in float64, rounded once to float32
    (f' is the float32 one kept); a float16 gradient is widened exactly."""
    x = np.array([[0.7, -2.0, 1.5, 3.0]], np.float32)
    a, gate, slope = _glu_closed_form(x, -1)
    f_prime = np.concatenate([gate.astype(np.float32), (a * slope).astype(np.float32)])
    for g in (np.array([[1 / 3, 1e-40]]), np.array([[0.1, -7.0]], np.float16)):
        layer = GLU()
        layer.forward(x)
        expected = np.tile(g.astype(np.float64).T, (2, 1)) * f_prime
        got = layer.backward(g)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected.astype(np.float32).T)


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("axis", [0, -1])
def test_glu_results_do_not_depend_on_the_thread_count(axis: int, each_engine: str) -> None:
    """Threads share one long row (axis 0) or short rows (axis -1, halves of 3, which run
    column by column, the threads' bounds falling inside rows): the same bits."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((2, LARGE // 2) if axis == 0 else (LARGE // 6, 6))
    for x in (base.astype(np.float32), base):
        g = rng.standard_normal(base[:1].shape if axis == 0 else base[:, :3].shape)
        results = []
        for threads in (1, 2):
            set_num_threads(threads)
            layer = GLU(axis=axis)
            y = layer.forward(x)
            # the gradient in x's dtype, and float64 (rounded once) after float32
            results.append((y, layer.backward(g.astype(x.dtype)), layer.backward(g)))
        for one, two in zip(*results, strict=True):
            np.testing.assert_array_equal(one.view(np.uint8), two.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_rrelu_training_against_its_closed_form(dtype: Any, each_engine: str) -> None:
    """RReLU while training (compiled on numba but for float16): a slope for each
    element, drawn by NumPy from the layer's seed; y rounded once from float64; backward
    g times the float64 slope, rounded once; the same bits in every layout."""
    from tinygrad_act import RReLU

    rng = np.random.default_rng(6)
    base = rng.standard_normal((5, 4, 3)) * 3
    base[0, 0] = [np.nan, -0.0, 0.0]
    g = rng.standard_normal(base.shape).astype(dtype)
    wider = np.zeros((5, 4, 6), dtype)
    wider[:, :, ::2] = base
    layouts = (base.astype(dtype), np.asfortranarray(base, dtype), wider[:, :, ::2])
    slopes = np.random.default_rng(7).uniform(0.1, 0.3, base.shape)
    for x in layouts:
        layer = RReLU(0.1, 0.3, rng=7)
        y = layer.forward(x)
        dx = layer.backward(g)
        wide = x.astype(np.float64)
        with np.errstate(invalid="ignore"):
            expected = np.where(wide > 0, wide, slopes * wide).astype(dtype)
            factor = np.where(wide > 0, 1.0, np.where(wide <= 0, slopes, np.nan))
        assert y.dtype == dx.dtype == dtype
        np.testing.assert_array_equal(y, expected)
        assert np.signbit(y[0, 0, 1])
        assert not np.signbit(y[0, 0, 2])
        np.testing.assert_array_equal(dx, (g.astype(np.float64) * factor).astype(dtype))


#: The activations whose f' is a step (`_engine.step_derivative`), each with the set of
#: x where f' is not 0, and its value there, written from its formula.
STEPS: dict[str, tuple[Callable[[], Activation], Callable[[Array], Any], float]] = {
    "ReLU": (ReLU, lambda x: x > 0, 1.0),
    "ReLU6": (ReLU6, lambda x: (x > 0) & (x < 6), 1.0),
    "Hardtanh": (lambda: Hardtanh(-2.0, 3.0), lambda x: (x > -2) & (x < 3), 1.0),
    "Hardshrink": (lambda: Hardshrink(0.5), lambda x: np.abs(x) > 0.5, 1.0),
    "Softshrink": (lambda: Softshrink(0.5), lambda x: np.abs(x) > 0.5, 1.0),
    "Threshold": (lambda: Threshold(0.5, -2.0), lambda x: x > 0.5, 1.0),
    "Hardsigmoid": (Hardsigmoid, lambda x: (x > -3) & (x < 3), 1 / 6),
}


def _step_kept(value: float, dtype: Any) -> float:
    """f' = `value` as a layer keeps it for input of `dtype`: float16's in float32."""
    return float(np.asarray(value, np.float64 if dtype == np.float64 else np.float32))


def _step_inputs(dtype: Any, n: int) -> Array:
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    x[: min(n, 9)] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 0.5, -0.5, 6.0, 3.0][: min(n, 9)]
    return x


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("name", sorted(STEPS))
@pytest.mark.parametrize("n", [1, 9, LARGE])
def test_a_step_derivative_backward_is_the_gradient_times_the_step(
    name: str, n: int, each_engine: str
) -> None:
    """Backward is g times the step's value (1, or Hardsigmoid's 1/6 as f' is kept in
    x's dtype, float16's in float32) where f' is not 0, g times 0 elsewhere (NaN for an
    infinite g), NaN for NaN x, for every dtype of x and of g, computed in float64 and
    rounded once to x's dtype (a float64 g of 1e300 gives float32's 0, not inf times 0),
    on 1 and 2 threads. The compiled engine keeps these f' in a byte an element."""
    make, ones, value = STEPS[name]
    for threads, dtype, g_dtype in itertools.product(
        (1, 2), (np.float16, np.float32, np.float64), (np.float16, np.float32, np.float64)
    ):
        set_num_threads(threads)
        x = _step_inputs(dtype, n)
        g = np.random.default_rng(1).standard_normal(n).astype(g_dtype)
        g[n // 2] = 1e300 if g_dtype == np.float64 else np.inf
        layer = make()
        layer.forward(x)
        got = layer.backward(g)
        wide, gradient = x.astype(np.float64), g.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0; 1e300 rounds to inf
            expected = np.where(ones(wide), gradient * _step_kept(value, dtype), gradient * 0.0)
            expected[np.isnan(wide)] = np.nan
            rounded = expected.astype(dtype)
        assert got.dtype == dtype, (name, dtype, g_dtype)
        np.testing.assert_array_equal(got, rounded, err_msg=f"{name} {g_dtype}")
        if each_engine == "numba":
            kept = layer._cache[0][0]
            assert kept.dtype == np.uint8
            assert kept.shape == x.shape


@NEEDS_NUMBA
@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_step_derivative_survives_a_change_of_engine(name: str) -> None:
    """f' kept as bytes by the compiled engine: backward on the NumPy engine reads them
    right, and a NumPy forward of the same shape does not write its floats into them
    (nor the compiled engine its bytes into the NumPy engine's floats)."""
    make, ones, value = STEPS[name]
    x = _step_inputs(np.float64, 33)
    g = np.random.default_rng(2).standard_normal(33)
    with np.errstate(invalid="ignore"):
        expected = np.where(ones(x), g * value, 0.0)
    expected[np.isnan(x)] = np.nan
    layer = make()
    for forward, back in itertools.product(ENGINES, repeat=2):
        with _engine.using(forward):
            layer.forward(x)
        with _engine.using(back):
            np.testing.assert_array_equal(layer.backward(g), expected, err_msg=forward + back)


@NEEDS_NUMBA
@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_step_derivative_is_returned_as_floats(name: str, numba_engine: None) -> None:
    """Where f' itself is asked for, the compiled engine turns its bytes back into the
    step's value, 0 and NaN, in f's dtype (float32 for float16)."""
    make, ones, value = STEPS[name]
    layer = make()
    for dtype in (np.float16, np.float32, np.float64):
        x = _step_inputs(dtype, 9)
        f_prime = _engine.evaluate(*layer._kernel(True)[:2], x, derivative=True)[1]
        expected = np.where(ones(x.astype(np.float64)), value, 0.0)
        expected[np.isnan(x)] = np.nan
        assert f_prime is not None
        assert f_prime.dtype == _engine.derivative_dtype(x.dtype)
        np.testing.assert_array_equal(f_prime, expected.astype(f_prime.dtype))


@pytest.mark.parametrize(
    ("make", "name", "value", "message"),
    [
        (Softplus, "beta", -1.0, "Softplus: beta must be a positive finite number, got -1.0"),
        (Hardtanh, "min_val", 2.0, "Hardtanh: min_val must be less than max_val, got "
         "min_val=2.0 and max_val=1.0"),
        (ReLU6, "max_val", -1, "ReLU6: min_val must be less than max_val, got min_val=0.0 "
         "and max_val=-1"),
        (CELU, "alpha", 0.0, "CELU: alpha must not be 0 (f divides x by it), got 0.0"),
        (ELU, "alpha", math.inf, "ELU: alpha must be finite, got inf"),
        (LeakyReLU, "negative_slope", math.nan, "LeakyReLU: negative_slope must be finite"),
        (Softshrink, "lambd", -0.5, "Softshrink: lambd must be >= 0, got -0.5"),
        (Hardshrink, "lambd", math.nan, "Hardshrink: lambd must be finite, got nan"),
        (lambda: Threshold(0.5, -2.0), "threshold", math.nan,
         "Threshold: threshold must be finite, got nan"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)  # fmt: skip
def test_a_setting_changed_since_the_constructor_is_checked_as_the_constructor_does(
    make: Callable[[], Activation], name: str, value: Any, message: str, each_engine: str
) -> None:
    """A value the constructor refuses, set since, is refused where the kernel would read
    it (forward, second_derivative, another library's array), with the constructor's
    message; the failed forward leaves no cache. It used to compute: a negative beta,
    a Hardtanh upside down, NaN thresholds giving NaN."""
    xs = pytest.importorskip("array_api_strict")
    layer = make()
    x = np.array([-3.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    layer.forward(x)
    setattr(layer, name, value)
    for compute, given in ((layer.forward, x), (layer.second_derivative, x),
                           (layer.forward, xs.asarray(x))):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(message)):
            compute(given)
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(np.ones(6))
    if name in inspect.signature(type(layer)).parameters:  # the constructor says the same
        with pytest.raises(ValueError, match=re.escape(message)):
            type(layer)(**{name: value})
    setattr(layer, name, getattr(make(), name))  # set back: computes again
    np.testing.assert_array_equal(layer.forward(x), make().forward(x))


def test_a_setting_equal_to_the_last_checked_but_of_another_type_is_checked() -> None:
    """True == 1.0, but the constructor refuses a bool: so does forward, whatever the
    value before it. forward leaves the settings as they are (an int stays an int)."""
    layer = LeakyReLU(1.0)
    layer.forward(np.ones(2))
    layer.negative_slope = True
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a real number"):
        layer.forward(np.ones(2))
    layer.negative_slope = 2
    np.testing.assert_array_equal(layer.forward(-np.ones(2)), [-2.0, -2.0])
    assert type(layer.negative_slope) is int


def test_forward_writes_no_setting_to_a_subclass_that_reads_it_from_elsewhere() -> None:
    """A subclass without ELU's constructor may take alpha from the class, or from a
    property without a setter: forward checks the value it reads, and sets nothing."""

    class FromClass(ELU):
        alpha = 2.0

        def __init__(self) -> None:
            pass

    class FromProperty(ELU):
        def __init__(self, tied: list[float]) -> None:
            self.tied = tied

        @property
        def alpha(self) -> float:  # type: ignore[override]
            return self.tied[0]

    x = np.array([-3.0])
    layer = FromClass()
    layer.forward(x)
    FromClass.alpha = 0.5
    np.testing.assert_allclose(layer.forward(x), 0.5 * np.expm1(-3.0), rtol=1e-15)
    tied = [0.5]
    other = FromProperty(tied)
    np.testing.assert_allclose(other.forward(x), 0.5 * np.expm1(-3.0), rtol=1e-15)
    tied[0] = math.nan
    with pytest.raises(ValueError, match="FromProperty: alpha must be finite, got nan"):
        other.forward(x)


def test_a_subclass_whose_kernel_reads_other_settings_is_not_held_to_its_bases() -> None:
    """Softplus's check reads beta: a subclass whose kernel reads gamma instead (and has
    no beta) computes, and its own values are taken as they are."""

    class Scaled(Softplus):
        def __init__(self, gamma: float) -> None:
            self.gamma = gamma

        @staticmethod
        def function_and_derivative(xp: Any, x: Any, gamma: float) -> tuple[Any, Any]:
            return gamma * x, gamma + 0 * x

    layer = Scaled(-2.0)
    np.testing.assert_array_equal(layer.forward(np.array([1.0, 3.0])), [-2.0, -6.0])
    np.testing.assert_array_equal(layer.backward(np.ones(2)), [-2.0, -2.0])


@NEEDS_NUMBA
def test_a_kernel_wrapped_with_functools_wraps_does_not_inherit_its_marks(
    numba_engine: None,
) -> None:
    """``functools.wraps`` copies the attributes `float32_safe` and `step_derivative` set:
    a wrapper of ReLU's kernel, whose f' is 2, is neither, so its f' stays 2 and its
    float32 loop runs its own code."""

    class Doubled(Activation):
        @staticmethod  # (mypy reads functools.wraps's result as another signature)
        @functools.wraps(ReLU.function_and_derivative)
        def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:  # type: ignore[override]
            y = xp.where(x < 0, 0.0, 2 * x)
            return y, 2 * xp.sign(y)

    for dtype in (np.float64, np.float32):
        layer = Doubled()
        np.testing.assert_array_equal(layer.forward(np.array([-1, 1, 3], dtype)), [0, 2, 6])
        np.testing.assert_array_equal(layer.backward(np.ones(3, dtype)), [0, 2, 2])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_step_of_a_value_that_does_not_round_exactly(dtype: Any, each_engine: str) -> None:
    """A user's step kernel whose f' is 0.1 (not a float32, nor a float64, exactly), in
    float32 arithmetic too (`float32_safe`): backward is g times 0.1 as f' is kept (in
    x's dtype, float16's in float32), and on the compiled engine f' is kept in a byte."""

    class Tenth(Activation):
        @staticmethod
        @float32_safe
        @_engine.step_derivative(value=0.1)
        def function_and_derivative(xp: Any, x: Any) -> tuple[Any, Any]:
            return xp.where(x > 0, x, 0.0), xp.where(x > 0, 0.1, xp.where(x <= 0, 0.0, x))

    x = np.array([-1.0, 0.0, 0.5, 2.0, np.nan, 3.0], dtype)
    g = np.array([1.0, 2.0, 3.0, -4.0, 5.0, 6.0], dtype)
    layer = Tenth()
    layer.forward(x)
    kept = 0.1 if dtype == np.float64 else float(np.float32(0.1))
    with np.errstate(invalid="ignore"):
        expected = (g.astype(np.float64) * np.array([0, 0, kept, kept, np.nan, kept])).astype(dtype)
    np.testing.assert_array_equal(layer.backward(g), expected)
    if each_engine == "numba":
        assert layer._cache[0][0].dtype == np.uint8


@NEEDS_NUMBA
def test_a_compiled_form_with_another_step_is_refused(numba_engine: None) -> None:
    """A compiled form keeps its own f' as step codes, which backward reads as the
    kernel's: one marked with another value than its kernel's is refused where the
    engine first runs it, naming both, rather than give a wrong gradient."""

    def half(xp: Any, x: Any) -> tuple[Any, Any]:
        return xp.where(x > 0, 0.5 * x, 0.0), xp.where(x > 0, 0.5, xp.where(x <= 0, 0.0, x))

    @_engine.compiled_form_of(half)
    @_engine.step_derivative(value=0.25)
    def half_compiled(xp: Any, x: Any) -> tuple[Any, Any]:
        return xp.where(x > 0, 0.5 * x, 0.0), xp.where(x > 0, 0.5, xp.where(x <= 0, 0.0, x))

    class Half(Activation):
        function_and_derivative = staticmethod(half)

    with pytest.raises(
        TypeError,
        match=r"half_compiled: marked step_derivative with value "
        r"0\.25, but it stands in for .*half, whose f' step is 1\.0",
    ):
        Half().forward(np.array([1.0, -1.0]))


def _scaled(factor: float) -> type[Activation]:
    """An activation made by a factory: its kernel closes over `factor`."""

    @_engine.step_derivative(value=factor)
    def kernel(xp: Any, x: Any) -> tuple[Any, Any]:
        slope = xp.where(x > 0, factor, xp.where(x <= 0, 0.0, x))  # NaN for NaN
        return x * slope, slope

    class Scaled(Activation):
        function_and_derivative = staticmethod(kernel)

    return Scaled


def test_kernels_closing_over_other_values_compile_apart(each_engine: str) -> None:
    """Two kernels of one factory have the same code and source file: each still runs
    with its own closure value and step (numba compiles them in as constants, and its
    disk cache must not hand one's loop to the other)."""
    x, g = np.array([2.0, -1.0, np.nan, 3.0]), np.array([1.0, 1.0, 1.0, 4.0])
    for factor in (0.5, 0.25, 0.5, 3.0):
        layer = _scaled(factor)()
        np.testing.assert_array_equal(layer.forward(x), [2 * factor, 0.0, np.nan, 3 * factor])
        np.testing.assert_array_equal(layer.backward(g), [factor, 0.0, np.nan, 4 * factor])


def test_kernels_reading_other_values_compile_apart(each_engine: str) -> None:
    """numba compiles the globals a kernel reads, and the floats it closes over, into its
    loop as constants: one kernel's code with another global's value, or a NaN of the
    other sign, runs with its own."""
    source = "def kernel(xp, x):\n    return x * SCALE, x * 0.0 + SCALE\n"
    x = np.array([1.0, -2.0])
    for scale in (2.0, 3.0, 2.0):
        scope: dict[str, Any] = {"SCALE": scale}
        exec(source, scope)  # no source file: the kernel's code alone tells them apart
        layer = type("Scaled", (Activation,), {"function_and_derivative": scope["kernel"]})()
        np.testing.assert_array_equal(layer.forward(x), x * scale)
        np.testing.assert_array_equal(layer.backward(np.ones(2)), [scale, scale])
    for sign in (1.0, -1.0, 1.0):
        layer = _constant(math.copysign(math.nan, sign))()
        assert np.all(np.signbit(layer.forward(x)) == (sign < 0)), sign


def _constant(value: float) -> type[Activation]:
    """An activation whose f is `value` everywhere: its kernel closes over it."""

    def kernel(xp: Any, x: Any) -> tuple[Any, Any]:
        return x * 0.0 + value, x * 0.0

    class Constant(Activation):
        function_and_derivative = staticmethod(kernel)

    return Constant


def test_ctrl_c_while_compiling_is_raised_once_the_compile_lock_is_let_go() -> None:
    """A SIGINT while the compile lock is held (numba compiling, where a KeyboardInterrupt
    raised inside its callbacks would be lost) is held back, then raised as
    KeyboardInterrupt as the lock is let go; the handler before is back."""
    reached = []

    def compile_with_a_ctrl_c() -> None:
        with _engine.compile_lock:
            signal.raise_signal(signal.SIGINT)
            reached.append("after the signal")

    # Python's own handler, as in a terminal (a background job of a script ignores SIGINT)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            compile_with_a_ctrl_c()
        assert reached == ["after the signal"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with _engine.compile_lock:  # and without a signal, nothing is raised
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.parametrize("value", [0.0, -0.0, math.inf, math.nan])
def test_a_step_of_zero_or_not_finite_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"step_derivative: value must be finite and not 0"):
        _engine.step_derivative(value=value)


@NEEDS_NUMBA
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_columns_copied_into_rows_are_the_columns(dtype: Any) -> None:
    """The softmaxes' copy of a block of columns into rows (`_rows._gather`): square
    tiles transposed in SIMD registers, 16 wide for float32 and 8 for float64, and the
    edges an entry at a time, is NumPy's transpose, for sizes at, below and beside the
    tile's width and blocks that start anywhere."""
    from tinygrad_act import _rows

    rng = np.random.default_rng(11)
    for rows, columns in [(16, 16), (8, 8), (7, 5), (17, 70), (64, 64), (33, 9), (130, 100)]:
        x = rng.standard_normal((rows, columns)).astype(dtype)
        for start in range(0, columns, 7):
            for count in {1, min(8, columns - start), min(16, columns - start), columns - start}:
                block = np.full((count, rows), np.nan, dtype)
                _rows._gather(x, start, block)
                np.testing.assert_array_equal(block, x[:, start : start + count].T)
