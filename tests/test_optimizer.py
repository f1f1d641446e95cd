"""The fused ``ResourceApplyAdam`` step computes TF1's Adam formula (the plain-op reference), and
the probe's measured update is exactly what each weight received."""

import numpy as np
import pytest
import tensorflow as tf

from training_health.model.optimizer import Adam
from training_health.model.seed_network import SeedConvNet
from training_health.probe.training_probe import to_float_images

STEPS = 3
# float32: the kernel computes m += (g - m)(1 - beta1), the reference beta1 m + (1 - beta1) g;
# measured largest difference after 3 steps, he_normal, seed 0: 1.2e-7 (weights ~0.3, steps ~1e-3).
ATOL = 1e-4


def gradients(model, images, labels):
    with tf.GradientTape() as tape:
        logits = model(to_float_images(images), training=False)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return tape.gradient(loss, model.parameters)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_fused_step_matches_the_plain_formula(health_mnist, mode):
    fused_model, plain_model = SeedConvNet("he_normal", 0), SeedConvNet("he_normal", 0)
    fused, plain = Adam(fused_model.parameters), Adam(plain_model.parameters)

    def step(images, labels):
        # As the probe measures a step: read before, apply, read after (reads ordered by control deps).
        before = [tf.identity(p) for p in fused_model.parameters]
        fused.apply(gradients(fused_model, images, labels))
        updates = [tf.identity(p) - b for p, b in zip(fused_model.parameters, before)]
        for p, u in zip(plain_model.parameters, plain.updates(gradients(plain_model, images, labels))):
            p.assign_add(u)
        return before, updates

    run = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
    for s in range(STEPS):
        images, labels = (
            health_mnist.train_images[s * 128 : (s + 1) * 128],
            health_mnist.train_labels[s * 128 : (s + 1) * 128],
        )
        previous = [p.numpy() for p in fused_model.parameters]
        before, updates = run(tf.constant(images), tf.constant(labels))
        for name, p, w, b, u in zip(fused_model.params, fused_model.parameters, previous, before, updates):
            assert np.array_equal(b.numpy(), w), f"{name}: weights before the step were overwritten"
            assert np.array_equal(u.numpy(), p.numpy() - w), f"{name}: measured update is not the applied one"
    for name in fused_model.params:
        diff = np.max(np.abs(fused_model.params[name].numpy() - plain_model.params[name].numpy()))
        assert diff <= ATOL, f"{name}: fused vs plain Adam differ by {diff:.3g} after {STEPS} steps ({mode})"
    assert int(fused.iterations.numpy()) == STEPS
