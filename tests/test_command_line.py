"""The suite's own options: the grid they collect, and refusal of misspelt values."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.subprocess


def collect(*options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests/test_layer_updates.py"]
    return subprocess.run([*command, *options], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_grid_ids_name_init_device_mode_layer():
    result = collect("--inits", "he_normal", "--modes", "graph,xla", "--devices", "cpu")
    assert "test_layer_updates[he_normal-cpu-graph-conv1]" in result.stdout
    assert "test_layer_updates[he_normal-cpu-xla-out]" in result.stdout
    assert "8 tests collected" in result.stdout, result.stdout[-2000:]


def test_misspelt_mode_is_refused():
    result = collect("--modes", "jit")
    assert result.returncode != 0 and "--modes: unknown jit; choose from graph, xla, eager" in result.stderr
