"""One training step of a *compiled* Keras model, as ``fit`` takes it: the model's own optimizer,
its compiled loss plus ``model.losses`` (regularizers, ``add_loss``), and loss scaling when Keras
wrapped the optimizer in a ``LossScaleOptimizer`` (compiling under a ``mixed_float16`` policy).

Works with Keras 2 (``tf.keras`` under TF 2.15) and Keras 3 (TF 2.16+). Their loss-scaling APIs differ:
Keras 2 scales with ``get_scaled_loss`` and expects *unscaled* gradients in ``apply_gradients``;
Keras 3 scales with ``scale_loss`` and unscales inside ``apply_gradients``. Either way the gradients
recorded for the probe are the unscaled ones, the gradient of the loss itself.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training_health.model import losses
from training_health.model.recipe import learning_rate_schedule
from training_health.model.variables import tf_variable

# Settings worth naming in the recipe when set (defaults are left out to keep the title short).
OPTIMIZER_SETTINGS = ("momentum", "nesterov", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm")


def is_compiled(model) -> bool:
    """A Keras model that ``compile`` gave an optimizer: ``fit`` would train it with that."""
    return hasattr(model, "compile") and getattr(model, "optimizer", None) is not None


def learning_rate_now(optimizer) -> float | None:
    """The learning rate the next step uses (a schedule evaluated at the optimizer's step count)."""
    try:
        rate = optimizer.learning_rate
        if callable(rate) and not hasattr(rate, "numpy"):
            rate = rate(optimizer.iterations)
        return float(np.asarray(tf.convert_to_tensor(rate)))
    except (AttributeError, TypeError, ValueError):
        return None


def optimizer_steps(optimizer) -> int | None:
    """How many steps the optimizer has taken (its ``iterations``), None without one or a readable count."""
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    try:
        return int(np.asarray(tf.convert_to_tensor(base.iterations)))
    except (AttributeError, TypeError, ValueError):
        return None


def scheduled_rates(optimizer, first: int | None, end: int | None) -> tuple[float, ...]:
    """The rate the optimizer's schedule gave each step it took, ``first`` .. ``end - 1`` (its step counts before
    and after the run); () for a constant rate, no optimizer, or a count it cannot read. Measured from the
    schedule itself, at the steps the run took: a rate that decays to ~0 hides behind its step-0 value."""
    schedule = learning_rate_schedule(optimizer) if optimizer is not None else None
    if schedule is None or first is None or end is None or end <= first:
        return ()
    try:
        return tuple(float(np.asarray(tf.convert_to_tensor(schedule(step)))) for step in range(first, end))
    except (TypeError, ValueError):
        return ()


def describe_optimizer(optimizer) -> str:
    """e.g. "SGD lr=0.01 momentum=0.9", "Adam lr=0.001 with dynamic loss scaling"."""
    inner = getattr(optimizer, "inner_optimizer", None)
    base = inner if inner is not None else optimizer
    config = base.get_config()
    rate = learning_rate_now(base)
    parts = [type(base).__name__, f"lr={rate:g}" if rate is not None else "lr=?"]
    if isinstance(config.get("learning_rate"), dict):  # a schedule: its class, at step 0
        parts[-1] += f" ({config['learning_rate'].get('class_name', 'schedule')})"
    for key in OPTIMIZER_SETTINGS:
        value = config.get(key)
        if value not in (None, False, 0, 0.0):
            parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts) + (" with dynamic loss scaling" if inner is not None else "")


def describe_loss(model) -> str:
    """e.g. "sparse_categorical_crossentropy(from_logits=True) + 2 regularization losses"."""
    loss = getattr(model, "loss", None)
    if loss is None:
        name = "no compiled loss"
    elif isinstance(loss, str):
        name = loss
    elif hasattr(loss, "get_config"):
        config = loss.get_config()
        name = config.get("name") or type(loss).__name__
        if "from_logits" in config:
            name += f"(from_logits={config['from_logits']})"
    else:
        name = getattr(loss, "__name__", type(loss).__name__)
    extra = len(model.losses)
    return f"{name} + {extra} regularization loss{'es' if extra != 1 else ''}" if extra else name


