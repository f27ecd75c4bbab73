"""Properties every built-in layer keeps, on every engine, whatever the input.

Hypothesis draws, for every built-in layer (each activation in `ACTIVATIONS`,
`Linear` and a small `Sequential`): memory layouts (C, Fortran, strided,
reversed, read-only, non-native byte order, lists and Python scalars; 0-d and
empty shapes), dtypes of the input and of ``grad_output`` (float16/32/64, ints,
bool), and special values (±0, ±inf, NaN, subnormals, ±max, a ``grad_output``
far beyond the input's dtype). Each result must equal the native C-contiguous
result bit for bit, signed zeros included; no call may warn; no argument may be
modified. Each promise of the README's "What every activation does" has a test
that names it.

The end of this file holds deterministic reproducers of bugs the properties found,
kept as regression tests.
"""

from __future__ import annotations

import copy
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_act import Linear, Sequential, Softmax, Tanh, _engine
from tinygrad_act.activations import (
    ACTIVATIONS,
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    RReLU,
    Sigmoid,
    SiLU,
    Softmin,
    Softplus,
    Softshrink,
    Softsign,
    Tanhshrink,
    Threshold,
)
from tinygrad_act.base import Activation, Array, Layer
from tinygrad_act.testing import check_no_warnings, input_shapes

ENGINES = _engine.available_engines()
FLOATS: tuple[np.dtype[Any], ...] = (
    np.dtype(np.float16),
    np.dtype(np.float32),
    np.dtype(np.float64),
)
#: grad_output dtypes: every float, and what becomes float64 (signed and unsigned ints, bool)
GRAD_DTYPES: tuple[np.dtype[Any], ...] = (
    *FLOATS,
    np.dtype(np.int8),
    np.dtype(np.int64),
    np.dtype(np.uint16),
    np.dtype(bool),
)
#: Hypothesis examples per (layer, engine) and property: the file stays fast in CI.
EXAMPLES = 8
#: Layouts a drawn array is put in; several may be applied in turn.
#: The engine fixture holds for every example: what it sets up is meant to last.
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
LAYOUTS = ("fortran", "strided", "reversed", "read-only", "byteswapped", "list")


@pytest.fixture(params=ENGINES)
def each_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    with _engine.using(request.param):
        yield request.param


# ---------------------------------------------------------------------------
# The layers


def _sequential() -> Sequential:
    return Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1), Softmax())


#: Constructor settings where the defaults will not do; the rest use their defaults.
SETTINGS: dict[str, Callable[[], Layer]] = {
    "rrelu": lambda: RReLU(rng=0).eval(),  # deterministic: the mean slope
}

FACTORIES: list[Callable[[], Layer]] = [
    *(SETTINGS.get(name, cls) for name, cls in ACTIVATIONS.items()),
    lambda: GLU(axis=-2),
    lambda: LeakyReLU(negative_slope=-2.5),
    lambda: ELU(alpha=0.5),
    lambda: Softplus(beta=3.0),
    lambda: CELU(alpha=-2.0),
    lambda: GELU(approximate="tanh"),
    lambda: Hardtanh(-2.0, 3.0),
    lambda: Threshold(1.0, -0.0),
    lambda: Softshrink(0.0),
    lambda: Hardshrink(2.0),
    lambda: Softmax(axis=0),
    lambda: LogSoftmax(axis=-2),
    lambda: Softmin(axis=1),
    lambda: PReLU(init=-0.5),
    lambda: RReLU(0.5, 0.75, rng=1).eval(),
    lambda: Linear(3, 2, rng=0),
    _sequential,
]
LAYERS = [pytest.param(make, id=repr(make())) for make in FACTORIES]
ELEMENTWISE = [p for p in LAYERS if isinstance(p.values[0](), Activation)]  # type: ignore[operator]

# ---------------------------------------------------------------------------
# What is drawn


def special_values(dtype: np.dtype[Any]) -> list[float]:
    """±0, ±inf, NaN, the subnormal and normal extremes, ±max, kinks and tails."""
    info = np.finfo(dtype)
    extremes = [info.max, info.tiny, info.smallest_subnormal]
    values = [0.0, np.inf, np.nan, 1.0, 0.5, 3.0, 6.0, 1000.0, *map(float, extremes)]
    if dtype == np.float64:
        values.append(1e300)  # a grad_output beyond float32 and float16
    return [sign * v for v in values for sign in (1.0, -1.0)]


