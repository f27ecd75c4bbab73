"""The compiled scalar namespace `_numba_math`: accuracy against mpmath, semantics against NumPy.

Every function is called the way the engine calls it, from a compiled loop over an array.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import platform
import re
from collections.abc import Callable
from typing import Any, cast

import mpmath
import numpy as np
import numpy.typing as npt
import pytest

from tests.reference import exact_product_errors, product_pairs, sweep, ulp_error

numba = pytest.importorskip("numba")

from tinygrad_act import _engine, _numba_math, _numba_math32  # noqa: E402 (needs numba)

Array = npt.NDArray[Any]
Loop = Callable[..., Array]

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 5e-324, -5e-324])
#: The largest float64 plus half an ulp: an exact value at or above it rounds to inf.
OVERFLOW = mpmath.mpf(2) ** 1024 - mpmath.mpf(2) ** 970


@functools.cache
def compiled_loop(name: str, arity: int) -> Loop:
    """A compiled loop ``y[i] = f(a[i], ...)`` over `arity` arrays, f = _numba_math.<name>."""
    function = getattr(_numba_math, name)

    def loop1(a: Array) -> Array:
        y = np.empty(a.size, np.float64)
        for i in range(a.size):
            y[i] = function(np.float64(a[i]))
        return y

    def loop2(a: Array, b: Array) -> Array:
        y = np.empty(a.size, np.float64)
        for i in range(a.size):
            y[i] = function(a[i], b[i])
        return y

    def loop3(a: Array, b: Array, c: Array) -> Array:
        y = np.empty(a.size, np.float64)
        for i in range(a.size):
            y[i] = function(a[i], b[i], c[i])
        return y

    # compiled with the engine's flags (FMA contraction allowed), as kernels are
    options = _engine.KERNEL_OPTIONS
    return cast(Loop, numba.njit(**options)({1: loop1, 2: loop2, 3: loop3}[arity]))


def in_float64_range(exact: Any) -> Any:
    """`exact` with values that round to +-inf in float64 replaced by +-inf."""
    return mpmath.inf * mpmath.sign(exact) if abs(exact) >= OVERFLOW else exact


def erfc_exact(x: Any) -> Any:
    # mpmath's erfc fails on huge arguments; there the value is 0 or 2 in float64
    return mpmath.mpf(0 if x > 0 else 2) if abs(x) > 1e4 else mpmath.erfc(x)


# name -> (mpmath reference, dense range of the sweep, extra points, max ulp)
ACCURACY: dict[str, tuple[Callable[[Any], Any], float, Array, float]] = {
    "exp": (mpmath.exp, 745.2, np.linspace(-745.2, -700, 300), 0.8),
    "expm1": (mpmath.expm1, 40.0, np.linspace(-1, 1, 300), 0.7),
    "log": (
        lambda x: mpmath.log(x) if x >= 0 else mpmath.nan,
        2.0,
        np.linspace(0.5, 2, 300),
        0.7,
    ),
    "log1p": (
        lambda x: mpmath.log1p(x) if x >= -1 else mpmath.nan,
        2.0,
        np.linspace(-1, 1, 300),
        0.7,
    ),
    "tanh": (mpmath.tanh, 20.0, np.r_[np.linspace(-1, 1, 300), np.linspace(0.54, 0.7, 300)], 0.82),
    "erfc": (erfc_exact, 27.3, np.r_[np.linspace(-1, 1, 300), np.linspace(20, 27.3, 300)], 1.3),
}


@pytest.mark.parametrize("name", ACCURACY)
def test_accuracy_against_mpmath(name: str) -> None:
    exact_function, limit, extra, bound = ACCURACY[name]
    x = np.concatenate([sweep(np.float64, limit, seed=1), extra, SPECIALS])
    with np.errstate(all="ignore"):  # the loop runs no NumPy arithmetic, but be explicit
        got = compiled_loop(name, 1)(x)
    errors = [
        ulp_error(g, in_float64_range(exact_function(mpmath.mpf(v))), np.float64)
        for g, v in zip(got.tolist(), x.tolist(), strict=True)
    ]
    worst = int(np.argmax(errors))
    assert errors[worst] <= bound, (
        f"_numba_math.{name}({x[worst]!r}) = {got[worst]!r} is {errors[worst]:.3g} ulp from "
        f"mpmath's {mpmath.nstr(exact_function(mpmath.mpf(x[worst])), 20)}, above {bound}"
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exp_nonpositive_is_exp_where_x_is_not_positive(dtype: str) -> None:
    """`exp_nonpositive` gives `exp`'s bits for every x <= 0 tried (NaN for NaN), and is
    within `exp`'s bound of mpmath's e**x: its range reaches the subnormal results."""
    if dtype == "float64":
        loop, exp_loop, lowest = compiled_loop("exp_nonpositive", 1), compiled_loop("exp", 1), 750
    else:
        loop, exp_loop, lowest = float32_loop("exp_nonpositive"), float32_loop("exp"), 110
    x = -np.abs(sweep(np.dtype(dtype).type, lowest, seed=3))
    tail = np.linspace(-lowest, -0.9 * lowest, 2001)
    info = np.finfo(dtype)
    specials = [0.0, -0.0, np.nan, -np.inf, -info.smallest_subnormal, -info.tiny, -info.max]
    x = np.concatenate([x, tail, np.array(specials, dtype)]).astype(dtype)
    got = loop(x)
    assert got.dtype == x.dtype
    assert same_floats(got, exp_loop(x)), "exp_nonpositive differs from exp"
    pick = np.r_[0 : x.size : 97, x.size - 2100 : x.size]  # every 97th, and the tails
    bound = 0.8 if dtype == "float64" else 1.02
    errors = [
        ulp_error(g, mpmath.exp(mpmath.mpf(v)), np.dtype(dtype).type)
        for g, v in zip(got[pick].tolist(), x[pick].tolist(), strict=True)
    ]
    worst = int(np.argmax(errors))
    assert errors[worst] <= bound, f"exp_nonpositive({x[pick][worst]!r}): {errors[worst]:.3g} ulp"


@functools.cache
def exp_difference_loop(dtype: str) -> Loop:
    """A compiled loop ``y[i] = exp_difference(x[i], m[i])`` in `dtype`'s namespace."""
    function = (_numba_math32 if dtype == "float32" else _numba_math).exp_difference

    def loop(x: Array, m: Array) -> Array:
        y = np.empty_like(x)
        for i in range(x.size):
            y[i] = function(x[i], m[i])
        return y

    return cast(Loop, numba.njit(**_engine.KERNEL_OPTIONS)(loop))


