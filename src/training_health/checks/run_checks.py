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
    frozen: tuple[str, ...] = ()  # layers (or weights) declared frozen on purpose: --health-frozen, frozen=...

    @property
    def config(self):
        return self.trajectory.config

    def fresh(self):
        """One fresh model per run, shared by the checks that need one (overfit_batch, batch_independence):
        building it again costs as much as a few training steps of the seed network. A check that trains it
        puts its values back (``one_batch.fit_one_batch``)."""
        shared = getattr(self.trajectory, "derived", None)
        if shared is None:
            return self.fresh_model()
        if "fresh_model" not in shared:
            shared["fresh_model"] = self.fresh_model()
        return shared["fresh_model"]


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


def run_every_check(run: RunContext, contain_crashes: bool = False) -> tuple[list[HealthCheckError], list[str]]:
    """Every registered run check on one run, in the registry's order: (failures, warnings as "check: warning").
    For the main job and ``check_training``, which report a run at once; the plugin runs each check as a test
    of its own (``suite.test_training_run``). A check with nothing to look at (:class:`NotApplicable`) is left
    out, as the plugin skips it. ``contain_crashes``: a check that raises anything else is a failure naming the
    exception (the plugin's test errors: red either way), and the other checks still run; otherwise it
    propagates. The time goes to the run's ``timings["run_checks"]`` (the time split's checks)."""
    import time

    started, failures, warnings = time.perf_counter(), [], []
    for name in run_check_names():
        try:
            warnings += [f"{name}: {warning}" for warning in RUN_CHECKS[name](run) or ()]
        except NotApplicable:
            continue
        except HealthCheckError as err:
            failures.append(err)
        except Exception as err:
            if not contain_crashes:
                raise
            failures.append(HealthCheckError(crashed(run, name, err)))
    timings = getattr(run.trajectory, "timings", None)
    if timings is not None:
        timings["run_checks"] = timings.get("run_checks", 0.0) + time.perf_counter() - started
    return failures, warnings


def crashed(run: RunContext, name: str, err: Exception) -> str:
    """A check that raised instead of deciding: the exception and where (a defect of the check, not of the run)."""
    import traceback

    frame = traceback.extract_tb(err.__traceback__)[-1]
    return (
        f"{name}: the check could not decide: {type(err).__name__}: {err} "
        f"(at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})\n"
        f"  context: {run.config.context()}\n"
        "  a defect of the check, not a verdict on the model: please report it with this message"
    )


@run_check("loss_finite")
def check_loss_finite(run: RunContext) -> list[str]:
    """The loss of every step is a finite number (a NaN or inf loss stops learning for good)."""
    loss = np.asarray(run.trajectory.loss, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        first = int(bad[0])
        cause = "".join(f"\n  {line}" for line in _non_finite_cause(run, loss, first))
        raise HealthCheckError(
            f"loss_finite: the loss is {loss[first]} at step {first} ({bad.size} of {loss.size} steps non-finite)\n"
            f"  context: {run.config.context()}\n"
            f"  last finite loss: {_last_finite(loss[:first])}; the per-layer tests name the first weight whose "
            "gradient or update went non-finite" + cause
        )
    return []


FLOAT16_TINIEST = float(np.finfo(np.float16).smallest_subnormal)  # 6e-8: anything smaller rounds to 0


def _non_finite_cause(run: RunContext, loss: np.ndarray, first: int) -> list[str]:
    """Why the loss went non-finite, from what the run measured; the first cause whose evidence holds, else []."""
    try:
        model = run.trained_model()
    except Exception:  # the cause is extra: a model that cannot be rebuilt leaves the symptom alone
        model = None
    epsilon = getattr(getattr(model, "optimizer", None), "epsilon", None)
    half = [getattr(v, "path", v.name) for v in getattr(model, "trainable_variables", []) if "float16" in str(v.dtype)]
    if half and isinstance(epsilon, float) and 0 < epsilon < FLOAT16_TINIEST:
        return [
            f"likely cause: the optimizer's epsilon {epsilon:g} rounds to 0 in float16 (the smallest float16 is "
            f"{FLOAT16_TINIEST:.2g}) and {len(half)} weights ({', '.join(half[:3])}) are float16: where a gradient "
            "is exactly 0 the update m / (sqrt(v) + epsilon) is 0 / 0 = NaN",
            "fix: raise the optimizer's epsilon to 1e-4 (representable in float16), or keep the weights in float32 "
            "(mixed precision: keras.mixed_precision.set_global_policy('mixed_float16'))",
        ]
    outputs = run.trajectory.outputs_start
    if first == 0 and np.isfinite(outputs.get("rms", np.nan)) and not outputs.get("unit_interval", True):
        return [
            f"likely cause: the loss itself: it is not finite at step 0, before any update, on finite outputs of "
            f"the untrained model (mean {outputs['mean']:.3g}, RMS {outputs['rms']:.3g}) that are not probabilities "
            "(not all in [0, 1]): a loss that takes the log of them takes the log of a negative or zero value",
            "fix: apply a sigmoid / softmax before the log (or use the Keras loss with from_logits=True), and clip "
            "the log's argument away from 0 (tf.clip_by_value(p, 1e-7, 1.0))",
        ]
    finite = loss[:first]
    if first >= 2 and finite[-1] > 2 * finite[0]:
        from training_health.checks.diagnosis import lr_fix

        linear = " in a model with no activation in any layer (a linear network)" if _is_linear(model) else ""
        return [
            f"likely cause: updates too large{linear}: the loss grew from {finite[0]:.4g} to {finite[-1]:.4g} in "
            f"{first - 1} step{'s' if first > 2 else ''} before it went non-finite",
            f"fix: {lr_fix(run.trajectory, 'lower')}"
            + ("; add activations (a linear network cannot fit the classes)" if linear else ""),
        ]
    return []


NONLINEAR_LAYERS = ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Activation")


def _is_linear(model) -> bool:
    """Every layer of a Keras model is linear (no activation, no activation layer); False when unreadable."""
    layers = getattr(model, "layers", None)
    if not layers:
        return False
    for layer in layers:
        activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if type(layer).__name__ in NONLINEAR_LAYERS or activation != "linear" or hasattr(layer, "layers"):
            return False
    return True


def _last_finite(loss: np.ndarray) -> str:
    finite = loss[np.isfinite(loss)]
    return f"{finite[-1]:.4g} at step {np.flatnonzero(np.isfinite(loss))[-1]}" if finite.size else "none"