def elements(dtype: np.dtype[Any]) -> st.SearchStrategy[float]:
    """Values of `dtype`: specials, moderate ones and the whole range."""
    width: Literal[16, 32, 64] = {2: 16, 4: 32}.get(dtype.itemsize, 64)  # type: ignore[assignment]
    specials = st.sampled_from(special_values(dtype))
    return st.one_of(specials, st.floats(-40, 40, width=width), st.floats(width=width))


def arrays(
    dtype: np.dtype[Any], shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]]
) -> st.SearchStrategy[Array]:
    """Arrays of any float, integer or bool dtype, native byte order and C order."""
    if dtype.kind == "f":
        return hnp.arrays(dtype, shape, elements=elements(dtype))
    return hnp.arrays(dtype, shape)


def arrange(a: Array, layouts: Sequence[str]) -> Any:
    """`a`'s values in each layout in turn: a view or a copy, or a (nested) list."""
    result: Any = a
    for layout in layouts:
        if not isinstance(result, np.ndarray):
            break
        if layout == "fortran":
            result = np.array(result, order="F")
        elif layout == "strided" and result.ndim:
            every_other = tuple(slice(None, None, 2) for _ in result.shape)
            wide = np.full(tuple(2 * n for n in result.shape), 7, result.dtype)
            wide[every_other] = result
            result = wide[every_other]
        elif layout == "reversed" and result.ndim:
            result = result[::-1].copy()[::-1]
        elif layout == "read-only":
            result = result.copy()
            result.flags.writeable = False
        elif layout == "byteswapped":
            result = result.astype(result.dtype.newbyteorder())
        elif layout == "list" and (result.dtype.kind != "f" or result.dtype.itemsize == 8):
            # NOTE: float16 and float32 would come back as float64, and an empty list
            # has lost its shape unless it is 1-d
            result = result.tolist() if result.size or result.ndim == 1 else result
    return result


def layouts(layer: Layer) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(LAYOUTS), max_size=3)


def grad_outputs(
    data: st.DataObject, dtypes: Sequence[np.dtype[Any]], shape: tuple[int, ...]
) -> Array:
    dtype = data.draw(st.sampled_from(dtypes), label="grad_output dtype")
    return data.draw(arrays(dtype, shape), label="grad_output")


# ---------------------------------------------------------------------------
# Running and comparing


