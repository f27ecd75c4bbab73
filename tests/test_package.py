"""The package's surface: what `import tinygrad_act` gives, as a user reaches for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tinygrad_act


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("datasets", "moons"),
        ("functional", "sigmoid_derivative"),
        ("testing", "check_layer"),
        ("cli", "main"),
        ("layers", "Sequential"),
        ("losses", "BCELoss"),
        ("optim", "AdamW"),
        ("activations", "get"),
    ],
)
def test_subpackages_are_attributes(name: str, member: str) -> None:
    assert hasattr(getattr(tinygrad_act, name), member)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tinygrad_act.nothing  # noqa: B018


def test_everything_in_all_exists() -> None:
    missing = [name for name in tinygrad_act.__all__ if not hasattr(tinygrad_act, name)]
    assert missing == []


def test_importing_the_package_imports_neither_numba_nor_hypothesis() -> None:
    code = "import sys, tinygrad_act; print('numba' in sys.modules, 'hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
