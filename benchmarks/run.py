"""Time every activation's forward + backward against its peers, interleaved, in one run.

    python benchmarks/run.py [--sizes 1e3 1e5 1e7 64x128] [--dtypes float16 float32 float64]
                             [--activations sigmoid tanh ...] [--repeats 7] [--json FILE]
                             [--engine numba|numpy] [--axis A] [--one-thread | --isolate]

A size is a number of elements, or a shape such as 64x128 (a toy network's batch).

For each activation, size and dtype, one "step" is forward then backward with a
seeded standard-normal grad_output, as in training. The candidates are timed in turn,
round after round (so a noisy neighbour hurts them all alike), and the table shows the
median of the rounds in ns per element and each peer's time divided by ours (above 1:
we are faster). Peers:

- numpy: the textbook NumPy expressions, e.g. ``1/(1+np.exp(-x))`` and ``g*s*(1-s)``;
- expit: ``scipy.special.expit`` plus the NumPy backward (sigmoid only);
- torch: PyTorch's functional activation with autograd, on 1 thread and on all.

tinygrad_act runs on 1 thread (compared with torch on 1 and with the single-threaded
NumPy and SciPy peers) and on all threads (compared with torch on all).
Peers that are not installed are skipped with a note (``pip install ".[bench]"``).
The memory table reports tracemalloc's peak per call at the largest size, with the
pool of freed large results emptied before each call (a steady loop reuses its blocks
and allocates nothing new).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import tinygrad_act
from tinygrad_act import RReLU, _engine, engine, free_buffers, get, set_num_threads

Step = Callable[[], object]

try:
    import scipy.special as scipy_special
except ImportError:  # pragma: no cover - depends on the machine
    scipy_special = None
try:
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment, unused-ignore]


def _numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return str(numba.__version__)


ALL_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _numpy_steps() -> dict[str, Callable[[Any, Any], Any]]:
    """Textbook forward + backward in NumPy: what one writes without this library."""

    def sigmoid(x: Any, g: Any) -> Any:
        s = 1 / (1 + np.exp(-x))
        return s, g * s * (1 - s)

    def tanh(x: Any, g: Any) -> Any:
        y = np.tanh(x)
        return y, g * (1 - y * y)

    def relu(x: Any, g: Any) -> Any:
        return np.maximum(x, 0), g * (x > 0)

    def leakyrelu(x: Any, g: Any) -> Any:
        return np.where(x > 0, x, 0.01 * x), g * np.where(x > 0, 1, 0.01)

    def elu(x: Any, g: Any) -> Any:
        return np.where(x > 0, x, np.expm1(x)), g * np.where(x > 0, 1, np.exp(x))

    def selu(x: Any, g: Any) -> Any:
        a, s = 1.6732632423543772, 1.0507009873554805
        y = s * np.where(x > 0, x, a * np.expm1(x))
        return y, g * s * np.where(x > 0, 1, a * np.exp(x))

    def softplus(x: Any, g: Any) -> Any:
        return np.log1p(np.exp(x)), g / (1 + np.exp(-x))

    def silu(x: Any, g: Any) -> Any:
        s = 1 / (1 + np.exp(-x))
        return x * s, g * s * (1 + x * (1 - s))

    def gelu(x: Any, g: Any) -> Any:
        cdf = 0.5 * (1 + scipy_special.erf(x / math.sqrt(2)))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return x * cdf, g * (cdf + x * pdf)

    def softmax(x: Any, g: Any, axis: int = -1) -> Any:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        return y, y * (g - (g * y).sum(axis=axis, keepdims=True))

    def logsoftmax(x: Any, g: Any, axis: int = -1) -> Any:
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return y, g - np.exp(y) * g.sum(axis=axis, keepdims=True)

    steps = dict(locals())
    if scipy_special is None:
        del steps["gelu"]
    return steps


NUMPY = _numpy_steps()
TORCH_NAMES = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leakyrelu": "leaky_relu",
    "elu": "elu",
    "selu": "selu",
    "softplus": "softplus",
    "silu": "silu",
    "gelu": "gelu",
    "softmax": "softmax",
    "logsoftmax": "log_softmax",
    "logsigmoid": "logsigmoid",
    "softsign": "softsign",
    "mish": "mish",
    "hardtanh": "hardtanh",
    "relu6": "relu6",
    "hardsigmoid": "hardsigmoid",
    "hardswish": "hardswish",
    "celu": "celu",
    "softshrink": "softshrink",
    "hardshrink": "hardshrink",
    "tanhshrink": "tanhshrink",
    "threshold": "threshold",
    "softmin": "softmin",
    "prelu": "prelu",
    "rrelu": "rrelu",
    "glu": "glu",
}
#: What PyTorch's function needs besides the input, to match our layer's defaults (the
#: layers of `AXIS_LAYERS` also get ``dim``, their axis).
TORCH_ARGUMENTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "threshold": lambda torch: {"threshold": 0.0, "value": 0.0},
    "rrelu": lambda torch: {"training": False},
    "prelu": lambda torch: {"weight": torch.full((1,), 0.25, dtype=torch.float64)},
}
AXIS_LAYERS = ("softmax", "logsoftmax", "softmin", "glu")


def _shape(name: str, size: int | tuple[int, ...]) -> tuple[int, ...]:
    """A shape as given; else rows of 1000 for the softmaxes, a flat array otherwise."""
    if isinstance(size, tuple):
        return size
    if name in AXIS_LAYERS and size >= 1000:
        return (size // 1000, 1000)
    return (size,)


def _largest(sizes: list[int | tuple[int, ...]]) -> int:
    """The element count of the largest size: the memory table's arrays."""
    return max(int(np.prod(_shape("", size))) for size in sizes)


