"""Run-level checks of what goes into the first step: the inputs' scale, the labels, the loss at step 0.

Each is a test of its own, ``test_training_run[<cell>-input_scale|labels|initial_loss]``. Data that
cannot be trained at all (NaN or inf, fewer examples than one batch, labels the head cannot read) is
refused before training instead (exit status 4: ``data/user_data.py``, ``model/contract.py``,
``validation.py``). These checks fail runs that train but train wrong.

TensorFlow stays out of the module level (imported at collection).
"""

from __future__ import annotations

import math

import numpy as np

from training_health.checks.input_scale import INPUT_RMS_MAX, RAW_PIXELS_RMS, input_scale_fix, unscaled_input_cause
from training_health.checks.output_head import final_activation, relu_output_below_targets
from training_health.checks.run_checks import NotApplicable, RunContext, run_check
from training_health.errors import HealthCheckError
from training_health.model import losses
from training_health.model.input_layers import (  # noqa: F401
    INDEX_LAYERS,
    SCALING_LAYERS,
    never_adapted_normalization,
    scales_its_inputs,
)
from training_health.settings import setting

# The loss at step 0 over what an untrained model gives (cross-entropy of logits with the measured spread:
# ln C / ln 2 as it goes to 0; for MSE the targets against outputs uncorrelated with them). The low side is over the
# lower of that and what a model whose output bias predicts the label frequencies gives (prior_loss: the labels'
# entropy as the spread goes to 0): setting the output bias to the prior is recommended practice for imbalanced
# labels (TF tutorial "Classification on imbalanced data"), and only a loss below that is divided.
# Calibrated with `python -m training_health.checks.data_checks 3` (TF 2.21, 2026-12-06): 48 healthy runs, seeds
# 0-2 of the seed network (he_normal, glorot_uniform, truncated_normal: logit std up to 6.67),
# compiled_keras:sgd_momentum, keras_convnet:build, training_variants:regularized and :batchnorm, the 8 runs of
# fixtures/user_models/heads.py (softmax, binary, multi-label, MSE) and the tutorial's MLP with the prior bias
# (fixtures/healthy_models/imbalanced_mlp.py, 9.9% and 0.55% positives, batch 2048). Low side: min 0.963
# (imbalanced_mlp:common seed 2; over the zero-mean prediction alone that run was 0.441x and :rare seed 2 0.042x);
# high side: max 1.976 (binary_logit he_normal seed 1; batchnorm 1.69-1.79: training-mode statistics at step 0).
# Bounds: min / 1.9, max x 2.0; a loss summed over a batch of 128 is ~128x, divided by it twice ~1/128x.
INITIAL_LOSS_RATIO = (0.5, 4.0)
INITIAL_LOSS_MEASURED = "calibrated on 48 healthy runs: 0.96x to 1.98x"
# The largest logit std of an untrained healthy model in that calibration (the seed network, truncated_normal seed
# 0); up to 1.5x that the logits are called "at a normal scale", above it "already large".
HEALTHY_LOGIT_STD = 6.67
NORMAL_LOGIT_STD = 10.0


def _fail(run: RunContext, check: str, observed: str, lines: list[str]) -> HealthCheckError:
    body = "\n".join(f"  {line}" for line in lines)
    return HealthCheckError(f"{check}: {observed}\n  context: {run.config.context()}\n{body}")


# --- input_scale -----------------------------------------------------------------------------------


@run_check("input_scale")
def check_input_scale(run: RunContext) -> list[str]:
    """The model's inputs are on the usual scale ([0, 1] or standardized), or the model scales them itself."""
    import tensorflow as tf

    from training_health.probe.training_probe import PROBE_EXAMPLES

    data = run.data
    raw = data.train_images[:PROBE_EXAMPLES]
    inputs = tf.cast(data.to_model_input(raw), tf.float32).numpy()
    rms, peak = float(np.sqrt(np.mean(np.square(inputs)))), float(np.max(np.abs(inputs)))
    if rms <= INPUT_RMS_MAX:
        return []
    scaled_by = scales_its_inputs(run.trained_model())
    if scaled_by:
        return []  # raw values are what this model expects: its first layers scale them
    dtype = np.asarray(raw).dtype
    pixels = dtype == np.uint8 or (peak > 100 and np.all(inputs == np.round(inputs)) and inputs.min() >= 0)
    cause = (
        f"unscaled pixels: {dtype.name} values 0..{peak:.0f}, as stored in the image file"
        if pixels
        else f"inputs far outside the usual scale (max |x| {peak:.4g})"
    )
    raise _fail(
        run,
        "input_scale",
        f"the model's inputs have RMS {rms:.4g} (max |x| {peak:.4g}, {dtype.name}), bound RMS <= {INPUT_RMS_MAX:g}",
        [
            f"cause: {cause}. Inputs in [0, 1] have RMS ~0.3 (MNIST 0.31), standardized ones ~1; at RMS {rms:.3g} the "
            f"first layer's pre-activations and its weights' gradients are ~{rms / 0.31:.0f}x those of scaled "
            "inputs, a scale the initialization and the learning rate were not chosen for (plain SGD steps that "
            "layer ~that much harder; Adam evens the step out, not the pre-activations). The run may still learn "
            "(loss_decreases says), less predictably: the fix is the input, not the learning rate",
            "fix: " + input_scale_fix(pixels, never_adapted_normalization(run.trained_model())),
        ],
    )


