"""Post-ReLU activations of any model, for the dead-unit measurement.

A unit is dead when its ReLU outputs 0 on every probe image: its incoming gradient is then exactly 0
and it cannot recover. Where the activations come from:

- a model with ``relu_activations(images) -> {layer: tensor}`` (the documented opt-in for a
  ``tf.Module``) provides them itself, or with ``logits_and_relu_activations(images) -> (logits,
  {layer: tensor})`` (the seed network) together with its logits from one forward pass;
- a Keras model needs no help: every layer whose output is a ReLU of its pre-activation is found,
  Dense/Conv (any layer with ``activation`` relu or relu6) and ``ReLU`` layers without a negative
  slope, and their outputs are captured during one inference call.

Keys are the layer names the parameters use ("conv" for "conv/kernel"), so the per-layer table
and the per-layer test line up with the weights. A standalone ``ReLU`` layer in a ``Sequential``
model counts for the weighted layer before it (conv -> BatchNorm "bn" -> ReLU: key "bn"); elsewhere
it keeps its own name (checked by ``assert_units_alive`` over all layers, not by a layer's test).
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
    """Dense/Conv/Activation layers with a relu-family activation, and ReLU layers that can output 0."""
    if type(layer).__name__ == "ReLU":
        return not float(getattr(layer, "negative_slope", 0.0) or 0.0) and getattr(layer, "threshold", 0.0) == 0.0
    return _activation_name(layer) in RELU_FAMILY


def relu_layers(model) -> dict:
    """{layer key: layer} for the ReLU-family layers of a Keras model (the model itself excluded)."""
    names = dict(zip(map(id, model.variables), variable_names(model, model.variables)))
    canonical = layer_names(model)  # automatic names as a fresh process gives them (model/variables.py)

    def key_of(layer):
        weights = [w for w in layer.weights if id(w) in names]
        return layer_of(names[id(weights[0])]) if weights else None

    owner = {}  # a Sequential's standalone ReLU -> the weighted layer before it
    if type(model).__name__ == "Sequential":
        previous = None
        for layer in model.layers:
            if key_of(layer):
                previous = layer
            elif type(layer).__name__ == "ReLU" and previous is not None and not is_relu_layer(previous):
                owner[id(layer)] = key_of(previous)
    found = {}
    for layer in _all_layers(model)[1:]:
        if is_relu_layer(layer):
            found[key_of(layer) or owner.get(id(layer), canonical[id(layer)])] = layer
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
    """The fraction of units (last axis: channels) that are zero on every image."""
    alive = tf.reduce_any(tf.reshape(activations > 0, [-1, activations.shape[-1]]), axis=0)
    return 1.0 - tf.reduce_mean(tf.cast(alive, tf.float32))
