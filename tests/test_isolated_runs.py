"""Checks that need a TensorFlow process of their own (fixtures/isolated_checks.py).

Determinism: TensorFlow promises, with ``enable_op_determinism()``, bitwise-identical results
for the same program, inputs and seed on the same hardware and TF build; it does not promise
agreement across devices, TF versions, CPU instruction sets, or XLA vs graph.

MirroredStrategy over two logical CPUs vs one device, same 10 global batches of 128, no
dropout: replicas were bitwise identical; the largest per-weight difference from the single
device run was 9.5e-6 (conv2/kernel; reductions summed in another order), the largest
mean 2.5e-9. Bounds: max 1e-4, mean 1e-6. The control, using replica 0's half-batch gradient
without the all-reduce, lands at mean 6e-4 .. 1.6e-3 per layer.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIRRORED_MAX_ATOL, MIRRORED_MEAN_ATOL = 1e-4, 1e-6
pytestmark = pytest.mark.subprocess


def run_isolated(*args: str) -> dict:
    command = [sys.executable, "-m", "training_health.probe.isolated_checks", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_op_determinism_gives_bitwise_identical_weights():
    result = run_isolated("determinism", "--steps", "5")
    assert all(result["identical"].values()), result["difference"]
    assert not any(result["identical_to_other_seed"].values()), "the comparison cannot tell two seeds apart"


def test_mirrored_replicas_stay_identical_and_match_one_device():
    result = run_isolated("mirrored", "--steps", "10")
    assert result["replicas"] == 2
    assert all(result["replicas_identical"].values()), result["replicas_identical"]
    differences = result["vs_single_device"]
    assert all(d["max_abs"] <= MIRRORED_MAX_ATOL for d in differences.values()), differences
    assert all(d["mean_abs"] <= MIRRORED_MEAN_ATOL for d in differences.values()), differences
    control = result["without_all_reduce_vs_single_device"]  # replica 0's gradient only: must be caught
    assert any(d["mean_abs"] > MIRRORED_MEAN_ATOL for d in control.values()), control
