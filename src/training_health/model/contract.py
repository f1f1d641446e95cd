"""The model's input/output contract, checked once, before any training, on one batch of the run's data.

A factory given as ``--health-model MODULE:FUNCTION`` must:
  * be callable as ``FUNCTION(initializer: str, seed: int)``: ``initializer`` is ``"default"`` unless
    ``--health-inits`` names others; ``seed`` is ``--health-seed`` (0 by default);
  * return a Keras model or a ``tf.Module`` that is callable;
  * map a batch as the data gives it (MNIST: float32 ``[B,28,28,1]`` in [0, 1]; else ``--health-data``'s
    images) called as ``model(images, training=False)`` to ONE tensor ``[B, outputs]`` that fits its loss
    (``model/losses.py``, resolved once from the compiled loss whatever its spelling):
      - softmax cross-entropy (sparse or categorical, or the suite's recipe for an uncompiled model):
        ``outputs`` > the largest class id (or = the width of one-hot labels); class ids must be
        non-negative integers;
      - binary cross-entropy: one output per label column (``Dense(1)`` for labels ``[N]``), labels in [0, 1];
      - regression (MSE, MAE, ...): one output per target column;
  * an uncompiled model returns logits, not probabilities: the suite's own recipe applies softmax
    cross-entropy itself. A compiled model is trained as ``fit`` would, whatever it returns; a softmax
    output read by a ``from_logits=True`` loss is a finding of the run (``checks/data_checks.py``).

Each violation is a :class:`ContractError` whose message names the option, the factory and what to do;
the plugin turns it into one ``pytest.UsageError`` per session (exit status 4).
"""

from __future__ import annotations

import numpy as np

from training_health.data.user_data import first_line
from training_health.errors import UsageError
from training_health.model import losses
from training_health.model.user_model import ModelSpecError, resolve_factory

CONTRACT_BATCH = 16  # examples the model is called on; enough that logits cannot pass for probabilities by chance
FACTORY_CONTRACT = (
    "a model factory is FUNCTION(initializer: str, seed: int) returning a Keras model or a callable tf.Module "
    "(initializer is 'default' unless --health-inits names others)"
)


class ContractError(UsageError):
    """The model breaks the input/output contract; the message names the option and what to do."""


def check_model_contract(
    spec: str,
    initializer: str,
    seed: int,
    data,
    option: str = "--health-model",
    train_step: str | None = None,
    data_option: str | None = None,
):
    """Build the model from ``spec`` and call it on a batch of ``data``; returns the (now built) model.

    ``data_option`` (``--health-data``, calibrate's ``--data``): the option that gave ``data``, named by the
    messages about its labels (the user's data function is what to change there, not the model)."""
    where = f"{option} {spec}"
    try:
        factory = resolve_factory(spec, option)
    except ModelSpecError as err:
        raise ContractError(f"{err}; {FACTORY_CONTRACT}") from err
    model = _build(factory, where, initializer, seed)
    check_built_model(model, data, where, train_step, data_option)
    return model


def check_built_model(model, data, where: str, train_step: str | None = None, data_option: str | None = None):
    """The contract of a model already built (the ``health_check`` fixture's, or a factory's): one call on a
    batch of ``data``, its outputs against the loss, the labels against the head, and variables to check."""
    _check_own_training(model, where, train_step)
    images = data.to_model_input(data.train_images[:CONTRACT_BATCH])
    outputs = _call(model, images, data, where, data_option or "--health-data")
    kind = losses.loss_kind(model, train_step)
    _check_outputs(kind, outputs, int(images.shape[0]), data, where)
    _check_labels(kind, data, _labels_from(data, data_option, where))
    if not getattr(model, "variables", None):
        raise ContractError(
            f"{where}: the model has no variables, even after a call on a batch {data.batch_description()}: "
            "nothing to check. Return the model whose weights your training updates."
        )


KERAS_PACKAGES = ("keras", "tf_keras", "tensorflow")


