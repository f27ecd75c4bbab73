"""Other array libraries: array-api-strict as the referee, PyTorch, JAX, CuPy and Dask.

array-api-strict allows only the standard's functions, dtypes and rules: every layer
that runs on it uses nothing else (exact GELU's erfc is built from them where a library
has no accurate one). The results are compared with the NumPy layers, which tests
elsewhere check against mpmath, and every backend is measured against mpmath here.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath as mp
import numpy as np
import pytest

from tests.reference import exact_product_errors, product_pairs, ulp_error
from tests.test_accuracy import CASES, check_softmaxes, check_within, exact_values
from tinygrad_act import (
    GELU,
    GLU,
    SGD,
    Adam,
    AdamW,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Linear,
    LogSoftmax,
    MSELoss,
    PReLU,
    ReLU,
    RReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Softmin,
    Softplus,
    Tanh,
    _array_api,
    _array_math,
    _engine,
    gradcheck,
    gradgradcheck,
)
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.base import Activation, Layer

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
xs = pytest.importorskip("array_api_strict")
StrictArray = type(xs.asarray(0.0))

RNG = np.random.default_rng(0)
POINTS = np.concatenate([RNG.standard_normal(64) * 4, [0.0, -0.0, 1.0, -1.0, 40.0, -800.0]])
POINTS.flags.writeable = False  # shared by the tests: one that writes into it fails


def layers() -> Iterator[tuple[str, Layer]]:
    """Every registered layer, RReLU in eval mode, GELU in its tanh form: the bits of
    exact GELU depend on each library's erfc (its accuracy is tested per backend)."""
    for name, cls in ACTIVATIONS.items():
        if name == "gelu":
            yield "gelu(tanh)", GELU(approximate="tanh")
        elif name == "rrelu":
            yield name, RReLU().eval()
        else:
            yield name, cls()


LAYERS = dict(layers())


def numpy_of(a: Any) -> Any:
    return _array_api.to_numpy(a)


def reference(layer: Layer, x: Any, grad: Any) -> tuple[Any, Any]:
    """The NumPy engine's forward and backward: the same ufuncs array-api-strict calls."""
    twin = type(layer).__new__(type(layer))
    twin.__dict__.update({k: v for k, v in vars(layer).items() if k != "_cache"})
    with _engine.using("numpy"):
        return twin.forward(x), twin.backward(grad)


def sample(name: str, dtype: Any = np.float64) -> Any:
    """Points for layer `name`: a (4, 4, 4) block, whose axis 1 GLU and PReLU use."""
    del name
    return POINTS[:64].reshape(4, 4, 4).astype(dtype)


# ---------------------------------------------------------------------------
# array-api-strict: the standard alone


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_runs_on_the_standard_alone(name: str, dtype: str) -> None:
    layer = LAYERS[name]
    if isinstance(layer, PReLU):
        layer = PReLU(num_parameters=4, init=0.1)
    x = sample(name, np.dtype(dtype))
    strict_x = xs.asarray(x)
    y = layer.forward(strict_x)
    assert isinstance(y, StrictArray)
    assert y.dtype == strict_x.dtype
    grad = xs.ones(y.shape, dtype=y.dtype)
    dx = layer.backward(grad)
    assert isinstance(dx, StrictArray)
    assert dx.dtype == strict_x.dtype
    expected_y, expected_dx = reference(layer, x, np.ones(tuple(y.shape), x.dtype))
    # bit for bit: the same formulas on the same ufuncs, whole arrays instead of blocks
    np.testing.assert_array_equal(numpy_of(y), expected_y)
    np.testing.assert_array_equal(numpy_of(dx), expected_dx)
    np.testing.assert_array_equal(numpy_of(strict_x), x)  # not mutated


@pytest.mark.parametrize("axis", [0, 1, 2, -2])
def test_glu_along_any_axis_on_the_standard(axis: int) -> None:
    """Every axis, not only the last: the halves are sliced with the standard's indexing."""
    x = sample("glu")
    layer = GLU(axis=axis)
    y = layer.forward(xs.asarray(x))
    dx = layer.backward(xs.ones(y.shape, dtype=y.dtype))
    expected_y, expected_dx = reference(GLU(axis=axis), x, np.ones(tuple(y.shape)))
    np.testing.assert_array_equal(numpy_of(y), expected_y)
    np.testing.assert_array_equal(numpy_of(dx), expected_dx)


