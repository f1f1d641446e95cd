"""Every check can fail: each deliberately broken variant trips the right check, and the
message names the broken layer and the right cause. Broken variants: fixtures/broken_models.py."""

import dataclasses
import re

import pytest

from fixtures.broken_models import DEAD_BIAS, NAN_FROM_STEP, OUTPUT_SCALE, model_spec
from training_health.checks.data_checks import check_initial_loss
from training_health.checks.health_checks import (
    HealthCheckError,
    assert_all_finite,
    assert_grad_norm_within,
    assert_gradients_connected,
    assert_layer_healthy,
    assert_layer_units_moved,
    assert_layer_weights_moved,
    assert_units_alive,
)
from training_health.checks.run_checks import RunContext
from training_health.checks.thresholds import load_thresholds
from training_health.data.user_data import TrainingData
from training_health.model.user_model import SEED_MODEL
from training_health.probe.training_probe import ProbeConfig
from training_health.report.kernel_pictures import pictures_on_failure

# Each health check with one signature (health_trajectory, health_thresholds), by the name the table uses.
CHECKS = {
    "connected": lambda traj, th: assert_gradients_connected(traj),
    "moved": assert_layer_weights_moved,
    "units_moved": assert_layer_units_moved,
    "finite": lambda traj, th: assert_all_finite(traj),
    "grad_norm": assert_grad_norm_within,
    "alive": assert_units_alive,
}


def broken_config(sabotage: str, learning_rate: float = 1e-3) -> ProbeConfig:
    model = model_spec(sabotage) if sabotage else ProbeConfig.model
    return ProbeConfig(initializer="he_normal", model=model, learning_rate=learning_rate)


CONTROLS = [
    # (sabotage, learning rate, check, offender the table must name, cause the message must give, its fix line)
    pytest.param(
        "blocked_gradient:conv2",
        1e-3,
        "connected",
        "conv2/kernel",
        "gradient disconnected",
        "fix: make the loss depend on conv2/kernel: remove the tf.stop_gradient",
        id="blocked-conv2",
    ),
    pytest.param(
        "blocked_gradient:conv2",
        1e-3,
        "moved",
        "conv2/kernel",
        "gradient disconnected",
        "fix: make the loss depend on conv2/kernel",
        id="blocked-moved",
    ),
    pytest.param(
        "tiny_gradient:conv1",
        1e-3,
        "moved",
        "conv1/kernel",
        "too small for Adam",
        r"fix: remove what scales conv1/kernel's gradient down by ~\de\+0[4-9]x or more",
        id="tiny-conv1",
    ),
    pytest.param(
        "tiny_gradient:conv1",
        1e-3,
        "grad_norm",
        "conv1/kernel",
        "too small for Adam",
        "fix: remove what scales conv1/kernel's gradient down",
        id="tiny-gradnorm",
    ),
    pytest.param(
        "dead_relu:fc1",
        1e-3,
        "alive",
        "fc1",
        "(?s)dead ReLUs: fc1/kernel.*fc1/kernel: 100% of fc1's units output 0",
        f"fix: start fc1/bias at 0 \\(now mean {DEAD_BIAS:g}\\)",
        id="dead-fc1",
    ),
    pytest.param(
        "dead_relu:fc1",
        1e-3,
        "units_moved",
        "fc1/kernel",
        "dead ReLUs",
        "fix: start fc1/bias at 0",
        id="dead-frozen",
    ),
    pytest.param(
        "nan_midrun:conv2",
        1e-3,
        "finite",
        "conv2/kernel",
        f"step {NAN_FROM_STEP} ",
        f"fix: run {NAN_FROM_STEP + 1} steps under tf.debugging.enable_check_numerics",
        id="nan-conv2",
    ),
    pytest.param(
        "exploding_gradient:fc1",
        1e-3,
        "grad_norm",
        "fc1/kernel",
        "exploding gradient",
        r"fix: remove what multiplies fc1/kernel's gradient by ~\d(\.\d)?e\+0[4-6]x",
        id="exploding-fc1",
    ),
    pytest.param(
        "",
        1.0,
        "grad_norm",
        "fc1/kernel",
        "updates too large: learning rate too high",
        r"fix: lower the learning rate from 1 to ~0\.0*1\b",
        id="exploding-lr",
    ),
]


@pytest.mark.parametrize("sabotage, learning_rate, check, offender, cause, fix", CONTROLS)
def test_check_catches_broken_model(
    health_trajectories, health_thresholds, sabotage, learning_rate, check, offender, cause, fix
):
    traj = health_trajectories.get(broken_config(sabotage, learning_rate=learning_rate))
    with pytest.raises(HealthCheckError, match=cause) as caught:
        CHECKS[check](traj, health_thresholds)
    named = {o.name for o in caught.value.offenders}
    assert offender in named, f"{check} flagged {sorted(named)}, not {offender}:\n{caught.value}"
    assert "init=he_normal" in str(caught.value) and "tf=" in str(caught.value)
    assert re.search(fix, str(caught.value)), f"no fix line {fix!r} in:\n{caught.value}"


