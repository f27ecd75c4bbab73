"""Compile every built-in layer's numba loops into the disk cache of this checkout.

CI runs this while the gates run, ahead of the compiled test pass, which then loads
each loop from the disk cache instead of compiling it. The loops compiled are the ones
calls make: forward and backward, forward under `no_grad`, and f'', for float64,
float32 and float16 input, on one thread and on the thread team. Run it from the
repository root, with the interpreter the tests use, so that it compiles the
checkout's own modules.

The layers are split between two processes, one a core, each compiling into a cache
directory of its own: two processes adding loops of one function to one cache at once
could lose, or mix up, an entry of its index (numba rewrites the index whole, and
numbers the data files from what it read). The two caches are then merged into the
checkout's, function by function: the entries of both indexes, their data files
renumbered.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinygrad_act  # noqa: E402
from tinygrad_act.activations import ACTIVATIONS  # noqa: E402
from tinygrad_act.base import Activation  # noqa: E402

DTYPES = (np.float64, np.float32, np.float16)
PARTS = 2


def run(names: list[str], threads: int, size: int, what: str) -> None:
    """The built-ins `names` through the calls `what` names, on arrays of 2 x `size`
    elements."""
    tinygrad_act.set_num_threads(threads)
    for name in names:
        for dtype in DTYPES:
            layer = ACTIVATIONS[name]()
            x = np.linspace(-3, 3, 2 * size).astype(dtype).reshape(2, size)
            if what == "backward":
                layer.backward(np.ones_like(layer.forward(x)))
            elif what == "no_grad":
                with tinygrad_act.no_grad():
                    layer.forward(x)
            elif isinstance(layer, Activation) and type(layer).derivatives is not None:
                layer.second_derivative(x)


def compile_part(part: int) -> None:
    """Every call of every `PARTS`-th built-in, from the `part`-th on."""
    names = sorted(ACTIVATIONS)[part::PARTS]
    start = time.perf_counter()
    for threads, size, what in [
        (1, 64, "backward"),
        (1, 64, "no_grad"),
        (1, 64, "second_derivative"),
        (2, 50_000, "backward"),
        (2, 50_000, "no_grad"),
    ]:
        run(names, threads, size, what)
    print(f"compiled {', '.join(names)}: {time.perf_counter() - start:.0f} s", flush=True)


def read_index(path: Path) -> tuple[object, object, dict[object, str]]:
    """numba's cache index: its numba version, the source's stamp, and key -> data file."""
    with path.open("rb") as f:
        version = pickle.load(f)
        stamp, overloads = pickle.loads(f.read())
    return version, stamp, overloads


def write_index(path: Path, version: object, stamp: object, overloads: dict[object, str]) -> None:
    """An index as numba writes it."""
    from numba.core import serialize

    with path.open("wb") as f:
        pickle.dump(version, f, protocol=-1)
        f.write(serialize.dumps((stamp, overloads)))  # type: ignore[no-untyped-call]


def merge(parts: list[Path], into: Path) -> int:
    """The cache files of the directories `parts` in `into`, each function's index the
    union of theirs (the first part's data where two have one key); the entries."""
    into.mkdir(exist_ok=True)
    entries = 0
    for name in sorted({index.name for part in parts for index in part.glob("*.nbi")}):
        base = name.removesuffix(".nbi")
        merged: dict[object, Path] = {}
        version: object = None
        stamp: object = None
        for part in parts:
            if (part / name).exists():
                version, stamp, overloads = read_index(part / name)
                for key, data in overloads.items():
                    merged.setdefault(key, part / data)
        # an older index here could name data files about to be replaced: it goes first,
        # so that a merge that stops half-way leaves loops to compile, never wrong ones
        (into / name).unlink(missing_ok=True)
        renamed = {}
        for number, (key, file) in enumerate(merged.items(), start=1):
            renamed[key] = f"{base}.{number}.nbc"
            shutil.copyfile(file, into / renamed[key])
        write_index(into / name, version, stamp, renamed)
        entries += len(renamed)
    return entries


def main() -> None:
    where = Path(tinygrad_act.__file__).resolve().parent
    if where != ROOT / "tinygrad_act":
        raise SystemExit(f"compiled {where}, not this checkout's tinygrad_act")
    if tinygrad_act.engine() != "numba":
        raise SystemExit("numba is not installed here: nothing to compile")
    if len(sys.argv) == 3 and sys.argv[1] == "--part":
        compile_part(int(sys.argv[2]))
        return
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        caches = [Path(scratch) / str(part) for part in range(PARTS)]
        processes = [
            subprocess.Popen(
                [sys.executable, __file__, "--part", str(part)],
                env={**os.environ, "NUMBA_CACHE_DIR": str(cache)},
            )
            for part, cache in enumerate(caches)
        ]
        codes = [process.wait() for process in processes]
        if any(codes):
            raise SystemExit(f"a part failed to compile: exit codes {codes}")
        # numba keeps a user-chosen cache in a directory named after the source's
        # directory, here tinygrad_act's
        found = [list(cache.iterdir()) for cache in caches]
        if any(len(directories) != 1 for directories in found):
            # a layout this script does not know (another numba version): the compiled
            # pass then compiles the loops itself, slower but the same
            print(f"not merged: expected one cache directory in each part, found {found}")
            return
        try:
            entries = merge([directories[0] for directories in found], where / "__pycache__")
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as error:
            print(f"not merged: {error!r}")
            return
    print(f"compiled and merged {entries} loops in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