def run(layer: Layer, x: Any, grad_output: Any) -> list[Array]:
    """forward and backward, warnings as errors: the output, the input gradient, and
    each parameter's gradient."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        grad = layer.backward(grad_output)
    return [y, grad, *(p.grad for p in layer.parameters())]


def forward_quietly(layer: Layer, x: Any) -> Array:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return layer.forward(x)


def assert_identical(got: Array, expected: Array, what: str) -> None:
    """Bit for bit: dtype, shape, values, NaN where NaN, the sign of every zero, native order."""
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    assert got.dtype.isnative, f"{what}: non-native byte order {got.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    same = np.array_equal(got, expected, equal_nan=True) and np.array_equal(
        np.signbit(got) | np.isnan(got), np.signbit(expected) | np.isnan(expected)
    )
    assert same, f"{what} differs:\n{got!r}\nexpected\n{expected!r}"


def snapshot(argument: Any) -> Any:
    """A deep copy of an argument, flags included, to check that it is not modified."""
    if isinstance(argument, np.ndarray):
        return argument.copy(order="K"), argument.flags.writeable, argument.dtype
    return copy.deepcopy(argument)


def assert_unmodified(argument: Any, before: Any, what: str) -> None:
    if isinstance(argument, np.ndarray):
        values, writeable, dtype = before
        assert argument.dtype == dtype, f"{what}: dtype changed"
        assert argument.flags.writeable == writeable, f"{what}: writeable flag changed"
        assert_identical(
            argument.astype(dtype.newbyteorder("=")),
            values.astype(dtype.newbyteorder("=")),
            f"{what} was modified",
        )
    else:
        assert argument == before or np.array_equal(argument, before, equal_nan=True), what


# ---------------------------------------------------------------------------
# The properties


@pytest.mark.parametrize("make", LAYERS)
@PROPERTY
@given(data=st.data())
def test_every_layout_gives_the_native_result_without_warnings_or_mutation(
    make: Callable[[], Layer], each_engine: str, data: st.DataObject
) -> None:
    """README, "Big-endian input gives bit for bit the native result, in native byte
    order", "No warnings" (±inf, NaN and huge values in the input or in grad_output
    give the IEEE results without a RuntimeWarning), "Lists and Python scalars are
    accepted", and "neither call modifies its arguments": for every layout of x and
    of grad_output, in every dtype, forward, backward and the parameters' gradients
    are the native C-contiguous results bit for bit."""
    layer = make()
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(arrays(dtype, input_shapes(layer)), label="x")
    shape = forward_quietly(make(), x).shape
    grad_output = grad_outputs(data, GRAD_DTYPES, shape)
    expected = run(make(), x, grad_output)
    assert expected[0].dtype == dtype, "forward keeps float16, float32 and float64"
    assert expected[1].dtype == dtype, "backward returns the input's dtype"
    x_arranged = arrange(x, data.draw(layouts(layer), label="layouts of x"))
    grad_arranged = arrange(grad_output, data.draw(layouts(layer), label="of grad_output"))
    x_before, grad_before = snapshot(x_arranged), snapshot(grad_arranged)
    got = run(make(), x_arranged, grad_arranged)
    names = ["forward", "backward", *(f"{n}.grad" for n, _ in layer.named_parameters())]
    for name, result, reference in zip(names, got, expected, strict=True):
        assert_identical(result, reference, name)
    assert_unmodified(x_arranged, x_before, "x")
    assert_unmodified(grad_arranged, grad_before, "grad_output")


@pytest.mark.parametrize("make", LAYERS)
@PROPERTY
@given(data=st.data())
def test_grad_output_of_any_dtype_is_taken_exactly(
    make: Callable[[], Layer], each_engine: str, data: st.DataObject
) -> None:
    """README, "bool and integers become float64", for grad_output: and a float16 or
    float32 grad_output is exact in float64, so backward gives what it gives for
    grad_output converted to float64 first."""
    layer = make()
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(arrays(dtype, input_shapes(layer)), label="x")
    shape = forward_quietly(make(), x).shape
    grad_output = grad_outputs(data, GRAD_DTYPES, shape)
    expected = run(make(), x, grad_output.astype(np.float64))
    for result, reference in zip(run(make(), x, grad_output), expected, strict=True):
        assert_identical(result, reference, f"with a {grad_output.dtype} grad_output")


@pytest.mark.parametrize("make", ELEMENTWISE)
@PROPERTY
@given(data=st.data())
def test_elementwise_results_are_rounded_once(
    make: Callable[[], Activation], each_engine: str, data: st.DataObject
) -> None:
    """README, "Every element is computed in float64 and rounded once to its dtype;
    forward keeps f'(x), rounded once (float16's in float32), and backward is
    grad_output * f'(x)": forward is the float64 result rounded, and backward the
    product of grad_output with f'(x) in its cache dtype, rounded once. (The
    exceptions, float32 in float32 arithmetic and exact GELU's float32 twin, are held to
    their bounds in test_accuracy.)"""
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(arrays(dtype, input_shapes(make())), label="x")
    y = forward_quietly(make(), x)
    grad_output = grad_outputs(data, (dtype, np.dtype(np.float64)), y.shape)
    wide = _engine.derivative_dtype(dtype)
    derivative = run(make(), x.astype(wide), np.ones(x.shape, wide))[1]  # f' rounded once
    got = run(make(), x, grad_output)
    with np.errstate(all="ignore"):
        exact_forward = forward_quietly(make(), x.astype(np.float64)).astype(dtype)
        exact_backward = (grad_output.astype(np.float64) * derivative).astype(dtype)
    layer = make()
    kernel, parameters, _ = layer._kernel(derivative=True)
    apart = (  # float32 in float32 arithmetic, or by a twin: held to its bounds in test_accuracy
        each_engine == "numba"
        and dtype == np.float32
        and not _engine.float32_is_float64_rounded(kernel, parameters)
    )
    if not apart:
        assert_identical(got[0], exact_forward, "forward")
    assert_identical(got[1], exact_backward, "backward")


@pytest.mark.parametrize("make", LAYERS)
@PROPERTY
@given(data=st.data())
def test_the_cache_is_its_own(
    make: Callable[[], Layer], each_engine: str, data: st.DataObject
) -> None:
    """README, "Its cache is its own: changing the input or the returned output in
    place after forward does not change what backward returns", and
    "`copy.copy(layer)` gets its own" cache."""
    layer = make()
    dtype = data.draw(st.sampled_from(FLOATS), label="dtype")
    x = data.draw(arrays(dtype, input_shapes(layer)), label="x")
    other = data.draw(arrays(dtype, st.just(x.shape)), label="another x")
    y = forward_quietly(make(), x)
    grad_output = grad_outputs(data, FLOATS, y.shape)
    expected = run(make(), x, grad_output)[1]
    expected_other = run(make(), other, grad_output)[1]
    buffer = x.copy()
    y = layer.forward(buffer)
    copied = copy.copy(layer)
    copied.forward(other)
    snapshot = copy.copy(layer)  # its cache copied from the layer's, not shared
    buffer[...] = 7
    y[...] = -7
    assert_identical(layer.backward(grad_output), expected, "backward after the caller's writes")
    assert_identical(copied.backward(grad_output), expected_other, "the copy's backward")
    layer.forward(other)
    assert_identical(snapshot.backward(grad_output), expected, "a copy's backward, as copied")


@pytest.mark.parametrize("make", LAYERS)
def test_errors_are_clear(make: Callable[[], Layer]) -> None:
    """README, "Errors: backward before forward is a RuntimeError; a grad_output whose
    shape differs from the output's is a ValueError naming both shapes"."""
    layer = make()
    x = np.ones(_shape_for(layer))
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones_like(x))
    y = layer.forward(x)
    wrong = (*y.shape, 2)
    with pytest.raises(ValueError, match=r"\(.*\).*\(.*\)") as error:
        layer.backward(np.ones(wrong))
    assert str(wrong) in str(error.value) or isinstance(layer, Sequential)


