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
    if not ULP_REPORT:
        return
    terminalreporter.section("max ulp error against mpmath")
    terminalreporter.write_line(f"{'activation':<16}{'dtype':<10}{'forward':>9}{'backward':>10}")
    for (activation, dtype), (forward, backward) in sorted(ULP_REPORT.items()):
        terminalreporter.write_line(f"{activation:<16}{dtype:<10}{forward:>9.2f}{backward:>10.2f}")
