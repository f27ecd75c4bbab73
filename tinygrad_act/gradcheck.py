"""Check a layer's backward against central finite differences of its forward, and an
activation's f'' against finite differences of its f'."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_act import _array_api
from tinygrad_act.base import Activation, Array, Layer, as_float_array


class GradcheckError(AssertionError):
    """A layer's analytical gradient disagrees with finite differences."""


def gradcheck(
    layer: Layer,
    x: npt.ArrayLike,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int | None = None,
) -> bool:
    r"""Compare ``layer.backward`` with central finite differences of ``layer.forward``.

    Everything is computed in float64. For an elementwise layer (an `Activation`)
    the check is of the derivative itself: ``backward(ones)`` is :math:`f'(x)`, and
    for every element

    .. math::
        f'(x_i) \approx \frac{f(x_i + \epsilon) - f(x_i - \epsilon)}{2 \epsilon}

    must hold within ``atol + rtol * |numerical|``; ``backward(v)`` must also be
    ``v * f'(x)`` for a random ``v``. Any other layer is checked through
    vector-Jacobian products: with a random ``grad_output`` :math:`v` (standard
    normal, seeded by `seed`), for every input element :math:`x_i`,

    .. math::
        \frac{\partial (v \cdot f(x))}{\partial x_i} \approx
        v \cdot \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2 \epsilon}

    must match ``layer.backward(v)[i]``. Layers with parameters (`Linear`, a
    `Sequential` network) have the gradient of every parameter checked the same
    way, perturbing its ``.data`` in place and restoring it; their ``.grad`` is
    reset to zero first. The last forward runs at `x` itself, so afterwards the
    layer's cache is that of ``forward(x)``.

    Parameters
    ----------
    layer : Layer
        The layer to check.
    x : array_like
        The point at which to check: finite; converted to float64, never modified.
    eps : float
        Step of the central difference, positive and finite.
    atol, rtol : float
        Absolute and relative tolerance, non-negative and finite.
    raise_exception : bool
        If False, return False on mismatch instead of raising.
    seed : int, optional
        Seed for the random ``grad_output``.

    Returns
    -------
    bool
        True if every gradient matches.

    Raises
    ------
    GradcheckError
        On mismatch, naming the layer, the shape, how many elements mismatch, and at
        the worst one: x, the gradient by backward and by finite differences, and the
        errors.
    ValueError
        For an `eps`, `atol` or `rtol` out of range, or `x` with NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> from tinygrad_act import Sigmoid
    >>> gradcheck(Sigmoid(), np.linspace(-3.0, 3.0, 7), seed=0)
    True
    """
    _check_settings("gradcheck", eps, atol, rtol)
    _check_layer("gradcheck", layer)
    point = finite_point("gradcheck", x)
    found = gradients(layer, x, eps=eps, seed=seed)
    message = None
    for what, numerical, analytical in found:
        message = _compare(layer, point, what, numerical, analytical, eps, atol, rtol, seed)
        if message is not None:
            break
    if message is None and isinstance(layer, Activation):
        message = chain_rule_mismatch(layer, point, rtol, seed, like=x)
    if message is None:
        return True
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradients(
    layer: Layer,
    x: npt.ArrayLike,
    *,
    eps: float = 1e-6,
    seed: int | None = None,
    grad_output: npt.ArrayLike | None = None,
) -> list[tuple[str, Array, Array]]:
    """The ``(what, numerical, analytical)`` gradients that `gradcheck` compares.

    ``what`` is ``"input"`` or names a parameter. `grad_output` is ones for an
    `Activation` (the gradient is then its derivative) and random otherwise
    (standard normal, seeded by `seed`), unless given. The last forward runs at `x`.

    For `x` of another array library (torch, JAX, ...) the layer runs on that
    library and device, in float64 where it has it; the differences are taken on
    NumPy copies, and the gradients returned as NumPy arrays.
    """
    _check_settings("gradients", eps, 0.0, 0.0)
    point = finite_point("gradients", x)
    to_input = _converter(x)
    y = _host(layer.forward(to_input(point)))
    again = _host(layer.forward(to_input(point)))
    if not np.array_equal(y, again, equal_nan=True):
        raise GradcheckError(
            f"{type(layer).__name__}: two forward calls at the same x gave different "
            "outputs, and finite differences need a forward that does not change between "
            "calls (a random layer, such as RReLU while training: call .eval() first)"
        )
    v = default_grad_output(layer, y.shape, seed) if grad_output is None else grad_output
    v = _host(v)
    named = layer.named_parameters()
    # NumPy parameters are perturbed in place; another library's through NumPy copies
    variables = [point, *(_host(p.data) if _foreign(p.data) else p.data for _, p in named)]

    def output() -> Array:
        for (_, p), value in zip(named, variables[1:], strict=True):
            if _foreign(p.data):
                p.data = _array_api.like(value, p.data)
        return _host(layer.forward(to_input(point)))

    numerical = [central_differences(output, variable, eps, v)[0] for variable in variables]

    output()  # NOTE: the parameters as they were, their own values restored
    layer.zero_grad()  # NOTE: last, so that the layer is left with the forward at x itself
    layer.forward(to_input(point))
    analytical = [_host(layer.backward(to_input(v)))]
    if analytical[0].shape != point.shape:
        raise GradcheckError(
            f"gradcheck: {layer!r}.backward returned shape {analytical[0].shape} "
            f"for an input of shape {point.shape}"
        )
    analytical += [_host(p.grad) for p in layer.parameters()]
    whats = ["input", *(f"parameter {n!r}" for n, _ in named)]
    return list(zip(whats, numerical, analytical, strict=True))


