"""Training dynamics match the stored baseline of the same TensorFlow version.

A mismatch writes ``<baseline>.obtained`` beside the baseline and fails with an
Obtained / Expected / Difference table. ``--health-regen-baselines`` rewrites the baselines that
differ, ``--health-add-baselines`` writes missing ones; the terminal summary lists each file written.
What they write, and what they leave alone: tests/test_regen_baselines.py.
"""

import json
from pathlib import Path

import pytest

from fixtures.broken_models import model_spec
from training_health.checks import baselines
from training_health.checks.baselines import baseline_path, compare, dumps, summarize, table, tf_series
from training_health.model.initializations import INITIALIZATIONS
from training_health.probe.training_probe import ProbeConfig
from training_health.session_report import BASELINE_PROPERTY

BASELINE_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "baselines"


def check_against_baseline(traj, path, regenerate=False, add=False, record=lambda name, value: None) -> str:
    """Fails with the table when the run differs from the baseline; returns what was done to the file."""
    __tracebackhide__ = True
    outcome, rows = baselines.settle(path, summarize(traj), regenerate=regenerate, add=add)
    if outcome in (baselines.REWRITTEN, baselines.ADDED):
        record(BASELINE_PROPERTY, f"{outcome}: {path}")
    if outcome == baselines.MISSING:
        pytest.skip(f"no {tf_series()} baseline {path}: write it with pytest --health-add-baselines")
    if outcome == baselines.DIFFERS:
        obtained = baselines.obtained_path(path)
        pytest.fail(
            f"training dynamics differ from {path} beyond their tolerance ({traj.config.context()}):\n{table(rows)}\n"
            f"obtained values: {obtained}; accept them with --health-regen-baselines",
            pytrace=False,
        )
    return outcome


@pytest.mark.parametrize("initializer", INITIALIZATIONS)
def test_dynamics_match_baseline(
    health_trajectories, initializer, health_device, health_mode, pytestconfig, record_property
):
    config = ProbeConfig(initializer=initializer, device=health_device, mode=health_mode)
    traj = health_trajectories.get(config)
    path = baseline_path(BASELINE_ROOT, traj.config.id)
    regenerate, add = (pytestconfig.getoption(o) for o in ("health_regen_baselines", "health_add_baselines"))
    check_against_baseline(traj, path, regenerate, add, record_property)


def test_perturbed_baseline_fails_with_table(health_trajectories, tmp_path):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal"))
    summary = summarize(traj)
    summary["parameters"]["conv2/kernel"]["relative_change"] *= 1.25
    path = tmp_path / "he_normal.json"
    path.write_text(dumps(summary))
    with pytest.raises(pytest.fail.Exception) as caught:
        check_against_baseline(traj, path)
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
