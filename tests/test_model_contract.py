"""The model contract is checked once, before any training: each broken model or data function ends
the session with one usage error (exit status 4) that says what is wrong and what to do, and no
probe data is written (nothing was trained).

All sessions run in one child process: each costs a model build and one call on 16 real digits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OTHER_MODELS_THRESHOLDS = """[probe]
steps = 30
model = "mypkg.models:build"
[defaults]
relative_change = { min = 0.001 }
frozen_units = { max = 0.5 }
grad_norm = { min = 0.001, max = 100 }
dead_fraction = { max = 0.9 }
"""
pytestmark = pytest.mark.subprocess
BAD = "fixtures.user_models.bad_contract"
BAD_DATA = "fixtures.user_models.bad_data"
HEADS = "fixtures.user_models.heads"
CASES = {
    "probabilities": (
        ["--health-model", f"{BAD}:softmax_probabilities"],
        ["model(images) returns probabilities (every row in [0, 1] and summing to 1", "return logits"],
    ),
    "five_outputs": (
        ["--health-model", f"{BAD}:five_outputs"],
        ["returns outputs [16, 5] but the labels of MNIST", "go up to 9: the last layer needs 10 outputs"],
    ),
    "one_sigmoid_categorical": (
        ["--health-model", f"{BAD_DATA}:one_sigmoid_categorical", "--health-data", f"{HEADS}:zero_vs_rest_data"],
        [
            "returns outputs [16, 1] but the labels of",
            "the last layer needs 2 outputs, one per class; or, for a yes/no "
            "label and one sigmoid output, compile loss='binary_crossentropy'",
        ],
    ),
    "factory_without_arguments": (
        ["--health-model", f"{BAD}:takes_no_arguments"],
        ["takes_no_arguments cannot be called as FUNCTION(initializer, seed)", "FUNCTION(initializer: str, seed: int)"],
    ),
    "factory_returning_a_string": (
        ["--health-model", f"{BAD}:returns_string"],
        ["returned a str ('model-default-0')", "returning a Keras model or a callable tf.Module"],
    ),
    "no_variables": (["--health-model", f"{BAD}:no_variables"], ["the model has no variables", "nothing to check"]),
    "flat_input_without_data": (
        ["--health-model", "fixtures.user_models.flat_input:build"],
        ["the model expects [B,784] but MNIST batches are [B,28,28,1] float32", "Give --health-data MODULE:FUNCTION"],
    ),
    "missing_module": (
        ["--health-model", "mypkg.nosuchmodule:build"],
        ["--health-model mypkg.nosuchmodule:build: cannot import 'mypkg.nosuchmodule'"],
    ),
    "data_without_labels": (
        ["--health-model", "fixtures.user_models.flat_input:build", "--health-data", f"{BAD}:images_without_labels"],
        [f"--health-data {BAD}:images_without_labels: returned a ndarray", "must return (images, labels)"],
    ),
    "data_missing_function": (
        ["--health-data", "fixtures.user_models.flat_input:nosuchdata"],
        ["--health-data fixtures.user_models.flat_input:nosuchdata: fixtures.user_models.flat_input has no callable"],
    ),
    "thresholds_for_another_model": (
        ["--health-model", "fixtures.user_models.keras_convnet:build"],
        ["was calibrated for --health-model mypkg.models:build, not fixtures.user_models.keras_convnet:build"],
    ),
    # Data that cannot be trained (checks/data_checks.py has the ones that can, but wrongly).
    "nan_pixels": (
        ["--health-model", f"{HEADS}:categorical_from_logits", "--health-data", f"{BAD_DATA}:nan_pixels"],
        [f"--health-data {BAD_DATA}:nan_pixels: images contain NaN: 10 values in 10 of 60000 examples", "np.isfinite"],
    ),
    "two_inputs": (
        ["--health-model", f"{BAD}:two_inputs"],
        ["the model has 2 inputs (", "several inputs are not supported yet"],
    ),
    "two_inputs_data": (
        ["--health-model", f"{BAD}:two_inputs", "--health-data", f"{BAD}:two_inputs_data"],
        ["gives 2 model inputs (0: [60000, 28, 28, 1], 1: [60000, 28])", "several inputs are not supported yet"],
    ),
    "labels_counted_from_one": (
        ["--health-model", f"{HEADS}:categorical_from_logits", "--health-data", f"{BAD_DATA}:labels_from_one"],
        ["go up to 10: the last layer needs 11 outputs", "no label is 0", "(1..10), subtract 1"],
    ),
    "fewer_examples_than_one_batch": (
        ["--health-model", f"{HEADS}:categorical_from_logits", "--health-data", f"{BAD_DATA}:fifty_examples"],
        ["has 50 examples, fewer than one batch of 128", "Give at least 128 examples"],
    ),
    "float_labels_for_class_ids": (
        ["--health-model", f"{HEADS}:categorical_from_logits", "--health-data", f"{BAD_DATA}:labels_divided_by_255"],
        [
            f"--health-data {BAD_DATA}:labels_divided_by_255 (labels for the loss of --health-model {HEADS}:",
            "are float targets [60000] with non-integer values",
            "needs class ids 0..C-1",
            "labels divided by 255",
        ],
    ),
    "class_ids_for_a_binary_head": (
        ["--health-model", f"{HEADS}:binary_logit"],
        ["are class ids [60000] with values in [0, 9]", "reads targets in [0, 1]", "labels == 0"],
    ),
    # A factory that ignores its initializer (as the Keras examples' builders do) given a misspelt name.
    "init_typo_the_factory_ignores": (
        ["--health-model", "fixtures.healthy_models.basic_classification:build", "--health-inits", "he_normall"],
        [
            "--health-inits he_normall: neither a Keras initializer nor one of the suite's (did you mean he_normal?)",
            "built exactly the weights it builds for 'default': it ignores the name",
        ],
    ),
    # The Keras guide "Customizing what happens in fit()": a step of the model's own is refused, not skipped (a
    # sixth user's step updating one layer passed 12 of 12; its lower-level example crashed in Keras).
    "overridden_train_step": (
        ["--health-model", "fixtures.user_models.custom_fit:overridden_step"],
        [
            "CustomModel overrides train_step (fixtures.user_models.custom_fit.CustomModel.train_step)",
            "give that step as --health-train-step MODULE:FUNCTION",
        ],
    ),
    "optimizer_only": (
        ["--health-model", "fixtures.user_models.custom_fit:optimizer_only"],
        ["CustomModel overrides train_step", "which fit() would run"],
    ),
    "compiled_without_loss": (
        ["--health-model", "fixtures.user_models.custom_fit:compiled_without_loss"],
        ["the model is compiled without a loss (compile(optimizer=...) alone)", "compile(optimizer=..., loss=...)"],
    ),
    "train_step_signature": (
        [
            "--health-model",
            "fixtures.user_models.custom_step:build",
            "--health-train-step",
            f"{BAD}:images_without_labels",
        ],
        ["--health-train-step", "cannot be called as FUNCTION(model, images, labels)"],
    ),
}


# pytester's in-process runs restore sys.modules afterwards, which TensorFlow does not survive; so all
# sessions run in one child process (one TensorFlow start-up), from a folder outside this repository.
DRIVER = """
import contextlib, io, json, sys
import pytest