def test_exact_gelu_runs_on_the_standard_alone() -> None:
    x = POINTS
    layer = GELU()
    y = layer(xs.asarray(x))
    dy = layer.backward(xs.ones(x.shape, dtype=xs.float64))
    assert isinstance(y, StrictArray)
    assert isinstance(dy, StrictArray)
    expected = GELU()
    np.testing.assert_allclose(numpy_of(y), expected(x), rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(
        numpy_of(dy), expected.backward(np.ones_like(x)), rtol=1e-14, atol=1e-300
    )


# both tails, to 27.3, beyond which erfc(t) is 0 in float64 (subnormal from 26.55 on)
ERFC_POINTS = np.concatenate(
    [
        np.linspace(-6.5, 27.3, 4001),
        np.geomspace(1e-300, 1.0, 301),
        -np.geomspace(1e-300, 1.0, 301),
        RNG.uniform(20.0, 26.5, 500),
    ]
)


@functools.cache
def exact_erfc() -> list[Any]:
    return [mp.erfc(mp.mpf(v)) for v in ERFC_POINTS.tolist()]


def max_ulp(got: Any, exact: list[Any], x: Any) -> tuple[float, float]:
    """The largest float64 ulp error where the exact value is a normal float, and its x."""
    tiny = np.finfo(np.float64).tiny
    errors = [
        ulp_error(g, e, "float64") if abs(e) >= tiny else 0.0
        for g, e in zip(got.tolist(), exact, strict=True)
    ]
    worst = int(np.argmax(errors))
    return errors[worst], float(x[worst])


def test_erfc_from_arithmetic_against_mpmath() -> None:
    error, where = max_ulp(_array_math.erfc(np, ERFC_POINTS), exact_erfc(), ERFC_POINTS)
    assert error <= 3.1, (where, error)
    specials = np.array([0.0, -0.0, 27.4, 1e300, np.inf, -7.0, -1e300, -np.inf, np.nan])
    expected = [1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, np.nan]
    np.testing.assert_array_equal(_array_math.erfc(np, specials), expected)


def test_tanh_from_exp_within_2_ulp_of_mpmath() -> None:
    x = np.concatenate([np.linspace(-25.0, 25.0, 4001), np.geomspace(1e-300, 0.6, 301)])
    got = _array_math.tanh(np, x)
    exact = [mp.tanh(mp.mpf(v)) for v in x.tolist()]
    errors = np.array(
        [ulp_error(g, e, "float64") for g, e in zip(got.tolist(), exact, strict=True)]
    )
    assert errors.max() <= 2, x[np.argmax(errors)]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 800.0])
    np.testing.assert_array_equal(_array_math.tanh(np, specials), np.tanh(specials))
    assert np.signbit(_array_math.tanh(np, np.array([-0.0])))[0]


def test_second_derivatives_on_the_standard() -> None:
    for layer in (Sigmoid(), Tanh(), GELU(approximate="tanh"), ReLU()):
        got = layer.second_derivative(xs.asarray(POINTS))
        assert isinstance(got, StrictArray)
        with _engine.using("numpy"):
            np.testing.assert_array_equal(numpy_of(got), layer.second_derivative(POINTS))


def test_bool_and_integers_become_float64_and_other_dtypes_are_refused() -> None:
    y = Sigmoid()(xs.asarray([0, 1, 2]))
    assert y.dtype == xs.float64
    assert Tanh()(xs.asarray([True, False])).dtype == xs.float64
    with pytest.raises(TypeError, match=r"real floating-point.*complex128"):
        Sigmoid()(xs.asarray([1j]))


def test_cache_is_owned_and_input_is_never_mutated() -> None:
    x = xs.asarray(POINTS, copy=True)
    layer = Sigmoid()
    layer.forward(x)
    before = numpy_of(layer.backward(xs.ones(x.shape, dtype=x.dtype)))
    x[...] = 0.0  # the caller reuses its array (array-api-strict allows it)
    after = numpy_of(layer.backward(xs.ones(x.shape, dtype=x.dtype)))
    np.testing.assert_array_equal(after, before)
    softmax = Softmax()
    y = softmax(xs.asarray(POINTS[:8]))
    y[...] = 0.0
    grad = softmax.backward(xs.asarray(np.arange(8.0)))
    expected = Softmax()
    expected(POINTS[:8])
    np.testing.assert_allclose(numpy_of(grad), expected.backward(np.arange(8.0)), rtol=1e-14)


