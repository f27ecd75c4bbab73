"""pytest at the repository root: the compiled engine's modules need numba to import, so
their doctests are collected only where it is installed."""

import importlib.util

collect_ignore = (
    []
    if importlib.util.find_spec("numba")
    else [
        "tinygrad_act/_channels.py",
        "tinygrad_act/_gated.py",
        "tinygrad_act/_numba_math.py",
        "tinygrad_act/_numba_math32.py",
        "tinygrad_act/_rows.py",
        "tinygrad_act/_team.py",
    ]
)