results = {}
for name, options in json.loads(sys.argv[1]).items():
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        status = pytest.main([*options, "-p", "no:cacheprovider"])
    results[name] = [int(status), errors.getvalue()]
with open(sys.argv[2], "w") as out:
    json.dump(results, out)
"""


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Each case's pytest session: (exit status, stderr, its probe-output folder)."""
    base = tmp_path_factory.mktemp("user-project")
    thresholds = base / "mine.toml"
    thresholds.write_text(OTHER_MODELS_THRESHOLDS)
    outputs = {name: base / name / "probe-output" for name in CASES}
    options = {name: [*opts, "--health-probe-output", str(outputs[name])] for name, (opts, _) in CASES.items()}
    options["thresholds_for_another_model"] += ["--health-thresholds", str(thresholds)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", DRIVER, json.dumps(options), str(base / "results.json")]
    run = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, check=False, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((base / "results.json").read_text())
    return {name: (status, errors, outputs[name]) for name, (status, errors) in results.items()}


@pytest.mark.parametrize("case", CASES)
def test_broken_contract_is_one_usage_error_before_training(sessions, case):
    status, errors, output = sessions[case]
    assert status == pytest.ExitCode.USAGE_ERROR, errors
    for message in CASES[case][1]:
        assert message in errors, errors
    assert errors.count("training health: bad option(s)") == 1
    assert not list(output.glob("*.json")), "a probe ran although the contract was broken"


def test_probabilities_are_accepted_from_a_model_compiled_for_them():
    """softmax output + a loss with from_logits=False is a consistent Keras model: not refused."""
    import tensorflow as tf

    from fixtures.user_models.bad_contract import softmax_probabilities
    from training_health.model.contract import expects_probabilities

    model = softmax_probabilities("default", 0)
    assert not expects_probabilities(model)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert expects_probabilities(model)
    model.compile(optimizer="sgd", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert not expects_probabilities(model)
