"""The probe trains what the user runs and looks at every variable (in-process, small models, 10 steps).

Example models: fixtures/user_models/compiled_keras.py, custom_step.py, subclassed.py (layers conv1,
conv2, hidden, logits) and training_variants.py.
"""

import numpy as np
import pytest
import tensorflow as tf

from fixtures.user_models.training_variants import PLAIN_SGD_LR
from training_health.checks.health_checks import (
    FROZEN_AS_DECLARED,
    HealthCheckError,
    assert_all_finite,
    assert_layer_weights_moved,
    assert_units_alive,
    assert_variables_updated,
)
from training_health.model.user_model import ModelSpecError, layer_of
from training_health.probe.devices import float16_conv_unsupported
from training_health.probe.training_probe import PROBE_EXAMPLES, ProbeConfig, run_probe, to_float_images
from training_health.report.table import layer_table

STEPS = 10
COMPILED = "fixtures.user_models.compiled_keras:"
STEP_MODEL = "fixtures.user_models.custom_step:build"
STEPS_MODULE = "fixtures.user_models.custom_step:"
VARIANTS = "fixtures.user_models.training_variants:"


def config(model: str, train_step: str | None = None, mode: str = "graph") -> ProbeConfig:
    return ProbeConfig(model=model, initializer="default", steps=STEPS, mode=mode, train_step=train_step)


def offending_layers(caught) -> set[str]:
    return {layer_of(o.name) for o in caught.value.offenders}


def test_compiled_model_trains_with_its_own_optimizer_and_loss(health_trajectories):
    cfg = config(COMPILED + "sgd_momentum")
    traj = health_trajectories.get(cfg)
    assert traj.recipe == "SGD lr=0.01 momentum=0.9, loss sparse_categorical_crossentropy(from_logits=True)"
    assert "trained with SGD lr=0.01 momentum=0.9" in layer_table(traj)
    assert traj.learning_rate_used == pytest.approx(0.01)
    assert int(health_trajectories.trained_model(cfg).optimizer.iterations) == STEPS  # its optimizer took the steps
    statuses = assert_variables_updated(traj)
    assert set(statuses.values()) == {"updated"} and len(statuses) == 8, statuses


def test_recipe_counts_regularization_losses(health_trajectories):
    traj = health_trajectories.get(config(VARIANTS + "regularized"))
    assert traj.recipe.endswith("+ 2 regularization losses"), traj.recipe


def test_zero_learning_rate_is_flagged_with_its_cause(health_trajectories, health_thresholds):
    traj = health_trajectories.get(config(COMPILED + "sgd_zero_lr"))
    with pytest.raises(HealthCheckError, match="the optimizer's learning rate is 0") as caught:
        assert_variables_updated(traj)
    assert offending_layers(caught) == {"conv1", "conv2", "hidden", "logits"}
    assert 'training="SGD lr=0 momentum=0.9' in str(caught.value)  # the context names the recipe, not our Adam
    with pytest.raises(HealthCheckError, match="the optimizer's learning rate is 0"):
        assert_layer_weights_moved(traj, health_thresholds)


def test_layer_left_untrainable_is_flagged_and_passes_when_declared(health_trajectories):
    traj = health_trajectories.get(config(COMPILED + "conv2_frozen"))
    assert {"conv2/kernel", "conv2/bias"} <= set(traj.parameters)  # listed although not trainable
    assert "not trainable: conv2/kernel, conv2/bias" in layer_table(traj)
    with pytest.raises(HealthCheckError, match=r"not trainable \(layer.trainable=False\)") as caught:
        assert_variables_updated(traj)
    assert offending_layers(caught) == {"conv2"}
    assert "declare it: --health-frozen conv2" in str(caught.value)
    statuses = assert_variables_updated(traj, frozen=["conv2"])
    assert statuses["conv2/kernel"] == statuses["conv2/bias"] == FROZEN_AS_DECLARED


