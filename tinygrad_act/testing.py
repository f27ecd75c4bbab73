"""Verify your own layers the way the built-ins are verified (needs the ``test`` extra).

`check_layer` runs a battery of named checks against a layer; `parametrize_with_checks`
makes each (layer, check) pair its own pytest test. Both take a layer instance (copied
for every check, without its cache) or a factory such as the class itself.

>>> from tinygrad_act import Sigmoid
>>> check_layer(Sigmoid())  # raises AssertionError naming the check that fails

The Hypothesis strategies `float_arrays`, `wide_floats` and `shapes` are here for your
own tests.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from tinygrad_act.gradcheck import (
    central_differences,
    chain_rule_mismatch,
    default_grad_output,
)

if TYPE_CHECKING:
    import pytest

Array = npt.NDArray[Any]
LayerOrFactory = Layer | Callable[[], Layer]

#: Hypothesis examples per check at most: the battery stays fast with any profile.
MAX_EXAMPLES = 50


def shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, 0-d and empty ones (a side of length 0) included by default."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def _clear_of(v: float, avoid: Sequence[float], margin: float) -> bool:
    """Whether `v` is farther than ``margin * max(1, |k|)`` from every point k in `avoid`."""
    return all(abs(v - k) > margin * max(1.0, abs(k)) for k in avoid)


def _away_from(elements: st.SearchStrategy[float], avoid: Sequence[float], margin: float) -> Any:
    if not avoid:
        return elements
    return elements.filter(lambda v: _clear_of(v, avoid, margin))


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

    Elements closer than ``margin * max(1, |k|)`` to a point ``k`` in `avoid` (an
    activation's kinks, where the derivative jumps and finite differences mean
    nothing) are left out. `shape` is a tuple or a strategy; by default any of
    `shapes()`.
    """
    width = 8 * np.dtype(dtype).itemsize
    elements = st.floats(min_value, max_value, width=width, allow_nan=False, allow_infinity=False)
    elements = _away_from(elements, avoid, margin)
    return hnp.arrays(np.dtype(dtype), shapes() if shape is None else shape, elements=elements)


def wide_floats(
    dtype: Any = np.float64,
    *,
    largest: float = 1e3,
    avoid: Sequence[float] = (),
    margin: float = 1e-3,
) -> st.SearchStrategy[float]:
    """Finite floats of `dtype` across [-largest, largest], tails included: a mix of
    the whole range, moderate magnitudes (|x| <= 40) and values near 0 (|x| <= 2),
    subnormals included. `avoid` and `margin` as in `float_arrays`."""
    width = 8 * np.dtype(dtype).itemsize
    largest = min(largest, float(np.finfo(dtype).max))
    elements = st.one_of(
        *(
            st.floats(-bound, bound, width=width, allow_nan=False, allow_infinity=False)
            for bound in (largest, min(largest, 40.0), min(largest, 2.0))
        )
    )
    return _away_from(elements, avoid, margin)  # type: ignore[no-any-return]


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


#: Values from both tails and the middle, for the deterministic checks.
PROBE = (-1000.0, -6.5, -2.5, -1.0, -0.3, 0.0, 0.3, 1.0, 2.5, 6.5, 1000.0, -1e-3)


def _probe(layer: Layer, batch: int, dtype: Any = np.float64) -> Array:
    shape = _example_shape(layer, batch)
    return np.resize(np.array(PROBE), shape).astype(dtype)


#: Where the gradient checks always look, besides Hypothesis's draws: both signs, at
#: magnitudes from 0.001 to 1000, so that a derivative wrong over a whole range (beyond
#: |x| = 5, say) never passes by chance.
GRADIENT_PROBE = tuple(
    sign * magnitude
    for sign in (-1.0, 1.0)
    for magnitude in (1e-3, 0.01, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0, 6.5, 10.0, 15.0, 20.0,
                      30.0, 50.0, 100.0, 300.0, 1000.0)
)  # fmt: skip


