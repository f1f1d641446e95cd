"""How a run trained is recorded as typed facts (``Trajectory.facts``, ``model/recipe.py``) for the diagnosis:
optimizer class, learning rate or schedule, epsilon, momentum, batch size; never parsed back from text."""

import pytest
import tensorflow as tf

from training_health.probe.training_probe import ProbeConfig, run_probe

STEPS = 10


def schedule_adam(initializer, seed):
    """Adam on an ExponentialDecay schedule, as the Keras optimizer guide writes it."""
    from fixtures.user_models.compiled_keras import convnet, cross_entropy

    model = convnet(initializer, seed)
    rate = tf.keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=100, decay_rate=0.9)
    model.compile(optimizer=tf.keras.optimizers.Adam(rate), loss=cross_entropy())
    return model


@pytest.mark.parametrize(
    "model, train_step, expected",
    [
        ("seed", None, {"optimizer": "TF1 Adam", "learning_rate": 1e-3, "epsilon": 1e-8, "schedule": None}),
        (
            "fixtures.user_models.compiled_keras:sgd_momentum",
            None,
            {"optimizer": "SGD", "learning_rate": 0.01, "momentum": 0.9, "schedule": None},
        ),
        ("tests.test_recipe_facts:schedule_adam", None, {"optimizer": "Adam", "schedule": "ExponentialDecay"}),
        (
            "fixtures.healthy_models.quickstart_expert:build",
            "fixtures.healthy_models.quickstart_expert:train_step",
            {"optimizer": "Adam", "learning_rate": None},  # a train step may scale its rate: not quoted
        ),
    ],
    ids=["seed", "keras_sgd", "keras_schedule", "train_step"],
)
def test_facts_are_recorded(health_training_data, model, train_step, expected):
    config = ProbeConfig(initializer="he_normal" if model == "seed" else "default", model=model, steps=STEPS)
    if train_step:
        config = ProbeConfig(initializer="default", model=model, train_step=train_step, steps=STEPS, batch_size=32)
    facts = run_probe(config, health_training_data).facts
    for field, value in expected.items():
        observed = getattr(facts, field)
        assert observed == (pytest.approx(value) if isinstance(value, float) else value), (field, facts)
    assert facts.batch_size == config.batch_size
