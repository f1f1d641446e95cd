"""TensorFlow's C++ log lines stay out of the output; Python warnings and errors do not.

Each case runs a fresh Python process, since the filter works on its file descriptor 2.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from training_health.tf_logs import SHOW_ENV, is_tf_log_line, without_tf_log_lines

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.subprocess
# What TensorFlow 2.21 writes on import and first op here (absl, before absl::InitializeLog()).
TF_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795795537.696901   10254 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1795795541.818534   10254 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "W0000 00:00:1795795541.818534   10254 cpu_allocator_impl.cc:83] Allocation of 411041792 exceeds 10% of free "
    "system memory.",
]
KEPT = [
    "E0000 00:00:1795795541.818534   10254 some_kernel.cc:12] an error TensorFlow reports",
    "/home/user/model.py:3: UserWarning: a Python warning",
    "Traceback (most recent call last):",
    "Interesting: a line starting with I",
]


def run_child(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        check=False,
    )


def test_line_classification():
    assert all(is_tf_log_line(line) for line in TF_LINES)
    assert not any(is_tf_log_line(line) for line in KEPT)
    assert without_tf_log_lines("\n".join(TF_LINES + KEPT) + "\n") == "\n".join(KEPT) + "\n"


MIXED = "".join(line + "\n" for line in TF_LINES + KEPT).encode()
SYNTHETIC = f"""
    import os
    from training_health import tf_logs
    tf_logs.filter_stderr()
    os.write(2, {MIXED!r})
    """


def test_filter_drops_tf_lines_written_to_descriptor_2():
    result = run_child(SYNTHETIC)
    assert result.returncode == 0 and result.stderr.splitlines() == KEPT


def test_opt_out_shows_everything():
    result = run_child(SYNTHETIC, **{SHOW_ENV: "1"})
    assert result.stderr.splitlines() == TF_LINES + KEPT


def test_lines_written_before_an_abort_still_arrive():
    """The relay is a process of its own: a crashing TensorFlow does not take its last words with it."""
    result = run_child(SYNTHETIC + "os.abort()\n")
    assert result.returncode != 0 and result.stderr.splitlines() == KEPT


def test_real_tensorflow_start_is_quiet_and_python_warnings_show():
    result = run_child(
        """
        import warnings
        from training_health import tf_logs
        tf_logs.filter_stderr()
        import tensorflow as tf
        tf.constant([[1.0, 2.0]]) @ tf.ones([2, 1])
        warnings.warn("a Python warning stays visible")
        """
    )
    assert result.returncode == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if is_tf_log_line(line)], result.stderr
    assert "UserWarning: a Python warning stays visible" in result.stderr


def test_pytest_output_has_no_tf_log_lines():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests/test_health_suite.py"]
        + ["--health-inits", "he_normal", "--health-devices", "cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "port.cc" not in output and "absl::InitializeLog" not in output, output[-2000:]