def _axis_problem(names: list[str], sizes: list[int | tuple[int, ...]], axis: int) -> str:
    """What is wrong with `axis` for the layers of `AXIS_LAYERS` among `names`, on the
    timed shapes and the memory table's; "" if nothing."""
    for name in (name for name in names if name in AXIS_LAYERS):
        shapes = [(_shape(name, size), "shape") for size in sizes]
        shapes.append((_shape(name, _largest(sizes)), "the memory table's shape"))
        for shape, what in shapes:
            if not -len(shape) <= axis < len(shape):
                return f"--axis {axis} is out of range for {name} on {what} {shape}"
            if name == "glu" and shape[axis] % 2:
                return f"--axis {axis}: glu needs an even size along it, got {what} {shape}"
    return ""


def _threaded(candidate: str) -> bool:
    """Whether `candidate` ("ours 2t", "torch 1t", "numpy", ...) runs on several threads."""
    return candidate.startswith(("ours ", "torch ")) and not candidate.endswith(" 1t")


def _text(size: int | tuple[int, ...]) -> str:
    """A size as `_size` reads it."""
    return "x".join(map(str, size)) if isinstance(size, tuple) else str(size)


def _size(text: str) -> int | tuple[int, ...]:
    """``1e5`` is 100000 elements, ``64x128`` a shape."""
    if "x" in text:
        return tuple(int(side) for side in text.split("x"))
    return int(float(text))


