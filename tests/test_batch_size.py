"""``--health-batch-size N`` (default 128) configures every run: plugin, main job, calibration (issue 15, item 3).

A non-default size shows in the configuration id (probe JSON, pictures) and in the test ids; a bad
size is refused before training (tests/test_bad_options.py: 0, and more than the data has).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_health.probe.training_probe import ProbeConfig, run_probe

ROOT = Path(__file__).resolve().parent.parent
MODEL = "fixtures.user_models.keras_convnet:build"


def test_configuration_id_names_a_non_default_batch_size():
    assert ProbeConfig().id == "he_normal-cpu-graph-seed0-30steps"  # baselines keep their names
    assert ProbeConfig(batch_size=32).id == "he_normal-cpu-graph-seed0-30steps-batch32"


def test_the_run_trains_on_batches_of_the_given_size(health_training_data):
    traj = run_probe(ProbeConfig(model=MODEL, initializer="default", steps=10, batch_size=32), health_training_data)
    assert traj.config.batch_size == 32 and "batch=32" in traj.config.context()
    assert traj.loss.shape == (10,)


@pytest.mark.subprocess
def test_test_ids_show_a_non_default_batch_size(tmp_path):
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "--health-model", MODEL]
    command += ["--health-devices", "cpu", "--health-batch-size", "256"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test_layer_updates[default-cpu-graph-batch256-conv]" in result.stdout, result.stdout[-3000:]


def test_calibrate_refuses_a_batch_larger_than_the_data(tmp_path, capsys):
    from training_health.checks import calibrate

    out = tmp_path / "t.toml"
    assert calibrate.main(["--model", MODEL, "--batch-size", "60001", "--out", str(out)]) == 4
    said = capsys.readouterr().err
    assert "--batch-size 60001: MNIST" in said and "has 60000 examples, fewer than one batch of 60001" in said, said
    assert "give --batch-size 60000 or less" in said and "--health-" not in said and not out.exists()


def test_main_job_takes_the_batch_size(tmp_path, capsys):
    from training_health import cli

    argv = ["--model", MODEL, "--steps", "10", "--batch-size", "32", "--out", str(tmp_path)]
    assert cli.main(argv) == 0, capsys.readouterr().out[-3000:]
    assert "batch32" in capsys.readouterr().out
