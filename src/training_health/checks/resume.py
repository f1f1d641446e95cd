"""The resume check: does training resumed from a checkpoint continue the same training?

Two runs on the same batches in the same order: ``k + m`` steps straight, and ``k`` steps -> save the
user's way -> restore into a freshly built model (the run's factory) -> ``m`` steps. After the restore
and after every later step, every variable of the model (weights, moving statistics, the dropout
counter) and of its optimizer (slots, iteration counter) is compared with the straight run's. The
first step where they part is reported with what the checkpoint left out:

- optimizer slots (Adam's moments, SGD's momentum) and its iteration counter: a checkpoint of the
  model alone (``tf.train.Checkpoint(model=model)``, ``model.save_weights``);
- the learning-rate schedule's step: a schedule is read at ``optimizer.iterations``, so a checkpoint
  without the counter restarts the schedule;
- dropout/RNG state held in variables (the seed network's dropout counter, a Keras ``SeedGenerator``).

Ways to save (``SAVE_METHODS``): ``keras`` (``model.save("….keras")`` + ``keras.models.load_model``,
the default for compiled Keras models), ``checkpoint`` (``tf.train.Checkpoint(model=model,
optimizer=optimizer)``, the default otherwise), or the user's own functions
``save(model, optimizer, directory)`` / ``restore(model, optimizer, directory)``
(``--health-resume-with MODULE:save,MODULE:restore``; ``restore`` gets a freshly built model and its
freshly built optimizer).

Tolerance: none. On CPU in graph mode the resumed run of a complete checkpoint equals the straight run
bit for bit at every compared step (measured, see tests/test_resume.py: seed network and compiled Keras
models, TF 2.21): the same kernels run on the same values in the same order. Any difference is
therefore state the checkpoint did not carry; ``TOLERANCE`` stays 0 and the message gives the
observed difference.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from training_health.errors import HealthCheckError

RESUME_STEPS = (5, 5)  # k steps before the save, m after (each compared step by step)
TOLERANCE = 0.0  # measured: a complete checkpoint resumes bit-identically on CPU graph mode (module docstring)
SAVE_METHODS = ("keras", "checkpoint", "own")
RESUME_WITH_OPTION = "--health-resume-with"


@dataclasses.dataclass
class Trainer:
    """A model, the step that trains it and the optimizer state the step keeps."""

    model: object
    step: Callable  # compiled: (images, labels) -> loss
    optimizers: list  # the step's optimizers (the suite's TF1 Adam, model.optimizer, ...)
    optimizer_state: Callable[[], list]  # [(name, variable)] of every optimizer variable
    recipe: str = ""  # how the step trains, e.g. "SGD lr=0.05 (ExponentialDecay) momentum=0.9, loss ..."

    def state(self) -> dict:
        """Name -> value of every variable of the model and its optimizers, copied."""
        from training_health.model.variables import tf_variable  # a Keras 3 variable's own numpy() warns

        values = {f"model/{name}": np.array(tf_variable(v).numpy()) for name, v in model_state(self.model)}
        values.update({f"optimizer/{name}": np.array(tf_variable(v).numpy()) for name, v in self.optimizer_state()})
        return values

    @property
    def optimizer(self):
        return self.optimizers[0] if self.optimizers else None


def model_state(model) -> list:
    """(name, variable) of every variable of the model, in the model's own order: weights and state (moving
    statistics, RNG state such as a Keras SeedGenerator's or the seed network's dropout counter)."""
    from training_health.model.variables import is_keras_model, model_variables, tf_variable

    if is_keras_model(model):
        return [(getattr(v, "path", None) or v.name, v) for v in model.variables]
    named = model_variables(model)
    pairs = [(n, tf_variable(v)) for n, v in {**named.weights, **named.state}.items()]
    seen = {id(v) for _, v in pairs}
    paths = {id(v): ".".join(map(str, path)) for path, v in _module_paths(model)}  # e.g. _dropout_calls
    pairs = [(paths.get(id(v), n) if n.startswith("Variable") else n, v) for n, v in pairs]
    extra = [v for v in getattr(model, "variables", []) if id(v) not in seen]
    return pairs + [(paths.get(id(v), v.name.split(":")[0]), v) for v in extra]


def _module_paths(model) -> list:
    import tensorflow as tf

    flatten = getattr(model, "_flatten", None)  # tf.Module: attribute paths of its variables
    return list(flatten(predicate=lambda v: isinstance(v, tf.Variable), with_path=True)) if flatten else []


def trainer_for(model, config) -> Trainer:
    """The run's training step on ``model`` (the probe's recipes: model/train_step.py), compiled."""
    import tensorflow as tf

    from training_health.model.keras_training import is_compiled
    from training_health.model.optimizer import Adam, AdamConfig
    from training_health.model.train_step import (
        TRAIN_STEP_OPTION,
        TRAIN_STEP_SIGNATURE,
        _optimizer_variables,
        step_optimizers,
        suite_recipe_step,
        training_step,
    )
    from training_health.model.user_model import resolve_callable
    from training_health.model.variables import model_variables, tf_variable

    variables = model_variables(model)
    weights, trainable = variables.weights, variables.trainable
    train_step = getattr(config, "train_step_function", None) or config.train_step
    if train_step:
        function = train_step
        if not callable(function):
            function = resolve_callable(train_step, TRAIN_STEP_OPTION, TRAIN_STEP_SIGNATURE)
        optimizers = step_optimizers(model, function)
        unreachable = [o for o in optimizers if not any(o is r for r in _model_optimizers(model))]
        if unreachable:  # said before training_step builds it: the probe's runs keep their module-level optimizer
            raise CannotResume(
                "the train step's optimizer is not on the model (a module-level optimizer serves one model's "
                "variables only): keep it on the model (model.compile(optimizer=...) or an attribute) to check resuming"
            )
        step = training_step(model, weights, trainable, train_step, config.learning_rate)
    elif is_compiled(model):
        step = training_step(model, weights, trainable, None, config.learning_rate)
        optimizers = [model.optimizer]
    else:  # the suite's recipe, with the TF1 Adam kept here so that it can be saved
        adam = Adam([tf_variable(weights[n]) for n in weights if trainable[n]], AdamConfig(config.learning_rate))
        step = suite_recipe_step(model, weights, trainable, config.learning_rate, adam)
        optimizers = [adam]
    names = list(weights)

    def optimizer_state() -> list:
        if optimizers and hasattr(optimizers[0], "m") and hasattr(optimizers[0], "iterations"):
            adam = optimizers[0]
            trained = [n for n in names if trainable[n]]
            return [("iterations", adam.iterations)] + [
                (f"{slot}:{n}", v) for slot, vs in (("m", adam.m), ("v", adam.v)) for n, v in zip(trained, vs)
            ]
        return [(getattr(v, "path", v.name), v) for o in optimizers for v in _optimizer_variables(o)]

    from training_health.probe.training_loop import needs_autograph

    run = tf.function(lambda x, y: step.run(x, y)[0], autograph=needs_autograph(model, config.train_step))
    return Trainer(model, run, optimizers, optimizer_state, step.recipe)


def _model_optimizers(model) -> list:
    from training_health.model.keras_training import reachable_optimizers

    found = reachable_optimizers(model)
    return found + [getattr(o, "inner_optimizer", None) for o in found]


# ---------------------------------------------------------------------------------------------- saving


@dataclasses.dataclass
class SaveMethod:
    name: str  # what the messages call it
    save: Callable  # (trainer, directory) -> None
    restore: Callable  # (directory, build) -> Trainer; build() gives a fresh model


def keras_method(config) -> SaveMethod:
    def save(trainer, directory):
        with warnings.catch_warnings():  # Keras 3's own saving code under NumPy 2, not the user's to fix
            warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy", DeprecationWarning)
            trainer.model.save(str(Path(directory) / "model.keras"))

    def restore(directory, build):
        import tensorflow as tf

        try:
            model = tf.keras.models.load_model(str(Path(directory) / "model.keras"))
        except Exception as err:  # noqa: BLE001  (any loading failure: the user's way of saving is another)
            raise CannotResume(
                f"keras.models.load_model cannot load the model saved by model.save(...keras) "
                f"({str(err).strip()[:200]}); give your own save and restore: {RESUME_WITH_OPTION} "
                "MODULE:SAVE,MODULE:RESTORE"
            ) from err
        return trainer_for(model, config)

    return SaveMethod('model.save("model.keras") + keras.models.load_model', save, restore)


def checkpoint_method(config) -> SaveMethod:
    import tensorflow as tf

    def save(trainer, directory):
        tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer).write(str(Path(directory) / "ckpt"))

    def restore(directory, build):
        trainer = trainer_for(build(), config)  # builds the optimizer's slots before they are restored
        tf.train.Checkpoint(model=trainer.model, optimizer=trainer.optimizer).read(str(Path(directory) / "ckpt"))
        return trainer

    return SaveMethod("tf.train.Checkpoint(model=model, optimizer=optimizer)", save, restore)


def own_method(config, save_fn: Callable, restore_fn: Callable, label: str) -> SaveMethod:
    def save(trainer, directory):
        save_fn(trainer.model, trainer.optimizer, str(directory))

    def restore(directory, build):
        trainer = trainer_for(build(), config)
        restore_fn(trainer.model, trainer.optimizer, str(directory))
        return trainer

    return SaveMethod(label, save, restore)


def resolve_resume_with(spec: str) -> tuple[Callable, Callable]:
    """``MODULE:save,MODULE:restore`` -> the two functions, each callable as (model, optimizer, directory)."""
    from training_health.model.user_model import ModelSpecError, resolve_callable

    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ModelSpecError(
            f"{RESUME_WITH_OPTION} must be MODULE:SAVE,MODULE:RESTORE (two functions, each called as "
            f"FUNCTION(model, optimizer, directory)), got {spec!r}"
        )
    return tuple(resolve_callable(p, RESUME_WITH_OPTION, "(model, optimizer, directory)") for p in parts)


def default_method(model, config) -> SaveMethod:
    from training_health.model.keras_training import is_compiled

    return keras_method(config) if is_compiled(model) else checkpoint_method(config)


# ------------------------------------------------------------------------------------------- the check


@dataclasses.dataclass
class ResumeResult:
    method: str
    steps: tuple[int, int]
    seconds: float
    differences: list  # per compared step (k, k+1, ..., k+m): {name: (max |diff|, straight, resumed)}
    optimizer: object = None  # the straight run's optimizer (its schedule is named in messages)
    recipe: str = ""  # the straight run's training recipe, for the context line


def run_resume(config, data, build: Callable, method: SaveMethod | None = None, steps=RESUME_STEPS) -> ResumeResult:
    """Train straight and resumed on the same batches; the differences at the restore and after each step."""
    from training_health.probe.training_probe import batch_indices

    began = time.perf_counter()
    k, m = steps
    indices = batch_indices(config.seed, k + m, config.batch_size, len(data.train_labels))
    batches = [(data.to_model_input(data.train_images[i]), data.train_labels[i]) for i in indices]
    build = _built(build, batches[0][0], config.model)
    straight = trainer_for(build(), config)
    method = method or default_method(straight.model, config)
    for images, labels in batches[:k]:
        straight.step(images, labels)
    with tempfile.TemporaryDirectory(prefix="health-resume-") as directory:
        method.save(straight, directory)
        resumed = method.restore(directory, build)
    differences = [_differences(straight.state(), resumed.state())]
    for images, labels in batches[k:]:
        straight.step(images, labels)
        resumed.step(images, labels)
        differences.append(_differences(straight.state(), resumed.state()))
    seconds = time.perf_counter() - began
    return ResumeResult(method.name, (k, m), seconds, differences, straight.optimizer, straight.recipe)


def _built(build: Callable, images, spec: str) -> Callable:
    """``build`` giving models with their variables: a subclassed model is called once (as the probe does)."""
    from training_health.model.user_model import ensure_built

    return lambda: ensure_built(build(), images, spec)


def _differences(straight: dict, resumed: dict) -> dict:
    """Name -> (max |difference|, straight value, resumed value) of the variables that differ, matched by
    position (a rebuilt Keras model numbers its layers anew: conv2d_3 for conv2d), named as the straight run's."""
    found = {}
    for part in ("model/", "optimizer/"):
        ours = [(n, v) for n, v in straight.items() if n.startswith(part)]
        theirs = [v for n, v in resumed.items() if n.startswith(part)]
        found.update(_part_differences(ours, theirs))
    return found


