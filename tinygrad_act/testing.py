"""Verify your own layers the way the built-ins are verified (needs the ``test`` extra).

`check_layer` runs a battery of named checks against a layer; `parametrize_with_checks`
makes each (layer, check) pair its own pytest test. Both take a layer instance (copied
for every check) or a factory such as the class itself.

>>> from tinygrad_act import Sigmoid
>>> check_layer(Sigmoid())  # raises AssertionError naming the check that fails

The Hypothesis strategies `float_arrays` and `shapes` are here for your own tests.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - depends on what is installed
    raise ImportError(
        'tinygrad_act.testing needs Hypothesis and pytest: pip install "tinygrad_act[test]"'
    ) from error

from tinygrad_act.base import Activation, Layer
from tinygrad_act.gradcheck import gradients, within_tolerance

if TYPE_CHECKING:
    import pytest

Array = npt.NDArray[Any]
LayerOrFactory = Layer | Callable[[], Layer]


def shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, 0-d and empty ones (a side of length 0) included by default."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def float_arrays(
    dtype: Any = np.float64,
    *,
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    min_value: float = -10.0,
    max_value: float = 10.0,
    avoid: Sequence[float] = (),
    margin: float = 1e-3,
) -> st.SearchStrategy[Array]:
    """Arrays of `dtype` with finite elements in [min_value, max_value].

    Elements closer than `margin` to a point in `avoid` (an activation's kinks,
    where the derivative jumps and finite differences mean nothing) are left out.
    `shape` is a tuple or a strategy; by default any of `shapes()`.
    """
    width = 8 * np.dtype(dtype).itemsize
    elements = st.floats(min_value, max_value, width=width, allow_nan=False, allow_infinity=False)
    if avoid:
        elements = elements.filter(lambda v: all(abs(v - k) > margin for k in avoid))
    return hnp.arrays(np.dtype(dtype), shapes() if shape is None else shape, elements=elements)


def input_shapes(layer: Layer, *, max_batch_dims: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes `layer` accepts: any batch dimensions, then its `input_shape`."""
    trailing = layer.input_shape
    if trailing is None:
        return shapes()
    batch = shapes(max_dims=max_batch_dims, max_side=4)
    fixed = st.tuples(*(st.integers(1, 4) if n is None else st.just(n) for n in trailing))
    return st.tuples(batch, fixed).map(lambda parts: (*parts[0], *parts[1]))


def _example_shape(layer: Layer, batch: int) -> tuple[int, ...]:
    trailing = layer.input_shape
    return (batch,) if trailing is None else (batch, *(2 if n is None else n for n in trailing))


def _name(layer: Layer) -> str:
    return f"{type(layer).__name__} ({layer!r})"


def _fail(check: str, layer: Layer, problem: str) -> AssertionError:
    return AssertionError(f"check {check!r} failed for {_name(layer)}: {problem}")


# ---------------------------------------------------------------------------
# The checks. Each takes a layer or factory, works on fresh copies, and raises
# AssertionError naming itself, the class and the problem.


def check_gradient(layer_or_factory: LayerOrFactory) -> None:
    """backward agrees with finite differences on Hypothesis-generated float64 inputs."""
    make = _factory(layer_or_factory)
    layer = make()
    kinks = tuple(getattr(layer, "kinks", ()))
    shape = input_shapes(layer)
    strategy = float_arrays(np.float64, shape=shape, min_value=-5, max_value=5, avoid=kinks)

    @settings(deadline=None, max_examples=min(settings().max_examples, 50), database=None)
    @given(x=strategy)
    def agrees(x: Array) -> None:
        _gradient_agrees(make(), x)

    agrees()


def _gradient_agrees(layer: Layer, x: Array) -> None:
    elementwise = isinstance(layer, Activation)
    found = gradients(layer, x, seed=0, grad_output=np.ones(x.shape) if elementwise else None)
    for what, numerical, analytical in found:
        good = within_tolerance(numerical, analytical)
        if good.all():
            continue
        worst = np.unravel_index(np.argmax(np.abs(analytical - numerical) * ~good), good.shape)
        at = tuple(int(i) for i in worst)
        if elementwise:
            problem = (
                f"derivative at x = {float(x[at]):.8g} is {analytical[at]:.8g} by backward; "
                f"finite differences give {numerical[at]:.8g}"
            )
        else:
            problem = (
                f"the gradient with respect to the {what}, element {at}, is "
                f"{analytical[at]:.8g} by backward; finite differences give {numerical[at]:.8g}"
            )
        raise _fail(
            "gradient",
            layer,
            f"{problem} ({int((~good).sum())} of {good.size} elements wrong). "
            f"Smallest failing input found: {x!r}",
        )


