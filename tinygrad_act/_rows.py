"""Softmax and LogSoftmax compiled row by row, for the numba engine.

Each row is read three times in forward: its maximum (float64 Softmax's in the loop
over the row before), its exponentials, which are summed in blocks of 128 in SIMD lanes
(close to NumPy's pairwise sum) and the blocks with Neumaier's compensated sum, and
the outputs. The exponentials of a row with a finite maximum m are
`tinygrad_act._numba_math.exp_difference` (e**(x - m) with the rounding error of x - m
carried into its reduced argument). LogSoftmax also writes the softmax, which its
backward takes: dividing the exponentials by their sum costs less than an ``exp`` per
element in backward, and is as accurate. The formulas are those of `Softmax` and
`LogSoftmax` in `tinygrad_act.activations`, which documents them; here they are written
as loops over one row, which NumPy's whole-array form cannot express. Rows are
independent, so they run in chunks on the thread pool. Where the rows are the columns
of a C-ordered array (a softmax along axis 0), blocks of columns are copied into rows in
cache first, by tiles transposed in SIMD registers (`_gather`), and computed by the
same row kernels.

float32 rows have kernels of their own, which read and write float32: ``exp`` in
float32 on 16 lanes (`tinygrad_act._numba_math32.exp_difference`, which carries the
rounding error of x - max), sums in float64 (a float32 term, or the product of two,
is exact in float64, and n terms then err by n 2**-53 of their magnitude, far below
a float32 ulp), and each output formed in float64 and rounded to float32 once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import llvmlite.ir as ir
import numba
import numpy as np
from numba.extending import intrinsic, overload

from tinygrad_act import _engine, _memory
from tinygrad_act import _numba_math as xp
from tinygrad_act import _numba_math32 as xp32

Array = Any


#: Sums may be reassociated into lanes (so they vectorize); nothing else in them may.
_SUM_OPTIONS: dict[str, Any] = {**_engine.KERNEL_OPTIONS, "fastmath": {"contract", "reassoc"}}


@numba.njit(**_SUM_OPTIONS)  # type: ignore[untyped-decorator]
def _sum64(values: Array) -> float:
    """The sum of `values` in float64, in lanes (the order is the compiled loop's: the
    same for every row of one length on one machine, and it may differ between CPUs
    with different vector instructions, as AVX2 and AVX-512)."""
    xp.wide_vectors()
    total = 0.0
    for j in range(values.size):
        total += np.float64(values[j])
    return total


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _sum(values: Array) -> float:
    """The sum of the float64 `values`, close to NumPy's pairwise sum: blocks of 128
    summed in lanes (`_sum64`), and the blocks added by Neumaier's compensated sum.

    A compensation that is not finite (a term of inf) is dropped, so the sum is inf,
    never NaN, for such a row.
    """
    xp.wide_vectors()
    n = values.size
    total, compensation = 0.0, 0.0
    for start in range(0, n, 128):
        block = _sum64(values[start : min(start + 128, n)])
        t = total + block
        if xp.abs(total) >= xp.abs(block):
            compensation += (total - t) + block
        else:
            compensation += (block - t) + total
        total = t
    return total + (compensation if xp.isfinite(compensation) else 0.0)


#: Flips the magnitude bits of a negative float64's bit pattern (see `_order`).
_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _order(bits: np.int64) -> np.int64:
    """A float64's bit pattern as an int64 that sorts as the floats do (-0 below +0).

    Its own inverse. NOTE: for a positive float the pattern already sorts; a negative
    one is its sign bit and its magnitude, and flipping the magnitude bits reverses it.
    """
    return bits ^ ((bits >> 63) & _MAGNITUDE)  # type: ignore[no-any-return]


#: Below every float's key (see `_order`): where a maximum's search starts.
_LOWEST = np.int64(-(2**63))


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _max_found(best: np.int64, nans: int) -> float:
    """The maximum of a search that found `best`, the largest key (`_order`), and met
    `nans` NaN."""
    return np.nan if nans else xp._from_bits(_order(best))


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _max(values: Array) -> float:
    """The maximum of `values`, NaN if any is NaN.

    Compared as integers (`_order`): an integer maximum vectorizes, a float one with
    NaN kept does not.
    """
    xp.wide_vectors()
    best, nans = _LOWEST, 0
    for j in range(values.size):
        v = values[j]
        key = _order(xp._bits(v))
        best = key if key > best else best
        nans += v != v
    return _max_found(best, nans)  # type: ignore[no-any-return]


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _softmax_rows(x: Array, y: Array, p: Array, undone_rows: Array) -> int:
    """Softmax of each row into y and p where the row's maximum m is finite; returns how
    many rows have none, marked True in `undone_rows` (False elsewhere), whose y and p it
    leaves undefined (`_forward` redoes them).

    e**(v - m) (an exact 1 at a maximum) times 1 / their sum (the sum is at least 1):
    the rounded reciprocal adds at most 1 ulp to a division's error, at a fraction of
    its cost.

    NOTE: each row's maximum is found in the loop over the row before it (as in `_max`),
    so memory delivers that row while the exponentials are computed: Softmax's forward
    at (1000, 1000) took 1 to 12% less in 8 of 9 runs on Zen 5 (7% more in one). The loop runs
    whatever m is, and nothing else is in this function: with a branch or a select on
    m, or calls after the loop, the gain was gone. (The time of this loop also varies,
    by up to 15%, with where the machine code and the arrays lie in memory.)
    """
    xp.wide_vectors()
    rows, n = x.shape
    m_next = _max(x[0]) if rows else 0.0
    undone = 0
    for i in range(rows):
        row, kept, out = x[i], p[i], y[i]
        m = m_next
        flag = not xp.isfinite(m)
        undone_rows[i] = flag
        undone += flag
        following = x[i + 1] if i + 1 < rows else row
        best, nans = _LOWEST, 0
        for j in range(n):
            kept[j] = xp.exp_difference(row[j], m)
            v = following[j]
            key = _order(xp._bits(v))
            best = key if key > best else best
            nans += v != v
        m_next = _max_found(best, nans)
        scale = 1.0 / _sum(kept)
        for j in range(n):
            value = kept[j] * scale
            out[j] = value
            kept[j] = value
    return undone


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward(x: Array, y: Array, p: Array, log: bool) -> None:
    """Softmax of each row into y and p; or LogSoftmax into y and the softmax into p."""
    xp.wide_vectors()
    undone_rows = np.zeros(0 if log else x.shape[0], np.bool_)  # read only for Softmax
    if not log and _softmax_rows(x, y, p, undone_rows) == 0:
        return
    n = x.shape[1]
    exps = np.empty(n)
    for i in range(x.shape[0]):
        if not log and not undone_rows[i]:
            continue  # done by _softmax_rows
        m = _max(x[i])
        finite = xp.isfinite(m)
        shift = -m if finite else 0.0
        maxima = 0
        if finite:
            for j in range(n):
                v = x[i, j]
                # e^(v - m), with the rounding error of v - m carried into exp; v - m is 0
                # exactly at a maximum, whose e is an exact 1: counted, not summed
                top = v == m
                exps[j] = 0.0 if top else xp.exp_difference(v, m)
                maxima += top
        else:
            for j in range(n):
                exps[j] = xp.exp(x[i, j])
        # the sum is 1 + rest, rest the sum without one maximal entry's 1: log1p(rest) keeps
        # the tiny outputs of a dominant entry (without a finite maximum, rest is sum - 1)
        rest = _sum(exps) + (maxima - 1)
        total = 1.0 + rest
        if log:
            correction = xp.log1p(rest)
            for j in range(n):
                hi = x[i, j] + shift
                y[i, j] = hi - correction
                p[i, j] = (1.0 if (finite and hi == 0.0) else exps[j]) / total
        else:
            for j in range(n):
                hi = x[i, j] + shift
                value = (1.0 if (finite and hi == 0.0) else exps[j]) / total
                y[i, j] = value
                p[i, j] = value


@numba.njit(**_SUM_OPTIONS)  # type: ignore[untyped-decorator]
def _weighted_sums(g: Array, p: Array) -> tuple[float, float]:
    """<g, p> and sum(p), in float64.

    NOTE: each sum errs by at most about n 2**-53 of its terms' magnitudes, in any order
    (the compiled loop's); products of float32 entries are exact in float64, those of
    float64 entries add one rounding each.
    """
    xp.wide_vectors()
    total, weight = 0.0, 0.0
    for j in range(g.size):
        weight_j = np.float64(p[j])
        total += np.float64(g[j]) * weight_j
        weight += weight_j
    return total, weight


@numba.njit(**_SUM_OPTIONS)  # type: ignore[untyped-decorator]
def _mean_correction(g: Array, p: Array, mean: float, weight: float) -> float:
    """The weighted mean of the residuals g_j - `mean`, `weight` being sum(p): what
    corrects the first pass's mean, <g, p> / sum(p) (`_weighted_sums`).

    NOTE: sum(p) is 1 for the exact softmax; dividing by the sum of the rounded p makes
    g_i - <g, p> / sum(p) = sum_j p_j (g_i - g_j) / sum_j p_j, which only the relative
    errors of p reach (an entry near 1 rounds by as much as the small entries are).
    The first pass errs by n 2**-53 of sum |g p|, which is too much where one entry
    dominates and g_i - <g, p> cancels to the size of the small entries; the residuals
    are small there, and so is their sum's error.
    """
    xp.wide_vectors()
    residual = 0.0
    for j in range(g.size):
        residual += np.float64(p[j]) * (np.float64(g[j]) - mean)
    return residual / weight


@numba.njit(inline="always", **_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _scaled_differences(p: Array, g: Array, out: Array, mean: float, correction: float) -> None:
    """out = p ((g - mean) - correction) in float64, each output rounded once to out's
    dtype. An infinite `mean` (from an infinite g) makes each output -inf, inf or NaN,
    as the formula does."""
    for j in range(g.size):
        out[j] = np.float64(p[j]) * ((np.float64(g[j]) - mean) - correction)


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward(p: Array, g: Array, out: Array, log: bool) -> None:
    """The vector-Jacobian product of each row, from its softmax p."""
    xp.wide_vectors()
    n = p.shape[1]
    for i in range(p.shape[0]):
        if log:
            total = _sum(g[i])
            for j in range(n):
                out[i, j] = g[i, j] - p[i, j] * total
        else:
            total, weight = _weighted_sums(g[i], p[i])
            mean = total / weight
            # an infinite g makes the mean inf (or NaN), which no residual corrects
            correction = _mean_correction(g[i], p[i], mean, weight) if xp.isfinite(mean) else 0.0
            _scaled_differences(p[i], g[i], out[i], mean, correction)


#: Flips the magnitude bits of a negative float32's bit pattern (see `_order`).
_MAGNITUDE32 = np.int32(0x7FFFFFFF)
_INF32_BITS = np.int32(0x7F800000)
_NAN32 = np.float32(np.nan)
#: Half the largest float32: the difference of two float32s below it in size is finite.
_HALF_MAX32 = float(np.finfo(np.float32).max) / 2


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _max32(values: Array) -> np.float32:
    """The maximum of the float32 `values`, NaN if any is NaN.

    As `_max`, compared as int32 (16 lanes); a NaN is a magnitude above inf's.
    """
    xp.wide_vectors()
    best = np.int32(-(2**31))
    magnitude = np.int32(0)
    for j in range(values.size):
        bits = np.float32(values[j]).view(np.int32)
        key = np.int32(bits ^ ((bits >> 31) & _MAGNITUDE32))
        best = key if key > best else best
        size = np.int32(bits & _MAGNITUDE32)
        magnitude = size if size > magnitude else magnitude
    largest: np.float32 = np.int32(best ^ ((best >> 31) & _MAGNITUDE32)).view(np.float32)
    return _NAN32 if magnitude > _INF32_BITS else largest


@numba.njit(**_SUM_OPTIONS)  # type: ignore[untyped-decorator]
def _sum64_below(values: Array, x: Array, m: np.float32) -> tuple[float, int]:
    """The sum in float64 of `values` where x < m, and how many x equal m."""
    xp.wide_vectors()
    total = 0.0
    maxima = 0
    for j in range(values.size):
        top = x[j] == m
        total += 0.0 if top else np.float64(values[j])
        maxima += top
    return total, maxima


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward32(x: Array, y: Array, p: Array, log: bool) -> None:
    """Softmax of each float32 row into y and p; or LogSoftmax into y and the softmax
    into p. A row without a finite maximum takes `_forward`'s float64 path."""
    xp.wide_vectors()
    n = x.shape[1]
    for i in range(x.shape[0]):
        row, out, kept = x[i], y[i], p[i]
        m = _max32(row)
        if not np.isfinite(m):
            _forward(row.astype(np.float64).reshape(1, n), y[i : i + 1], p[i : i + 1], log)
            continue
        for j in range(n):
            kept[j] = xp32.exp_difference(row[j], m)
        if log:
            # as in `_forward`: the sum is 1 + rest, rest without one maximal entry's 1
            # (e**0 is an exact 1)
            others, maxima = _sum64_below(kept, row, m)
            rest = others + (maxima - 1)
            scale = 1.0 / (1.0 + rest)
        else:
            scale = 1.0 / _sum64(kept)
        # e / sum as e hi + e lo, hi + lo the float64 1 / sum split in two float32s: one
        # rounding, as in float64, in float32 arithmetic
        hi = np.float32(scale)
        lo = np.float32(scale - hi)
        if log:
            shift = np.float64(m)
            correction = xp.log1p(rest)
            for j in range(n):
                out[j] = (np.float64(row[j]) - shift) - correction
                kept[j] = kept[j] * hi + kept[j] * lo
        else:
            for j in range(n):
                value = kept[j] * hi + kept[j] * lo
                out[j] = value
                kept[j] = value


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _spread(g: Array, hi: np.float32, lo: np.float32) -> tuple[float, float]:
    """The smallest |(g_j - hi) - lo| and the largest |g_j| of a float32 row (compared as
    integers, which vectorizes; NaN counts as above inf)."""
    xp.wide_vectors()
    smallest, largest = _INF32_BITS, np.int32(0)
    for j in range(g.size):
        size = np.int32(np.float32((g[j] - hi) - lo).view(np.int32) & _MAGNITUDE32)
        smallest = size if size < smallest else smallest
        size = np.int32(np.float32(g[j]).view(np.int32) & _MAGNITUDE32)
        largest = size if size > largest else largest
    return float(np.int32(smallest).view(np.float32)), float(np.int32(largest).view(np.float32))


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward32(p: Array, g: Array, out: Array, log: bool) -> None:
    """The vector-Jacobian product of each float32 row, from its softmax p."""
    xp.wide_vectors()
    n = p.shape[1]
    for i in range(p.shape[0]):
        pi, gi, oi = p[i], g[i], out[i]
        # NOTE: float32 arithmetic here: the sum (or mean) is split into float32 hi + lo, and
        # g_i - hi is exact where it cancels, so each output errs by a few roundings of its
        # own size
        if log:
            total = np.float32(_sum64(gi))
            for j in range(n):
                oi[j] = gi[j] - pi[j] * total
        else:
            # the mean as in `_backward`, whose second pass (`_mean_correction`) is needed
            # only where the first pass's error bound, (2n + 2) 2**-53 max |g|, could reach
            # 1/16 ulp of the smallest |g_j - mean| (2**-28 of it: 1/32 to 1/16 ulp); that
            # is about 1 row in 7 for 1000 random g, and every row where one entry
            # dominates or g is constant
            total, weight = _weighted_sums(gi, pi)
            mean = total / weight
            if not np.isfinite(mean):  # an infinite g (or NaN): as in `_backward`
                _scaled_differences(pi, gi, oi, mean, 0.0)
                continue
            hi = np.float32(mean)
            lo = np.float32(mean - hi)
            smallest, largest = _spread(gi, hi, lo)
            if largest > _HALF_MAX32:
                # g - mean may overflow float32 where p (g - mean) does not: float64 here
                correction = _mean_correction(gi, pi, mean, weight)
                _scaled_differences(pi, gi, oi, mean, correction)
                continue
            if (2 * n + 2) * 2.0**-53 * largest > 2.0**-28 * smallest:
                lo = np.float32((mean - hi) + _mean_correction(gi, pi, mean, weight))
            for j in range(n):
                oi[j] = pi[j] * ((gi[j] - hi) - lo)


#: Columns gathered per block by the column kernels: each row of the array is read 64
#: entries (4 or 8 cache lines) at a time, which memory serves faster than single lines,
#: and the block of rows stays in L2. (Measured on Zen 5 at (1000, 1000), forward: with
#: the tiles transposed in registers, float32 took 8% longer with 16 and 5% with 32,
#: the same with 128 and 256; float64 was within 4% from 32 to 256, 11% longer with 16.)
_BLOCK = 64


def _interleaved(lanes: int) -> list[list[int]]:
    """The perfect shuffle of two vectors of `lanes`: their first halves interleaved,
    then their second halves. Applied to rows t and t + lanes/2 of a square tile of
    `lanes` rows for every t < lanes/2, log2(lanes) times, it transposes the tile."""
    half = lanes // 2
    return [[c for t in range(h, h + half) for c in (t, t + lanes)] for h in (0, half)]


@intrinsic
def _transpose_tile(
    typingctx: Any, source: Any, row: Any, column: Any, target: Any, row_to: Any, column_to: Any
) -> Any:
    """target[row_to + a, column_to + b] = source[row + b, column + a] for a, b < w: a
    w x w tile of one C-ordered 2-d array written transposed into another of the same
    dtype, w = 16 for float32 and 8 for float64 (a 512-bit vector), in SIMD registers:
    w vector loads, w log2(w) shuffles, w vector stores. The tile must lie inside both
    arrays.

    NOTE: numba cannot write a shuffle, and its loop over the tile reads one entry at
    a time; this writes the LLVM IR itself, which LLVM lowers for the CPU at hand (in
    256-bit halves without AVX-512). For float32 it halved the time of copying columns
    into rows (`_gather`): 0.35 against 0.72 ms for 960 columns of (1000, 1000) on Zen 5.
    """
    floats = (numba.types.float32, numba.types.float64)
    for array in (source, target):
        if not (
            isinstance(array, numba.types.Array)
            and array.dtype in floats
            and array.dtype == source.dtype
            and array.ndim == 2
            and array.layout == "C"
        ):
            return None
    indices = (row, column, row_to, column_to)
    if not target.mutable or not all(isinstance(i, numba.types.Integer) for i in indices):
        return None
    signature = numba.types.none(source, row, column, target, row_to, column_to)
    single = source.dtype == numba.types.float32
    lanes, size = (16, 4) if single else (8, 8)
    element = ir.FloatType() if single else ir.DoubleType()

    def codegen(context: Any, builder: Any, signature: Any, arguments: Any) -> Any:
        vector = ir.VectorType(element, lanes)
        index = ir.IntType(64)

        def rows(array: Any, array_type: Any, first: Any, offset: Any) -> list[Any]:
            """Pointers to the vectors array[first + a, offset : offset + lanes]."""
            view = context.make_array(array_type)(context, builder, array)
            stride = builder.extract_value(view.strides, 0)
            start = builder.add(
                builder.ptrtoint(view.data, index),
                builder.mul(offset, ir.Constant(index, size)),
            )
            return [
                builder.inttoptr(
                    builder.add(
                        start, builder.mul(builder.add(first, ir.Constant(index, a)), stride)
                    ),
                    vector.as_pointer(),
                )
                for a in range(lanes)
            ]

        types = signature.args
        # the indices as intp (int64 here), whatever integer type they came as
        intp = numba.types.intp
        at = {k: context.cast(builder, arguments[k], types[k], intp) for k in (1, 2, 4, 5)}
        tile = [builder.load(p, align=size) for p in rows(arguments[0], types[0], at[1], at[2])]
        masks = [ir.Constant(ir.VectorType(ir.IntType(32), lanes), m) for m in _interleaved(lanes)]
        for _ in range(lanes.bit_length() - 1):
            tile = [
                builder.shuffle_vector(tile[t], tile[t + lanes // 2], mask)
                for t in range(lanes // 2)
                for mask in masks
            ]
        for value, p in zip(tile, rows(arguments[3], types[3], at[4], at[5]), strict=True):
            builder.store(value, p, align=size)
        return context.get_dummy_value()

    return signature, codegen


_transpose = cast(Callable[[Array, int, int, Array, int, int], None], _transpose_tile)


@numba.njit(**_engine.KERNEL_OPTIONS)  # type: ignore[untyped-decorator]
def _gather(columns: Array, start: int, block: Array) -> None:
    """Row k of `block` is column start + k of `columns` (both float32, or both float64):
    square tiles of a 512-bit vector's width transposed in registers (`_transpose_tile`),
    the edges an entry at a time."""
    w = 64 // columns.itemsize
    n = columns.shape[0]
    count = block.shape[0]
    whole, wide = n - n % w, count - count % w
    for top in range(0, whole, w):
        for k in range(0, wide, w):
            _transpose(columns, top, start + k, block, k, top)
    for k in range(wide, count):
        for i in range(whole):
            block[k, i] = columns[i, start + k]
    for i in range(whole, n):
        for k in range(count):
            block[k, i] = columns[i, start + k]


def _by_dtype(single: Any, double: Any) -> Callable[[Array, Array, Array, bool], None]:
    """A function that calls the row kernel `single` on float32 rows and `double` on
    float64 ones: from Python, and in compiled code, where numba picks the kernel as it
    compiles the caller (an overload)."""

    def kernel(a: Array, b: Array, c: Array, log: bool) -> None:
        (single if a.dtype == np.float32 else double)(a, b, c, log)

    @overload(kernel)
    def typed(a: Any, b: Any, c: Any, log: Any) -> Any:
        chosen = single if a.dtype == numba.types.float32 else double

        def call(a: Any, b: Any, c: Any, log: Any) -> Any:
            chosen(a, b, c, log)

        return call

    return kernel


#: forward(x, y, p, log) and backward(p, g, out, log) of float32 or float64 rows.
_forward_rows = _by_dtype(_forward32, _forward)
_backward_rows = _by_dtype(_backward32, _backward)


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _forward_columns(columns: Array, first: int, y: Array, p: Array, log: bool) -> None:
    """The row kernel's forward of the columns of `columns` from `first` on (rows of y
    and p), a block at a time."""
    xp.wide_vectors()
    count, n = y.shape
    scratch = np.empty((_BLOCK, n), columns.dtype)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        block = scratch[: stop - start]
        _gather(columns, first + start, block)
        _forward_rows(block, y[start:stop], p[start:stop], log)


@numba.njit(**_engine.LOOP_OPTIONS)  # type: ignore[untyped-decorator]
def _backward_columns(p: Array, columns: Array, first: int, out: Array, log: bool) -> None:
    """The row kernel's backward with g the columns of `columns` from `first` on, a block
    at a time."""
    xp.wide_vectors()
    count, n = p.shape
    scratch = np.empty((_BLOCK, n), columns.dtype)
    for start in range(0, count, _BLOCK):
        stop = min(start + _BLOCK, count)
        block = scratch[: stop - start]
        _gather(columns, first + start, block)
        _backward_rows(p[start:stop], block, out[start:stop], log)


def forward(
    rows: Array, *, log: bool, dtype: Any, reuse: Array | None, columns: bool = False
) -> tuple[Array, Array]:
    """Softmax (or LogSoftmax) of each row of a C-ordered float32 or float64 2-d array,
    and the rows' softmax, which backward takes.

    The softmax has the rows' dtype, written into `reuse` where given (an array of
    the rows' shape and dtype that nothing else reads) rather than into a new array.
    float64 LogSoftmax's output is rounded once to `dtype` (float32 or float64).
    With `columns`, the rows are the columns of `rows` (the results have the shape of
    its transpose): each block of columns is copied into contiguous rows in cache and
    computed by the row kernel, so the bits are those of the transposed copy's rows,
    without that copy.
    """
    shape = rows.shape[::-1] if columns else rows.shape
    p = _memory.empty(shape, rows.dtype) if reuse is None else reuse
    # NOTE: Softmax writes its output and the softmax kept in one pass: cheaper than
    # copying the kept array for the caller afterwards
    single = rows.dtype == np.float32
    y = _memory.empty(shape, rows.dtype if single else np.dtype(dtype))
    if columns:
        _in_chunks(shape, lambda a, b: _forward_columns(rows, a, y[a:b], p[a:b], log))
    else:
        _in_chunks(shape, lambda a, b: _forward_rows(rows[a:b], y[a:b], p[a:b], log))
    return y, p


def backward(p: Array, g: Array, *, log: bool, columns: bool = False) -> Array:
    """The vector-Jacobian product of each row, from the rows' softmax `p`; `g` and
    the result have p's dtype. With `columns`, g's columns are the rows (as in
    `forward`)."""
    out = _memory.empty(p.shape, p.dtype)
    if columns:
        _in_chunks(p.shape, lambda a, b: _backward_columns(p[a:b], g, a, out[a:b], log))
    else:
        _in_chunks(p.shape, lambda a, b: _backward_rows(p[a:b], g[a:b], out[a:b], log))
    return out


#: Whether a row kernel has run in this process (see `_in_chunks`).
_started = False


def _in_chunks(shape: tuple[int, ...], task: Any) -> None:
    global _started
    if not _started:
        # NOTE: numba's first compilation in a process is not safe on several threads at
        # once (seen once under Dask: a KeyError from its lazy imports): the first call
        # compiles on this thread, empty, holding the engine's compile lock
        with _engine.compile_lock:
            task(0, 0)
        _started = True
    rows, n = shape
    if rows * n < _engine.PARALLEL_MIN or rows < 2:
        task(0, rows)
        return
    # run_chunks splits elements; convert its element bounds to whole rows
    per_row = max(n, 1)
    _engine.run_chunks(rows * per_row, lambda a, b: task(-(-a // per_row), -(-b // per_row)))
