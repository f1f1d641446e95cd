"""The compiled training loop the probe runs, and its reuse across initializations.

All steps run inside one compiled call (a ``tf.while_loop`` in ``tf.function``; in ``xla`` mode
each step is XLA-compiled; eager mode runs them eagerly); per-step metrics go to TensorArrays, so
Python never runs between steps. What a step did to a weight is measured: its value after the step
minus its value before, whoever applied the update.

Tracing the loop (0.23-0.29 s) and TensorFlow's optimization of the traced graph on its first
call (0.16-0.22 s) cost as much as 7 training steps of the seed network (measured, TF 2.21, 2-core
CPU). A model class that computes only from its variables says so with
``computation_in_variables = True`` (the seed network and its variants); then one traced loop
serves every initialization of that model with the same seed, device, mode, batch size and
learning rate: the next initialization is loaded into the traced model's variables and the
optimizer's moments and step count start again from zero.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

import tensorflow as tf

from training_health.model.losses import SUITE_LOSS
from training_health.model.train_step import TrainStep, suite_recipe_step, training_step
from training_health.model.variables import (
    ModelVariables,
    is_keras_model,
    model_variables,
    tf_variable,
    variable_names,
)
from training_health.probe.activations import dead_fraction, logits_and_relu_activations

# change_norm is ||W_t+1 - W_0|| after the step; update_norm is ||W_t+1 - W_t||, measured; the others are read
# before the update.
PER_STEP_METRICS = ("grad_norm", "grad_max", "update_norm", "weight_norm", "finite", "change_norm")
SATURATED_PROBABILITY = 0.999  # a probe example is saturated when its top softmax probability exceeds this
FIRST_CHUNK = 5  # steps of the first call; later calls take about CHUNK_SECONDS each
CHUNK_SECONDS = 0.5
LOOPS_KEPT = 4  # traced loops kept for reuse (each holds a model and its optimizer's moments)


def build_training_loop(model, params: list, optimizer, mode: str, connected: list, instrument=True, to_input=None):
    """The question's recipe (TF1 Adam, softmax cross-entropy) on ``params``, as a compiled loop."""
    weights = {str(i): p for i, p in enumerate(params)}
    step = suite_recipe_step(model, weights, dict.fromkeys(weights, True), optimizer.config.learning_rate, optimizer)
    return compile_training_loop(step, params, mode, connected, instrument, to_input)


def compile_training_loop(
    step: TrainStep, weights: list, mode: str, connected: list, instrument=True, to_input=None, autograph=True
):
    """A callable running all steps: (images [steps, B, ...], labels [steps, B]) -> (loss, metrics).

    ``to_input`` turns a batch of stored images into the model's input (``TrainingData.to_model_input``;
    default: MNIST's uint8 [B, 28, 28] -> float32 [B, 28, 28, 1]).

    The step loop is a ``tf.while_loop`` in one ``tf.function``. Under ``xla`` the *step* is
    compiled with XLA and the loop stays a graph while-loop: XLA's CPU backend ran the whole
    loop ~15x slower per step than the same step compiled alone (measured, TF 2.21).
    ``connected`` is filled while tracing with, per weight, whether its gradient exists.
    ``instrument=False`` gives the bare training loop the probe's overhead is measured against.
    ``autograph=False`` traces the step as plain TensorFlow calls, for code without Python control
    flow on tensors (the seed network): AutoGraph's first use costs ~1 s per process (measured).
    """
    from training_health.data.user_data import mnist_to_model_input

    weights = [tf_variable(w) for w in weights]
    n = len(weights)
    to_input = tf.autograph.experimental.do_not_convert(to_input or mnist_to_model_input)

    def one_step(x, y, initial):
        before = [tf.identity(w) for w in weights] if instrument else None
        loss, raw_grads = step.run(to_input(x), y)
        connected[:] = [g is not None for g in raw_grads]
        if not instrument:
            return loss, tf.zeros([len(PER_STEP_METRICS), n])
        # Automatic control dependencies order these reads after the step's assignments.
        after = [tf.identity(w) for w in weights]
        grads = [tf.zeros_like(w) if g is None else g for w, g in zip(before, raw_grads)]
        row = step_metrics(before, grads, [a - b for a, b in zip(after, before)])
        change = tf.stack([tf.norm(tf.cast(a - w0, tf.float32)) for a, w0 in zip(after, initial)])
        return loss, tf.concat([row, change[None]], axis=0)

    step_fn = tf.function(one_step, jit_compile=True, autograph=autograph) if mode == "xla" else one_step

    def train(images, labels, initial=None):
        """``initial``: the weights at the run's start (change_norm is measured from them), when a run is
        trained in several calls; by default the weights as this call finds them."""
        steps = tf.shape(labels)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        metrics = tf.TensorArray(tf.float32, size=steps, element_shape=[len(PER_STEP_METRICS), n])
        initial = [tf.identity(w) for w in weights] if initial is None else initial

        def body(index, losses, metrics):
            loss, row = step_fn(images[index], labels[index], initial)
            return index + 1, losses.write(index, tf.cast(loss, tf.float32)), metrics.write(index, row)

        _, losses, metrics = tf.while_loop(lambda index, *_: index < steps, body, (0, losses, metrics))
        return losses.stack(), metrics.stack()

    return train if mode == "eager" else tf.function(train, reduce_retracing=True, autograph=autograph)