@pytest.mark.health_frozen("conv2")
def test_marker_declares_frozen_layers(health_trajectories, health_frozen_layers):
    assert health_frozen_layers == ["conv2"]
    traj = health_trajectories.get(config(COMPILED + "conv2_frozen"))
    assert assert_variables_updated(traj, frozen=health_frozen_layers)["conv2/kernel"] == FROZEN_AS_DECLARED


def test_misspelt_frozen_marker_fails_naming_the_layers(health_trajectories):
    from training_health.suite import _known_frozen_names

    traj = health_trajectories.get(config(COMPILED + "conv2_frozen"))
    with pytest.raises(pytest.fail.Exception, match=r"declared frozen: conv_2, but the model has no such layer"):
        _known_frozen_names(traj, ["conv_2"])
    _known_frozen_names(traj, ["conv2", "conv2/kernel"])  # a layer or one of its parameters


def test_layer_declared_frozen_that_changes_is_flagged(health_trajectories):
    traj = health_trajectories.get(config(COMPILED + "sgd_momentum"))
    with pytest.raises(HealthCheckError, match="declared frozen") as caught:
        assert_variables_updated(traj, frozen=["conv1"])
    assert offending_layers(caught) == {"conv1"}


def test_train_step_runs_the_users_optimizer(health_trajectories):
    traj = health_trajectories.get(config(STEP_MODEL, STEPS_MODULE + "train_step"))
    assert traj.recipe.startswith(f"train step {STEPS_MODULE}train_step")
    assert set(assert_variables_updated(traj).values()) == {"updated"}


def test_train_step_leaving_a_layer_out_is_flagged(health_trajectories):
    traj = health_trajectories.get(config(STEP_MODEL, STEPS_MODULE + "train_step_forgetting_hidden"))
    with pytest.raises(HealthCheckError, match="not updated by the optimizer / train step although") as caught:
        assert_variables_updated(traj)
    assert offending_layers(caught) == {"hidden"}
    assert "missing from the variable list" in str(caught.value)


@pytest.mark.parametrize("mode", ["graph", "eager"])
def test_train_step_gradient_is_the_one_before_its_update(health_trajectories, mode):
    """Plain SGD: the measured update must be exactly lr times the gradient the outer tape recorded,
    which holds only if the tape differentiated the reads made before the step's own assignment."""
    traj = health_trajectories.get(config(VARIANTS + "for_plain_sgd", VARIANTS + "plain_sgd_step", mode))
    update, grad = traj.per_step["update_norm"], traj.per_step["grad_norm"]
    np.testing.assert_allclose(update, PLAIN_SGD_LR * grad, rtol=1e-3)


def test_tf_function_step_with_a_lazily_built_optimizer_serves_every_run(health_trajectories):
    """Each run builds a fresh model; the step's Adam slots are created before the loop, never inside it."""
    for mode in ("graph", "eager"):
        traj = health_trajectories.get(config(VARIANTS + "for_adam_step", VARIANTS + "adam_step", mode))
        assert set(assert_variables_updated(traj).values()) == {"updated"}


def test_unbuilt_subclassed_model_is_built_and_checked(health_trajectories, health_thresholds):
    traj = health_trajectories.get(config("fixtures.user_models.subclassed:build"))
    assert {layer_of(p) for p in traj.parameters} == {"conv", "logits"}
    assert traj.recipe == "TF1 Adam lr=0.001, softmax cross-entropy"  # uncompiled: the question's recipe
    assert_variables_updated(traj)
    assert_layer_weights_moved(traj, health_thresholds)


def test_model_without_weights_is_an_error(health_mnist):
    with pytest.raises(ModelSpecError, match="training_variants:empty: the model has no weights"):
        run_probe(config(VARIANTS + "empty"), health_mnist)