def _cpuinfo(field: str) -> str:
    """The value of `field` in /proc/cpuinfo for the first CPU; "" where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            line = next((line for line in file if line.split(":")[0].strip() == field), "")
    except OSError:
        return ""
    return line.partition(":")[2].strip()


def cpu_model() -> str:
    """The CPU's model name, and LLVM's name for it where numba is installed: Intel's and
    AMD's AVX-512 CPUs differ in what numba's compiler makes of a loop, and in the
    speed of a division."""
    name = _cpuinfo("model name") or "unknown"
    try:
        import llvmlite.binding
    except ImportError:
        return name
    return f"{name} ({llvmlite.binding.get_host_cpu_name()})"


def vector_isa() -> str:
    """The widest x86 vector extension the CPU reports: what NumPy and numba can use."""
    flags = set(_cpuinfo("flags").split())
    for isa in ("avx512f", "avx2", "avx", "sse4_2"):
        if isa in flags:
            return {"avx512f": "AVX-512"}.get(isa, isa.upper())
    return "unknown"


#: Seconds each step runs before it is timed. The first calls of a new process run
#: slower: for 2-thread Sigmoid at 10^5 float32, 0.85 ns per element in the first
#: sample, settling at 0.55 to 0.6 by the sixth.
WARM_UP = 0.05


def _nothing() -> None:
    pass


def gradient(y: Any) -> Any:
    """A seeded standard-normal grad_output of y's shape and dtype: as a loss gives.

    NOTE: a constant one (all ones) would be the softmaxes' worst case and no training
    step's: their gradient is then 0, and the float32 Softmax backward takes its
    residual pass in every row (see `tinygrad_act._rows`).
    """
    return np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)


def benchmarked(name: str, axis: int) -> Any:
    """The layer `name` as it is timed: along `axis` for the layers of `AXIS_LAYERS`,
    RReLU in inference (its slopes' mean, as PyTorch's rrelu(training=False))."""
    layer = get(name, **({"axis": axis} if name in AXIS_LAYERS else {}))
    if isinstance(layer, RReLU):
        layer.eval()
    return layer


def candidates(name: str, x: Any, threads: bool, axis: int = -1) -> dict[str, tuple[Step, Step]]:
    """Every available way to run one training step of activation `name` on `x`: for
    each, the setting it runs under (the thread count), and the step itself. The
    layers of `AXIS_LAYERS` and their peers work along `axis`."""
    along = {"axis": axis} if name in AXIS_LAYERS else {}
    layer = benchmarked(name, axis)
    g = gradient(layer.forward(x))
    steps: dict[str, tuple[Step, Step]] = {}

    def ours() -> object:
        layer.forward(x)
        return layer.backward(g)

    steps["ours 1t"] = (lambda: set_num_threads(1), ours)
    if threads and ALL_THREADS and ALL_THREADS > 1:
        steps[f"ours {ALL_THREADS}t"] = (lambda: set_num_threads(ALL_THREADS), ours)
    if name in NUMPY and x.dtype != np.float16:  # NumPy's float16 ufuncs are no real peer
        steps["numpy"] = (_nothing, lambda: NUMPY[name](x, g, **along))
    if name == "sigmoid" and scipy_special is not None:

        def expit() -> object:
            s = scipy_special.expit(x)
            return s, g * s * (1 - s)

        steps["expit"] = (_nothing, expit)
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tg = torch.from_numpy(g)
        function = getattr(torch.nn.functional, TORCH_NAMES[name])
        kwargs = TORCH_ARGUMENTS.get(name, lambda torch: {})(torch)
        if name in AXIS_LAYERS:
            kwargs["dim"] = axis
        if "weight" in kwargs:
            kwargs["weight"] = kwargs["weight"].to(tx.dtype)

        def torch_step() -> object:
            y = function(tx, **kwargs)
            y.backward(tg)
            tx.grad = None
            return y

        try:
            torch.set_num_threads(1)
            torch_step()
            steps["torch 1t"] = (lambda: torch.set_num_threads(1), torch_step)
            if "ours 1t" in steps and ALL_THREADS and ALL_THREADS > 1 and threads:
                steps[f"torch {ALL_THREADS}t"] = (
                    lambda: torch.set_num_threads(ALL_THREADS),
                    torch_step,
                )
        except (RuntimeError, TypeError):  # e.g. an op without a float16 CPU kernel
            pass
    return steps


def time_interleaved(
    steps: dict[str, tuple[Step, Step]], repeats: int, size: int
) -> dict[str, float]:
    """Median seconds per call of each step, timing them in turn each round; each
    sample runs under its step's setting, made before the clock starts."""
    calls = max(1, 200_000 // max(size, 1))  # several calls per sample for tiny arrays
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for setting, step in steps.values():  # warm up: first-call costs, threads, caches
        setting()
        step()
        warm = time.perf_counter() + WARM_UP
        while time.perf_counter() < warm:
            step()
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            setting, step = steps[name]
            setting()
            start = time.perf_counter()
            for _ in range(calls):
                step()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: float(np.median(times)) for name, times in samples.items()}


