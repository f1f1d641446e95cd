"""A learning-rate schedule that collapsed within the run: its rate at the last step taken far below its step-0
rate. One premise for the run-level checks (``loss_curve``) and the per-layer rows (``diagnosis``), so both name
the same cause with the same fix; its own module so that neither imports the other."""

from __future__ import annotations

import numpy as np

# A schedule's rate at the run's last step below this share of its step-0 rate: it collapsed within the run.
# Measured (TF 2.21, 30 steps, a first user's Keras "Simple MNIST convnet", Adam): ExponentialDecay(1e-3,
# decay_steps=1, decay_rate=0.5) ends at 1.9e-09x (its 30 steps had, together, the rate of 2.0 steps at 1e-3:
# loss 2.306 -> 2.283); its fixed twin decay_steps=10000, decay_rate=0.9 ends at 0.9997x and passes. "Raise the
# learning rate to ~0.01" (the old fix line) passed at TF 2.21 while the rate was still ~1e-11 by step 30.
SCHEDULE_COLLAPSE = 0.1
SCHEDULE_COLLAPSED = "learning-rate schedule collapsed"  # the cause's title, per-layer rows too (diagnosis.py)


def collapsed_schedule(traj) -> tuple[str, str] | None:
    """The optimizer's learning-rate schedule, evaluated at the steps the run took (``Trajectory.learning_rates``),
    fell below ``SCHEDULE_COLLAPSE`` of its step-0 rate: the steps had no rate left to learn with."""
    rates = np.asarray(getattr(traj, "learning_rates", ()) or (), np.float64)
    if rates.size < 2 or not rates[0] > 0 or not rates[-1] < SCHEDULE_COLLAPSE * rates[0]:
        return None
    facts = getattr(traj, "facts", None)
    name = getattr(facts, "schedule", None) or "the learning-rate schedule"
    settings = getattr(facts, "schedule_settings", None) or {}
    n, first, last = rates.size, float(rates[0]), float(rates[-1])
    lower = f"{first / last:.2g}x lower" if last > 0 else "none left"  # CosineDecay ends at 0 by default
    cause = (
        f"{SCHEDULE_COLLAPSED}: {name} took the rate from {first:.3g} at step 0 to {last:.2g} at step "
        f"{n - 1} ({lower}): its {n} steps had, together, the rate of {rates.sum() / first:.2g} "
        "steps at the starting rate; a larger starting rate only hides the collapse"
    )
    span = next((k for k in settings if k.endswith("decay_steps")), None)  # decay_steps, first_decay_steps
    if span is not None:
        every = (
            f" (now the rate is multiplied by {settings['decay_rate']:g} every {settings[span]:g} step"
            f"{'' if settings[span] == 1 else 's'})"
            if name == "ExponentialDecay" and isinstance(settings.get("decay_rate"), int | float)
            else ""
        )
        fix = (
            f"raise {name}'s {span}={settings[span]:g}{every} to the steps the decay should span (steps per epoch x "
            f"epochs: thousands in a full training), so the rate stays near {first:.3g} over these {n} steps"
        )
    else:
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        fix = (
            f"set {name}{f' ({shown})' if shown else ''} so the rate decays over the whole training, not within "
            f"{n} steps, or train with a constant rate of {first:.3g}"
        )
    return cause, fix
