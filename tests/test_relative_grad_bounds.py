"""A user's model is judged by its own training, never by the seed network's numbers: its gradient-norm bounds
are relative to its own run (``checks/thresholds.py``, ``relative_grad_norm_bounds``; calibration beside the
constants). Each bound has a negative control from the bug corpus (real programs on their own data) that fails
with a message naming the layer, the observed norm, the bound and what it is relative to, the cause and the
fix; the fixed twins that the seed network's absolute bounds failed pass; the seed network keeps its
calibrated absolute bounds.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from training_health.checks.health_checks import HealthCheckError, assert_grad_norm_within
from training_health.checks.thresholds import MAX_GRAD_GROWTH, MIN_GRAD_SHARE, load_thresholds
from training_health.data.user_data import load_training_data
from training_health.probe.training_probe import ProbeConfig, run_probe

CORPUS = "fixtures.bug_corpus"
REGRESSION = f"{CORPUS}.so48934338_regression_lr"  # y = 5 x^2 on 50 points; SGD 0.1 (bug) / 0.001 (fix)
SOFTMAX_ONE_UNIT = f"{CORPUS}.so34311586_softmax_one_unit_lr_low"  # fix: a 2-2-3-1 sigmoid net, SGD 0.1
DEEP_SIGMOID = f"{CORPUS}.autotrainer_deep_sigmoid"  # 11 sigmoid layers on MNIST, SGD 0.01


def corpus_run(module: str, function: str, data: str | None = "data", batch_size: int = 128):
    """The program trained as its corpus session trains it (manifest.py: data, batch size; 30 steps, seed 0)."""
    spec = f"{module}:{data}" if data else None
    config = ProbeConfig(model=f"{module}:{function}", initializer="default", batch_size=batch_size, data_spec=spec)
    return run_probe(config, load_training_data(spec))


def grad_norm_failure(traj) -> HealthCheckError:
    with pytest.raises(HealthCheckError) as caught:
        assert_grad_norm_within(traj, load_thresholds())
    return caught.value


def test_a_gradient_that_explodes_during_the_run_fails_the_growth_ceiling():
    """SGD at 0.1 on targets up to ~125: at step 1 the gradients are thousands of times their step-0 norm."""
    error = grad_norm_failure(corpus_run(REGRESSION, "build", batch_size=32))
    rows = {o.name: o for o in error.offenders if o.metric == "grad norm (max)"}
    assert "dense_2/kernel" in rows, str(error)
    row = rows["dense_2/kernel"]
    assert row.bound.startswith(f"<= {MAX_GRAD_GROWTH:g}x start ("), row.bound
    message = str(error)
    growth = r"dense_2/kernel: grad norm \S+ at step \d+, \S+x its own start \(the larger of its step-0 norm and its"
    assert re.search(growth + r" median of steps 0\.\.5\), \S+; bound 100x", message), message
    assert "updates too large: learning rate too high" in message, message
    assert "fix: lower the learning rate from 0.1 to ~" in message, message


def test_a_gradient_that_vanishes_fails_the_floor_relative_to_the_run():
    """Eleven sigmoid layers: the first biases' gradients are ~1e-4 of the run's typical one."""
    error = grad_norm_failure(corpus_run(DEEP_SIGMOID, "build", data=None))
    rows = {o.name: o for o in error.offenders if o.metric == "grad norm (median)"}
    assert "conv2d/bias" in rows, str(error)
    assert rows["conv2d/bias"].bound.startswith(f">= {MIN_GRAD_SHARE:g}x typical ("), rows["conv2d/bias"].bound
    assert {name.split("/")[0] for name in rows} <= {"conv2d", "conv2d_1", "dense"}, sorted(rows)
    message = str(error)
    assert "vanishing gradient: conv2d/bias" in message, message
    floor = r"conv2d/bias: median grad norm \S+, \S+x the run's typical gradient norm \(median over its 24 parameters'"
    assert re.search(floor + r" medians\) \S+; bound 0\.0005x", message), message
    assert "fix: use ReLU activations with He-normal initialization in the layers after conv2d" in message, message


@pytest.mark.parametrize(
    "module, function, batch_size",
    [
        pytest.param(SOFTMAX_ONE_UNIT, "build_fixed", 6, id="softmax_one_unit_lr_too_low-twin"),  # floor 6.6e-4 before
        pytest.param(REGRESSION, "build_fixed", 32, id="regression_lr_too_high-twin"),  # ceiling 496 before
    ],
)
def test_fixed_twins_pass_bounds_from_their_own_runs(module, function, batch_size):
    traj = corpus_run(module, function, batch_size=batch_size)
    assert_grad_norm_within(traj, load_thresholds())


def test_the_seed_network_keeps_its_calibrated_absolute_bounds(health_trajectories):
    thresholds = load_thresholds()
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal"))
    bounds = thresholds.for_model(traj.config.model).grad_norm_bounds_of(traj, "fc1/kernel")
    assert [(b.kind, b.value, b.basis) for b in bounds] == [
        ("floor", thresholds.data["grad_norm"]["fc1/kernel"]["min"], ""),
        ("ceiling", thresholds.data["grad_norm"]["fc1/kernel"]["max"], ""),
    ]
    assert np.isfinite(traj.column("grad_norm", "fc1/kernel")).all()


def test_a_network_too_slow_to_fit_16_examples_in_the_budget_is_a_note_not_stuck():
    """unscaled_pixels' fixed twin (the benchmark's fix keeps plain SGD at 1e-4): its updates are ~1e-5 of the
    weights per step, the 16 examples' loss still falls when the 200 steps run out: slow, not broken."""
    from training_health.checks.batch_checks import check_overfit_batch
    from training_health.checks.run_checks import RunContext

    module = f"{CORPUS}.so55328966_unscaled_inputs"
    spec = f"{module}:data_fixed"
    config = ProbeConfig(model=f"{module}:build_fixed", initializer="default", data_spec=spec)
    data = load_training_data(spec)
    run = RunContext(run_probe(config, data), data, load_thresholds(), lambda: None, config.build_model)
    notes = check_overfit_batch(run)
    assert len(notes) == 1 and "too slowly to judge in 200 steps" in notes[0], notes
    assert "the loss is still falling, but updates too small" in notes[0], notes
    assert "raise the learning rate from 0.0001 to ~0.001 (SGD)" in notes[0], notes
