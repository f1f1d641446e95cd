"""A user's project, seen from outside this repository: ``python -m pytest --health-model ...`` with the
installed plugin, in a temporary folder, on the example models of ``fixtures/user_models``.

Nothing is installed here; PYTHONPATH points at this repository's root only so that
``fixtures.user_models`` imports (a user's own package would be importable the same way). Each
scenario is one pytest session (one model per session); they run a few at a time to share the
TensorFlow start-up cost across the 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from training_health.checks.run_checks import run_check_names
from training_health.probe.devices import float16_conv_unsupported

ROOT = Path(__file__).resolve().parent.parent
MODELS = "fixtures.user_models"


def run_level_summary(layers: int) -> str:
    """The session summary of one healthy cell at FAST's 10 steps: its layers and every run-level check pass,
    except loss_decreases, which skips below 30 steps (checks/loss_curve.py)."""

    return f"{layers + len(run_check_names()) - 1} passed, 1 skipped"


FAST = ["--health-devices", "cpu", "--health-steps", "10", "-p", "no:cacheprovider", "-q", "-rA"]
pytestmark = pytest.mark.subprocess

SCENARIOS = {
    "sgd_momentum": ["--health-model", f"{MODELS}.compiled_keras:sgd_momentum"],
    "sgd_zero_lr": ["--health-model", f"{MODELS}.compiled_keras:sgd_zero_lr"],
    "frozen": ["--health-model", f"{MODELS}.compiled_keras:conv2_frozen"],
    "frozen_declared": ["--health-model", f"{MODELS}.compiled_keras:conv2_frozen", "--health-frozen", "conv2"],
    "step_forgets_layer": [
        "--health-model",
        f"{MODELS}.custom_step:build",
        "--health-train-step",
        f"{MODELS}.custom_step:train_step_forgetting_hidden",
    ],
    # -k and a space-separated --health-mnist-path (issue 9: pytest could not parse it from a conftest option).
    "subclassed": ["--health-model", f"{MODELS}.subclassed:build", "-k", "layer_updates", "--health-mnist-path"],
    "mixed_float16": ["--health-model", f"{MODELS}.compiled_keras:mixed_float16"],
    "flat_input_with_data": [
        "--health-model",
        f"{MODELS}.flat_input:build",
        "--health-data",
        f"{MODELS}.flat_input:data",
    ],
}


def idx_file(array: np.ndarray) -> bytes:
    """The canonical IDX bytes of an MNIST array (uint8 payload): the loader verifies them by SHA-256."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def mnist_folder_with_space(tmp_path_factory, health_mnist) -> Path:
    """The real MNIST as the four IDX files, in a folder whose name has a space."""
    folder = tmp_path_factory.mktemp("data") / "my mnist"
    folder.mkdir()
    for name, array in {
        "train-images-idx3-ubyte": health_mnist.train_images,
        "train-labels-idx1-ubyte": health_mnist.train_labels,
        "t10k-images-idx3-ubyte": health_mnist.test_images,
        "t10k-labels-idx1-ubyte": health_mnist.test_labels,
    }.items():
        (folder / name).write_bytes(idx_file(array))
    return folder


def run_outside(folder: Path, options: list[str], environment: dict | None = None) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(environment or {})}
    command = [sys.executable, "-m", "pytest", *options, *FAST]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False, timeout=900)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, mnist_folder_with_space) -> dict[str, subprocess.CompletedProcess]:
    """Every scenario's pytest session, run from its own folder outside the repository."""
    base = tmp_path_factory.mktemp("user-project")
    assert ROOT not in base.parents
    options = {name: list(opts) for name, opts in SCENARIOS.items()}
    options["subclassed"].append(str(mnist_folder_with_space))  # the value of --health-mnist-path, space-separated
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run_outside, base / name, opts) for name, opts in options.items()}
        return {name: future.result() for name, future in futures.items()}


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def outcome(result: subprocess.CompletedProcess, layer: str) -> str:
    """PASSED, FAILED or ERROR: the short summary line (-rA) of the layer's check."""
    test_id = f"test_layer_updates[default-cpu-graph-{layer}]"
    lines = [line for line in result.stdout.splitlines() if line.rstrip().endswith(test_id) or f"{test_id} " in line]
    return next((line.split()[0] for line in lines if line.split()[0] in ("PASSED", "FAILED", "ERROR")), "absent")


def layer_tests_passed(result: subprocess.CompletedProcess) -> int:
    """How many per-layer tests passed (-rA lines); the run-level checks are counted apart."""
    return sum(1 for line in result.stdout.splitlines() if line.startswith("PASSED") and "test_layer_updates[" in line)


def assert_exit(result: subprocess.CompletedProcess, status: int) -> None:
    __tracebackhide__ = True
    assert result.returncode == status, f"exit status {result.returncode}, expected {status}:\n{output(result)[-4000:]}"


