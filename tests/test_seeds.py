"""``--health-seeds 0,1,2``: one training run per seed, one test per layer and seed, and the summary's
grouped verdict for a fault that shows at some seeds only."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

# A fault that appears in one run of three: the factory leaves the hidden layer frozen at seed 1 only
# (as a data-dependent or racy bug would), the way a benchmark labels faults "shows in about half the runs".
MODELS = textwrap.dedent(
    """
    import tensorflow as tf


    def build(initializer, seed):
        tf.keras.utils.set_random_seed(seed)
        model = tf.keras.Sequential(
            [
                tf.keras.Input((28, 28, 1)),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(32, activation="relu", name="hidden"),
                tf.keras.layers.Dense(10, name="logits"),
            ]
        )
        model.get_layer("hidden").trainable = seed != 1
        model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model
    """
)


def run(tmp_path, *options):
    (tmp_path / "mymodels.py").write_text(MODELS)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--health-model", "mymodels:build"]
    command += ["--health-devices", "cpu", "--health-steps", "10", *options]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_fault_at_one_seed_of_three_is_grouped(tmp_path):
    result = run(tmp_path, "--health-seeds", "0,1,2", "-k", "test_layer_updates")
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert "verdicts over seeds" in out
    assert "test_layer_updates[default-cpu-graph-hidden]: fails at 1 of 3 seeds (1)" in out, out[-3000:]
    assert "_ test_layer_updates[default-cpu-graph-seed1-hidden] _" in out  # the failing run's own report
    assert "logits]: fails" not in out


def test_bad_seed_list_is_refused(tmp_path):
    result = run(tmp_path, "--health-seeds", "0,x")
    assert result.returncode == 4 and "--health-seeds '0,x': give comma-separated" in result.stderr, result.stderr
