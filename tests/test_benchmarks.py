"""A tiny run of the benchmark suite, so that it never rots. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        *("--sizes", "1000", "4x8", "--dtypes", "float32", "float16", "--repeats", "1"),
        *("--activations", "sigmoid", "gelu", "softmax", "--json", str(output)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the package, installed or not
    run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert "forward + backward, median ns per element" in run.stdout
    assert "vector ISA" in run.stdout
    assert "CPU " in run.stdout
    assert "engine" in run.stdout
    results = json.loads(output.read_text())
    rows = {(r["activation"], r["dtype"], r["size"]) for r in results["results"]}
    assert rows == {
        (a, d, s)
        for a in ("sigmoid", "gelu", "softmax")
        for d in ("float32", "float16")
        for s in ("1000", "4x8")
    }
    for row in results["results"]:
        assert row["seconds"]["ours 1t"] > 0
    sigmoid32 = next(
        r for r in results["results"] if (r["activation"], r["dtype"]) == ("sigmoid", "float32")
    )
    # expit is SciPy's, which comes with the bench extra, not the test extra
    has_scipy = importlib.util.find_spec("scipy") is not None
    assert ("expit" in sigmoid32["seconds"]) == has_scipy
    assert "numpy" in sigmoid32["seconds"]
    assert has_scipy or "SciPy is not installed: expit and the NumPy GELU peer" in run.stdout
    assert [m["activation"] for m in results["memory"]] == ["sigmoid", "gelu", "softmax"]


def test_benchmark_axis_option(tmp_path: Path) -> None:
    """--axis reaches the softmaxes and is recorded; an axis the shapes lack is refused.
    --one-thread leaves out the multi-threaded candidates, which 10**5 elements get."""
    output = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        *("--sizes", "4x8", "1e5", "--dtypes", "float64", "--repeats", "1", "--axis", "0"),
        "--one-thread",
        *("--activations", "softmax", "sigmoid", "--json", str(output)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert "4x8 axis 0" in run.stdout
    results = json.loads(output.read_text())["results"]
    axes = {(r["activation"], r.get("axis")) for r in results}
    assert axes == {("softmax", 0), ("sigmoid", None)}
    candidates = {name for r in results for name in r["seconds"]}
    assert candidates <= {"ours 1t", "torch 1t", "numpy", "expit"}
    command[command.index("--axis") + 1] = "2"
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert refused.returncode == 2
    assert "--axis 2 is out of range for softmax on shape (4, 8)" in refused.stderr
    # the memory table's arrays are flat for sizes given as shapes of other layers
    command[command.index("--axis") + 1] = "1"
    command[command.index("4x8") : command.index("4x8") + 2] = ["2x3x4"]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    assert refused.returncode == 2
    assert "--axis 1 is out of range for softmax on the memory table's shape (24,)" in (
        refused.stderr
    )


def test_benchmark_isolate_option(tmp_path: Path) -> None:
    """--isolate times each multi-threaded candidate in a process of its own (where the
    machine has several cores), and refuses --one-thread, which leaves them out."""
    output = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        *("--sizes", "1e5", "--dtypes", "float32", "--repeats", "1", "--isolate"),
        *("--activations", "sigmoid", "--json", str(output)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    (row,) = json.loads(output.read_text())["results"]
    several = [n for n in row["seconds"] if n.split()[0] in ("ours", "torch") and n[-3:] != " 1t"]
    assert row.get("isolated", []) == several
    if len(os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else [1]) > 1:
        assert any(name.startswith("ours") for name in several)
    assert all(seconds > 0 for seconds in row["seconds"].values())
    refused = subprocess.run(
        [*command, "--one-thread"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert refused.returncode == 2
    assert "--isolate times the multi-threaded candidates" in refused.stderr


def test_dask_cluster_benchmark_smoke_run() -> None:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "dask_cluster.py"),
        *("--size", "1e5", "--chunk", "25000", "--workers", "2", "--repeats", "1", "--threads"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert "Dask local cluster" in run.stdout
    assert "NumPy, one array" in run.stdout