def unscaled_inputs(run: RunContext) -> str | None:
    """The cause line for an effect of unscaled inputs (oversized logits), or None when the inputs are in scale
    or the model scales them itself: the premise the diagnosis and the loss checks share (input_scale.py)."""
    found = unscaled_input_cause(run.trajectory)
    return found[0] if found else None


# --- labels -----------------------------------------------------------------------------------------


@run_check("labels")
def check_labels(run: RunContext) -> list[str]:
    """The labels carry information: more than one class, no constant target column."""
    labels, encoding = run.data.train_labels, run.data.label_encoding
    source = run.data.source
    if encoding in ("class ids", "one-hot"):
        ids = labels.astype(np.int64) if labels.ndim == 1 else labels.argmax(axis=1)
        classes = np.unique(ids)
        if classes.size > 1:
            return _ids_for_one_hot_loss(run) + _one_hot_for_sparse_loss(run) + _dataset_batch_not_used(run)
        raise _fail(
            run,
            "labels",
            f"every label of {source} is class {int(classes[0])} ({ids.size} of {ids.size}), bound: at least 2 classes",
            [
                "cause: a single class: the model learns to always answer it and the loss falls to ~0 without "
                "learning anything from the inputs (labels divided or integer-divided like the images, e.g. "
                "labels // 255? a filter that kept one class?)",
                "fix: give the labels as they are (class ids 0..C-1, or one-hot rows); scale only the images",
            ],
        )
    columns = labels.reshape(len(labels), -1)
    constant = [i for i in range(columns.shape[1]) if np.all(columns[:, i] == columns[0, i])]
    if not constant:
        return []
    if len(constant) < columns.shape[1]:
        # Others vary: the model learns them; a column constant by nature (an autoencoder's border pixels: 67 of
        # MNIST's 784 are 0 in every training image, a sixth user's autoencoders were red) is no bug.
        shown = ", ".join(map(str, constant[:8])) + (", ..." if len(constant) > 8 else "")
        return [
            f"{len(constant)} of {columns.shape[1]} target columns of {source} have one value for all "
            f"{len(labels)} examples (columns {shown}): the model learns a constant for them, the others vary. "
            "Fine where a target is constant by nature (an image's blank border under an autoencoder); a "
            "regression target column that should vary does not"
        ]
    which = "the labels" if columns.shape[1] == 1 else f"every label column ({columns.shape[1]})"
    raise _fail(
        run,
        "labels",
        f"{which} of {source} have one value ({columns[0, constant[0]]:.4g} for all {len(labels)} examples), "
        "bound: more than one value",
        [
            "cause: a constant target: the model learns the constant, not the inputs (labels scaled or thresholded "
            "into one value?)",
            "fix: give targets that vary with the input (for a binary head: 1 for the positive class, 0 otherwise)",
        ],
    )


def _dataset_batch_not_used(run: RunContext) -> list[str]:
    """A note: the user's tf.data.Dataset was batched at another size than the check trained with (a second
    user's ``.batch(64)`` trained at 128 without a word)."""
    batch, used = getattr(run.data, "dataset_batch", None), run.config.batch_size
    if not batch or batch == used or batch >= len(run.data.train_labels):
        return []
    return [
        f"{run.data.source} is a tf.data.Dataset batched by {batch}, but this check trained with batches of {used} "
        f"(a Dataset's batches are read as examples). Give {setting('batch-size', batch)} to check your training's "
        "batch size"
    ]


def _ids_for_one_hot_loss(run: RunContext) -> list[str]:
    """A note: the user's data gives class ids to a loss that reads one-hot rows. The suite converts them (so the
    check trains), but the user's own ``fit`` on the same arrays fails on the shapes (a first user's report)."""
    kind, data = run.trajectory.loss_kind, run.data
    if data.is_mnist or data.label_encoding != "class ids" or kind.family != losses.CATEGORICAL:
        return []
    classes = int(run.trajectory.outputs_start.get("width", 0)) or "C"
    return [
        f"the labels of {data.source} are class ids {list(data.train_labels.shape)}, but the loss {kind.name} reads "
        f"one-hot rows [N, {classes}]: this check converted them, yet model.fit on these arrays fails on the shapes. "
        f"Give keras.utils.to_categorical(labels, {classes}), or compile sparse_categorical_crossentropy"
    ]


def _one_hot_for_sparse_loss(run: RunContext) -> list[str]:
    """The reverse note: one-hot rows given to a loss that reads class ids. The suite converts them too, so the
    run trains, but Keras' fit on those arrays fails ("Argument `output` must have rank (ndim) `target.ndim - 1`":
    a first user's sparse_categorical_crossentropy MLP on one-hot labels passed without a word)."""
    kind, data = run.trajectory.loss_kind, run.data
    if data.is_mnist or data.label_encoding != "one-hot" or kind.family != losses.SPARSE:
        return []
    return [
        f"the labels of {data.source} are one-hot rows {list(data.train_labels.shape)}, but the loss {kind.name} "
        "reads class ids [N]: this check converted them, yet model.fit on these arrays fails on the shapes. Give "
        "labels.argmax(axis=-1), or compile categorical_crossentropy"
    ]


