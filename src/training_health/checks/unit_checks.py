"""Run-level check of the ReLUs no layer's test covers (``relu_units_alive``).

A weightless ReLU (an ``Activation("relu")``/``ReLU`` layer, a functional relu operation) counts for the
weighted layer before it, and that layer's test checks its dead units (``probe/activations.py``). Where
the model has no graph to find that layer (a subclassed model calling its layers in ``call``), the ReLU
keeps its own name and no layer's test sees it: this check does, with the same bound.
"""

from __future__ import annotations

from training_health.checks.run_checks import RunContext, run_check
from training_health.errors import HealthCheckError


@run_check("relu_units_alive")
def check_relu_units_alive(run: RunContext) -> list[str]:
    from training_health.model.user_model import layer_of

    traj = run.trajectory
    layers = {layer_of(p) for p in traj.parameters}
    own = [key for key in traj.dead_fraction_end if key not in layers]
    if not own:  # every measured ReLU counts for a weighted layer, whose test checks its dead units
        return []
    bounds = run.thresholds.for_model(traj.config.model)
    failing = [(k, traj.dead_fraction_end[k], bounds.max_dead_fraction(k)) for k in own]
    failing = [(k, dead, bound) for k, dead, bound in failing if not dead <= bound]
    if not failing:
        return []
    rows = "\n".join(
        f"  {k}: {dead:.0%} of its units output 0 on every probe image at the end "
        f"({traj.dead_fraction_start[k]:.0%} at the start); bound <= {bound:.0%}"
        for k, dead, bound in failing
    )
    fix = "start the biases of the layer before it at 0 (or slightly positive), initialize its kernel with He normal"
    raise HealthCheckError(
        f"relu_units_alive: {len(failing)} of {len(own)} ReLUs outside any weighted layer's test are mostly dead\n"
        f"  context: {traj.config.context()}\n{rows}\n"
        "  likely cause: dead ReLUs: a dead unit's incoming gradient is exactly 0, so the weights before it cannot "
        "move\n"
        f"  fix: {fix}; the per-layer tests of the layers before it name their init and learning rate"
    )
