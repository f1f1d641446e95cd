"""Run-level checks on the loss curve: it decreases beyond its noise (``loss_decreases``) and it does not
oscillate or diverge (``loss_stable``). Both read only the trajectory's per-step losses.

Statistics, for a run of n steps (w = max(3, n // 5) steps per window, the first max(3, n // 6) steps
left out of the rise, where Adam's first steps may overshoot):

- ``first``, ``last``: the medians of the first and of the last window (a median: one spike in a window
  moves it not at all);
- ``noise``: the step-to-step noise, 1.4826 x median |loss[t+1] - loss[t]| / sqrt(2) (robust: a spike is one
  step among many);
- ``z = (first - last) / noise``: the decrease in units of the noise; ``drop = (first - last) / first``;
- ``chance``: ln C for a softmax cross-entropy over C classes, the loss of a network that predicts 1/C for
  every class (what a network that learned nothing scores);
- ``rise``: the largest one-step rise after the first steps, over ``first``.

Calibration (TF 2.21, 2-core CPU, 30 steps, seeds 0, 1, 2, real MNIST):
``python -m training_health.checks.calibrate_run_checks --seeds 0,1,2 --models seed:he_normal,...`` over
the seed network under he_normal, glorot_uniform, truncated_normal (TF1 Adam 1e-3, dropout) and its
seed_normal / seed_zero_conv1 runs, and fixtures/user_models compiled_keras:sgd_momentum,
training_variants:regularized, :batchnorm (SGD 0.01 momentum 0.9, Adam), subclassed:build,
keras_convnet:build (suite Adam), run_faults:functional_relu_ops (Adam); training_variants:mixed_policy
measured once by hand (same curves as sgd_momentum). Healthy minimum z 5.19 (seed_zero_conv1 seed 0;
healthy initializations >= 6.39), minimum drop 0.045 (regularized seed 2), |last - chance| / chance
>= 0.034 (regularized seed 2; the N(0, 1) runs end far above chance, >= 2470x), maximum rise 0.173
(glorot_uniform seed 2). Broken runs: Adam 0.01 / 0.03 / 0.1 on the seed network and Keras Adam 0.1 /
0.03 end within 0.5% of ln 10 (stuck); run_faults:dead_activation_layers within 0.06%; plain SGD 1.0
z -0.22; run_faults:oscillating (SGD 0.2 momentum 0.9) rises 1.23 / 0.424 / 5.26 at seeds 0 / 1 / 2
(seed 1 is missed here; its overfit_batch fails, 15/16 after 400 steps), SGD 0.5 momentum 0.9 0.557,
plain SGD 0.5 0.659, plain SGD 2.0 to 1e24.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from training_health.checks.input_scale import tiny_input_cause, unscaled_input_cause
from training_health.checks.output_head import relu_output_below_targets
from training_health.checks.plateau import CHANCE_BAND, at_chance, windows  # noqa: F401  (shared with the growth ceiling)
from training_health.checks.run_checks import NotApplicable, RunContext, run_check
from training_health.checks.schedule import collapsed_schedule
from training_health.errors import HealthCheckError
from training_health.settings import setting

MIN_DECREASE_Z = 2.5  # healthy minimum 5.19: margin 2.1x
MIN_DROP = 0.015  # healthy minimum 0.045: margin 3x
# CHANCE_BAND (plateau.py): (chance - last) / chance in it: ended at chance (healthy: <= -2470 or >= 0.034)
MAX_RISE = 0.5  # one step's rise over the first window's level; healthy maximum 0.173: margin 2.9x
# ... and over the run's step-to-step noise: small batches make a batch's loss stray far from the last (a sixth
# user's breast-cancer MLP, batch 32: +53% and +84% of its start at Adam 1e-3 / 1e-4, 5.6 / 6.0 noises; the
# imbalanced-data MLP at batch 2048: +52% / +65%, 5.0 / 4.2 noises), an oscillating rate far more (the control
# run_faults:oscillating, SGD 0.2 momentum 0.9, seeds 0 / 2: 89 / 329 noises; TF 2.21, 30 steps).
MIN_SPIKE_NOISES = 20.0  # 3.3x over the healthy maximum (6.0), 4.5x under the control's smallest (89)
MIN_STEPS = 10  # the suite's minimum --health-steps; with fewer, windows of 3 steps overlap
# loss_decreases is judged from 30 steps on: the first 10 / 15 / 20 steps of the same 33 healthy runs give
# minimum z 1.28 / 2.17 / 4.15, drop 0.8% / 1.6% / 3.0%, |last - chance| 0.3% / 0.4% / 1.5% of ln 10
# (SGD 0.01 runs have hardly started): below 30 steps slow learning and no learning look alike.
DECREASE_MIN_STEPS = 30


def loss_statistics(loss) -> dict:
    loss = np.asarray(loss, np.float64)
    w, warm = windows(len(loss))
    first, last = float(np.median(loss[:w])), float(np.median(loss[-w:]))
    noise = 1.4826 * float(np.median(np.abs(np.diff(loss)))) / math.sqrt(2)
    rises = np.diff(loss[warm:])
    at = int(np.argmax(rises)) + warm
    return {
        "window": w,
        "first": first,
        "last": last,
        "noise": noise,
        "z": (first - last) / noise if noise > 0 else (math.inf if first > last else 0.0),
        "drop": (first - last) / first if first else 0.0,
        "rise": float(rises[at - warm]) / first if first else 0.0,
        "rise_in_noise": float(rises[at - warm]) / noise if noise > 0 else math.inf,
        "rise_step": at,
    }


def chance_loss(run: RunContext) -> float | None:
    """ln C when the run's loss is a softmax cross-entropy over C classes, else None."""
    recipe = (run.trajectory.recipe or "").lower()
    if "binary" in recipe or not ("cross-entropy" in recipe or "crossentropy" in recipe):
        return None
    classes = getattr(run.data, "num_classes", None)
    return math.log(classes) if classes and classes > 1 else None


