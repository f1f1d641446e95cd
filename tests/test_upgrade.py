"""The upgrade report (report/upgrade.py) and --health-initial-weights (model/initial_weights.py).

Both sides of a comparison are recorded here in one TensorFlow version (the suite runs in one env):
two real runs from the same saved weights must read "no difference beyond machine noise"; a run whose
learning rate changed (fixtures/user_models/upgrade_control.py, as a TF upgrade would change it) must
be named with its layer, quantity and first step. The two-version run is in docs/upgrade.md.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from fixtures.user_models import upgrade_control
from training_health.errors import UsageError
from training_health.model import initial_weights
from training_health.probe.training_probe import ProbeConfig, run_probe
from training_health.report import upgrade
from training_health.report.table import write_json
from training_health.tf_logs import SHOW_ENV, is_tf_log_line

CONTROL = "fixtures.user_models.upgrade_control:build"
STEPS = 12  # three windows of the baselines' tolerances, a few seconds per run


@pytest.fixture
def weights_file(tmp_path):
    initial_weights.use(tmp_path / "initial.npz")
    yield tmp_path / "initial.npz"
    initial_weights.use(None)  # the setting is per process: leave none for the next tests


def record(directory, data, learning_rate, build_seed=0):
    """A real run of the control model, written as the probe writes it (--health-probe-output)."""
    upgrade_control.LEARNING_RATE = learning_rate
    try:
        config = ProbeConfig(model=CONTROL, initializer="default", steps=STEPS, seed=0)
        # build_seed: the same configuration built with other weights, as Keras 2 and 3 draw them from one seed
        traj = run_probe(config, data, upgrade_control.build("default", build_seed))
    finally:
        upgrade_control.LEARNING_RATE = None
    write_json(traj, directory)
    return traj


def test_same_weights_same_training_reads_no_difference(tmp_path, weights_file, health_training_data):
    record(tmp_path / "a", health_training_data, 1e-3)
    assert weights_file.exists()  # the first run saved its built weights
    record(tmp_path / "b", health_training_data, 1e-3)
    text = upgrade.report([tmp_path / "a", tmp_path / "b"])
    assert "same initial weights" in text
    assert "no difference beyond machine noise" in text, text


def test_changed_learning_rate_names_layer_quantity_and_first_step(tmp_path, weights_file, health_training_data):
    record(tmp_path / "a", health_training_data, 1e-3)
    record(tmp_path / "b", health_training_data, 3e-3)
    text = upgrade.report([tmp_path / "a", tmp_path / "b"])
    assert "same initial weights" in text
    rows = [line.split() for line in text.splitlines() if line.startswith("    conv/kernel")]
    by_quantity = {" ".join(r[1:-5]): r[-1] for r in rows}
    # Adam's first step is lr-sized: the update/weight ratio parts at step 0; the gradient still agrees there.
    assert by_quantity.get("update_ratio @0") == "0", text
    assert "grad_norm @0" not in by_quantity, text


@pytest.mark.subprocess
def test_the_report_run_keeps_tensorflow_log_lines_out(tmp_path, weights_file, health_training_data):
    """``python -m training_health.report.upgrade`` imports TensorFlow (the baselines' tolerances): its C++ log
    lines stay out of the report's output, as the plugin and the main job keep them out (tf_logs)."""
    record(tmp_path / "a", health_training_data, 1e-3)
    record(tmp_path / "b", health_training_data, 1e-3)
    env = {k: v for k, v in os.environ.items() if k not in (SHOW_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    command = [sys.executable, "-m", "training_health.report.upgrade", str(tmp_path / "a"), str(tmp_path / "b")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0 and "no difference beyond machine noise" in result.stdout, result
    assert not [line for line in result.stderr.splitlines() if is_tf_log_line(line)], result.stderr


def test_different_start_is_said(tmp_path, health_training_data):
    record(tmp_path / "a", health_training_data, 1e-3, build_seed=0)  # no weights file: each run its own
    record(tmp_path / "b", health_training_data, 1e-3, build_seed=1)
    assert "DIFFERENT initial weights" in upgrade.report([tmp_path / "a", tmp_path / "b"])


def test_transferred_weights_are_the_saved_ones(weights_file):
    first = upgrade_control.build("default", 0)
    assert initial_weights.apply(first, "cfg") == "saved"
    second = upgrade_control.build("default", 7)  # another seed: other weights until loaded
    assert initial_weights.apply(second, "cfg") == "loaded"
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_that_do_not_fit_are_one_usage_error_naming_the_parameter(weights_file):
    import tensorflow as tf

    initial_weights.apply(upgrade_control.build("default", 0), "cfg")
    initial_weights.use(weights_file)  # a new session: the file is someone else's now
    other = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), tf.keras.layers.Conv2D(4, 3, name="conv")])
    with pytest.raises(UsageError, match=r"cannot be transferred.*conv/kernel: shape \[5, 5, 1, 8\] in the file"):
        initial_weights.apply(other, "cfg")
    with pytest.raises(UsageError, match="holds no weights for configuration other"):
        initial_weights.apply(other, "other")


def test_weights_of_another_model_are_said_before_training(weights_file):
    initial_weights.apply(upgrade_control.build("default", 0), "cfg")
    problem = initial_weights.misnamed(weights_file, ["conv2d/kernel", "conv2d/bias"])
    assert "cannot be transferred" in problem and "not in the file: conv2d/bias, conv2d/kernel" in problem
    assert initial_weights.misnamed(weights_file, ["conv/kernel", "conv/bias", "logits/kernel", "logits/bias"]) is None