def keras_fit_step(model, weights: dict, trainable: dict):
    """``run(images, labels) -> (loss, gradients)``: one ``fit``-like step; gradients for every weight.

    Every weight is watched, frozen ones too, so a frozen layer's gradient is measured; only the
    trainable ones go to the optimizer, as in ``fit``. The labels reach the loss in the form it reads
    (class ids, one-hot rows, float targets shaped like the outputs: ``losses.targets_for_loss``),
    whatever form the data gives them in.
    """
    optimizer = model.optimizer
    names = list(weights)
    watched = [tf_variable(weights[n]) for n in names]
    trained = [i for i, n in enumerate(names) if trainable[n]]
    kind = losses.loss_kind(model)

    def run(images, labels):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            predictions = model(images, training=True)
            targets = losses.targets_for_loss(kind, labels, predictions)
            loss = model.compute_loss(x=images, y=targets, y_pred=predictions)
            scaled = scale_loss(optimizer, loss)
        gradients = tape.gradient(scaled, watched)
        true_gradients, for_optimizer = unscale(optimizer, gradients)
        optimizer.apply_gradients([(for_optimizer[i], weights[names[i]]) for i in trained])
        return tf.cast(loss, tf.float32), true_gradients

    return run


def loss_reads_through_the_activation(model, images, labels) -> tuple[float, float] | None:
    """The compiled loss on the model's outputs, and on the same values as a plain tensor, in one graph call; None
    for a model that is not compiled. Keras' cross-entropies read the logits under a softmax/sigmoid output
    themselves (the ``_keras_logits`` the activation leaves on its output, or the graph's ``Softmax``/``Sigmoid``
    op; Keras 2.15 and 3 alike), whatever ``from_logits`` says: the two values then differ. Equal values mean
    the loss applies its own activation to whatever the model outputs."""
    if not is_compiled(model):
        return None
    kind = losses.loss_kind(model)
    images, labels = tf.convert_to_tensor(images), tf.convert_to_tensor(labels)

    @tf.function(autograph=False)
    def both():
        outputs = model(images, training=False)
        targets = losses.targets_for_loss(kind, labels, outputs)
        plain = tf.identity(outputs)  # a new op: no Keras attribute, no Softmax/Sigmoid op type
        as_trained = model.compute_loss(x=images, y=targets, y_pred=outputs)
        return as_trained, model.compute_loss(x=images, y=targets, y_pred=plain)

    as_trained, plain = both()
    return float(as_trained), float(plain)


def scale_loss(optimizer, loss):
    if hasattr(optimizer, "get_scaled_loss"):  # Keras 2 LossScaleOptimizer
        return optimizer.get_scaled_loss(loss)
    if hasattr(optimizer, "scale_loss"):  # Keras 3 (any optimizer; LossScaleOptimizer scales)
        return optimizer.scale_loss(loss)
    return loss


def unscale(optimizer, gradients) -> tuple[list, list]:
    """(gradients of the loss itself, gradients in the form ``apply_gradients`` expects)."""
    if hasattr(optimizer, "get_unscaled_gradients"):  # Keras 2: apply_gradients takes them unscaled
        unscaled = optimizer.get_unscaled_gradients(gradients)
        return unscaled, unscaled
    if hasattr(optimizer, "scale_loss"):  # Keras 3: apply_gradients unscales itself
        scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        return [None if g is None else g / tf.cast(scale, g.dtype) for g in gradients], gradients
    return gradients, gradients


def reachable_optimizers(model) -> list:
    """Keras optimizers a train step can reach through the model: ``model.optimizer`` and attributes."""
    candidates = [getattr(model, "optimizer", None), *vars(model).values()]
    candidates += [getattr(c, "inner_optimizer", None) for c in candidates]  # inside a LossScaleOptimizer
    found = {id(c): c for c in candidates if hasattr(c, "apply_gradients") and hasattr(c, "build")}
    return list(found.values())


def build_optimizers(model, variables: list) -> None:
    """Create the slots of the model's optimizers before the compiled loop.

    A ``tf.function`` may create variables only on its first trace, and never inside the loop's body;
    a Keras optimizer creates its slots lazily, at its first ``apply_gradients``. Built here, on every
    variable the model trains, nothing is created inside the loop, whatever subset a step updates.
    """
    for optimizer in reachable_optimizers(model):
        if not getattr(optimizer, "built", getattr(optimizer, "_built", False)):  # Keras 3 / Keras 2
            optimizer.build(variables)