def _usable_loss(run: RunContext, min_steps: int = MIN_STEPS) -> np.ndarray:
    loss = np.asarray(run.trajectory.loss, np.float64)
    if loss.size < min_steps:
        raise NotApplicable(
            f"{loss.size} steps: judged from {min_steps} steps on ({setting('steps', min_steps)}); in fewer, "
            "a healthy but slow run (SGD 0.01) has not yet moved its loss beyond its noise"
        )
    if not np.all(np.isfinite(loss)):
        raise NotApplicable("the loss is not finite at every step: loss_finite reports it")
    return loss


def _curve(loss: np.ndarray, s: dict) -> str:
    n = len(loss)
    shown = ", ".join(f"{x:.4g}" for x in loss[: min(n, 6)])
    return f"loss at steps 0-5: {shown}; median of steps 0-{s['window'] - 1} {s['first']:.4g}, " + (
        f"of steps {n - s['window']}-{n - 1} {s['last']:.4g}; step-to-step noise {s['noise']:.3g}"
    )


@run_check("loss_decreases")
def check_loss_decreases(run: RunContext) -> list[str]:
    """The loss falls beyond its noise, and not merely to the loss of a network that learned nothing."""
    loss = _usable_loss(run, DECREASE_MIN_STEPS)
    s, chance, traj = loss_statistics(loss), chance_loss(run), run.trajectory
    problems = []
    if s["z"] < MIN_DECREASE_Z or s["drop"] < MIN_DROP:
        problems.append(
            f"the loss fell by {s['first'] - s['last']:.3g} ({s['drop']:.1%}, {s['z']:.2g}x its step-to-step noise); "
            f"bound: >= {MIN_DECREASE_Z:g}x the noise and >= {MIN_DROP:.1%}"
        )
    ended_at_chance = chance is not None and at_chance(s["last"], chance)
    if ended_at_chance:
        problems.append(
            f"the loss ends at {s['last']:.4g}, the loss of a network that predicts 1/{round(math.exp(chance))} for "
            f"every class (ln {round(math.exp(chance))} = {chance:.4g}): it has learned nothing (accuracy ~chance); "
            f"bound: at least {CHANCE_BAND[1]:.0%} below it"
        )
    elif s["last"] >= loss[0]:
        problems.append(ended_above_its_start(s, loss, chance))
    if not problems:
        return _collapsed_although_it_fell(traj)
    relu_output = relu_output_below_targets(run)
    cause, fix = (relu_output[0], relu_output[2]) if relu_output else not_learning_cause(traj, loss, run.frozen)
    learns = _learns_one_batch(run) if cause.startswith("no single cause") else None
    memorized_in = _memorized_in(run) if learns else None
    if memorized_in and ended_at_chance and len(loss) >= UNRELATED_AFTER * memorized_in:
        cause, fix = unrelated_labels(len(loss), memorized_in, chance)
    elif learns:  # nothing broke and it learns: a slow start at these steps (a note, not a failure)
        decides = max(100, UNRELATED_AFTER * memorized_in) if memorized_in else max(100, 3 * len(loss))
        return [
            f"the loss did not fall beyond its noise in {len(loss)} steps ({'; '.join(problems)}), but the model "
            f"learns: {learns}. "
            f"A slow start (a plateau at chance) or labels unrelated to the inputs; give "
            f"{setting('steps', decides)} to tell them apart"
        ]
    if cause.startswith("no single cause"):
        cause, fix = frozen_untrained_base(run) or (cause, fix)
    slow = slow_regression(run, s) if cause.startswith("no single cause") else None
    if slow:
        return [f"the loss did not fall beyond its noise in {len(loss)} steps ({'; '.join(problems)}), but {slow}"]
    raise HealthCheckError(
        f"loss_decreases: the network is not learning: {'; '.join(problems)}\n"
        f"  context: {traj.config.context()}\n"
        f"  {_curve(loss, s)}\n"
        f"  likely cause: {cause}\n"
        f"  fix: {fix}"
    )


def _collapsed_although_it_fell(traj) -> list[str]:
    """A schedule that collapsed while the loss still fell: the first steps learned, the rest of a real training
    will not (a first user applied "raise the rate to ~0.01" to ExponentialDecay(decay_steps=1, decay_rate=0.5): the
    loss fell and passed with the rate ~1e-11 by step 29). A note: these steps did learn; the schedule is its cause."""
    found = collapsed_schedule(traj)
    if found is None:
        return []
    cause, fix = found
    return [f"the loss fell, but the {cause}: a longer training learns nothing after the first steps; fix: {fix}"]