def test_compiled_sgd_momentum_is_trained_with_sgd_and_passes(verdicts):
    result = verdicts["sgd_momentum"]
    assert_exit(result, 0)
    assert "SGD" in result.stdout, result.stdout[-3000:]  # the table names the optimizer actually used
    assert outcome(result, "conv1") == "PASSED"


def test_zero_learning_rate_is_flagged(verdicts):
    result = verdicts["sgd_zero_lr"]
    assert_exit(result, 1)
    for layer in ("conv1", "conv2", "hidden", "logits"):
        assert outcome(result, layer) == "FAILED", result.stdout[-3000:]
    assert "weights never updated" in result.stdout and "the optimizer's learning rate is 0" in result.stdout
    assert "2 of 6 checks failed" not in result.stdout  # no weight moved: the other checks would only repeat it


def test_frozen_layer_is_flagged_by_name_with_its_reason(verdicts):
    result = verdicts["frozen"]
    assert_exit(result, 1)
    assert outcome(result, "conv2") == "FAILED", result.stdout[-3000:]
    assert outcome(result, "conv1") == "PASSED"
    assert "conv2/kernel" in result.stdout and "not trainable" in result.stdout


def test_frozen_layer_passes_when_declared(verdicts):
    result = verdicts["frozen_declared"]
    assert_exit(result, 0)
    assert outcome(result, "conv2") == "PASSED", result.stdout[-3000:]


def test_train_step_leaving_a_layer_out_is_flagged(verdicts):
    result = verdicts["step_forgets_layer"]
    assert_exit(result, 1)
    assert outcome(result, "hidden") == "FAILED", result.stdout[-3000:]
    assert outcome(result, "conv1") == "PASSED"
    assert "hidden/kernel" in result.stdout


def test_unbuilt_subclassed_model_is_built_and_checked(verdicts):
    """Also: ``-k layer_updates --health-mnist-path DIR`` with a space works from outside the repository."""
    result = verdicts["subclassed"]
    assert_exit(result, 0)
    assert outcome(result, "conv") == "PASSED", result.stdout[-3000:]
    assert outcome(result, "logits") == "PASSED"
    assert run_level_summary(2) in result.stdout, result.stdout[-3000:]  # no GPU cell skipped


def test_mixed_float16_with_float16_logits_works(verdicts):
    result = verdicts["mixed_float16"]
    if float16_conv_unsupported():  # this CPU's oneDNN has no float16 conv: the clear refusal instead
        assert_refused_for_float16_conv(result)
        pytest.skip(f"float16 convolution cannot run on this CPU; refused as it should be ({MIXED_CAPPED})")
    assert_exit(result, 0)
    assert run_level_summary(4) in result.stdout, result.stdout[-3000:]


# oneDNN capped below AVX512_FP16 (any x86 CPU can be capped so): the CPUs float16 convolutions fail on.
MIXED_CAPPED = "TF_ENABLE_ONEDNN_OPTS=1 ONEDNN_MAX_CPU_ISA=AVX2"


def assert_refused_for_float16_conv(result: subprocess.CompletedProcess) -> None:
    __tracebackhide__ = True
    assert_exit(result, 4)
    said = output(result)
    assert "no float16 convolution on this CPU" in said and "TF_ENABLE_ONEDNN_OPTS=0" in said, said[-3000:]
    assert "Traceback" not in said and "reshape" not in said, said[-3000:]


def test_mixed_float16_on_a_cpu_without_float16_convolutions_is_refused_with_the_fix(tmp_path):
    """A mixed_float16 convnet on an AMD or pre-Sapphire-Rapids Intel CPU: TensorFlow's oneDNN raises
    AbortedError at the first convolution; the user gets the CPU as the cause and TF_ENABLE_ONEDNN_OPTS=0."""
    capped = dict(item.split("=") for item in MIXED_CAPPED.split())
    probe = "from training_health.probe.devices import float16_conv_unsupported as f; print(f() is not None)"
    tried = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **capped}, capture_output=True, text=True, check=True
    )
    if tried.stdout.strip() != "True":  # TF 2.15's oneDNN runs float16 convolutions even so (measured)
        pytest.skip(f"this TensorFlow runs a float16 convolution under {MIXED_CAPPED}: nothing to refuse")
    result = run_outside(tmp_path / "capped", SCENARIOS["mixed_float16"], capped)
    assert_refused_for_float16_conv(result)


def test_flat_input_model_with_its_own_data_works(verdicts):
    result = verdicts["flat_input_with_data"]
    assert_exit(result, 0)
    assert outcome(result, "hidden") == "PASSED", result.stdout[-3000:]
    assert run_level_summary(2) in result.stdout, result.stdout[-3000:]
    assert f"softmax cross-entropy on {MODELS}.flat_input:data()" in result.stdout  # the table names its data