def _part_differences(straight: list, resumed: list) -> dict:
    found = {}
    for index, (name, value) in enumerate(straight):
        other = resumed[index] if index < len(resumed) else None
        if other is None or other.shape != value.shape:
            found[name] = (float("inf"), value, other)
            continue
        diff = np.abs(value.astype(np.float64) - other.astype(np.float64))
        if diff.size and float(diff.max()) > TOLERANCE:
            found[name] = (float(diff.max()), value, other)
    return found


def assert_resume_equivalent(result: ResumeResult, context: str = "") -> list[str]:
    """Raise a HealthCheckError naming the first divergent step, what the checkpoint left out and the fix.

    A checkpoint that misses only dropout/RNG state, or runs that part with every variable restored (random
    ops whose state lives outside variables: Keras 2's Dropout), is a warning (returned): the resumed run
    draws other masks from the same distribution, so it trains as well, only not bit for bit the same.
    """
    k, m = result.steps
    first = next((i for i, d in enumerate(result.differences) if d), None)
    if first is None:
        return []
    restored, diverged = result.differences[0], result.differences[first]
    where = "right after the restore" if first == 0 else f"after step {k + first}"
    lines = [
        f"resume_equivalent: training resumed from {result.method} after step {k} does not continue the same "
        f"training: first difference {where} (compared over {m} more steps on the same batches, tolerance "
        f"{TOLERANCE:g}: a complete checkpoint resumes bit-identically)"
    ]
    missing = classify(restored, result.optimizer)
    if missing:
        lines.append("  missing from the checkpoint: " + "; ".join(text for _, text in missing))
    else:
        lines.append(
            f"  the checkpoint restored every variable exactly; the runs part at step {k + first}: state outside "
            "the variables differs (stateful random ops for dropout or augmentation, a Python-side counter)"
        )
    weights_part = next((i for i, d in enumerate(result.differences) if _weights_differ(d)), None)
    if weights_part is not None:
        lines.append(f"  weights part after step {k + weights_part}: {_worst(result.differences[weights_part])}")
    else:
        lines.append(f"  differing {where}: {_worst(diverged)}")
    if weights_part is not None and weights_part < m:
        lines.append(f"  after step {k + m}: {_worst(result.differences[-1])}")
    if context:
        lines.append(f"  context: {context}")
    kinds = [kind for kind, _ in missing]
    lines.append("  fix: " + fix_line(kinds, result.optimizer))
    if kinds in ([], ["rng"]):  # every variable restored exactly: only random draws (or kernels) differ
        return ["\n".join(lines).replace("does not continue the same training", "draws other random numbers")]
    raise HealthCheckError("\n".join(lines))