def test_results_stay_on_the_input_device() -> None:
    device = xs.Device("device1")
    x = xs.asarray(POINTS, device=device)
    layer = Tanh()
    assert layer(x).device == device
    assert layer.backward(xs.ones(x.shape, dtype=x.dtype, device=device)).device == device
    with pytest.raises(ValueError, match="device"):
        layer.backward(xs.ones(x.shape, dtype=x.dtype))


def test_a_device_without_float64_computes_in_float32() -> None:
    device = xs.Device("no_float64")
    x = POINTS.astype(np.float32)
    layer = Sigmoid()
    y = layer(xs.asarray(x, device=device))
    assert y.dtype == xs.float32
    np.testing.assert_allclose(numpy_of(y), Sigmoid()(x), rtol=1e-6)
    model = Sequential(Linear(3, 2, rng=0), Tanh())
    out = model(xs.asarray(np.ones((2, 3), np.float32), device=device))
    assert out.dtype == xs.float32
    assert model[0].weight.data.dtype == xs.float32  # type: ignore[attr-defined]


def test_mixing_array_types_in_one_layer_is_a_type_error_naming_both() -> None:
    layer = Sigmoid()
    layer(np.zeros(3))
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*array_api_strict\.Array"):
        layer.backward(xs.ones(3))
    layer(xs.zeros(3))
    with pytest.raises(TypeError, match=r"array_api_strict\.Array.*numpy\.ndarray"):
        layer.backward(np.ones(3))
    for other in (Softmax(), Linear(3, 3, rng=0), PReLU(), GLU()):
        other(xs.zeros((2, 4 if isinstance(other, GLU) else 3)))
        with pytest.raises(TypeError, match=r"array_api_strict\.Array.*numpy\.ndarray"):
            other.backward(np.ones((2, 2 if isinstance(other, GLU) else 3)))
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*array_api_strict\.Array"):
        MSELoss()(np.zeros(3), xs.zeros(3))


@pytest.mark.parametrize(
    "layer",
    [Sigmoid(), Softmax(axis=0), LogSoftmax(), Softmin(), GLU(), Linear(4, 3, rng=0), PReLU(4)],
    ids=repr,
)
def test_gradcheck_on_the_standard(layer: Layer) -> None:
    x = xs.asarray(RNG.standard_normal((3, 4)))
    assert gradcheck(layer, x, seed=0)
    if isinstance(layer, Activation):
        assert gradgradcheck(layer, x)


def train_step(model: Sequential, loss: Any, optimizer: Any, x: Any, target: Any) -> float:
    optimizer.zero_grad()
    value = float(loss(model(x), target))
    model.backward(loss.backward())
    optimizer.step()
    return value


@pytest.mark.parametrize(
    ("loss", "make_optimizer"),
    [
        (MSELoss(), lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (BCEWithLogitsLoss(), lambda p: Adam(p, lr=0.01, weight_decay=0.01)),
        (BCELoss(), lambda p: AdamW(p, lr=0.01)),
        (CrossEntropyLoss(), lambda p: Adam(p, lr=0.01)),
    ],
    ids=lambda v: type(v).__name__,
)
def test_a_training_step_on_the_standard_matches_numpy(
    loss: Any, make_optimizer: Callable[[Any], Any]
) -> None:
    x = RNG.standard_normal((8, 3))
    if isinstance(loss, CrossEntropyLoss):
        target: Any = np.arange(8) % 2
    else:
        target = (RNG.uniform(size=(8, 2)) > 0.5).astype(np.float64)

    def model() -> Sequential:
        last: Layer = Sigmoid() if isinstance(loss, BCELoss) else Tanh()
        return Sequential(Linear(3, 5, rng=1), PReLU(), Linear(5, 2, rng=2), last)

    ours, theirs = model(), model()
    ours_opt, theirs_opt = make_optimizer(ours.parameters()), make_optimizer(theirs.parameters())
    with _engine.using("numpy"):
        for _ in range(3):
            got = train_step(ours, loss, ours_opt, xs.asarray(x), xs.asarray(target))
            expected = train_step(theirs, loss, theirs_opt, x, target)
            assert got == pytest.approx(expected, rel=1e-13)
    assert isinstance(ours[0].weight.data, StrictArray)  # type: ignore[attr-defined]
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value, rtol=1e-12, atol=1e-15)
    for key, value in theirs_opt.state_dict().items():
        np.testing.assert_allclose(ours_opt.state_dict()[key], value, rtol=1e-12, atol=1e-15)


