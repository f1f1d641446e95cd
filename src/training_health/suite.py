"""The built-in checks, collected by ``pytest --health-model ...`` (or ``--health-suite``) in any project.

``pytest -k layer_updates`` selects them: one test per layer and grid cell, reading the cell's
single cached training run. A project can also collect them from a test module of its own with
``from training_health.suite import *``.
"""

from __future__ import annotations

from pathlib import Path

from training_health.checks.health_checks import assert_layer_healthy
from training_health.model.user_model import parameters_of
from training_health.report.kernel_pictures import pictures_on_failure

__all__ = ["test_layer_updates"]


def test_layer_updates(health_trajectory, health_thresholds, health_layer, pytestconfig):
    """Every per-layer check on this layer; all of its failures are reported together."""
    traj = health_trajectory
    params = parameters_of(traj.parameters, health_layer)
    assert params, f"layer {health_layer} has no trainable parameters"
    pictures = Path(pytestconfig.getoption("health_probe_output")) / "kernels"
    with pictures_on_failure(traj, params, pictures):
        assert_layer_healthy(traj, health_thresholds, health_layer)
