"""Under pytest-xdist the summary is merged from the workers: every configuration's per-layer table and
one time split whose training is summed over the workers."""

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed"),
]


def test_two_workers_merge_tables_and_time_split(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup"]
    command += ["--health-suite", "--health-inits", "he_normal,glorot_uniform", "--health-devices", "cpu"]
    command += ["--health-steps", "10", "-k", "test_layer_updates"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    summary = out.split("per-layer training health")[1]
    assert "he_normal-cpu-graph-seed0-10steps" in summary and "glorot_uniform-cpu-graph-seed0-10steps" in summary
    assert "(summed over 2 workers)" in summary, summary[-1500:]
