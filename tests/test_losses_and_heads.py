"""The loss decides, not its spelling: every compiled Keras loss, label form and head is trained as ``fit``
would and passes the built-in suite (real MNIST, 30 real steps, ``fixtures/user_models/heads.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training_health.model import losses

ROOT = Path(__file__).resolve().parent.parent
HEADS = "fixtures.user_models.heads"
keras = tf.keras


def compiled_kind(loss) -> losses.LossKind:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=loss)
    return losses.loss_kind(model)


@pytest.mark.parametrize(
    ("loss", "family", "from_logits"),
    [
        ("categorical_crossentropy", losses.CATEGORICAL, False),
        ("CategoricalCrossentropy", losses.CATEGORICAL, False),
        (keras.losses.categorical_crossentropy, losses.CATEGORICAL, False),
        (keras.losses.CategoricalCrossentropy(from_logits=True), losses.CATEGORICAL, True),
        ("sparse_categorical_crossentropy", losses.SPARSE, False),
        (keras.losses.SparseCategoricalCrossentropy(from_logits=True), losses.SPARSE, True),
        ("binary_crossentropy", losses.BINARY, False),
        (keras.losses.BinaryCrossentropy(from_logits=True), losses.BINARY, True),
        ("mse", losses.REGRESSION, False),
        (keras.losses.MeanAbsoluteError(), losses.REGRESSION, False),
        (lambda y, p: tf.reduce_mean(tf.abs(y - p)), losses.OTHER, False),
    ],
)
def test_loss_kind_is_resolved_from_any_spelling(loss, family, from_logits):
    kind = compiled_kind(loss)
    assert (kind.family, kind.from_logits) == (family, from_logits), kind


def test_uncompiled_model_gets_the_suites_recipe_and_summed_losses_are_named():
    assert losses.loss_kind(keras.Sequential([keras.layers.Dense(2)])) == losses.SUITE_LOSS
    summed = compiled_kind(keras.losses.CategoricalCrossentropy(reduction="sum"))
    assert summed.reduction == "sum" and "summed over the batch" in summed.describe()


def test_labels_reach_the_loss_in_the_form_it_reads():
    ids, one_hot, predictions = tf.constant([2, 0]), tf.one_hot([2, 0], 3), tf.zeros([2, 3])
    categorical, sparse = compiled_kind("categorical_crossentropy"), compiled_kind("sparse_categorical_crossentropy")
    np.testing.assert_array_equal(losses.targets_for_loss(categorical, ids, predictions), one_hot)
    np.testing.assert_array_equal(losses.targets_for_loss(sparse, one_hot, predictions), [2, 0])
    binary = losses.targets_for_loss(compiled_kind("binary_crossentropy"), tf.constant([1.0, 0.0]), tf.zeros([2, 1]))
    assert binary.shape == (2, 1) and binary.dtype == tf.float32


def run_suite(tmp_path: Path, model: str, data: str | None) -> tuple[subprocess.CompletedProcess, dict]:
    """The built-in suite on ``model`` from a folder outside the repository; returns the run and its probe JSON."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--health-devices=cpu"]
    command += ["--health-model", f"{HEADS}:{model}", f"--health-probe-output={tmp_path / 'out'}"]
    command += ["--health-data", f"{HEADS}:{data}"] if data else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=900)
    probes = list((tmp_path / "out").glob("*.json"))
    return result, json.loads(probes[0].read_text()) if probes else {}


# (factory, data function or None for MNIST's class ids, family the run must have resolved)
HEALTHY_HEADS = {
    "one_hot_softmax_categorical_crossentropy": ("categorical_one_hot", "one_hot_data", losses.CATEGORICAL),
    "class_name_string_on_class_ids": ("categorical_class_name", None, losses.CATEGORICAL),
    "loss_function_object": ("categorical_function", None, losses.CATEGORICAL),
    "logits_from_logits_true": ("categorical_from_logits", "one_hot_data", losses.CATEGORICAL),
    "binary_sigmoid": ("binary_sigmoid", "zero_vs_rest_data", losses.BINARY),
    "binary_logit": ("binary_logit", "zero_vs_rest_data", losses.BINARY),
    "multi_label_sigmoids": ("multi_label", "multi_label_data", losses.BINARY),
    "regression_mse": ("regression", "digit_value_data", losses.REGRESSION),
}


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory):
    """Each case's suite run, made once: ``suite_runs(case) -> (result, probe JSON)``."""
    runs = {}

    def run(case):
        if case not in runs:
            model, data, _ = HEALTHY_HEADS[case]
            runs[case] = run_suite(tmp_path_factory.mktemp(case), model, data)
        return runs[case]

    return run


