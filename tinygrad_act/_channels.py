"""PReLU compiled, for the numba engine: one pass over the input in forward, one in
backward for the input's gradient and the slopes' together; and RReLU's forward while
training, whose slopes NumPy draws, one for each element.

The arrays are C-ordered and seen as (outer, channels, inner): a slope per channel,
or one for the whole array (1 channel), which `PReLU` cuts into segments of a fixed
size, as channels of one slope each. Threads take whole channels, so that each
channel's sum is the same whatever their number. Each element is computed in float64 and
rounded once to the input's dtype, as `PReLU` does with NumPy; the slopes' gradient
sums in float64, in lanes, each channel's terms of one ``outer`` row at a time.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from tinygrad_act import _engine
from tinygrad_act._numba_math import wide_vectors

Array = Any

#: The slopes' sums may be reassociated into lanes (so they vectorize).
_SUM_OPTIONS: dict[str, Any] = {**_engine.LOOP_OPTIONS, "fastmath": {"contract", "reassoc"}}


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def forward(x: Array, slope: Array, y: Array, first: int, last: int) -> None:
    """y = x where x > 0, else slope * x (NaN stays NaN, -0.0 stays -0.0), for the
    channels from `first` to `last` (exclusive)."""
    wide_vectors()
    for outer in range(x.shape[0]):
        for channel in range(first, last):
            a = slope[channel]
            row, out = x[outer, channel], y[outer, channel]
            for k in range(row.size):
                v = np.float64(row[k])
                out[k] = v if v > 0 else a * v


@numba.njit(**_SUM_OPTIONS)  # type: ignore[untyped-decorator]
def _row(row: Array, g: Array, a: float, out: Array) -> float:
    """One row of `backward`: its gradients into `out`, and its sum of g x where x <= 0."""
    wide_vectors()
    total = 0.0
    for k in range(row.size):
        v, h = np.float64(row[k]), np.float64(g[k])
        out[k] = h * (1.0 if v > 0 else (a if v <= 0 else np.nan))
        total += 0.0 if v > 0 else h * v
    return total


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def backward(
    x: Array, g: Array, slope: Array, out: Array, sums: Array, first: int, last: int
) -> None:
    """out = g f'(x); sums[channel] += the sum of g x over the channel's x <= 0 (NaN
    where x is NaN, as g x is), for the channels from `first` to `last` (exclusive):
    each channel's sum is taken in the same order whatever the range."""
    wide_vectors()
    for outer in range(x.shape[0]):
        for channel in range(first, last):
            rows = x[outer, channel], g[outer, channel], out[outer, channel]
            sums[channel] += _row(rows[0], rows[1], slope[channel], rows[2])


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def random_slopes(x: Array, slopes: Array, y: Array) -> None:
    """RReLU while training, a slope for each element (flat arrays, the slopes float64):
    y = x where x > 0, else slope * x; each slope then replaced by f' there, 1 where
    x > 0, the slope where x <= 0, NaN where x is NaN."""
    wide_vectors()
    for k in range(x.size):
        v, a = np.float64(x[k]), slopes[k]
        y[k] = v if v > 0 else a * v
        slopes[k] = 1.0 if v > 0 else (a if v <= 0 else np.nan)
