"""The suite's own options from the command line: the grid they collect, refusal of misspelt values,
and "green means checked": a run whose health tests all skip fails unless the user accepts it.

The runs start pytest as a user would, from a folder outside the repository; none of them trains.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from training_health.checks.run_checks import run_check_names
from training_health.probe.devices import GPU_MISSING

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.subprocess
NO_GPU = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same on every machine: TensorFlow sees no GPU


def pytest_run(*options: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *options]
    return subprocess.run(command, cwd=cwd, env=NO_GPU, capture_output=True, text=True, check=False, timeout=300)


def collect(*options: str) -> subprocess.CompletedProcess:
    return pytest_run("--co", "-q", "tests/test_health_suite.py", *options)


def test_grid_ids_name_init_device_mode_layer():
    result = collect("--health-inits", "he_normal", "--health-modes", "graph,xla", "--health-devices", "cpu")
    assert "test_layer_updates[he_normal-cpu-graph-conv1]" in result.stdout
    assert "test_layer_updates[he_normal-cpu-xla-out]" in result.stdout
    assert "test_training_run[he_normal-cpu-xla-overfit_batch]" in result.stdout
    cells = 2  # graph and xla: 4 layer tests and every run-level check each
    listed = [line for line in result.stdout.splitlines() if "::test_" in line]
    assert len(listed) == cells * (4 + len(run_check_names())), result.stdout[-2000:]


def test_misspelt_mode_is_refused():
    result = collect("--health-modes", "jit")
    assert result.returncode == 4 and "--health-modes: unknown jit; choose from graph, xla, eager" in result.stderr


def test_all_health_tests_skipped_fails_and_says_why(tmp_path):
    """The built-in suite with only its GPU cells selected, on a machine without GPU: every test skips."""
    result = pytest_run("--health-suite", "--health-inits", "he_normal", "-k", "gpu", "-q", cwd=tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    skipped = 4 + len(run_check_names())  # the GPU cell's 4 layer tests and its run-level checks
    assert "training health: nothing was checked" in result.stdout and f"{skipped} skipped" in result.stdout
    expected = f"All {skipped} selected health tests skipped:\n  {skipped} x {GPU_MISSING}"
    assert expected in result.stdout, result.stdout[-3000:]
    assert "pass --health-allow-skipped to accept it" in result.stdout
    assert not (tmp_path / "probe-output").exists()  # skipped at setup: nothing trained


SKIPPING_HEALTH_TESTS = """
import pytest


def test_reads_thresholds(health_thresholds):
    pytest.skip("not on this machine")


def test_unrelated():
    pass
"""


@pytest.mark.parametrize("allow, status", [(False, 1), (True, 0)], ids=["refused", "allowed"])
def test_allow_skipped_accepts_a_run_that_checks_nothing(tmp_path, allow, status):
    """Any test using a health_* fixture counts; a passing unrelated test does not make the run green."""
    (tmp_path / "test_mixed.py").write_text(SKIPPING_HEALTH_TESTS)
    result = pytest_run("-q", *(["--health-allow-skipped"] if allow else []), cwd=tmp_path)
    assert result.returncode == status, result.stdout[-3000:]
    assert "All 1 selected health tests skipped:\n  1 x not on this machine" in result.stdout
    assert ("Accepted by --health-allow-skipped: exit status 0." in result.stdout) == allow


def test_unrelated_session_is_unaffected(tmp_path):
    """A project's own tests, all skipped, with the plugin installed: pytest's verdict, no trace of the plugin."""
    (tmp_path / "test_theirs.py").write_text("import pytest\n\n\ndef test_later():\n    pytest.skip('not yet')\n")
    result = pytest_run("-q", cwd=tmp_path)
    assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout[-3000:]
    assert "training health" not in result.stdout
    assert not (tmp_path / "probe-output").exists()


NO_PARAMETERS_MODEL = '''
import tensorflow as tf


class NoParameters(tf.Module):
    """Logits of the right shape, but nothing to train."""

    def __call__(self, images, training=False):
        return tf.zeros([tf.shape(images)[0], 10])


def build(initializer, seed):
    return NoParameters()
'''


def test_model_without_parameters_is_an_error_not_a_skip(tmp_path):
    (tmp_path / "frozen_model.py").write_text(NO_PARAMETERS_MODEL)
    result = pytest_run("--health-model", "frozen_model:build", "--health-devices", "cpu", "-q", cwd=tmp_path)
    message = "--health-model frozen_model:build: the model has no variables"
    assert result.returncode not in (0, 5), result.stdout[-3000:]
    assert (result.stdout + result.stderr).count(message) == 1, result.stdout[-3000:]
    assert "skipped" not in result.stdout and not (tmp_path / "probe-output").exists()


def test_space_separated_path_value_that_steals_the_rootdir_is_named():
    """pytest chooses its rootdir before plugins load: an existing folder after a space, outside the
    project, moves it there and the project's config goes unread; the plugin says so."""
    outside = Path(tempfile.mkdtemp(prefix="th-rootdir-", dir=ROOT.parent))  # tmp_path may lie inside (tox)
    try:
        select = ("--co", "-q", "-k", "test_health_suite and he_normal")  # no path argument: pytest guesses
        result = pytest_run(*select, "--health-probe-output", str(outside))
        assert result.returncode == 0, result.stdout[-3000:]
        assert f"write --health-probe-output={outside} (with '=') to keep" in result.stdout, result.stdout[-3000:]
        kept = pytest_run(*select, f"--health-probe-output={outside}")
        assert "with '='" not in kept.stdout and "Unknown pytest.mark" not in kept.stdout, kept.stdout[-3000:]
    finally:
        shutil.rmtree(outside, ignore_errors=True)