@pytest.mark.subprocess
@pytest.mark.parametrize("case", HEALTHY_HEADS)
def test_healthy_head_passes_the_built_in_suite(suite_runs, case):
    result, probe = suite_runs(case)
    family = HEALTHY_HEADS[case][2]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " failed" not in result.stdout and " passed" in result.stdout, result.stdout[-2000:]
    assert probe["loss_kind"]["family"] == family, probe["loss_kind"]
    assert probe["loss"][-1] < probe["loss"][0], probe["loss"]  # it learned, as fit would
    if family == losses.REGRESSION:  # logit statistics do not apply to a regression head
        assert probe["logit_std_start"] == "NaN" and "regression head: no logits" in result.stdout
    else:
        assert 0 < probe["logit_std_start"] < 50 and probe["saturated_fraction_start"] < 0.5


@pytest.mark.subprocess
def test_every_spelling_of_categorical_crossentropy_trains_the_same(suite_runs):
    """Same network, seed and batches: one-hot data or class ids, string, class name, function, probabilities
    or logits: the same loss curve (up to float rounding of softmax-then-log against log-softmax)."""
    reference = np.array(suite_runs("one_hot_softmax_categorical_crossentropy")[1]["loss"])
    for case in ("class_name_string_on_class_ids", "loss_function_object", "logits_from_logits_true"):
        np.testing.assert_allclose(suite_runs(case)[1]["loss"], reference, rtol=2e-3, err_msg=case)


def test_uncompiled_model_on_one_hot_data_trains_on_the_class_ids(health_mnist):
    """The suite's own recipe (softmax cross-entropy on class ids) takes one-hot data as their argmax:
    the same run as on the ids themselves."""
    from training_health.data.user_data import TrainingData
    from training_health.probe.training_probe import ProbeConfig, run_probe

    images = (health_mnist.train_images[:2000].astype("float32") / 255.0)[..., None]
    ids = health_mnist.train_labels[:2000]
    config = ProbeConfig(model="fixtures.user_models.keras_convnet:build", initializer="default", steps=10)
    runs = [
        run_probe(config, TrainingData(images, labels, "test")) for labels in (ids, np.eye(10, dtype="float32")[ids])
    ]
    assert runs[1].recipe == "TF1 Adam lr=0.001, softmax cross-entropy"
    np.testing.assert_allclose(runs[1].loss, runs[0].loss, rtol=1e-6)


def test_data_functions_keep_one_hot_labels_from_arrays_and_datasets(health_mnist):
    """One-hot labels survive arrays, single-example Datasets and batched ones (drop_remainder too)."""
    from training_health.data.user_data import _arrays_from

    images = (health_mnist.train_images[:300].astype("float32") / 255.0)[..., None]
    one_hot = np.eye(10, dtype="float32")[health_mnist.train_labels[:300]]
    slices = tf.data.Dataset.from_tensor_slices((images, one_hot))
    for returned in ((images, one_hot), slices, slices.batch(32), slices.batch(100, drop_remainder=True)):
        got_images, labels = _arrays_from(returned, "mine:data", "--health-data")
        assert got_images.shape == (300, 28, 28, 1) and labels.shape == (300, 10), type(returned)
        np.testing.assert_array_equal(labels, one_hot)


def test_compiled_metrics_of_one_output_read_targets_shaped_like_it():
    """The TF tutorial "Overfit and underfit" compiles keras.metrics.BinaryCrossentropy(from_logits=True) beside
    "accuracy" on a Dense(1) logit: evaluate refused the [N] labels (ranks apart) and the metrics went missing ({}),
    so traj.compiled_metrics["accuracy"] raised KeyError (a fifth user)."""
    from fixtures.user_models.heads import _convnet, zero_vs_rest_data
    from training_health.probe.compiled_metrics import compiled_metrics

    model = _convnet(1, None, "default", 0)
    model.compile(
        optimizer="adam",
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryCrossentropy(from_logits=True, name="binary_crossentropy"), "accuracy"],
    )
    images, labels = zero_vs_rest_data()
    measured = compiled_metrics(model, images[:64], labels[:64])
    assert set(measured) == {"binary_crossentropy", "accuracy"}, measured
    assert 0.0 <= measured["accuracy"] <= 1.0 and measured["binary_crossentropy"] > 0, measured
