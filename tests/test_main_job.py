"""The main job (``python -m training_health``) gives the verdict pytest gives for the same model and data: it
runs the per-layer checks and every run-level check of the registry (``checks/run_checks.py``), and exits 1
when any fails (a first user's report: raw 0..255 pixels were "every check passes", exit 0, from the main job
while pytest failed input_scale).

The models are the Keras "Simple MNIST convnet" example's (``fixtures/user_models/heads.py``), its logits
under categorical cross-entropy with ``from_logits=True``, on real MNIST.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_health.checks import run_checks

ROOT = Path(__file__).resolve().parent.parent
HEADS = "fixtures.user_models.heads"
MODEL = f"{HEADS}:categorical_from_logits"


def main_job(tmp_path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "training_health", "--model", MODEL, "--out", str(tmp_path / "out"), *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600)


@pytest.mark.subprocess
def test_raw_pixels_fail_input_scale_as_in_pytest(tmp_path):
    """pytest on this pair fails test_training_run[default-cpu-graph-input_scale] alone (tests/test_data_checks.py)."""
    result = main_job(tmp_path, "--data", "fixtures.user_models.bad_data:raw_pixels")
    said = result.stdout + result.stderr
    assert result.returncode == 1, said[-3000:]
    assert "verdict: flagged" in said and "every check passes" not in said, said[-3000:]
    assert "input_scale: the model's inputs have RMS 83.5 (max |x| 255, float32), bound RMS <= 10" in said, said[-3000:]
    assert "fix: divide the images by 255" in said, said[-3000:]
    assert "Traceback" not in said, said[-3000:]


def test_a_healthy_run_passes_every_check(tmp_path, capsys):
    from training_health import cli

    status = cli.main(["--model", MODEL, "--data", f"{HEADS}:one_hot_data", "--out", str(tmp_path)])
    said = capsys.readouterr().out
    assert status == 0, said[-3000:]
    assert "verdict: every check passes" in said and "verdict: flagged" not in said, said[-3000:]
    assert "run-level checks" in said  # their time is in the split: they ran


def test_every_check_of_the_registry_runs_and_a_crash_is_one_failure(tmp_path, capsys, monkeypatch):
    """No second list: a check added to the registry runs in the main job. One that raises is a failure naming the
    exception (pytest errors on it: red either way), without a traceback, and the checks after it still run."""
    from training_health import cli

    ran = []

    def crashing(run):
        raise ZeroDivisionError("float division by zero")

    def noting(run):
        ran.append(run.config.id)
        return ["a finding that does not stop learning"]

    run_checks.run_check_names()  # the registry as the plugin collects it, every module's checks imported
    registry = {"crashing": crashing, **run_checks.RUN_CHECKS, "noting": noting}
    monkeypatch.setattr(run_checks, "RUN_CHECKS", registry)
    status = cli.main(["--model", MODEL, "--data", f"{HEADS}:one_hot_data", "--steps", "10", "--out", str(tmp_path)])
    said = capsys.readouterr().out
    assert status == 1, said[-3000:]
    crash = "crashing: the check could not decide: ZeroDivisionError: float division by zero (at test_main_job.py:"
    assert crash in said, said[-3000:]
    assert "a defect of the check, not a verdict on the model" in said and "Traceback" not in said, said[-3000:]
    note = "note (a warning, not a failure): noting: a finding that does not stop learning"
    assert ran and note in said, said[-3000:]


def test_outside_the_main_job_a_crashing_check_propagates(monkeypatch):
    """check_training and the health_check fixture let a check's own defect through (pytest shows it as an error)."""

    def crashing(run):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(run_checks, "RUN_CHECKS", {"crashing": crashing})
    monkeypatch.setattr(run_checks, "RUN_CHECK_MODULES", ())
    with pytest.raises(ZeroDivisionError):
        run_checks.run_every_check(run_checks.RunContext(None, None, None, lambda: None, lambda: None))


@pytest.mark.subprocess
def test_a_train_step_without_a_model_is_one_usage_error(tmp_path):
    """As in the plugin (tests/test_bad_options.py): the step trains the model it was written for, which only
    --model gives; refused before its module is imported (there is none here) and before any training."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "training_health", "--train-step", "mysteps:train_step", "--out", "out"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.count("--train-step mysteps:train_step without --model: a train step trains the model") == 1
    assert "Give --model MODULE:FUNCTION" in result.stderr and "--health-" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_calibrate_refuses_a_train_step_without_a_model(capsys):
    from training_health.checks import calibrate

    with pytest.raises(SystemExit) as exited:
        calibrate.main(["--train-step", "mysteps:train_step", "--seeds", "1"])
    assert exited.value.code == 2  # argparse's: an argument combination, like --model without --out
    assert "--train-step mysteps:train_step needs --model" in capsys.readouterr().err