REFUSED = {
    "complex": np.ones(4, complex),
    "object": np.array([1.0, 2.0, 3.0, 4.0], dtype=object),
    "str": np.array(["1", "2", "3", "4"]),
    "datetime": np.array(["2024-01-01"] * 4, dtype="datetime64[D]"),
    "structured": np.zeros(4, dtype=[("a", "f8")]),
    "longdouble": np.ones(4, np.longdouble),
}


@pytest.mark.parametrize("make", LAYERS)
@pytest.mark.parametrize(
    "kind", [k for k in REFUSED if np.dtype(np.longdouble).itemsize > 8 or k != "longdouble"]
)
def test_what_has_no_meaning_is_refused_naming_the_dtype(
    make: Callable[[], Layer], kind: str
) -> None:
    """README, "complex, object, string, datetime and structured input is a TypeError
    that names the dtype", in forward and in backward's grad_output."""
    layer = make()
    shape = _shape_for(layer)
    bad = np.resize(REFUSED[kind], shape)
    with pytest.raises(TypeError, match=re.escape(str(bad.dtype))):
        layer.forward(bad)
    y = layer.forward(np.ones(shape))
    with pytest.raises(TypeError, match=re.escape(str(bad.dtype))):
        layer.backward(np.resize(REFUSED[kind], y.shape))


@pytest.mark.parametrize("make", LAYERS)
def test_masked_arrays_are_refused(make: Callable[[], Layer]) -> None:
    """README, "so is a masked array (its mask would be lost)"."""
    x = np.ma.masked_array(np.ones(_shape_for(make())), mask=True)
    with pytest.raises(TypeError, match="mask"):
        make().forward(x)


@pytest.mark.parametrize("make", LAYERS)
@PROPERTY
@given(data=st.data())
def test_bool_and_integer_input_become_float64(
    make: Callable[[], Layer], data: st.DataObject
) -> None:
    """README, "bool and integers become float64"."""
    layer = make()
    dtype = data.draw(st.sampled_from([d for d in GRAD_DTYPES if d.kind != "f"]), label="dtype")
    x = data.draw(arrays(dtype, input_shapes(layer)), label="x")
    y = forward_quietly(make(), x)
    grad_output = np.ones(y.shape)
    for result, reference in zip(
        run(make(), x, grad_output), run(make(), x.astype(np.float64), grad_output), strict=True
    ):
        assert_identical(result, reference, f"{dtype} input")


