"""What the probe writes for later comparison: JSON per configuration, and the per-step
series the plots and TensorBoard summaries are drawn from."""

import json

import numpy as np
import pytest

from fixtures.broken_models import NAN_FROM_STEP, model_spec
from training_health.probe.training_probe import ProbeConfig
from training_health.report.dynamics_plots import series
from training_health.report.table import read_json, write_json


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


def refuse_constant(name):
    raise ValueError(f"bare {name} in the probe JSON: not JSON (RFC 8259)")


def test_nan_run_writes_strict_json_that_reads_back_as_nan(health_trajectories, tmp_path):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", model=model_spec("nan_midrun:conv2")))
    path = write_json(traj, tmp_path)
    strict = json.loads(path.read_text(), parse_constant=refuse_constant)
    measured = traj.column("grad_norm", "conv2/kernel")
    first_nan = int(np.argmax(np.isnan(measured)))
    assert first_nan == NAN_FROM_STEP - 1  # the 10th step (the control's count starts at 1)
    conv2 = traj.parameters.index("conv2/kernel")
    assert strict["per_step"]["grad_norm"][first_nan][conv2] == "NaN"  # spelt out as a string
    assert np.array_equal(series(read_json(path))["conv2/kernel"]["grad norm"], measured, equal_nan=True)


def test_dynamics_plot_shows_loss_and_shaded_bounds(he_normal_json, health_thresholds):
    from training_health.report.dynamics_plots import dynamics_figure, min_change_curve

    traj, data = he_normal_json
    figure = dynamics_figure(data, health_thresholds)
    titles = [ax.get_title() for ax in figure.axes]
    assert "loss" in titles
    low, high = health_thresholds.grad_norm_bounds("conv1/kernel")
    grad_ax = next(ax for ax in figure.axes if ax.get_title().startswith("conv1/kernel gradient"))
    assert f"band {low:.2g} .. {high:.3g}" in grad_ax.get_title() and grad_ax.patches  # the shaded band
    curve = min_change_curve(health_thresholds, "he_normal", "conv1/kernel", traj.config.steps)
    final = health_thresholds.min_relative_change("he_normal", "conv1/kernel", traj.config.steps)
    assert curve[-1] == pytest.approx(final) and curve[0] < curve[-1]  # rescaled to each step
    change_ax = next(ax for ax in figure.axes if ax.get_title().startswith("conv1/kernel\n"))
    assert change_ax.collections  # the shaded region below the minimum


def test_dynamics_plot_png_beside_its_json(he_normal_json, tmp_path, health_thresholds):
    from training_health.report.dynamics_plots import plot

    traj, _ = he_normal_json
    png = plot(tmp_path / f"{traj.config.id}.json", health_thresholds)
    assert png == tmp_path / f"{traj.config.id}.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_gradient_zero_at_every_step_is_drawn_without_a_warning():
    """A dead or blocked layer's gradient is exactly 0: its log-scaled panel made matplotlib warn ("Data has no
    positive values"), which leaked into pytest's warnings summary and, under -W error::UserWarning, replaced a
    seventh user's verdict with a traceback. Steps are counted from 0 in the plot, as in every message."""
    import warnings

    from tests.test_diagnosis_fixes import trajectory
    from training_health.checks.thresholds import load_thresholds
    from training_health.report.dynamics_plots import dynamics_figure
    from training_health.report.table import to_jsonable

    traj = trajectory("Adam lr=0.001, loss sparse_categorical_crossentropy", 0.001)
    traj.per_step["grad_norm"][:, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = dynamics_figure(to_jsonable(traj), load_thresholds())
    titles = [ax.get_title() for ax in figure.axes]
    assert any("hidden/kernel gradient L2 norm: 0 at every step" in t for t in titles), titles
    loss_ax = next(ax for ax in figure.axes if ax.get_title() == "loss")
    assert loss_ax.lines[0].get_xdata()[0] == 0


def test_the_json_config_quotes_the_rate_the_run_used():
    """A compiled model at Adam 1.0: the JSON's config said learning_rate 0.001 (the suite recipe's, unused) beside
    recipe "Adam lr=1" (a seventh user). A run on the suite's own recipe keeps its config's rate."""
    from tests.test_diagnosis_fixes import trajectory
    from training_health.model.recipe import SUITE_OPTIMIZER, Recipe
    from training_health.report.table import to_jsonable

    traj = trajectory("Adam lr=1, loss sparse_categorical_crossentropy", 1.0)
    traj.facts = Recipe(optimizer="Adam", learning_rate=1.0)
    assert to_jsonable(traj)["config"]["learning_rate"] == 1.0
    traj.facts = Recipe(optimizer=SUITE_OPTIMIZER, learning_rate=traj.config.learning_rate)
    assert to_jsonable(traj)["config"]["learning_rate"] == traj.config.learning_rate
