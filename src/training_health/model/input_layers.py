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
        if type(layer).__name__ in SCALING_LAYERS + INDEX_LAYERS:
            return f"{layer.name} ({type(layer).__name__})"
        if any("kernel" in w.name or "embeddings" in w.name for w in getattr(layer, "weights", [])):
            return None
    return None
