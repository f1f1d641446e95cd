"""The resume check (issue 18 item 2): training resumed from a checkpoint continues the same training.

Real MNIST, real steps: k = 5 steps straight on, and 5 steps -> save -> restore into a freshly built model
-> 5 steps, on the same batches. A complete checkpoint resumes bit for bit (tolerance 0, measured here
on every compared step); a checkpoint without the optimizer, or without the iteration counter a
learning-rate schedule reads, fails naming what is missing, the first divergent step and the fix.
Dropout state left out is a warning (other draws from the same distribution).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_health.checks import resume
from training_health.errors import HealthCheckError
from training_health.probe.training_probe import ProbeConfig

ROOT = Path(__file__).resolve().parents[1]
MODELS = "fixtures.user_models.resume_models"
SEED = ProbeConfig(initializer="he_normal")
KERAS_SCHEDULE = ProbeConfig(model=f"{MODELS}:sgd_exponential_decay", initializer="default")
KERAS_DROPOUT = ProbeConfig(model=f"{MODELS}:mnist_convnet", initializer="default")
SUBCLASSED = ProbeConfig(model="fixtures.user_models.subclassed:build", initializer="default")  # unbuilt, uncompiled
QUICKSTART = ProbeConfig(
    model="fixtures.user_models.quickstart_expert:build",
    train_step="fixtures.user_models.quickstart_expert:train_step",
    initializer="default",
)
OWN_STEP = ProbeConfig(
    model="fixtures.user_models.custom_step:build",
    train_step="fixtures.user_models.custom_step:train_step",
    initializer="default",
)


def resumed(config, data, own: str | None = None) -> resume.ResumeResult:
    method = None
    if own:
        from fixtures.user_models import resume_models

        save, restore = getattr(resume_models, f"save_{own}"), getattr(resume_models, f"restore_{own}")
        method = resume.own_method(config, save, restore, f"{MODELS}:save_{own}")
    return resume.run_resume(config, data, config.build_model, method)


def failure(result: resume.ResumeResult) -> str:
    with pytest.raises(HealthCheckError) as caught:
        resume.assert_resume_equivalent(result, "ctx")
    return str(caught.value)


COMPLETE = {"seed": SEED, "keras_schedule": KERAS_SCHEDULE, "train_step": OWN_STEP, "subclassed": SUBCLASSED}


@pytest.mark.parametrize("config", COMPLETE.values(), ids=COMPLETE.keys())
def test_a_complete_checkpoint_resumes_bit_identically(health_training_data, config):
    """The seed network (tf.train.Checkpoint with its TF1 Adam), a compiled Keras model (model.save(.keras) +
    load_model), a --health-train-step model whose optimizer is model.optimizer (model.save(.keras)) and an
    uncompiled subclassed model built by its first call (tf.train.Checkpoint with the suite's TF1 Adam)."""
    result = resumed(config, health_training_data)
    assert all(not found for found in result.differences), [sorted(found) for found in result.differences]
    assert resume.assert_resume_equivalent(result) == []


def test_seed_network_checkpoint_without_the_optimizer_fails_naming_slots_and_counter(health_training_data):
    message = failure(resumed(SEED, health_training_data, own="model_only"))
    assert "first difference right after the restore" in message, message
    assert "optimizer slots/iteration counter missing" in message, message
    assert "iteration counter (optimizer/iterations: 5 straight, 0 restored)" in message, message
    assert "weights part after step 6: model/" in message, message
    assert "fix: save the optimizer too: tf.train.Checkpoint(model=model, optimizer=optimizer)" in message, message


def test_keras_weights_file_without_the_optimizer_fails_naming_slots_and_counter(health_training_data):
    message = failure(resumed(KERAS_SCHEDULE, health_training_data, own="model_only"))
    assert "optimizer slots/iteration counter missing" in message, message
    assert "fix: save the optimizer too: tf.train.Checkpoint(model=model, optimizer=model.optimizer)" in message


def test_a_save_without_the_iteration_counter_fails_naming_the_schedule_step(health_training_data):
    message = failure(resumed(KERAS_SCHEDULE, health_training_data, own="without_iterations"))
    assert "learning-rate schedule step (ExponentialDecay is read at optimizer.iterations)" in message, message
    # ExponentialDecay(0.05, decay_steps=5, decay_rate=0.5): step 5 reads 0.025, a restarted schedule 0.05.
    assert "the next step uses learning rate 0.05 instead of 0.025" in message, message
    assert "optimizer slots" not in message, message
    assert "fix: save model.optimizer.iterations with the slots" in message, message
    assert "its learning-rate schedule reads it" in message, message


def test_dropout_state_left_out_is_a_warning_naming_it(health_training_data):
    """The seed network's dropout masks are keyed by a counter variable; a save of model.params misses it."""
    (warning,) = resume.assert_resume_equivalent(resumed(SEED, health_training_data, own="params_only"))
    assert "draws other random numbers" in warning, warning
    assert "dropout/RNG state (_dropout_calls max |difference| 5, 5 straight, 0 restored)" in warning, warning


def test_keras_dropout_after_load_model_is_at_most_a_warning(health_training_data):
    """Keras 3's .keras file does not keep a Dropout layer's SeedGenerator state (measured, TF 2.21); Keras 2's
    Dropout draws from random ops whose state is in no variable (TF 2.15): either way the resumed run draws
    other masks. Weights and optimizer resume exactly, so this is a warning, never a failure."""
    result = resumed(KERAS_DROPOUT, health_training_data)
    warnings = resume.assert_resume_equivalent(result)
    restored = result.differences[0]
    assert all(resume._kind(name, value[1]) == "rng" for name, value in restored.items()), sorted(restored)
    named = ("missing from the checkpoint: dropout/RNG state", "the checkpoint restored every variable exactly")
    assert all(any(n in w for n in named) for w in warnings), warnings


def test_a_module_level_optimizer_is_named_as_the_reason_it_cannot_run(health_training_data):
    """The TF quickstart's module-level optimizer serves the first model's variables only: a restored model
    cannot be trained by it, so the check says why it cannot run (the suite test skips with this)."""
    from fixtures.user_models import quickstart_expert

    def built():
        optimizer = quickstart_expert.optimizer
        return getattr(optimizer, "built", getattr(optimizer, "_built", False))  # Keras 3 / Keras 2

    before = built()
    with pytest.raises(resume.CannotResume, match="the train step's optimizer is not on the model"):
        resumed(QUICKSTART, health_training_data)
    assert built() == before  # left as found: the probe builds it on its own first model


def run_suite(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--health-devices=cpu", *options]
    command += [f"--health-probe-output={tmp_path / 'out'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=900)


def test_the_suite_runs_it_with_k_resume_and_reports_the_users_own_save(tmp_path):
    save = f"{MODELS}:save_without_iterations,{MODELS}:restore_without_iterations"
    # -k resume_equivalent: -k resume would also match a checkout folder named like this worktree (wt-resume)
    options = ["--health-model", KERAS_SCHEDULE.model, "--health-resume-with", save, "-k", "resume_equivalent"]
    result = run_suite(tmp_path, *options)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_resume_equivalent" in result.stdout and "1 failed" in result.stdout, result.stdout
    assert "passed" not in result.stdout.splitlines()[-1], result.stdout  # the verdict's tests are not selected
    assert "learning-rate schedule step" in result.stdout, result.stdout


def test_it_is_collected_only_when_asked(tmp_path):
    model = ["--health-model", KERAS_SCHEDULE.model, "--collect-only"]
    for options in (["-k", "layer_updates"], []):  # the default verdict, and every test of a default run
        result = run_suite(tmp_path, *model, *options)
        assert result.returncode == 0 and "test_resume_equivalent" not in result.stdout, result.stdout
    result = run_suite(tmp_path, *model, "--health-resume")
    assert "test_resume_equivalent" in result.stdout, result.stdout


def test_a_bad_resume_with_is_a_usage_error(tmp_path):
    result = run_suite(tmp_path, "--health-model", KERAS_SCHEDULE.model, "--health-resume-with", f"{MODELS}:save_x")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "--health-resume-with must be MODULE:SAVE,MODULE:RESTORE" in result.stderr + result.stdout


def test_a_differing_state_is_quoted_where_it_differs():
    """A seed generator's state differed in its second element only; the note quoted the first, equal in both
    runs ("413654000 straight, 413654000 restored" beside "max |difference| 5")."""
    import numpy as np

    from training_health.checks.resume import _values

    found = {"seed_generator_state": (5.0, np.array([413654000, 7]), np.array([413654000, 12]))}
    assert _values(found, "seed_generator_state") == "7 straight, 12 restored (element 1 of 2)"