#: (largest argument magnitude, max ulp where the result is normal, max subnormal ulps
#: below, where it rounds twice) of `exp_difference` in each dtype.
EXP_DIFFERENCE = {"float64": (746.0, 0.65, 0.77), "float32": (104.0, 0.81, 0.77)}


@pytest.mark.parametrize("dtype", EXP_DIFFERENCE)
def test_exp_difference_against_mpmath(dtype: str) -> None:
    """e**(x - m) for x <= m, as softmax calls it, x - m often not exact in `dtype`:
    within its bounds of the exact value, normal and subnormal results, and 0."""
    limit, normal_bound, subnormal_bound = EXP_DIFFERENCE[dtype]
    rng = np.random.default_rng(7)
    differences = np.concatenate(
        [
            -rng.uniform(0, limit, 1500),  # the whole range, subnormal results included
            -rng.uniform(limit - 40, limit + 2, 500),  # the subnormal range and below
            -np.exp(rng.uniform(-30, np.log(limit), 500)),  # small and mid differences
            [0.0, -np.inf],
        ]
    )
    maxima = rng.choice([0.0, 0.3, -3.1, 12.7, 100.5, 3e4, -1e-20, 1e6], differences.size)
    m = maxima.astype(dtype)
    x = np.minimum((m + differences).astype(dtype), m)
    got = exp_difference_loop(dtype)(x, m)
    tiny = np.finfo(dtype).tiny
    for g, a, b in zip(got.tolist(), x.tolist(), m.tolist(), strict=True):
        exact = mpmath.exp(mpmath.mpf(a) - mpmath.mpf(b))
        bound = normal_bound if exact >= tiny else subnormal_bound
        error = ulp_error(g, exact, dtype)
        assert error <= bound, (
            f"exp_difference({a!r}, {b!r}) in {dtype} = {g!r} is {error:.3g} ulp from "
            f"{mpmath.nstr(exact, 20)}, above {bound}"
        )


@functools.cache
def normal_tail_loop() -> Loop:
    """A compiled loop over `normal_tail`: its tail, density and k for each element."""
    function = _numba_math.normal_tail

    def loop(x: Array) -> tuple[Array, Array, Array]:
        tail, density, k = np.empty_like(x), np.empty_like(x), np.empty(x.size, np.int64)
        for i in range(x.size):
            tail[i], density[i], k[i] = function(x[i])
        return tail, density, k

    return cast(Loop, numba.njit(**_engine.KERNEL_OPTIONS)(loop))


