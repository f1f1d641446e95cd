"""Inputs far from the usual scale: the premise every check tries before a learning-rate cause (issue 16, item 4).

``input_scale`` (data_checks.py) fails on them; the per-layer diagnosis (diagnosis.py) and the loss-curve
checks (loss_curve.py) name them as the cause of what they do to the run, from ``Trajectory.input_rms`` and
``Trajectory.input_scaled_by``. No TensorFlow, no other module of the package: all three import it.
"""

from __future__ import annotations

# Inputs in [0, 1] have RMS ~0.3-0.5 (MNIST: 0.31), standardized inputs ~1; raw 0..255 pixels ~80 (MNIST:
# 78.6 at the model's input). 10 is 10x a standardized input and 7.9x under raw MNIST.
INPUT_RMS_MAX = 10.0
RAW_PIXELS_RMS = 50.0  # above this the inputs read as raw 0..255 pixels (MNIST raw: 78.6-83.5)
# Far below: MNIST divided by 255 twice (the data already in [0, 1], the model's Rescaling(1/255) again) reaches the
# first layer at RMS 0.0012; its loss stayed at ln 10 for 30 steps (a user's convnet, Adam 1e-3). 0.01 is 31x under
# inputs in [0, 1] and 8x over that. Only named as the cause of a run that did not learn, never a check of its own.
INPUT_RMS_MIN = 0.01


def input_scale_fix(pixels: bool, never_adapted: str | None = None) -> str:
    """``never_adapted``: a Normalization layer of the model that was never adapted (it scales nothing)."""
    if never_adapted:
        return (
            f"adapt the model's Normalization layer to the data before training ({never_adapted}.adapt(images)): "
            "never adapted, its mean is 0 and its variance 1, so it passes the inputs through unchanged"
        )
    if pixels:
        return (
            "divide the images by 255 (images.astype('float32') / 255), or put keras.layers.Rescaling(1/255) "
            "first in the model"
        )
    return (
        "standardize the inputs ((x - mean) / std per feature), or put a keras.layers.Normalization adapted to "
        "the data first in the model"
    )


def unscaled_input_cause(traj) -> tuple[str, str] | None:
    """(cause, fix) when the run's inputs were far above the usual scale and the model did not scale them itself
    (a Rescaling or Normalization layer before its first weighted layer), else None."""
    rms = float(getattr(traj, "input_rms", 0.0) or 0.0)
    if not rms > INPUT_RMS_MAX or getattr(traj, "input_scaled_by", None):
        return None
    cause = (
        f"unscaled inputs (RMS {rms:.3g}, bound {INPUT_RMS_MAX:g}: test input_scale): pre-activations and "
        f"gradients ~{rms / 0.31:.0f}x those of inputs in [0, 1], a scale the initialization and the learning rate "
        "were not chosen for; the fix is the input, not the learning rate"
    )
    return cause, input_scale_fix(rms > RAW_PIXELS_RMS, getattr(traj, "never_adapted_normalization", None))


def tiny_input_cause(traj) -> tuple[str, str] | None:
    """(cause, fix) when what reaches the first weighted layer (after the model's own Rescaling/Normalization) is far
    below the usual scale, else None: the first layer's pre-activations are then its biases alone, for every image."""
    rms = float(getattr(traj, "first_layer_input_rms", float("nan")))
    if not rms < INPUT_RMS_MIN:
        return None
    raw = float(getattr(traj, "input_rms", float("nan")))
    scaled_by = getattr(traj, "input_scaled_by", None)
    twice = scaled_by is not None and raw < 1.0  # data already in [0, 1], scaled again inside the model
    cause = (
        f"inputs far below the usual scale: the first weighted layer sees RMS {rms:.2g} (bound {INPUT_RMS_MIN:g}; "
        f"inputs in [0, 1] ~0.3)"
        + (f", the data's RMS {raw:.2g} scaled again by {scaled_by}" if twice else "")
        + ": its pre-activations are nearly its biases, the same for every image, so nothing tells the images apart"
    )
    fix = (
        f"scale the images once: the data is already in [0, 1], so remove the model's {scaled_by}, or give it "
        "the raw 0..255 pixels"
        if twice
        else "bring the inputs to the usual scale ([0, 1] or standardized: (x - mean) / std)"
    )
    return cause, fix