def peak_memory(name: str, x: Any, axis: int = -1) -> tuple[float, float]:
    """tracemalloc's peak during one forward and one backward call, in bytes, each made
    with the pool of freed results empty (so that the peak shows what a call needs)."""
    layer = benchmarked(name, axis)
    g = gradient(layer.forward(x))  # a warm cache, as in training
    layer.backward(g)
    peaks = []
    calls: list[Callable[[], object]] = [lambda: layer.forward(x), lambda: layer.backward(g)]
    for call in calls:
        free_buffers()
        tracemalloc.start()
        call()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return peaks[0], peaks[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", type=_size, default=[1000, 100_000, 10_000_000, (64, 128)]
    )
    parser.add_argument("--dtypes", nargs="+", default=["float16", "float32", "float64"])
    parser.add_argument("--activations", nargs="+", default=list(TORCH_NAMES))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--engine", choices=_engine.available_engines(), default=engine())
    parser.add_argument(
        "--one-thread",
        action="store_true",
        help="time the 1-thread candidates only (PyTorch's OpenMP worker spins on the "
        "second core for a while after each multi-threaded call, which slows the others)",
    )
    parser.add_argument(
        "--axis",
        type=int,
        default=-1,
        help="the axis of softmax, logsoftmax, softmin and glu (default -1)",
    )
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="time each multi-threaded candidate in a process of its own, the processes "
        "taking turns round after round (a thread pool that spins after its calls then "
        "slows no other candidate)",
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)  # a child of --isolate: one candidate
    args = parser.parse_args(argv)
    if args.isolate and args.one_thread:
        parser.error("--isolate times the multi-threaded candidates, --one-thread leaves them out")
    problem = _axis_problem(args.activations, args.sizes, args.axis)
    if problem:
        parser.error(problem)
    with _engine.using(args.engine):
        if args.only:
            return _time_one(args)
        return run(args)


def _time_one(args: argparse.Namespace) -> int:
    """As a child of --isolate: print the median seconds per step of candidate
    `args.only` for the one activation, dtype and size given."""
    name, dtype, size = args.activations[0], args.dtypes[0], args.sizes[0]
    x = np.random.default_rng(0).standard_normal(_shape(name, size)).astype(dtype)
    step = candidates(name, x, threads=True, axis=args.axis)[args.only]
    print(json.dumps(time_interleaved({args.only: step}, args.repeats, x.size)[args.only]))
    return 0