def ended_above_its_start(s: dict, loss: np.ndarray, chance: float | None) -> str:
    """A loss whose last window is not below its step-0 value learned nothing, wherever it ends: a first user's
    Adam 1.0 ended at 2.667 from 2.311 (16% above ln 10, so outside the chance band) after early spikes that made
    the first window's median, and the drop against it, look like learning (seeds 1 and 2 of the same model
    ended inside the chance band and failed). Checked on the healthy corpus (tests/test_healthy_corpus.py)."""
    above = (
        f", above the loss of a network that predicts 1/{round(math.exp(chance))} for every class "
        f"(ln {round(math.exp(chance))} = {chance:.4g})"
        if chance is not None and s["last"] > chance
        else ""
    )
    return (
        f"the loss ends at {s['last']:.4g} (median of the last {s['window']} steps), not below its step-0 value "
        f"{loss[0]:.4g}{above}: it has learned nothing; bound: below step 0's loss"
    )


# A model that memorizes 16 examples in k steps and still sits at chance on new batches after this many times k
# steps is not slow: what it memorizes does not carry over, so its labels do not follow from its inputs. Healthy
# slow starters do not memorize fast: separable_convnet (a plateau at ln 10 for ~100 steps) and
# training_loop_from_scratch (SGD 1e-3) get 8 and 7 of 16 right in 200 steps (one_batch.py: "slow", never
# "fits"). A user's convnet on labels shuffled apart from their images (Adam 1e-3, batch 64): 16 examples
# memorized in 50 steps, the run at ln 10 after 30 and after 300 steps. At the default 30 steps the rule
# cannot fire (the fit takes at least one chunk of 25 steps): the note then names the steps that decide.
UNRELATED_AFTER = 4


def unrelated_labels(steps: int, memorized_in: int, chance: float) -> tuple[str, str]:
    classes = round(math.exp(chance))
    cause = (
        f"the labels do not follow from the inputs: the model memorizes 16 examples in {memorized_in} steps "
        f"(overfit_batch), yet after {steps} steps on new batches it predicts 1/{classes} for every class -- what "
        "it learns from one example says nothing about the next, as when labels are shuffled apart from their "
        "images or read from another file"
    )
    fix = (
        "check that images[i] and labels[i] belong together: shuffle both with one permutation (p = "
        "np.random.permutation(len(labels)); images, labels = images[p], labels[p]) and load them from the same split"
    )
    return cause, fix


def _memorized_in(run: RunContext) -> int | None:
    """The steps the model took to fit 16 examples (overfit_batch's own fit), None unless it fitted them."""
    from training_health.checks.one_batch import FITS, fit_one_batch, fit_verdict

    fit = fit_one_batch(run)
    return int(fit["steps"]) if fit_verdict(fit) == FITS and not fit.get("from_run") else None


# A regression head has no one-batch fit to tell a slow start from a model that cannot learn (overfit_batch judges
# classes and 0/1 targets). Its loss falling in the window medians with no cause measured is a slow start (a
# note): the TF "Basic regression" tutorial's DNN (Adam 1e-3, batch 32, MAE) on sklearn's diabetes targets (mean
# 152) fell 148.7 -> 146.2 in 30 steps (1.7%, 0.15x its noise) and passes at --health-steps 300 (a sixth user's);
# with standardized targets it fell 15-30% at 1.3-2.4x its noise (3 of 5 seeds red). A dead or blocked network
# has a cause of its own and stays red; a loss that fell less than MIN_DROP with targets near the outputs stays red.
TARGETS_FAR = 10.0  # targets' RMS over the untrained outputs' RMS: the output must grow this much to fit


def slow_regression(run: RunContext, s: dict) -> str | None:
    """The note for a regression run that learns slower than its noise shows, None for any other run: its targets
    far from what the untrained model outputs (the measured reason it is slow) and a loss that did not rise, or a
    loss that fell at least MIN_DROP (window medians), beyond its noise or not."""
    from training_health.model.losses import REGRESSION

    traj = run.trajectory
    if traj.loss_kind.family != REGRESSION or s["z"] <= -MIN_DECREASE_Z:
        return None
    more = setting("steps", 10 * len(traj.loss))
    targets = np.asarray(run.data.train_labels[:512], np.float64)
    outputs_rms = float((traj.outputs_start or {}).get("rms", math.nan))
    target_rms = float(np.sqrt(np.mean(np.square(targets)))) if targets.size else math.nan
    if outputs_rms > 0 and target_rms > TARGETS_FAR * outputs_rms:
        return (
            f"its targets are far from what the untrained model outputs (targets: mean {np.mean(targets):.4g}, std "
            f"{np.std(targets):.4g}; outputs RMS {outputs_rms:.3g}): the output must grow "
            f"{target_rms / outputs_rms:.0f}x before the loss moves much, which takes "
            f"{_optimizer_at_its_rate(traj)} many steps. A slow start, not a broken "
            f"model; fix: standardize the targets ((y - mean) / std; invert it for predictions), or give {more}"
        )
    if s["drop"] < MIN_DROP:
        return None
    return (
        f"its loss falls ({s['first']:.4g} -> {s['last']:.4g}, {s['drop']:.1%}, window medians) and no cause shows in "
        f"the per-layer measurements: a slow start. A regression head has no one-batch fit to tell it from a model "
        f"that cannot learn; give {more} to see it learn"
    )


