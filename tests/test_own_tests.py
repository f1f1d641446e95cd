"""A user's own test file checks a model with the ``health_check`` fixture, from a project folder outside
the repository: a factory and a model object, compiled metrics reported, and a broken model failing with
its verdict, not a traceback."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

THEIR_TESTS = textwrap.dedent(
    """
    import tensorflow as tf


    def build(initializer, seed):
        # The Keras "simple MNIST convnet" example's layers at a smaller size, names left to Keras,
        # softmax output with its compiled loss and metrics as the example writes them.
        tf.keras.utils.set_random_seed(seed)
        model = tf.keras.Sequential(
            [
                tf.keras.Input((28, 28, 1)),
                tf.keras.layers.Conv2D(8, 3, activation="relu"),
                tf.keras.layers.MaxPooling2D(2),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


    def build_frozen(initializer, seed):
        model = build(initializer, seed)
        model.layers[0].trainable = False
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


    def test_factory_learns(health_check):
        traj = health_check(build)
        before, after = traj.compiled_metrics["accuracy"]
        assert after > before
        assert traj.config.model == "test_theirs:build"


    def test_model_object_is_labelled_as_such(health_check):
        traj = health_check(build("default", 1), steps=20)
        assert traj.config.model.startswith("object:") and "Sequential" in traj.config.model


    def test_frozen_layer_fails(health_check):
        health_check(build_frozen)


    def test_one_factory_on_two_data(health_check):
        import numpy as np
        from training_health import load_mnist

        mnist = load_mnist()
        images = mnist.train_images[..., None].astype(np.float32) / 255.0
        health_check(build, data=(images[:6000], mnist.train_labels[:6000]))
        health_check(build, data=(images[6000:12000], mnist.train_labels[6000:12000]))


    def resnet(initializer, seed):
        # A residual block as the Keras ResNet examples write it: Conv2D (default bias) -> BatchNormalization
        # -> ReLU, an Add, global average pooling, logits (a second user's healthy model).
        tf.keras.utils.set_random_seed(seed)
        layers = tf.keras.layers
        inputs = tf.keras.Input((28, 28, 1))
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(inputs)))
        y = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(x)))
        y = layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(y))
        x = layers.GlobalAveragePooling2D()(layers.ReLU()(layers.Add()([x, y])))
        model = tf.keras.Model(inputs, layers.Dense(10)(x))
        loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        return model


    def test_biases_before_batch_norm_are_notes_not_failures(health_check):
        health_check(resnet, batch_size=64)


    # What the command line refuses with exit 4, the fixture refuses before training, in one line each.
    def test_refuses_a_misspelt_keyword(health_check):
        health_check(build, batchsize=32)


    def test_refuses_an_unknown_mode(health_check):
        health_check(build, mode="grpah")


    def test_refuses_a_frozen_layer_the_model_lacks(health_check):
        health_check(build, frozen="nonexistent")


    def test_refuses_data_shaped_for_another_model(health_check):
        import numpy as np

        health_check(build, data=(np.zeros((256, 784), "float32"), np.arange(256) % 10))


    def test_refuses_a_seed_that_is_not_a_number(health_check):
        health_check(build, seed="x")


    def test_refuses_a_thresholds_file_that_does_not_exist(health_check):
        health_check(build, thresholds="no-such-thresholds.toml")


    def test_takes_a_thresholds_file_by_its_path(health_check):
        from pathlib import Path

        import training_health.checks.thresholds as th

        health_check(build, thresholds=Path(th.__file__).with_name("thresholds.toml"), steps=10)
    """
)
REFUSED = {
    "test_refuses_a_misspelt_keyword": "health_check: unknown keyword(s) batchsize (did you mean batch_size?)",
    "test_refuses_an_unknown_mode": "health_check: mode='grpah': not one of graph, xla, eager",
    "test_refuses_a_frozen_layer_the_model_lacks": "health_check: frozen=('nonexistent',): no layer 'nonexistent'",
    "test_refuses_data_shaped_for_another_model": "model expects [B,28,28,1] but the given (images, labels) batches",
    "test_refuses_a_seed_that_is_not_a_number": "health_check: seed='x': give a whole number, 0 or more",
    "test_refuses_a_thresholds_file_that_does_not_exist": "thresholds='no-such-thresholds.toml': ",
}


def test_health_check_fixture_in_a_users_test_file(tmp_path):
    (tmp_path / "test_theirs.py").write_text(THEIR_TESTS)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_theirs.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 1 and "7 failed, 5 passed" in out, out[-4000:]
    for test, message in REFUSED.items():
        assert f"FAILED test_theirs.py::{test}" in out, out[-3000:]
        assert message in out, (message, out[-4000:])
    assert "redundant bias: conv2d_1/bias" in out and "use_bias=False" in out, out[-4000:]  # notes, as warnings
    # Only the BatchNorm model's accuracy is marked inference-mode (a Dropout's seed state is not a moving statistic).
    assert out.count("(inference mode: moving statistics lag in a short run)") == 1, out[-4000:]
    assert "FAILED test_theirs.py::test_frozen_layer_fails" in out
    assert re.search(r"weights never updated: conv2d(_\d+)?/kernel, conv2d(_\d+)?/bias", out), out[-4000:]
    assert "Traceback" not in out and "During handling of the above exception" not in out
    assert "accuracy" in out.split("per-layer training health")[1]  # the summary table shows the metric
    # The fix names what a test can change (the fixture's keyword) and code that unfreezes the layer.
    fix = "fix: set trainable = True on layer 'conv2d' (model.layers[0].trainable = True), or declare the freeze: "
    assert fix + 'frozen="conv2d"' in out, out[-4000:]
    assert "--health-frozen" not in out and "--health-steps" not in out, out[-4000:]
    # Fixture runs write no probe JSON: the summary does not point at any.
    assert "probe data (JSON" not in out, out[-2000:]
    # One factory, two data sets, one test: two runs, two ids (the test's, then "#2" of it).
    titles = re.findall(r"^(test_theirs\.build-\S+)  \(", out, flags=re.MULTILINE)
    two = [t for t in titles if "test_one_factory_on_two_data" in t]
    assert len(two) == len(set(two)) == 2 and len(titles) == len(set(titles)), titles
