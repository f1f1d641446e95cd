"""The time to a verdict (issues 16 and 17): what the summary prints, and the repeated work cut from it without
changing a number (a run that starts where another did reuses its measured outputs; overfit_batch and
batch_independence share one fresh model, which fitting leaves untrained; the initial draws are kept).

No timed asserts: the ratios are printed by the summary and recorded in docs/measurements.md.
"""

import collections
import subprocess
import sys

import numpy as np
import pytest

from training_health.checks.run_checks import RUN_CHECKS, RunContext, run_check_names
from training_health.model.initializations import initial_value
from training_health.probe import training_loop
from training_health.probe.training_loop import output_measurements
from training_health.probe.training_probe import PROBE_EXAMPLES, ProbeConfig, run_probe
from training_health.report.time_split import time_split_of, time_to_verdict

run_check_names()


def test_time_to_verdict_prints_each_ratio_beside_its_target():
    totals = {"train": 10.0, "trace": 1.0, "measure": 2.0, "build": 0.4, "checks": 1.0}
    line = time_to_verdict(totals, wall=18.0, startup=3.0, runs=2, tf_import=2.5)
    assert line.startswith("18.0 s = TF import 2.5 s + 1.55x training 10.0 s (target <= 1.3x: over); "), line
    assert "1.80x training (target <= 1.5x: over)" in line, line
    assert "start-up 3.0 s = 1.11x (TF import 2.5 s + building one model 0.2 s) (target <= 1.5x)" in line, line
    met = time_to_verdict(totals, wall=14.0, startup=4.5, runs=2, tf_import=2.5)
    assert "1.15x training 10.0 s (target <= 1.3x);" in met and "1.40x training (target <= 1.5x);" in met, met
    assert "start-up 4.5 s = 1.67x (TF import 2.5 s + building one model 0.2 s) (target <= 1.5x: over)" in met, met


def test_time_to_verdict_under_workers_judges_one_worker_s_share():
    """Two workers import TensorFlow and train side by side: the slowest import is subtracted once and the wall
    is set against one worker's share of the summed training."""
    line = time_to_verdict({"train": 20.0}, wall=18.0, startup=3.0, runs=2, workers=2, tf_import=2.5)
    assert line.startswith("18.0 s = TF import 2.5 s + 1.55x training 10.0 s per worker (20.0 s over 2)"), line
    assert "1.80x training (target <= 1.5x: over)" in line, line


def test_time_to_verdict_says_nothing_it_cannot_measure():
    totals = {"train": 10.0}
    assert time_to_verdict({"train": 0.0}, wall=5.0, startup=3.0, runs=1, tf_import=2.5) == ""  # no training
    assert "training 10.0 s of 18.0 s wall (1.80x)" in time_split_of(totals, 18.0, 3.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process_age reads /proc (elsewhere it is 0.0)")
def test_wall_time_counts_from_the_process_start():
    code = "import time; time.sleep(0.5); import training_health.report.time_split as t; print(t.process_age())"
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0.5 <= age < 60, age


def test_initial_draws_kept_for_the_session_are_copies():
    first = initial_value("he_normal", 0, "fc1/kernel", (3136, 1024))
    first[:] = 0  # a caller changing its own array changes no later draw
    again = initial_value("he_normal", 0, "fc1/kernel", (3136, 1024))
    assert again.std() > 0 and not np.shares_memory(first, again)


def test_a_run_starting_where_another_did_reuses_exactly_what_would_be_measured(health_training_data, monkeypatch):
    monkeypatch.setattr(training_loop, "_LOOPS", collections.OrderedDict())
    first = run_probe(ProbeConfig("he_normal", steps=3), health_training_data)
    (loop,) = training_loop._LOOPS.values()
    again = run_probe(ProbeConfig("he_normal", steps=4), health_training_data)
    other = run_probe(ProbeConfig("glorot_uniform", steps=3), health_training_data)
    assert len(loop.starts) == 2, "he_normal's start should have been measured once, glorot_uniform's once"
    model = ProbeConfig("he_normal").build_model()  # measured afresh, on a model that never trained
    images = health_training_data.to_model_input(health_training_data.train_images[:PROBE_EXAMPLES])
    fresh = output_measurements(model, images)
    for traj in (first, again):
        assert traj.dead_fraction_start == {k: float(v) for k, v in fresh["dead"].items()}
        assert traj.logit_std_start == float(fresh["logit_std"])
        assert traj.outputs_start["rms"] == float(fresh["rms"])
    assert other.logit_std_start != first.logit_std_start  # another start is measured, not reused


def test_overfit_batch_leaves_the_shared_fresh_model_untrained(
    health_trajectories, health_training_data, health_thresholds
):
    config = ProbeConfig(initializer="he_normal")
    run = RunContext(
        trajectory=health_trajectories.get(config),
        data=health_training_data,
        thresholds=health_thresholds,
        trained_model=lambda: health_trajectories.trained_model(config),
        fresh_model=config.build_model,
    )
    assert RUN_CHECKS["overfit_batch"](run) == []
    assert run.trajectory.derived["fit_one_batch"]["steps"] > 0  # it trained the shared model's values
    shared, built = run.fresh(), config.build_model()
    for variable, expected in zip(shared.variables, built.variables):
        np.testing.assert_array_equal(variable.numpy(), expected.numpy(), err_msg=variable.name)
    assert RUN_CHECKS["batch_independence"](run) == []
