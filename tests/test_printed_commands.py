"""A command printed in a message must run as printed: a fix line's calibrate command for a user's model,
data and batch size is taken from a real failure and run, from the same project folder."""

import os
import re
import shlex
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

PROJECT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf


    def build(initializer, seed):
        tf.keras.utils.set_random_seed(seed)
        model = tf.keras.Sequential(
            [tf.keras.Input((28, 28, 1)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(10, name="logits")]
        )
        model.compile(optimizer="sgd", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model


    def data():
        from training_health.data.mnist import load_mnist

        mnist = load_mnist()
        return (mnist.train_images[:2000, ..., None] / 255.0).astype(np.float32), mnist.train_labels[:2000]
    """
)


def run(command, cwd):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_printed_calibrate_command_runs_as_printed(tmp_path):
    (tmp_path / "mymodels.py").write_text(PROJECT)
    options = ["--health-model", "mymodels:build", "--health-data", "mymodels:data", "--health-batch-size", "64"]
    options += ["--health-steps", "10", "--health-devices", "cpu", "--health-min-relative-change", "50"]
    failed = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options], tmp_path)
    assert failed.returncode == 1, failed.stdout[-3000:]
    printed = re.search(r"python -m training_health\.checks\.calibrate [^),\n]*", failed.stdout)
    assert printed, failed.stdout[-3000:]
    command = shlex.split(printed.group(0))
    assert command[3:5] == ["--model", "mymodels:build"] and "--data" in command and "--batch-size" in command
    calibrated = run([sys.executable, *command[1:]], tmp_path)  # as printed, "python" being this interpreter
    assert calibrated.returncode == 0, calibrated.stderr[-3000:]
    out = command[command.index("--out") + 1]
    assert (tmp_path / out).is_file() and 'model = "mymodels:build"' in (tmp_path / out).read_text()