@tf.autograph.experimental.do_not_convert  # the suite's own code needs no AutoGraph (each conversion ~0.1 s)
def step_metrics(params, grads, updates) -> tf.Tensor:
    """[len(PER_STEP_METRICS) - 1, n_params] for one step: weights as read before the step, measured updates."""
    f32 = lambda t: tf.cast(t, tf.float32)  # noqa: E731  (float16 weights or gradients: metrics in float32)
    columns = [
        [
            tf.norm(f32(g)),
            tf.reduce_max(tf.abs(f32(g))),
            tf.norm(f32(u)),
            tf.norm(f32(p)),
            tf.cast(tf.reduce_all(tf.math.is_finite(g)), tf.float32),
        ]
        for p, g, u in zip(params, grads, updates)
    ]
    return tf.transpose(tf.stack([tf.stack(c) for c in columns]))


def output_measurements(model, images, kind=SUITE_LOSS) -> dict:
    """From one inference pass: per ReLU layer the dead-unit fraction, and what the model's outputs are.

    ``logit_std`` and ``saturated`` are read through the run's head (``kind.head``): the std of the
    logits (for a model that outputs probabilities, of the logits they come from: log p centered per
    row for a softmax, log(p / (1 - p)) for sigmoids) and the share of probe examples whose softmax is
    saturated (top probability > 0.999), or of sigmoid outputs beyond 0.001 / 0.999. A regression or
    unknown head has neither: NaN, so no rule that reads them fires. ``mean``/``rms`` are the raw
    outputs' and ``probabilities`` / ``unit_interval`` say whether every row is a probability
    distribution / every output lies in [0, 1] (checks/data_checks.py reads them).
    """
    outputs, activations = logits_and_relu_activations(model, images)
    outputs = tf.cast(outputs, tf.float32)  # float16 outputs under mixed precision
    in_unit = tf.reduce_all((outputs >= 0) & (outputs <= 1))
    # 1e-2: a float16 softmax's rows sum to 1 only within a few float16 epsilons (9.8e-4 each).
    sums_to_one = tf.reduce_all(tf.abs(tf.reduce_sum(outputs, axis=-1) - 1) < 1e-2)
    measured = {
        "dead": {layer: dead_fraction(act) for layer, act in activations.items()},
        "width": tf.shape(outputs)[-1],
        "mean": tf.reduce_mean(outputs),
        "rms": tf.sqrt(tf.reduce_mean(tf.square(outputs))),
        "unit_interval": in_unit,
        "probabilities": in_unit & sums_to_one & (tf.shape(outputs)[-1] > 1),
    }
    nan = tf.constant(float("nan"))
    if kind.head == "softmax":
        logits = outputs
        if kind.expects_probabilities:
            log_p = tf.math.log(tf.clip_by_value(outputs, 1e-30, 1.0))
            logits = log_p - tf.reduce_mean(log_p, axis=-1, keepdims=True)
        top = tf.reduce_max(tf.nn.softmax(logits), axis=-1)
        measured.update(logit_std=tf.math.reduce_std(logits), saturated=_share(top > SATURATED_PROBABILITY))
    elif kind.head == "sigmoid":
        logits = outputs
        if kind.expects_probabilities:
            p = tf.clip_by_value(outputs, 1e-30, 1.0 - 1e-7)
            logits = tf.math.log(p) - tf.math.log1p(-p)
        p = tf.sigmoid(logits)
        measured.update(logit_std=tf.math.reduce_std(logits), saturated=_share(tf.maximum(p, 1 - p) > 0.999))
    else:
        measured.update(logit_std=nan, saturated=nan)
    return measured