def test_normal_tail_against_mpmath() -> None:
    """Phi(-|x|) = tail 2**k and phi(x) = density 2**k: tail within 1.2 ulp, density
    within 0.65, where Phi(-|x|) is normal and where it is subnormal or 0 (|x| > 37.5);
    among the points, those where a missing term (e**-x**2/2's remainder times erfcx's
    second part) cost the tail up to 1.37 ulp."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [
            sweep(np.float64, 40.0, seed=3),
            rng.uniform(-40, 40, 2000),
            rng.uniform(-1, 1, 500),
            rng.uniform(36, 41, 500),
            [0.0, -0.0, 5e-324, 40.0, -40.0, 19.576443654677433, 6.810312673510779],
            [-37.148934799800934, 38.43269275510437, 36.58481831058582, 38.98648539382648],
        ]
    )
    tail, density, k = normal_tail_loop()(x)
    for t, d, power, v in zip(tail.tolist(), density.tolist(), k.tolist(), x.tolist(), strict=True):
        b = min(abs(mpmath.mpf(v)), 40)
        scale = mpmath.ldexp(1, -power)
        errors = (
            ulp_error(t, mpmath.ncdf(-b) * scale, np.float64),
            ulp_error(d, mpmath.npdf(b) * scale, np.float64),
        )
        assert errors[0] <= 1.2, (v, t, power, errors)
        assert errors[1] <= 0.65, (v, d, power, errors)


def test_normal_tail_special_values() -> None:
    """NaN gives NaN; +-inf and |x| > 40 count as 40, whose tail and density 2**k are 0."""
    x = np.array([np.nan, np.inf, -np.inf, 1e308, -41.0])
    tail, density, k = normal_tail_loop()(x)
    assert np.isnan(tail[0])
    assert np.isnan(density[0])
    assert (k[1:] == k[1]).all()
    assert k[1] < -1100
    assert (tail[1:] == tail[1]).all()
    assert (density[1:] == density[1]).all()
    assert (compiled_loop("ldexp", 2)(tail[1:], k[1:]) == 0.0).all()


def test_ldexp_matches_numpy() -> None:
    """x 2**k, normal and subnormal results (rounded once), 0, +-inf and NaN."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-2, 2, 300), SPECIALS, [1.5, -1.5, 0.75, 3.0 * 2.0**-1074]])
    k = rng.integers(-2044, 2047, x.size)
    k[-4:] = [-1074, -1075, -1075, 1]  # halfway cases round to even
    got = compiled_loop("ldexp", 2)(x, k)
    with np.errstate(all="ignore"):
        expected = np.ldexp(x, k)
    assert same_floats(got, expected), (x[got != expected], k[got != expected])


def same_floats(got: Array, expected: Array) -> bool:
    """Equal elementwise, NaN matching NaN (of either sign) and -0.0 told apart from 0.0."""
    numbers = ~np.isnan(expected)
    return bool(
        np.array_equal(got, expected, equal_nan=True)
        and np.array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))
    )


def expected_special(name: str, x: Array) -> Array:
    if name == "erfc":  # NumPy has no erfc: the C library's (exact at these arguments)
        return np.array([math.erfc(v) for v in x.tolist()])
    with np.errstate(all="ignore"):
        return cast(Array, getattr(np, name)(x))


#: Arguments where each function's value is exactly determined (a limit, 0, +-1, NaN, or x).
DETERMINED = {
    "exp": [1e308, -1e308, 710.0, -746.0],
    "expm1": [1e308, -1e308, -50.0, 1e-300, -1e-300, 5e-324],
    "log": [-1.0, -2.0, 1.0, -5e-324],
    "log1p": [-1.0, -2.0, 1e-300, -1e-300, 5e-324, -1.5],
    "tanh": [1e308, -1e308, 30.0, -30.0, 1e-300, -1e-300, 5e-324],
    "erfc": [1e308, -1e308, 30.0, -30.0, 1e-300],
}


@pytest.mark.parametrize("name", DETERMINED)
def test_special_values_match_numpy(name: str) -> None:
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, *DETERMINED[name]])
    got = compiled_loop(name, 1)(x)
    expected = expected_special(name, x)
    assert same_floats(got, expected), f"_numba_math.{name}{x.tolist()} = {got}, NumPy: {expected}"


