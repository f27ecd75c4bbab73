"""The training demo: defaults that train every data set smoothly, batches, the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_act import _engine
from tinygrad_act.cli import main
from tinygrad_act.datasets import DATASETS
from tinygrad_act.demo import DEFAULTS, choose_engine, figure, mlp, train


@pytest.mark.parametrize("dataset", ["xor", "moons"])
def test_defaults_reach_100_percent(dataset: str) -> None:
    result = train(dataset, seed=0)
    assert result.accuracy == 1.0
    assert len(result.losses) == DEFAULTS[dataset]["epochs"]
    assert result.losses[-1] < 0.01 < result.losses[0]


@pytest.mark.parametrize("seed", [0, 2])
def test_default_spirals_run_never_collapses(seed: int) -> None:
    # The old defaults fell from 100% to 41% accuracy halfway on seed 0, with a loss spike.
    accuracies: list[float] = []
    result = train("spirals", seed=seed, reports=100, progress=lambda *a: accuracies.append(a[3]))
    losses = np.array(result.losses)
    assert result.accuracy == 1.0
    assert np.max(losses / np.minimum.accumulate(losses)) < 1.25  # never far above its best
    past_90 = np.array(accuracies[np.argmax(np.array(accuracies) >= 0.9) :])
    assert past_90[0] >= 0.9
    assert np.max(np.maximum.accumulate(past_90) - past_90) <= 0.03  # at most 3 points down


def test_training_is_deterministic_for_a_seed() -> None:
    first = train("moons", epochs=20, seed=5)
    second = train("moons", epochs=20, seed=5)
    assert first.losses == second.losses
    assert first.losses != train("moons", epochs=20, seed=6).losses


def test_mini_batches_are_seeded_and_take_more_steps() -> None:
    full = train("moons", epochs=5, seed=1)
    batched = train("moons", epochs=5, seed=1, batch_size=50)
    assert batched.losses == train("moons", epochs=5, seed=1, batch_size=50).losses
    assert batched.losses[0] == full.losses[0]  # the same data and initial weights
    assert batched.losses[-1] < full.losses[-1]  # 8 Adam steps per epoch instead of 1


def test_a_diverging_run_raises_at_once() -> None:
    with pytest.raises(FloatingPointError, match=r"training diverged: .* at epoch 2, from 0\.7"):
        train("xor", epochs=100, lr=1e300)


def test_mlp_needs_an_elementwise_activation() -> None:
    with pytest.raises(ValueError, match="elementwise"):
        mlp("softmax", 4, 0)


def test_the_picture_has_axes_legend_and_title() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib import pyplot as plt

    result = train("spirals", activation="relu", hidden=4, epochs=10, seed=0)
    drawing = figure(result)
    try:
        boundary, loss = drawing.axes[:2]
        assert (boundary.get_xlabel(), boundary.get_ylabel()) == ("x1", "x2")
        legend = boundary.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == ["class 0", "class 1"]
        assert (loss.get_xlabel(), loss.get_ylabel()) == ("epoch", "loss")
        title = f"spirals: 2-4-4-1 MLP with relu, training accuracy {result.accuracy:.1%}"
        assert [text.get_text() for text in drawing.texts] == [title]  # the suptitle
    finally:
        plt.close(drawing)


def test_demo_command_line_at_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "demo.png"
    argv = ["demo", "--dataset", "spirals", "--activation", "relu", "--hidden", "4"]
    assert main([*argv, "--epochs", "10", "--lr", "0.01", "--plot", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training a 2-4-4-1 MLP (relu) on spirals for 10 epochs")
    assert [line.split()[1] for line in lines[1:11]] == [f"{e}/10" for e in range(1, 11)]
    assert lines[-2].startswith("final training accuracy ")
    assert lines[-2].endswith(
        f" on the {choose_engine(len(DATASETS['spirals']()[0]), 4, 10, None)} engine"
    )
    assert lines[-1] == f"wrote {output}"
    assert output.read_bytes()[:4] == b"\x89PNG"


def test_auto_runs_short_trainings_on_numpy_and_long_ones_compiled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(_engine.ENGINE_VARIABLE, raising=False)
    monkeypatch.setattr(_engine, "_ENGINE", None)  # chosen again, without the variable
    compiled = "numba" if "numba" in _engine.available_engines() else "numpy"
    for name, settings in DEFAULTS.items():  # every default run is short: 0.1 s at most
        points = len(DATASETS[name]()[0])
        hidden, epochs = int(settings["hidden"]), int(settings["epochs"])
        assert choose_engine(points, hidden, epochs, None) == "numpy"
    assert choose_engine(400, 1024, 500, None) == compiled  # wide layers
    assert choose_engine(400, 16, 100_000, None) == compiled  # many steps
    assert choose_engine(400, 16, 100, batch_size=1) == compiled  # 40,000 small steps
    assert choose_engine(400, 16, 100, batch_size=100_000) == "numpy"  # one batch of 400
    with _engine.using("numpy"):
        assert choose_engine(400, 1024, 500, None) == "numpy"


@pytest.mark.skipif("numba" not in _engine.available_engines(), reason="numba is not installed")
def test_an_engine_in_the_environment_is_kept_and_both_engines_train_alike(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(_engine.ENGINE_VARIABLE, "numba")
    with _engine.using("numba"):
        assert choose_engine(400, 16, 10, None) == "numba"
    runs = {name: train("moons", epochs=20, seed=3, engine=name) for name in ("numba", "numpy")}
    assert [run.engine for run in runs.values()] == ["numba", "numpy"]
    # the engines round differently by an ulp or so (each within its bounds): not the bits
    np.testing.assert_allclose(runs["numba"].losses, runs["numpy"].losses, rtol=1e-12)
    assert main(["demo", "--dataset", "xor", "--epochs", "2", "--engine", "numpy"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" on the numpy engine")


def test_bad_arguments_are_refused_with_the_valid_names_or_values() -> None:
    with pytest.raises(
        ValueError, match="train: unknown engine 'fast'; valid names: auto, numba, numpy"
    ):
        train("xor", epochs=1, engine="fast")
    with pytest.raises(ValueError, match="train: batch_size must be positive, got 0"):
        train("xor", epochs=1, batch_size=0)
    with pytest.raises(TypeError, match="train: epochs must be an int, got '5'"):
        train("xor", epochs="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="out_features must be an int, got '4'"):
        train("xor", epochs=1, hidden="4")  # type: ignore[arg-type]
