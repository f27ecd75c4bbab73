"""Shared test configuration: Hypothesis profiles and the accuracy report."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

# CI: derandomized (the same examples every run), more of them, no deadline flakiness.
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

#: (activation, dtype) -> (max forward ulp, max backward ulp), filled by the accuracy tests.
ULP_REPORT: dict[tuple[str, str], tuple[float, float]] = {}


@pytest.fixture
def record_ulp() -> Callable[[str, str, float, float], None]:
    """Record a measured max ulp error for the summary printed at the end of the run."""

    def record(activation: str, dtype: str, forward: float, backward: float) -> None:
        ULP_REPORT[activation, dtype] = (forward, backward)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The accuracy table: f (forward), f' (backward) and f'' per activation and dtype.

    f'' is recorded under the name ``"<activation> f''"``, with an engine or backend
    label such as ``" [numpy]"`` after it; it goes into the third column here.
    """
    if not ULP_REPORT:
        return
    rows: dict[tuple[str, str], list[float | None]] = {}
    for (name, dtype), (forward, backward) in ULP_REPORT.items():
        base, label = [*name.split(" [", 1), ""][:2]
        label = f" [{label}" if label else ""
        if base.endswith(" f''"):
            rows.setdefault((base[:-4] + label, dtype), [None, None, None])[2] = forward
        else:
            row = rows.setdefault((name, dtype), [None, None, None])
            row[0], row[1] = forward, backward
    terminalreporter.section("max ulp error against mpmath")
    headings = ("activation", "dtype", "f", "f'", "f''")
    terminalreporter.write_line("{:<32}{:<10}{:>9}{:>10}{:>10}".format(*headings))

    def cell(value: float | None, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.2f}"

    for (name, dtype), (f, f_prime, f_second) in sorted(rows.items()):
        terminalreporter.write_line(
            f"{name:<32}{dtype:<10}{cell(f, 9)}{cell(f_prime, 10)}{cell(f_second, 10)}"
        )
