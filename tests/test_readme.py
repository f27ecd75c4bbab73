"""The README's code runs, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinygrad_act.testing import CHECKS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the training example saves model.npz
    blocks = [block for block in code_blocks("python") if "parametrize_with_checks" not in block]
    assert len(blocks) == 4  # sigmoid, functions, Newton's method, training
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "model.npz").exists()


def test_own_activation_example_passes_the_testing_kit(pytester: pytest.Pytester) -> None:
    (example,) = [block for block in code_blocks("python") if "parametrize_with_checks" in block]
    assert len(example.strip().splitlines()) <= 25
    pytester.makepyfile(test_softsign=example)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=len(CHECKS) - 1, skipped=1)  # it gives no f''

    result.stdout.fnmatch_lines(["*test_softsign?Softsign()-gradient? PASSED*"])


def test_quickstart_is_two_commands_and_ci_runs_the_test_command() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```sh\n(.*?)```", quickstart, re.DOTALL)]
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci_lines
