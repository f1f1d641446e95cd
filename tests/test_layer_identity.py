"""A layer is named the same however many times the factory is called (issue 15, item 1).

Keras numbers automatic layer names per process: the grid's names come from one build, the run trains
another. ``model/variables.canonical_layer_names`` names each automatically named layer as a fresh
process would, so test ids, tables, thresholds files and calibration line up, and a model with automatic
names is checked exactly like the same model named by hand.
"""

from __future__ import annotations

import numpy as np

from training_health.checks.health_checks import HealthCheckError, assert_layer_healthy
from training_health.checks.thresholds import load_thresholds
from training_health.model.user_model import layer_of, resolve_factory
from training_health.model.variables import canonical_layer_names, model_variables
from training_health.probe.training_probe import ProbeConfig

UNNAMED = "fixtures.user_models.automatic_names:build"
NAMED = "fixtures.user_models.automatic_names:build_named"
EXPECTED = ["conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias", "dense/kernel", "dense/bias"]


def test_every_build_names_its_layers_as_a_fresh_process_would():
    builds = [resolve_factory(UNNAMED)("default", 0) for _ in range(3)]
    assert len({tuple(layer.name for layer in model.layers) for model in builds}) == 3  # Keras numbered them anew
    for model in builds:
        assert list(model_variables(model).weights) == EXPECTED
    assert list(model_variables(resolve_factory(NAMED)("default", 0)).weights) == EXPECTED


def test_hand_given_names_stay_and_are_never_given_to_another_layer():
    import tensorflow as tf

    model = tf.keras.Sequential(
        [
            tf.keras.Input((4,)),
            tf.keras.layers.Dense(3, name="hidden"),
            tf.keras.layers.Dense(2),
            tf.keras.layers.Dense(2),
        ]
    )
    renames = canonical_layer_names(model)
    assert "hidden" not in renames
    assert sorted(v for v in renames.values() if v.startswith("dense")) == ["dense", "dense_1"]


def _verdict(traj, thresholds, layer) -> str:
    try:
        assert_layer_healthy(traj, thresholds, layer)
    except HealthCheckError as err:
        return str(err).replace(traj.config.model, "MODEL")
    return "passed"


def test_automatic_names_are_checked_exactly_like_hand_given_ones(health_trajectories):
    thresholds = load_thresholds()
    unnamed = health_trajectories.get(ProbeConfig(model=UNNAMED, initializer="default", steps=10))
    named = health_trajectories.get(ProbeConfig(model=NAMED, initializer="default", steps=10))
    assert unnamed.parameters == named.parameters == EXPECTED
    assert list(unnamed.dead_fraction_end) == ["conv2d", "conv2d_1"]  # ReLU layers keyed like the parameters
    np.testing.assert_allclose(unnamed.loss, named.loss, rtol=1e-5)
    for layer in dict.fromkeys(layer_of(p) for p in EXPECTED):
        assert _verdict(unnamed, thresholds, layer) == _verdict(named, thresholds, layer)


def test_calibrate_on_a_model_with_automatic_names(tmp_path):
    """It crashed with KeyError 'conv2d_2/kernel': every seed's build had other names."""
    from training_health.checks import calibrate

    out = tmp_path / "unnamed.toml"
    assert calibrate.main(["--model", UNNAMED, "--seeds", "2", "--steps", "10", "--out", str(out)]) == 0
    thresholds = load_thresholds(out).for_model(UNNAMED)
    assert set(thresholds.data["grad_norm"]) == set(EXPECTED)
    assert set(thresholds.data["dead_fraction"]) == {"conv2d", "conv2d_1"}


LINEAR = ("linear", "linear_1", "linear_2")


def test_unnamed_weights_of_a_custom_layer_keep_their_names_across_builds():
    """Keras 3 names add_weight() without a name variable, variable_1, ... per process."""
    factory = resolve_factory("fixtures.healthy_models.custom_layer:build")
    names = [list(model_variables(factory("default", 0)).weights) for _ in range(2)]
    assert names[0] == names[1]
    # Keras 3: linear/variable, linear/variable_1; Keras 2 names them Variable, Variable_ (made unique here)
    assert {n.lower().rstrip("_1") for n in names[0]} == {f"mlp_block/{layer}/variable" for layer in LINEAR}, names[0]
