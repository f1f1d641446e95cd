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
WORKER = re.compile(r"^\[(gw\d+)\] \[ *\d+%\] \w+ \S+?\[(\S+)-\w+\]", re.MULTILINE)


def _pytest(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-k", "test_layer_updates", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_two_workers_train_each_run_once_and_give_the_serial_verdicts(tmp_path):
    serial = _pytest(tmp_path, *GRID)
    parallel = _pytest(tmp_path, "-n", "2", "-v", *GRID)  # no --dist: the plugin groups the runs (loadgroup)
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
    assert "(summed over 2 workers)" in summary and "start-up 0.0 s" not in summary, summary[-1500:]
