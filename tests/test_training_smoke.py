"""A short real training run lowers the loss and reaches far-above-chance accuracy."""

import numpy as np
import tensorflow as tf

from training_health.probe.training_probe import ProbeConfig, to_float_images


def test_short_training_lowers_loss(health_trajectories):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal"))
    first, last = traj.loss[:5].mean(), traj.loss[-5:].mean()
    assert last < 0.5 * first, f"loss {first:.3f} -> {last:.3f} over {traj.config.steps} steps"


def test_trained_model_beats_chance_on_held_out_digits(health_trajectories, health_mnist):
    """Not a probe statistic: the trained network really classifies unseen test digits."""
    model = health_trajectories.trained_model(ProbeConfig(initializer="he_normal"))
    logits = model(to_float_images(health_mnist.test_images[:2000]), training=False)
    accuracy = np.mean(tf.argmax(logits, axis=-1).numpy() == health_mnist.test_labels[:2000])
    assert accuracy > 0.7, f"test accuracy {accuracy:.1%} after 30 steps (chance is 10%)"