def _foreign(a: Any) -> bool:
    return type(a) is not np.ndarray and _array_api.is_foreign(a)


def _host(a: Any) -> Array:
    """`a` as a new NumPy float64 array (from any library)."""
    if _foreign(a):
        return np.asarray(_array_api.to_numpy(a), dtype=np.float64)
    return np.array(a, dtype=np.float64)


def _converter(like: Any) -> Callable[[Array], Any]:
    """NumPy float64 to the library and device of `like`, in float64 where it has it."""
    if not _foreign(like):
        return lambda a: a
    if _array_api.is_dask(like):
        import dask.array as da

        from_array: Any = da.from_array
        return lambda a: from_array(a.copy(), chunks=like.chunks)
    space = _array_api.Namespace(like)
    return lambda a: space.asarray(a, dtype=space.dtype, device=space.device)


def gradgradcheck(
    layer: Layer,
    x: npt.ArrayLike,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    r"""Compare an activation's ``second_derivative`` with finite differences of its f'.

    Everything is computed in float64. :math:`f'` is ``backward(ones)`` after a
    forward, and for every element

    .. math::
        f''(x_i) \approx \frac{f'(x_i + \epsilon) - f'(x_i - \epsilon)}{2 \epsilon}

    must hold within ``atol + rtol * |numerical|``. The layer must be elementwise
    and provide ``second_derivative(x)``. The last forward runs at `x` itself.

    Parameters
    ----------
    layer : Layer
        An elementwise layer with ``second_derivative``, such as an `Activation`
        that defines ``derivatives``.
    x : array_like
        The point at which to check: finite; converted to float64, never modified.
    eps : float
        Step of the central difference, positive and finite.
    atol, rtol : float
        Absolute and relative tolerance, non-negative and finite.
    raise_exception : bool
        If False, return False on mismatch instead of raising.

    Returns
    -------
    bool
        True if f'' matches everywhere.

    Raises
    ------
    GradcheckError
        On mismatch, naming the layer, how many elements mismatch, and at the worst
        one: x, f''(x) as computed and as estimated, and the errors.
    ValueError
        For an `eps`, `atol` or `rtol` out of range, or `x` with NaN or inf.
    TypeError
        For a layer without ``second_derivative``.
    NotImplementedError
        For an activation that does not provide f''.

    Examples
    --------
    >>> import numpy as np
    >>> class Cube(Activation):
    ...     @staticmethod
    ...     def function_and_derivative(xp, x):
    ...         return x * x * x, 3 * x * x
    ...     @staticmethod
    ...     def derivatives(xp, x):
    ...         return 3 * x * x, 6 * x
    >>> gradgradcheck(Cube(), np.linspace(-2.0, 2.0, 5))
    True
    """
    _check_settings("gradgradcheck", eps, atol, rtol)
    _check_layer("gradgradcheck", layer)
    second_derivative = getattr(layer, "second_derivative", None)
    if not callable(second_derivative):
        raise TypeError(
            f"gradgradcheck: {type(layer).__name__} has no second_derivative(x); "
            "it checks elementwise layers that provide f''"
        )
    point = finite_point("gradgradcheck", x)
    to_input = _converter(x)
    analytical = _host(second_derivative(to_input(point)))
    numerical, _ = _first_derivative_differences(layer, point, eps, to_input)
    layer.forward(to_input(point))  # NOTE: leaves the layer with the forward at x itself
    message = _compare_second(layer, point, numerical, analytical, eps, atol, rtol)
    if message is None:
        return True
    if raise_exception:
        raise GradcheckError(message)
    return False


# ---------------------------------------------------------------------------
# Finite differences, shared with the testing kit


def central_differences(
    output: Callable[[], Array],
    variable: Array,
    step: float | Array,
    grad_output: Array,
    *,
    elementwise: bool = False,
) -> tuple[Array, Array]:
    """``d(grad_output . output())/d(variable)`` by central differences, and its noise scale.

    `variable` (float64) is perturbed in place by ``±step`` (a number, or one per
    element) and restored. `elementwise` perturbs every element at once, which is
    right only when output element i depends on variable element i alone. The
    difference is divided by ``(x + h) - (x - h)``, the step actually taken.

    The noise scale is ``sum |grad_output| * (|f(x ± h)| + tiny)`` over the outputs
    each element moves, divided by that step: times the relative error of f, it
    bounds the rounding error of the estimate (``tiny``, the smallest normal
    float64, covers the subnormal range, where the error is absolute).
    """
    tiny = np.finfo(np.float64).tiny
    steps = np.broadcast_to(np.asarray(step, np.float64), variable.shape)
    numerical = np.empty(variable.shape, np.float64)
    noise = np.empty(variable.shape, np.float64)
    with np.errstate(all="ignore"):  # inf - inf is NaN here, quietly: the caller sees it
        if elementwise:
            original = variable.copy()
            variable += steps
            above = variable.copy()
            plus = output()
            variable[...] = original - steps
            taken = above - variable
            minus = output()
            variable[...] = original
            numerical[...] = grad_output * (plus - minus) / taken
            noise[...] = np.abs(grad_output) * (np.maximum(np.abs(plus), np.abs(minus)) + tiny)
            noise /= taken
            return numerical, noise
        for index in np.ndindex(variable.shape):
            original = variable[index]
            variable[index] = above = original + steps[index]
            plus = output()
            variable[index] = below = original - steps[index]
            minus = output()
            variable[index] = original
            taken = above - below
            numerical[index] = np.sum(grad_output * (plus - minus)) / taken
            size = np.sum(np.abs(grad_output) * (np.maximum(np.abs(plus), np.abs(minus)) + tiny))
            noise[index] = size / taken
    return numerical, noise


def _first_derivative_differences(
    layer: Layer,
    point: Array,
    step: float | Array,
    to_input: Callable[[Array], Any] = lambda a: a,
) -> tuple[Array, Array]:
    """Central differences of f' (``backward(ones)`` after forward) of an elementwise
    layer at `point`, all elements at once, and their noise scale (see
    `central_differences`). `to_input` moves NumPy arrays to the layer's library."""

    def derivative() -> Array:
        layer.forward(to_input(variable))
        return _host(layer.backward(to_input(np.ones(point.shape))))

    variable = point.copy()
    return central_differences(derivative, variable, step, np.ones(point.shape), elementwise=True)


def default_grad_output(layer: Layer, shape: tuple[int, ...], seed: int | None) -> Array:
    """Ones for an `Activation` (backward is then f'), else standard normal seeded by `seed`."""
    if isinstance(layer, Activation):
        return np.ones(shape)
    return np.random.default_rng(seed).standard_normal(shape)


def within_tolerance(
    numerical: Array, analytical: Array, *, atol: float = 1e-5, rtol: float = 1e-3
) -> npt.NDArray[np.bool_]:
    """Elementwise ``|analytical - numerical| <= atol + rtol * |numerical|``; NaN fails."""
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, a mismatch
        error = np.abs(analytical - numerical)
    return np.asarray(error <= atol + rtol * np.abs(numerical), bool)


def finite_point(caller: str, x: npt.ArrayLike) -> Array:
    """`x` as a new NumPy float64 array (from any library), or `ValueError` if it holds
    NaN or inf."""
    if _foreign(x):
        x = _array_api.to_numpy(_array_api.float_array(x, caller))
    point = as_float_array(x, caller).astype(np.float64)
    bad = ~np.isfinite(point)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{caller}: x has {int(bad.sum())} non-finite element(s), the first "
            f"{point[first]} at index {first}; finite differences need finite input"
        )
    return point


