"""Run-level checks: properties of a whole training run (its data, its loss curve, its batches), one test each.

Per-layer checks live in ``health_checks.py`` and run in ``test_layer_updates[<cell>-<layer>]``. A
run-level check looks at the run as a whole and runs in ``test_training_run[<cell>-<check>]`` (the
plugin adds the keyword ``layer_updates`` to those items, so ``pytest -k layer_updates`` selects
them too, and ``-k <check>`` selects one alone).

Adding one: a function ``check(run: RunContext) -> list[str]`` in a module of ``checks/`` decorated with
``@run_check("name")``; the module's name goes in :data:`RUN_CHECK_MODULES`. It returns the warnings
it found (findings that do not stop learning; may be empty), raises :class:`HealthCheckError` when the
run is broken (message: what was observed, the bound, the cause and the fix), or
:class:`NotApplicable` when the run gives it nothing to check (the test skips with that reason).
Modules listed here are imported at collection: keep TensorFlow out of their module level.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

import numpy as np

from training_health.errors import HealthCheckError

# Modules whose import registers run checks (this one's own checks are registered below).
RUN_CHECK_MODULES: tuple[str, ...] = (
    "training_health.checks.data_checks",
    "training_health.checks.loss_curve",
    "training_health.checks.batch_checks",
    "training_health.checks.unit_checks",
)


class NotApplicable(Exception):  # noqa: N818  (a signal, not an error)
    """The check has nothing to look at in this run; the message says why."""


@dataclasses.dataclass
class RunContext:
    """What a run-level check may read. Models are built lazily: most checks need only the trajectory."""

    trajectory: object  # probe.training_probe.Trajectory
    data: object  # data.user_data.TrainingData the run trained on
    thresholds: object  # checks.thresholds.Thresholds
    trained_model: Callable[[], object]  # the model after the run's steps
    fresh_model: Callable[[], object]  # a new model from the run's factory, initializer and seed

    @property
    def config(self):
        return self.trajectory.config


RunCheck = Callable[[RunContext], list]
RUN_CHECKS: dict[str, RunCheck] = {}


def run_check(name: str) -> Callable[[RunCheck], RunCheck]:
    def register(function: RunCheck) -> RunCheck:
        RUN_CHECKS[name] = function
        return function

    return register


def run_check_names() -> list[str]:
    for module in RUN_CHECK_MODULES:
        importlib.import_module(module)
    return list(RUN_CHECKS)


@run_check("loss_finite")
def check_loss_finite(run: RunContext) -> list[str]:
    """The loss of every step is a finite number (a NaN or inf loss stops learning for good)."""
    loss = np.asarray(run.trajectory.loss, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        first = int(bad[0])
        raise HealthCheckError(
            f"loss_finite: the loss is {loss[first]} at step {first} ({bad.size} of {loss.size} steps non-finite)\n"
            f"  context: {run.config.context()}\n"
            f"  last finite loss: {_last_finite(loss[:first])}; the per-layer tests name the first weight whose "
            "gradient or update went non-finite, and its cause"
        )
    return []


def _last_finite(loss: np.ndarray) -> str:
    finite = loss[np.isfinite(loss)]
    return f"{finite[-1]:.4g} at step {np.flatnonzero(np.isfinite(loss))[-1]}" if finite.size else "none"
