"""The command line: output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tinygrad_act.cli import main


def test_show_prints_the_tutorial_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "sigmoid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["x", "f(x)", "f'(x)"]
    assert lines[1].split() == ["0.1", "0.52497919", "0.24937604"]
    assert lines[5].split() == ["0.5", "0.62245933", "0.23500371"]


def test_show_takes_values_and_names_case_insensitively(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "Sigmoid", "0", "40"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["0", "0.5", "0.25"], ["40", "1", "4.2483543e-18"]]


def test_check_passes_every_activation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "sigmoid" in out
    assert "FAIL" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nosuch"], "unknown activation 'nosuch'; valid names: "),
        (["show", "sigmoid", "abc"], "invalid float value: 'abc'"),
        ([], "required: command"),
        (["train"], "invalid choice: 'train'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tinygrad_act", "show", "sigmoid", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[1].split() == ["0", "0.5", "0.25"]
