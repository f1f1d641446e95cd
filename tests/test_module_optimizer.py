"""A user's train step with its own MODULE-LEVEL optimizer (the TF "expert" quickstart) works across runs
(issue 15, item 4): several initializations, seeds (calibration), modes.

Keras' optimizer serves only the variables it was built for ("Unknown variable ... can only be called for
the variables it was originally built with"). Every run of such a step trains the first model's variables,
the run's own initial values loaded, with the optimizer put back to its built state (step 0, slots 0).
"""

from __future__ import annotations

import numpy as np

from training_health.probe.training_probe import ProbeConfig

MODULE = "fixtures.user_models.quickstart_expert"
STEP = f"{MODULE}:train_step"


def _run(health_trajectories, initializer, seed=0, mode="graph", model="build_seeded"):
    config = ProbeConfig(model=f"{MODULE}:{model}", train_step=STEP, initializer=initializer, seed=seed, steps=10)
    return health_trajectories.get(ProbeConfig(**{**config.__dict__, "mode": mode}))


def test_two_initializations_train_with_one_module_level_optimizer(health_trajectories):
    first, second = _run(health_trajectories, "a"), _run(health_trajectories, "b")
    assert first.parameters == second.parameters
    # Same seed, same initial weights: identical runs prove the optimizer restarted from its built state.
    np.testing.assert_allclose(first.loss, second.loss, rtol=1e-5)
    assert first.loss[-1] < first.loss[0]


def test_other_seeds_and_modes_train_too(health_trajectories):
    other_seed = _run(health_trajectories, "a", seed=1)
    xla = _run(health_trajectories, "a", mode="xla")
    unseeded = _run(health_trajectories, "default", model="build")
    for traj in (other_seed, xla, unseeded):
        assert all(traj.change_norm[p] > 0 for p in traj.parameters), traj.change_norm
    np.testing.assert_allclose(xla.loss, _run(health_trajectories, "a").loss, rtol=1e-3)


def test_calibrate_over_seeds_with_a_module_level_optimizer(tmp_path):
    from training_health.checks import calibrate

    out = tmp_path / "quickstart.toml"
    argv = ["--model", f"{MODULE}:build", "--train-step", STEP, "--seeds", "2", "--steps", "10", "--out", str(out)]
    assert calibrate.main(argv) == 0
    assert '"conv2d/kernel"' in out.read_text()


def test_a_module_level_optimizer_built_for_another_model_is_refused_with_what_to_change(health_training_data):
    import pytest

    from training_health.probe.training_probe import run_probe

    run_probe(ProbeConfig(model=f"{MODULE}:build", train_step=STEP, initializer="a", steps=10), health_training_data)
    wide = ProbeConfig(model=f"{MODULE}:build_wide", train_step=STEP, initializer="a", steps=10)
    with pytest.raises(RuntimeError) as refused:
        run_probe(wide, health_training_data)
    message = str(refused.value)
    assert message.startswith(f"--health-train-step {STEP} uses an optimizer built for another model"), message
    assert "Give each model its own optimizer: create it in the factory" in message, message


def test_a_step_whose_forward_pass_runs_outside_the_tape_fails_with_one_message(health_trajectories):
    """Each test of the run fails with what to change, not TensorFlow's traceback (a user saw 1752 lines)."""
    import pytest

    outside = f"{MODULE}:train_step_forward_outside_tape"
    config = ProbeConfig(model=f"{MODULE}:build_seeded", train_step=outside, initializer="a", steps=10)
    for _ in range(2):  # the second test reading the run gets the same message, without training again
        with pytest.raises(pytest.fail.Exception, match="no gradient reaches any variable") as failed:
            health_trajectories.get(config)
        assert "Run the forward pass and the loss inside the tape" in str(failed.value)
        assert "Traceback" not in str(failed.value)