# --- initial_loss -------------------------------------------------------------------------------------


def untrained_cross_entropy(logit_std: float, width: int, binary: bool) -> float:
    """E[loss] for logits ~ N(0, std^2) that know nothing of the labels (Monte Carlo, fixed seed).

    Softmax cross-entropy: E[logsumexp(z) - z_label] (ln C as std -> 0, ~std x 1.5 for C = 10 when large);
    binary cross-entropy: E[softplus(z)] per output (ln 2 as std -> 0).
    """
    z = np.random.default_rng(0).standard_normal((4096, 1 if binary else width)) * logit_std
    if binary:
        return float(np.mean(np.logaddexp(0.0, z)))
    top = z.max(axis=1, keepdims=True)
    return float(np.mean(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)) - z[:, 0]))


def prior_cross_entropy(frequencies: np.ndarray, logit_std: float, binary: bool) -> float:
    """E[loss] for an untrained model whose output bias predicts the label frequencies (logits log(f) for a
    softmax, log(f / (1 - f)) per sigmoid output), spread around them with the measured std (Monte Carlo, fixed
    seed). As the std -> 0 it is the labels' entropy, the least any model that knows nothing of the inputs can
    reach (Gibbs' inequality): binary H(f) per output, softmax -sum f ln f. Setting the output bias to the prior is
    recommended practice (TF tutorial "Classification on imbalanced data"); on balanced labels it changes nothing.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    std = logit_std if math.isfinite(logit_std) else 0.0
    z = np.random.default_rng(0).standard_normal((4096, f.size)) * std
    if binary:
        p = np.clip(f, 1e-7, 1 - 1e-7)
        logits = np.log(p) - np.log1p(-p) + z
        return float(np.mean(f * np.logaddexp(0.0, -logits) + (1 - f) * np.logaddexp(0.0, logits)))
    logits = np.log(np.clip(f, 1e-7, 1.0)) + z
    top = logits.max(axis=1, keepdims=True)
    return float(np.mean(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)) - logits @ f))


def label_frequencies(run: RunContext) -> np.ndarray | None:
    """The first batch's label frequencies as the loss reads them: per class for a softmax loss (ids or one-hot
    rows), the share of 1s per output for a binary one; None for other losses or labels it cannot read so."""
    kind, width = run.trajectory.loss_kind, int(run.trajectory.outputs_start.get("width", 0))
    labels = np.asarray(first_batch_labels(run), dtype=np.float64)
    if width < 1 or labels.size == 0 or not np.all(np.isfinite(labels)):
        return None
    if kind.classifies:
        if labels.ndim == 1 and np.all(labels == np.round(labels)) and 0 <= labels.min() and labels.max() < width:
            return np.bincount(labels.astype(np.int64), minlength=width) / labels.size
        if labels.ndim == 2 and labels.shape[1] == width and np.all(labels >= 0):
            rows = labels.sum(axis=1, keepdims=True)
            return np.mean(labels / np.where(rows > 0, rows, 1), axis=0) if np.all(rows > 0) else None
        return None
    if kind.family == losses.BINARY:
        labels = labels.reshape(len(labels), -1)
        if labels.shape[1] != width or labels.min() < 0 or labels.max() > 1:
            return None
        return labels.mean(axis=0)
    return None


def prior_loss(run: RunContext) -> tuple[float, str] | None:
    """What an untrained model whose output bias predicts the first batch's label frequencies gives, with how it
    was derived; None when the loss has no such model (regression, unknown loss, labels it cannot read)."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    if not kind.known:
        return None
    frequencies = label_frequencies(run)
    if frequencies is None:
        return None
    binary = kind.family == losses.BINARY
    std = traj.logit_std_start
    value = prior_cross_entropy(frequencies, std, binary)
    entropy = prior_cross_entropy(frequencies, 0.0, binary)
    low, high = f"{frequencies.min():.3g}", f"{frequencies.max():.3g}"
    if not binary:
        share = f"class frequencies {low} to {high}"
    else:
        share = f"{low} positives" if frequencies.size == 1 else f"positives per output {low} to {high}"
    return value, (
        f"{value:.4g}: an untrained model whose output bias predicts the first batch's label frequencies ({share}), "
        f"logits spread around them with the measured std {std:.3g} (the labels' entropy {entropy:.4g} as the std "
        "-> 0: no model that knows nothing of the inputs goes below it)"
    )


