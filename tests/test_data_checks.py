"""Before the first step: the inputs' scale, the labels and the loss at step 0 (checks/data_checks.py).

Each broken setting trains on real MNIST through the built-in suite and fails its own run-level test with
the cause and the fix; healthy runs pass (tests/test_losses_and_heads.py runs every head through the same
checks; the seed network's healthy initializations are checked here). Data that cannot be trained at all is
refused before training: tests/test_model_contract.py.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training_health.checks.data_checks import check_initial_loss, prior_cross_entropy, untrained_cross_entropy
from training_health.checks.run_checks import RunContext, run_check_names
from training_health.data.user_data import TrainingData
from training_health.errors import HealthCheckError
from training_health.model.initializations import HEALTHY
from training_health.probe.training_probe import ProbeConfig

ROOT = Path(__file__).resolve().parent.parent
BAD_DATA = "fixtures.user_models.bad_data"
HEADS = "fixtures.user_models.heads"
IMBALANCED = "fixtures.healthy_models.imbalanced_mlp"


def test_data_checks_are_registered():
    assert {"input_scale", "labels", "initial_loss"} <= set(run_check_names())


def test_inputs_the_model_scales_or_reads_as_ids_are_not_judged_by_their_scale():
    import tensorflow as tf

    from training_health.checks.data_checks import scales_its_inputs

    layers = tf.keras.layers
    rescaled = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), layers.Rescaling(1 / 255), layers.Conv2D(4, 3)])
    tokens = tf.keras.Sequential([tf.keras.Input((20,)), layers.Embedding(1000, 8), layers.LSTM(4), layers.Dense(2)])
    plain = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), layers.Conv2D(4, 3), layers.Rescaling(1 / 255)])
    assert "Rescaling" in scales_its_inputs(rescaled) and "Embedding" in scales_its_inputs(tokens)
    assert scales_its_inputs(plain) is None  # a scaling after the first weighted layer comes too late


def test_untrained_loss_is_ln_c_for_small_logits_and_grows_with_their_spread():
    assert untrained_cross_entropy(1e-6, 10, binary=False) == pytest.approx(math.log(10), rel=1e-4)
    assert untrained_cross_entropy(1e-6, 1, binary=True) == pytest.approx(math.log(2), rel=1e-4)
    assert untrained_cross_entropy(100.0, 10, binary=False) == pytest.approx(154, rel=0.05)  # ~std x E[max of 10]


def test_a_model_predicting_the_label_frequencies_starts_at_their_entropy():
    """The low side's reference for an output bias at the label prior: the labels' entropy as the logits' spread
    goes to 0 (below ln 2 / ln C whenever the labels are imbalanced), ln C for balanced classes."""
    rare = 0.0055
    entropy = -(rare * math.log(rare) + (1 - rare) * math.log(1 - rare))
    assert prior_cross_entropy([rare], 0.0, binary=True) == pytest.approx(entropy, rel=1e-6)
    assert prior_cross_entropy([0.1] * 10, 1e-6, binary=False) == pytest.approx(math.log(10), rel=1e-4)
    skewed = [0.5, 0.3, 0.2]
    assert prior_cross_entropy(skewed, 0.0, binary=False) == pytest.approx(-sum(f * math.log(f) for f in skewed))
    assert prior_cross_entropy([0.1], 1.0, binary=True) < untrained_cross_entropy(1.0, 1, binary=True)


def seed_run(health_trajectories, health_mnist, init: str) -> RunContext:
    config = ProbeConfig(initializer=init, steps=30)
    traj = health_trajectories.get(config)
    return RunContext(traj, TrainingData.from_mnist(health_mnist), None, lambda: None, config.build_model)


@pytest.mark.parametrize("init", HEALTHY)
def test_seed_networks_healthy_inits_pass_the_initial_loss(health_trajectories, health_mnist, init):
    assert check_initial_loss(seed_run(health_trajectories, health_mnist, init)) == []


def test_seed_networks_n01_init_fails_the_initial_loss_as_oversized_initialization(health_trajectories, health_mnist):
    with pytest.raises(HealthCheckError) as caught:
        check_initial_loss(seed_run(health_trajectories, health_mnist, "seed_normal"))
    message = str(caught.value)
    assert "logits start with std 5.9" in message and "bound 50" in message, message
    assert "cause: oversized initialization (the per-layer verdict)" in message, message
    assert "fc1/kernel 39.6x" in message and "fix: initialize the weights with He normal" in message


def run_suite(tmp_path: Path, model: str, data: str | None = None, *more: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--health-devices=cpu", *more]
    command += ["--health-model", model, f"--health-probe-output={tmp_path / 'out'}", "-k", "training_run"]
    command += ["--health-data", data] if data else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=900)


# (model, data, failing check, what its message must say)
BROKEN = {
    "raw_pixels": (
        f"{HEADS}:categorical_from_logits",
        f"{BAD_DATA}:raw_pixels",
        "input_scale",
        [
            r"the model's inputs have RMS 83\.5 \(max \|x\| 255, float32\), bound RMS <= 10",
            "cause: unscaled pixels",
            "the fix is the input, not the learning rate",
            "fix: divide the images by 255",
        ],
    ),
    "labels_integer_divided_by_255": (
        f"{HEADS}:categorical_from_logits",
        f"{BAD_DATA}:labels_integer_divided_by_255",
        "labels",
        [r"is class 0 \(60000 of 60000\), bound: at least 2 classes", "cause: a single class", "fix: give the labels"],
    ),
    "relu_regression_output": (
        f"{BAD_DATA}:relu_regression_output",
        "fixtures.healthy_models.regression_ink:data",
        "initial_loss",
        [
            r"ReLU on the output layer of a regression: the model's outputs cannot go below 0, but \d+% of the "
            r"targets of fixtures\.healthy_models\.regression_ink:data\(\) are below 0",
            "fix: remove the ReLU from the output layer",
        ],
    ),
    "constant_targets": (
        "fixtures.healthy_models.dense_autoencoder:build",
        f"{BAD_DATA}:constant_targets",
        "labels",
        [r"every label column \(784\) of .*constant_targets\(\) have one value", "cause: a constant target"],
    ),
    "summed_loss": (
        f"{BAD_DATA}:summed_loss",
        None,
        "initial_loss",
        [
            r"loss at step 0 is [\d.]+, 1[23]\dx the 2\.3\d* an untrained model gives",  # ~128 x ln 10
            r"cause: the loss is summed over the batch instead of averaged \(the loss object says reduction='sum'\)",
            "as if the learning rate were 128x larger",
            "fix: average over the batch",
        ],
    ),
    "double_softmax": (
        f"{BAD_DATA}:double_softmax",
        None,
        "initial_loss",
        [
            "double softmax: the model outputs probabilities",
            r"applies softmax again \(from_logits=True\)",
            r"can never go below 1\.46",
            "fix: remove the softmax at the end of the model",
        ],
    ),
    "double_sigmoid": (
        f"{BAD_DATA}:double_sigmoid",
        f"{HEADS}:zero_vs_rest_data",
        "initial_loss",
        [r"double sigmoid: the model outputs probabilities", "fix: remove the sigmoid at the end of the model"],
    ),
    "relu_on_logits": (
        f"{BAD_DATA}:relu_on_logits",
        None,
        "initial_loss",
        [
            "ReLU on the output layer: the model's last activation is a ReLU and the loss "
            r"sparse_categorical_crossentropy reads its outputs as logits",
            r"fix: remove the ReLU from the output layer: a Dense layer without activation",
        ],
    ),
    "logits_as_probabilities": (
        f"{BAD_DATA}:logits_as_probabilities",
        None,
        "initial_loss",
        [
            r"reads probabilities \(from_logits=False\) but the model's outputs are not rows in \[0, 1\] summing to 1",
            r"fix: compile the loss with from_logits=True, or end the model with a softmax",
        ],
    ),
}


@pytest.mark.subprocess
@pytest.mark.parametrize("case", BROKEN)
def test_broken_setting_fails_its_own_check_with_cause_and_fix(tmp_path, case):
    model, data, check, messages = BROKEN[case]
    result = run_suite(tmp_path, model, data)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    # Its own check fails; the only other test allowed to fail is overfit_batch, which a broken loss can also
    # stop (Keras 2 clips logits read as probabilities so that 16 examples cannot be fitted; Keras 3 fits them).
    assert any(f"test_training_run[default-cpu-graph-{check}]" in line for line in failed), failed
    # On raw pixels Keras 2's run ends at ln 10 after 30 steps (TF 2.15: 75.19 -> 2.355, the last window), which
    # loss_decreases fails, naming the inputs as its cause; Keras 3's run falls below it.
    # A ReLU on a regression's output stops the loss too: loss_decreases names the same ReLU.
    flat = ("raw_pixels", "relu_regression_output")
    also = ("-overfit_batch]", "-loss_decreases]") if case in flat else ("-overfit_batch]",)
    assert all(f"-{check}]" in line or any(other in line for other in also) for line in failed), failed
    if any("-loss_decreases]" in line for line in failed):
        cause = "unscaled inputs (RMS 83.5" if case == "raw_pixels" else "ReLU on the output layer of a regression"
        assert f"likely cause: {cause}" in result.stdout, result.stdout[-3000:]
    for pattern in messages:
        assert re.search(pattern, result.stdout), (pattern, result.stdout[-3000:])
    assert "During handling of the above exception" not in result.stdout  # the verdict once, no traceback


@pytest.mark.subprocess
def test_unscaled_inputs_are_the_cause_of_the_oversized_initial_loss_they_make(tmp_path):
    """The TF "Basic classification" MLP on raw 0..255 pixels: its logits start ~250x too spread, so initial_loss
    fails too; its cause is the inputs (tried first), never "a factor after the last layer" (a first user's run)."""
    result = run_suite(tmp_path, "fixtures.healthy_models.basic_classification:build", f"{BAD_DATA}:raw_pixels")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_training_run[default-cpu-graph-input_scale]" in result.stdout, result.stdout[-3000:]
    if "test_training_run[default-cpu-graph-initial_loss]" in result.stdout:
        assert "cause: unscaled inputs (RMS 83.5, bound 10: test input_scale)" in result.stdout, result.stdout[-3000:]
    assert "a factor after the last layer" not in result.stdout, result.stdout[-3000:]


def failure_of(stdout: str, check: str) -> str:
    """The failure section pytest printed for ``test_training_run[...-<check>]`` ("" if it did not fail)."""
    found = re.search(rf"_+ test_training_run\[[^\]]*-{check}\] _+\n(.*?)(?=\n_{{3,}} |\n={{3,}} )", stdout, re.S)
    return found.group(1) if found else ""


@pytest.mark.subprocess
@pytest.mark.parametrize("task", ["common", "rare"])
def test_an_output_bias_at_the_label_prior_passes_every_check(tmp_path, task):
    """The TF tutorial "Classification on imbalanced data" MLP with its careful initial bias log(pos / neg), batch
    2048, at 9.9% and 0.55% positives: its loss at step 0 is near the labels' entropy, far under ln 2 (0.042x the
    zero-mean prediction at 0.55%), and that is no divided loss: every check passes at seeds 0-2 (a first user's run
    was told to compute the loss as the mean over the batch)."""
    more = ("--health-batch-size", "2048", "--health-seeds", "0,1,2")
    result = run_suite(tmp_path, f"{IMBALANCED}:{task}", f"{IMBALANCED}:{task}_data", *more)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "initial_loss" not in result.stdout.split("per-layer training health")[0], result.stdout[-3000:]


@pytest.mark.subprocess
@pytest.mark.parametrize("task", ["common", "rare"])
def test_a_loss_divided_by_the_batch_twice_fails_the_initial_loss(tmp_path, task):
    """The same MLP and prior bias with each example's loss divided by the batch before Keras averages it again:
    ~1/2048 of what a model predicting the label frequencies gets, so still red, with the cause and the fix."""
    result = run_suite(
        tmp_path, f"{IMBALANCED}:{task}_divided_twice", f"{IMBALANCED}:{task}_data", "--health-batch-size", "2048"
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("-initial_loss]" in line for line in failed), failed
    message = " ".join(failure_of(result.stdout, "initial_loss").split())
    assert re.search(r"loss at step 0 is [\d.e-]+, 0\.00\d+x the", message), message
    assert "an untrained model whose output bias predicts the first batch's label frequencies" in message, message
    assert "cause: an untrained model cannot predict its labels better than their frequencies" in message, message
    assert "fix: compute the loss as the mean over the batch of each example's loss" in message, message


@pytest.mark.subprocess
def test_unscaled_inputs_not_a_scaled_loss_explain_the_imbalanced_mlp_s_initial_loss(tmp_path):
    """The same MLP on raw 0..255 pixels (the tutorial's StandardScaler step forgotten): input_scale names them, and
    initial_loss names them too (tried before the loss-scaling causes), never the mean-over-batch fix, and never
    calls its logits (std ~27, every healthy untrained model under 6.7) "at a normal scale" (a first user's run)."""
    result = run_suite(
        tmp_path, f"{IMBALANCED}:common", f"{BAD_DATA}:raw_flat_zero_or_not", "--health-batch-size", "2048"
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert failure_of(result.stdout, "input_scale"), result.stdout[-3000:]
    message = " ".join(failure_of(result.stdout, "initial_loss").split())
    if not message and importlib.metadata.version("keras").startswith("2."):
        return  # Keras 2 clips the sigmoid's output, so the loss starts at 30.85, within 4x of the 8.7 predicted
    assert "cause: unscaled inputs (RMS 83.5, bound 10: test input_scale)" in message, message
    assert "evidence: logits already large (std" in message, message
    assert "fix: divide the images by 255" in message, message
    assert "mean over the batch" not in message and "normal scale" not in message, message


@pytest.mark.subprocess
def test_a_softmax_keras_reads_through_is_a_note_not_a_double_softmax(tmp_path):
    """Dense(10, softmax) compiled with from_logits=True: Keras takes the logits under the softmax itself, so the
    run trains as it should. It failed as "double softmax ... can never go below 1.46" (a fifth user's small
    Xception, its table and loss the healthy model's digit for digit); now a note saying what was measured. The
    same softmax hidden from the loss by a Reshape still fails (BROKEN["double_softmax"])."""
    result = run_suite(tmp_path, f"{BAD_DATA}:softmax_read_through")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert "Keras reads the logits under the softmax itself, so this run trains as it should" in said, said[-3000:]
    assert re.search(r"the loss on the model's outputs [\d.]+, on the same values as plain logits [\d.]+", said)
    assert "double softmax" not in said, said[-3000:]


@pytest.mark.subprocess
def test_binary_crossentropy_over_a_softmax_is_a_note(tmp_path):
    """Dense(10, softmax) + binary_crossentropy on one-hot labels passed without a word (a fifth user's convnet: 40%
    accuracy in 30 steps against 82% with categorical_crossentropy); it learns, so a note naming the loss."""
    result = run_suite(tmp_path, f"{BAD_DATA}:softmax_binary_crossentropy", f"{HEADS}:one_hot_data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert "reads each of the 10 outputs as a yes/no answer of its own, but they are a softmax" in said, said[-3000:]
    assert "Compile loss='categorical_crossentropy'" in said, said[-3000:]


@pytest.mark.subprocess
def test_class_ids_for_a_one_hot_loss_pass_with_a_note(tmp_path):
    """The suite trains them (converted), but the user's own fit on those arrays would fail: a note, not green
    silence (a first user's report) and not red (the model trains)."""
    result = run_suite(tmp_path, f"{HEADS}:categorical_from_logits", f"{BAD_DATA}:scaled_class_ids")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert "are class ids [60000], but the loss" in said and "reads one-hot rows [N, 10]" in said, said[-3000:]
    assert "keras.utils.to_categorical(labels, 10)" in said, said[-3000:]


@pytest.mark.subprocess
def test_one_hot_rows_for_a_sparse_loss_pass_with_a_note(tmp_path):
    """The reverse (a first user's sparse_categorical_crossentropy MLP on one-hot labels passed without a word,
    where Keras' fit on those arrays fails): the same note."""
    result = run_suite(tmp_path, "fixtures.healthy_models.basic_classification:build", f"{HEADS}:one_hot_data")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert "are one-hot rows [60000, 10], but the loss" in said and "reads class ids [N]" in said, said[-3000:]
    assert "labels.argmax(axis=-1), or compile categorical_crossentropy" in said, said[-3000:]


@pytest.mark.subprocess
def test_raw_pixels_are_every_failing_layer_s_cause_not_the_learning_rate(tmp_path):
    """SGD with momentum on raw 0..255 pixels: each layer and loss check that fails names the inputs and the
    division by 255; none says to lower the learning rate (a first user's convnet got three different ones)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--health-devices=cpu",
        "-k",
        "layer_updates",
    ]
    command += ["--health-model", "fixtures.user_models.compiled_keras:sgd_momentum", "--health-data"]
    command += [f"{BAD_DATA}:raw_pixels", f"--health-probe-output={tmp_path / 'out'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    fixes = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("fix:")]
    assert fixes and all("divide the images by 255" in fix for fix in fixes), fixes
    assert "lower the learning rate" not in result.stdout, result.stdout[-3000:]


@pytest.mark.subprocess
def test_a_normalization_never_adapted_is_named_as_what_scales_nothing(tmp_path):
    """A Normalization layer never adapted (mean 0, variance 1) in front of raw pixels: the inputs are unscaled and
    the fix is to adapt it (a user's run was told "scaled output ... remove the factor on the model's output");
    adapted, the same model on the same pixels passes every check of the run."""
    result = run_suite(tmp_path, f"{BAD_DATA}:never_adapted_normalization", f"{BAD_DATA}:raw_pixels")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_training_run[default-cpu-graph-input_scale]" in result.stdout, result.stdout[-3000:]
    fixes = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("fix:")]
    assert fixes and all("adapt the model's Normalization layer" in fix for fix in fixes), fixes
    adapted = run_suite(tmp_path, f"{BAD_DATA}:adapted_normalization", f"{BAD_DATA}:raw_pixels")
    assert adapted.returncode == 0, adapted.stdout[-3000:] + adapted.stderr[-2000:]


@pytest.mark.subprocess
def test_labels_shuffled_apart_from_their_images_fail_once_the_steps_can_tell(tmp_path):
    """Labels shuffled apart from their images: at 30 steps a note names the steps that decide (4x the 16-example
    fit's), and at those steps loss_decreases fails naming the labels (a user's note asked for 3x more steps at
    every length); the same model on the same images with their own labels passes at those steps."""
    model, apart = "fixtures.healthy_models.basic_classification:build", f"{BAD_DATA}:labels_shuffled_apart"
    short = run_suite(tmp_path, model, apart)
    assert short.returncode == 0, short.stdout[-3000:] + short.stderr[-2000:]
    said = " ".join(short.stdout.split())
    decides = re.search(r"give --health-steps (\d+) to tell them apart", said)
    assert decides, said[-3000:]
    steps = decides.group(1)
    long = run_suite(tmp_path, model, apart, "--health-steps", steps)
    assert long.returncode == 1 and "-loss_decreases]" in long.stdout, long.stdout[-3000:]
    assert "likely cause: the labels do not follow from the inputs" in long.stdout, long.stdout[-3000:]
    assert "fix: check that images[i] and labels[i] belong together" in long.stdout, long.stdout[-3000:]
    own_labels = run_suite(tmp_path, model, f"{BAD_DATA}:scaled_class_ids", "--health-steps", steps)
    assert own_labels.returncode == 0, own_labels.stdout[-3000:]


@pytest.mark.subprocess
def test_images_divided_by_255_twice_are_named_as_why_the_loss_stays_flat(tmp_path):
    """A Rescaling(1/255) model given images already in [0, 1]: the first conv sees RMS ~0.001 and the loss stays
    at ln 10; loss_decreases fails naming the double scaling (a user's got a 'slow start' note); the same model on
    raw pixels passes."""
    model = f"{BAD_DATA}:rescaling_convnet"
    twice = run_suite(tmp_path, model, f"{BAD_DATA}:scaled_class_ids")
    assert twice.returncode == 1 and "-loss_decreases]" in twice.stdout, twice.stdout[-3000:]
    said = " ".join(twice.stdout.split())
    assert "likely cause: inputs far below the usual scale: the first weighted layer sees RMS 0.001" in said, said
    assert "fix: scale the images once: the data is already in [0, 1], so remove the model's rescaling" in said, said
    once = run_suite(tmp_path, model, f"{BAD_DATA}:raw_pixels")
    assert once.returncode == 0, once.stdout[-3000:]


@pytest.mark.subprocess
def test_a_dataset_batched_at_another_size_is_a_note(tmp_path):
    """The check trains at --health-batch-size (128): a Dataset's .batch(64) is said, not silently replaced."""
    result = run_suite(tmp_path, "fixtures.healthy_models.basic_classification:build", f"{BAD_DATA}:batched_by_64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stdout.split())
    assert "is a tf.data.Dataset batched by 64, but this check trained with batches of 128" in said, said[-3000:]
    assert "Give --health-batch-size 64" in said, said[-3000:]


@pytest.mark.subprocess
def test_softmax_over_one_unit_is_named_with_its_fix(tmp_path):
    """The output is always 1, so every gradient is 0: the cause, not the symptom ("gradient zero at most steps")."""
    result = run_suite(tmp_path, f"{BAD_DATA}:softmax_one_unit", f"{HEADS}:zero_vs_rest_data")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "test_training_run[default-cpu-graph-initial_loss]" in result.stdout, result.stdout[-3000:]
    assert (
        "initial_loss: softmax over one unit: the model ends in a softmax over a single output, which is "
        "always 1 (measured before training: outputs mean 1, RMS 1" in result.stdout
    ), result.stdout[-3000:]
    assert "fix: for a binary label end in Dense(1, activation='sigmoid')" in result.stdout


def test_constant_target_columns_beside_varying_ones_are_a_note():
    """The Keras blog's dense autoencoder: 67 of MNIST's 784 pixels are 0 in every training image, so 67 target
    columns are constant by nature (a sixth user's autoencoders were red "a constant target"); the model learns."""
    from fixtures.healthy_models import dense_autoencoder
    from training_health.checks.data_checks import check_labels
    from training_health.own_tests import train

    _, run = train(dense_autoencoder.build, dense_autoencoder.data, None, 10, 256, 0, "default", "graph", None, None)
    notes = check_labels(run)
    assert len(notes) == 1 and notes[0].startswith("67 of 784 target columns of "), notes
    assert "(columns 0, 1, 2, 3, 4, 5, 6, 7, ...)" in notes[0], notes[0]


def test_sigmoids_under_a_softmax_loss_are_judged_by_what_the_loss_reads():
    """Ten sigmoids under sparse_categorical_crossentropy: Keras (2.15 and 3) takes the logits under the sigmoids
    (a sixth user's digits MLP trained exactly as the logits model: a note, where initial_loss said Keras clips
    them); behind a Reshape the loss reads the sigmoid outputs as probabilities, which do not sum to 1: it fails."""
    from fixtures.user_models.bad_data import sigmoid_sparse, sigmoid_sparse_hidden
    from training_health.own_tests import train

    _, run = train(sigmoid_sparse, None, None, 10, 128, 0, "default", "graph", None, None)
    notes = check_initial_loss(run)
    assert any("Keras reads the logits under the sigmoid itself" in n for n in notes), notes
    _, run = train(sigmoid_sparse_hidden, None, None, 10, 128, 0, "default", "graph", None, None)
    with pytest.raises(HealthCheckError, match="logits read as probabilities"):
        check_initial_loss(run)


def test_an_untrained_regression_may_correlate_with_its_targets():
    """MSE's untrained reference assumes outputs uncorrelated with the targets (E y^2 + E f^2); a random linear map
    of real features may correlate, down to (std y - std f)^2 (a sixth user's linear model on diabetes features
    started at 0.46x the uncorrelated prediction and was told its loss was averaged twice). The low side of
    initial_loss is that floor: the same start passes, a loss divided by the batch (1/32) still fails."""
    import types

    import numpy as np

    from training_health.checks.data_checks import correlated_outputs_loss
    from training_health.model.losses import REGRESSION, LossKind

    rng = np.random.default_rng(0)
    targets = rng.standard_normal(4096).astype(np.float32)
    kind = LossKind(family=REGRESSION, from_logits=False, name="mse")
    traj = types.SimpleNamespace(loss_kind=kind, outputs_start={"mean": 0.0, "rms": math.sqrt(2.3)})
    config = ProbeConfig(model="mod:build", initializer="default", steps=30, batch_size=32)
    run = types.SimpleNamespace(trajectory=traj, data=types.SimpleNamespace(train_labels=targets), config=config)
    floor, derivation = correlated_outputs_loss(run)
    std = float(np.std(targets[:32]))  # order does not matter for the bound's scale: ~1 either way
    assert 0.1 < floor < 0.5 and 1.53 > 0.5 * floor and 3.31 / 32 < 0.5 * floor, (floor, std)
    assert "correlated with the first batch's targets" in derivation, derivation