def _optimizer_at_its_rate(traj) -> str:
    """The run's own optimizer and rate ("Adam at lr=0.001"); a train step that hides them is said to."""
    from training_health.checks.diagnosis import learning_rate

    optimizer, lr = traj.facts.optimizer, learning_rate(traj)
    return f"{optimizer} at lr={lr:g}" if optimizer and lr else "the run's optimizer (its rate hidden in the step)"


def _learns_one_batch(run: RunContext) -> str | None:
    """What overfit_batch measured, when it shows the model learning (fitting or slowly lowering the loss
    of 16 examples); None when it cannot fit them or the check does not apply. Asked only when the run's
    measurements name no cause: a network that broke (Adam 0.01 on the seed network: a loss spike killed
    every fc1 unit) still memorizes 16 examples in 25 steps (measured), so fitting them proves nothing then."""
    from training_health.checks.one_batch import STUCK, fit_one_batch, fit_verdict

    try:
        fit = fit_one_batch(run)
    except NotApplicable:
        return None
    if fit_verdict(fit) == STUCK:
        return None
    curve = fit["curve"]
    return (
        f"it lowers the training loss of 16 examples from {curve[0]:.4g} to {curve[-1]:.4g} in {fit['steps']} steps "
        f"(overfit_batch)"
    )


@run_check("loss_stable")
def check_loss_stable(run: RunContext) -> list[str]:
    """The loss neither jumps up (oscillation) nor ends above where it started (divergence)."""
    loss = _usable_loss(run)
    s, traj = loss_statistics(loss), run.trajectory
    problems = []
    jumps = s["rise"] > MAX_RISE and s["rise_in_noise"] > MIN_SPIKE_NOISES
    if jumps:
        at = s["rise_step"]
        problems.append(
            f"the loss jumps from {loss[at]:.4g} to {loss[at + 1]:.4g} at step {at + 1} "
            f"({_rise_text(s['rise'])} its starting level {s['first']:.4g}, {s['rise_in_noise']:.3g}x its "
            f"step-to-step noise; bound: +{MAX_RISE:.0%} and {MIN_SPIKE_NOISES:g}x after step "
            f"{windows(len(loss))[1]}): it oscillates"
        )
    from training_health.checks.diagnosis import adam_family

    bound = ADAM_EARLY_RISE if adam_family(traj) else EARLY_RISE  # Adam's first steps may overshoot
    early = _early_rise(loss, bound)
    if early is not None:
        at, factor = early
        problems.append(
            f"the loss rises from {loss[0]:.4g} at step 0 to {loss[at]:.4g} at step {at} ({factor:.2g}x; bound: "
            f"< {bound:g}x within the first {windows(len(loss))[1]} steps): it diverges from the start"
        )
    if s["z"] <= -MIN_DECREASE_Z:
        problems.append(
            f"the loss rose from {s['first']:.4g} to {s['last']:.4g} ({-s['z']:.2g}x its step-to-step noise): "
            "it diverges"
        )
    elif loss[0] > 0 and s["last"] > MAX_END_OVER_START * loss[0]:
        problems.append(
            f"the loss ends at {s['last']:.4g} (median of the last {s['window']} steps), {s['last'] / loss[0]:.2g}x "
            f"its step-0 value {loss[0]:.4g} (bound: {MAX_END_OVER_START:g}x): it diverged"
        )
    if not problems:
        return []
    if len(problems) == 1 and jumps:
        note = spike_off_the_plateau(run, loss, s) or one_recovered_spike(run, loss, s)
        if note is not None:
            return [note]
    summed = _summed_over_the_batch(run, loss)
    inputs = unscaled_input_cause(traj)  # the inputs set the scale of every step: tried before the learning rate
    if inputs:
        cause, fix = inputs
    else:
        cause = (
            "updates too large: the learning rate overshoots the minimum along the steepest direction, so a step "
            "lands higher than the last" + (f"; {summed}" if summed else "")
        )
        fix = lr_fix(traj, "lower") + ("; or average the loss over the batch (reduce_mean)" if summed else "")
    raise HealthCheckError(
        f"loss_stable: {'; '.join(problems)}\n"
        f"  context: {traj.config.context()}\n"
        f"  {_curve(loss, s)}\n"
        f"  likely cause: {cause}\n"
        f"  fix: {fix}"
    )


# A single one-step spike as the loss leaves the chance plateau, which the loss recovers from, is an adaptive step
# overshooting once, not oscillation: RMSprop / Adam size the step by a running mean of the squared gradient, small
# on the plateau, while the gradient grows 10-100x as the loss leaves it (checks/plateau.py). Measured (TF 2.21, 30
# steps, run_probe as the plugin runs it): the Keras functional-API guide's toy ResNet (RMSprop 1e-3, batch 128,
# fixtures/healthy_models/toy_resnet.py) at seed 1: 2.094 -> 3.938 at step 27 (+80% of 2.299), then 2.367, 2.260;
# plain model.fit reaches 88% after 300 steps (a first user's ground truth); seeds 0, 2-4 and batch 64 seeds 0-4
# rise at most +38%. The oscillating control (run_faults:oscillating, SGD 0.2 momentum 0.9) stays red on three
# counts: SGD, its loss falls from step 0 (steps 0..5 1.6-2.5% below ln 10: no plateau), and after its spikes
# (1.77 -> 4.02 at seed 0, 1.63 -> 13.5 at seed 2) the loss stays at 2.30-2.36, above its start: no recovery.
# The same seed 1 with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, TF 2.21: another CPU's kernels): 2.156 ->
# 3.838 at step 22, then 2.470, 2.309, 2.255: back below its start (2.299) 3 steps after the spike; at 2 it
# failed the healthy model (found by the AVX2 tox run). The oscillating control never recovers at any count.
RECOVERY_STEPS = 3  # the loss must be back below its starting level within this many steps after the spike
PLATEAU_OPTIMIZERS = ("RMSprop",)  # adaptive like the Adam family (diagnosis.ADAM_FAMILY)


