"""A run that sat on the chance plateau and then left it: the premise under which a gradient's step-0 scale is no
reference for its growth (``thresholds.relative_grad_norm_bounds``, the growth ceiling) and lowering the learning
rate is no fix (``diagnosis.exploding_gradient``). Its own module, no other module of the package: thresholds.py
and diagnosis.py both read it, and the loss-curve checks share its windows and chance band.

A softmax classifier whose loss sits at ln C (it predicts 1/C for every class) gets small, mutually cancelling
gradients until it breaks symmetry; as its loss leaves ln C its gradients grow by 10-100x, and an RMSprop/Adam step
sized on the plateau's small second moment can overshoot once (a one-step loss spike it recovers from). Measured,
TF 2.21, 30 steps, the toy ResNet of the Keras "The Functional API" guide (fixtures/healthy_models/toy_resnet.py,
RMSprop 1e-3) on MNIST, batch 128 / 64, seeds 0-4
(``python -m fixtures.bug_corpus.gradients --only toy_resnet --seeds 0,1,2,3,4 [--batch-size 128]``): loss at
ln 10 for ~20 steps, then down to 2.05-2.25; the largest growth over the step-0 scale 290x / 141x at seeds 1 / 2
(batch 128; 82.8x at batch 64, seed 3), each at a one-step spike (2.094 -> 3.938 -> 2.367 at seed 1); plain
model.fit for 300 steps reaches 88% / 82% accuracy at seeds 1 / 2. Over the gradient's own median after the
plateau (the last window) the same peaks are 39.7x / 19.4x / 34.6x (all 20 runs: <= 39.7x).
"""

from __future__ import annotations

import math

import numpy as np

# (chance - loss) / chance in here: the loss sits at chance (healthy runs end >= 0.034 below it or far above it;
# loss_curve.py: calibration).
CHANCE_BAND = (-0.1, 0.01)
# What the growth ceiling's basis says it is relative to after a plateau (diagnosis reads it back).
PLATEAU_REFERENCE = "its own level after the chance plateau"
EARLY_STEPS = 6  # steps 0..5: where a run's start is read (here and by thresholds.py's growth ceiling)
# A run still leaving the plateau as it ends: its lowest step of the last window at least this far below ln C.
# On the plateau a batch's loss lies at most 1.08% below ln C (steps 0..5 of the toy ResNet, seeds 0-9, TF 2.21,
# oneDNN default and AVX2: 4.6x margin). Seed 7 (default ISA) ended leaving it: 2.131 at step 24 (7.5% below), its
# last window's median 2.282 (0.9% below: not yet the 1% of CHANCE_BAND), and the growth ceiling against its start
# called it an exploding gradient (130x) with "lower the learning rate to ~0.0001", at which it learns nothing.
LEAVING = 0.05


def windows(steps: int) -> tuple[int, int]:
    """(window length, warm-up steps left out of the rise) for a run of ``steps`` steps (loss_curve.py)."""
    return max(3, steps // 5), max(3, steps // 6)


def at_chance(loss: float, chance: float) -> bool:
    return CHANCE_BAND[0] <= (chance - loss) / chance < CHANCE_BAND[1]


def classes_of(traj) -> int | None:
    """C of a softmax classifier's run (its output width), None for any other head."""
    kind = getattr(traj, "loss_kind", None)
    if kind is None or not kind.classifies:
        return None
    width = (getattr(traj, "outputs_start", None) or {}).get("width")
    return int(width) if width and width > 1 else None


def left_plateau(loss, classes: int | None) -> str | None:
    """What shows that the loss sat at chance over its first steps and then fell off it, or None: the median of
    steps 0..5 at ln C (within CHANCE_BAND), every step finite, the last window's median below the first window's
    (it did not rise), and the last window at least CHANCE_BAND[1] below ln C (the bound loss_decreases calls
    "learned something") by its median, or, for a run still leaving the plateau as it ends, by its lowest step at
    least LEAVING below. A loss that rose or went non-finite (an explosion) never qualifies."""
    loss = np.asarray(loss, np.float64)
    if not classes or loss.size < 2 * EARLY_STEPS or not np.all(np.isfinite(loss)):
        return None
    chance, (w, _) = math.log(classes), windows(loss.size)
    early, first, last = (float(np.median(part)) for part in (loss[:EARLY_STEPS], loss[:w], loss[-w:]))
    if not (at_chance(early, chance) and last < first):
        return None
    start = f"the loss sat at chance (ln {classes} = {chance:.4g}; median of steps 0..{EARLY_STEPS - 1} {early:.4g})"
    if (chance - last) / chance >= CHANCE_BAND[1]:
        return f"{start} and then fell to {last:.4g} (median of steps {loss.size - w}..{loss.size - 1})"
    lowest = loss.size - w + int(np.argmin(loss[-w:]))
    if (chance - loss[lowest]) / chance >= LEAVING:
        return (
            f"{start} and was leaving it as the run ended ({loss[lowest]:.4g} at step {lowest}; median of steps "
            f"{loss.size - w}..{loss.size - 1} {last:.4g})"
        )
    return None


def plateau_exit(traj) -> str | None:
    """``left_plateau`` for a trajectory."""
    return left_plateau(traj.loss, classes_of(traj))