def layer_failure(traj, thresholds, layer: str) -> str:
    """The message ``pytest -k layer_updates`` prints for ``layer`` (every per-layer check together)."""
    with pytest.raises(HealthCheckError) as caught:
        assert_layer_healthy(traj, thresholds, layer)
    return str(caught.value)


def as_seed_network(traj):
    """A broken variant judged as the seed network it is (same layers), by the bounds calibrated for it."""
    return dataclasses.replace(traj, config=dataclasses.replace(traj.config, model=SEED_MODEL))


def test_layer_updates_name_a_scaled_output_not_an_oversized_init(health_trajectories, health_thresholds):
    """He-scale weights, logits x OUTPUT_SCALE, judged by the seed network's calibrated bounds: every layer
    fails, and the cause is the output's scale."""
    traj = as_seed_network(health_trajectories.get(broken_config("scaled_output:out")))
    for layer in ("conv1", "conv2", "fc1", "out"):
        message = layer_failure(traj, health_thresholds, layer)
        assert "scaled output: logits scaled up after the last layer" in message, message
        assert "oversized initialization" not in message, message
        assert f"fix: remove the ~{OUTPUT_SCALE:g}x factor on the model's output before the loss" in message, message


def test_a_scaled_output_of_a_users_model_is_named_before_training(health_trajectories, health_mnist):
    """The same variant as a user's model: its gradient bounds are relative to its own run, and a factor on every
    gradient is no per-layer anomaly; the loss at initialization names the scaled output, with its fix."""
    config = broken_config("scaled_output:out")
    traj = health_trajectories.get(config)
    run = RunContext(traj, TrainingData.from_mnist(health_mnist), None, lambda: None, config.build_model)
    with pytest.raises(HealthCheckError) as caught:
        check_initial_loss(run)
    message = str(caught.value)
    assert "cause: scaled output: logits" in message and "a factor after the last layer" in message, message


def test_layer_updates_name_a_bias_cancelled_by_batch_norm(health_trajectories, health_thresholds):
    traj = health_trajectories.get(broken_config("bias_before_batchnorm:conv1"))
    message = layer_failure(traj, health_thresholds, "conv1")
    assert "bias cancelled by the normalization it feeds: conv1/bias" in message, message
    assert "conv1's output goes straight into bn1 (batch normalization)" in message, message
    assert "fix: remove conv1's bias (use_bias=False; bn1's beta replaces it)" in message, message
    assert "updates too large" not in message, message


def test_layer_updates_find_a_keras_bias_before_batch_norm(health_trajectories, health_thresholds):
    """For Keras models the probe reads the layer graph to see that the conv feeds a BatchNormalization."""
    traj = health_trajectories.get(
        ProbeConfig(initializer="he_normal", model="fixtures.broken_models:keras_bias_before_batchnorm")
    )
    assert traj.feeds_normalization == {"conv": "bn (BatchNormalization)"}
    message = layer_failure(traj, health_thresholds, "conv")
    assert "bias cancelled by the normalization it feeds: conv/bias" in message, message
    assert "fix: remove conv's bias (use_bias=False; bn's beta replaces it)" in message, message


def test_layer_updates_judge_zero_initialized_biases_by_absolute_change(health_trajectories):
    """An unreachable minimum (1e9) on he_normal, whose biases start at zero: no ratio against zero."""
    traj = health_trajectories.get(broken_config(""))
    message = layer_failure(traj, load_thresholds(min_relative_change=1e9), "conv1")
    assert "bound out of Adam's reach: conv1/kernel, conv1/bias" in message, message
    assert "conv1/bias: absolute (W0 = 0: no ratio) change" in message, message
    assert "update/weight" not in message and "e+2" not in message, message
    assert "fix: lower the minimum change from 1e+09 to below each parameter's reach" in message, message


@pytest.mark.parametrize("sabotage", ["blocked_gradient:conv2", "tiny_gradient:conv1", "exploding_gradient:fc1"])
def test_only_the_broken_layer_is_named(health_trajectories, health_thresholds, sabotage):
    """The sabotage of one layer must not make the suite blame healthy layers."""
    traj = health_trajectories.get(broken_config(sabotage))
    target = sabotage.split(":")[1]
    for check in ("connected", "moved", "grad_norm"):
        try:
            CHECKS[check](traj, health_thresholds)
        except HealthCheckError as err:
            assert {o.name.split("/")[0] for o in err.offenders} == {target}, str(err)


def test_failing_layer_update_attaches_kernel_pictures(health_trajectories, health_thresholds, tmp_path):
    traj = health_trajectories.get(broken_config("tiny_gradient:conv1"))
    with pytest.raises(HealthCheckError, match="kernel pictures") as caught:
        with pictures_on_failure(traj, ["conv1/kernel", "conv1/bias"], tmp_path, health_thresholds):
            assert_layer_weights_moved(traj, health_thresholds, ["conv1/kernel", "conv1/bias"])
    folder = tmp_path / traj.config.id
    assert str(folder) in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == ["conv1-kernel.png", "dynamics.png"]