def correlated_outputs_loss(run: RunContext) -> tuple[float, str] | None:
    """The lowest mean squared error an untrained model of the measured output scale can give: its outputs may
    happen to correlate with the targets (Cauchy-Schwarz: E(y - f)^2 >= (std y - std f)^2 + (mean y - mean f)^2).
    A random linear map of real features often does: a sixth user's linear model on sklearn's diabetes data
    (standardized targets) started at 1.53, 0.46x the uncorrelated 3.31, and was told its loss was averaged twice.
    None for other losses."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    if not (kind.known and kind.key == "meansquarederror"):
        return None
    targets = first_batch_labels(run).astype(np.float64)
    mean, rms = traj.outputs_start["mean"], traj.outputs_start["rms"]
    spread = math.sqrt(max(rms**2 - mean**2, 0.0))
    value = float((np.std(targets) - spread) ** 2 + (np.mean(targets) - mean) ** 2)
    return value, (
        f"{value:.4g}, what outputs of that scale (std {spread:.3g}) correlated with the first batch's targets "
        f"(std {np.std(targets):.3g}) would give"
    )


def untrained_loss(run: RunContext) -> tuple[float, str]:
    """What the run's loss gives for an untrained model, with how it was derived; NotApplicable without one."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    outputs = traj.outputs_start
    if not kind.known:
        raise NotApplicable(f"the loss is {kind.name}: no prediction for an untrained model")
    std = traj.logit_std_start
    if kind.classifies or kind.family == losses.BINARY:
        width, binary = int(outputs["width"]), kind.family == losses.BINARY
        value = untrained_cross_entropy(std, width, binary)
        limit = f"ln 2 = {math.log(2):.4g} per output" if binary else f"ln {width} = {math.log(width):.4g}"
        what = "binary cross-entropy" if binary else f"softmax cross-entropy over {width} outputs"
        return value, f"{value:.4g}: {what} of logits with the measured std {std:.3g} ({limit} as the std -> 0)"
    targets = first_batch_labels(run).astype(np.float64)
    mean, square = outputs["mean"], outputs["rms"] ** 2
    if kind.key == "meansquarederror":
        value = float(np.mean(targets**2) - 2 * np.mean(targets) * mean + square)
        return value, (
            f"{value:.4g}: mean of (target - output)^2 for the first batch's targets (mean {np.mean(targets):.3g}, "
            f"mean square {np.mean(targets**2):.3g}) and outputs uncorrelated with them (mean {mean:.2g}, RMS "
            f"{math.sqrt(square):.2g})"
        )
    if kind.key == "meanabsoluteerror":
        value = float(np.mean(np.abs(targets - mean)))
        return value, f"{value:.4g}: mean |target - {mean:.2g}| over the first batch (outputs near their mean)"
    raise NotApplicable(f"no prediction of {kind.name} for an untrained model")


def first_batch_labels(run: RunContext) -> np.ndarray:
    from training_health.probe.training_probe import batch_indices

    config = run.config
    indices = batch_indices(config.seed, config.steps, config.batch_size, len(run.data.train_labels))[0]
    return run.data.train_labels[indices]


@run_check("initial_loss")
def check_initial_loss(run: RunContext) -> list[str]:
    """The loss at step 0 (before the first update) is what the loss predicts for an untrained model."""
    traj = run.trajectory
    read_through = _activation_read_through(run)  # a note: Keras undoes the second softmax itself
    mismatch = (
        _softmax_over_one_unit(run)
        or _relu_on_the_output(run)
        or _softmax_over_labels(run)
        or _output_mismatch(run, twice_possible=not read_through)
    )
    if mismatch:
        raise mismatch
    oversized = _oversized_logits(run)
    if oversized:
        raise oversized
    predicted, derivation = untrained_loss(run)
    regularization = traj.outputs_start.get("regularization", 0.0)
    if not math.isfinite(regularization):
        raise NotApplicable("the model's regularization losses are not known before its first call")
    expected = predicted + regularization
    observed = float(traj.loss[0])
    if not math.isfinite(observed):
        raise NotApplicable("the loss at step 0 is not finite (test loss_finite says where)")
    low, high = INITIAL_LOSS_RATIO
    # The low side: an output bias set to the label prior (recommended practice for imbalanced labels) starts
    # the loss near the labels' entropy, below the zero-mean prediction; only a loss below what such a model gives
    # is divided. The high side stays the zero-mean prediction (a prior bias only lowers the loss).
    prior = prior_loss(run) or correlated_outputs_loss(run)
    floor, floor_derivation = (
        (prior[0] + regularization, prior[1]) if prior and prior[0] + regularization < expected else (expected, "")
    )
    reg = f" + {regularization:.3g} regularization (model.losses)" if regularization else ""
    if observed < low * floor:
        ratio, reference = observed / floor, floor
        bound = f"bound: at least {low:g}x the " + (
            f"lower of the prediction {derivation}{reg} and {floor_derivation}{reg}"
            if floor_derivation
            else f"prediction {derivation}{reg}"
        )
    elif observed > high * expected:
        ratio, reference = observed / expected, expected
        bound = f"bound: {low:g}x to {high:g}x the prediction {derivation}{reg}"
    else:
        return read_through + _binary_loss_on_a_softmax(run)
    head = f"initial_loss: loss at step 0 is {observed:.4g}, {ratio:.3g}x the {reference:.4g} an untrained model gives"
    lines = [f"{bound}; {INITIAL_LOSS_MEASURED}"]
    lines += _initial_loss_cause(run, observed, reference, ratio, floor)
    raise HealthCheckError(f"{head}\n  context: {run.config.context()}\n" + "\n".join(f"  {x}" for x in lines))


