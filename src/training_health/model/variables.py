"""Every variable of the model under test, named and sorted into weights and state.

*Weights* are what the model's layers would train: the variables ``trainable_variables`` lists once
every layer is made trainable (kernels, biases, embeddings, BatchNorm gamma/beta), whether or not a
layer is frozen now. Everything else the model holds is *state* that a training step may or may not
change and that is never flagged: BatchNorm moving statistics, RNG seed states, dropout call counters.
Optimizer slots and step counters belong to the optimizer, not the model, and are not listed at all.

For a plain ``tf.Module`` there is no layer flag to consult: its trainable variables are its weights.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ModelVariables:
    weights: dict  # "layer/param" -> variable, every weight-like variable
    trainable: dict  # "layer/param" -> bool: trained by the model's own trainable_variables now
    state: dict  # "layer/param" -> variable, non-weight state (never flagged)

    @property
    def frozen(self) -> list[str]:
        return [name for name, trains in self.trainable.items() if not trains]


def variable_name(variable) -> str:
    """A readable "layer/param" name: Keras 3 has ``.path``; TF variables have ``.name``."""
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0]


def tf_variable(variable):
    """The ``tf.Variable`` behind a Keras 3 variable (read outside any autocast scope), else itself."""
    import tensorflow as tf  # here, not at import: the plugin imports this module without TensorFlow

    return variable if isinstance(variable, tf.Variable) else variable.value


def _unique_names(variables, prefix: str) -> list[str]:
    names = []
    for variable in variables:
        name = variable_name(variable)
        # Keras numbers its models (sequential, sequential_1, ...): names must not depend on build order.
        name = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        while name in names:  # Keras 2 may repeat short names across layers.
            name += "_"
        names.append(name)
    return names


def _all_layers(model) -> list:
    """The model and every nested layer, parents before children (Keras 2 and 3 both have this)."""
    flatten = getattr(model, "_flatten_layers", None)
    return list(flatten(include_self=True, recursive=True)) if flatten else [model]


def _would_be_trainable(model) -> set[int]:
    """ids of the variables ``trainable_variables`` lists with every layer trainable.

    Keras keeps which variables a frozen layer *would* train only privately (and differently in
    Keras 2 and 3); the public way is to ask with every layer trainable, then restore each flag.
    """
    layers = _all_layers(model)
    flags = [layer.trainable for layer in layers]
    if all(flags):
        return {id(v) for v in model.trainable_variables}
    try:
        for layer in layers:  # each one: Keras 3's Sequential does not pass the flag down
            layer.trainable = True
        return {id(v) for v in model.trainable_variables}
    finally:
        for layer, flag in zip(layers, flags):  # parents first: a parent's setter recurses into children
            layer.trainable = flag


def is_keras_model(model) -> bool:
    return hasattr(model, "_flatten_layers") and hasattr(model, "trainable_weights")


def model_variables(model) -> ModelVariables:
    """Named weights (with their trainable flag now) and state of ``model``.

    The seed network names its own parameters (``model.params``); its other variables are state.
    """
    if hasattr(model, "params") and isinstance(model.params, dict):
        weights = dict(model.params)
        ids = {id(v) for v in weights.values()}
        others = [v for v in model.variables if id(v) not in ids]
        state = dict(zip(_unique_names(others, ""), others))
        return ModelVariables(weights, {n: True for n in weights}, state)
    variables = list({id(v): v for v in model.variables}.values())
    names = _unique_names(variables, f"{getattr(model, 'name', '')}/")
    trainable_now = {id(v) for v in model.trainable_variables}
    weight_ids = _would_be_trainable(model) if is_keras_model(model) else trainable_now
    weights = {n: v for n, v in zip(names, variables) if id(v) in weight_ids}
    state = {n: v for n, v in zip(names, variables) if id(v) not in weight_ids}
    return ModelVariables(weights, {n: id(v) in trainable_now for n, v in weights.items()}, state)
