"""--health-regen-baselines and --health-add-baselines: what they write, and what they leave alone.

Every test works on a copy of the committed baselines in tmp_path (the committed files are never
written) and on the session's he_normal run, which tests/test_dynamics_baselines.py trains anyway.
"""

import copy
import os
import shutil
import subprocess
import sys

import pytest

from tests.test_dynamics_baselines import BASELINE_ROOT, check_against_baseline
from training_health.checks import baselines
from training_health.checks.baselines import RELATIVE_CHANGE_RTOL, baseline_path, dumps, summarize
from training_health.probe.training_probe import ProbeConfig
from training_health.session_report import BASELINE_PROPERTY


@pytest.fixture
def traj(health_trajectories):
    return health_trajectories.get(ProbeConfig(initializer="he_normal"))


@pytest.fixture
def committed_copy(tmp_path):
    shutil.copytree(BASELINE_ROOT, tmp_path / "baselines")
    return tmp_path / "baselines"


def scaled(summary: dict, factor: float) -> dict:
    """The summary with every parameter's final relative change multiplied by ``factor``."""
    changed = copy.deepcopy(summary)
    for metrics in changed["parameters"].values():
        metrics["relative_change"] *= factor
    return changed


def snapshot(folder) -> dict:
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


class Recorder(list):
    def __call__(self, name, value):
        self.append((name, value))


def test_baseline_within_tolerance_is_left_untouched(traj, committed_copy):
    """Machine noise below the tolerance must not churn the committed files; a stale .obtained goes."""
    path = baseline_path(committed_copy, traj.config.id)
    path.write_text(dumps(scaled(summarize(traj), 1 + RELATIVE_CHANGE_RTOL / 4)))
    baselines.obtained_path(path).write_text("{}\n")  # left by an earlier failing run
    os.utime(path, ns=(0, 0))
    before, recorded = path.read_bytes(), Recorder()
    assert check_against_baseline(traj, path, regenerate=True, record=recorded) == baselines.MATCHES
    assert path.read_bytes() == before and path.stat().st_mtime_ns == 0 and recorded == []
    assert not baselines.obtained_path(path).exists()


def test_baseline_beyond_tolerance_is_rewritten_and_reported(traj, committed_copy):
    path = baseline_path(committed_copy, traj.config.id)
    path.write_text(dumps(scaled(summarize(traj), 1.25)))
    others = {k: v for k, v in snapshot(committed_copy).items() if committed_copy / k != path}
    baselines.obtained_path(path).write_text("{}\n")
    recorded = Recorder()
    assert check_against_baseline(traj, path, regenerate=True, record=recorded) == baselines.REWRITTEN
    assert path.read_text() == dumps(summarize(traj))
    assert recorded == [(BASELINE_PROPERTY, f"rewritten: {path}")]
    assert not baselines.obtained_path(path).exists()
    after = snapshot(committed_copy)
    assert {k: v for k, v in after.items() if committed_copy / k != path} == others  # nothing else written


def test_regen_does_not_create_a_baseline_without_add(traj, committed_copy):
    """A new TF version (or setting) gets a baseline only when asked: regen alone skips it."""
    path = baseline_path(committed_copy, traj.config.id, series="tf9.99")
    before = snapshot(committed_copy)
    with pytest.raises(pytest.skip.Exception, match="write it with pytest --health-add-baselines"):
        check_against_baseline(traj, path, regenerate=True)
    assert snapshot(committed_copy) == before


def test_add_creates_a_missing_baseline_only(traj, committed_copy):
    path = baseline_path(committed_copy, traj.config.id, series="tf9.99")
    recorded = Recorder()
    assert check_against_baseline(traj, path, add=True, record=recorded) == baselines.ADDED
    assert path.read_text() == dumps(summarize(traj)) and recorded == [(BASELINE_PROPERTY, f"added: {path}")]
    assert check_against_baseline(traj, path, add=True, record=recorded) == baselines.MATCHES  # not again
    assert len(recorded) == 1


def test_failed_write_leaves_the_old_baseline_whole(traj, committed_copy, monkeypatch):
    """A write that fails half-way (disk full) keeps the previous file and leaves no temporary file."""
    path = baseline_path(committed_copy, traj.config.id)
    path.write_text(dumps(scaled(summarize(traj), 1.25)))
    before = snapshot(path.parent)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        check_against_baseline(traj, path, regenerate=True)
    assert snapshot(path.parent) == before


def test_terminal_summary_lists_each_baseline_written(tmp_path):
    """What a test records reaches the summary (through the test reports, so also under pytest-xdist)."""
    (tmp_path / "test_writes.py").write_text(
        "def test_regen(health_thresholds, record_property):\n"
        f"    record_property({BASELINE_PROPERTY!r}, 'rewritten: /baselines/tf2.21/a.json')\n"
        f"    record_property({BASELINE_PROPERTY!r}, 'added: /baselines/tf2.21/b.json')\n"
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "training health: dynamics baselines written" in result.stdout
    assert "rewritten  /baselines/tf2.21/a.json\n    added  /baselines/tf2.21/b.json" in result.stdout