def _weights_differ(found: dict) -> bool:
    return any(_kind(name, straight) == "weights" for name, (_, straight, _) in found.items())


def classify(restored: dict, optimizer=None) -> list[tuple[str, str]]:
    """(kind, description) of each kind of state that differs right after the restore."""
    groups: dict[str, list[str]] = {}
    for name, (_, straight, _) in restored.items():
        groups.setdefault(_kind(name, straight), []).append(name)
    found = []
    for kind in ("iterations", "slots", "rng", "weights", "model state"):
        names = groups.get(kind)
        if not names:
            continue
        if kind == "iterations":
            _, straight, resumed = restored[names[0]]
            schedule = _schedule_name(optimizer)
            text = f"iteration counter ({names[0]}: {_scalar(straight)} straight, {_scalar(resumed)} restored)"
            if schedule:
                text = f"learning-rate schedule step ({schedule} is read at optimizer.iterations): {text}"
                text += f"; {_rates(optimizer, straight, resumed)}"
            found.append((kind, text))
        elif kind == "slots":
            found.append((kind, f"optimizer slots ({len(names)} variables, e.g. {_example(restored, names)})"))
        elif kind == "rng":
            found.append((kind, f"dropout/RNG state ({_example(restored, names)}, {_values(restored, names[0])})"))
        else:
            found.append((kind, f"{kind} ({len(names)} variables, e.g. {_example(restored, names)})"))
    if "slots" in groups and "iterations" in groups:
        found[0:2] = [("optimizer", "optimizer slots/iteration counter missing: " + "; ".join(t for _, t in found[:2]))]
    return found


