"""Run-level checks during the run (issue 16 item 2): the loss decreases beyond its noise and is stable,
one batch of 16 can be overfit by the run's own training, examples do not mix across the batch.

Each check passes on healthy runs (the seed network's healthy initializations, Keras models trained with
SGD or Adam, with dropout and BatchNorm) and fails on a broken one with the cause and a fix quoting the
run's own optimizer and learning rate: real MNIST, real training (fixtures/user_models/run_faults.py).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from training_health.checks.run_checks import RUN_CHECKS, NotApplicable, RunContext, run_check_names
from training_health.errors import HealthCheckError
from training_health.probe.training_probe import ProbeConfig

FAULTS = "fixtures.user_models.run_faults:"
run_check_names()  # registers every run check (their modules are imported on demand)
NEW_CHECKS = ("loss_decreases", "loss_stable", "overfit_batch", "batch_independence")


def context(health_trajectories, health_training_data, health_thresholds, config: ProbeConfig) -> RunContext:
    return RunContext(
        trajectory=health_trajectories.get(config),
        data=health_training_data,
        thresholds=health_thresholds,
        trained_model=lambda: health_trajectories.trained_model(config),
        fresh_model=config.build_model,
    )


def failure(run: RunContext, check: str) -> str:
    with pytest.raises(HealthCheckError) as caught:
        RUN_CHECKS[check](run)
    return str(caught.value)


def test_new_checks_are_registered():
    assert set(NEW_CHECKS) <= set(run_check_names())


HEALTHY = [
    ProbeConfig(initializer="he_normal"),
    ProbeConfig(initializer="glorot_uniform", seed=1),
    ProbeConfig(model="fixtures.user_models.compiled_keras:sgd_momentum", initializer="default"),
    ProbeConfig(model="fixtures.user_models.training_variants:batchnorm", initializer="default", seed=2),
]


@pytest.mark.parametrize("config", HEALTHY, ids=lambda c: c.id)
def test_healthy_runs_pass_every_run_check(health_trajectories, health_training_data, health_thresholds, config):
    run = context(health_trajectories, health_training_data, health_thresholds, config)
    for check in NEW_CHECKS:
        assert RUN_CHECKS[check](run) == [], check


def test_stuck_network_fails_loss_decreases_naming_its_learning_rate(
    health_trajectories, health_training_data, health_thresholds
):
    """Adam 0.01 on the seed network: the loss spikes to ~70 at step 1, every fc1 unit dies, the loss stays at
    ln 10 (accuracy ~10%): the classic "stuck at chance" network."""
    run = context(health_trajectories, health_training_data, health_thresholds, ProbeConfig(learning_rate=0.01))
    message = failure(run, "loss_decreases")
    assert "the loss of a network that predicts 1/10 for every class (ln 10 = 2.303)" in message, message
    jumped = r"updates too large: the loss jumped from 2.84 to 7\d\.\d+ at step 1; after it, dead ReLU units: \w+ 100%"
    assert re.search(jumped, message), message
    assert "fix: lower the learning rate from 0.01 to ~0.001 (TF1 Adam)" in message, message


def test_oscillating_loss_fails_loss_stable_naming_its_learning_rate(
    health_trajectories, health_training_data, health_thresholds
):
    config = ProbeConfig(model=FAULTS + "oscillating", initializer="default")
    message = failure(context(health_trajectories, health_training_data, health_thresholds, config), "loss_stable")
    assert "it oscillates" in message and "updates too large" in message, message
    assert "fix: lower the learning rate from 0.2 to ~0.02 (SGD)" in message, message


def test_adam_overshooting_from_the_start_fails_loss_stable(
    health_trajectories, health_training_data, health_thresholds
):
    """Adam 10: the loss explodes in the first steps, then settles above its start; the windows alone (whose
    first median is the explosion's) saw a falling loss (a first user's report)."""
    config = ProbeConfig(model=FAULTS + "adam_lr_10", initializer="default")
    message = failure(context(health_trajectories, health_training_data, health_thresholds, config), "loss_stable")
    assert "it diverges from the start" in message and "bound: < 30x" in message, message
    assert "fix: lower the learning rate from 10 to ~1 (Adam), and 10x again while the check still fails" in message
    assert "(Keras' default for Adam: 0.001)" in message, message


def test_a_loss_ending_above_twice_its_start_fails_loss_stable(
    health_trajectories, health_training_data, health_thresholds
):
    """The end-above-start bound alone: an Adam run overshoots 8x (under Adam's 30x early bound), and its last
    window (3.0) is not beyond the noise of its inflated first one, yet it ends 3x above its step 0."""
    run = context(health_trajectories, health_training_data, health_thresholds, ProbeConfig(initializer="he_normal"))
    full = run.trajectory
    loss = np.array([1.0, 8.0, 9.0, 7.0, 8.5, 6.0] + [3.0, 3.1, 2.9] * 8)
    run.trajectory = dataclasses.replace(full, loss=loss)  # the real run, with this loss curve
    message = failure(run, "loss_stable")
    assert "3x its step-0 value 1 (bound: 2x): it diverged" in message, message
    assert "diverges from the start" not in message and "lower the learning rate" in message, message


def test_model_that_cannot_fit_16_examples_fails_overfit_batch(
    health_trajectories, health_training_data, health_thresholds
):
    """Every unit of dense0's Activation("relu") is dead: the logits are the same for every image."""
    config = ProbeConfig(model=FAULTS + "dead_activation_layers", initializer="default")
    message = failure(context(health_trajectories, health_training_data, health_thresholds, config), "overfit_batch")
    assert "after 200 steps on the same 16 examples the training loss kept" in message, message
    assert "no more than the 4 that one constant answer gets" in message, message
    assert "likely cause: dead ReLUs: 100% of dense" in message and "fix: start dense" in message, message


def test_model_mixing_examples_fails_batch_independence(health_trajectories, health_training_data, health_thresholds):
    config = ProbeConfig(model=FAULTS + "mixes_batch", initializer="default")
    run = context(health_trajectories, health_training_data, health_thresholds, config)
    message = failure(run, "batch_independence")
    assert "logits depend on example" in message and "mixes examples across the batch" in message, message
    assert "fix: keep the batch axis first" in message, message


def test_seed_normal_run_checks_agree_with_its_verdict(health_trajectories, health_training_data, health_thresholds):
    """The question's N(0, 1) network: its loss falls (from ~1e5) and it can fit 16 examples; none of the run
    checks contradicts "oversized initialization, not vanishing gradients"."""
    run = context(health_trajectories, health_training_data, health_thresholds, ProbeConfig(initializer="seed_normal"))
    for check in NEW_CHECKS:
        try:
            assert RUN_CHECKS[check](run) == [], check
        except HealthCheckError as err:
            assert "oversized initialization, not vanishing gradients" in str(err), err
            assert "vanishing gradients:" not in str(err).replace("not vanishing gradients", ""), err


def test_too_few_steps_is_not_applicable(health_trajectories, health_training_data, health_thresholds):
    from training_health.checks.loss_curve import DECREASE_MIN_STEPS, MIN_STEPS

    run = context(health_trajectories, health_training_data, health_thresholds, ProbeConfig(initializer="he_normal"))
    loss = run.trajectory.loss
    full = run.trajectory
    fields = {"loss": loss[: DECREASE_MIN_STEPS - 1], "config": run.config, "recipe": full.recipe, "facts": full.facts}
    run.trajectory = type("Short", (), fields)()
    with pytest.raises(NotApplicable, match="judged from 30 steps on"):
        RUN_CHECKS["loss_decreases"](run)
    assert RUN_CHECKS["loss_stable"](run) == []
    run.trajectory.loss = loss[: MIN_STEPS - 1]
    with pytest.raises(NotApplicable, match="judged from 10 steps on"):
        RUN_CHECKS["loss_stable"](run)


def test_calibration_command_prints_what_the_checks_read(capsys):
    """The command behind the thresholds' comments (checks/calibrate_run_checks.py) runs and prints each figure."""
    from training_health.checks.calibrate_run_checks import main

    main(["--models", "seed:he_normal", "--seeds", "0", "--steps", "10", "--max-fit-steps", "25"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("seed:he_normal seed 0: z "), line
    assert "fit 16/16 after 25 steps" in line and line.endswith("cross-talk 0"), line


def test_a_run_whose_loss_fell_below_the_fit_bound_is_its_own_fit(
    health_trajectories, health_training_data, health_thresholds
):
    """he_normal's 30-step loss falls 2.84 -> ~0.34 (12% of its start) on a new batch every step: overfit_batch
    reads that instead of training a fresh model, and fitting the 16 examples anyway gives the same verdict."""
    from training_health.checks.one_batch import FIT_LEFT, FITS, fit_one_batch, fit_verdict

    config = ProbeConfig(initializer="he_normal")
    run = context(health_trajectories, health_training_data, health_thresholds, config)
    read = fit_one_batch(run)
    assert read.get("from_run") and read["left"] <= FIT_LEFT and fit_verdict(read) == FITS, read
    trained_again = dataclasses.replace(run, trajectory=dataclasses.replace(run.trajectory, derived={}))
    fitted = fit_one_batch(trained_again, run_evidence=False)
    assert not fitted.get("from_run") and fit_verdict(fitted) == FITS, fitted


def test_a_loss_ending_above_its_start_fails_loss_decreases(
    health_trajectories, health_training_data, health_thresholds
):
    """Early spikes inflate the first window's median, so the drop against it looked like learning, and the end lay
    more than 10% above ln 10, outside the chance band: a first user's Adam 1.0 (2.311 -> 2.667) passed."""
    run = context(health_trajectories, health_training_data, health_thresholds, ProbeConfig(initializer="he_normal"))
    loss = np.array([2.311, 9.0, 14.0, 11.0, 8.0, 6.5] + [2.7, 2.6, 2.65] * 8)
    run.trajectory = dataclasses.replace(run.trajectory, loss=loss, derived={})  # the real run, with this curve
    message = failure(run, "loss_decreases")
    assert "not below its step-0 value 2.311" in message and "it has learned nothing" in message, message
