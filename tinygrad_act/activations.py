"""Activation layers: one small class per activation, its math and nothing else."""

from __future__ import annotations

import numpy as np

from tinygrad_act.base import Activation, Array, Saved


class Sigmoid(Activation):
    r"""The logistic sigmoid.

    .. math::
        f(x) = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad f'(x) = \sigma(x)\,(1 - \sigma(x))

    Shape: input ``(*)``, output ``(*)``, the same shape.

    Notes
    -----
    Forward and backward use :math:`c = \sigma(-|x|) = e^{-|x|} / (1 + e^{-|x|})`:
    :math:`e^{-|x|} \le 1` never overflows, and :math:`\sigma(x)` is :math:`1 - c`
    for :math:`x \ge 0` and :math:`c` otherwise. The layer caches :math:`c`, not
    the rounded output: :math:`1 - \sigma(x)` computed from a rounded
    :math:`\sigma(x)` is 0 once :math:`\sigma(x)` rounds to 1 (x > 36.7 in float64),
    while :math:`f'(x) = c\,(1 - c)` stays accurate to a few ulp in both tails.
    float32 is computed in float64 and rounded once.

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid = Sigmoid()
    >>> sigmoid(np.array([-40.0, 0.0, 40.0]))
    array([4.24835426e-18, 5.00000000e-01, 1.00000000e+00])
    >>> sigmoid.backward(np.ones(3))
    array([4.24835426e-18, 2.50000000e-01, 4.24835426e-18])
    """

    float32_in_float64 = True

    def function_and_saved(self, x: Array) -> tuple[Array, Saved]:
        e = np.exp(-np.abs(x))
        c = e / (1 + e)
        return np.where(x >= 0, 1 / (1 + e), c), (c,)

    def derivative_from_saved(self, *saved: Array) -> Array:
        (c,) = saved
        return c * (1 - c)


#: Built-in activations by lower-case name, for `get` and the command line.
ACTIVATIONS: dict[str, type[Activation]] = {"sigmoid": Sigmoid}


def get(name: str, **kwargs: object) -> Activation:
    """Return a new activation by name (case-insensitive), e.g. ``get("relu")``.

    Keyword arguments go to its constructor. Unknown names raise `KeyError`
    listing the valid ones.

    >>> get("Sigmoid")
    Sigmoid()
    """
    try:
        cls = ACTIVATIONS[name.lower()]
    except KeyError:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise KeyError(f"unknown activation {name!r}; valid names: {valid}") from None
    return cls(**kwargs)
