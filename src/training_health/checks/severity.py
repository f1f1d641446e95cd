"""Which failed bounds stop learning (failures) and which do not (notes, reported as warnings).

Red means training is broken. Two findings are notes, never failures (issue 15, item 5):

* **a bias cancelled by the normalization it feeds** (diagnosis rule ``cancelled_by_normalization``):
  the normalization subtracts the per-channel mean, so the bias cannot matter; Keras' default
  ``use_bias=True`` before ``BatchNormalization`` is redundant, not broken;
* **slow but moving**: a user's model that misses a minimum change it was *not* calibrated for (the package's
  ``[defaults]`` come from the seed network; "out of reach" of its steps, or with no single cause) is judged by
  its own run instead. The parameter moved as far as its optimizer's reach says a working layer moves, its steps
  are above float32 rounding, and the loss did not rise beyond its noise: a layer learning slowly (a small
  learning rate, a small gradient that Adam normalizes), not a dead one. The run's reach is what
  ``diagnosis.out_of_reach`` measures: Adam's steps x lr x sqrt(weights); for other optimizers the path its steps
  took, sum ||dW||.

A bound the user set (``--health-min-relative-change``) or calibrated for this model
(``--health-thresholds``) stays a failure, and the seed network keeps its calibrated verdicts.
"""

from __future__ import annotations

import math

import numpy as np

from training_health.checks.diagnosis import adam_family, calibration_hint, learning_rate
from training_health.checks.loss_curve import MIN_DECREASE_Z, loss_statistics
from training_health.checks.schedule import SCHEDULE_COLLAPSED
from training_health.model.user_model import SEED_MODEL, layer_of

CANCELLED = "bias cancelled by the normalization it feeds"
# Causes that say something is broken win over "slow": only a bound missed without one may be a note. A borrowed
# minimum "out of reach" of the run's own steps says the bound does not fit this run, not that it is broken
# (bug corpus softmax_one_unit_lr_too_low's twin: its first bias, zero-initialized, moved 4.6e-5 of a reach of
# 1.8e-4 while the loss fell 0.251 -> 0.223).
# A collapsed schedule's rows replace "updates too small" / "no single cause" rows (diagnosis.schedule_collapsed) and
# keep their severity: the run-level loss_decreases judges the schedule (red when the loss did not fall, a note
# when it did).
INCONCLUSIVE = (
    "no single cause stands out",
    "updates too small",
    "bound out of reach of the steps taken",
    SCHEDULE_COLLAPSED,
)
# The gradient-norm floor of a user's model is relative to its own run (thresholds.relative_grad_norm_bounds),
# not borrowed: missing it is never downgraded.
SLOW_METRICS = ("relative change", "absolute change (W0=0)")
# A working layer moves at least this share of its optimizer's reach (Adam: steps x lr x sqrt(n); others:
# the path of its steps). Measured at 30 steps on the 12 corpus models that run today
# (fixtures/healthy_models; reach() on every parameter of run_probe(ProbeConfig(model=..., batch_size=the
# corpus's)), 2026-12-06, TF 2.21, 2-core CPU): smallest share 0.163 (gru_rows dense/bias), 16x above this
# bound; biases cancelled by a BatchNorm (notes anyway) down to 0.0084; a gradient below Adam's epsilon
# (broken_models tiny_gradient:conv1) 1.1e-08, a blocked or dead layer 0.
REACH_FRACTION = 0.01
# Steps smaller than this share of the weight are float32 rounding (machine epsilon 1.2e-7, x10): not learning.
# Same measurement, median ||dW||/||W|| per step: healthy smallest 4.5e-05 (SGD lr 1e-3, training_loop_from_scratch
# dense_1/kernel), 45x above; tiny_gradient:conv1 3e-11.
ROUNDING_STEP = 1e-6


def reach(traj, parameter: str) -> tuple[float, str]:
    """How far the run's optimizer could move ``parameter`` (absolute ||.||), and how that was worked out."""
    lr, steps, size = learning_rate(traj), traj.config.steps, int(np.prod(traj.shapes[parameter]))
    if adam_family(traj) and lr:
        return steps * lr * math.sqrt(size), f"Adam's reach {steps} steps x lr {lr:g} x sqrt({size} weights)"
    path = float(np.sum(traj.column("update_norm", parameter)))
    return path, f"the path of its {steps} steps (sum of ||dW||)"