@pytest.mark.parametrize(
    "name", ["abs", "sqrt", "square", "sign", "isnan", "isfinite", "exp", "log", "tanh"]
)
def test_unary_exact_functions_match_numpy_ufuncs(name: str) -> None:
    x = np.concatenate([SPECIALS, np.linspace(-3, 3, 13)])
    got = compiled_loop(name, 1)(x)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(x).astype(np.float64)
    if name in ("exp", "log", "tanh"):  # not exact: compare only where the value is determined
        keep = ~np.isfinite(expected) | (expected == 0) | (np.abs(x) < 1e-300)
        got, expected = got[keep], expected[keep]
    assert same_floats(got, expected), f"_numba_math.{name}: got {got}, NumPy {expected}"


@functools.cache
def float32_loop(name: str) -> Loop:
    """A compiled loop ``y[i] = f(x[i])`` over float32, f = _numba_math32.<name>."""
    function = getattr(_numba_math32, name)

    def loop(x: Array) -> Array:
        y = np.empty_like(x)
        for i in range(x.size):
            y[i] = function(x[i])
        return y

    return cast(Loop, numba.njit(**_engine.KERNEL_OPTIONS)(loop))


@pytest.mark.parametrize(
    ("name", "exact", "top", "bound"),
    [
        ("exp", np.exp, 89, 1.02),
        ("expm1", np.expm1, 89, 0.95),
        ("tanh", np.tanh, 12, 0.88),
        ("log1p", np.log1p, 3e38, 0.86),
    ],
)
def test_float32_functions_on_a_dense_sweep(
    name: str, exact: Callable[[Array], Array], top: float, bound: float
) -> None:
    """Every 61st float32 from 2**-30 to `top`, both signs, against NumPy's float64
    function (a float64 rounding is 2**-29 float32 ulp), where the result is a finite
    normal float32; and special values, which must give what float64 rounds to."""
    bits = np.arange(np.float32(2**-30).view(np.int32), np.float32(top).view(np.int32), 61)
    x = np.concatenate(
        [bits.astype(np.int32).view(np.float32), -bits.astype(np.int32).view(np.float32)]
    )
    got = float32_loop(name)(x)
    assert got.dtype == np.float32
    with np.errstate(invalid="ignore", divide="ignore"):  # log1p below -1
        wide = exact(x.astype(np.float64))
    normal = (np.abs(wide) >= 2.0**-126) & (np.abs(wide) <= np.finfo(np.float32).max)
    _, exponent = np.frexp(wide[normal])
    errors = np.abs(got[normal] - wide[normal]) / np.ldexp(1.0, exponent - 24)
    worst = int(np.argmax(errors))
    assert errors[worst] <= bound, f"{name}({x[normal][worst]!r}): {errors[worst]:.3g} ulp"
    tiny = np.float32(2**-149)
    values = [0.0, -0.0, np.nan, np.inf, -np.inf, tiny, -tiny, 89.0, -200.0]
    special = np.array(values + ([-1.0, -1.5] if name == "log1p" else []), np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        expected = exact(special.astype(np.float64)).astype(np.float32)
    assert same_floats(float32_loop(name)(special), expected), float32_loop(name)(special)


def grid(arity: int) -> list[Array]:
    """Every combination of `arity` special values, as one array per argument."""
    combinations = itertools.product(SPECIALS, repeat=arity)
    return [np.array(column) for column in zip(*combinations, strict=True)]


@pytest.mark.parametrize("name", ["maximum", "minimum", "copysign"])
def test_binary_functions_match_numpy_ufuncs(name: str) -> None:
    a, b = grid(2)
    got = compiled_loop(name, 2)(a, b)
    expected = getattr(np, name)(a, b)
    assert same_floats(got, expected), f"_numba_math.{name}: got {got}, NumPy {expected}"


def test_clip_matches_numpy() -> None:
    x, lo, hi = grid(3)
    got = compiled_loop("clip", 3)(x, lo, hi)
    expected = np.clip(x, lo, hi)
    assert same_floats(got, expected), f"_numba_math.clip: got {got}, NumPy {expected}"


def test_where_matches_numpy() -> None:
    a, b = grid(2)
    condition = np.arange(a.size) % 3 == 0
    got = compiled_loop("where", 3)(condition, a, b)
    assert same_floats(got, np.where(condition, a, b))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="reads x86 assembly")