def _softmax_over_one_unit(run: RunContext) -> HealthCheckError | None:
    """A softmax over a single output: exp(z) / exp(z) = 1 for every input, so no loss can depend on the weights
    (bug corpus softmax_one_unit_*: every gradient is exactly 0 at every step). Whatever the loss."""
    outputs = run.trajectory.outputs_start
    if int(outputs.get("width", 0)) != 1 or final_activation(run.trained_model()) != "softmax":
        return None
    return _fail(
        run,
        "initial_loss",
        f"softmax over one unit: the model ends in a softmax over a single output, which is always 1 (measured "
        f"before training: outputs mean {outputs['mean']:.4g}, RMS {outputs['rms']:.4g} on the probe images)",
        [
            "evidence: the softmax normalizes across the outputs of a row; with one output it divides exp(z) by "
            "itself, so the prediction ignores the input and every gradient through it is exactly 0 (no learning "
            "rate and no number of epochs can change that)",
            "fix: for a binary label end in Dense(1, activation='sigmoid') with binary_crossentropy, or in "
            "Dense(2) + softmax with sparse_categorical_crossentropy",
        ],
    )


def _softmax_over_labels(run: RunContext) -> HealthCheckError | None:
    """Multi-label targets (rows of 0/1 with more than one 1) read from a softmax, whose outputs sum to 1: two true
    labels can never both be predicted (bug corpus softmax_multilabel_mse, DeepLocalize SO 38648195)."""
    outputs, labels = run.trajectory.outputs_start, getattr(run.data, "train_labels", None)
    if labels is None or not outputs.get("probabilities", False):
        return None
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != int(outputs["width"]) or not np.isin(labels, (0, 1)).all():
        return None
    several = float(np.mean(labels.sum(axis=1) > 1))
    if several == 0:
        return None
    return _fail(
        run,
        "initial_loss",
        f"softmax over multi-label targets: {several:.0%} of the labels' rows have more than one label set (rows "
        f"of {labels.shape[1]} 0/1 targets), but the model's outputs are a softmax, each row summing to 1",
        [
            "evidence: a softmax makes the outputs compete for one unit of probability, so two true labels can never "
            "both be predicted; the labels are independent yes/no answers",
            "fix: end the model with a sigmoid per label (Dense(units, activation='sigmoid')) and train it with "
            "binary_crossentropy (one independent probability per label)",
        ],
    )


def _relu_on_the_output(run: RunContext) -> HealthCheckError | None:
    """A ReLU as the last activation under a classification loss: logits that cannot go negative (a class can
    only be ruled out by a 0, and a unit below 0 passes no gradient back), or "probabilities" above 1 that the
    loss clips (bug corpus relu_on_logits, Zhang IPS-11; relu_output_binary, SO 44066044)."""
    kind = run.trajectory.loss_kind
    if kind.known and kind.family == losses.REGRESSION:
        return _relu_on_a_regression_output(run)
    if not kind.known or not (kind.classifies or kind.family == losses.BINARY):
        return None
    if final_activation(run.trained_model()) != "relu":
        return None
    read_as = "logits" if kind.from_logits else "probabilities"
    head = "softmax" if kind.classifies else "sigmoid"
    mean = run.trajectory.outputs_start.get("mean", math.nan)
    return _fail(
        run,
        "initial_loss",
        f"ReLU on the output layer: the model's last activation is a ReLU and the loss {kind.name} reads its "
        f"outputs as {read_as} (outputs before training: mean {mean:.3g})",
        [
            "evidence: "
            + (
                "a ReLU output cannot be negative, so a logit can push its class down only to 0, and every output "
                "unit whose pre-activation is below 0 gets no gradient at all (it is dead for that example)"
                if kind.from_logits
                else "a ReLU output is neither bounded by 1 nor smooth at 0: the loss clips it into [1e-7, 1 - 1e-7], "
                "and every clipped or negative output passes no gradient back"
            ),
            "fix: remove the ReLU from the output layer: "
            + (
                "a Dense layer without activation (the loss applies the softmax)"
                if kind.from_logits
                else f"end the model with a {head} ({'Dense(units, activation=' + repr(head) + ')'})"
            ),
        ],
    )


def _relu_on_a_regression_output(run: RunContext) -> HealthCheckError | None:
    found = relu_output_below_targets(run)
    if found is None:
        return None
    finding, evidence, fix = found
    return _fail(run, "initial_loss", finding, [f"evidence: {evidence}", f"fix: {fix}"])