def test_array_api_compat_is_not_imported_for_numpy_input() -> None:
    code = (
        "import sys, numpy as np, tinygrad_act as t\n"
        "t.Sigmoid()(np.ones(3)); t.Softmax()([1.0, 2.0]); t.Linear(2, 1)(np.ones(2))\n"
        "assert 'array_api_compat' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# Every backend: array-api-strict, PyTorch on the CPU and on CUDA, CuPy, JAX
#
# Each test runs where its library (and device) is installed, and skips elsewhere:
# CI has array-api-strict only; the GPU backends run on a machine with CUDA.


@dataclass
class Backend:
    """An array library on one device: `to` makes a NumPy array one of its arrays."""

    name: str
    to: Callable[[Any], Any]


def _torch_backend(device: str) -> Backend:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (CI has none)")
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return Backend(f"torch-{device}", lambda x: torch.from_numpy(np.array(x)).to(device))


def _cupy_backend() -> Backend:
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return Backend("cupy", cp.asarray)


def _jax_backend(request: pytest.FixtureRequest) -> Backend:
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # float64 for this test only
    request.addfinalizer(lambda: jax.config.update("jax_enable_x64", before))
    return Backend(f"jax-{jax.devices()[0].platform}", jax.numpy.asarray)


@pytest.fixture(params=["array_api_strict", "torch-cpu", "torch-cuda", "cupy", "jax"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: str = request.param
    if name.startswith("torch"):
        return _torch_backend(name.removeprefix("torch-"))
    if name == "cupy":
        return _cupy_backend()
    if name == "jax":
        return _jax_backend(request)
    return Backend(name, xs.asarray)


def on_backend(backend: Backend, layer: Layer, x: Any, g: Any) -> tuple[Any, Any]:
    """NumPy copies of forward(x) and backward(g), computed on `backend`."""
    return numpy_of(layer.forward(backend.to(x))), numpy_of(layer.backward(backend.to(g)))


def flushes_subnormals(backend: Backend, dtype: str) -> bool:
    """Whether `backend` computes `dtype` with subnormals flushed to zero (XLA on the CPU,
    CuPy in float32): a subnormal input then counts as 0."""
    tiny = np.array([np.finfo(dtype).smallest_subnormal], dtype)
    return bool(numpy_of(backend.to(tiny) * backend.to(np.ones_like(tiny)))[0] == 0)


#: (backend, case, dtype) whose bound the library itself breaks, and how.
LIBRARY_LIMITS = {
    # XLA on the CPU flushes subnormal intermediates to 0: e**x in SELU's f' near x = -708
    # (the scale makes it normal), e**(-2|x|) in Tanh's f'
    ("jax-cpu", "SELU", "float64"): "XLA on the CPU flushes subnormal e**x",
    ("jax-cpu", "Tanh", "float64"): "XLA on the CPU flushes subnormal e**(-2|x|)",
    ("jax-cpu", "Tanhshrink", "float64"): "XLA's CPU tanh: 3.1 ulp near |x| = 0.5",
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_accuracy_against_mpmath_per_backend(
    name: str,
    dtype: str,
    backend: Backend,
    record_ulp: Callable[[str, str, float, float], None],
    request: pytest.FixtureRequest,
) -> None:
    """The NumPy engine's bounds, on each library's own exp, expm1 and log1p (and tanh,
    but JAX's, which `_array_math` replaces)."""
    limit = LIBRARY_LIMITS.get((backend.name, name, dtype))
    if limit is not None:
        request.applymarker(pytest.mark.xfail(reason=limit, strict=True))
    case = CASES[name]
    layer = case.layer()
    x, exact_f = exact_values(name, dtype, "f")
    _, exact_df = exact_values(name, dtype, "df")
    if flushes_subnormals(backend, dtype):
        normal = (np.abs(x) >= np.finfo(dtype).tiny) | (x == 0)
        x = x[normal]
        exact_f = [e for e, keep in zip(exact_f, normal, strict=True) if keep]
        exact_df = [e for e, keep in zip(exact_df, normal, strict=True) if keep]
    y, dy = on_backend(backend, layer, x, np.ones_like(x))
    forward = check_within(name, "f", x, y, exact_f, case.forward_ulp)
    backward = check_within(name, "f'", x, dy, exact_df, case.backward_ulp)
    record_ulp(f"{name} [{backend.name}]", dtype, forward, backward)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmaxes_against_mpmath_per_backend(
    dtype: str, backend: Backend, record_ulp: Callable[[str, str, float, float], None]
) -> None:
    def run(layer: Layer, x: Any, g: Any) -> tuple[Any, Any]:
        return on_backend(backend, layer, x, g)

    for name, (forward, backward) in check_softmaxes(dtype, run).items():
        record_ulp(f"{name} [{backend.name}]", dtype, forward, backward)


def test_erfc_and_tanh_per_backend(backend: Backend) -> None:
    """The namespace's erfc (the library's own, or `_array_math`'s) and tanh (JAX's from
    `_array_math`) in float64. erfc: 3.1 ulp for PyTorch's and CuPy's, 3.3 for
    `_array_math`'s, 3.8 for it compiled by JAX (XLA fuses multiply-adds); tanh: 3.5
    (XLA's own, used near 0, is 3.1 on the CPU)."""
    x = backend.to(ERFC_POINTS)
    space = _array_api.Namespace(x)
    error, where = max_ulp(numpy_of(space.erfc(x)), exact_erfc(), ERFC_POINTS)
    assert error <= (3.8 if space.library == "jax" else 3.3), (where, error)
    t = np.concatenate([np.linspace(-25.0, 25.0, 2001), np.geomspace(1e-300, 0.6, 201)])
    exact = [mp.tanh(mp.mpf(v)) for v in t.tolist()]
    error, where = max_ulp(numpy_of(space.tanh(backend.to(t))), exact, t)
    assert error <= 3.5, (where, error)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    got = numpy_of(space.tanh(backend.to(specials)))
    np.testing.assert_array_equal(got, np.tanh(specials))
    assert np.signbit(got[1])
    got = numpy_of(space.erfc(backend.to(specials)))
    np.testing.assert_array_equal(got, [1.0, 1.0, 0.0, 2.0, np.nan])


def test_two_product_is_exact_per_backend(backend: Backend) -> None:
    """The namespace's `two_product` (`_array_math`'s Dekker product): a b = product +
    error exactly across the float64 range, huge factors included (their split is scaled);
    where a library flushes subnormals, for factors whose halves are normal."""
    a, b = product_pairs("float64")
    if flushes_subnormals(backend, "float64"):  # XLA on the CPU: the low half of a factor
        normal = np.minimum(np.abs(a), np.abs(b)) >= 2.0**-960  # below 2**-969 is subnormal
        a, b = a[normal], b[normal]
    space = _array_api.Namespace(backend.to(a))
    product, error = space.two_product(backend.to(a), backend.to(b))
    assert not exact_product_errors(a, b, numpy_of(product), numpy_of(error))


def test_two_product_is_exact_on_numpy_and_in_float32() -> None:
    """On the NumPy engine's namespace, and on a device without float64 (Veltkamp's split
    for 24 bits)."""
    from tinygrad_act import _numpy_math

    a, b = product_pairs("float64")
    assert not exact_product_errors(a, b, *_numpy_math.two_product(a, b))
    a, b = product_pairs("float32")
    device = xs.Device("no_float64")
    x = xs.asarray(a, device=device)
    space = _array_api.Namespace(x)
    assert space.dtype == xs.float32
    product, error = space.two_product(x, xs.asarray(b, device=device))
    assert not exact_product_errors(a, b, numpy_of(product), numpy_of(error))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_layer_keeps_library_device_and_dtype(dtype: str, backend: Backend) -> None:
    import array_api_compat

    if dtype == "float16" and backend.name == "array_api_strict":
        pytest.skip("the array API standard has no float16")
    for name, layer in LAYERS.items():
        if isinstance(layer, PReLU):
            layer = PReLU(num_parameters=4, init=0.1)
        x = sample(name, np.dtype(dtype))
        before = backend.to(x)
        y = layer.forward(before)
        g = np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(dtype)
        dx = layer.backward(backend.to(g))
        for result in (y, dx):
            assert type(result) is type(before), name
            assert array_api_compat.device(result) == array_api_compat.device(before), name
            assert result.dtype == before.dtype, name
        np.testing.assert_array_equal(numpy_of(before), x)  # not mutated
        expected_y, expected_dx = reference(layer, x, g)
        # each library's own exp and log1p: a few ulp from NumPy's, more where f' cancels
        # (the accuracy tests measure each backend against mpmath); the scale is the largest
        eps = 16 * np.finfo(dtype).eps
        for got, expected in ((y, expected_y), (dx, expected_dx)):
            atol = eps * float(np.abs(expected).max())
            np.testing.assert_allclose(numpy_of(got), expected, rtol=eps, atol=atol, err_msg=name)


@pytest.mark.parametrize(
    "layer",
    [
        Sigmoid(),
        GELU(approximate="tanh"),
        Softmax(axis=0),
        LogSoftmax(),
        GLU(),
        Linear(4, 3, rng=0),
        PReLU(4),
    ],
    ids=repr,
)
def test_gradcheck_per_backend(layer: Layer, backend: Backend) -> None:
    x = backend.to(RNG.standard_normal((3, 4)))
    assert gradcheck(layer, x, seed=0)
    if isinstance(layer, Activation):
        assert gradgradcheck(layer, x)


def test_a_network_trains_on_each_backend_as_on_numpy(backend: Backend) -> None:
    import array_api_compat

    rng = np.random.default_rng(1)
    points = rng.standard_normal((64, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)

    def model() -> Sequential:
        return Sequential(
            Linear(2, 8, rng=0),
            GELU(approximate="tanh"),
            Linear(8, 8, rng=1),
            Softplus(),
            Linear(8, 2, rng=2),
        )

    ours, theirs = model(), model()
    ours_opt, theirs_opt = Adam(ours.parameters(), lr=0.05), Adam(theirs.parameters(), lr=0.05)
    x, target = backend.to(points), backend.to(labels)
    loss = CrossEntropyLoss()
    with _engine.using("numpy"):
        for _ in range(20):
            got = train_step(ours, loss, ours_opt, x, target)
            expected = train_step(theirs, loss, theirs_opt, points, labels)
            assert got == pytest.approx(expected, rel=1e-11)
    for p in ours.parameters():
        assert array_api_compat.device(p.data) == array_api_compat.device(x)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------
# PyTorch


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch", reason="PyTorch is not installed (CI has none)")


def test_torch_tensors_with_requires_grad(torch: Any) -> None:
    x = torch.tensor(POINTS, requires_grad=True)
    for layer in (Sigmoid(), Softmax(), Linear(POINTS.size, 2, rng=0), GELU()):
        y = layer(x)
        assert isinstance(y, torch.Tensor)
        assert not y.requires_grad  # our layers differentiate by hand, not through autograd
        dx = layer.backward(torch.ones_like(y))
        assert dx.shape == x.shape
    assert x.grad is None
    np.testing.assert_array_equal(x.detach().numpy(), POINTS)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_torch_dtypes_follow_the_numpy_rules(torch: Any, dtype: str) -> None:
    x = torch.from_numpy(POINTS.astype(dtype))
    layer = Sigmoid()
    y: Any = layer(x)
    assert y.dtype == x.dtype
    assert layer.backward(torch.ones_like(x)).dtype == x.dtype
    expected = Sigmoid()(POINTS.astype(dtype))
    np.testing.assert_allclose(y.numpy(), expected, rtol=2 * np.finfo(dtype).eps)
    assert Tanh()(torch.arange(3)).dtype == torch.float64


def test_torch_bfloat16_is_kept_with_its_derivative_in_float32(torch: Any) -> None:
    """README, "Dtypes": a library's other real floating dtype is kept, f' kept in
    float32 as float16's, so that backward rounds once."""
    x = torch.from_numpy(POINTS.copy()).to(torch.bfloat16)
    layer = Tanh()
    y: Any = layer(x)
    g = torch.from_numpy(np.linspace(-3, 3, len(POINTS))).to(torch.bfloat16)
    dx: Any = layer.backward(g)
    assert y.dtype == dx.dtype == torch.bfloat16
    wide = x.to(torch.float64).numpy()
    exact = Tanh()
    np.testing.assert_array_equal(y.to(torch.float64).numpy(), _bfloat16(torch, exact(wide)))
    f_prime = exact.backward(np.ones_like(wide)).astype(np.float32)  # f' rounded to float32
    expected = g.to(torch.float64).numpy() * f_prime.astype(np.float64)
    np.testing.assert_array_equal(dx.to(torch.float64).numpy(), _bfloat16(torch, expected))


def _bfloat16(torch: Any, a: Any) -> Any:
    """float64 values rounded once to bfloat16, back in float64."""
    return torch.from_numpy(np.array(a)).to(torch.bfloat16).to(torch.float64).numpy()


def test_a_toy_network_trains_end_to_end_on_torch_tensors(torch: Any) -> None:
    rng = np.random.default_rng(1)
    points = rng.standard_normal((128, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)  # XOR of the signs
    x, target = torch.from_numpy(points), torch.from_numpy(labels)
    model = Sequential(Linear(2, 16, rng=0), Tanh(), Linear(16, 2, rng=1))
    optimizer = Adam(model.parameters(), lr=0.05)
    loss = CrossEntropyLoss()
    first = train_step(model, loss, optimizer, x, target)
    for _ in range(150):
        last = train_step(model, loss, optimizer, x, target)
    assert last < 0.25 * first
    for p in model.parameters():
        assert isinstance(p.data, torch.Tensor)
        assert isinstance(p.grad, torch.Tensor)
    logits: Any = model(x)
    accuracy = (logits.argmax(dim=1) == target).double().mean()
    assert float(accuracy) > 0.9
    saved = model.state_dict()
    assert all(type(v) is np.ndarray for v in saved.values())
    model.load_state_dict(saved)
    assert isinstance(model[0].weight.data, torch.Tensor)  # type: ignore[attr-defined]


def test_torch_mixed_with_numpy_is_a_type_error(torch: Any) -> None:
    layer = Tanh()
    layer(torch.zeros(3))
    with pytest.raises(TypeError, match=r"torch\.Tensor.*numpy\.ndarray"):
        layer.backward(np.ones(3))
    layer(np.zeros(3))
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*torch\.Tensor"):
        layer.backward(torch.ones(3))


def test_gradcheck_on_torch(torch: Any) -> None:
    x = torch.from_numpy(RNG.standard_normal((3, 4)))
    for layer in (GELU(), LogSoftmax(axis=0), Linear(4, 2, rng=0), PReLU(4)):
        assert gradcheck(layer, x, seed=0)


# ---------------------------------------------------------------------------
# JAX, when installed


def test_jax_arrays_are_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    jnp = pytest.importorskip("jax.numpy", reason="JAX is not installed")
    x = jnp.asarray(POINTS[:12].reshape(3, 4))
    for layer in (Sigmoid(), GELU(), Softmax(), GLU(), Linear(4, 2, rng=0), RReLU(rng=0)):
        y = layer(x)
        dx = layer.backward(jnp.ones_like(y))
        assert dx.shape == x.shape
    model = Sequential(Linear(4, 3, rng=0), Tanh(), Linear(3, 1, rng=1))
    optimizer = Adam(model.parameters(), lr=0.01)
    train_step(model, MSELoss(), optimizer, x, jnp.zeros((3, 1)))


def test_jax_float64_is_computed_in_float64_once_x64_is_switched_on() -> None:
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    before = jax.config.jax_enable_x64
    try:
        jax.config.update("jax_enable_x64", False)
        y = Sigmoid()(jax.numpy.asarray([1.0], dtype=jax.numpy.float32))  # no float64 yet
        assert y.dtype == jax.numpy.float32
        jax.config.update("jax_enable_x64", True)
        x = np.array([-40.0, -0.5, 3.0])
        got = numpy_of(Sigmoid()(jax.numpy.asarray(x)))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, Sigmoid()(x), rtol=4 * np.finfo(np.float64).eps)
    finally:
        jax.config.update("jax_enable_x64", before)


# ---------------------------------------------------------------------------
# Dask


@pytest.fixture
def da() -> Any:
    return pytest.importorskip("dask.array")


def refuse_to_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("something was computed before .compute()")


def test_dask_stays_lazy_until_compute(da: Any) -> None:
    import dask

    x = da.from_array(RNG.standard_normal((6, 10)), chunks=(2, 3))
    with dask.config.set(scheduler=refuse_to_compute):
        results: list[tuple[Layer, Any, Any]] = []
        lazy: list[Layer] = [Sigmoid(), GELU(), Softmax(axis=1), LogSoftmax(axis=0), Softmin()]
        for layer in lazy:
            y = layer(x)
            results.append((layer, y, layer.backward(x)))
        with pytest.raises(AssertionError, match="computed"):
            results[0][1].compute()
    for done, y, dx in results:
        twin = type(done).__new__(type(done))
        twin.__dict__.update({k: v for k, v in vars(done).items() if k != "_cache"})
        expected = twin.forward(x.compute())
        assert isinstance(y, da.Array)
        np.testing.assert_array_equal(y.compute(), expected)
        np.testing.assert_allclose(dx.compute(), twin.backward(x.compute()), rtol=1e-14)


def test_dask_elementwise_layers_keep_their_chunks(da: Any) -> None:
    x = da.from_array(POINTS.astype(np.float32), chunks=10)
    y: Any = Tanh()(x)
    assert y.chunks == x.chunks
    assert y.dtype == np.float32


def test_dask_backward_takes_a_gradient_split_differently(da: Any) -> None:
    """The gradient's chunks need not be the input's: the closed form, chunk for chunk."""
    values = np.linspace(-6, 6, 1000)
    grad = np.cos(values)
    layers: list[Layer] = [Sigmoid(), Tanh(), Softmax(axis=0)]
    for layer in layers:
        layer(da.from_array(values.reshape(10, 100), chunks=(10, 25)))
        dx: Any = layer.backward(da.from_array(grad.reshape(10, 100), chunks=(5, 40)))
        assert dx.chunks == ((10,), (25, 25, 25, 25))
        twin = type(layer).__new__(type(layer))
        twin.__dict__.update({k: v for k, v in vars(layer).items() if k != "_cache"})
        twin.forward(values.reshape(10, 100))
        expected = twin.backward(grad.reshape(10, 100))
        np.testing.assert_array_equal(dx.compute(), expected)
    s = 1 / (1 + np.exp(-values))  # and Sigmoid's against its closed form
    sigmoid = Sigmoid()
    sigmoid(da.from_array(values, chunks=100))
    lazy: Any = sigmoid.backward(da.from_array(grad, chunks=333))
    np.testing.assert_allclose(lazy.compute(), grad * s * (1 - s), rtol=1e-13, atol=1e-300)


def test_dask_refuses_layers_with_parameters_clearly(da: Any) -> None:
    x = da.ones((2, 3), chunks=1)
    for layer in (Linear(3, 1), PReLU(), GLU(axis=0)):
        with pytest.raises(TypeError, match="does not take Dask arrays"):
            layer(x)


def test_dask_on_a_local_cluster_chunk_by_chunk(da: Any) -> None:
    distributed = pytest.importorskip("dask.distributed")
    # 8 x 1,000,000 chunks of 10,000 x 100: generated in the workers, never whole
    x = da.random.default_rng(0).standard_normal((80_000, 100), chunks=(10_000, 100))
    grad = da.ones_like(x)
    with (
        distributed.LocalCluster(
            n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        for layer in (Sigmoid(), LogSoftmax(axis=1)):
            y: Any = layer(x)
            dx: Any = layer.backward(grad)
            twin = type(layer)() if not isinstance(layer, LogSoftmax) else LogSoftmax(axis=1)
            for i in range(x.numblocks[0]):
                chunk, got_y, got_dx = da.compute(x.blocks[i], y.blocks[i], dx.blocks[i])
                np.testing.assert_array_equal(got_y, twin.forward(chunk))
                np.testing.assert_array_equal(got_dx, twin.backward(np.ones_like(chunk)))


def readme_examples() -> list[str]:
    section = README.split("## Other array libraries and Dask", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```py\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize("block", readme_examples(), ids=["torch", "dask"])
def test_readme_examples_run(block: str) -> None:
    if "import torch" in block:
        pytest.importorskip("torch", reason="PyTorch is not installed (CI has none)")
    else:
        pytest.importorskip("dask.distributed", reason="Dask is not installed")
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(block, "README.md", "exec"), namespace)
    if "import torch" in block:
        assert namespace["value"] < 0.69  # below chance: it learned
