"""Whether a model brings its inputs to scale itself: read by the input_scale check and recorded by the probe
(``Trajectory.input_scaled_by``) for the diagnosis. No TensorFlow import: it reads the layers' class names."""

from __future__ import annotations

# Layers that bring the inputs to scale inside the model (Keras' Rescaling(1/255), a Normalization adapted
# to the data): raw pixels are then what the model expects.
SCALING_LAYERS = ("Rescaling", "Normalization", "BatchNormalization", "LayerNormalization")
# Layers that read their inputs as indices (token or category ids), not as magnitudes: their scale means nothing.
INDEX_LAYERS = ("Embedding", "CategoryEncoding", "IntegerLookup", "StringLookup", "Hashing", "TextVectorization")


def scales_its_inputs(model) -> str | None:
    """The name of a scaling layer (or a layer reading ids) the model applies before its first weighted layer."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "Normalization" and _never_adapted(layer):
            continue  # mean 0, variance 1: it passes raw pixels through unchanged
        if type(layer).__name__ in SCALING_LAYERS + INDEX_LAYERS:
            return f"{layer.name} ({type(layer).__name__})"
        if any("kernel" in w.name or "embeddings" in w.name for w in getattr(layer, "weights", [])):
            return None
    return None


def never_adapted_normalization(model) -> str | None:
    """The name of a ``Normalization`` layer before the first weighted layer that was never adapted, or None."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "Normalization" and _never_adapted(layer):
            return layer.name
        if any("kernel" in w.name or "embeddings" in w.name for w in getattr(layer, "weights", [])):
            return None
    return None


def _never_adapted(layer) -> bool:
    """A Keras ``Normalization`` given no mean and never ``adapt()``-ed: its mean is 0 and its variance 1, so it
    scales nothing (a user's model fed raw 0..255 pixels through one was told its output was scaled)."""
    if getattr(layer, "input_mean", None) is not None:  # Normalization(mean=..., variance=...)
        return False
    if getattr(layer, "is_adapted", False):  # Keras 2
        return False
    import numpy as np

    mean, variance = getattr(layer, "mean", None), getattr(layer, "variance", None)
    if mean is None or variance is None:
        return False  # not built: nothing to read
    return bool(np.all(np.asarray(mean) == 0) and np.all(np.asarray(variance) == 1))


LEADING_SCALERS = ("Rescaling", "Normalization")


def as_the_first_layer_sees(model, images):
    """``images`` after the model's leading Rescaling/Normalization layers (the first ones of ``model.layers``, as
    a Sequential or a one-input functional model applies them), or None when the model has none."""
    x, applied = images, False
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if type(layer).__name__ not in LEADING_SCALERS:
            break
        x, applied = layer(x), True
    return x if applied else None