def recovered_from_one_spike(loss: np.ndarray, s: dict) -> int | None:
    """The step by which the loss is back below its starting level after its one spike (its only rise over
    MAX_RISE), within RECOVERY_STEPS; None for a run with more spikes, no recovery, or a loss that rose beyond its
    noise (window medians, the margin loss_decreases asks of a fall)."""
    warm = windows(len(loss))[1]
    spikes = np.flatnonzero(np.diff(loss[warm:]) > MAX_RISE * s["first"])
    at = s["rise_step"]
    after = loss[at + 2 : at + 2 + RECOVERY_STEPS]
    if len(spikes) != 1 or not after.size or not float(np.min(after)) < s["first"] or s["z"] <= -MIN_DECREASE_Z:
        return None
    return at + 2 + int(np.argmin(after))


def spike_off_the_plateau(run: RunContext, loss: np.ndarray, s: dict) -> str | None:
    """The note for a run whose only rise is one spike as it left the chance plateau, recovered from; else None."""
    from training_health.checks.diagnosis import adam_family, clipped_optimizer, optimizer_name
    from training_health.checks.plateau import plateau_exit

    traj = run.trajectory
    if not (adam_family(traj) or optimizer_name(traj) in PLATEAU_OPTIMIZERS):
        return None
    left, back = plateau_exit(traj), recovered_from_one_spike(loss, s)
    if left is None or back is None:
        return None
    at = s["rise_step"]
    return (
        f"the loss jumps from {loss[at]:.4g} to {loss[at + 1]:.4g} at step {at + 1} ({_rise_text(s['rise'])} its "
        f"starting level {s['first']:.4g}; bound: +{MAX_RISE:.0%}) once, as it leaves the chance plateau ({left}), "
        f"and is back at {loss[back]:.4g} by step {back}, below its starting level: {optimizer_name(traj)}'s step, "
        "sized by the plateau's small gradients, overshot once as they grew. It does not stop learning; if spikes "
        f"recur over a longer run ({setting('steps', 100)}), clip the gradient ({clipped_optimizer(traj)}) "
        "rather than lowering the learning rate, which keeps the loss on its plateau longer"
    )


def one_recovered_spike(run: RunContext, loss: np.ndarray, s: dict) -> str | None:
    """The note for a run not rising whose only jump (beyond MIN_SPIKE_NOISES too) it is back below its start from
    within RECOVERY_STEPS: one batch far from the others, not oscillation, which repeats or does not come back
    (the oscillating control stays at 2.30-2.36 after its spike, above its start). The healthy spikes that first
    showed it (a sixth user's breast-cancer MLP at batch 32, +53% of its start, back below it 2 steps later; the
    imbalanced-data MLP at seeds 3 and 4) lie within 20x their noise and no longer reach it; it stays for a single
    larger spike, which no healthy run measured here has shown outside the chance plateau (spike_off_the_plateau)."""
    back = recovered_from_one_spike(loss, s)
    if back is None:
        return None
    at, batch = s["rise_step"], run.trajectory.config.batch_size
    return (
        f"the loss jumps from {loss[at]:.4g} to {loss[at + 1]:.4g} at step {at + 1} ({_rise_text(s['rise'])} its "
        f"starting level {s['first']:.4g}; bound: +{MAX_RISE:.0%}) once, and is back at {loss[back]:.4g} by step "
        f"{back}, below its starting level, and the loss does not rise ({s['first']:.4g} -> {s['last']:.4g}, window "
        f"medians): one batch of {batch} far from the others, not oscillation. It does not stop learning; if spikes "
        f"recur over a longer run ({setting('steps', 100)}), {lr_fix(run.trajectory, 'lower')}"
    )


# The warm-up steps are left out of ``rise`` (Adam's first steps may overshoot); without Adam, a loss that more
# than doubles its step-0 value within them diverges. Bug corpus summed_loss_lr (plain GD 0.01 on a loss summed
# over the batch): 294.7 -> 987 (3.35x) by step 5; its fixed twin (0.005) never rises above step 0 (max 1.0x).
# Adam gets its own bound: relu_on_logits' healthy twin (Adam 1e-3, N(0, 0.1) kernels) overshoots 4.93 -> 15.8
# (3.2x) at step 2 and ends at 0.71. The healthy runs of tests/test_run_checks.py and tests/test_healthy_corpus.py pass.
EARLY_RISE = 2.0
# Adam's overshoot, measured over 30 steps (2026-12-06, TF 2.21; /tmp/lead/rise.py = run_probe on each, and the
# loss curves of fixtures.bug_corpus.gradients): healthy maximum 3.19x (relu_on_logits' twin), the seed network
# under he_normal 1.49-2.47x, glorot_uniform <= 0.96x, truncated_normal <= 1.39x, seed_normal <= 0.81x (seeds
# 0-2). Adam lr 10 on a Flatten-Dense(128)-Dense(10) model (a first user's deliberate bug, batch 64): 8.3e4x
# and 1.1e5x at seeds 0, 1 -- it then settles at 3x its step-0 loss, so the windows alone did not see it.
ADAM_EARLY_RISE = 30.0  # margin 9x over the healthy maximum
# A loss that ends above where it started diverged, however it got there: the last window's median over the
# step-0 loss, healthy maximum 1.0x (training_loop_from_scratch 0.997, separable_convnet 0.999 at 30 steps; the
# 33 healthy runs of the calibration and the 17 of the healthy corpus); Adam lr 10 above: 3.0x, 3.3x.
MAX_END_OVER_START = 2.0