def _share(condition) -> tf.Tensor:
    return tf.reduce_mean(tf.cast(condition, tf.float32))


@dataclasses.dataclass
class ProbeLoop:
    """A model, its training step and the compiled loop over its weights, ready to run."""

    model: object  # the model whose variables the loop was traced on
    variables: ModelVariables
    step: TrainStep
    train: Callable
    connected: list  # per weight, whether its gradient exists (filled when the loop is traced)
    mode: str
    prepared: bool = False  # traced, and its graph optimized
    runs: int = 0  # initializations trained so far
    _kept: list | None = None  # the traced model's own values while another model's are on loan
    starts: dict = dataclasses.field(default_factory=dict)  # outputs measured before a run, by its start (probe)

    @property
    def params(self) -> list:
        return [tf_variable(v) for v in self.variables.weights.values()]

    def prepare(self, images, labels) -> None:
        """Trace the loop and let TensorFlow optimize the graph once, so ``train``'s time is the steps'."""
        if self.prepared or self.mode == "eager":
            return
        spec = lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype)  # noqa: E731  (any step count)
        initial = [tf.TensorSpec(p.shape, p.dtype) for p in self.params]
        self.train = self.train.get_concrete_function(spec(images), spec(labels), initial)
        self.train(images[:0], labels[:0], list(self.params))  # no steps: TF optimizes the graph on its first call
        self.prepared = True

    def run_steps(self, images, labels):
        """Every step, in calls of about ``CHUNK_SECONDS`` each: a compiled call cannot be interrupted, so
        Ctrl-C takes effect between calls, within ~2 s, not after the whole run (measured: 80 s for 400 steps)."""
        initial = [tf.identity(p) for p in self.params]
        total, done, chunk, losses, metrics = int(labels.shape[0]), 0, FIRST_CHUNK, [], []
        while done < total:
            began = time.perf_counter()
            loss, metric = self.train(images[done : done + chunk], labels[done : done + chunk], initial)
            losses.append(loss)
            metrics.append(metric)
            done += chunk
            per_step = (time.perf_counter() - began) / max(1, int(loss.shape[0]))
            chunk = max(1, min(total, int(CHUNK_SECONDS / max(per_step, 1e-6))))
        return tf.concat(losses, 0), tf.concat(metrics, 0)

    def load(self, model) -> None:
        """Train ``model``'s initialization next: its values go into the traced variables, the optimizer restarts."""
        self.runs += 1
        if model is not self.model:
            self._kept = [v.numpy() for v in self.model.variables]
            _copy(model.variables, self.model.variables)
        if self.step.restart is not None:  # the optimizer may have trained another run, on another loop
            self.step.restart()

    def give_back(self, model) -> None:
        """After training: ``model`` gets the trained values, the traced model its own again."""
        if model is not self.model:
            _copy(self.model.variables, model.variables)
            _copy(self._kept, self.model.variables)
            self._kept = None


