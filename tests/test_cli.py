"""The command line: output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_act.activations import ACTIVATIONS
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
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [[name, "pass"] for name in sorted(ACTIVATIONS)]


def test_check_skips_exact_gelu_without_scipy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    assert main(["check"]) == 0
    gelu = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("gelu"))
    assert "skip" in gelu
    assert "tinygrad_act[gelu]" in gelu


def test_show_softmax_prints_the_jacobian_diagonal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "softmax", "0", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["x", "f(x)", "dy_i/dx_i"]
    assert lines[1].split() == ["0", "0.5", "0.25"]


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "activations.png"
    assert main(["plot", "sigmoid", "relu", "softmax", "-o", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(output) in capsys.readouterr().out


def test_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", "relu", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "tinygrad_act[plot]" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nosuch"], "unknown activation 'nosuch'; valid names: "),
        (["show", "sigmoid", "abc"], "invalid float value: 'abc'"),
        ([], "required: command"),
        (["train"], "invalid choice: 'train'"),
        (["plot", "relu"], "required: -o/--output"),
        (["plot", "nosuch", "-o", "x.png"], "unknown activation 'nosuch'"),
        (["demo", "--dataset", "circles"], "invalid choice: 'circles'"),
        (["demo", "--activation", "softmax"], "'softmax' is not elementwise"),
        (["demo", "--epochs", "0"], "must be a positive integer, got 0"),
        (["demo", "--lr", "-1"], "must be positive, got -1"),
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
