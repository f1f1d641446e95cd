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
import types
from collections.abc import Callable

import tensorflow as tf

from training_health.errors import UsageError
from training_health.model import keras_training, losses
from training_health.model.optimizer import Adam, AdamConfig
from training_health.model.recipe import SUITE_OPTIMIZER, Recipe, keras_recipe
from training_health.model.user_model import resolve_callable
from training_health.model.variables import tf_variable
from training_health.settings import setting

TRAIN_STEP_OPTION = "--health-train-step"
TRAIN_STEP_SIGNATURE = "(model, images, labels)"


# How a recipe names its optimizer first (diagnosis.py reads it back to know whose premises hold).
OWN_TRAIN_STEP = "train step"


@dataclasses.dataclass
class TrainStep:
    run: Callable  # (images, labels) -> (loss float32 scalar, gradient per weight, None where disconnected)
    recipe: str  # e.g. "SGD lr=0.01 momentum=0.9, loss sparse_categorical_crossentropy(from_logits=True)"
    learning_rate: float | None  # the optimizer's learning rate at the first step, when known
    restart: Callable | None = None  # puts the optimizer back to its first step, where the suite owns it
    facts: Recipe = dataclasses.field(default_factory=lambda: Recipe(optimizer=None))  # typed: model/recipe.py
    # The Keras optimizer whose rate the steps follow, when the suite can see exactly one (a compiled model's, a
    # train step's only one): its schedule is evaluated at the steps the run took (Trajectory.learning_rates).
    optimizer: object = None


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
    facts = Recipe(SUITE_OPTIMIZER, rate, epsilon=optimizer.config.epsilon)
    return TrainStep(run, f"{SUITE_OPTIMIZER} lr={rate:g}, softmax cross-entropy", rate, optimizer.restart, facts)


def _unwrapped(function) -> list:
    """``function`` and what it wraps: a ``tf.function``'s Python function, ``functools.wraps`` targets."""
    found, todo = [], [function]
    while todo:
        current = todo.pop()
        if current is None or any(current is f for f in found):
            continue
        found.append(current)
        todo += [getattr(current, "python_function", None), getattr(current, "__wrapped__", None)]
    return found


def _referenced(function, depth: int = 2) -> list:
    """The objects the function's code names: module-level globals (also in nested code) and closure cells;
    module-level functions it calls are searched too, ``depth`` levels down."""
    objects = []
    for fn in _unwrapped(function):
        code, module = getattr(fn, "__code__", None), getattr(fn, "__globals__", {})
        if code is None:
            continue
        codes, names = [code], set()
        while codes:
            current = codes.pop()
            names.update(current.co_names)
            codes += [c for c in current.co_consts if isinstance(c, types.CodeType)]
        values = [module[n] for n in sorted(names) if n in module]
        values += [cell.cell_contents for cell in (fn.__closure__ or ()) if _cell_filled(cell)]
        objects += values
        if depth > 1:
            objects += [o for v in values if isinstance(v, types.FunctionType) for o in _referenced(v, depth - 1)]
    return objects


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018  (an empty cell raises)
    except ValueError:
        return False
    return True


def step_optimizers(model, function) -> list:
    """The Keras optimizers a user's step can use: the model's own (``model.optimizer``, attributes)
    and the ones its code names at module level (the TF "expert" quickstart's ``optimizer = Adam()``)."""
    candidates = keras_training.reachable_optimizers(model) + _referenced(function)
    candidates += [getattr(c, "inner_optimizer", None) for c in candidates]  # inside a LossScaleOptimizer
    found = {id(c): c for c in candidates if hasattr(c, "apply_gradients") and hasattr(c, "build")}
    return list(found.values())


# id -> (optimizer, its variables' values as built): the state every run of a user's step starts from.
# Kept per process: a module-level optimizer outlives the models it trains (see probe/training_loop.py).
_BUILT_STATE: dict[int, tuple[object, list]] = {}


def _optimizer_variables(optimizer) -> list:
    variables = optimizer.variables  # Keras 3: a property; Keras 2: a method
    return list(variables() if callable(variables) else variables)


def built_optimizers(optimizers: list, variables: list) -> Callable:
    """Build each optimizer on ``variables`` (never inside the compiled loop) and remember its built state:
    step count 0, slots 0, learning rate as given. Returns what puts them all back to that state."""
    for optimizer in optimizers:
        if not getattr(optimizer, "built", getattr(optimizer, "_built", False)):  # Keras 3 / Keras 2
            optimizer.build(variables)
        if id(optimizer) not in _BUILT_STATE:
            _BUILT_STATE[id(optimizer)] = (optimizer, [v.numpy() for v in _optimizer_variables(optimizer)])

    def restart() -> None:
        for optimizer in optimizers:
            for variable, value in zip(_optimizer_variables(optimizer), _BUILT_STATE[id(optimizer)][1]):
                variable.assign(value)

    return restart


