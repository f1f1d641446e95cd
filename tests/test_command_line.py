"""The suite's own options: the grid they collect, and refusal of misspelt values."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.subprocess


def collect(*options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests/test_health_suite.py"]
    return subprocess.run([*command, *options], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_grid_ids_name_init_device_mode_layer():
    result = collect("--health-inits", "he_normal", "--health-modes", "graph,xla", "--health-devices", "cpu")
    assert "test_layer_updates[he_normal-cpu-graph-conv1]" in result.stdout
    assert "test_layer_updates[he_normal-cpu-xla-out]" in result.stdout
    assert "8 tests collected" in result.stdout, result.stdout[-2000:]


def test_misspelt_mode_is_refused():
    result = collect("--health-modes", "jit")
    assert result.returncode == 4 and "--health-modes: unknown jit; choose from graph, xla, eager" in result.stderr
