"""A command printed in a message must run as printed: a fix line's calibrate command for a user's model,
data and batch size is taken from a real failure and run, from the same project folder."""

import os
import re
import shlex
import subprocess
import sys
import textwrap
from types import SimpleNamespace

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


def test_printed_calibrate_command_of_a_check_training_run_names_its_data(tmp_path, monkeypatch):
    """check_training(build, data=data): the command printed left out the data (no --data: it would calibrate on
    MNIST). A module-level function is named and the command runs as printed; data given as arrays cannot be
    named by any command, and the fix line says so instead of printing one."""
    import importlib

    from training_health import check_training
    from training_health.checks.thresholds import load_thresholds
    from training_health.errors import HealthCheckError

    (tmp_path / "fixture_run_models.py").write_text(PROJECT)
    monkeypatch.syspath_prepend(str(tmp_path))
    models = importlib.import_module("fixture_run_models")
    unreachable = load_thresholds(min_relative_change=50)  # as --health-min-relative-change 50 above
    options = dict(batch_size=64, steps=10, thresholds=unreachable, pictures=None)
    with pytest.raises(HealthCheckError) as caught:
        check_training(models.build, data=models.data, **options)
    printed = re.search(r"python -m training_health\.checks\.calibrate [^),\n]*", str(caught.value))
    assert printed, str(caught.value)
    command = shlex.split(printed.group(0))
    assert command[3:7] == ["--model", "fixture_run_models:build", "--data", "fixture_run_models:data"], command
    calibrated = run([sys.executable, *command[1:]], tmp_path)  # as printed, "python" being this interpreter
    assert calibrated.returncode == 0, calibrated.stderr[-3000:]
    assert 'model = "fixture_run_models:build"' in (tmp_path / command[command.index("--out") + 1]).read_text()

    with pytest.raises(HealthCheckError) as caught:
        check_training(models.build, data=models.data(), **options)  # the (images, labels) arrays themselves
    message = str(caught.value)
    assert "calibrate needs the data as a module-level function returning (images, labels)" in message, message
    assert "this run was given it as a Python object, which no command can name" in message, message
    assert "calibrate --model" not in message, message


def test_a_nested_factory_is_no_module_function_for_the_calibrate_command():
    """A factory defined inside a test (``test_x.<locals>.build``) printed as ``--model module:test_x.<locals>.build``
    cannot be imported by calibrate: the fix line says what it needs instead."""
    from training_health.checks.diagnosis import calibration_hint
    from training_health.probe.training_probe import ProbeConfig, callable_label

    def build(initializer, seed):
        raise AssertionError("never built here")

    config = ProbeConfig(model=callable_label(build), factory=build, initializer="default")
    hint = calibration_hint(SimpleNamespace(config=config))
    assert "calibrate needs the model's factory as a module-level function (--model MODULE:FUNCTION)" in hint, hint
    assert "--model " + callable_label(build) not in hint, hint