def _copy(sources, targets) -> None:
    for source, target in zip(sources, targets):
        target.assign(source)


def _new_loop(config, model, to_input, instrument: bool = True) -> ProbeLoop:
    variables = model_variables(model)
    train_step = getattr(config, "train_step_function", None) or config.train_step
    step = training_step(model, variables.weights, variables.trainable, train_step, config.learning_rate)
    connected: list[bool] = []
    weights = [tf_variable(v) for v in variables.weights.values()]
    autograph = needs_autograph(model, config.train_step)
    train = compile_training_loop(step, weights, config.mode, connected, instrument, to_input, autograph)
    return ProbeLoop(model, variables, step, train, connected, config.mode)


def needs_autograph(model, train_step: str | None) -> bool:
    """Whether user code in the step may rely on AutoGraph (Python control flow on tensors).

    A ``--health-train-step`` function and a plain module's code may; the seed network says it does
    not. Keras 3 never converts a layer's ``call`` (AutoGraph leaves the ``keras`` package alone, and
    Keras 3, unlike Keras 2, does not convert ``call`` itself; checked on TF 2.15 and 2.21), so for a
    Keras 3 model converting the loop's own code would change nothing.
    """
    if train_step:
        return True
    if is_keras_model(model):
        return keras_major_version() < 3
    return getattr(model, "needs_autograph", True)


def keras_major_version() -> int:
    return int(getattr(tf.keras, "__version__", "2").split(".")[0])


_LOOPS: collections.OrderedDict = collections.OrderedDict()


def _signature(model) -> list:
    names = variable_names(model, model.variables) if is_keras_model(model) else [v.name for v in model.variables]
    return [(name, tuple(v.shape), v.dtype) for name, v in zip(names, model.variables)]


# train step -> the first model it trained: every later run of that step (any model factory with the same
# variables) trains this model's variables, its own values loaded, because an optimizer the step keeps at
# module level (the TF quickstart's) serves only the variables it was built for.
_HOMES: dict = {}


def _train_step_loop(config, model, to_input, instrument: bool) -> ProbeLoop:
    home = _HOMES.get(config.train_step)
    if home is None or _signature(home) != _signature(model):
        home = _HOMES[config.train_step] = model
    key = ("train step", id(home), config.model, config.train_step, config.device, config.mode, config.batch_size)
    key += (to_input, instrument)
    loop = _LOOPS.get(key) or _new_loop(config, home, to_input, instrument)
    _keep(key, loop)
    return loop


def _keep(key, loop: ProbeLoop) -> None:
    _LOOPS[key] = loop
    _LOOPS.move_to_end(key)
    while len(_LOOPS) > LOOPS_KEPT:
        _LOOPS.popitem(last=False)


def probe_loop(config, model, to_input, instrument: bool = True) -> ProbeLoop:
    """A loop to train ``model`` with: one traced before for the same model and settings, else a new one.

    Call ``load(model)`` before training and ``give_back(model)`` after. ``instrument=False``: the steps
    alone, no per-step metrics (what a check that reads only the loss wants: fitting one batch of 16 ran
    ~4x faster per step without them, measured on the seed network, TF 2.21, 2-core CPU).
    """
    if config.train_step and is_keras_model(model):
        return _train_step_loop(config, model, to_input, instrument)
    reusable = getattr(type(model), "computation_in_variables", False) and not config.train_step
    if not reusable or config.mode == "eager":
        return _new_loop(config, model, to_input, instrument)
    key = (type(model), config.model, config.seed, config.device, config.mode, config.batch_size)
    key += (config.learning_rate, to_input, instrument)
    loop = _LOOPS.get(key)
    if loop is None or _signature(loop.model) != _signature(model):
        loop = _new_loop(config, model, to_input, instrument)
        if loop.step.restart is None:  # an optimizer the suite cannot put back to its first step
            return loop
        _LOOPS[key] = loop
        while len(_LOOPS) > LOOPS_KEPT:
            _LOOPS.popitem(last=False)
    _LOOPS.move_to_end(key)
    return loop
