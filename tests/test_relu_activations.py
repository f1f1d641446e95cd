"""Every ReLU-family activation is measured for dead units (issue 16 item 3): standalone
``Activation("relu")`` layers, ``keras.activations.relu`` / ``tf.nn.relu`` as a layer's activation or
between the layers of a functional model, a ``tf.Module``'s ``relu_activations`` opt-in; leaky variants
never count as dead. Real MNIST, real training (fixtures/user_models/run_faults.py).
"""

from __future__ import annotations

import pytest

from training_health.checks.health_checks import assert_layer_healthy
from training_health.checks.run_checks import RUN_CHECKS, RunContext, run_check_names
from training_health.errors import HealthCheckError
from training_health.probe.training_probe import ProbeConfig
from training_health.report.table import layer_table

FAULTS = "fixtures.user_models.run_faults:"
run_check_names()  # registers every run check (their modules are imported on demand)


def trajectory(health_trajectories, factory: str):
    return health_trajectories.get(ProbeConfig(model=FAULTS + factory, initializer="default", steps=10))


def test_dead_activation_layers_are_measured_and_named_with_their_cause(health_trajectories, health_thresholds):
    """Dense layers without activation, each followed by Activation("relu"): the dead units count for the Dense
    layer before them (the per-layer test and the table's dead column), with the dead-ReLU cause and fix."""
    traj = trajectory(health_trajectories, "dead_activation_layers")
    assert traj.dead_fraction_start == {"dense0": 1.0, "dense1": 1.0}, traj.dead_fraction_start
    assert "100%->100%" in layer_table(traj)
    with pytest.raises(HealthCheckError) as caught:
        assert_layer_healthy(traj, health_thresholds, "dense0")
    message = str(caught.value)
    assert "dead ReLUs" in message and "100% of dense0's units output 0 on every probe image" in message, message
    assert "fix: start dense0/bias at 0 (now mean -10)" in message, message
    assert "units alive" in message and "dead units (end)" in message, message


def test_leaky_activations_are_never_dead(health_trajectories):
    """LeakyReLU and Activation(leaky_relu) after biases of -10: every unit is negative, yet passes a gradient."""
    traj = trajectory(health_trajectories, "leaky_activations")
    assert traj.dead_fraction_start == {} and traj.dead_fraction_end == {}
    assert "dead ReLUs" not in layer_table(traj)


def test_relu_functions_in_functional_models_are_measured(health_trajectories):
    """keras.activations.relu between layers (Keras 3) / Dense(activation=tf.nn.relu) (Keras 2), and
    Dense(activation=tf.nn.relu): each counts for its Dense layer."""
    traj = trajectory(health_trajectories, "functional_relu_ops")
    assert set(traj.dead_fraction_start) == {"hidden", "hidden2"}, traj.dead_fraction_start


def test_a_tf_module_opts_in_with_relu_activations(health_trajectories, health_thresholds):
    traj = trajectory(health_trajectories, "module_with_relu_hook")
    assert traj.dead_fraction_start == {"hidden": 1.0}, traj.dead_fraction_start
    with pytest.raises(HealthCheckError, match="dead ReLUs"):
        assert_layer_healthy(traj, health_thresholds, "hidden")


def test_relu_outside_any_layers_test_is_checked_by_the_run_check(
    health_trajectories, health_training_data, health_thresholds
):
    """A subclassed model calling Activation("relu") in call(): no graph names the layer before it, so the
    ReLU keeps its own name and relu_units_alive checks it."""
    config = ProbeConfig(model=FAULTS + "subclassed_dead_activation", initializer="default", steps=10)
    traj = health_trajectories.get(config)
    assert traj.dead_fraction_end == {"act": 1.0}, traj.dead_fraction_end
    run = RunContext(traj, health_training_data, health_thresholds, lambda: None, config.build_model)
    with pytest.raises(HealthCheckError) as caught:
        RUN_CHECKS["relu_units_alive"](run)
    message = str(caught.value)
    assert "assert_units_alive: 1 of 1 failed" in message and "dead ReLUs" in message, message
    assert "100% of act's units output 0 on every probe image" in message, message
    assert "fix: start the biases of the layer that feeds act at 0" in message, message
    healthy = health_trajectories.get(ProbeConfig(initializer="he_normal", steps=10))
    run = RunContext(healthy, health_training_data, health_thresholds, lambda: None, lambda: None)
    assert RUN_CHECKS["relu_units_alive"](run) == []