def _kind(name: str, value=None) -> str:
    low = name.lower()
    if name.startswith("optimizer/"):
        return "iterations" if "iteration" in low else "slots"
    # An integer variable of a model is a counter or a generator's state: what keys its random draws.
    integral = value is not None and np.issubdtype(np.asarray(value).dtype, np.integer)
    if integral or any(word in low for word in ("seed", "dropout", "rng", "random")):
        return "rng"
    if any(word in low for word in ("moving", "count", "mean", "variance")):
        return "model state"
    return "weights"


def _schedule_name(optimizer) -> str | None:
    rate = getattr(getattr(optimizer, "inner_optimizer", None) or optimizer, "learning_rate", None)
    if rate is not None and callable(rate) and not hasattr(rate, "numpy"):
        return type(rate).__name__
    rate = getattr(optimizer, "_learning_rate", None)  # Keras 3 keeps the schedule here
    return type(rate).__name__ if rate is not None and callable(rate) and hasattr(rate, "get_config") else None


def _rates(optimizer, straight, resumed) -> str:
    schedule = getattr(optimizer, "_learning_rate", None)
    if schedule is None or not callable(schedule):
        schedule = optimizer.learning_rate
    try:
        right, wrong = float(schedule(int(_scalar(straight)))), float(schedule(int(_scalar(resumed))))
    except (TypeError, ValueError):
        return "the schedule restarts"
    return f"the next step uses learning rate {wrong:.4g} instead of {right:.4g}"