def check_dtypes(layer_or_factory: LayerOrFactory) -> None:
    """float16, float32 and float64 in: the same dtype and shape out, forward and backward."""
    make = _factory(layer_or_factory)
    for dtype in (np.float16, np.float32, np.float64):
        layer = make()
        shape = _example_shape(layer, 3)
        x = np.linspace(-3, 3, int(np.prod(shape))).astype(dtype).reshape(shape)
        y = layer.forward(x)
        if not isinstance(y, np.ndarray) or y.dtype != dtype:
            got = type(y).__name__ if not isinstance(y, np.ndarray) else str(y.dtype)
            raise _fail("dtypes", layer, f"forward of {np.dtype(dtype)} input returned {got}")
        grad = layer.backward(np.ones_like(y))
        if not isinstance(grad, np.ndarray) or grad.dtype != dtype or grad.shape != x.shape:
            found = (grad.dtype, grad.shape) if isinstance(grad, np.ndarray) else type(grad)
            raise _fail(
                "dtypes",
                layer,
                f"backward for {np.dtype(dtype)} input of shape {x.shape} gave {found}",
            )


def check_no_mutation(layer_or_factory: LayerOrFactory) -> None:
    """Neither forward nor backward modifies its argument."""
    make = _factory(layer_or_factory)
    layer = make()
    x = np.linspace(-3, 3, int(np.prod(_example_shape(layer, 4)))).reshape(_example_shape(layer, 4))
    x_before = x.copy()
    y = layer.forward(x)
    if not np.array_equal(x, x_before, equal_nan=True):
        raise _fail("no_mutation", layer, "forward modified its input x in place")
    grad_output = np.linspace(0.5, 1.5, y.size).reshape(y.shape)
    grad_before = grad_output.copy()
    layer.backward(grad_output)
    if not np.array_equal(grad_output, grad_before):
        raise _fail("no_mutation", layer, "backward modified grad_output in place")


def check_cache_ownership(layer_or_factory: LayerOrFactory) -> None:
    """Changing the input or the output in place after forward does not change backward."""
    make = _factory(layer_or_factory)
    reference, layer = make(), make()
    shape = _example_shape(layer, 4)
    x = np.linspace(-3, 3, int(np.prod(shape))).reshape(shape)
    reference.forward(x.copy())
    y = layer.forward(x)
    grad_output = np.ones_like(y)
    expected = reference.backward(grad_output)
    x[...] = 7.0  # the caller reuses its buffers
    y[...] = -7.0
    got = layer.backward(grad_output)
    if not np.array_equal(got, expected, equal_nan=True):
        raise _fail(
            "cache_ownership",
            layer,
            "backward changed after the caller modified the input or the returned output "
            "in place: the layer must keep its own copy of what backward needs",
        )


def check_backward_before_forward(layer_or_factory: LayerOrFactory) -> None:
    """backward before any forward raises RuntimeError, not a confusing failure."""
    make = _factory(layer_or_factory)
    layer = make()
    try:
        layer.backward(np.ones(_example_shape(layer, 2)))
    except RuntimeError:
        return
    except Exception as error:
        raise _fail(
            "backward_before_forward",
            layer,
            f"raised {type(error).__name__}: {error}; expected a RuntimeError saying to "
            "call forward first",
        ) from None
    raise _fail("backward_before_forward", layer, "backward before forward raised no error")


def check_grad_shape_mismatch(layer_or_factory: LayerOrFactory) -> None:
    """A grad_output of the wrong shape raises ValueError naming both shapes."""
    make = _factory(layer_or_factory)
    layer = make()
    y = layer.forward(np.ones(_example_shape(layer, 3)))
    wrong = (*y.shape[:-1], y.shape[-1] + 1) if y.ndim else (2,)
    try:
        layer.backward(np.ones(wrong))
    except ValueError as error:
        if str(wrong) in str(error) and str(y.shape) in str(error):
            return
        raise _fail(
            "grad_shape_mismatch", layer, f"the ValueError does not name both shapes: {error}"
        ) from None
    except Exception as error:
        raise _fail(
            "grad_shape_mismatch",
            layer,
            f"grad_output of shape {wrong} for output {y.shape} raised "
            f"{type(error).__name__}: {error}; expected ValueError",
        ) from None
    raise _fail(
        "grad_shape_mismatch", layer, f"grad_output of shape {wrong} for output {y.shape} passed"
    )


