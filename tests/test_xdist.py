"""Under pytest-xdist the summary is merged from the workers (every configuration's per-layer table and one
time split whose training is summed over the workers), each training run's tests stay on one worker, and
the verdicts are the serial run's."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed"),
]

# seed_normal: the question's N(0, 1) initialization, flagged by the suite: the verdicts compared include failures.
GRID = ["--health-suite", "--health-inits", "he_normal,seed_normal", "--health-devices", "cpu", "--health-steps", "10"]
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED) (\S+?\])(@\S+)?(?: - .*)?$", re.MULTILINE)
FAILED_ID = re.compile(r"^FAILED (\S+)", re.MULTILINE)
WORKER = re.compile(r"^\[(gw\d+)\] \[ *\d+%\] \w+ \S+?\[(\S+)-\w+\]", re.MULTILINE)


# Loaded into the controller and the workers (-p): the controller notes at its end whether it imported TensorFlow.
CONTROLLER_PROBE = """
import os, sys
def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        with open(os.environ["CONTROLLER_PROBE_OUT"], "w") as out:
            out.write(str("tensorflow" in sys.modules))
"""


def _pytest(cwd, *args: str, cache: bool = False, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **env_vars}
    env.pop("PYTEST_ADDOPTS", None)
    no_cache = [] if cache else ["-p", "no:cacheprovider"]
    command = [sys.executable, "-m", "pytest", *no_cache, "-rA", "-k", "test_layer_updates", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_two_workers_train_each_run_once_and_give_the_serial_verdicts(tmp_path):
    serial = _pytest(tmp_path, *GRID)
    (tmp_path / "controller_probe.py").write_text(CONTROLLER_PROBE)
    probe = {"PYTHONPATH": str(tmp_path), "CONTROLLER_PROBE_OUT": str(tmp_path / "controller_tf.txt")}
    # no --dist: the plugin groups the runs (loadgroup)
    parallel = _pytest(tmp_path, "-n", "2", "-v", "-p", "controller_probe", *GRID, **probe)
    # The controller hands tests out and merges the summary: it never imports TensorFlow (each worker does).
    assert (tmp_path / "controller_tf.txt").read_text() == "False", parallel.stdout[-2000:]
    verdicts = dict((test, outcome) for outcome, test, _ in OUTCOME.findall(serial.stdout))
    assert "FAILED" in verdicts.values() and "PASSED" in verdicts.values(), serial.stdout[-3000:]
    assert dict((test, outcome) for outcome, test, _ in OUTCOME.findall(parallel.stdout)) == verdicts
    assert parallel.returncode == serial.returncode == 1
    workers = {}
    for worker, cell in WORKER.findall(parallel.stdout):
        workers.setdefault(cell, set()).add(worker)
    assert workers.keys() == {"he_normal-cpu-graph", "seed_normal-cpu-graph"}, parallel.stdout[-3000:]
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers  # one worker trains each run
    summary = parallel.stdout.split("per-layer training health")[1]
    for cell in workers:  # trained once: one table per run
        assert summary.count(f"{cell}-seed0-10steps ") == 1, summary[-3000:]
    assert "(summed over 2 workers" in summary and "start-up 0.0 s" not in summary, summary[-1500:]


def test_a_bad_option_under_workers_is_one_message_and_exit_4(tmp_path):
    """The model is checked on the workers (the controller imports no TensorFlow): their failed check reaches
    the user as a serial run's does, once, with exit 4 and no traceback, and no worker is restarted."""
    run = _pytest(tmp_path, "-n", "2", "--health-model", "no_such_module:build")
    output = run.stdout + run.stderr
    assert run.returncode == 4, output[-3000:]
    assert output.count("--health-model no_such_module:build: cannot import 'no_such_module'") == 1, output[-3000:]
    assert "Traceback" not in output and "node down" not in output, output[-3000:]


def test_failed_ids_under_workers_paste_and_rerun_with_lf(tmp_path):
    """The ``@group`` suffix the scheduler needs stays out of what the user sees and what ``--lf`` stores:
    the failed ids under ``-n 2`` are a serial run's, and ``--lf`` reruns exactly them, serially and under ``-n 2``."""
    parallel = _pytest(tmp_path, "-n", "2", *GRID, cache=True)
    failed = sorted(FAILED_ID.findall(parallel.stdout))
    assert failed and all("@" not in test and test.endswith("]") for test in failed), parallel.stdout[-3000:]
    serial_rerun = _pytest(tmp_path, "--lf", *GRID, cache=True)
    assert sorted(FAILED_ID.findall(serial_rerun.stdout)) == failed, serial_rerun.stdout[-3000:]
    assert " passed" not in serial_rerun.stdout.splitlines()[-1], serial_rerun.stdout[-500:]  # only the failures ran
    parallel_rerun = _pytest(tmp_path, "--lf", "-n", "2", *GRID, cache=True)
    assert sorted(FAILED_ID.findall(parallel_rerun.stdout)) == failed, parallel_rerun.stdout[-3000:]
    assert " passed" not in parallel_rerun.stdout.splitlines()[-1], parallel_rerun.stdout[-500:]
