"""What the model's output layer can reach: premises about the head shared by ``initial_loss`` (data_checks.py),
which fails on them before any step, and ``loss_decreases`` (loss_curve.py), which names them as the cause of a
flat loss. Its own module: both read it, neither imports the other (CONTRIBUTING.md, "shared premises")."""

from __future__ import annotations

import numpy as np

SHAPE_ONLY = ("Reshape", "Flatten")  # layers after the output layer that move values without changing them


def final_activation(model) -> str:
    """The activation a Keras model ends with ("sigmoid", "softmax", "linear"), "" when it cannot be read."""
    layers = list(getattr(model, "layers", None) or [])
    while layers and type(layers[-1]).__name__ in SHAPE_ONLY:  # a Reshape after the head changes no value
        layers.pop()
    if not layers:
        return ""
    last = layers[-1]
    if type(last).__name__ == "Softmax":
        return "softmax"
    if type(last).__name__ == "ReLU":
        return "relu"
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


# A regression output behind a ReLU cannot go below 0: targets below 0 are out of its reach, and every example
# whose pre-activation is negative passes no gradient. A sixth user's diabetes DNN with standardized targets (half
# of them negative) and Dense(1, relu) stalled at MSE 0.49 (0.07 without the ReLU, plain fit); the suite gave it a
# "slow but moving" note. Targets that are all >= 0 (counts, prices) are in its reach: no finding.
def relu_output_below_targets(run) -> tuple[str, str, str] | None:
    """(finding, evidence, fix) for a regression whose ReLU output cannot reach its targets below 0, else None."""
    from training_health.model import losses

    kind = run.trajectory.loss_kind
    if not (kind.known and kind.family == losses.REGRESSION):
        return None
    targets = np.asarray(run.data.train_labels, np.float64)
    below = float(np.mean(targets < 0)) if targets.size else 0.0
    if below == 0 or final_activation(run.trained_model()) != "relu":
        return None
    return (
        f"ReLU on the output layer of a regression: the model's outputs cannot go below 0, but {below:.0%} of the "
        f"targets of {run.data.source} are below 0 (min {targets.min():.4g})",
        "those targets are out of the model's reach whatever it learns, and an example whose output's "
        "pre-activation is below 0 passes no gradient back (the unit is dead for it)",
        "remove the ReLU from the output layer: a Dense layer without activation (a regression's output is linear)",
    )
