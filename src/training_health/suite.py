"""The built-in checks, collected by ``pytest --health-model ...`` (or ``--health-suite``) in any project.

``pytest -k layer_updates`` selects them: one test per layer and grid cell, reading the cell's
single cached training run. A project can also collect them from a test module of its own with
``from training_health.suite import *``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from training_health.checks import severity
from training_health.checks.health_checks import assert_layer_healthy, assert_variables_updated
from training_health.checks.run_checks import RUN_CHECKS, NotApplicable
from training_health.errors import HealthCheckError, TrainingHealthWarning
from training_health.model.user_model import layer_of, parameters_of
from training_health.report.kernel_pictures import pictures_on_failure

__all__ = ["test_layer_updates", "test_training_run", "test_resume_equivalent"]


def test_layer_updates(health_trajectory, health_thresholds, health_layer, health_frozen_layers, pytestconfig):
    """Every per-layer check on this layer; all of its failures are reported together.

    A layer declared frozen (``--health-frozen``) passes while its weights stay unchanged; any other
    weight that never changed fails with its reason (not trainable, not updated, zero gradient).
    """
    traj = health_trajectory
    params = parameters_of(traj.parameters, health_layer)
    assert params, f"layer {health_layer} has no weights"
    frozen = _known_frozen_names(traj, health_frozen_layers)
    pictures = Path(pytestconfig.getoption("health_probe_output")) / "kernels"
    verdict = None
    try:
        _check_layer(traj, params, health_thresholds, health_layer, frozen, pictures)
    except HealthCheckError as err:
        failing, notes = severity.split(traj, err.offenders, health_thresholds)
        verdict = str(err) if failing or not err.offenders else None
        for note in [] if verdict else notes:  # findings that do not stop learning: warnings, not failures
            warnings.warn(TrainingHealthWarning(note), stacklevel=1)
    if verdict:  # the verdict is the whole message: no traceback through the plugin's code
        pytest.fail(verdict, pytrace=False)


def _known_frozen_names(traj, frozen) -> list[str]:
    """The declared frozen names as the run spells them (with or without the enclosing models' names:
    ``variables.resolve_names``). A misspelt or ambiguous declaration (a ``health_frozen`` marker, the
    ``health_check`` fixture's ``frozen``; ``--health-frozen`` is checked up front) would declare nothing."""
    from training_health.model.variables import resolve_names

    layers = list(dict.fromkeys(layer_of(p) for p in traj.parameters))
    resolved = resolve_names(frozen, layers + traj.parameters)
    if resolved.unknown:
        pytest.fail(
            f"declared frozen: {', '.join(resolved.unknown)}, but the model has no such layer "
            f"(its layers: {', '.join(layers)})",
            pytrace=False,
        )
    for name, found in resolved.ambiguous.items():
        pytest.fail(
            f"declared frozen: {name} names {len(found)} layers of the model ({', '.join(found)}); "
            "give the full name of the one meant",
            pytrace=False,
        )
    return resolved.names


def _check_layer(traj, params, thresholds, layer: str, frozen, pictures: Path) -> None:
    """Raises one HealthCheckError carrying every failure of the layer, with its pictures attached."""
    with pictures_on_failure(traj, params, pictures, thresholds):
        if layer in frozen:
            try:
                assert_variables_updated(traj, params, frozen=frozen)
            except HealthCheckError as changed:
                raise headed(
                    changed,
                    f"layer {layer}: declared frozen, yet {len(changed.offenders)} of {len(params)} weights changed",
                ) from None
            return
        try:
            assert_variables_updated(traj, params)
        except HealthCheckError as never_updated:
            unchanged = f"{len(never_updated.offenders)} of {len(params)} weights never updated"
            if {o.name for o in never_updated.offenders} == set(params):
                # no weight of the layer moved: its other checks would only repeat this cause
                raise headed(never_updated, f"layer {layer}: {unchanged}") from None
            failures = [headed(never_updated, f"layer {layer}: {unchanged}")]
        else:
            failures = []
        try:
            assert_layer_healthy(traj, thresholds, layer)
        except HealthCheckError as err:
            failures.append(err)
        if failures:
            raise HealthCheckError("\n".join(map(str, failures)), [o for err in failures for o in err.offenders])


def headed(err: HealthCheckError, heading: str) -> HealthCheckError:
    """The failure under a layer's heading, as the layer's other checks word theirs ("layer conv2: ...")."""
    return HealthCheckError("\n".join([heading, *str(err).splitlines()[1:]]), err.offenders)


def test_training_run(health_run_context, health_run_check):
    """One run-level check (``checks/run_checks.py``) of this grid cell's training run: its data, loss, batches."""
    started, found, skipped, verdict = time.perf_counter(), [], None, None
    try:
        found = RUN_CHECKS[health_run_check](health_run_context)
    except NotApplicable as reason:
        skipped = f"{health_run_check}: {reason}"
    except HealthCheckError as err:
        verdict = str(err)
    timings = health_run_context.trajectory.timings  # the summary's time split shows what these checks cost
    timings["run_checks"] = timings.get("run_checks", 0.0) + time.perf_counter() - started
    # Outside the except clauses: the report is the message alone, not a chain of exceptions through this code.
    if skipped:
        pytest.skip(skipped)
    if verdict:
        pytest.fail(verdict, pytrace=False)
    for warning in found or ():
        warnings.warn(TrainingHealthWarning(f"{health_run_check}: {warning}"), stacklevel=1)


def test_resume_equivalent(health_training_data, pytestconfig):
    """Resuming from a checkpoint continues the same training (``checks/resume.py``): run when asked
    (``--health-resume``, ``--health-resume-with`` or ``-k resume``), since it trains the model twice more
    (measured: 2.2-3.3 s for the seed network, 0.5-1.1 s for a small compiled Keras convnet, TF 2.21 CPU)."""
    from training_health.checks import resume

    config = pytestconfig
    if not resume.resume_asked(config):
        pytest.skip("resume check not asked: --health-resume (or -k resume) runs it")
    probe_config = resume.resume_config(config)
    try:
        result = resume.run_resume(
            probe_config, health_training_data, probe_config.build_model, resume.method_from_option(config)
        )
    except resume.CannotResume as reason:
        skipped = str(reason)
    else:
        skipped = None
    if skipped:
        pytest.skip(skipped)
    verdict, found = None, []
    try:
        found = resume.assert_resume_equivalent(result, resume.context(probe_config, result))
    except HealthCheckError as err:
        verdict = str(err)
    if verdict:  # the message alone, no traceback through the plugin's code
        pytest.fail(verdict, pytrace=False)
    for warning in found:
        warnings.warn(TrainingHealthWarning(warning), stacklevel=1)