@pytest.mark.parametrize(
    "name",
    ["exp", "exp_nonpositive", "expm1", "log", "log1p", "tanh", "erfc", "maximum", "clip"],
)
def test_loops_calling_it_vectorize(name: str) -> None:
    arity = {"maximum": 2, "clip": 3}.get(name, 1)
    loop = compiled_loop(name, arity)
    loop(*[np.linspace(0.1, 2, 20)] * arity)
    assembly = loop.inspect_asm(loop.signatures[0])  # type: ignore[attr-defined]
    packed = re.findall(r"\bv(?:mul|add|sub|max|min|blendm|cmp\w*)pd\s+%[yz]mm", assembly)
    assert packed, f"no packed double instructions on ymm/zmm in the loop over _numba_math.{name}"
    # a call into the C library (math.erfc is `movabsq $erfc, %reg; callq *%reg`) stays scalar
    assert not re.search(rf"\${name}\b", assembly), f"the loop calls the C library's {name}"


def compiles_for_fma() -> bool:
    """Whether numba compiles for this CPU, and it has fused multiply-adds (without, the
    functions that use `_numba_math._fma` call the C library's fma and do not vectorize)."""
    import llvmlite.binding

    features = llvmlite.binding.get_host_cpu_features().flatten().split(",")
    return os.environ.get("NUMBA_CPU_NAME", "host") == "host" and "+fma" in features


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="reads x86 assembly")
@pytest.mark.skipif(not compiles_for_fma(), reason="the loops vectorize only with FMA")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tanh_shares_its_exp_and_division_with_tanhs_kernel(dtype: str) -> None:
    """`Tanh`'s kernel computes e**-2|x| and 2e/(1 + e) for f', and `tanh` computes them
    too, written the same way: LLVM computes each once. The loop over the kernel then has
    no more packed divisions than a loop of `tanh` alone, and at most a few more fused
    multiply-adds (not the 10 or more of a second exp)."""
    from tinygrad_act import Tanh

    xp = _numba_math32 if dtype == "float32" else _numba_math
    source = Tanh.function_and_derivative
    if dtype == "float32":
        source = _engine._with_float32_literals(source)
    kernel = numba.njit(source, inline="always", **_engine.KERNEL_OPTIONS)
    function, wide_vectors = xp.tanh, _numba_math.wide_vectors

    def kernel_loop(x: Array, y: Array, d: Array) -> None:  # as the engine's loops
        wide_vectors()
        for i in range(x.size):
            y[i], d[i] = kernel(xp, x[i])

    def tanh_loop(x: Array, y: Array, d: Array) -> None:
        wide_vectors()
        for i in range(x.size):
            y[i] = function(x[i])

    counts = []
    for loop in (numba.njit(**_engine.KERNEL_OPTIONS)(f) for f in (kernel_loop, tanh_loop)):
        x = np.linspace(-3, 3, 64, dtype=dtype)
        loop(x, np.empty_like(x), np.empty_like(x))
        assembly = loop.inspect_asm(loop.signatures[0])
        divisions = len(re.findall(r"\bvdivp[sd]\s", assembly))
        fused = len(re.findall(r"\bvf\w+p[sd]\s+[^\n]*%[yz]mm", assembly))
        counts.append((divisions, fused))
    (kernel_divisions, kernel_fused), (tanh_divisions, tanh_fused) = counts
    assert 0 < kernel_divisions <= tanh_divisions, counts  # (divisions, FMAs): kernel, tanh
    assert kernel_fused <= tanh_fused + 4, counts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_product_is_exact_across_the_range(dtype: str) -> None:
    """`two_product` in `_numba_math` (float64) and `_numba_math32` (float32), compiled with
    the engine's flags: a b = product + error exactly, wherever the product is finite
    and its error does not underflow; inf or NaN where the product overflows."""
    xp = _numba_math32 if dtype == "float32" else _numba_math
    function = xp.two_product

    def loop(a: Array, b: Array) -> tuple[Array, Array]:
        product, error = np.empty_like(a), np.empty_like(a)
        for i in range(a.size):
            product[i], error[i] = function(a[i], b[i])
        return product, error

    compiled = numba.njit(**_engine.KERNEL_OPTIONS)(loop)
    a, b = product_pairs(dtype)
    product, error = compiled(a, b)
    assert product.dtype == error.dtype == np.dtype(dtype)
    assert not exact_product_errors(a, b, product, error)
    huge = np.array([np.finfo(dtype).max], dtype)
    _, error = compiled(huge, huge)
    assert not np.isfinite(error[0])