def _rise_text(rise: float) -> str:
    """ "+45% of" for a rise on the scale of the loss, "1.9e+09x" for an explosion (no 25-digit percentages)."""
    return f"+{rise:.0%} of" if rise < 10 else f"+{rise:.3g}x"


def _early_rise(loss: np.ndarray, bound: float = EARLY_RISE) -> tuple[int, float] | None:
    warm = windows(len(loss))[1]
    if not loss[0] > 0:
        return None
    at = int(np.argmax(loss[1 : warm + 1])) + 1
    factor = float(loss[at] / loss[0])
    return (at, factor) if factor > bound else None


def _summed_over_the_batch(run: RunContext, loss: np.ndarray) -> str | None:
    """A train step's loss at step 0 near batch x ln C: summed over the batch, not averaged (the evidence)."""
    classes, batch = getattr(run.data, "num_classes", 0) or 0, run.config.batch_size
    chance = chance_loss(run) or (math.log(classes) if classes > 1 else None)
    if chance is None or run.trajectory.loss_kind.source != "train step" or batch < 8:
        return None
    ratio = float(loss[0]) / chance
    if not batch / 2 <= ratio <= 2 * batch:
        return None
    return (
        f"the step's loss at step 0 is {loss[0]:.4g} = {ratio:.0f} x ln {round(math.exp(chance))} (an untrained "
        f"network's loss per example): it is summed over the batch of {batch}, not averaged, so each step is ~{batch}x "
        "larger than the learning rate reads"
    )


def lr_fix(traj, verb: str) -> str:
    """``diagnosis.lr_fix``, imported when needed: this module is imported at collection, without TensorFlow."""
    from training_health.checks.diagnosis import lr_fix as fix

    return fix(traj, verb)


def regularization_wipes_the_weights(traj, loss: np.ndarray) -> tuple[str, str] | None:
    """The regularization penalty is most of the loss at step 0 and the kernels shrink to a tenth of their size or
    less: gradient descent minimizes the penalty, not the data term (bug corpus regularizer_and_lr_too_high, Zhang
    IPS-13: L2 beta 1 at SGD 0.5 multiplies the weights by 1 - 0.5 = 0.5 each step: 2979 -> 2.2 in 9 steps, then
    the loss of a network that predicts nothing)."""
    from training_health.checks.diagnosis import kernel_scales

    penalty = float(traj.outputs_start.get("regularization", 0.0) or 0.0)
    if not (np.isfinite(penalty) and penalty > 0.5 * loss[0]):
        return None
    shrunk = {}
    for k in kernel_scales(traj):
        norms = traj.column("weight_norm", k)
        if norms[0] > 0 and norms[-1] < 0.1 * norms[0]:
            shrunk[k] = float(norms[-1] / norms[0])
    if not shrunk:
        return None
    listing = ", ".join(f"{k} {v:.2g}x" for k, v in shrunk.items())
    return (
        f"the regularization wipes the weights out: the penalty is {penalty:.4g} of the loss {loss[0]:.4g} at step 0 "
        f"and the kernels shrink to {listing} of their size in {len(loss)} steps, so what is left predicts nothing",
        "lower the regularization factor (10x or more) and " + lr_fix(traj, "lower"),
    )


MEAN_ABSOLUTE = ("meanabsoluteerror", "mae")


def mean_absolute_error_on_probabilities(traj) -> tuple[str, str] | None:
    """A mean absolute error on outputs in [0, 1] (a sigmoid head): its gradient through the sigmoid is
    +-p(1 - p), whatever the size of the error, so saturated outputs stop learning (bug corpus xor_mae, DeepFD
    31556268: flat at 0.4994 for 30 steps; its fix is the mean squared error and a larger learning rate)."""
    kind, outputs = traj.loss_kind, traj.outputs_start
    if kind.key not in MEAN_ABSOLUTE or not outputs.get("unit_interval", False):
        return None
    return (
        f"the loss is the mean absolute error ({kind.name}) on outputs in [0, 1] (mean {outputs['mean']:.3g} before "
        "training): its gradient through the sigmoid is +-p(1 - p) whatever the error, tiny where the outputs "
        "saturate, so the loss stays flat",
        "for 0/1 labels use binary_crossentropy (its gradient is p - y: large when wrong); a mean squared error "
        "also works if you then " + lr_fix(traj, "raise"),
    )


