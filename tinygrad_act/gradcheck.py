"""Check a layer's backward against central finite differences of its forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinygrad_act.base import Array, Layer, as_float_array


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

    Everything is computed in float64. A random ``grad_output`` :math:`v` (seeded by
    `seed`) turns the check into one of vector-Jacobian products, so it works for
    any layer, elementwise or not: for every input element :math:`x_i`,

    .. math::
        \frac{\partial (v \cdot f(x))}{\partial x_i} \approx
        v \cdot \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2 \epsilon}

    must match ``layer.backward(v)[i]`` within ``atol + rtol * |numerical|``.
    Layers with parameters (`Linear`, a `Sequential` network) have the gradient
    of every parameter checked the same way, perturbing its ``.data`` in place
    and restoring it; their ``.grad`` is reset to zero first.

    Parameters
    ----------
    layer : Layer
        The layer to check.
    x : array_like
        The point at which to check; converted to float64, never modified.
    eps : float
        Step of the central difference.
    atol, rtol : float
        Absolute and relative tolerance.
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
        On mismatch, naming the layer, the shape, how many elements mismatch,
        the worst index, both values and the errors.

    Examples
    --------
    >>> import numpy as np
    >>> from tinygrad_act import Sigmoid
    >>> gradcheck(Sigmoid(), np.linspace(-3.0, 3.0, 7), seed=0)
    True
    """
    for what, numerical, analytical in gradients(layer, x, eps=eps, seed=seed):
        message = _compare(layer, what, numerical, analytical, atol, rtol)
        if message is not None:
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradients(
    layer: Layer,
    x: npt.ArrayLike,
    *,
    eps: float = 1e-6,
    seed: int | None = None,
    grad_output: npt.ArrayLike | None = None,
) -> list[tuple[str, Array, Array]]:
    """The ``(what, numerical, analytical)`` gradients that `gradcheck` compares.

    ``what`` is ``"input"`` or names a parameter. `grad_output` is random
    (seeded by `seed`) unless given; ones make an elementwise layer's gradient
    its derivative.
    """
    point = as_float_array(x, "gradcheck").astype(np.float64)
    layer.zero_grad()

    y = np.asarray(layer.forward(point), dtype=np.float64)
    if grad_output is None:
        grad_output = np.random.default_rng(seed).standard_normal(y.shape)
    grad_output = np.asarray(grad_output, dtype=np.float64)
    grad_input = np.asarray(layer.backward(grad_output), dtype=np.float64)
    if grad_input.shape != point.shape:
        raise GradcheckError(
            f"gradcheck: {layer!r}.backward returned shape {grad_input.shape} "
            f"for an input of shape {point.shape}"
        )

    def output() -> Array:
        return np.asarray(layer.forward(point), dtype=np.float64)

    variables: list[tuple[str, Array, Array]] = [("input", point, grad_input)]
    for name, p in layer.named_parameters():
        variables.append((f"parameter {name!r}", p.data, np.array(p.grad, np.float64)))
    return [
        (what, _numerical_gradient(output, variable, grad_output, eps), analytical)
        for what, variable, analytical in variables
    ]


def _numerical_gradient(
    output: Callable[[], Array], variable: Array, grad_output: Array, eps: float
) -> Array:
    """d(grad_output . f)/d(variable) by central differences, perturbing `variable` in place."""
    numerical = np.empty(variable.shape, np.float64)
    for index in np.ndindex(variable.shape):
        original = variable[index]
        variable[index] = original + eps
        plus = output()
        variable[index] = original - eps
        minus = output()
        variable[index] = original
        numerical[index] = np.sum(grad_output * (plus - minus)) / (2 * eps)
    return numerical


def within_tolerance(
    numerical: Array, analytical: Array, *, atol: float = 1e-5, rtol: float = 1e-3
) -> npt.NDArray[np.bool_]:
    """Elementwise ``|analytical - numerical| <= atol + rtol * |numerical|``; NaN fails."""
    return np.asarray(np.abs(analytical - numerical) <= atol + rtol * np.abs(numerical), bool)


def _compare(
    layer: Layer, what: str, numerical: Array, analytical: Array, atol: float, rtol: float
) -> str | None:
    bad = ~within_tolerance(numerical, analytical, atol=atol, rtol=rtol)
    if not bad.any():
        return None
    error = np.abs(analytical - numerical)
    allowed = atol + rtol * np.abs(numerical)
    with np.errstate(divide="ignore", invalid="ignore"):
        badness: Any = np.where(np.isnan(error), np.inf, error / allowed)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(badness), numerical.shape))
    n, a, e = numerical[worst], analytical[worst], error[worst]
    rel = e / abs(n) if n != 0 else np.inf
    return (
        f"gradcheck failed for {layer!r}, gradient with respect to the {what} "
        f"of shape {numerical.shape}: {int(bad.sum())} of {bad.size} elements mismatch; "
        f"worst at index {worst}: numerical {n:.8g}, analytical {a:.8g}, "
        f"abs error {e:.3g}, rel error {rel:.3g} (atol={atol:g}, rtol={rtol:g})"
    )