def _outputs_activated_twice(run: RunContext) -> bool:
    """Probabilities out of the model into a loss that applies its own softmax/sigmoid (from_logits=True)."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    outputs = traj.outputs_start
    if not kind.known or not (kind.classifies or kind.family == losses.BINARY) or "probabilities" not in outputs:
        return False
    # Rows of 512 probe examples each summing to 1 prove a softmax; sigmoid outputs in [0, 1] do not prove a
    # sigmoid (small logits of a fresh Dense(1) can all be in [0, 1]): there the last layer must say so.
    twice = outputs["probabilities"] if kind.classifies else final_activation(run.trained_model()) == "sigmoid"
    return bool(kind.from_logits and twice)


def _binary_loss_on_a_softmax(run: RunContext) -> list[str]:
    """A note: binary cross-entropy over a softmax's outputs with one class per label row (a classic: a fifth user's
    convnet reached 40% accuracy in 30 steps where categorical_crossentropy reached 82%). It learns, so no failure."""
    kind, outputs = run.trajectory.loss_kind, run.trajectory.outputs_start
    labels = np.asarray(getattr(run.data, "train_labels", np.zeros(0)))
    width = int(outputs.get("width", 0))
    if kind.family != losses.BINARY or width < 2 or not outputs.get("probabilities", False):
        return []
    if labels.ndim != 2 or labels.shape[1] != width or not np.all(labels.sum(axis=1) == 1):
        return []
    return [
        f"the loss {kind.name} reads each of the {width} outputs as a yes/no answer of its own, but they are a softmax "
        f"(each row sums to 1, measured on the probe images) and every label row of {run.data.source} has exactly "
        "one class: one class per example is what categorical_crossentropy reads. Binary cross-entropy still "
        f"trains it, more slowly, and an 'accuracy' metric becomes binary accuracy ({1 - 1 / width:.0%} for "
        "answering no everywhere). Compile loss='categorical_crossentropy'"
    ]


def _activation_read_through(run: RunContext) -> list[str]:
    """A note, not a failure: a softmax/sigmoid output with a loss compiled ``from_logits=True`` that Keras reads
    through (a fifth user's small Xception with a softmax head: the verdict said "can never go below 1.46", yet its
    table and loss were the healthy model's digit for digit; Keras 2.15 and 3 take the logits under the
    activation). Measured on the run's own compiled loss, so a loss that cannot see the activation still fails.
    Also sigmoid outputs under a softmax cross-entropy compiled ``from_logits=False``: Keras 3 takes the logits
    under the sigmoid and trains a logits model (a sixth user's digits MLP: the same numbers as the logits model,
    in the plugin and in 20 epochs of fit), where the verdict said Keras clips the outputs."""
    from training_health.checks.diagnosis import reads_logits_as_probabilities

    twice = _outputs_activated_twice(run)
    sigmoids = (
        run.trajectory.loss_kind.classifies
        and reads_logits_as_probabilities(run.trajectory)
        and bool(run.trajectory.outputs_start.get("unit_interval"))
    )
    if not (twice or sigmoids):
        return []
    from training_health.model.keras_training import loss_reads_through_the_activation

    kind, data = run.trajectory.loss_kind, run.data
    images, labels = data.to_model_input(data.train_images[:16]), data.train_labels[:16]
    try:
        measured = loss_reads_through_the_activation(run.trained_model(), images, labels)
    except Exception:  # noqa: BLE001  (a loss or model that cannot be called this way: no claim, the check decides)
        return []
    if measured is None or math.isclose(*measured, rel_tol=1e-6):
        return []
    activation = "softmax" if kind.classifies else "sigmoid"
    as_trained, plain = measured
    if sigmoids and not twice:
        return [
            f"the model ends in sigmoids and the loss {kind.name} reads probabilities (from_logits=False), which "
            "sigmoid outputs are not (a row does not sum to 1), but Keras reads the logits under the sigmoid itself "
            f"and applies a softmax cross-entropy to them, so this run trains as a logits model would (measured on "
            f"16 examples: the loss on the model's outputs {as_trained:.4g}, on the same values as probabilities "
            f"{plain:.4g}); a loss that cannot see the sigmoid (another Keras version, a custom step) would clip "
            "them. To say what is meant: end the model with a softmax, or with no activation and "
            "from_logits=True"
        ]
    return [
        f"the model ends in a {activation} and the loss {kind.name} is compiled with from_logits=True, but Keras "
        f"reads the logits under the {activation} itself, so this run trains as it should (measured on 16 "
        f"examples: the loss on the model's outputs {as_trained:.4g}, on the same values as plain logits "
        f"{plain:.4g}); a loss that cannot see the {activation} (a custom train step's tf.nn cross-entropy, a "
        f"cast after it) would apply it twice. To say what is meant: remove the {activation} at the end of the "
        "model (a Dense layer without activation), or compile the loss with from_logits=False"
    ]


def _output_mismatch(run: RunContext, twice_possible: bool = True) -> HealthCheckError | None:
    """Outputs of the wrong kind for the loss: probabilities read as logits (a second softmax/sigmoid), or
    logits read as probabilities. ``twice_possible=False``: the loss was measured to read through the model's
    activation (``_activation_read_through``): neither applies."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    outputs = traj.outputs_start
    if not kind.known or not (kind.classifies or kind.family == losses.BINARY) or "probabilities" not in outputs:
        return None
    width = int(outputs["width"])
    if twice_possible and _outputs_activated_twice(run):
        activation = "softmax" if kind.classifies else "sigmoid"
        floor = math.log(1 + (width - 1) / math.e) if kind.classifies else math.log(1 + math.exp(-1))
        return _fail(
            run,
            "initial_loss",
            f"double {activation}: the model outputs probabilities (every output in [0, 1]"
            + (", each row summing to 1" if kind.classifies else "")
            + f") and the loss {kind.name} applies {activation} again (from_logits=True)",
            [
                f"evidence: the loss starts at {float(traj.loss[0]):.4g} as an untrained model's would, but with "
                f"probabilities as logits it can never go below {floor:.3g} (logits confined to [0, 1]), and its "
                f"gradient is squeezed by the {activation}'s slope twice",
                f"fix: remove the {activation} at the end of the model (a Dense layer without activation), or "
                "compile the loss with from_logits=False",
            ],
        )
    from training_health.checks.diagnosis import reads_logits_as_probabilities

    if reads_logits_as_probabilities(traj) and twice_possible:
        return _fail(
            run,
            "initial_loss",
            f"the loss {kind.name} reads probabilities (from_logits=False) but the model's outputs are not "
            + ("rows in [0, 1] summing to 1" if kind.classifies else "in [0, 1]")
            + f" (mean {outputs['mean']:.3g}, RMS {outputs['rms']:.3g}): logits read as probabilities",
            [
                "evidence: Keras clips such outputs into [1e-7, 1 - 1e-7] (and rescales softmax rows), which cuts "
                "the gradient of every clipped output",
                "fix: compile the loss with from_logits=True, or end the model with a "
                + ("softmax" if kind.classifies else "sigmoid"),
            ],
        )
    return None


