"""What the probe writes for later comparison: JSON per configuration, and the per-step
series the plots and TensorBoard summaries are drawn from."""

import json

import numpy as np
import pytest

from training_health.probe.training_probe import ProbeConfig
from training_health.report.dynamics_plots import series
from training_health.report.table import write_json


@pytest.fixture
def he_normal_json(health_trajectories, tmp_path):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal"))
    return traj, json.loads(write_json(traj, tmp_path).read_text())


def test_json_holds_context_and_every_parameter(he_normal_json):
    traj, data = he_normal_json
    assert data["config"]["id"] == traj.config.id and data["tf_version"] == traj.tf_version
    assert set(data["relative_change"]) == set(traj.parameters)
    assert len(data["loss"]) == traj.config.steps


def test_per_step_change_ends_at_the_final_relative_change(he_normal_json):
    traj, data = he_normal_json
    for name, metrics in series(data).items():
        assert metrics["relative change"][-1] == pytest.approx(traj.relative_change(name), rel=1e-4)
        assert np.all(np.diff(metrics["relative change"][:3]) > 0), name  # it grows from step 1
