"""Fitting one batch of 16 examples the run's own way: what ``overfit_batch`` judges and ``loss_decreases``
consults (a flat loss with no cause from a model that still learns 16 examples is a slow start). Measured
once per run (``Trajectory.derived``); calibration in ``batch_checks``' docstring and below.
"""

from __future__ import annotations

import numpy as np

from training_health.checks.run_checks import NotApplicable, RunContext

OVERFIT_EXAMPLES = 16
CHUNK = 25  # steps between two checks of the fit (one compiled call each)
HEALTHY_MAX_STEPS = 75  # the most steps a healthy model needed to fit 16 examples (calibration above)
MAX_STEPS = 200  # ~2.7x that


def batch_of(run: RunContext, n: int):
    """The first ``n`` examples, or, when they are all of one class and the data has others, the first n/2 of
    that class and the first n/2 of the rest (in data order): one constant answer fits a one-class batch, so
    fitting it tells nothing (a sixth user's breast-cancer data starts with 16 malignant rows: "13 of 16 right,
    no more than the 16 that one constant answer gets")."""
    data = run.data
    chosen = _two_classes(np.asarray(data.train_labels), n, run.trajectory.loss_kind)
    return data.train_images[chosen], np.asarray(data.train_labels[chosen])


def _two_classes(labels: np.ndarray, n: int, kind) -> np.ndarray:
    from training_health.model.losses import BINARY

    first = np.arange(min(n, len(labels)))
    if not (kind.classifies or kind.family == BINARY) or len(labels) <= n:
        return first
    ids = labels.argmax(-1) if kind.classifies and labels.ndim > 1 else labels.reshape(len(labels), -1)[:, 0]
    ids = ids > 0.5 if kind.family == BINARY else ids
    if np.any(ids[:n] != ids[0]):  # the first n already mix classes
        return first
    same, others = np.flatnonzero(ids == ids[0]), np.flatnonzero(ids != ids[0])
    if not others.size:  # one class in the whole data: the labels check names it
        return first
    return np.sort(np.concatenate([same[: n - min(n // 2, others.size)], others[: n // 2]]))


FITS, SLOW, STUCK = "fits", "slow", "stuck"
# Fits: all 16 right in inference mode, or the training-mode loss (last 5 steps against step 0) fell to
# <= 20% of its start. BatchNorm models are judged by the training loss: their moving statistics lag 200
# steps on 16 examples (measured: small_resnet inference loss 2.30 -> 2.47 while its training loss fell
# 2.36 -> 0.016). Slow: not fitted, but it gets more of them right than the most common label alone
# would (its predictions depend on the input: it learns): fixtures/healthy_models/training_loop_from_scratch
# (SGD 1e-3, the Keras guide's rate) 7 of 16 right after 200 steps, loss 2.41 -> 2.05; separable_convnet
# (a plateau at ln 10 for its first ~100 steps) 8 of 16. Stuck: no better than that constant answer, as
# run_faults:dead_activation_layers (every unit dead: the same logits for every image).
# Slow too: an inference-mode loss below the lowest loss any constant answer reaches on the batch (the entropy
# of its labels: no input-blind prediction beats it), by CONSTANT_LOSS_MARGIN. Accuracy alone misses a binary
# model that learns before it flips a prediction: bug corpus softmax_one_unit_mae's fixed twin (Dense(1) ->
# sigmoid -> Dense(1, sigmoid), RMSprop 1e-3) 11 of 16 right = the constant's 11, but loss 0.688 -> 0.579
# against the constant's best 0.621 (7% below).
FIT_LEFT = 0.2
RUN_WINDOW = 5  # steps averaged at a curve's end ("left"), the fit's own and the run's
CONSTANT_LOSS_MARGIN = 0.02


def fit_verdict(fit: dict) -> str:
    if fit["correct"] == OVERFIT_EXAMPLES or fit["left"] <= FIT_LEFT:
        return FITS
    beats_constant = fit.get("constant_loss") is not None and fit["loss"] < fit["constant_loss"] * (
        1 - CONSTANT_LOSS_MARGIN
    )
    return SLOW if fit["correct"] > fit["constant_correct"] or beats_constant else STUCK


def fit_one_batch(run: RunContext, max_steps: int = MAX_STEPS, run_evidence: bool = True) -> dict:
    """Train a fresh model the run's way on one batch of 16 until it fits (or max_steps); measured once per run.

    The probe's own loop machinery trains it (``probe_loop``): a train step whose optimizer lives at module
    level trains the model it was built for, with the fresh model's values loaded, as every run does.
    ``run_evidence``: a run whose own loss already meets the fit criterion is not trained again
    (``fitted_by_the_run``); the calibration turns this off to count the steps a fit takes.
    """
    cache = run.trajectory.derived
    if "fit_one_batch" not in cache:
        cache["fit_one_batch"] = (run_evidence and fitted_by_the_run(run)) or _fit_one_batch(run, max_steps)
    return cache["fit_one_batch"]


def fitted_by_the_run(run: RunContext) -> dict | None:
    """The fit, read from the run itself when its training loss (mean of the last 5 steps) already fell to
    ``FIT_LEFT`` of step 0's: the criterion a fit of 16 examples is judged by, met on a new batch every step,
    which is harder than one batch seen again and again. Fitting 16 examples would then prove nothing more and
    costs 0.4 s per run (a fifth of a 30-step run's training; 2.9 s of a 6-run grid's 18.8 s wall, measured on
    the seed network, TF 2.21, 2-core CPU). Only for the heads the fit can judge (classes or 0/1 targets)."""
    from training_health.model.losses import BINARY

    traj = run.trajectory
    kind, loss = traj.loss_kind, np.asarray(traj.loss, np.float64)
    if not (kind.classifies or kind.family == BINARY) or len(loss) < 2 * RUN_WINDOW:
        return None
    if not np.all(np.isfinite(loss)) or loss[0] <= 0:
        return None
    left = float(np.mean(loss[-RUN_WINDOW:]) / loss[0])
    if left > FIT_LEFT:
        return None
    return {"steps": len(loss), "correct": None, "curve": loss, "left": left, "from_run": True}


def _fit_one_batch(run: RunContext, max_steps: int) -> dict:
    import dataclasses

    import tensorflow as tf

    from training_health.model.user_model import ensure_built
    from training_health.probe.devices import device_name
    from training_health.probe.training_loop import probe_loop

    config = dataclasses.replace(run.config, batch_size=OVERFIT_EXAMPLES)
    images, labels = batch_of(run, OVERFIT_EXAMPLES)
    kind = run.trajectory.loss_kind
    with tf.device(device_name(config.device)):
        fresh = run.fresh()
        x = run.data.to_model_input(images)
        ensure_built(fresh, x[:1], config.model)
        untrained = [(v, v.numpy()) for v in fresh.variables]  # put back afterwards: the model is shared
        loop = probe_loop(config, fresh, run.data.to_model_input, instrument=False)  # only the loss is read
        loop.load(fresh)
        try:
            batches = tf.constant(np.stack([images] * CHUNK)), tf.constant(np.stack([labels] * CHUNK))
            loop.prepare(*batches)
            # Moving statistics (BatchNorm) lag 200 steps on 16 examples: such a model's inference-mode answers
            # say little; it is also read in training mode, and the better count is kept (a second user's
            # ResNet: 1 of 16 right in inference mode while its training loss fell to 36%).
            lagging = run.trajectory.has_moving_statistics
            initial_loss, initial_correct = _batch_loss_and_correct(loop.model, x, labels, kind)
            steps, losses = 0, []
            while steps < max_steps:
                chunk_loss, _ = loop.run_steps(*batches)
                losses.append(chunk_loss.numpy())
                steps += CHUNK
                loss, correct = _batch_loss_and_correct(loop.model, x, labels, kind)
                if lagging:
                    correct = max(correct, _batch_loss_and_correct(loop.model, x, labels, kind, training=True)[1])
                curve = np.concatenate(losses)
                left = float(np.mean(curve[-RUN_WINDOW:]) / curve[0]) if curve[0] > 0 else 1.0
                if correct == OVERFIT_EXAMPLES or left <= FIT_LEFT:
                    break
        finally:
            loop.give_back(fresh)
            for variable, value in untrained:
                variable.assign(value)
    return {
        "steps": steps,
        "correct": correct,
        "constant_correct": _constant_correct(labels, kind),
        "constant_loss": _constant_loss(labels, kind),
        "loss": loss,
        "initial_loss": initial_loss,
        "initial_correct": initial_correct,
        "curve": curve,
        "left": left,
        "lagging": lagging,
    }


def _constant_correct(labels, kind) -> int:
    """How many of the batch one constant answer gets right: the most common label (row)."""
    labels = np.asarray(labels)
    if kind.classifies:
        ids = labels if labels.ndim == 1 else labels.argmax(-1)
        return int(np.bincount(ids.astype(np.int64)).max())
    rows = (labels.reshape(len(labels), -1) > 0.5).astype(np.int8)
    return int(np.unique(rows, axis=0, return_counts=True)[1].max())


def _constant_loss(labels, kind) -> float | None:
    """The lowest loss one constant answer reaches on the batch: the entropy of its labels (the class-id
    distribution; per output unit for 0/1 targets); None for losses that are not a cross-entropy."""
    from training_health.model.losses import BINARY

    labels = np.asarray(labels)
    if kind.classifies:
        ids = labels if labels.ndim == 1 else labels.argmax(-1)
        p = np.bincount(ids.astype(np.int64)) / len(ids)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())
    if kind.family == BINARY:
        p = np.clip((labels.reshape(len(labels), -1) > 0.5).mean(axis=0), 1e-12, 1 - 1e-12)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    return None


def _batch_loss_and_correct(model, x, labels, kind, training: bool = False) -> tuple[float, int]:
    """The batch's loss and how many of its examples the model gets right, read as the run's loss reads
    the outputs (``model/losses.py``): class ids or one-hot under a softmax, 0/1 targets under sigmoids."""
    import tensorflow as tf

    from training_health.model.losses import BINARY

    outputs, labels = tf.cast(model(x, training=training), tf.float32), np.asarray(labels)
    if kind.classifies:
        ids = labels if labels.ndim == 1 else labels.argmax(-1)
        if outputs.shape.rank != 2 or outputs.shape[-1] <= int(ids.max()):
            raise NotApplicable(f"the model's output {outputs.shape} is not one score per class")
        log_p = tf.nn.log_softmax(outputs) if kind.from_logits else tf.math.log(tf.clip_by_value(outputs, 1e-7, 1.0))
        loss = -tf.reduce_mean(tf.gather(log_p, ids, batch_dims=1))
        correct = int(tf.reduce_sum(tf.cast(tf.argmax(outputs, axis=-1) == ids, tf.int32)))
        return float(loss), correct
    if kind.family == BINARY and labels.size == int(tf.size(outputs)):
        targets = tf.constant(labels.reshape(outputs.shape), tf.float32)
        p = tf.sigmoid(outputs) if kind.from_logits else tf.clip_by_value(outputs, 1e-7, 1 - 1e-7)
        loss = -tf.reduce_mean(targets * tf.math.log(p) + (1 - targets) * tf.math.log(1 - p))
        right = tf.reduce_all((p > 0.5) == (targets > 0.5), axis=list(range(1, outputs.shape.rank)) or None)
        return float(loss), int(tf.reduce_sum(tf.cast(right, tf.int32)))
    raise NotApplicable(f"loss {kind.describe()}: fitting one batch is judged for classification heads")
