"""Training dynamics match the stored baseline of the same TensorFlow version.

A mismatch writes ``<baseline>.obtained`` beside the baseline and fails with an
Obtained / Expected / Difference table; ``--regen-baselines`` rewrites baselines, never silently.
"""

import json
from pathlib import Path

import pytest

from training_health.checks.baselines import RTOL, baseline_path, compare, dumps, summarize, table, tf_series
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
            f"training dynamics differ from {path} beyond {RTOL:.0%} ({traj.config.context()}):\n{table(rows)}\n"
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
