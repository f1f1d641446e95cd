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
    # The schedule's own settings (its get_config(), numbers and strings only), e.g. {"decay_steps": 1, ...}:
    # what a fix names when the schedule is what went wrong (checks/schedule.py, collapsed_schedule).
    schedule_settings: dict | None = None
    epsilon: float | None = None  # Adam-family optimizers: the epsilon in lr * m / (sqrt(v) + epsilon)
    momentum: float | None = None  # SGD / RMSprop momentum, when set
    batch_size: int | None = None

    @property
    def known(self) -> bool:
        return self.optimizer is not None


def learning_rate_schedule(optimizer):
    """The ``LearningRateSchedule`` the optimizer's rate follows, or None for a constant rate. Keras 2 returns it
    from ``optimizer.learning_rate``; Keras 3 keeps it in ``_learning_rate`` and exposes its current value."""
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    for rate in (getattr(base, "learning_rate", None), getattr(base, "_learning_rate", None)):
        if rate is not None and callable(rate) and not hasattr(rate, "numpy"):
            return rate
    return None


def schedule_settings(schedule) -> dict | None:
    """A schedule's ``get_config()``, numbers and strings only (JSON-able, shown in a fix line)."""
    try:
        config = schedule.get_config()
    except (AttributeError, NotImplementedError, TypeError):
        return None
    numbers = (int, float, str)
    kept = lambda v: isinstance(v, numbers) or (isinstance(v, list | tuple) and all(isinstance(x, numbers) for x in v))  # noqa: E731
    return {k: list(v) if isinstance(v, list | tuple) else v for k, v in config.items() if k != "name" and kept(v)}


def keras_recipe(optimizer, learning_rate: float | None, batch_size: int | None = None) -> Recipe:
    """The facts of a Keras optimizer (a LossScaleOptimizer is read through to the one it wraps)."""
    base = getattr(optimizer, "inner_optimizer", None) or optimizer
    schedule = learning_rate_schedule(base)
    epsilon, momentum = getattr(base, "epsilon", None), getattr(base, "momentum", None)
    return Recipe(
        optimizer=type(base).__name__,
        learning_rate=learning_rate,
        schedule=None if schedule is None else type(schedule).__name__,
        schedule_settings=None if schedule is None else schedule_settings(schedule),
        epsilon=float(epsilon) if isinstance(epsilon, int | float) else None,
        momentum=float(momentum) if isinstance(momentum, int | float) and momentum else None,
        batch_size=batch_size,
    )