EXTREMES = (-1000.0, 1000.0, -np.inf, np.inf, np.nan, 0.0, 1e-300, -1e300)


def check_no_warnings(layer_or_factory: LayerOrFactory) -> None:
    """No RuntimeWarning (overflow, invalid value) for +-1000, +-inf and NaN."""
    make = _factory(layer_or_factory)
    for value in EXTREMES:
        layer = make()
        x = np.full(_example_shape(layer, 2), value)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                y = layer.forward(x)
                layer.backward(np.ones_like(y))
            except Warning as warning:
                raise _fail(
                    "no_warnings",
                    layer,
                    f"input {value!r} gave {type(warning).__name__}: {warning}",
                ) from None


def check_determinism(layer_or_factory: LayerOrFactory) -> None:
    """The same input gives the same output and gradient, call after call."""
    make = _factory(layer_or_factory)
    layer = make()
    shape = _example_shape(layer, 5)
    x = np.random.default_rng(0).uniform(-3, 3, shape)
    results = []
    for _ in range(2):
        y = layer.forward(x)
        results.append((y, layer.backward(np.ones_like(y))))
    (y1, g1), (y2, g2) = results
    if not (np.array_equal(y1, y2, equal_nan=True) and np.array_equal(g1, g2, equal_nan=True)):
        raise _fail("determinism", layer, "two calls on the same input gave different results")


def check_repr(layer_or_factory: LayerOrFactory) -> None:
    """repr names the class and its settings, e.g. ``LeakyReLU(negative_slope=0.01)``."""
    make = _factory(layer_or_factory)
    layer = make()
    text = repr(layer)
    if not text.startswith(f"{type(layer).__name__}(") or " at 0x" in text:
        raise _fail("repr", layer, f"repr is {text!r}; expected {type(layer).__name__}(...)")


#: Every check by name, in the order they run.
CHECKS: dict[str, Callable[[LayerOrFactory], None]] = {
    "repr": check_repr,
    "backward_before_forward": check_backward_before_forward,
    "grad_shape_mismatch": check_grad_shape_mismatch,
    "dtypes": check_dtypes,
    "no_mutation": check_no_mutation,
    "cache_ownership": check_cache_ownership,
    "determinism": check_determinism,
    "no_warnings": check_no_warnings,
    "gradient": check_gradient,
}


def _factory(layer_or_factory: LayerOrFactory) -> Callable[[], Layer]:
    if isinstance(layer_or_factory, Layer):
        template = layer_or_factory
        return lambda: copy.deepcopy(template)
    return layer_or_factory


def _unknown(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise KeyError(f"unknown checks {unknown}; valid names: {', '.join(CHECKS)}")


def check_layer(
    layer_or_factory: LayerOrFactory,
    *,
    expected_failed_checks: Mapping[str, str] | None = None,
) -> None:
    """Run every check in `CHECKS` against a layer; raise AssertionError on the first failure.

    Parameters
    ----------
    layer_or_factory : Layer or callable
        A layer (deep-copied for each check) or something that makes a fresh one,
        such as its class.
    expected_failed_checks : dict, optional
        ``{check name: reason}`` for checks to skip deliberately.
    """
    skip = dict(expected_failed_checks or {})
    _unknown(skip)
    for name, check in CHECKS.items():
        if name not in skip:
            check(layer_or_factory)


def parametrize_with_checks(
    layers: Iterable[LayerOrFactory],
    *,
    expected_failed_checks: Callable[[Layer], Mapping[str, str]] | None = None,
) -> pytest.MarkDecorator:
    """A pytest decorator: each (layer, check) pair becomes a test with a readable id.

    The decorated test takes ``layer`` (as given: a layer or a factory) and ``check``,
    and calls ``check(layer)``;
    ``pytest -k "ReLU and gradient"`` selects by name. `expected_failed_checks`
    maps a layer to ``{check name: reason}``; those tests are skipped with the reason.
    """
    import pytest

    cases = []
    for item in layers:
        example = _factory(item)()
        skip = dict(expected_failed_checks(example) if expected_failed_checks else {})
        _unknown(skip)
        for name, check in CHECKS.items():
            marks = [pytest.mark.skip(reason=skip[name])] if name in skip else []
            cases.append(pytest.param(item, check, id=f"{example!r}-{name}", marks=marks))
    return pytest.mark.parametrize(("layer", "check"), cases)