def time_isolated(
    names: list[str], argv: list[str], repeats: int, rounds: int = 3
) -> dict[str, float]:
    """Median seconds per step of each candidate of `names`, each timed `repeats` times
    in a process of its own (this script, with `argv` and ``--only``), the processes
    taking turns for `rounds` rounds; the median of the rounds' medians."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    script = os.path.abspath(__file__)
    for _ in range(rounds):
        for name in names:
            command = [sys.executable, script, *argv, "--repeats", str(repeats), "--only", name]
            child = subprocess.run(command, capture_output=True, text=True, check=True)
            samples[name].append(float(child.stdout.split()[-1]))
    return {name: float(np.median(times)) for name, times in samples.items()}


def run(args: argparse.Namespace) -> int:
    """The whole benchmark, on the engine in use."""
    notes = []
    if scipy_special is None:
        notes.append("SciPy is not installed: expit and the NumPy GELU peer are skipped")
    if torch is None:
        notes.append('PyTorch is not installed: torch is skipped (pip install ".[bench]")')
    if not (args.isolate or args.one_thread) and (ALL_THREADS or 1) > 1:
        notes.append(
            "the multi-threaded candidates share this process, and the threads of each spin "
            "for a while after its calls, slowing the next call of the others: --isolate "
            "times each in a process of its own"
        )
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "tinygrad_act": tinygrad_act.__version__,
        "processor": platform.processor() or platform.machine(),
        "CPU": cpu_model(),
        "vector ISA": vector_isa(),
        "cores": ALL_THREADS,
        "engine": engine(),
        "numba": _numba_version(),
    }
    print("machine:", ", ".join(f"{k} {v}" for k, v in machine.items()))
    for note in notes:
        print("note:", note)

    results = []
    for name in args.activations:
        for dtype in args.dtypes:
            for size in args.sizes:
                shape = _shape(name, size)
                x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
                threads = x.size >= 10**5 and not args.one_thread
                steps = candidates(name, x, threads=threads, axis=args.axis)
                apart = [k for k in steps if args.isolate and _threaded(k)]
                medians = time_interleaved(
                    {k: v for k, v in steps.items() if k not in apart}, args.repeats, x.size
                )
                if apart:
                    argv = [name, "--dtypes", dtype, "--sizes", _text(size)]
                    argv += ["--axis", str(args.axis), "--engine", args.engine]
                    medians.update(time_isolated(apart, ["--activations", *argv], args.repeats))
                label = "x".join(map(str, shape)) if isinstance(size, tuple) else str(size)
                result = {"activation": name, "dtype": dtype, "size": label, "seconds": medians}
                if apart:
                    result["isolated"] = apart
                if name in AXIS_LAYERS:
                    result["axis"] = args.axis
                    label += f" axis {args.axis}"
                results.append(result)
                _print_row(name, dtype, label, x.size, medians)
    memory = []
    largest = _largest(args.sizes)
    for name in args.activations:
        x = np.random.default_rng(0).standard_normal(_shape(name, largest))
        forward, backward = peak_memory(name, x, args.axis)
        memory.append(
            {"activation": name, "size": largest, "forward": forward, "backward": backward}
        )
    _print_memory(memory, largest)
    set_num_threads(ALL_THREADS or 1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(
                {"machine": machine, "notes": notes, "results": results, "memory": memory},
                file,
                indent=1,
            )
    return 0


_header_printed = False


def _print_row(name: str, dtype: str, label: str, size: int, medians: dict[str, float]) -> None:
    global _header_printed
    if not _header_printed:
        print(
            "\nforward + backward, median ns per element; peer / ours in brackets (>1: ours faster)"
        )
        _header_printed = True
    ours_1 = medians["ours 1t"]
    ours_all = medians.get(f"ours {ALL_THREADS}t", ours_1)
    cells = []
    for peer, seconds in medians.items():
        base = ours_all if _threaded(peer) else ours_1  # at the peer's thread count
        ratio = "" if peer.startswith("ours") else f" ({seconds / base:.2f}x)"
        cells.append(f"{peer} {seconds / size * 1e9:.2f}{ratio}")
    print(f"{name:<12}{dtype:<8}{label:>9}  " + "  ".join(cells))
    sys.stdout.flush()


def _print_memory(memory: list[dict[str, Any]], size: int) -> None:
    mib = size * 8 / 2**20
    print(f"\npeak traced allocation per call at {size} float64 elements ({mib:.1f} MiB an array)")
    for row in memory:
        f, b = row["forward"] / (size * 8), row["backward"] / (size * 8)
        print(f"{row['activation']:<12} forward {f:.2f} arrays   backward {b:.2f} arrays")


if __name__ == "__main__":
    sys.exit(main())
