"""The data sets and the training demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinygrad_act.cli import main
from tinygrad_act.datasets import DATASETS
from tinygrad_act.demo import mlp, train


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_datasets_are_seeded_balanced_and_two_dimensional(name: str) -> None:
    x, y = DATASETS[name](seed=3)
    x2, y2 = DATASETS[name](seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (len(y), 2)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - 0.5) < 0.1
    assert not np.array_equal(x, DATASETS[name](seed=4)[0])


def test_xor_labels_follow_the_quadrants() -> None:
    x, y = DATASETS["xor"](noise=0.0)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(float))


def test_training_xor_reaches_100_percent() -> None:
    result = train("xor", activation="tanh", seed=0)
    assert result.accuracy == 1.0
    assert result.losses[-1] < 0.01 < result.losses[0]


def test_training_is_deterministic_for_a_seed() -> None:
    first = train("moons", epochs=20, seed=5)
    second = train("moons", epochs=20, seed=5)
    assert first.losses == second.losses


def test_mlp_needs_an_elementwise_activation() -> None:
    with pytest.raises(ValueError, match="elementwise"):
        mlp("softmax", 4, 0)


def test_demo_command_line_at_tiny_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "demo.png"
    argv = ["demo", "--dataset", "spirals", "--activation", "relu", "--hidden", "4"]
    assert main([*argv, "--epochs", "10", "--lr", "0.01", "--plot", str(output)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training a 2-4-4-1 MLP (relu) on spirals for 10 epochs")
    assert [line.split()[1] for line in lines[1:11]] == [f"{e}/10" for e in range(1, 11)]
    assert lines[-2].startswith("final training accuracy ")
    assert output.read_bytes()[:4] == b"\x89PNG"