def never_updated_weights(traj, frozen=()) -> tuple[str, str] | None:
    """Weights, not declared frozen, that ended the run exactly where they started although the loss reaches them
    (the per-layer rule ``diagnosis.never_updated``'s premise, and its fix): not trainable, or left out of the
    step's variable list. Their update/weight ratio is exactly 0, which no learning rate raises: a first user's
    forgotten frozen backbone (Adam 1e-4) and a train step updating only its last layer were told "raise the
    learning rate from 0.0001 to ~0.001" by this check, while the per-layer tests named the weights."""
    from training_health.checks.diagnosis import NEVER_UPDATED, Failure, never_updated, never_updated_fixes
    from training_health.checks.health_checks import declared_frozen
    from training_health.model.user_model import layer_of

    stuck = [
        p
        for p in traj.parameters
        if not declared_frozen(p, frozen) and getattr(never_updated(traj, Failure(p)), "title", None) == NEVER_UPDATED
    ]
    if not stuck:
        return None
    layers = list(dict.fromkeys(layer_of(p) for p in stuck))
    listing = (
        ", ".join(stuck)
        if len(stuck) <= 6
        else f"the weights of {', '.join(layers[:6])}"
        + (f" and {len(layers) - 6} more layers" if len(layers) > 6 else "")
    )
    frozen_ones = [p for p in stuck if not traj.trainable.get(p, True)]
    why = ["not trainable (layer.trainable=False): the optimizer never sees them"] if frozen_ones else []
    if len(frozen_ones) < len(stuck):
        grad_max = max(float(np.nanmax(traj.column("grad_max", p))) for p in stuck if p not in frozen_ones)
        applied = "the optimizer's learning rate is 0" if traj.learning_rate_used == 0 else "no step applied it"
        why.append(f"their gradient is non-zero (max|g| up to {grad_max:.3g}) but {applied}")
    moved = len(traj.parameters) - len(stuck)
    return (
        f"weights never updated: {len(stuck)} of {len(traj.parameters)} weights ended the run exactly where they "
        f"started ({listing}): {'; '.join(why)}; update/weight ratio exactly 0, which no learning rate raises, and "
        f"the loss can fall only as far as the other {moved} weights take it",
        "; ".join(never_updated_fixes(traj, stuck)),
    )


# A frozen base that was never trained (the Keras "Transfer learning & fine-tuning" guide's phase 1 with the base's
# random initial weights, not loaded ones), under the guide's own head, GlobalAveragePooling2D -> Dropout(0.2) ->
# Dense(10, softmax), Adam 1e-3, batch 64 (fixtures/user_models/not_learning.py: frozen_random_base_pooled), the
# freeze declared. Measured 2026-12-06, TF 2.21, real MNIST: own_tests.train(the factory, one_hot, None, steps, 64,
# seed, ...), then model.evaluate on the first 2000 test images before and after. 30 steps, seeds 0/1/2: loss
# (mean of the first / last 5 steps) 2.302 -> 2.304, 2.301 -> 2.304, 2.303 -> 2.300; test accuracy 0.109 -> 0.109,
# 0.087 -> 0.087, 0.085 -> 0.100. 300 steps: loss -> 2.272, 2.278, 2.277; accuracy 0.094, 0.100, 0.191. It does not
# learn within the run's steps, so red is right; the cause was "no single cause stands out". What the head gets:
# 64 pooled features whose spread over images is ~0.007 on a mean of ~0.04, 76-86% of it along one direction (the
# amount of ink); a linear classifier on them, trained 30 epochs of 20000 images at Adam 1e-2, reaches 0.55-0.61
# (0.83-0.85 standardized): the information is there, far beyond these steps. The fix, measured the same way (30
# steps, seeds 0-2, every check passes): the base trained with the head (base.trainable = True: test accuracy
# 0.12-0.13 after 30 steps), or the base trained first (200 steps on other MNIST images) and then frozen.
def frozen_untrained_base(run: RunContext) -> tuple[str, str] | None:
    """(cause, fix) when the weights the run left unchanged (declared frozen, or trainable=False) are random: the
    factory built with another seed gives them other values, so they come from an initializer, not from a
    training or a weights file, while the weights after them moved. Asked only when the run did not learn and
    no other measurement explains it; None for a model given as an object (no factory to build another)."""
    from training_health.checks.diagnosis import TYPICAL_UPDATE_RATIO, update_ratio
    from training_health.checks.health_checks import declared_frozen
    from training_health.model.user_model import SEED_MODEL, layer_of, named_parameters
    from training_health.probe.training_probe import OBJECT_PREFIX

    traj = run.trajectory
    frozen = [
        p
        for p in traj.parameters
        if traj.change_norm.get(p) == 0 and (not traj.trainable.get(p, True) or declared_frozen(p, run.frozen))
    ]
    head = [p for p in traj.parameters if p not in frozen and traj.change_norm.get(p, 0.0) > 0]
    kernels = [p for p in frozen if len(traj.shapes[p]) >= 2]
    model = traj.config.model
    if not kernels or not head or model == SEED_MODEL or model.startswith(OBJECT_PREFIX):
        return None
    other_seed = traj.config.seed + 1
    try:
        ours = named_parameters(run.trained_model())
        other = named_parameters(dataclasses.replace(traj.config, seed=other_seed).build_model())
        differ = [not np.array_equal(np.asarray(ours[k]), np.asarray(other[k])) for k in kernels]
    except Exception:  # a factory that cannot build twice, or names that do not match: no evidence either way
        return None
    if not all(differ):
        return None
    layers = list(dict.fromkeys(layer_of(p) for p in frozen))
    ratios = [r for p in head if len(traj.shapes[p]) >= 2 and (r := update_ratio(traj, p)) is not None]
    moved = (
        f" (median update/weight {float(np.median(ratios)):.2g} per step, typical {TYPICAL_UPDATE_RATIO:g})"
        if ratios
        else ""
    )
    cause = (
        f"features from a frozen base that was never trained: {', '.join(layers)} ({len(frozen)} of "
        f"{len(traj.parameters)} weights) are frozen at random values -- the factory built with seed {other_seed} "
        f"gives them other values, so they come from an initializer, not from a training or a weights file; the "
        f"weights after them moved{moved}, but what random frozen filters pass them does not separate the classes in "
        f"{len(traj.loss)} steps"
    )
    fix = (
        "load the base's trained weights before freezing it (weights='imagenet' for a keras.applications model, or "
        "base.load_weights(path)), or train the base with the head (base.trainable = True)"
    )
    return cause, fix


