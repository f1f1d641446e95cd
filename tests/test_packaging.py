"""The installed distribution owns one top-level package, and lives beside PyPI's ``fixtures``.

This repository's ``fixtures/`` folder is test material and is not installed; the plugin is
``training_health``. tox installs PyPI's ``fixtures`` (testing-cabal) into the test environments
so that the coexistence test runs in CI rather than skipping.
"""

import importlib.metadata
import subprocess
import sys

import pytest

DISTRIBUTION = "pytest-training-health"


def test_distribution_installs_only_training_health():
    top_level = importlib.metadata.distribution(DISTRIBUTION).read_text("top_level.txt")
    assert top_level is not None and top_level.split() == ["training_health"], top_level


def test_plugin_is_registered_by_entry_point():
    points = importlib.metadata.distribution(DISTRIBUTION).entry_points
    assert [(p.group, p.name, p.value) for p in points] == [("pytest11", "training_health", "training_health.plugin")]


def test_pypi_fixtures_and_training_health_both_import(tmp_path):
    try:
        importlib.metadata.distribution("fixtures")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("PyPI's fixtures is not installed here (tox installs it): pip install fixtures")
    code = "from fixtures import Fixture; import training_health.suite; print(Fixture.__module__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith("fixtures."), result.stdout