def _check_settings(caller: str, eps: float, atol: float, rtol: float) -> None:
    for name, value, positive in (("eps", eps, True), ("atol", atol, False), ("rtol", rtol, False)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"{caller}: {name} must be a real number, got {value!r}")
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            need = "positive and finite" if positive else "non-negative and finite"
            raise ValueError(f"{caller}: {name} must be {need}, got {value!r}")


def _check_layer(caller: str, layer: Any) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"{caller} checks a Layer, got {type(layer).__name__}: {layer!r}")


# ---------------------------------------------------------------------------
# Messages


def _worst(numerical: Array, analytical: Array, atol: float, rtol: float) -> tuple[Any, int]:
    """The index of the worst mismatch (NaN first), and how many elements mismatch."""
    bad = ~within_tolerance(numerical, analytical, atol=atol, rtol=rtol)
    if not bad.any():
        return (), 0
    with np.errstate(all="ignore"):
        error = np.abs(analytical - numerical)
        badness = np.where(np.isnan(error), np.inf, error / (atol + rtol * np.abs(numerical)))
    badness = np.where(bad, badness, -1.0)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(badness), numerical.shape))
    return worst, int(bad.sum())


def _errors(numerical: float, analytical: float) -> str:
    with np.errstate(all="ignore"):
        error = abs(analytical - numerical)
        relative = error / abs(numerical) if numerical != 0 else math.inf
    return f"abs error {error:.3g}, rel error {relative:.3g}"