def _gradient_probe(layer: Layer) -> Array:
    """`GRADIENT_PROBE` but for the points near the layer's kinks, in an input of the
    layer's shape (repeated to fill it)."""
    kinks = tuple(getattr(layer, "kinks", ()))
    points = [v for v in GRADIENT_PROBE if _clear_of(v, kinks, 1e-3)]
    trailing = math.prod(_example_shape(layer, 1))
    shape = _example_shape(layer, -(-len(points) // trailing))
    return np.resize(np.array(points), shape)


def _name(layer: Layer) -> str:
    return f"{type(layer).__name__} ({layer!r})"


def _fail(check: str, layer: Layer, problem: str) -> AssertionError:
    return AssertionError(f"check {check!r} failed for {_name(layer)}: {problem}")


def _examples() -> settings:
    return settings(
        deadline=None, max_examples=min(settings().max_examples, MAX_EXAMPLES), database=None
    )


# ---------------------------------------------------------------------------
# The checks. Each takes a layer or factory, works on fresh copies, and raises
# AssertionError naming itself, the class and the problem.


def _ignoring_runtime_warnings(check: Callable[[LayerOrFactory], None]) -> Any:
    """Overflow and invalid-value warnings are the `no_warnings` check's to report: the
    other checks run without them, so that each failure names the check it belongs to."""

    @functools.wraps(check)
    def quiet(layer_or_factory: LayerOrFactory) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            check(layer_or_factory)

    return quiet


@_ignoring_runtime_warnings
def check_gradient(layer_or_factory: LayerOrFactory) -> None:
    """backward agrees with finite differences on float64 inputs across [-1000, 1000].

    The step is relative, ``h = 2**-17 * max(|x|, 1)``, so the tails are checked as
    closely as the middle. An element passes when the error is within ``1e-5``
    relative, plus bounds on the error of the estimate itself: the rounding of f
    (32 ulp of the outputs that move, over the step) and the truncation, estimated
    from the difference between steps h and 2h. Where f' is too small to show in
    rounded values of f (the flat tail of a sigmoid near 1), that bound is what
    remains: finite differences cannot see f' there. Elements where f(x ± h) is
    not finite are not compared. Kinks (`Activation.kinks`) are kept at a margin.
    """
    make = _factory(layer_or_factory)
    layer = make()
    _gradient_agrees(make(), _gradient_probe(layer))
    elements = wide_floats(avoid=tuple(getattr(layer, "kinks", ())))

    @_examples()
    @given(x=hnp.arrays(np.float64, input_shapes(layer), elements=elements))
    def agrees(x: Array) -> None:
        _gradient_agrees(make(), x)

    agrees()


#: Relative step of the kit's finite differences, relative tolerance, rounding bound in ulp.
STEP, RTOL, NOISE_ULPS = 2.0**-17, 1e-5, 32


def _estimate(
    output: Callable[[], Array], variable: Array, grad_output: Array, elementwise: bool
) -> tuple[Array, Array]:
    """A central-difference estimate with relative steps, and a bound on its error."""
    step = STEP * np.maximum(np.abs(variable), 1.0)
    first, noise = central_differences(output, variable, step, grad_output, elementwise=elementwise)
    second, _ = central_differences(
        output, variable, 2 * step, grad_output, elementwise=elementwise
    )
    with np.errstate(all="ignore"):
        # NOTE: the truncation error grows as h^2, so |D(2h) - D(h)| is about 3 times that of D(h)
        bound = NOISE_ULPS * np.finfo(np.float64).eps * noise + 4 * np.abs(second - first)
        measurable = np.isfinite(first) & np.isfinite(bound)
    return first, np.where(measurable, bound, np.nan)


def _disagree(estimate: Array, bound: Array, analytical: Array) -> npt.NDArray[np.bool_]:
    """Where `analytical` is off the estimate by more than RTOL plus the bound; NaN
    bounds (not measurable) never disagree, a NaN analytical value always does."""
    with np.errstate(all="ignore"):
        error = np.abs(analytical - estimate)
        good = error <= RTOL * np.abs(estimate) + bound
    return np.asarray(~good & ~np.isnan(bound), bool)


def _worst(bad: Array, estimate: Array, bound: Array, analytical: Array) -> tuple[int, ...]:
    """The index of the largest disagreement relative to what is allowed (NaN first)."""
    with np.errstate(all="ignore"):
        ratio = np.abs(analytical - estimate) / (RTOL * np.abs(estimate) + bound)
    badness = np.where(bad, np.nan_to_num(ratio, nan=np.inf), -1.0)
    return tuple(int(i) for i in np.unravel_index(np.argmax(badness), bad.shape))


def _gradient_agrees(layer: Layer, x: Array) -> None:
    elementwise = isinstance(layer, Activation)
    y = np.asarray(layer.forward(x), np.float64)
    grad_output = default_grad_output(layer, y.shape, seed=0)
    point = x.copy()

    def output() -> Array:
        return np.asarray(layer.forward(point), np.float64)

    named = [("input", point), *((f"parameter {n!r}", p.data) for n, p in layer.named_parameters())]
    estimates = [_estimate(output, v, grad_output, elementwise) for _, v in named]
    layer.zero_grad()
    layer.forward(x)
    analytical = [np.asarray(layer.backward(grad_output), np.float64)]
    analytical += [np.array(p.grad, np.float64) for p in layer.parameters()]
    for (what, _), (estimate, bound), got in zip(named, estimates, analytical, strict=True):
        if got.shape != estimate.shape:
            raise _fail("gradient", layer, f"backward gave shape {got.shape} for {estimate.shape}")
        bad = _disagree(estimate, bound, got)
        if not bad.any():
            continue
        at = _worst(bad, estimate, bound, got)
        if elementwise:
            problem = (
                f"derivative at x = {float(x[at])!r} is {got[at]:.8g} by backward; finite "
                f"differences give {estimate[at]:.8g} (± {bound[at]:.2g} + {RTOL:g} relative)"
            )
        else:
            problem = (
                f"the gradient of sum(grad_output * f(x)) with respect to the {what}, element "
                f"{at}, is {got[at]:.8g} by backward; finite differences give "
                f"{estimate[at]:.8g} (± {bound[at]:.2g} + {RTOL:g} relative); grad_output "
                "is a standard normal, seed 0"
            )
        raise _fail(
            "gradient",
            layer,
            f"{problem} ({int(bad.sum())} of {bad.size} elements wrong; backward disagrees "
            "with the slope of forward, so one of them is wrong there: the estimate trusts "
            f"forward to {NOISE_ULPS // 2} ulp). "
            f"Failing input: {x!r}",
        )
    if elementwise:
        mismatch = chain_rule_mismatch(layer, x, seed=0)
        if mismatch is not None:
            raise _fail("gradient", layer, mismatch)


@_ignoring_runtime_warnings
def check_second_derivative(layer_or_factory: LayerOrFactory) -> None:
    """f'' by ``second_derivative`` agrees with finite differences of f' (backward of
    ones) on float64 inputs across [-1000, 1000], as `check_gradient` compares f'.

    Optional: a layer that does not provide f'' passes (`parametrize_with_checks`
    marks the test skipped).
    """
    make = _factory(layer_or_factory)
    layer = make()
    if not provides_second_derivative(layer):
        return
    _second_derivative_agrees(make(), _gradient_probe(layer))
    elements = wide_floats(avoid=tuple(getattr(layer, "kinks", ())))

    @_examples()
    @given(x=hnp.arrays(np.float64, input_shapes(layer), elements=elements))
    def agrees(x: Array) -> None:
        _second_derivative_agrees(make(), x)

    agrees()


def provides_second_derivative(layer: Layer) -> bool:
    """Whether `layer` has f'': an `Activation` with ``derivatives`` (or its own
    ``second_derivative``), or any other layer with a ``second_derivative`` method."""
    if isinstance(layer, Activation):
        cls = type(layer)
        return cls.derivatives is not None or (
            cls.second_derivative is not Activation.second_derivative
        )
    return callable(getattr(layer, "second_derivative", None))


def _second_derivative_agrees(layer: Any, x: Array) -> None:
    got = np.asarray(layer.second_derivative(x), np.float64)
    if got.shape != x.shape:
        raise _fail("second_derivative", layer, f"gave shape {got.shape} for x of shape {x.shape}")

    def derivative() -> Array:
        y = layer.forward(variable)
        return np.asarray(layer.backward(np.ones(np.shape(y))), np.float64)

    variable = x.copy()
    estimate, bound = _estimate(derivative, variable, np.ones(x.shape), elementwise=True)
    bad = _disagree(estimate, bound, got)
    if bad.any():
        at = _worst(bad, estimate, bound, got)
        raise _fail(
            "second_derivative",
            layer,
            f"f''(x) at x = {float(x[at])!r} is {got[at]:.8g} by second_derivative; finite "
            f"differences of f' give {estimate[at]:.8g} (± {bound[at]:.2g} + {RTOL:g} "
            f"relative) ({int(bad.sum())} of {bad.size} elements wrong). "
            f"Failing input: {x!r}",
        )


@_ignoring_runtime_warnings
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


#: float16 and float32 results may be this many ulp of their dtype from float64's.
ELEMENTWISE_ULPS = 4
#: For other layers: this many ulp of the largest value, plus what float64 moves
#: when x moves by PERTURB_ULPS ulp (relative): all of x up, all down, and each
#: element up or down at random in PERTURB_DRAWS more tries.
NORMWISE_ULPS, PERTURB_ULPS, PERTURB_DRAWS = 32, 4, 6


@_ignoring_runtime_warnings
def check_dtype_accuracy(layer_or_factory: LayerOrFactory) -> None:
    """float16 and float32 forward and backward agree with float64 on the same values.

    The float64 result, rounded to the narrow dtype, is the reference. An
    elementwise layer (an activation) computes each element in float64 and rounds
    once, so it may be off by 4 ulp of the narrow dtype, relative (in the
    subnormal range, 4 of its smallest steps), and may give the largest finite
    value where the reference overflows to inf. Inputs span the whole finite range
    of the narrow dtype.

    Other layers round inside (a `Linear` sums in float32, a `Sequential` rounds
    between its layers), so their error grows with how sensitive they are. They may
    be off by 32 ulp of the largest value in the array, plus as much as the float64
    result moves when x moves by 4 ulp of the narrow dtype (all of it up, all down, or
    each element up or down at random, in 6 seeded tries). Inputs are in [-1000, 1000].
    """
    make = _factory(layer_or_factory)
    layer = make()
    elementwise = isinstance(layer, Activation)
    for dtype in (np.float16, np.float32):
        largest = float(np.finfo(dtype).max) if elementwise else 1e3
        arrays = hnp.arrays(
            dtype, input_shapes(layer), elements=wide_floats(dtype, largest=largest)
        )

        @_examples()
        @given(x=arrays)
        def agrees(x: Array) -> None:
            _agrees_with_float64(make, x, elementwise)

        agrees()


def _in_float64(make: Callable[[], Layer], x: Array, grad_output: Array) -> tuple[Array, Array]:
    layer = make()
    y = np.asarray(layer.forward(x), np.float64)
    return y, np.asarray(layer.backward(grad_output), np.float64)


def _agrees_with_float64(make: Callable[[], Layer], x: Array, elementwise: bool) -> None:
    narrow = make()
    dtype = x.dtype
    y = narrow.forward(x)
    grad_output = np.random.default_rng(0).uniform(-2, 2, np.shape(y)).astype(dtype)
    grad = narrow.backward(grad_output)
    wide_x, wide_grad_output = x.astype(np.float64), grad_output.astype(np.float64)
    references = _in_float64(make, wide_x, wide_grad_output)
    spreads = [np.zeros(np.shape(y)), np.zeros(x.shape)]  # for forward and backward
    if not elementwise:
        moved = PERTURB_ULPS * float(np.finfo(dtype).eps) * wide_x
        # NOTE: every element moved up, every one down, and each up or down at random: the
        # narrow dtype's roundings inside (a Linear's products and sums) are not all of one
        # sign, and where a sum cancels, moving x in proportion moves it far less than they
        # do (x = [-266, -435] in float32 through Linear, ReLU, Linear, Sigmoid: its
        # gradient was 2.4e-7 off, with 8.1e-9 allowed for moving x up or down)
        signs = np.random.default_rng(0).choice([-1.0, 1.0], (PERTURB_DRAWS, *x.shape))
        for sign in (-1.0, 1.0, *signs):
            others = _in_float64(make, wide_x + sign * moved, wide_grad_output)
            with np.errstate(all="ignore"):
                for i in range(2):
                    spreads[i] = np.fmax(spreads[i], np.abs(others[i] - references[i]))
    results = zip(("forward", "backward"), (y, grad), references, spreads, strict=True)
    for what, got, reference, spread in results:
        got = np.asarray(got)
        if got.shape != reference.shape:
            raise _fail("dtype_accuracy", narrow, f"{what} gave shape {got.shape} in {dtype}")
        bad = _off_float64(got, reference, spread, dtype, elementwise)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            tolerance = (
                f"{ELEMENTWISE_ULPS} ulp of {dtype}"
                if elementwise
                else f"the allowed error ({NORMWISE_ULPS} ulp of {dtype} of the largest value "
                f"+ {spread[at]:.3g} for moving x by {PERTURB_ULPS} ulp)"
            )
            raise _fail(
                "dtype_accuracy",
                narrow,
                f"{what} in {dtype} is {got[at]!r} at index {at}, float64 gives "
                f"{reference[at]!r} for the same values (x = {x[at]!r}"
                + (f", grad_output = {grad_output[at]!r}" if what == "backward" else "")
                + f"); {int(bad.sum())} of {bad.size} elements are off by more than "
                f"{tolerance}. Smallest failing input found: {x!r}",
            )


def _off_float64(
    got: Array, reference: Array, spread: Array, dtype: Any, elementwise: bool
) -> npt.NDArray[np.bool_]:
    """Where the narrow result `got` is too far from the float64 `reference`."""
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        rounded = reference.astype(dtype)  # inf where the reference overflows
        wide = got.astype(np.float64)
        if elementwise:
            tolerance = ELEMENTWISE_ULPS * np.spacing(np.abs(rounded)).astype(np.float64)
        else:
            finite = np.abs(reference[np.isfinite(reference)])
            scale = float(finite.max()) if finite.size else 0.0
            step = float(info.eps) * scale + float(info.smallest_subnormal)
            tolerance = NORMWISE_ULPS * step + spread
        close = np.abs(wide - reference) <= tolerance
        same = (wide == rounded) | (np.isnan(wide) & np.isnan(reference))
        # NOTE: where float64 overflows the narrow dtype, its largest value is also right
        largest = (
            np.isinf(rounded) & np.isfinite(reference) & (wide == np.sign(reference) * info.max)
        )
    return np.asarray(~(close | same | largest), bool)


@_ignoring_runtime_warnings
def check_no_mutation(layer_or_factory: LayerOrFactory) -> None:
    """Neither forward nor backward modifies its argument, in float16, float32 and float64."""
    make = _factory(layer_or_factory)
    for dtype in (np.float16, np.float32, np.float64):
        layer = make()
        x = _probe(layer, 4, dtype)
        x_before = x.copy()
        y = layer.forward(x)
        if not np.array_equal(x, x_before, equal_nan=True):
            raise _fail(
                "no_mutation", layer, f"forward modified its input x in place ({np.dtype(dtype)})"
            )
        grad_output = np.linspace(0.5, 1.5, np.size(y)).reshape(np.shape(y)).astype(dtype)
        grad_before = grad_output.copy()
        layer.backward(grad_output)
        if not np.array_equal(grad_output, grad_before, equal_nan=True):
            raise _fail(
                "no_mutation",
                layer,
                f"backward modified grad_output in place ({np.dtype(dtype)})",
            )


@_ignoring_runtime_warnings
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


@_ignoring_runtime_warnings
def check_backward_before_forward(layer_or_factory: LayerOrFactory) -> None:
    """backward before any forward raises RuntimeError, not a confusing failure.

    An instance is checked on a copy without its cache (see `check_layer`), so one
    that has already run forward is checked as if new.
    """
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
    hint = (
        " (if this instance had already run forward: the kit's copies clear attributes "
        "named _cache, so keep the cache under that name, or pass the class or a factory)"
        if isinstance(layer_or_factory, Layer)
        else ""
    )
    raise _fail("backward_before_forward", layer, f"backward before forward raised no error{hint}")


@_ignoring_runtime_warnings
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


EXTREMES = (-1000.0, 1000.0, -np.inf, np.inf, np.nan, 0.0, -0.0, 1e-300, -1e300, 60000.0)
#: grad_output values for `check_no_warnings`: besides 1, the IEEE extremes, and values
#: beyond the range of float16 and float32 (given in float64, or rounded to inf).
GRAD_EXTREMES = (1.0, -np.inf, np.inf, np.nan, 1e300, -1e300, 0.0)


def check_no_warnings(layer_or_factory: LayerOrFactory) -> None:
    """No RuntimeWarning (overflow, invalid value, overflow in a cast) in float16, float32
    and float64, for inputs of +-1000, +-inf, NaN, +-0, tiny and huge values, each with a
    grad_output of 1, +-inf, NaN, 0 or +-1e300, in the input's dtype and in float64."""
    make = _factory(layer_or_factory)
    for dtype in (np.float16, np.float32, np.float64):
        for value in EXTREMES:
            shape = _example_shape(make(), 2)
            with np.errstate(all="ignore"):  # 1e300 is inf in float16: the value meant
                x = np.full(shape, value).astype(dtype)
            for grad_value, grad_dtype in itertools.product(GRAD_EXTREMES, (dtype, np.float64)):
                layer = make()
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    try:
                        y = layer.forward(x)
                        with np.errstate(all="ignore"):
                            grad_output = np.full(np.shape(y), grad_value).astype(grad_dtype)
                        layer.backward(grad_output)
                    except Warning as warning:
                        raise _fail(
                            "no_warnings",
                            layer,
                            f"input {value!r} in {np.dtype(dtype)} with grad_output "
                            f"{grad_value!r} in {np.dtype(grad_dtype)} gave "
                            f"{type(warning).__name__}: {warning}",
                        ) from None


@_ignoring_runtime_warnings
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


@_ignoring_runtime_warnings
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
    "dtype_accuracy": check_dtype_accuracy,
    "gradient": check_gradient,
    "second_derivative": check_second_derivative,
}


def _factory(layer_or_factory: Any) -> Callable[[], Layer]:
    """A function that makes a fresh layer: a copy of an instance without its cache,
    or the factory's result, checked to be a `Layer`."""
    if isinstance(layer_or_factory, Layer):
        template = layer_or_factory
        return lambda: fresh_copy(template)
    if not callable(layer_or_factory):
        raise TypeError(
            "the testing kit checks a Layer instance, or a callable that returns a new "
            "one (such as the class); got "
            f"{type(layer_or_factory).__name__}: {layer_or_factory!r}"
        )

    def make() -> Layer:
        try:
            layer = layer_or_factory()
        except TypeError as error:  # not a factory (np.tanh, say), or one that needs arguments
            raise TypeError(
                f"{layer_or_factory!r}() raised TypeError: {error}. The testing kit checks a "
                "Layer instance, or a callable that returns a new one when called with no "
                "arguments (such as the class)"
            ) from error
        if not isinstance(layer, Layer):
            raise TypeError(
                f"the testing kit checks Layers: {layer_or_factory!r}() returned "
                f"{type(layer).__name__}: {layer!r}, not a Layer"
            )
        return layer

    return make


def fresh_copy(layer: Layer) -> Layer:
    """A deep copy of `layer` as if it had never run forward: attributes named
    ``_cache`` are set to None in it and in every layer it holds (directly, or in a
    list, tuple or dict), so a cache kept under that name is never carried over."""
    copied = copy.deepcopy(layer)
    for part in _layers_in(copied):
        state = getattr(part, "__dict__", {})
        if "_cache" in state:
            state["_cache"] = None
    return copied


def _layers_in(layer: Layer) -> Iterator[Layer]:
    seen: set[int] = set()
    stack = [layer]
    while stack:
        part = stack.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        yield part
        for value in getattr(part, "__dict__", {}).values():
            if isinstance(value, dict):
                value = list(value.values())
            items = value if isinstance(value, list | tuple) else [value]
            stack.extend(item for item in items if isinstance(item, Layer))


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
        A layer, or something that makes a fresh one, such as its class. Each check
        works on its own copy of a layer (`fresh_copy`: a deep copy without the
        cache), so the layer itself is never touched, and one that has already run
        forward is checked as if new.
    expected_failed_checks : dict, optional
        ``{check name: reason}`` for checks to skip deliberately.

    Raises
    ------
    TypeError
        If `layer_or_factory` is neither a `Layer` nor a callable that returns one.
    AssertionError
        Naming the first check that fails, the layer and the problem.
    """
    skip = dict(expected_failed_checks or {})
    _unknown(skip)
    _factory(layer_or_factory)()  # a TypeError now, not inside the first check
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
    The optional ``second_derivative`` check is skipped for layers without f''.
    """
    import pytest

    cases = []
    for item in layers:
        example = _factory(item)()
        skip = dict(expected_failed_checks(example) if expected_failed_checks else {})
        _unknown(skip)
        if not provides_second_derivative(example):
            skip.setdefault("second_derivative", f"{type(example).__name__} does not provide f''")
        for name, check in CHECKS.items():
            marks = [pytest.mark.skip(reason=skip[name])] if name in skip else []
            cases.append(pytest.param(item, check, id=f"{example!r}-{name}", marks=marks))
    return pytest.mark.parametrize(("layer", "check"), cases)
