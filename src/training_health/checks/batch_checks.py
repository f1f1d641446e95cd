"""Run-level checks on one batch: the model can overfit 16 examples (``overfit_batch``) and its examples do
not talk to each other (``batch_independence``). Both build a fresh model from the run's factory.

``overfit_batch``: the run's own training (its optimizer, learning rate and loss, or its
``--health-train-step``: ``model/train_step.training_step``) on one fixed batch of 16 training examples,
in the probe's compiled loop, in chunks of ``CHUNK`` steps up to ``MAX_STEPS``; fitted when the model,
in inference mode, classifies all 16 correctly. A network that cannot fit 16 examples has a bug in its
model or its loss, whatever its per-layer numbers say.
Calibration (TF 2.21, 2-core CPU, seeds 0, 1, 2, the first 16 training images of MNIST, chunks of 25
steps; ``python -m training_health.checks.calibrate_run_checks``, see loss_curve.py for the models):
steps until all 16 were right: seed network he_normal, glorot_uniform, truncated_normal 25 each (TF1
Adam 1e-3, dropout); fixtures/user_models compiled_keras:sgd_momentum, training_variants:regularized
and :batchnorm 50 each (SGD 0.01 momentum 0.9, Adam 1e-3), subclassed:build and keras_convnet:build
50/50/75 (suite Adam), run_faults:functional_relu_ops 25/50/50: at most 75 for healthy models, so
MAX_STEPS = 200 (2.7x). The question's known-bad runs fit too: seed_normal 50/50/25, seed_zero_conv1
(53% of conv1 dead) 150/125/100. run_faults:dead_activation_layers (every unit of dense0 dead) is at
4/16 after 400 steps at every seed: its logits are the same for every image. Time: 0.2-2.1 s per check
(tracing included).

``batch_independence``: the gradient of example i's logits (projected on fixed random weights) with
respect to example j's input, j != i, in inference mode (BatchNorm on its moving statistics, no
dropout), is exactly zero for every model that treats examples separately: nothing in float arithmetic
makes a dependence appear. Measured by the same command (largest cross / own gradient norm over 4
examples, seeds 0, 1, 2): exactly 0 for every model above; 1.01 / 1.15 / 1.20 for run_faults:mixes_batch
(the batch axis transposed into the features). Bound 1e-6: far from both.
"""

from __future__ import annotations

import numpy as np

from training_health.checks.one_batch import (
    CHUNK,
    FIT_LEFT,
    FITS,
    HEALTHY_MAX_STEPS,
    MAX_STEPS,
    OVERFIT_EXAMPLES,
    SLOW,
    batch_of,
    fit_one_batch,
    fit_verdict,
)
from training_health.checks.run_checks import NotApplicable, RunContext, run_check
from training_health.errors import HealthCheckError
from training_health.settings import setting

INDEPENDENCE_EXAMPLES = 4
CROSS_TALK = 1e-6  # cross-example gradient over own-example gradient; exactly 0 for independent examples


@run_check("overfit_batch")
def check_overfit_batch(run: RunContext) -> list[str]:
    """The run's own training fits 16 examples within MAX_STEPS steps; a model that learns them slowly is a
    note, one that cannot lower their loss is broken."""
    fit = fit_one_batch(run)
    verdict = fit_verdict(fit)
    if verdict == FITS:
        return []
    curve, config = fit["curve"], run.config
    measured = (
        f"training loss on the batch: step 0 {curve[0]:.4g}, step {len(curve) // 2} {curve[len(curve) // 2]:.4g}, "
        f"step {len(curve) - 1} {curve[-1]:.4g} ({fit['left']:.0%} of its start left); in inference mode loss "
        f"{fit['initial_loss']:.4g} -> {fit['loss']:.4g}, right {fit['initial_correct']} -> {fit['correct']}"
        + (
            " (the better of inference and training mode: BatchNorm's moving statistics lag)"
            if fit.get("lagging")
            else ""
        )
    )
    if verdict == SLOW:
        return [
            f"the model learns {OVERFIT_EXAMPLES} examples slowly: {measured}; healthy models fit them within "
            f"{HEALTHY_MAX_STEPS} steps. It learns, so this is not a failure; a slow start (a plateau at chance) "
            f"often ends after more steps: give {setting('steps', 100)} to see the run leave it"
        ]
    cause, fix = _cause(run)
    if _too_slow_to_judge(run.trajectory, fit, cause):
        return [
            f"the model learns {OVERFIT_EXAMPLES} examples too slowly to judge in {fit['steps']} steps: {measured}; "
            f"the loss is still falling, but {cause}: at this learning rate {MAX_STEPS} steps cannot fit them. "
            f"It learns, so this is not a failure; to fit faster: {fix}"
        ]
    raise HealthCheckError(
        f"overfit_batch: after {fit['steps']} steps on the same {OVERFIT_EXAMPLES} examples the training loss "
        f"kept {fit['left']:.0%} of its start and the model classifies {fit['correct']} of {OVERFIT_EXAMPLES} "
        f"right, no more than the {fit['constant_correct']} that one constant answer gets: its predictions do not "
        f"depend on the input (bound: the loss falls below {FIT_LEFT:.0%} of its start, or all {OVERFIT_EXAMPLES} "
        f"right, within {MAX_STEPS} steps; healthy models fit them within {HEALTHY_MAX_STEPS})\n"
        f"  context: {config.context()}\n"
        f"  {measured}\n"
        f"  likely cause: {cause}\n"
        f"  fix: {fix}"
    )


