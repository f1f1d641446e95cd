"""The bounds hold from ``min_steps`` on (measured: see checks/thresholds.py); fewer steps are refused up front."""

import subprocess
import sys
from pathlib import Path

import pytest

from training_health.checks.health_checks import assert_layer_healthy
from training_health.model.initializations import HEALTHY
from training_health.probe.training_probe import ProbeConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.subprocess
def test_layer_updates_refuse_fewer_steps_than_the_bounds_hold_for(health_thresholds):
    too_few = health_thresholds.min_steps - 1
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests/test_health_suite.py"]
    command += ["--health-steps", str(too_few), "-k", "layer_updates"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    expected = f"--health-steps {too_few}: the bounds in thresholds.toml (calibrated at 30 steps) hold from"
    assert expected in result.stderr and f"Give --health-steps {health_thresholds.min_steps} or more" in result.stderr


@pytest.mark.parametrize("init", HEALTHY)
def test_layer_updates_pass_healthy_inits_at_the_fewest_steps(health_trajectories, health_thresholds, init):
    traj = health_trajectories.get(ProbeConfig(initializer=init, steps=health_thresholds.min_steps))
    for layer in ("conv1", "conv2", "fc1", "out"):
        assert_layer_healthy(traj, health_thresholds, layer)
