"""The model's input/output contract, checked once, before any training, on one batch of the run's data.

A factory given as ``--health-model MODULE:FUNCTION`` must:
  * be callable as ``FUNCTION(initializer: str, seed: int)``: ``initializer`` is ``"default"`` unless
    ``--health-inits`` names others; ``seed`` is ``--health-seed`` (0 by default);
  * return a Keras model or a ``tf.Module`` that is callable;
  * map a batch as the data gives it (MNIST: float32 ``[B,28,28,1]`` in [0, 1]; else ``--health-data``'s
    images) called as ``model(images, training=False)`` to ONE tensor of logits ``[B, classes]``, with
    ``classes`` larger than the largest label;
  * return logits, not probabilities, unless it is compiled with a loss that expects probabilities
    (``from_logits=False``): the suite's own recipe applies softmax cross-entropy itself.

Each violation is a :class:`ContractError` whose message names the option, the factory and what to do;
the plugin turns it into one ``pytest.UsageError`` per session (exit status 4).
"""

from __future__ import annotations

import numpy as np

from training_health.data.user_data import first_line
from training_health.errors import UsageError
from training_health.model.user_model import ModelSpecError, resolve_factory

CONTRACT_BATCH = 16  # examples the model is called on; enough that logits cannot pass for probabilities by chance
FACTORY_CONTRACT = (
    "a model factory is FUNCTION(initializer: str, seed: int) returning a Keras model or a callable tf.Module "
    "(initializer is 'default' unless --health-inits names others)"
)
PROBABILITY_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")


class ContractError(UsageError):
    """The model breaks the input/output contract; the message names the option and what to do."""


def check_model_contract(spec: str, initializer: str, seed: int, data, option: str = "--health-model"):
    """Build the model from ``spec`` and call it on a batch of ``data``; returns the (now built) model."""
    where = f"{option} {spec}"
    try:
        factory = resolve_factory(spec, option)
    except ModelSpecError as err:
        raise ContractError(f"{err}; {FACTORY_CONTRACT}") from err
    model = _build(factory, where, initializer, seed)
    images = data.to_model_input(data.train_images[:CONTRACT_BATCH])
    outputs = _call(model, images, data, where)
    _check_logits(model, outputs, int(images.shape[0]), data, where)
    if not getattr(model, "variables", None):
        raise ContractError(
            f"{where}: the model has no variables, even after a call on a batch {data.batch_description()}: "
            "nothing to check. Return the model whose weights your training updates."
        )
    return model


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


def _call(model, images, data, where: str):
    declared = declared_input_shape(model)
    given = [int(d) for d in images.shape[1:]]
    if declared is not None and not _shapes_match(declared, given):
        raise ContractError(_input_mismatch(where, declared, data))
    try:
        return model(images, training=False)
    except Exception as err:  # shapes or dtypes the model cannot take
        raise ContractError(
            f"{where}: calling the model on a batch {data.batch_description()} from {data.source} raised "
            f"{type(err).__name__}: {first_line(err)}. {_input_hint(data)}"
        ) from err


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


def _input_mismatch(where: str, declared: list, data) -> str:
    expects = "[B," + ",".join("?" if d is None else str(d) for d in declared) + "]"
    batches = "MNIST batches" if data.is_mnist else f"{data.source} batches"
    return f"{where}: the model expects {expects} but {batches} are {data.batch_description()}. {_input_hint(data)}"


def _input_hint(data) -> str:
    if data.is_mnist:
        return (
            "Give --health-data MODULE:FUNCTION returning (images, labels) shaped for the model, "
            "or reshape in the model (e.g. a Reshape or Flatten layer first)."
        )
    return "Make --health-data return images shaped for the model, or reshape in the model."


def _check_logits(model, outputs, batch: int, data, where: str) -> None:
    import tensorflow as tf

    returns = f"{where}: model(images) returns"
    if isinstance(outputs, tuple | list | dict):
        raise ContractError(
            f"{returns} {_describe(outputs)}; it must return one tensor of logits [B, classes]. "
            "Return only the logits (e.g. a single-output model)."
        )
    try:
        logits = np.asarray(tf.convert_to_tensor(outputs), dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ContractError(f"{returns} {_describe(outputs)}, not a tensor of logits [B, classes]") from err
    classes = data.num_classes
    if logits.ndim != 2 or logits.shape[0] != batch:
        raise ContractError(
            f"{returns} shape {list(logits.shape)} for a batch of {batch}; it must return logits [B, classes] "
            f"= [{batch}, {classes}] here"
        )
    if logits.shape[1] < classes:
        raise ContractError(
            f"{returns} logits [{batch}, {logits.shape[1]}] but the labels of {data.source} go up to "
            f"{classes - 1}: the last layer needs {classes} outputs, one per class"
        )
    if looks_like_probabilities(logits) and not expects_probabilities(model):
        raise ContractError(
            f"{returns} probabilities (every row in [0, 1] and summing to 1; softmax as the last activation?): "
            "return logits (no softmax at the end). The suite applies softmax cross-entropy itself; "
            "a compiled model whose loss has from_logits=False may return probabilities."
        )


def looks_like_probabilities(outputs: np.ndarray) -> bool:
    in_unit_interval = np.all((outputs >= 0) & (outputs <= 1))
    return bool(in_unit_interval and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def expects_probabilities(model) -> bool:
    """A compiled Keras model whose crossentropy loss reads probabilities (``from_logits=False``)."""
    loss = getattr(model, "loss", None)
    if loss is None or getattr(model, "optimizer", None) is None:
        return False
    if isinstance(loss, str):
        return loss in PROBABILITY_LOSSES
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    if "from_logits" in config:
        return not config["from_logits"]
    return getattr(loss, "__name__", "") in PROBABILITY_LOSSES  # a bare loss function: from_logits=False


def _describe(value) -> str:
    if isinstance(value, str):
        return f"a str ({value[:40]!r})"
    if isinstance(value, tuple | list | dict):
        return f"a {type(value).__name__} of {len(value)} outputs"
    return f"a {type(value).__module__}.{type(value).__qualname__}"