def _compare(
    layer: Layer,
    point: Array,
    what: str,
    numerical: Array,
    analytical: Array,
    eps: float,
    atol: float,
    rtol: float,
    seed: int | None,
) -> str | None:
    worst, wrong = _worst(numerical, analytical, atol, rtol)
    if not wrong:
        return None
    n, a = float(numerical[worst]), float(analytical[worst])
    settings = f"atol={atol:g}, rtol={rtol:g}, eps={eps:g}"
    if isinstance(layer, Activation) and what == "input":
        return (
            f"gradcheck failed for {layer!r}: f'(x) disagrees with finite differences at "
            f"{wrong} of {numerical.size} elements of x (shape {numerical.shape}); worst at "
            f"index {worst}: x = {float(point[worst]):.17g}, f'(x) = {a:.8g} by backward "
            f"(analytical), {n:.8g} by finite differences (numerical); "
            f"{_errors(n, a)} ({settings})"
        )
    drawn = "ones" if isinstance(layer, Activation) else f"a standard normal, seed={seed}"
    return (
        f"gradcheck failed for {layer!r}, gradient with respect to the {what} of shape "
        f"{numerical.shape}: {wrong} of {numerical.size} elements mismatch; worst at index "
        f"{worst}: the derivative of sum(grad_output * f(x)) is {a:.8g} by backward "
        f"(analytical), {n:.8g} by finite differences (numerical); {_errors(n, a)} "
        f"({settings}; grad_output drawn from {drawn}, see default_grad_output)"
    )


def chain_rule_mismatch(
    layer: Layer,
    point: Array,
    rtol: float = 1e-12,
    seed: int | None = None,
    *,
    like: Any = None,
) -> str | None:
    """None if an elementwise layer's ``backward(v)`` is ``v * backward(ones)`` for a
    random v (standard normal, seeded by `seed`), else a message saying where not.

    The layer runs on the library and device of `like`, if given (NumPy otherwise)."""
    to_input = _converter(like)
    y = _host(layer.forward(to_input(point)))
    derivative = _host(layer.backward(to_input(np.ones(y.shape))))
    v = np.random.default_rng(seed).standard_normal(y.shape)
    got = _host(layer.backward(to_input(v)))
    expected = v * derivative
    good = within_tolerance(expected, got, atol=0.0, rtol=max(rtol, 1e-12))
    good |= (expected == got) | (np.isnan(expected) & np.isnan(got))
    if good.all():
        return None
    at = tuple(int(i) for i in np.argwhere(~good)[0])
    return (
        f"gradcheck failed for {layer!r}: backward(grad_output) is not grad_output * f'(x) "
        f"at {int((~good).sum())} of {good.size} elements; first at index {at}: "
        f"x = {float(point[at]):.17g}, grad_output = {v[at]:.8g}, f'(x) = {derivative[at]:.8g} "
        f"(backward of ones), backward gave {got[at]:.8g}, expected {expected[at]:.8g}"
    )


def _compare_second(
    layer: Layer,
    point: Array,
    numerical: Array,
    analytical: Array,
    eps: float,
    atol: float,
    rtol: float,
) -> str | None:
    if analytical.shape != point.shape:
        return (
            f"gradgradcheck failed for {layer!r}: second_derivative returned shape "
            f"{analytical.shape} for x of shape {point.shape}"
        )
    worst, wrong = _worst(numerical, analytical, atol, rtol)
    if not wrong:
        return None
    n, a = float(numerical[worst]), float(analytical[worst])
    return (
        f"gradgradcheck failed for {layer!r}: f''(x) disagrees with finite differences of "
        f"f' at {wrong} of {numerical.size} elements of x (shape {numerical.shape}); worst "
        f"at index {worst}: x = {float(point[worst]):.17g}, f''(x) = {a:.8g} by "
        f"second_derivative (analytical), {n:.8g} by finite differences of backward "
        f"(numerical); {_errors(n, a)} (atol={atol:g}, rtol={rtol:g}, eps={eps:g})"
    )
