"""loss_finite names why the loss went non-finite, not only where (bug corpus: numerics (NaN)). The runs are
hand-built (no training): each states exactly the measurement the cause reads, on a real (untrained) Keras
model; fixtures/bug_corpus runs the real programs (zhang_ips7 / zhang_ips10 / so48385830)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tests.test_diagnosis_fixes import RECIPES, trajectory
from training_health.checks.run_checks import RUN_CHECKS, RunContext
from training_health.errors import HealthCheckError

keras = tf.keras


def model(dtype: str = "float32", epsilon: float = 1e-7, activation=None) -> keras.Model:
    net = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation=activation, dtype=dtype)])
    net.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=epsilon), loss="mse")
    return net


def message(net, loss, unit_interval=True) -> str:
    traj = trajectory(next(iter(RECIPES)), 0.01)
    traj = dataclasses.replace(
        traj,
        loss=np.asarray(loss, np.float32),
        outputs_start={"mean": 2.0, "rms": 14.0, "unit_interval": unit_interval},
    )
    run = RunContext(trajectory=traj, data=None, thresholds=None, trained_model=lambda: net, fresh_model=lambda: net)
    with pytest.raises(HealthCheckError) as caught:
        RUN_CHECKS["loss_finite"](run)
    return str(caught.value)


def test_float16_weights_with_an_epsilon_that_rounds_to_zero():
    said = message(model("float16", epsilon=1e-8), [2.3, np.nan, np.nan])
    assert "the optimizer's epsilon 1e-08 rounds to 0 in float16" in said and "0 / 0 = NaN" in said, said
    assert "fix: raise the optimizer's epsilon to 1e-4" in said, said
    assert "rounds to 0" not in message(model("float16", epsilon=1e-4), [2.3, np.nan, np.nan])


def test_nan_at_step_0_on_outputs_that_are_not_probabilities_is_the_loss_taking_their_log():
    said = message(model(activation="relu"), [np.nan] * 3, unit_interval=False)
    assert "likely cause: the loss itself: it is not finite at step 0, before any update" in said, said
    assert "log of a negative or zero value" in said and "fix: apply a sigmoid / softmax before the log" in said
    assert "likely cause" not in message(model(activation="relu"), [np.nan] * 3, unit_interval=True)


def test_a_loss_that_grew_before_the_nan_is_a_learning_rate_too_high_and_a_linear_model_is_named():
    said = message(model(), [2462.0, 2.4e13, np.inf])
    assert "updates too large in a model with no activation in any layer (a linear network)" in said, said
    assert "fix: lower the learning rate from 0.01 to ~0.001" in said and "add activations" in said, said
    nonlinear = message(model(activation="relu"), [2462.0, 2.4e13, np.inf])
    assert "likely cause: updates too large: the loss grew" in nonlinear and "linear" not in nonlinear, nonlinear


def test_multi_label_targets_read_from_a_softmax_are_named_and_one_hot_labels_are_not():
    """bug corpus softmax_multilabel_mse: multi-hot rows under a softmax head (was: "no single cause stands out")."""
    import types

    from training_health.checks.data_checks import _softmax_over_labels

    traj = dataclasses.replace(
        trajectory(next(iter(RECIPES)), 0.01), outputs_start={"probabilities": True, "width": 3, "mean": 0.33}
    )

    def run(labels) -> RunContext:
        data = types.SimpleNamespace(train_labels=np.asarray(labels, np.float32))
        return RunContext(trajectory=traj, data=data, thresholds=None, trained_model=None, fresh_model=None)

    error = _softmax_over_labels(run([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]]))
    assert "softmax over multi-label targets: 50% of the labels' rows have more than one label set" in str(error)
    assert "fix: end the model with a sigmoid per label" in str(error)
    assert _softmax_over_labels(run(np.eye(3)[[0, 1, 2, 1]])) is None  # one-hot: one label per row, a softmax fits
