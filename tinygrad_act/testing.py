"""Tools to test layers the way the built-ins are tested (needs the ``test`` extra).

Hypothesis strategies for float arrays and shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_act.base import Array


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
