"""Training dynamics match the stored baseline of the same TensorFlow version.

A mismatch writes ``<baseline>.obtained`` beside the baseline and fails with an
Obtained / Expected / Difference table; ``--regen-baselines`` rewrites baselines, never silently.
"""

import json
from pathlib import Path

import pytest

from fixtures.broken_models import model_spec
from training_health.checks.baselines import baseline_path, compare, dumps, summarize, table, tf_series
from training_health.model.initializations import INITIALIZATIONS
from training_health.probe.training_probe import ProbeConfig

BASELINE_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "baselines"

BASELINE_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "baselines"


def check_against_baseline(traj, path, regenerate: bool) -> None:
    __tracebackhide__ = True
    obtained = summarize(traj)
    if regenerate:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(obtained))
        return
    if not path.exists():
        pytest.skip(f"no {tf_series()} baseline {path.name}: create it with pytest --regen-baselines")
    rows = compare(obtained, json.loads(path.read_text()))
    if rows:
        path.with_suffix(".obtained").write_text(dumps(obtained))
        pytest.fail(
            f"training dynamics differ from {path} beyond their tolerance ({traj.config.context()}):\n{table(rows)}\n"
            f"obtained values: {path.with_suffix('.obtained')}; accept them with --regen-baselines",
            pytrace=False,
        )


@pytest.mark.parametrize("initializer", INITIALIZATIONS)
def test_dynamics_match_baseline(health_trajectories, initializer, health_device, health_mode, pytestconfig):
    config = ProbeConfig(initializer=initializer, device=health_device, mode=health_mode)
    traj = health_trajectories.get(config)
    path = baseline_path(BASELINE_ROOT, traj.config.id)
    check_against_baseline(traj, path, pytestconfig.getoption("health_regen_baselines"))


def test_perturbed_baseline_fails_with_table(health_trajectories, tmp_path):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal"))
    summary = summarize(traj)
    summary["parameters"]["conv2/kernel"]["relative_change"] *= 1.25
    path = tmp_path / "he_normal.json"
    path.write_text(dumps(summary))
    with pytest.raises(pytest.fail.Exception) as caught:
        check_against_baseline(traj, path, regenerate=False)
    message = str(caught.value)
    assert "Obtained" in message and "Expected" in message and "Difference" in message
    assert "conv2/kernel" in message and "relative_change" in message and "20.0%" in message
    assert path.with_suffix(".obtained").exists()


def baseline_rows(traj) -> list[tuple]:
    path = baseline_path(BASELINE_ROOT, ProbeConfig(initializer="he_normal").id)
    if not path.exists():
        pytest.skip(f"no {tf_series()} baseline {path.name}")
    return compare(summarize(traj), json.loads(path.read_text()))


def test_ten_percent_larger_init_of_one_layer_is_caught(health_trajectories):
    """Negative control: conv2's kernel initialized 10% larger; the step-0 numbers move first."""
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", model=model_spec("scaled_init:conv2")))
    rows = baseline_rows(traj)
    assert ("conv2/kernel", "update_ratio @0") in {row[:2] for row in rows}, table(rows)
    assert ("loss", "loss @0") in {row[:2] for row in rows}, table(rows)


def test_ten_percent_larger_learning_rate_is_caught(health_trajectories):
    """Negative control: Adam's first update is proportional to the learning rate, for every parameter."""
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", learning_rate=1.1e-3))
    flagged = {layer for layer, metric, *_ in baseline_rows(traj) if metric == "update_ratio @0"}
    assert flagged >= {"conv1/kernel", "conv2/kernel", "fc1/kernel", "out/kernel"}, flagged
