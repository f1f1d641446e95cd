"""The same checks work on a user's own model given as ``--model MODULE:FUNCTION``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_health.checks.health_checks import (
    HealthCheckError,
    assert_all_finite,
    assert_grad_norm_within,
    assert_gradients_connected,
    assert_layer_weights_moved,
)
from training_health.checks.run_checks import run_check_names
from training_health.probe.training_probe import ProbeConfig

HEALTHY_MODEL = "fixtures.user_models.keras_convnet:build"
BLOCKED_MODEL = "fixtures.user_models.keras_convnet:build_blocked"
ROOT = Path(__file__).resolve().parent.parent


def test_user_model_passes_the_checks(health_trajectories, health_thresholds):
    traj = health_trajectories.get(ProbeConfig(model=HEALTHY_MODEL, initializer="default"))
    assert len(traj.parameters) == 4, traj.parameters
    assert_gradients_connected(traj)
    assert_all_finite(traj)
    assert_layer_weights_moved(traj, health_thresholds)
    assert_grad_norm_within(traj, health_thresholds)


def test_user_model_with_blocked_gradient_is_caught(health_trajectories):
    traj = health_trajectories.get(ProbeConfig(model=BLOCKED_MODEL, initializer="default"))
    with pytest.raises(HealthCheckError, match="gradient disconnected") as caught:
        assert_gradients_connected(traj)
    assert sorted(o.name.rsplit("/", 1)[-1] for o in caught.value.offenders) == ["bias", "kernel"]
    assert all("conv" in o.name for o in caught.value.offenders)


@pytest.mark.subprocess
def test_model_option_from_the_command_line(tmp_path):
    """The documented CLI path, from a folder outside this repository."""
    command = [sys.executable, "-m", "pytest", "--health-model", BLOCKED_MODEL, "--health-devices=cpu"]
    command += ["--health-steps", "10", "-p", "no:cacheprovider", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the example models live in this repository's fixtures/
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "test_layer_updates[default-cpu-graph-" in result.stdout
    assert (
        "gradient disconnected" in result.stdout and f"1 failed, {1 + len(run_check_names())} passed" in result.stdout
    ), result.stdout[-3000:]
