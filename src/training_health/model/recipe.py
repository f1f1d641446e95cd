"""How a run trained, as typed facts: what the diagnosis reads instead of parsing the recipe's text.

Recorded by the training step (``model/train_step.py``) when the run is set up, kept on the
trajectory (``Trajectory.facts``). Standard library only.
"""

from __future__ import annotations

import dataclasses

SUITE_OPTIMIZER = "TF1 Adam"  # the question's recipe: the suite's own fused TF1 Adam


@dataclasses.dataclass(frozen=True)
class Recipe:
    optimizer: str | None = SUITE_OPTIMIZER  # class name ("SGD", "Adam", "TF1 Adam"); None: a train step hides it
    learning_rate: float | None = None  # at the first step; None when the suite cannot read it
    schedule: str | None = None  # the learning-rate schedule's class, when the rate follows one
    epsilon: float | None = None  # Adam-family optimizers: the epsilon in lr * m / (sqrt(v) + epsilon)
    momentum: float | None = None  # SGD / RMSprop momentum, when set
    batch_size: int | None = None

    @property
    def known(self) -> bool:
        return self.optimizer is not None


def keras_recipe(optimizer, learning_rate: float | None, batch_size: int | None = None) -> Recipe:
    """The facts of a Keras optimizer (a LossScaleOptimizer is read through to the one it wraps)."""
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    rate = getattr(base, "learning_rate", None)
    schedule = None if rate is None or hasattr(rate, "numpy") or not callable(rate) else type(rate).__name__
    if schedule is None and hasattr(base, "_learning_rate") and callable(getattr(base, "_learning_rate", None)):
        inner = base._learning_rate  # Keras 3 keeps a schedule here and exposes its current value
        schedule = None if hasattr(inner, "numpy") else type(inner).__name__
    epsilon, momentum = getattr(base, "epsilon", None), getattr(base, "momentum", None)
    return Recipe(
        optimizer=type(base).__name__,
        learning_rate=learning_rate,
        schedule=schedule,
        epsilon=float(epsilon) if isinstance(epsilon, int | float) else None,
        momentum=float(momentum) if isinstance(momentum, int | float) and momentum else None,
        batch_size=batch_size,
    )