@pytest.mark.parametrize("model", [COMPILED + "mixed_float16", VARIANTS + "mixed_policy"])
def test_mixed_float16_with_float16_logits(health_trajectories, model):
    """Explicit LossScaleOptimizer, and the one Keras wraps itself under the global policy."""
    if reason := float16_conv_unsupported():  # the CPU's oneDNN (tests/test_outside_project.py: its message)
        pytest.skip(reason)
    traj = health_trajectories.get(config(model))
    assert "with dynamic loss scaling" in traj.recipe, traj.recipe
    assert np.all(np.isfinite(traj.loss))
    assert_all_finite(traj)
    assert_variables_updated(traj)


def test_batchnorm_statistics_are_state_not_weights(health_trajectories):
    traj = health_trajectories.get(config(VARIANTS + "batchnorm"))
    assert traj.state_variables == {"bn/moving_mean": True, "bn/moving_variance": True}
    assert {"bn/gamma", "bn/beta"} <= set(traj.parameters)
    assert_variables_updated(traj)


def test_dead_units_are_measured_in_keras_models(health_trajectories, health_thresholds, health_mnist):
    cfg = config(COMPILED + "sgd_momentum")
    healthy = health_trajectories.get(cfg)
    assert set(healthy.dead_fraction_start) == {"conv1", "conv2", "hidden"}  # the relu layers, not logits
    model = health_trajectories.trained_model(cfg)  # recomputed independently, through Keras' own graph
    hidden = tf.keras.Model(model.inputs, model.get_layer("hidden").output)
    alive = np.any(hidden(to_float_images(health_mnist.train_images[:PROBE_EXAMPLES])).numpy() > 0, axis=0)
    assert healthy.dead_fraction_end["hidden"] == pytest.approx(1 - alive.mean())
    assert set(health_trajectories.get(config(VARIANTS + "batchnorm")).dead_fraction_start) == {"bn"}  # its ReLU
    dead = health_trajectories.get(config(VARIANTS + "dead_hidden"))
    assert dead.dead_fraction_start["hidden"] == dead.dead_fraction_end["hidden"] == 1.0
    with pytest.raises(HealthCheckError, match=r"dead ReLUs(.|\n)*100% of hidden's units output 0") as caught:
        assert_units_alive(dead, health_thresholds)
    assert offending_layers(caught) == {"hidden"}


def test_sgd_run_is_not_diagnosed_with_adams_premises(health_trajectories):
    """Adam moves each weight ~lr per step; SGD does not: its causes and fixes must not assume Adam."""
    from training_health.checks.diagnosis import diagnose

    traj = health_trajectories.get(config(COMPILED + "sgd_momentum"))  # SGD lr=0.01 momentum=0.9
    unreachable = diagnose(traj, "conv1/bias", check="moved", bound=1e9)  # was "out of Adam's reach", lr 0.001
    assert unreachable.title == "bound out of reach of the steps taken" and "Adam" not in str(unreachable)
    assert "the sum of its 10 steps' ||dW||" in unreachable.detail, unreachable
    assert "python -m training_health.checks.calibrate --model " + COMPILED + "sgd_momentum" in unreachable.fixes[0]
    # update/weight > 30x the typical 1e-3; a row of a too-large gradient (a too-small change is never "too large")
    too_fast = diagnose(traj, "conv1/bias", check="grad_norm_max", bound=1e-9)
    assert too_fast.title == "updates too large: learning rate too high" and "Adam" not in str(too_fast)
    assert too_fast.fixes[0].startswith("lower the learning rate from 0.01 to ~"), too_fast.fixes


def test_train_steps_hidden_learning_rate_is_not_quoted(health_trajectories):
    from training_health.checks.diagnosis import diagnose

    traj = health_trajectories.get(config(STEP_MODEL, STEPS_MODULE + "train_step"))
    cause = diagnose(traj, "hidden/bias", check="moved", bound=1e9)
    assert "0.001" not in str(cause) and "Adam" not in str(cause), cause