def user_train_step(model, weights: dict, trainable: dict, function: Callable, spec: str) -> TrainStep:
    """The user's own step, recorded under an outer tape for the gradient of the loss it returns.

    The step's optimizers (the model's, or module-level ones its code names) are built before the
    compiled loop, on the variables the model trains, and put back to that built state before each
    run. A module-level optimizer serves one set of variables only: later runs train the first model's
    variables with their own values loaded (``probe/training_loop.py``).
    """
    optimizers = step_optimizers(model, function)
    restart = built_optimizers(optimizers, [weights[n] for n in weights if trainable[n]])
    watched = [tf_variable(v) for v in weights.values()]

    def run(images, labels):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            loss = function(model, images, labels)
        if loss is None:
            raise TypeError(f"{setting('train-step', spec)} returned None: it must return the loss of the step")
        loss = tf.convert_to_tensor(loss)
        if loss.shape.rank:
            raise TypeError(f"{setting('train-step', spec)} returned a loss of shape {loss.shape}, not a scalar")
        return tf.cast(loss, tf.float32), tape.gradient(loss, watched)

    facts = keras_recipe(optimizers[0], None) if len(optimizers) == 1 else Recipe(optimizer=None)
    # The optimizer is named when the step has exactly one the suite can see; its rate stays unquoted: the
    # step may scale or schedule it in its own code.
    facts = dataclasses.replace(facts, learning_rate=None)
    recipe = f"{OWN_TRAIN_STEP} {spec} (its own optimizer, loss and variable list)"
    return TrainStep(run, recipe, None, restart, facts, optimizers[0] if len(optimizers) == 1 else None)


def keras_recipe_step(model, weights: dict, trainable: dict) -> TrainStep:
    keras_training.build_optimizers(model, [weights[n] for n in weights if trainable[n]])
    optimizer = model.optimizer
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    recipe = f"{keras_training.describe_optimizer(optimizer)}, loss {keras_training.describe_loss(model)}"
    run = keras_training.keras_fit_step(model, weights, trainable)
    rate = keras_training.learning_rate_now(base)
    return TrainStep(run, recipe, rate, facts=keras_recipe(optimizer, rate), optimizer=base)


def training_step(model, weights: dict, trainable: dict, train_step, learning_rate: float) -> TrainStep:
    """The recipe the model is trained with (see the module docstring for the order)."""
    if callable(train_step):  # given as a function (the health_check fixture, the API)
        label = f"{getattr(train_step, '__module__', '?')}:{getattr(train_step, '__qualname__', 'step')}"
        return user_train_step(model, weights, trainable, train_step, label)
    if train_step:
        function = resolve_callable(train_step, setting("train-step"), TRAIN_STEP_SIGNATURE)
        return user_train_step(model, weights, trainable, function, train_step)
    if keras_training.is_compiled(model):
        return keras_recipe_step(model, weights, trainable)
    return suite_recipe_step(model, weights, trainable, learning_rate)


class TrainStepError(UsageError, RuntimeError):
    """The training step cannot run as given (TensorFlow refused it while tracing); the message says why and
    what to change. Each test reading the run fails with this message alone (plugin.TrajectoryCache)."""


def explain_variable_creation(err: Exception, train_step: str | None) -> TrainStepError | None:
    """What to tell the user when a step created variables inside the compiled loop (TF forbids it), used an
    optimizer built for another model's variables that the suite could not find to reset, or computed its loss
    where no gradient reaches a variable; None for other errors (they keep their traceback)."""
    where = setting("train-step", train_step) if train_step else "the model's training step"
    if "No gradients provided for any variable" in str(err):  # Keras 3 and Keras 2 say it alike
        return TrainStepError(
            f"{where}: no gradient reaches any variable (TensorFlow: 'No gradients provided for any variable'): the "
            "loss the tape differentiates was not computed from the model's variables while the tape recorded. "
            "Run the forward pass and the loss inside the tape: with tf.GradientTape() as tape: predictions = "
            "model(images, training=True); loss = loss_fn(labels, predictions) -- then tape.gradient(loss, "
            "model.trainable_variables)"
        )
    if "originally built with" in str(err) or "cannot recognize variable" in str(err):  # Keras 3 / Keras 2
        return TrainStepError(
            f"{where} uses an optimizer built for another model's variables (a Keras optimizer serves only the "
            "variables it was built for). The suite trains every run of one step on the first model's variables "
            "when the models match; this model's variables differ (another factory?), or the optimizer is out "
            "of its sight. Give each model its own optimizer: create it in the factory and keep it on the model "
            "(model.compile(optimizer=...), the step using model.optimizer), or give each architecture its own "
            f"train step. Keras said: {str(err).strip()[:200]}"
        )
    if not isinstance(err, ValueError) or "tf.Variable" not in str(err):
        return None
    return TrainStepError(
        f"{where} creates variables inside the compiled training loop (an optimizer's slots, a metric?). "
        "Keep the step's optimizer on the model (compile(optimizer=...) or an attribute such as "
        "model.step_optimizer): the suite builds those before the loop. Or create the variables in the "
        f"model factory (optimizer.build(model.trainable_variables)). TensorFlow said: {str(err).strip()[:300]}"
    )