@pytest.mark.parametrize("make", ELEMENTWISE)
@PROPERTY
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)))
def test_any_shape_and_lists_and_scalars(make: Callable[[], Layer], x: Array) -> None:
    """README, "Shapes: any shape, 0-d and empty included; the output has the input's
    shape. Lists and Python scalars are accepted"."""
    y = forward_quietly(make(), x)
    assert y.shape == x.shape
    assert run(make(), x, np.ones(x.shape))[1].shape == x.shape
    if x.size or x.ndim == 1:  # an empty list of lists has lost its shape
        got = run(make(), x.tolist(), np.ones(x.shape).tolist())
        assert_identical(got[0], y, "forward of a list (or of a Python scalar)")


@pytest.mark.parametrize("make", LAYERS)
def test_a_failed_forward_leaves_no_cache(make: Callable[[], Layer]) -> None:
    """README, "One forward, one cache: a forward that fails, refused at the start (a
    bad dtype or shape) or part-way, leaves no cache: backward then raises"."""
    layer = make()
    shape = _shape_for(layer)
    x = np.linspace(-2, 2, int(np.prod(shape))).reshape(shape)
    grad_output = np.ones(forward_quietly(make(), x).shape)
    layer.forward(x)
    with pytest.raises(TypeError):
        layer.forward(np.ones(shape, complex))
    with pytest.raises(RuntimeError, match="without a forward"):
        layer.backward(grad_output)


@pytest.mark.parametrize("make", LAYERS)
def test_a_forward_from_another_thread_is_an_error(make: Callable[[], Layer]) -> None:
    """README, "Threads: ... If another thread's forward came between yours and your
    backward, backward raises RuntimeError"; separate layers in threads all work."""
    shape = _shape_for(make())
    x = np.linspace(-2, 2, int(np.prod(shape))).reshape(shape)
    expected = run(make(), x, np.ones(forward_quietly(make(), x).shape))
    layer = make()
    results: list[list[Array]] = []
    workers = [
        threading.Thread(target=lambda: results.append(run(make(), x, np.ones(expected[0].shape))))
        for _ in range(3)
    ]
    workers.append(threading.Thread(target=layer.forward, args=(x,)))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for result in results:
        assert_identical(result[1], expected[1], "backward in another thread")
    assert len(results) == 3
    with pytest.raises(RuntimeError, match="thread"):
        layer.backward(np.ones(expected[0].shape))


def _shape_for(layer: Layer) -> tuple[int, ...]:
    trailing = layer.input_shape
    return (2, 4) if trailing is None else (2, *(4 if n is None else n for n in trailing))


@pytest.mark.parametrize("make", LAYERS)
def test_the_kits_no_warnings_check_passes(make: Callable[[], Layer], each_engine: str) -> None:
    """`check_no_warnings`, in every dtype and with extreme grad_output values."""
    check_no_warnings(make)


# ---------------------------------------------------------------------------
# Signed zero follows PyTorch (issue 10, point 13)

