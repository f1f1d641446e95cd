"""pytest-training-health: does every layer of a TensorFlow model learn? Measured, bounded, diagnosed.

Public API (imported lazily, so that loading the pytest plugin does not start TensorFlow)::

    from training_health import ProbeConfig, run_probe, load_mnist, load_thresholds
    traj = run_probe(ProbeConfig(model="mypkg.models:build", initializer="default"), load_mnist())
    assert_layer_healthy(traj, load_thresholds(), "conv1")
    print(layer_table(traj))
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ProbeConfig": "training_health.probe.training_probe",
    "Trajectory": "training_health.probe.training_probe",
    "run_probe": "training_health.probe.training_probe",
    "load_mnist": "training_health.data.mnist",
    "load_thresholds": "training_health.checks.thresholds",
    "HealthCheckError": "training_health.errors",
    "TrainingHealthError": "training_health.errors",
    "TrainingHealthWarning": "training_health.errors",
    "UsageError": "training_health.errors",
    "assert_layer_healthy": "training_health.checks.health_checks",
    "assert_layer_weights_moved": "training_health.checks.health_checks",
    "assert_layer_units_moved": "training_health.checks.health_checks",
    "assert_gradients_connected": "training_health.checks.health_checks",
    "assert_all_finite": "training_health.checks.health_checks",
    "assert_grad_norm_within": "training_health.checks.health_checks",
    "assert_units_alive": "training_health.checks.health_checks",
    "assert_variables_updated": "training_health.checks.health_checks",
    "assert_parameters_close": "training_health.checks.health_checks",
    "layer_table": "training_health.report.table",
    "check_training": "training_health.own_tests",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'training_health' has no attribute {name!r}")


def __dir__():
    return __all__