def _check_own_training(model, where: str, train_step) -> None:
    """A compiled Keras model is trained with its compiled loss and optimizer, one instrumented step at a time; a
    ``train_step`` of its own (the Keras guide "Customizing what happens in fit()") would be skipped, silently
    (a sixth user's step updating one layer passed 12 of 12), or fail inside Keras ("No loss to compute" when the
    loss lives in the step). Refused before training, as a model compiled without a loss is."""
    from training_health.model.keras_training import is_compiled
    from training_health.settings import setting

    if train_step or not hasattr(model, "train_step"):
        return
    owner = next((cls for cls in type(model).__mro__ if "train_step" in vars(cls)), None)
    step_the_run_takes = (
        f"give that step as {setting('train-step', 'MODULE:FUNCTION')} (FUNCTION(model, images, labels): one "
        "step on this batch, returning this batch's loss)"
    )
    if owner is not None and owner.__module__.split(".")[0] not in KERAS_PACKAGES:
        raise ContractError(
            f"{where}: {type(model).__name__} overrides train_step ({owner.__module__}.{owner.__qualname__}"
            ".train_step), which fit() would run; the suite trains a compiled model with its compiled loss and "
            f"optimizer, one measured step at a time, and would skip yours: {step_the_run_takes}"
        )
    if is_compiled(model) and not getattr(model, "loss", None):  # Keras 3: None; Keras 2: an empty DictWrapper
        raise ContractError(
            f"{where}: the model is compiled without a loss (compile(optimizer=...) alone): there is nothing to "
            f"train it on. Compile it with its loss (compile(optimizer=..., loss=...)), or {step_the_run_takes}"
        )


def _build(factory, where: str, initializer: str, seed: int):
    import tensorflow as tf

    try:
        model = factory(initializer, seed)
    except Exception as err:  # the user's code: report it with the call that raised it
        raise ContractError(
            f"{where}: FUNCTION({initializer!r}, {seed}) raised {type(err).__name__}: {first_line(err)}; "
            f"{FACTORY_CONTRACT}"
        ) from err
    if not (isinstance(model, tf.Module | tf.keras.Model) and callable(model)):
        raise ContractError(f"{where} returned {_describe(model)}; {FACTORY_CONTRACT}")
    return model


def _call(model, images, data, where: str, data_option: str):
    several = _several_inputs(model)
    if several:
        raise ContractError(
            f"{where}: the model has {len(several)} inputs ({', '.join(several)}): the checks train models with one "
            "input, images [N, ...]; several inputs are not supported yet. Check the branch that reads the images "
            "as a model of its own, or join the inputs into one"
        )
    declared = declared_input_shape(model)
    given = [int(d) for d in images.shape[1:]]
    if declared is not None and not _shapes_match(declared, given):
        raise ContractError(_input_mismatch(where, declared, data, data_option))
    try:
        return model(images, training=False)
    except Exception as err:  # shapes or dtypes the model cannot take
        from training_health.probe.devices import is_onednn_float16_conv_failure, onednn_float16_conv_hint

        if is_onednn_float16_conv_failure(err):  # the CPU, not the input: reshaping would not help
            raise ContractError(
                f"{where}: calling the model on a batch raised {type(err).__name__}: {onednn_float16_conv_hint()}"
            ) from err
        raise ContractError(
            f"{where}: calling the model on a batch {data.batch_description()} from {data.source} raised "
            f"{type(err).__name__}: {first_line(err)}. {_input_hint(data, data_option)}"
        ) from err


def _several_inputs(model) -> list[str]:
    """The input names of a Keras model with more than one input (the functional guide's multi-input models)."""
    try:
        inputs = getattr(model, "inputs", None) or []
    except (AttributeError, ValueError):  # subclassed Keras models without a known input
        return []
    if len(inputs) < 2:
        return []
    named = [layer.name for layer in getattr(model, "layers", []) if type(layer).__name__ == "InputLayer"]
    return named if len(named) == len(inputs) else [str(getattr(i, "name", i)).split(":")[0] for i in inputs]