def _values(found: dict, name: str) -> str:
    """The two values where they differ most (a seed state's first element may agree where another does not: a
    seventh user read "413654000 straight, 413654000 restored" beside a difference of 5)."""
    _, straight, resumed = found[name]
    if straight is None or resumed is None or np.size(straight) != np.size(resumed) or np.size(straight) < 2:
        return f"{_scalar(straight)} straight, {_scalar(resumed)} restored"
    a, b = np.asarray(straight).reshape(-1), np.asarray(resumed).reshape(-1)
    at = int(np.argmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return f"{a[at]} straight, {b[at]} restored (element {at} of {a.size})"


def _scalar(value) -> str:
    return "absent" if value is None else str(np.asarray(value).reshape(-1)[0])


def _example(found: dict, names: list[str], shown: int = 2) -> str:
    ordered = sorted(names, key=lambda n: -found[n][0])
    return ", ".join(f"{n.split('/', 1)[1]} max |difference| {found[n][0]:.3g}" for n in ordered[:shown])


def _worst(found: dict, shown: int = 3) -> str:
    weights = [n for n in found if _kind(n, found[n][1]) == "weights"] or list(found)
    ordered = sorted(weights, key=lambda n: -found[n][0])
    parts = []
    for name in ordered[:shown]:
        diff, straight, _ = found[name]
        scale = float(np.max(np.abs(straight))) if straight is not None and straight.size else 0.0
        parts.append(f"{name} max |difference| {diff:.3g} (largest |value| {scale:.3g})")
    more = len(weights) - shown
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def fix_line(kinds: list[str], optimizer=None) -> str:
    owner = "model.optimizer" if optimizer is not None and hasattr(optimizer, "get_config") else "optimizer"
    if {"optimizer", "slots"} & set(kinds):
        return (
            f"save the optimizer too: tf.train.Checkpoint(model=model, optimizer={owner}) (or model.save(...keras) "
            "for a compiled Keras model), and restore both before the next step"
        )
    if "iterations" in kinds:
        readers = "its learning-rate schedule" if _schedule_name(optimizer) else "Adam's bias correction"
        return (
            f"save {owner}.iterations with the slots (tf.train.Checkpoint(model=model, optimizer={owner}) saves "
            f"both): {readers} reads it"
        )
    if "rng" in kinds:
        return "save the RNG state with the model: keep it in variables the checkpoint tracks (the model's own)"
    if kinds:
        return "save every variable of the model (model.variables, not only trainable_variables) and its optimizer"
    return "keep the randomness in tracked state (a tf.random.Generator or a seed counter variable on the model)"


# ------------------------------------------------------------------------------------------- in pytest


class CannotResume(Exception):  # noqa: N818  (a reason to skip, not an error)
    """The check cannot run on this model (its optimizer is out of reach, its .keras file cannot be loaded)."""


def resume_asked(config) -> bool:
    """``--health-resume``, ``--health-resume-with``, or a ``-k`` expression naming resume."""
    keyword = config.getoption("keyword", "") or ""
    return bool(config.getoption("health_resume") or config.getoption("health_resume_with") or "resume" in keyword)


def resume_config(config):
    """The run's settings (model, train step, seed, batch size) in the first grid cell: CPU, graph mode."""
    from training_health.probe.training_probe import ProbeConfig
    from training_health.run_config import grid_inits, model_spec

    return ProbeConfig(
        initializer=grid_inits(config)[0],
        seed=config.getoption("health_seed"),
        device="cpu",
        mode="graph",
        steps=sum(RESUME_STEPS),
        batch_size=config.getoption("health_batch_size"),
        model=model_spec(config),
        train_step=config.getoption("health_train_step"),
        data_spec=config.getoption("health_data"),
    )


def method_from_option(config) -> SaveMethod | None:
    spec = config.getoption("health_resume_with")
    if not spec:
        return None
    save, restore = resolve_resume_with(spec)
    return own_method(resume_config(config), save, restore, f"{RESUME_WITH_OPTION} {spec}")


def context(config, result: ResumeResult) -> str:
    """The run's context line with the recipe the resume runs trained with (not the suite's default rate)."""
    return dataclasses.replace(config, recipe=result.recipe).context()
