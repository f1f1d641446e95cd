"""Findings that do not stop learning are warnings, not failures (issue 15, item 5; checks/severity.py).

Each new note has a case showing it fires, and the broken variants still fail: a downgrade needs its
premise measured (a bias the normalization cancels; a user model's borrowed bound missed while the
parameter moved as its optimizer's reach says a working layer moves and the loss fell).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.broken_models import model_spec
from training_health.checks import severity
from training_health.checks.health_checks import HealthCheckError, assert_layer_healthy
from training_health.checks.thresholds import load_thresholds
from training_health.data.user_data import load_training_data
from training_health.probe.training_probe import ProbeConfig, run_probe

ROOT = Path(__file__).resolve().parent.parent
BIAS_BEFORE_BN = "fixtures.broken_models:keras_bias_before_batchnorm"
SGD_GUIDE = "fixtures.healthy_models.training_loop_from_scratch"


def offenders_of(traj, thresholds, layer: str) -> list:
    with pytest.raises(HealthCheckError) as caught:  # the checks themselves still report it
        assert_layer_healthy(traj, thresholds, layer)
    return caught.value.offenders


def test_a_bias_cancelled_by_batch_norm_is_a_note(health_trajectories):
    thresholds = load_thresholds()
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", model=BIAS_BEFORE_BN))
    failing, notes = severity.split(traj, offenders_of(traj, thresholds, "conv"), thresholds)
    assert failing == [], failing
    assert notes and all(n.startswith("layer conv: redundant bias: conv/bias") for n in notes), notes
    assert "fix: remove conv's bias (use_bias=False; bn's beta replaces it)" in notes[0]


@pytest.fixture(scope="module")
def slow_sgd_run():
    """The Keras guide's training loop (module-level SGD lr 1e-3, batches of 64): dense_1 moves slowly."""
    data = load_training_data(f"{SGD_GUIDE}:data")
    config = ProbeConfig(model=f"{SGD_GUIDE}:build", initializer="default", batch_size=64)
    return run_probe(ProbeConfig(**{**config.__dict__, "train_step": f"{SGD_GUIDE}:train_step"}), data)


def test_a_slow_but_moving_layer_is_a_note(slow_sgd_run):
    thresholds = load_thresholds()
    failing, notes = severity.split(slow_sgd_run, offenders_of(slow_sgd_run, thresholds, "dense_1"), thresholds)
    assert failing == [], failing
    assert notes[0].startswith("layer dense_1: slow but moving: dense_1/kernel relative change"), notes
    assert "of the path of its 30 steps" in notes[0] and (
        "the loss fell (median of steps 0..5" in notes[0] or "did not rise beyond its noise" in notes[0]
    ), notes


def test_a_slow_layer_of_a_loss_flat_within_its_noise_is_a_note():
    """Seed 1 of the same guide's loop: its single steps ran 2.302 -> 2.355 (batch noise) while its window medians
    fell 0.0015, and dense_1 and predictions failed "no single cause" on the seed network's borrowed minimum."""
    data = load_training_data(f"{SGD_GUIDE}:data")
    config = ProbeConfig(model=f"{SGD_GUIDE}:build", initializer="default", batch_size=64, seed=1)
    traj = run_probe(ProbeConfig(**{**config.__dict__, "train_step": f"{SGD_GUIDE}:train_step"}), data)
    thresholds, judged = load_thresholds(), 0
    for layer in ("dense_1", "predictions"):
        try:
            offenders = offenders_of(traj, thresholds, layer)
        except pytest.fail.Exception:
            continue  # within the borrowed bound at this TF version's initialization
        failing, notes = severity.split(traj, offenders, thresholds)
        assert failing == [], failing
        assert all("slow but moving" in n and "(median of steps 0..5" in n for n in notes), notes
        judged += 1
    assert judged or traj.tf_version.startswith("2.15"), "TF 2.21 measured both layers below the borrowed bound"


def test_a_bound_the_user_set_stays_a_failure(slow_sgd_run):
    """--health-min-relative-change is the user's own bound: missing it is not downgraded."""
    thresholds = load_thresholds(min_relative_change=0.01)
    failing, notes = severity.split(slow_sgd_run, offenders_of(slow_sgd_run, thresholds, "dense_1"), thresholds)
    assert failing and not notes


@pytest.mark.parametrize(
    "sabotage, layer",
    [
        ("tiny_gradient:conv1", "conv1"),
        ("blocked_gradient:conv2", "conv2"),
        ("dead_relu:fc1", "fc1"),
        ("exploding_gradient:fc1", "fc1"),
    ],
)
def test_broken_variants_still_fail(health_trajectories, sabotage, layer):
    thresholds = load_thresholds()
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", model=model_spec(sabotage)))
    failing, _ = severity.split(traj, offenders_of(traj, thresholds, layer), thresholds)
    assert failing, f"{sabotage}: every finding was downgraded"


def test_the_main_job_prints_notes_and_passes(tmp_path, capsys):
    from training_health import cli

    assert cli.main(["--model", BIAS_BEFORE_BN, "--steps", "10", "--out", str(tmp_path)]) == 0
    assert "note (a warning, not a failure): layer conv: redundant bias: conv/bias" in capsys.readouterr().out


@pytest.mark.subprocess
def test_the_plugin_warns_and_lists_notes_in_its_summary(tmp_path):
    command = [sys.executable, "-m", "pytest", "--health-model", BIAS_BEFORE_BN, "--health-devices", "cpu"]
    command += ["-p", "no:cacheprovider", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "TrainingHealthWarning" not in result.stdout, result.stdout[-4000:]  # listed once: not in pytest's summary
    notes = result.stdout.split("training health: notes (warnings, not failures)", 1)[1]
    assert notes.splitlines()[1].startswith("test_layer_updates[default-cpu-graph-conv]: layer conv: redundant bias")