def declared_input_shape(model) -> list | None:
    """The per-example input shape a Keras model declares (``Input(...)``), or None when it declares none."""
    try:
        inputs = getattr(model, "inputs", None)
    except (AttributeError, ValueError):  # subclassed Keras models without a known input
        return None
    if not inputs or len(inputs) != 1:
        return None
    shape = getattr(inputs[0], "shape", None)
    return None if shape is None else [None if d is None else int(d) for d in tuple(shape)[1:]]


def _shapes_match(declared: list, given: list) -> bool:
    return len(declared) == len(given) and all(d is None or d == g for d, g in zip(declared, given))


def _input_mismatch(where: str, declared: list, data, data_option: str) -> str:
    expects = "[B," + ",".join("?" if d is None else str(d) for d in declared) + "]"
    batches = "MNIST batches" if data.is_mnist else f"{data.source} batches"
    hint = _input_hint(data, data_option)
    return f"{where}: the model expects {expects} but {batches} are {data.batch_description()}. {hint}"


def _input_hint(data, data_option: str) -> str:
    if data.is_mnist:
        return (
            f"Give {data_option} MODULE:FUNCTION returning (images, labels) shaped for the model, "
            "or reshape in the model (e.g. a Reshape or Flatten layer first)."
        )
    return f"Make {data_option} return images shaped for the model, or reshape in the model."


