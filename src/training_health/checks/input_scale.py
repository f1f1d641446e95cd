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
