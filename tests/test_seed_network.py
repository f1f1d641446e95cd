"""The question's network: shapes, parameter counts, names, and the effect of ``training``."""

import numpy as np
import tensorflow as tf

from training_health.model.seed_network import LAYERS, PARAMETER_SHAPES, build_seed_network


def test_logits_shape_and_dtype():
    model = build_seed_network("he_normal", 0)
    logits = model(tf.zeros([3, 28, 28, 1]), training=False)
    assert logits.shape == (3, 10) and logits.dtype == tf.float32


def test_parameter_names_and_shapes():
    model = build_seed_network("he_normal", 0)
    assert {n: tuple(v.shape) for n, v in model.params.items()} == PARAMETER_SHAPES
    assert [n.split("/")[0] for n in model.parameter_names][::2] == list(LAYERS)


def test_parameter_count():
    # 5*5*1*32+32 + 5*5*32*64+64 + 3136*1024+1024 + 1024*10+10, as in the TF1 tutorial network.
    model = build_seed_network("he_normal", 0)
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 3_274_634


def test_dropout_only_in_training(health_mnist):
    model = build_seed_network("he_normal", 0)
    images = tf.cast(health_mnist.test_images[:64, ..., None], tf.float32) / 255.0
    assert np.array_equal(model(images, training=False), model(images, training=False))
    assert not np.allclose(model(images, training=True), model(images, training=False))


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (build_seed_network("seed_normal", s) for s in (7, 7, 8))
    assert all(np.array_equal(a.params[n], b.params[n]) for n in PARAMETER_SHAPES)
    assert not np.array_equal(a.params["conv1/kernel"], c.params["conv1/kernel"])
