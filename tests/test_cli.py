"""The command line, through its entry points: output, exit codes, one-line errors."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_act import activations, cli
from tinygrad_act.activations import ACTIVATIONS
from tinygrad_act.base import Activation, Layer
from tinygrad_act.cli import main


def run_module(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m tinygrad_act ARGS``, the way a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_act", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


def test_show_prints_the_tutorial_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "sigmoid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["x", "f(x)", "f'(x)"]
    assert lines[1].split() == ["0.1", "0.52497919", "0.24937604"]
    assert lines[5].split() == ["0.5", "0.62245933", "0.23500371"]


def test_show_takes_values_and_names_case_insensitively(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "Sigmoid", "0", "40"]) == 0
    assert table(capsys.readouterr().out) == [["0", "0.5", "0.25"], ["40", "1", "4.2483543e-18"]]


def test_show_takes_negative_and_special_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "sigmoid", "-inf", "-1e5", "-1", "nan", "inf", "-2.5"]) == 0
    assert table(capsys.readouterr().out) == [
        ["-inf", "0", "0"],
        ["-100000", "0", "0"],
        ["-1", "0.26894142", "0.19661193"],
        ["nan", "nan", "nan"],
        ["inf", "1", "0"],
        ["-2.5", "0.07585818", "0.070103717"],
    ]


def test_show_softmax_prints_the_jacobian_diagonal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "softmax", "0", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["x", "f(x)", "dy_i/dx_i"]
    assert lines[1].split() == ["0", "0.5", "0.25"]


def test_check_passes_every_activation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [[name, "pass"] for name in sorted(ACTIVATIONS)]


def test_check_skips_an_activation_whose_extra_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_get = activations.get

    def get(name: str) -> Layer:
        if name == "gelu":
            raise ImportError('GELU needs SciPy: pip install "tinygrad_act[gelu]"')
        return real_get(name)

    monkeypatch.setattr(cli, "get", get)
    assert main(["check"]) == 0
    gelu = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("gelu"))
    assert "skip" in gelu
    assert "tinygrad_act[gelu]" in gelu


@pytest.mark.parametrize("name", ["activations.png", "UPPER.PNG"])
def test_plot_writes_the_png_it_names(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / name
    assert main(["plot", "sigmoid", "relu", "softmax", "-o", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == f"wrote {output}\n"
    assert os.listdir(tmp_path) == [name]  # nothing else written


def test_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", "relu", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "tinygrad_act[plot]" in err


def test_demo_engine_numba_without_numba_fails_before_training(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "available_engines", lambda: ("numpy",))
    assert main(["demo", "--engine", "numba"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        'tinygrad-act: --engine numba needs numba: pip install "tinygrad_act[fast]"\n'
    )


def test_demo_plot_without_matplotlib_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "--plot", str(tmp_path / "x.png")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == 'tinygrad-act: --plot needs matplotlib: pip install "tinygrad_act[plot]"\n'
    )


# Each case: arguments ({tmp} is a fresh folder), then what the one line of stderr says.
BAD_ARGUMENTS = [
    (["show"], "the following arguments are required: NAME"),
    (["show", "nosuch"], "argument NAME: unknown activation 'nosuch'; valid names: "),
    (["show", "sigmoid", "abc"], "argument X: must be a number, got 'abc'"),
    (["show", "sigmoid", "1e400"], "argument X: '1e400' is beyond float64's range (1.8e308)"),
    (["show", "sigmoid", "0", "-1e400"], "argument X: '-1e400' is beyond float64's range"),
    (["show", "glu", "1", "2"], "argument NAME: 'glu' maps each pair of values to one; show"),
    (["show", "sigmoid", "1", "--bogus"], "unrecognized arguments: --bogus"),
    (["train"], "argument COMMAND: invalid choice: 'train'"),
    (["check", "--seed", "x"], "argument --seed: must be an integer >= 0, got 'x'"),
    (["check", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["plot", "relu"], "the following arguments are required: -o/--output"),
    (["plot", "nosuch", "-o", "{tmp}/x.png"], "argument NAME: unknown activation 'nosuch'"),
    (["plot", "relu", "-o", "{tmp}"], "argument -o/--output: '{tmp}' is a folder"),
    (
        ["plot", "relu", "-o", "{tmp}/x.jpg"],
        "must be a file name ending in .png, got '{tmp}/x.jpg'",
    ),
    (["plot", "relu", "-o", "{tmp}/x"], "must be a file name ending in .png, got '{tmp}/x'"),
    (["plot", "relu", "-o", "{tmp}/no/x.png"], "folder '{tmp}/no' of '{tmp}/no/x.png' does not"),
    (["demo", "--plot", "{tmp}/no/x.png"], "argument --plot: folder '{tmp}/no' of '{tmp}/no/x."),
    (["demo", "--plot", "{tmp}/x.svg"], "argument --plot: must be a file name ending in .png"),
    (["demo", "--plot", "{tmp}"], "argument --plot: '{tmp}' is a folder"),
    (["demo", "--plot", ""], "argument --plot: must be a file name ending in .png, got ''"),
    (["demo", "--dataset", "circles"], "argument --dataset: invalid choice: 'circles'"),
    (["demo", "--activation", "softmax"], "argument --activation: 'softmax' is not elementwise"),
    (["demo", "--activation", "nosuch"], "argument --activation: unknown activation 'nosuch'"),
    (
        ["demo", "--epochs", "0"],
        "argument --epochs: must be an integer from 1 to 1,000,000, got '0'",
    ),
    (["demo", "--epochs", "1.5"], "argument --epochs: must be an integer from 1 to 1,000,000, got"),
    (["demo", "--epochs", "-3"], "argument --epochs: must be an integer from 1 to 1,000,000, got"),
    (["demo", "--hidden", "100000"], "argument --hidden: must be an integer from 1 to 1,024, got"),
    (
        ["demo", "--hidden", "ten"],
        "argument --hidden: must be an integer from 1 to 1,024, got 'ten'",
    ),
    (["demo", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["demo", "--seed", "-1"], "argument --seed: must be an integer >= 0, got '-1'"),
    (["demo", "--lr", "inf"], "argument --lr: must be a finite number > 0, got 'inf'"),
    (["demo", "--lr", "-inf"], "argument --lr: must be a finite number > 0, got '-inf'"),
    (["demo", "--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    (["demo", "--lr", "0"], "argument --lr: must be a finite number > 0, got '0'"),
    (["demo", "--lr", "-1"], "argument --lr: must be a finite number > 0, got '-1'"),
    (["demo", "--lr", "fast"], "argument --lr: must be a finite number > 0, got 'fast'"),
    (["demo", "--lr"], "argument --lr: expected one argument"),
    (["demo", "extra"], "unrecognized arguments: extra"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_and_exit_code_2_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = str(tmp_path)
    assert main([arg.replace("{tmp}", tmp) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing started
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("tinygrad-act")
    assert message.replace("{tmp}", tmp) in captured.err
    assert "_integer" not in captured.err  # no private names
    assert "parse" not in captured.err
    assert os.listdir(tmp_path) == []


def test_bare_invocation_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: tinygrad-act [-h] [--version] COMMAND ...")
    for command in ("show", "check", "demo", "plot"):
        assert f"    {command} " in captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tinygrad-act {importlib.metadata.version('tinygrad_act')}\n"
    assert main(["--help"]) == 0
    assert "  --version   show program's version number and exit\n" in capsys.readouterr().out


def test_package_metadata_has_license_authors_and_urls() -> None:
    metadata = importlib.metadata.metadata("tinygrad_act")
    assert metadata["Author"] == "tinygrad_act developers"
    assert metadata["License-Expression"] == "MIT"
    repository = "https://github.com/tinygrad-act/tinygrad_act"
    assert metadata.get_all("Project-URL") == [
        f"Homepage, {repository}",
        f"Repository, {repository}",
        f"Issues, {repository}/issues",
    ]
    licenses = [f for f in importlib.metadata.files("tinygrad_act") or [] if f.name == "LICENSE"]
    assert len(licenses) == 1
    assert "MIT License" in licenses[0].read_text()
    assert "tinygrad_act developers" in licenses[0].read_text()


@pytest.mark.parametrize("command", ["show", "plot"])
def test_help_lists_the_activations(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    # GLU halves its input, which show's table of x, f(x) and f'(x) cannot print
    listed = [name for name in sorted(ACTIVATIONS) if command == "plot" or name != "glu"]
    assert f"one of: {', '.join(listed)}" in help_text


def test_demo_help_lists_names_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{moons,spirals,xor}" in help_text
    assert "data set (default: moons)" in help_text
    assert "(default: tanh)" in help_text
    elementwise = sorted(n for n, cls in ACTIVATIONS.items() if issubclass(cls, Activation))
    assert f"one of: {', '.join(elementwise)} (default: tanh)" in help_text
    assert "softmax" not in elementwise
    assert "(default per data set: moons 16, spirals 32, xor 8)" in help_text
    assert "(default per data set: moons 500, spirals 1000, xor 300)" in help_text
    assert "(default per data set: moons 0.02, spirals 0.01, xor 0.05)" in help_text
    assert "(default: all points, full-batch)" in help_text
    assert "seed of the data and weights (default: 0)" in help_text
    assert "130 interrupted" in help_text


def test_check_help_shows_the_default_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    assert "random seed (default: 0)" in capsys.readouterr().out


def test_demo_takes_negative_looking_values_after_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--dataset", "xor", "--epochs", "2", "--lr", "-1e-3"]) == 2
    assert "argument --lr: must be a finite number > 0, got '-1e-3'" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_code_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted)
    assert main(["demo", "--dataset", "xor"]) == 130
    assert capsys.readouterr().err == "tinygrad-act: interrupted\n"


def test_out_of_memory_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(cli, "train", out_of_memory)
    assert main(["demo", "--hidden", "1024"]) == 1
    assert capsys.readouterr().err == "tinygrad-act: out of memory; try smaller settings\n"


def test_diverging_training_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dataset", "xor", "--epochs", "5", "--lr", "1e300"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tinygrad-act: training diverged: the loss is ")
    assert "try a smaller learning rate than 1e+300" in err


def test_demo_with_batches_and_a_plot_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "demo.png"
    argv = ["demo", "--dataset", "moons", "--epochs", "3", "--batch-size", "64"]
    assert main([*argv, "--plot", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "training a 2-16-16-1 MLP (tanh) on moons for 3 epochs, Adam lr=0.02, batches of 64, seed 0"
    )
    assert lines[-1] == f"wrote {output}"
    assert output.read_bytes()[:4] == b"\x89PNG"


def test_module_entry_point_runs_with_negative_values() -> None:
    result = run_module("show", "sigmoid", "0", "-inf")
    assert result.returncode == 0
    assert table(result.stdout) == [["0", "0.5", "0.25"], ["-inf", "0", "0"]]


def test_module_entry_point_bare_and_version() -> None:
    bare = run_module()
    assert bare.returncode == 2
    assert bare.stderr.startswith("usage: tinygrad-act")
    version = run_module("--version")
    assert (version.returncode, version.stdout.split()) == (0, ["tinygrad-act", cli.version()])


def test_module_entry_point_refuses_an_infinite_learning_rate() -> None:
    result = run_module("demo", "--lr", "inf")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "tinygrad-act demo: error: argument --lr: must be a finite number > 0, got 'inf'\n"
    )


def test_the_demo_loads_numpy_random_before_it_says_it_is_training() -> None:
    """A Ctrl-C that arrives while NumPy loads numpy.random's compiled modules, on first
    use, is lost there: the demo trained on after 4 of 30 such Ctrl-Cs. The demo loads it
    before its first line, after which a user (and the next test) may press Ctrl-C."""
    code = (
        "import sys, builtins\n"
        "from tinygrad_act import cli\n"
        "def first(*args, **kwargs):\n"
        "    sys.stderr.write(str('numpy.random' in sys.modules))\n"
        "    sys.exit(0)\n"
        "builtins.print = first\n"
        "cli.main(['demo', '--epochs', '1'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "True")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is how Ctrl-C arrives on POSIX")
def test_module_entry_point_ctrl_c_exits_130() -> None:
    argv = [sys.executable, "-u", "-m", "tinygrad_act", "demo", "--epochs", "1000000"]
    # a child inherits an ignored SIGINT, and Python then installs no handler for it:
    # start the demo as a terminal would, with SIGINT handled
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    with process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("training a 2-16-16-1 MLP")
        # one Ctrl-C, waited for as long as a starved machine needs: a second one sent while
        # the first is reported, or while Python shuts down with SIGINT's default action
        # back in place, kills the demo (-2) as it would from a terminal
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the demo kept training 240 s after one SIGINT")
    assert process.returncode == 130
    assert err == "tinygrad-act: interrupted\n"


def test_bad_environment_settings_are_one_line_and_exit_code_2() -> None:
    for variable, value in (("TINYGRAD_ACT_ENGINE", "bogus"), ("TINYGRAD_ACT_NUM_THREADS", "0")):
        env = {**os.environ, variable: value}
        run = subprocess.run(
            [sys.executable, "-m", "tinygrad_act", "show", "sigmoid", "1"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert run.returncode == 2
        assert run.stdout == ""
        assert run.stderr.count("\n") == 1
        assert variable in run.stderr
        assert repr(value) in run.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_file_that_cannot_be_made_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /proc takes no new files, whatever its permissions and the user (root included)
    assert main(["demo", "--plot", "/proc/x.png"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # as root, the file's creation fails (no such file); otherwise the permissions say so
    assert captured.err in (
        f"tinygrad-act demo: error: argument --plot: cannot write '/proc/x.png': {reason}\n"
        for reason in ("No such file or directory", "permission denied")
    )


def test_checking_an_output_file_leaves_the_folder_and_the_file_as_they_were(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.png"
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"old contents")
    for path in (new, kept):
        parsed = cli._build_parser().parse_args(["plot", "relu", "-o", str(path)])
        assert parsed.output == path
    assert sorted(tmp_path.iterdir()) == [kept]
    assert kept.read_bytes() == b"old contents"


def test_show_and_plot_use_rrelu_in_inference(capsys: pytest.CaptureFixture[str]) -> None:
    """RReLU's slopes are random while training; show gives their mean, every time."""
    outputs = []
    for _ in range(2):
        assert main(["show", "rrelu", "-1"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    mean = (1 / 8 + 1 / 3) / 2
    assert outputs[0].splitlines()[1].split() == ["-1", f"{-mean:.8g}", f"{mean:.8g}"]


@pytest.mark.parametrize("command", ["show", "plot", "demo", "check"])
def test_help_says_no_default_twice_and_no_default_of_none(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    assert ") (default:" not in text


def test_show_without_a_name_asks_for_the_name_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show"]) == 2
    assert capsys.readouterr().err.strip().endswith("the following arguments are required: NAME")