def _oversized_logits(run: RunContext) -> HealthCheckError | None:
    """Logits so spread that the softmax starts saturated: the loss at step 0 is ~std x 1.5, not ln C."""
    from training_health.checks.diagnosis import (
        SATURATED_LOGIT_STD,
        kernel_scales,
        oversized_kernels,
        predicted_logit_std,
    )

    traj, kind = run.trajectory, run.trajectory.loss_kind
    std = traj.logit_std_start
    if not (kind.known and math.isfinite(std) and std > SATURATED_LOGIT_STD):
        return None
    width = int(traj.outputs_start["width"])
    small = math.log(2) if kind.family == losses.BINARY else math.log(width)
    observed = f"loss at step 0 is {float(traj.loss[0]):.4g}, {float(traj.loss[0]) / small:.3g}x the {small:.4g} "
    observed += f"of logits near 0: logits start with std {std:.3g}, bound {SATURATED_LOGIT_STD:g}"
    evidence = (
        f"evidence: {traj.saturated_fraction_start:.0%} of {kind.head} outputs saturated at step 0; an untrained "
        f"model's loss grows ~linearly with its logits' spread ({untrained_cross_entropy(std, width, False):.3g} "
        f"expected at std {std:.3g})"
    )
    oversized = oversized_kernels(traj)
    if oversized:
        listing = ", ".join(f"{k} {s:.1f}x" for k, s in oversized.items())
        return _fail(
            run,
            "initial_loss",
            observed,
            [
                "cause: oversized initialization (the per-layer verdict), not vanishing gradients: init std far "
                f"above the He std for the fan-in: {listing}",
                evidence,
                "fix: initialize the weights with He normal (std sqrt(2 / fan-in)) and the biases with zeros",
            ],
        )
    inputs = unscaled_inputs(run)
    if inputs:
        return _fail(run, "initial_loss", observed, [f"cause: {inputs}", evidence, "fix: " + _input_fix(run)])
    predicted = predicted_logit_std(traj)
    largest = max(kernel_scales(traj).values(), default=float("nan"))
    return _fail(
        run,
        "initial_loss",
        observed,
        [
            f"cause: scaled output: logits {std / predicted:.3g}x the std {predicted:.2g} the weights' init scale "
            f"predicts (largest kernel {largest:.2g}x its He std): a factor after the last layer",
            evidence,
            "fix: remove the factor on the model's output before the loss",
        ],
    )


def _input_fix(run: RunContext) -> str:
    """The fix for unscaled inputs: divide pixels by 255, else standardize (or adapt a Normalization layer)."""
    traj = run.trajectory
    pixels = np.asarray(run.data.train_images[:1]).dtype == np.uint8 or traj.input_rms > RAW_PIXELS_RMS
    return input_scale_fix(pixels, traj.never_adapted_normalization)


def _logit_scale(traj) -> str:
    """How large the logits start, against what healthy untrained models measured (NORMAL_LOGIT_STD)."""
    std = traj.logit_std_start
    if not math.isfinite(std):
        return f"outputs at the scale measured (RMS {traj.outputs_start['rms']:.3g})"
    if std <= NORMAL_LOGIT_STD:
        return f"logits at a normal scale (std {std:.3g}; healthy untrained models up to {HEALTHY_LOGIT_STD:g})"
    return (
        f"logits already large (std {std:.3g}, bound {NORMAL_LOGIT_STD:g}: healthy untrained models measured up to "
        f"{HEALTHY_LOGIT_STD:g}; {traj.saturated_fraction_start:.0%} of outputs saturated)"
    )


