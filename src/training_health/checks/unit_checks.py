"""Run-level check of the ReLUs no layer's test covers (``relu_units_alive``).

A weightless ReLU (an ``Activation("relu")``/``ReLU`` layer, a functional relu operation) counts for the
weighted layer before it, and that layer's test checks its dead units (``probe/activations.py``). Where
the model has no graph to find that layer (a subclassed model calling its layers in ``call``), the ReLU
keeps its own name and no layer's test sees it: this check does, with the same bound and message
(``assert_units_alive``).
"""

from __future__ import annotations

from training_health.checks.run_checks import RunContext, run_check


@run_check("relu_units_alive")
def check_relu_units_alive(run: RunContext) -> list[str]:
    from training_health.checks.health_checks import assert_units_alive
    from training_health.model.user_model import layer_of

    traj = run.trajectory
    layers = {layer_of(p) for p in traj.parameters}
    own = [key for key in traj.dead_fraction_end if key not in layers]
    if own:  # otherwise every measured ReLU counts for a weighted layer, whose test checks its dead units
        assert_units_alive(traj, run.thresholds, own)
    return []
