"""How the model under test is trained, one step at a time: the user's training where there is one.

Three recipes, chosen in this order by :func:`training_step`:

1. ``--health-train-step MODULE:FUNCTION``: ``FUNCTION(model, images, labels)`` performs one training
   step exactly as the user's training does (its own tape, optimizer and variable list) and returns
   the loss its gradients were taken from. The probe records it under an outer ``tf.GradientTape``
   and differentiates that loss w.r.t. every weight: the tape sees the variable reads made before the
   step's own updates, so the gradient is the one at the start of the step. A variable the step left
   out of its variable list therefore shows a non-zero gradient and a zero update.
2. A compiled Keras model: its own optimizer, loss and ``model.losses``, as ``fit``
   (:mod:`training_health.model.keras_training`).
3. Anything else (the seed network, an uncompiled model): the question's recipe, TF1 Adam and
   softmax cross-entropy on the logits (:mod:`training_health.model.optimizer`).

Each gives ``run(images, labels) -> (loss, gradients)``; what a step did to a variable is measured
by the probe (its value after minus its value before), never computed from the gradient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from training_health.model import keras_training, losses
from training_health.model.optimizer import Adam, AdamConfig
from training_health.model.user_model import resolve_callable
from training_health.model.variables import tf_variable

TRAIN_STEP_OPTION = "--health-train-step"
TRAIN_STEP_SIGNATURE = "(model, images, labels)"


# How a recipe names its optimizer first (diagnosis.py reads it back to know whose premises hold).
SUITE_OPTIMIZER = "TF1 Adam"
OWN_TRAIN_STEP = "train step"


@dataclasses.dataclass
class TrainStep:
    run: Callable  # (images, labels) -> (loss float32 scalar, gradient per weight, None where disconnected)
    recipe: str  # e.g. "SGD lr=0.01 momentum=0.9, loss sparse_categorical_crossentropy(from_logits=True)"
    learning_rate: float | None  # the optimizer's learning rate at the first step, when known
    restart: Callable | None = None  # puts the optimizer back to its first step, where the suite owns it


@tf.autograph.experimental.do_not_convert
def softmax_cross_entropy(labels, logits):
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def suite_recipe_step(model, weights: dict, trainable: dict, learning_rate: float, optimizer=None) -> TrainStep:
    """TF1 Adam (its fused kernel, one pass per weight) on the trainable weights, softmax cross-entropy."""
    names = list(weights)
    watched = [tf_variable(weights[n]) for n in names]
    trained = [i for i, n in enumerate(names) if trainable[n]]
    optimizer = optimizer or Adam([watched[i] for i in trained], AdamConfig(learning_rate=learning_rate))

    def run(images, labels):
        labels = losses.targets_for_loss(losses.SUITE_LOSS, labels, None)  # one-hot data: the class ids
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss = softmax_cross_entropy(labels, model(images, training=True))
        gradients = tape.gradient(loss, watched)
        optimizer.apply([tf.zeros_like(watched[i]) if gradients[i] is None else gradients[i] for i in trained])
        return loss, gradients

    rate = optimizer.config.learning_rate
    return TrainStep(run, f"{SUITE_OPTIMIZER} lr={rate:g}, softmax cross-entropy", rate, optimizer.restart)


def user_train_step(model, weights: dict, trainable: dict, function: Callable, spec: str) -> TrainStep:
    """The user's own step, recorded under an outer tape for the gradient of the loss it returns.

    The step's optimizer should hang on the model (``compile(optimizer=...)`` or an attribute): each
    run builds a fresh model, and the optimizer's slots are created before the compiled loop.
    """
    keras_training.build_optimizers(model, [weights[n] for n in weights if trainable[n]])
    watched = [tf_variable(v) for v in weights.values()]

    def run(images, labels):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss = function(model, images, labels)
        if loss is None:
            raise TypeError(f"{TRAIN_STEP_OPTION} {spec} returned None: it must return the loss of the step")
        loss = tf.convert_to_tensor(loss)
        if loss.shape.rank:
            raise TypeError(f"{TRAIN_STEP_OPTION} {spec} returned a loss of shape {loss.shape}, not a scalar")
        return tf.cast(loss, tf.float32), tape.gradient(loss, watched)

    return TrainStep(run, f"{OWN_TRAIN_STEP} {spec} (its own optimizer, loss and variable list)", None)


def keras_recipe_step(model, weights: dict, trainable: dict) -> TrainStep:
    keras_training.build_optimizers(model, [weights[n] for n in weights if trainable[n]])
    optimizer = model.optimizer
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    recipe = f"{keras_training.describe_optimizer(optimizer)}, loss {keras_training.describe_loss(model)}"
    run = keras_training.keras_fit_step(model, weights, trainable)
    return TrainStep(run, recipe, keras_training.learning_rate_now(base))


def training_step(model, weights: dict, trainable: dict, train_step: str | None, learning_rate: float) -> TrainStep:
    """The recipe the model is trained with (see the module docstring for the order)."""
    if train_step:
        function = resolve_callable(train_step, TRAIN_STEP_OPTION, TRAIN_STEP_SIGNATURE)
        return user_train_step(model, weights, trainable, function, train_step)
    if keras_training.is_compiled(model):
        return keras_recipe_step(model, weights, trainable)
    return suite_recipe_step(model, weights, trainable, learning_rate)


def explain_variable_creation(err: ValueError, train_step: str | None) -> RuntimeError | None:
    """What to tell the user when a step created variables inside the compiled loop (TF forbids it)."""
    if "tf.Variable" not in str(err):
        return None
    where = f"{TRAIN_STEP_OPTION} {train_step}" if train_step else "the model's training step"
    return RuntimeError(
        f"{where} creates variables inside the compiled training loop (an optimizer's slots, a metric?). "
        "Keep the step's optimizer on the model (compile(optimizer=...) or an attribute such as "
        "model.step_optimizer): the suite builds those before the loop. Or create the variables in the "
        f"model factory (optimizer.build(model.trainable_variables)). TensorFlow said: {str(err).strip()[:300]}"
    )