#: (layer, a second column or None, the points x where PyTorch 2.13's f(x) is a zero,
#: with that zero's sign), the same in float32 and float64; we give them in float16 too.
#: (PyTorch's sign of Softshrink(-0.0) depends on where the element falls in its
#: vectorized loops: -0.0 in short arrays, +0.0 in long ones, whose +0.0 is taken here.
#: Its float16 GELU(-20) is a zero where the true value, -5.5e-88, is not.) Softmax's and
#: Softmin's rows are (x, 1000) and (x, -1000); GLU's (x, 3), gated by sigma(3).
INF = float("inf")
PYTORCH_ZEROS: list[tuple[Layer, float | None, tuple[tuple[float, float], ...]]] = [
    (Sigmoid(), None, ((-INF, 0.0), (-1000.0, 0.0))),
    (Tanh(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (ReLU(), None, ((-INF, 0.0), (-1000.0, 0.0), (-1.0, 0.0), (-0.0, -0.0), (0.0, 0.0))),
    (LeakyReLU(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (ELU(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (SELU(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (Softplus(), None, ((-INF, 0.0), (-1000.0, 0.0))),
    (SiLU(), None, ((-1000.0, -0.0), (-0.0, -0.0), (0.0, 0.0))),
    (GELU(), None, ((-1000.0, -0.0), (-0.0, -0.0), (0.0, 0.0))),
    (GELU("tanh"), None, ((-1000.0, -0.0), (-0.0, -0.0), (0.0, 0.0))),
    (Softsign(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (Mish(), None, ((-1000.0, -0.0), (-0.0, -0.0), (0.0, 0.0))),
    (Hardtanh(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (ReLU6(), None, ((-INF, 0.0), (-1.0, 0.0), (-0.0, -0.0), (0.0, 0.0))),
    (Hardsigmoid(), None, ((-INF, 0.0), (-20.0, 0.0), (-3.0, 0.0))),
    (Hardswish(), None, ((-1000.0, -0.0), (-3.0, -0.0), (-0.0, -0.0), (0.0, 0.0))),
    (CELU(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (Softshrink(), None, ((-0.0, 0.0), (0.0, 0.0))),
    (Hardshrink(), None, ((-0.0, 0.0), (0.0, 0.0))),
    (Tanhshrink(), None, ((-0.0, 0.0), (0.0, 0.0))),
    (Threshold(0.0, -0.0), None, ((-INF, -0.0), (-1.0, -0.0), (-0.0, -0.0), (0.0, -0.0))),
    (PReLU(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (RReLU(rng=0).eval(), None, ((-0.0, -0.0), (0.0, 0.0))),
    (Softmax(), 1000.0, ((-INF, 0.0), (-1.0, 0.0), (-0.0, 0.0), (1.0, 0.0))),
    (Softmin(), -1000.0, ((-1.0, 0.0), (-0.0, 0.0), (0.0, 0.0), (1.0, 0.0))),
    (GLU(), 3.0, ((-0.0, -0.0), (0.0, 0.0))),
]
ZERO_CASES = [pytest.param(*case, id=repr(case[0])) for case in PYTORCH_ZEROS]


def _zero_probe(column: float | None, points: Sequence[float], dtype: Any) -> Array:
    x = np.array(points, dtype)[:, None]
    return x if column is None else np.concatenate([x, np.full_like(x, column)], axis=1)


@pytest.mark.parametrize(("layer", "column", "zeros"), ZERO_CASES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_signed_zeros_follow_pytorch(
    layer: Layer,
    column: float | None,
    zeros: tuple[tuple[float, float], ...],
    dtype: Any,
    each_engine: str,
) -> None:
    """Issue 10, point 13, and README, "Signed zero follows PyTorch": f(x) is the
    zero PyTorch gives, with its sign, in every dtype."""
    points, expected = zip(*zeros, strict=True)
    x = _zero_probe(column, points, dtype)
    y = run(copy.deepcopy(layer), x, np.ones(forward_quietly(copy.deepcopy(layer), x).shape))[0]
    assert_identical(y[:, 0], np.array(expected, dtype), f"{layer!r} at {list(points)}")


def test_the_signed_zero_table_is_pytorchs() -> None:
    """The table above, checked against PyTorch where it is installed."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    theirs = [
        nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.LeakyReLU(), nn.ELU(), nn.SELU(),
        nn.Softplus(threshold=1e30), nn.SiLU(), nn.GELU(), nn.GELU("tanh"), nn.Softsign(),
        nn.Mish(), nn.Hardtanh(), nn.ReLU6(), nn.Hardsigmoid(), nn.Hardswish(), nn.CELU(),
        nn.Softshrink(), nn.Hardshrink(), nn.Tanhshrink(), nn.Threshold(0.0, -0.0), nn.PReLU(),
        nn.RReLU().eval(), nn.Softmax(-1), nn.Softmin(-1), nn.GLU(),
    ]  # fmt: skip
    assert len(theirs) == len(PYTORCH_ZEROS)
    for module, (layer, column, zeros) in zip(theirs, PYTORCH_ZEROS, strict=True):
        for dtype in FLOATS[1:]:
            points, expected = zip(*zeros, strict=True)
            probe = np.tile(_zero_probe(column, points, np.float64), (64, 1))  # vectorized loops
            x = torch.from_numpy(probe).to(getattr(torch, str(dtype)))
            with torch.no_grad():
                y = module.to(x.dtype)(x)[: len(points), 0].double().numpy()
            assert_identical(y, np.array(expected), f"PyTorch's {module} for {layer!r} in {dtype}")


# ---------------------------------------------------------------------------
# Bugs the properties found, as deterministic regression tests.


def test_linear_fortran_input_gives_the_native_result() -> None:
    rng = np.random.default_rng(1)
    x, grad_output = rng.standard_normal((53, 37)), rng.standard_normal((53, 19))
    expected = run(Linear(37, 19, rng=0), x, grad_output)
    got = run(Linear(37, 19, rng=0), np.asfortranarray(x), np.asfortranarray(grad_output))
    names = ("forward", "backward", "weight.grad", "bias.grad")
    for name, result, reference in zip(names, got, expected, strict=True):
        assert_identical(result, reference, name)


def test_prelu_slope_gradient_does_not_depend_on_the_layout() -> None:
    rng = np.random.default_rng(0)
    x, grad_output = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    expected = run(PReLU(), x, grad_output)[2]
    got = run(PReLU(), np.asfortranarray(x), np.asfortranarray(grad_output))[2]
    assert_identical(got, expected, "weight.grad")


def test_linear_result_beyond_float16_is_inf_without_warning() -> None:
    layer = Linear(2, 1, rng=0)
    layer.weight.data[...] = 1.0
    y = run(layer, np.array([[60000.0, 60000.0]], np.float16), np.ones((1, 1), np.float16))[0]
    assert_identical(y, np.array([[np.inf]], np.float16), "forward")


@pytest.mark.parametrize("make", [lambda: PReLU(init=2.0), lambda: RReLU(2.0, 2.0).eval()])
def test_a_slope_above_one_overflows_quietly(make: Callable[[], Layer]) -> None:
    y = run(make(), np.array([-60000.0], np.float16), np.ones(1, np.float16))[0]
    assert_identical(y, np.array([-np.inf], np.float16), "forward")


def test_glu_gradient_beyond_float32_is_inf_without_warning() -> None:
    got = run(GLU(), np.array([1.0, 0.0], np.float32), np.array([1e300]))[1]
    assert_identical(got, np.array([np.inf, np.inf], np.float32), "backward")


def test_float16_backward_rounds_once() -> None:
    x, grad_output = np.array([-1.786], np.float16), np.array([-3.262], np.float16)
    derivative = run(Sigmoid(), x.astype(np.float32), np.ones(1, np.float32))[1]  # f', float32
    exact = (grad_output.astype(np.float64) * derivative).astype(np.float16)  # -0.4011
    assert_identical(run(Sigmoid(), x, grad_output)[1], exact, "backward")


@pytest.mark.parametrize("engine", ENGINES)
def test_float16_forward_rounds_once(engine: str) -> None:
    x = np.array([0.00293], np.float16)  # f(x) = 0.5007324..., just below a float16 tie
    with _engine.using(engine):
        got = run(Sigmoid(), x, np.ones(1, np.float16))[0]
    exact = forward_quietly(Sigmoid(), x.astype(np.float64)).astype(np.float16)  # 0.5005
    assert_identical(got, exact, "forward")


def test_a_copied_sequential_has_its_own_cache() -> None:
    model = Sequential(Tanh())
    expected = run(Sequential(Tanh()), np.zeros(2), np.ones(2))[1]
    model.forward(np.zeros(2))
    copy.copy(model).forward(np.full(2, 3.0))
    assert_identical(model.backward(np.ones(2)), expected, "the original's backward")


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="activations.py, GLU.input_shape: for a non-negative axis it names trailing "
    "dimensions ((2,) for axis=0), but batch dimensions come first, so the testing kit "
    "draws shapes such as (3, 2) that GLU(axis=0) refuses",
)
def test_glu_input_shape_for_a_non_negative_axis() -> None:
    from tinygrad_act.testing import check_grad_shape_mismatch

    check_grad_shape_mismatch(lambda: GLU(axis=0))
