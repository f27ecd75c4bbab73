"""Forward + backward of an activation on a Dask array on a local cluster, against NumPy.

    python benchmarks/dask_cluster.py [--size 1e8] [--chunk 1e7] [--workers N]
                                      [--activation sigmoid] [--repeats 3] [--threads]

The array is generated in the workers and kept there (``persist``), so the timing is
that of the layers: forward, then backward with a grad_output of ones, both reduced
to a sum in the workers (nothing of the size of the array comes back). NumPy runs
the same layer on one array of the same size in this process, on the same machine,
with the engine in use (numba's compiled loops on every core when installed). Each
is timed `repeats` times; the table gives the median in seconds and in ns per element.
``--threads`` starts the workers as threads of this process instead of processes
(quicker to start; the test suite's smoke run uses it with 10^5 elements).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tinygrad_act import _engine
from tinygrad_act.activations import get

# Dask has no type annotations: its modules are typed as Any here
da: Any = importlib.import_module("dask.array")
distributed: Any = importlib.import_module("dask.distributed")


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=float, default=1e8, help="elements (default 1e8)")
    parser.add_argument("--chunk", type=float, default=1e7, help="elements per chunk")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--activation", default="sigmoid")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", action="store_true", help="workers as threads")
    args = parser.parse_args(argv)
    size, chunk = int(args.size), int(args.chunk)
    print(
        f"{args.activation}, {size:,} float64 elements in chunks of {chunk:,}; "
        f"engine {_engine.engine()}, {os.cpu_count()} cores, {args.workers} Dask workers "
        f"({'threads' if args.threads else 'processes'}, 1 thread each)"
    )

    cluster = distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=not args.threads,
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster):
        x = da.random.default_rng(0).standard_normal(size, chunks=chunk).persist()
        distributed.wait(x)
        ones = da.ones_like(x).persist()
        distributed.wait(ones)

        def on_cluster() -> Any:
            layer = get(args.activation)
            y = layer.forward(x)
            dx = layer.backward(ones)
            return da.compute(y.sum(), dx.sum())

        cluster_time = median_seconds(on_cluster, args.repeats)

    local = np.random.default_rng(0).standard_normal(size)
    local_ones = np.ones(size)

    def on_numpy() -> Any:
        layer = get(args.activation)
        y = layer.forward(local)
        dx = layer.backward(local_ones)
        return y.sum(), dx.sum()

    numpy_time = median_seconds(on_numpy, args.repeats)
    print(f"{'':<22}{'seconds':>10}{'ns/element':>12}")
    for name, seconds in (("Dask local cluster", cluster_time), ("NumPy, one array", numpy_time)):
        print(f"{name:<22}{seconds:>10.3f}{seconds / size * 1e9:>12.2f}")
    print(f"NumPy / Dask: {numpy_time / cluster_time:.2f}")


if __name__ == "__main__":
    main()
