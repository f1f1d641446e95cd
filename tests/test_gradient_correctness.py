"""Backpropagation through the seed network is right: float64 finite differences agree with
the analytic gradient of the loss for sampled weights of every conv and dense layer.

Measured (TF 2.21, 16 sampled weights per parameter, delta 1e-6): largest relative error
1.8e-8 (fc1/kernel), the others 3e-10 .. 8e-9. Bound 1e-6: 55x the worst observed, and far
below what a wrong gradient gives (the negative control, a ReLU whose backward pass lets
gradient through dead units: 0.5 .. 0.99).
"""

import numpy as np
import pytest
import tensorflow as tf

from training_health.model.initializations import initial_value
from training_health.model.seed_network import PARAMETER_SHAPES, forward

CHECKED = ["conv1/kernel", "conv1/bias", "conv2/kernel", "conv2/bias", "fc1/kernel", "fc1/bias", "out/kernel"]
SAMPLED_WEIGHTS = 16
GRADIENT_RTOL = 1e-6


@tf.custom_gradient
def leaky_backward_relu(x):
    """Forward is ReLU; the backward mask is taken from the output with >= 0, so it is always 1."""
    y = tf.nn.relu(x)
    return y, lambda dy: dy * tf.cast(y >= 0, dy.dtype)


@pytest.fixture(scope="module")
def small_batch(health_mnist):
    images = tf.constant(health_mnist.train_images[:8, ..., None] / 255.0, tf.float64)
    return images, tf.constant(health_mnist.train_labels[:8])


def gradient_error(parameter: str, batch, relu=tf.nn.relu) -> float:
    """Max |analytic - numeric| / max(|analytic|, |numeric|) over sampled weights of ``parameter``."""
    images, labels = batch
    # truncated_normal's 0.1 biases keep pre-activations off ReLU's kink at 0, where a
    # finite difference straddles two slopes (he_normal's zero biases on blank pixels do not).
    weights = {
        n: tf.constant(initial_value("truncated_normal", 0, n, s), tf.float64) for n, s in PARAMETER_SHAPES.items()
    }
    size = int(np.prod(PARAMETER_SHAPES[parameter]))
    picked = np.random.default_rng(0).choice(size, min(SAMPLED_WEIGHTS, size), replace=False)[:, None]

    @tf.function
    def loss(delta):
        flat = tf.tensor_scatter_nd_add(tf.reshape(weights[parameter], [-1]), picked, delta)
        shifted = {**weights, parameter: tf.reshape(flat, PARAMETER_SHAPES[parameter])}
        logits, _ = forward(shifted, images, relu=relu)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

    analytic, numeric = tf.test.compute_gradient(loss, [tf.zeros(len(picked), tf.float64)], delta=1e-6)
    analytic, numeric = analytic[0], numeric[0]
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(analytic)), np.max(np.abs(numeric)), 1e-30))


@pytest.mark.parametrize("parameter", CHECKED)
def test_analytic_gradient_matches_finite_differences(small_batch, parameter):
    error = gradient_error(parameter, small_batch)
    assert error <= GRADIENT_RTOL, f"{parameter}: relative gradient error {error:.3g} > {GRADIENT_RTOL:g}"


@pytest.mark.parametrize("parameter", ["conv1/kernel", "fc1/kernel"])
def test_wrong_custom_gradient_is_caught(small_batch, parameter):
    error = gradient_error(parameter, small_batch, relu=leaky_backward_relu)
    assert error > 100 * GRADIENT_RTOL, f"{parameter}: a wrong ReLU gradient went unnoticed (error {error:.3g})"