def _initial_loss_cause(run: RunContext, observed: float, expected: float, ratio: float, floor: float) -> list[str]:
    """Why the loss at step 0 is off the prediction ``expected`` (``floor``: the lowest an untrained model gives).
    Premises the run measured come first: a loss summed over the batch (the per-example loss fits the
    prediction), then unscaled inputs (checks/input_scale.py, tried first by every check), then loss scaling."""
    traj, kind = run.trajectory, run.trajectory.loss_kind
    batch = run.config.batch_size
    if ratio < 1:
        return [
            "cause: an untrained model cannot predict its labels better than their frequencies: the loss is divided "
            "by more than the batch (averaged twice, or over a larger axis), or the labels are not what the loss "
            f"reads (encoding: {run.data.label_encoding}; loss: {kind.describe()})",
            "fix: compute the loss as the mean over the batch of each example's loss, on labels in the form it reads",
        ]
    per_example = observed / batch
    summed = floor / 2 <= per_example <= 2 * expected
    if not summed:
        inputs = unscaled_inputs(run)
        if inputs:
            return [
                f"cause: {inputs}",
                f"evidence: {_logit_scale(traj)}; outputs before training: mean {traj.outputs_start['mean']:.3g}, "
                f"RMS {traj.outputs_start['rms']:.3g}; the loss is {ratio:.3g}x what logits of that spread centred "
                "on 0 give",
                "fix: " + _input_fix(run),
            ]
    if kind.reduction == "sum" or summed:
        said = " (the loss object says reduction='sum')" if kind.reduction == "sum" else ""
        return [
            f"cause: the loss is summed over the batch instead of averaged{said}: {observed:.4g} / batch {batch} = "
            f"{per_example:.4g} per example, {per_example / expected:.3g}x the prediction; every gradient is "
            f"{batch}x too large, as if the learning rate were {batch}x larger",
            "fix: average over the batch (reduction='sum_over_batch_size', the Keras default, or tf.reduce_mean "
            "instead of tf.reduce_sum)",
        ]
    return [
        f"cause: {_logit_scale(traj)}, yet the loss is {ratio:.3g}x what they give: the loss "
        "is scaled up (a weight on it, a sum over outputs or positions), or the labels are not in the form it reads "
        f"(encoding: {run.data.label_encoding}; loss: {kind.describe()})",
        "fix: compute the loss as the mean over the batch of each example's loss, on labels in the form it reads",
    ]


HEADS = "fixtures.user_models.heads"
IMBALANCED = "fixtures.healthy_models.imbalanced_mlp"
CALIBRATION_MODELS = [  # (model, data function or None for MNIST, initializer): healthy runs only
    *(("seed", None, init) for init in ("he_normal", "glorot_uniform", "truncated_normal")),
    ("fixtures.user_models.compiled_keras:sgd_momentum", None, "default"),
    ("fixtures.user_models.keras_convnet:build", None, "default"),
    ("fixtures.user_models.training_variants:regularized", None, "default"),
    ("fixtures.user_models.training_variants:batchnorm", None, "default"),
    (f"{HEADS}:categorical_one_hot", f"{HEADS}:one_hot_data", "default"),
    (f"{HEADS}:categorical_from_logits", f"{HEADS}:one_hot_data", "he_normal"),
    (f"{HEADS}:binary_sigmoid", f"{HEADS}:zero_vs_rest_data", "default"),
    (f"{HEADS}:binary_logit", f"{HEADS}:zero_vs_rest_data", "he_normal"),
    (f"{HEADS}:multi_label", f"{HEADS}:multi_label_data", "default"),
    (f"{HEADS}:regression", f"{HEADS}:digit_value_data", "default"),
    (f"{HEADS}:regression", f"{HEADS}:digit_value_data", "he_normal"),
    # Output bias at the label prior, batch 2048 (TF tutorial "Classification on imbalanced data"): 9.9% and 0.55%
    (f"{IMBALANCED}:common", f"{IMBALANCED}:common_data", "default", 2048),
    (f"{IMBALANCED}:rare", f"{IMBALANCED}:rare_data", "default", 2048),
]


def initial_loss_ratios(seeds: range) -> list[tuple[str, float, float, float]]:
    """(run, loss at step 0 over the low-side reference (the lower of the prediction and the prior model's), over
    the prediction, logit std at step 0) for each healthy calibration model and seed.

    ``python -m training_health.checks.data_checks [SEEDS]`` (from the repository: the models are in fixtures/).
    """
    from training_health.data.user_data import load_training_data
    from training_health.probe.training_probe import DEFAULT_BATCH_SIZE, ProbeConfig, run_probe

    found = []
    for spec, data_spec, init, *batch in CALIBRATION_MODELS:
        data = load_training_data(data_spec)
        for seed in seeds:
            config = ProbeConfig(
                model=spec, initializer=init, seed=seed, steps=1, batch_size=(batch or [DEFAULT_BATCH_SIZE])[0]
            )
            model = config.build_model()
            traj = run_probe(config, data, model)  # step 0 is all it needs
            run = RunContext(traj, data, None, lambda model=model: model, config.build_model)
            regularization = traj.outputs_start["regularization"]
            expected = untrained_loss(run)[0] + regularization
            prior = prior_loss(run)
            floor = min(expected, prior[0] + regularization) if prior else expected
            found.append(
                (
                    f"{spec} {init} seed {seed} (logit std {traj.logit_std_start:.3g}; high side "
                    f"{traj.loss[0] / expected:.4f})",
                    traj.loss[0] / floor,
                    traj.loss[0] / expected,
                    traj.logit_std_start,
                )
            )
    return found


if __name__ == "__main__":
    import sys

    ratios = initial_loss_ratios(range(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
    for name, low, _, _ in ratios:
        print(f"{low:8.4f}  {name}")
    lows, highs, stds = ([r[i] for r in ratios] for i in (1, 2, 3))
    print(
        f"{len(lows)} runs: low side (over the lower reference) min {min(lows):.4f}; high side (over the prediction) "
        f"max {max(highs):.4f}; logit std max {max(stds):.3g}"
    )