def _check_outputs(kind, outputs, batch: int, data, where: str) -> None:
    import tensorflow as tf

    returns = f"{where}: model(images) returns"
    if isinstance(outputs, tuple | list | dict):
        raise ContractError(
            f"{returns} {_describe(outputs)}; it must return one tensor [B, outputs]. "
            "Return only the output the loss reads (e.g. a single-output model)."
        )
    try:
        values = np.asarray(tf.convert_to_tensor(outputs), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ContractError(f"{returns} {_describe(outputs)}, not a tensor [B, outputs]") from err
    if values.ndim != 2 or values.shape[0] != batch:
        raise ContractError(
            f"{returns} shape {list(values.shape)} for a batch of {batch}; it must return [B, outputs] "
            f"= [{batch}, {_wanted_outputs(kind, data)}] here"
        )
    width = int(values.shape[1])
    if kind.classifies:
        _check_class_outputs(kind, values, batch, data, returns)
    elif kind.family in (losses.BINARY, losses.REGRESSION) and width != data.label_columns:
        labels = "[N]" if data.train_labels.ndim == 1 else f"[N, {data.label_columns}]"
        raise ContractError(
            f"{returns} [{batch}, {width}] but the labels of {data.source} are {labels} ({data.label_encoding}) "
            f"and {kind.name} compares them output by output: the last layer needs {data.label_columns} "
            f"output{'s' if data.label_columns > 1 else ''}"
        )


def _wanted_outputs(kind, data) -> str:
    if kind.classifies:
        return str(data.num_classes) if data.label_encoding in ("class ids", "one-hot") else "classes"
    return str(data.label_columns) if kind.family in (losses.BINARY, losses.REGRESSION) else "outputs"


def _check_class_outputs(kind, logits: np.ndarray, batch: int, data, returns: str) -> None:
    width = int(logits.shape[1])
    if data.train_labels.ndim == 2 and width != data.label_columns:
        raise ContractError(
            f"{returns} [{batch}, {width}] but the labels of {data.source} are {data.label_encoding} rows over "
            f"{data.label_columns} classes: the last layer needs {data.label_columns} outputs, one per class"
        )
    if kind.source != "compiled" and looks_like_probabilities(logits):
        raise ContractError(
            f"{returns} probabilities (every row in [0, 1] and summing to 1; softmax as the last activation?): "
            "return logits (no softmax at the end). The suite applies softmax cross-entropy itself; "
            "a compiled model whose loss has from_logits=False may return probabilities."
        )
    if data.label_encoding != "class ids":
        return  # one-hot rows checked above; other forms are reported by _check_labels
    classes = data.num_classes
    if width < classes:
        # One output for two classes: a yes/no label, which a categorical loss cannot read (a fifth user's
        # imbalanced-data MLP compiled with categorical_crossentropy was told only to add an output).
        binary = (
            f"; or, for a yes/no label and one sigmoid output, compile loss='binary_crossentropy' ({kind.name} "
            "needs one output per class)"
            if width == 1 and classes == 2
            else ""
        )
        raise ContractError(
            f"{returns} outputs [{batch}, {width}] but the labels of {data.source} go up to "
            f"{classes - 1}: the last layer needs {classes} outputs, one per class{binary}"
            f"{_counted_from_one(data, width)}"
        )


def _counted_from_one(data, width: int) -> str:
    """Labels 1..C for C outputs read as C + 1 classes: say so when no label is 0 and one more output would do."""
    if int(np.min(data.train_labels)) != 1 or width != data.num_classes - 1:
        return ""
    return (
        f"; but no label is 0: if the labels count the {width} classes from 1 (1..{width}), subtract 1 "
        "(class ids start at 0)"
    )


def _labels_from(data, data_option: str | None, where: str) -> str:
    """Who gave the labels: the data option and its function for the user's data, else the model's option."""
    if data_option and data.source.endswith("()"):
        return f"{data_option} {data.source[:-2]} (labels for the loss of {where})"
    return where


def _check_labels(kind, data, where: str) -> None:
    """Labels the loss cannot read: float values where class ids are needed, values outside the head's range."""
    labels, encoding = data.train_labels, data.label_encoding
    seen = f"the labels of {data.source} are {encoding} {list(labels.shape)}"
    if kind.classifies and labels.ndim == 1 and labels.min() < 0:
        raise ContractError(f"{where}: the labels of {data.source} include {labels.min():.4g}; class ids start at 0")
    if kind.classifies and encoding == "float targets" and labels.ndim == 1:
        sample = ", ".join(f"{v:.4g}" for v in np.unique(labels)[:4])
        raise ContractError(
            f"{where}: {seen} with non-integer values ({sample}, ...) in [{labels.min():.4g}, {labels.max():.4g}], "
            f"but {kind.name} needs class ids 0..C-1. Give integer class ids (labels divided by 255 like the "
            "images? keep the labels as they are), or compile a regression loss (e.g. 'mse') for float targets"
        )
    if kind.family == losses.SPARSE and labels.ndim == 2 and encoding != "one-hot":
        raise ContractError(
            f"{where}: {seen}, but {kind.name} reads one class id per example: give class ids [N] or one-hot rows, "
            "or compile binary_crossentropy for several 0/1 labels per example"
        )
    if kind.family == losses.CATEGORICAL and labels.ndim == 2 and not np.allclose(labels.sum(axis=1), 1, atol=1e-3):
        raise ContractError(
            f"{where}: {seen} whose rows do not sum to 1, but {kind.name} reads one class distribution per "
            "example: give one-hot rows (or class ids), or compile binary_crossentropy for multi-label rows"
        )
    if kind.family == losses.BINARY and (labels.min() < 0 or labels.max() > 1):
        raise ContractError(
            f"{where}: {seen} with values in [{labels.min():.4g}, {labels.max():.4g}], but {kind.name} reads "
            "targets in [0, 1] (one 0/1 label per output). Give 0/1 labels (e.g. labels == 0 for 'digit 0 vs "
            "rest'), or compile sparse_categorical_crossentropy with one output per class"
        )


def looks_like_probabilities(outputs: np.ndarray) -> bool:
    in_unit_interval = np.all((outputs >= 0) & (outputs <= 1))
    return bool(in_unit_interval and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def expects_probabilities(model) -> bool:
    """A compiled Keras model whose cross-entropy loss reads probabilities (``from_logits=False``)."""
    return losses.loss_kind(model).expects_probabilities


def _describe(value) -> str:
    if isinstance(value, str):
        return f"a str ({value[:40]!r})"
    if isinstance(value, tuple | list | dict):
        return f"a {type(value).__name__} of {len(value)} outputs"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def known_initializer(name: str) -> bool:
    """Whether Keras (``keras.initializers.get``) or the suite (``model/initializations.py``) knows ``name``."""
    import tensorflow as tf

    from training_health.model.initializations import INITIALIZATIONS

    if name in INITIALIZATIONS:
        return True
    try:
        tf.keras.initializers.get(name)
    except (ValueError, TypeError):
        return False
    return True
