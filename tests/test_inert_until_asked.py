"""Installed, the plugin loads in every pytest run of the environment: a run that asks nothing of it
(no ``--health-*`` option, no ``health_*`` fixture) must not pay for it. Checked in a project folder
outside the repository, in the pytest process itself: no TensorFlow imported, no process started,
nothing printed, nothing written.

The cost in time is measured as whole-process runs, not asserted (docs/measurements.md).
"""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

# Runs pytest in-process on the folder, then reports what the process holds afterwards.
IN_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    import pytest

    status = pytest.main(sys.argv[1:])
    children = open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split()
    loaded = sorted(m for m in ("tensorflow", "keras", "numpy", "matplotlib", "training_health.validation")
                    if m in sys.modules)
    print("REPORT " + json.dumps({"status": int(status), "children": children, "loaded": loaded}))
    """
)
THEIR_TEST = textwrap.dedent(
    """
    def test_arithmetic(request):
        assert request.config.pluginmanager.has_plugin("training_health")  # installed and loaded
        assert 1 + 1 == 2
    """
)


# pytest-benchmark (this repository's `bench` extra, not a dependency) writes .benchmarks/ of its own.
OTHER_PLUGINS_OFF = ("-p", "no:benchmark")


def run_in_process(folder, *args):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, "-p", "no:cacheprovider", *OTHER_PLUGINS_OFF, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("REPORT ")), None)
    assert line is not None, result.stdout[-2000:] + result.stderr[-2000:]
    import json

    return json.loads(line.removeprefix("REPORT ")), result


@pytest.mark.parametrize("args", [["-q"], ["--help"], ["--co", "-q"]], ids=["run", "help", "collect-only"])
def test_unrelated_run_loads_nothing_starts_nothing_writes_nothing(tmp_path, args):
    (tmp_path / "test_theirs.py").write_text(THEIR_TEST)
    report, result = run_in_process(tmp_path, *args)
    assert report["status"] == 0, result.stdout[-3000:]
    assert report["loaded"] == [], f"an unrelated run imported {report['loaded']}"
    assert report["children"] == [], f"an unrelated run left child processes {report['children']}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_theirs.py"]
    output = result.stdout + result.stderr
    assert "training health" not in output.replace("training health (every layer learns", "")


def test_a_deselected_health_check_test_costs_an_unrelated_run_nothing(tmp_path):
    """A project whose other test file uses ``health_check``: ``pytest -k arithmetic`` selects only the unrelated
    test, and nothing of the health run may load (a fifth user: 0.21 s -> 3.3 s, TensorFlow imported)."""
    (tmp_path / "test_theirs.py").write_text(THEIR_TEST)
    (tmp_path / "test_health.py").write_text("def test_mine(health_check):\n    health_check('mymodels:build')\n")
    report, result = run_in_process(tmp_path, "-q", "-k", "arithmetic")
    assert report["status"] == 0 and "1 passed, 1 deselected" in result.stdout, result.stdout[-3000:]
    assert report["loaded"] == [], f"a run that deselected the health test imported {report['loaded']}"
    assert report["children"] == [], report["children"]


def test_asking_for_a_health_fixture_starts_the_health_run(tmp_path):
    """The control: a test that uses a health fixture gets its options checked (here: a bad one, exit 4)."""
    (tmp_path / "test_theirs.py").write_text("def test_uses(health_thresholds):\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=--health-steps=0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 4 and "--health-steps 0" in result.stderr, result.stdout[-2000:] + result.stderr