def _bounds_are_borrowed(traj, thresholds) -> bool:
    """The bounds judging this run were not measured for its model: the seed network's defaults."""
    if traj.config.model == SEED_MODEL or thresholds.min_relative_change_override is not None:
        return False
    return not thresholds.for_model(traj.config.model).entries_apply


def slow_but_moving(traj, offender, thresholds) -> str | None:
    """The note for a borrowed bound missed by a parameter that learns slowly; None when it is not one."""
    p, title = offender.name, getattr(offender.cause, "title", "")
    if offender.metric not in SLOW_METRICS or title not in INCONCLUSIVE or not _bounds_are_borrowed(traj, thresholds):
        return None
    change, loss = traj.change_norm.get(p, 0.0), np.asarray(traj.loss, np.float64)
    if not (change > 0 and math.isfinite(change) and np.all(np.isfinite(loss)) and loss.size > 1):
        return None
    held = loss_held(loss)
    if held is None:
        return None
    possible, how = reach(traj, p)
    share = change / possible if possible > 0 else 0.0
    weight = traj.column("weight_norm", p)
    steps = traj.column("update_norm", p)[weight > 0] / weight[weight > 0]
    step_ratio = float(np.median(steps)) if steps.size else math.inf  # zero-initialized: no ratio against zero
    if share < REACH_FRACTION or step_ratio < ROUNDING_STEP:
        return None
    return (
        f"slow but moving: {p} {offender.metric} {offender.observed}, below the package's default {offender.bound} "
        f"(measured on the seed network, not on this model), but it moved {share:.2g} of {how} "
        f"(a working layer moves >= {REACH_FRACTION:g}), steps {step_ratio:.2g} of the weight (> float32 rounding), "
        f"and {held}; for bounds of its own, {calibration_hint(traj)}"
    )


def loss_held(loss: np.ndarray) -> str | None:
    """What shows the loss did not rise (a slow layer of a run that is not diverging), or None: its last window's
    median at most MIN_DECREASE_Z step-to-step noises above its first's (the margin loss_decreases asks of a fall,
    mirrored; loss_curve.loss_statistics). Single steps are batch noise: the Keras guide's training loop (SGD 1e-3,
    batches of 64; healthy) ran 2.302 -> 2.355 at seed 1 while its window medians fell 0.0015 (0.05 noises), and
    its slow dense_1 failed as "no single cause"."""
    s = loss_statistics(loss)
    if s["z"] < -MIN_DECREASE_Z:
        return None
    w, n = s["window"], loss.size
    change = "fell" if s["last"] < s["first"] else "did not rise beyond its noise"
    return (
        f"the loss {change} (median of steps 0..{w - 1} {s['first']:.4g}, of steps {n - w}..{n - 1} {s['last']:.4g}; "
        f"step-to-step noise {s['noise']:.2g})"
    )


def cancelled_bias(offender) -> str | None:
    cause = offender.cause
    if getattr(cause, "title", "") != CANCELLED:
        return None
    fixes = "".join(f"; fix: {fix}" for fix in cause.fixes)
    return f"redundant bias: {cause.parameter}: {offender.metric} {offender.observed} ({cause.detail}){fixes}"


def note_for(traj, offender, thresholds) -> str | None:
    """The note an offender is downgraded to, or None when it fails the test."""
    return cancelled_bias(offender) or slow_but_moving(traj, offender, thresholds)


def split(traj, offenders, thresholds) -> tuple[list, list[str]]:
    """(offenders that fail, notes): a check fails only if some offender is not a note."""
    failing, notes = [], []
    for offender in offenders:
        note = note_for(traj, offender, thresholds)
        if note is None:
            failing.append(offender)
        else:
            notes.append(f"layer {layer_of(offender.name)}: {note}")
    return failing, list(dict.fromkeys(notes))
