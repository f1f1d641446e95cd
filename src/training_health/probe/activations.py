"""Post-ReLU activations of any model, for the dead-unit measurement.

A unit is dead when its ReLU outputs 0 on every probe image: its incoming gradient is then exactly 0
and it cannot recover. Where the activations come from:

- a model with ``relu_activations(images) -> {layer: tensor}`` (the documented opt-in for a
  ``tf.Module``) provides them itself, or with ``logits_and_relu_activations(images) -> (logits,
  {layer: tensor})`` (the seed network) together with its logits from one forward pass;
- a Keras model needs no help: every layer or operation whose output is a ReLU of its input is found,
  Dense/Conv/``Activation`` layers whose ``activation`` is relu or relu6 (by name, ``"relu"``,
  ``keras.activations.relu`` or ``tf.nn.relu``), ``ReLU`` layers without a negative slope, and in a
  Keras 3 functional model the ``keras.activations.relu(x)`` operations between layers; their outputs
  are captured during one inference call.

Leaky variants (``LeakyReLU``, ``ReLU(negative_slope>0)``, ``leaky_relu``, elu, gelu, ...) are not
measured: a leaky unit passes a gradient for every input, so it is never dead.

Keys are the layer names the parameters use ("conv" for "conv/kernel"), so the per-layer table
and the per-layer test line up with the weights. A weightless ReLU (a ``ReLU`` or ``Activation`` layer,
a functional relu operation) counts for the nearest weighted layer before it, through other weightless
layers (conv -> BatchNorm "bn" -> ReLU: key "bn"; Dense "d" -> Activation("relu"): key "d"), found from
a ``Sequential``'s order or a functional model's graph; where there is none (a subclassed model's own
layer calls) it keeps its own name, and the run check ``relu_units_alive`` checks it.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from training_health.model.user_model import layer_of
from training_health.model.variables import _all_layers, is_keras_model, layer_names, variable_names

RELU_FAMILY = ("relu", "relu6")


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


def is_relu_layer(layer) -> bool:
    """Dense/Conv/Activation layers with a relu-family activation, and ReLU layers/ops that can output 0."""
    if type(layer).__name__ in ("ReLU", "Relu", "Relu6"):
        return not float(getattr(layer, "negative_slope", 0.0) or 0.0) and getattr(layer, "threshold", 0.0) == 0.0
    return _activation_name(layer) in RELU_FAMILY


def _has_weights(layer) -> bool:
    return bool(getattr(layer, "weights", None))


def _parents(layer) -> list:
    """The layers/operations feeding ``layer`` in a functional graph (Keras 3 ``parent_nodes``, Keras 2
    ``inbound_layers``); empty where the model has no graph."""
    parents = []
    for node in getattr(layer, "_inbound_nodes", None) or []:
        for parent in getattr(node, "parent_nodes", None) or []:
            parents.append(getattr(parent, "operation", None) or getattr(parent, "layer", None))  # Keras 3 / 2
        inbound = getattr(node, "inbound_layers", None)
        parents += list(inbound) if isinstance(inbound, (list, tuple)) else [inbound] if inbound is not None else []
    return [p for p in parents if p is not None and type(p).__name__ != "InputLayer"]


def _upstream_weighted(layer):
    """The nearest weighted layer before a weightless one, through single-input weightless layers."""
    seen = set()
    while id(layer) not in seen:
        seen.add(id(layer))
        parents = _parents(layer)
        if len(parents) != 1:
            return None
        layer = parents[0]
        if _has_weights(layer):
            return layer
    return None


def relu_layers(model) -> dict:
    """{layer key: layer} for the ReLU-family layers of a Keras model (the model itself excluded)."""
    names = dict(zip(map(id, model.variables), variable_names(model, model.variables)))
    canonical = layer_names(model)  # automatic names as a fresh process gives them (model/variables.py)

    def key_of(layer):
        weights = [w for w in getattr(layer, "weights", None) or [] if id(w) in names]
        return layer_of(names[id(weights[0])]) if weights else None

    owner = {}  # a weightless ReLU -> the weighted layer before it
    if type(model).__name__ == "Sequential":
        previous = None
        for layer in model.layers:
            if key_of(layer):
                previous = layer
            elif is_relu_layer(layer) and previous is not None and not is_relu_layer(previous):
                owner[id(layer)] = key_of(previous)
    candidates = _all_layers(model)[1:]
    known = {id(layer) for layer in candidates}
    candidates += [op for op in getattr(model, "operations", None) or [] if id(op) not in known]  # Keras 3 ops
    found = {}
    for layer in candidates:
        if not is_relu_layer(layer):
            continue
        key = key_of(layer) or owner.get(id(layer))
        if key is None:
            upstream = _upstream_weighted(layer)
            key = key_of(upstream) if upstream is not None and not is_relu_layer(upstream) else None
        key = key or canonical.get(id(layer), layer.name)
        if key not in found:  # a second ReLU on the same layer's output measures the same units
            found[key] = layer
    return found


@contextlib.contextmanager
def _capturing_outputs(layers: dict, captured: dict):
    """Each layer's ``call`` records its output under the layer's key while the context is open."""

    def recorder(key, call):
        def call_and_record(*args, **kwargs):
            output = call(*args, **kwargs)
            captured[key] = output
            return output

        return call_and_record

    try:
        for key, layer in layers.items():
            layer.call = recorder(key, layer.call)
        yield captured
    finally:
        for layer in layers.values():
            with contextlib.suppress(AttributeError):
                del layer.call  # the class's call shows through again


def logits_and_relu_activations(model, images) -> tuple[tf.Tensor, dict]:
    """Logits and {layer: post-ReLU activations [B, ..., units]} on ``images``, in inference mode.

    One forward pass where the model allows it (a Keras model, or a module with
    ``logits_and_relu_activations``); a module with only ``relu_activations`` takes two.
    """
    if hasattr(model, "logits_and_relu_activations"):
        logits, activations = model.logits_and_relu_activations(images)
        return logits, dict(activations)
    if hasattr(model, "relu_activations"):
        return model(images, training=False), dict(model.relu_activations(images))
    layers = relu_layers(model) if is_keras_model(model) else {}
    with _capturing_outputs(layers, {}) as captured:
        logits = model(images, training=False)
    return logits, captured


def dead_fraction(activations: tf.Tensor) -> tf.Tensor:
    """The fraction of units (last axis: channels) that are zero on every image.

    A unit is alive when some output is > 0, i.e. when its largest output is: one reduction over the
    activations instead of a comparison and a reduction (conv1's 12.8M outputs on the probe: 13 ms -> 5 ms,
    TF 2.21, 2-core CPU). ``reduce_max`` propagates NaN, where the comparison counts a NaN as not > 0: a unit
    whose largest output is NaN is decided by the comparison, so the fraction is the same either way.
    """
    flat = tf.reshape(activations, [-1, activations.shape[-1]])
    largest = tf.reduce_max(flat, axis=0)
    alive = tf.cond(
        tf.reduce_any(tf.math.is_nan(largest)),
        lambda: tf.reduce_any(flat > 0, axis=0),
        lambda: largest > 0,
    )
    return 1.0 - tf.reduce_mean(tf.cast(alive, tf.float32))