# A run whose only measured cause is updates far below the typical size (the loss-curve diagnosis found no dead,
# vanishing, exploding or oversized layer first) and whose batch loss still falls when the budget runs out is
# slow, not stuck: bug corpus unscaled_pixels' fixed twin (SGD 1e-4, the benchmark's fix; update/weight 7.7e-6
# per step) lowers the 16 examples' loss 2.43 -> 2.20 in 200 steps, still falling at the end, and at its original
# program's length (1570 steps of 32) its own loss falls 2.35 -> 2.04 (10 epochs, 35% right). Stuck networks do
# not pass: dead_activation_layers' cause is its dead ReLUs; softmax_one_unit_lr_too_low's faulty program (every
# gradient exactly 0) has updates of 0 and a flat batch loss.
STILL_FALLING = 0.995  # the last chunk's mean loss below this share of the chunk before it (twin: 0.988)
FELL = 0.95  # and below this share of step 0's (twin: 0.91)


def _too_slow_to_judge(traj, fit: dict, cause: str) -> bool:
    from training_health.checks.severity import ROUNDING_STEP

    if not cause.startswith("updates too small"):
        return False
    curve = np.asarray(fit["curve"], np.float64)
    kernels = [k for k in traj.parameters if len(traj.shapes[k]) >= 2 and not traj.change_norm.get(k) == 0]
    ratios = [traj.median_update_ratio(k) for k in kernels]  # a declared-frozen kernel never moves: not counted
    moving = bool(ratios) and min(ratios) >= ROUNDING_STEP  # every kernel steps above float32 rounding
    if not moving or len(curve) < 2 * CHUNK or not np.all(np.isfinite(curve)):
        return False
    last, before = float(np.mean(curve[-CHUNK:])), float(np.mean(curve[-2 * CHUNK : -CHUNK]))
    return last < STILL_FALLING * before and last < FELL * curve[0]


def _cause(run: RunContext) -> tuple[str, str]:
    """The run's own measurements say why (the loss-curve diagnosis); a network that fits nothing is broken."""
    from training_health.checks.loss_curve import frozen_untrained_base, not_learning_cause

    traj = run.trajectory
    cause, fix = not_learning_cause(traj, np.asarray(traj.loss, np.float64), run.frozen)
    if cause.startswith("no single cause"):
        return frozen_untrained_base(run) or (
            "the model cannot represent or cannot reach even these 16 labels: a bug in the model (a layer "
            "that discards its input, a wrong activation on the output) or in the loss",
            "train the model alone on these 16 examples and look at what its logits do: they should "
            "separate within a few dozen steps",
        )
    return cause, fix


@run_check("batch_independence")
def check_batch_independence(run: RunContext) -> list[str]:
    """In inference mode, example i's logits do not depend on example j's input (j != i)."""
    ratio, i, j, value = cross_talk(run)
    if ratio <= CROSS_TALK:
        return []
    raise HealthCheckError(
        f"batch_independence: example {i}'s logits depend on example {j}'s input in inference mode: gradient "
        f"norm {value:.3g}, {ratio:.2g}x the largest gradient with respect to an example's own input "
        f"(bound: <= {CROSS_TALK:g}; 0 for a model that treats examples separately)\n"
        f"  context: {run.config.context()}\n"
        "  likely cause: the model mixes examples across the batch: a reshape or transpose that moves the batch "
        "axis (axis 0) into the features, e.g. tf.transpose with a permutation that does not start with 0, or "
        "a reshape to a fixed first dimension; (BatchNormalization in inference mode uses its moving "
        "statistics and does not mix them)\n"
        "  fix: keep the batch axis first in every reshape/transpose: tf.transpose(x, [0, ...]) and "
        "tf.reshape(x, [tf.shape(x)[0], -1]) (or keras.layers.Flatten / Permute, which never touch it)"
    )


def cross_talk(run: RunContext) -> tuple[float, int, int, float]:
    """(largest cross-example over own-example gradient norm, i, j, that cross gradient's norm) of a fresh
    model in inference mode, on the first INDEPENDENCE_EXAMPLES training examples."""
    import tensorflow as tf

    from training_health.probe.devices import device_name

    images, _ = batch_of(run, INDEPENDENCE_EXAMPLES)
    with tf.device(device_name(run.config.device)):
        model = run.fresh()  # inference mode only: the shared fresh model is left as it was
        x = tf.convert_to_tensor(run.data.to_model_input(images))
        if not x.dtype.is_floating:
            raise NotApplicable(f"the model's input is {x.dtype.name}, not float: no gradient with respect to it")
        projection = tf.random.stateless_normal([10_000], seed=[run.config.seed, 16])
        cross = np.zeros((INDEPENDENCE_EXAMPLES, INDEPENDENCE_EXAMPLES))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            logits = tf.reshape(tf.cast(model(x, training=False), tf.float32), [INDEPENDENCE_EXAMPLES, -1])
            width = logits.shape[-1]
            outputs = [tf.reduce_sum(logits[i] * projection[:width]) for i in range(INDEPENDENCE_EXAMPLES)]
        for i, output in enumerate(outputs):
            gradient = tape.gradient(output, x)
            if gradient is None:
                raise NotApplicable(
                    "no gradient reaches the model's input (a stop_gradient or non-differentiable op before the "
                    "logits): whether examples mix cannot be measured"
                )
            cross[i] = tf.norm(tf.cast(tf.reshape(gradient, [INDEPENDENCE_EXAMPLES, -1]), tf.float32), axis=1).numpy()
        del tape
    own = np.diag(cross).copy()
    off = cross - np.diag(own)
    i, j = np.unravel_index(np.argmax(off), off.shape)
    return float(off.max() / max(own.max(), 1e-30)), int(i), int(j), float(off[i, j])