def not_learning_cause(traj, loss: np.ndarray, frozen=()) -> tuple[str, str]:
    """Why a run did not learn, from what the trajectory measured: the first premise that holds. ``frozen``: the
    layers declared frozen on purpose (``--health-frozen``), whose unchanged weights are no cause."""
    from training_health.checks.diagnosis import (
        MOSTLY_DEAD,
        TYPICAL_UPDATE_RATIO,
        dead_relu_origin,
        kernel_scales,
        oversized_kernels,
        update_ratio,
    )

    penalty = regularization_wipes_the_weights(traj, loss)
    if penalty:
        return penalty
    inputs = unscaled_input_cause(traj) or tiny_input_cause(traj)  # before the learning rate: the inputs set the
    if inputs:  # scale of every step
        return inputs
    oversized = oversized_kernels(traj)
    if oversized:
        listing = ", ".join(f"{k} {v:.1f}x" for k, v in oversized.items())
        return (
            f"oversized initialization, not vanishing gradients: init std far above the He std ({listing})",
            "initialize the kernels with He normal (std sqrt(2 / fan-in)); the per-layer tests give each layer's std",
        )
    # Before every learning-rate cause: weights no rate moves, and a rate the schedule took away.
    found = never_updated_weights(traj, frozen) or collapsed_schedule(traj)
    if found:
        return found
    _, warm = windows(len(loss))
    spike = int(np.argmax(loss[1 : warm + 1])) + 1
    dead = {k: v for k, v in traj.dead_fraction_end.items() if v >= MOSTLY_DEAD}
    if loss[spike] > 3 * loss[0]:
        died = f"; after it, dead ReLU units: {', '.join(f'{k} {v:.0%}' for k, v in dead.items())}" if dead else ""
        return (
            f"updates too large: the loss jumped from {loss[0]:.4g} to {loss[spike]:.4g} at step {spike}{died}, "
            "and the network never recovered",
            lr_fix(traj, "lower"),
        )
    if dead:
        layer, fraction = max(dead.items(), key=lambda kv: kv[1])
        evidence, fix = dead_relu_origin(traj, layer, traj.dead_fraction_start.get(layer, 0.0), fraction)
        cause = f"dead ReLUs: {fraction:.0%} of {layer}'s units output 0 on every probe image"
        return "; ".join([cause, *evidence]), fix
    kernels = [k for k in kernel_scales(traj) if traj.connected.get(k, True)]
    norms = {k: float(np.median(traj.column("grad_norm", k))) for k in kernels}
    if len(norms) > 1 and norms[kernels[-1]] > 0 and norms[kernels[0]] < 1e-3 * norms[kernels[-1]]:
        return (
            f"vanishing gradients: {kernels[0]}'s gradient norm (median {norms[kernels[0]]:.2g}) is "
            f"{norms[kernels[0]] / norms[kernels[-1]]:.1g}x that of {kernels[-1]} ({norms[kernels[-1]]:.2g})",
            "use ReLU activations with He initialization, or add BatchNormalization between the layers",
        )
    absolute = mean_absolute_error_on_probabilities(traj)
    if absolute:
        return absolute
    # Over the kernels that moved: a frozen one's ratio is exactly 0 whatever the rate (never_updated_weights above)
    moved = [k for k in kernels if not traj.change_norm.get(k) == 0]
    ratios = [r for k in moved if (r := update_ratio(traj, k)) is not None]
    if ratios and float(np.median(ratios)) < TYPICAL_UPDATE_RATIO / 30:
        over = "" if len(moved) == len(kernels) else f" over the kernels that moved ({', '.join(moved)})"
        return (
            f"updates too small: median update/weight ratio {float(np.median(ratios)):.2g} per step{over} "
            f"(typical {TYPICAL_UPDATE_RATIO:g})",
            lr_fix(traj, "raise"),
        )
    return (
        "no single cause stands out in the per-layer measurements",
        "see the per-layer tests (pytest -k layer_updates), overfit_batch (a network that cannot fit 16 examples "
        "has a bug in its model or loss) and batch_independence (a model that mixes examples cannot learn them)",
    )
