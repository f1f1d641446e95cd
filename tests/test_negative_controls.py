"""Every check can fail: each deliberately broken variant trips the right check, and the
message names the broken layer and the right cause. Broken variants: fixtures/broken_models.py."""

import pytest

from fixtures.broken_models import NAN_FROM_STEP, model_spec
from training_health.checks.health_checks import (
    HealthCheckError,
    assert_all_finite,
    assert_grad_norm_within,
    assert_gradients_connected,
    assert_layer_units_moved,
    assert_layer_weights_moved,
    assert_units_alive,
)
from training_health.probe.training_probe import ProbeConfig
from training_health.report.kernel_pictures import pictures_on_failure

# Each health check with one signature (health_trajectory, health_thresholds), by the name the table uses.
CHECKS = {
    "connected": lambda traj, th: assert_gradients_connected(traj),
    "moved": assert_layer_weights_moved,
    "units_moved": assert_layer_units_moved,
    "finite": lambda traj, th: assert_all_finite(traj),
    "grad_norm": assert_grad_norm_within,
    "alive": assert_units_alive,
}


def broken_config(sabotage: str, learning_rate: float = 1e-3) -> ProbeConfig:
    model = model_spec(sabotage) if sabotage else ProbeConfig.model
    return ProbeConfig(initializer="he_normal", model=model, learning_rate=learning_rate)


CONTROLS = [
    # (sabotage, learning rate, check, offender the table must name, cause the message must give)
    pytest.param(
        "blocked_gradient:conv2", 1e-3, "connected", "conv2/kernel", "gradient disconnected", id="blocked-conv2"
    ),
    pytest.param("blocked_gradient:conv2", 1e-3, "moved", "conv2/kernel", "gradient disconnected", id="blocked-moved"),
    pytest.param("tiny_gradient:conv1", 1e-3, "moved", "conv1/kernel", "too small for Adam", id="tiny-conv1"),
    pytest.param("tiny_gradient:conv1", 1e-3, "grad_norm", "conv1/kernel", "too small for Adam", id="tiny-gradnorm"),
    pytest.param("dead_relu:fc1", 1e-3, "alive", "fc1", "dead ReLUs: 100%", id="dead-fc1"),
    pytest.param("dead_relu:fc1", 1e-3, "units_moved", "fc1/kernel", "dead ReLUs", id="dead-frozen"),
    pytest.param("nan_midrun:conv2", 1e-3, "finite", "conv2/kernel", f"step {NAN_FROM_STEP} ", id="nan-conv2"),
    pytest.param("exploding_gradient:fc1", 1e-3, "grad_norm", "fc1/kernel", "exploding gradient", id="exploding-fc1"),
    pytest.param("", 1.0, "grad_norm", "fc1/kernel", "exploding gradient|updates too large", id="exploding-lr"),
]


@pytest.mark.parametrize("sabotage, learning_rate, check, offender, cause", CONTROLS)
def test_check_catches_broken_model(
    health_trajectories, health_thresholds, sabotage, learning_rate, check, offender, cause
):
    traj = health_trajectories.get(broken_config(sabotage, learning_rate=learning_rate))
    with pytest.raises(HealthCheckError, match=cause) as caught:
        CHECKS[check](traj, health_thresholds)
    named = {o.name for o in caught.value.offenders}
    assert offender in named, f"{check} flagged {sorted(named)}, not {offender}:\n{caught.value}"
    assert "init=he_normal" in str(caught.value) and "tf=" in str(caught.value)


@pytest.mark.parametrize("sabotage", ["blocked_gradient:conv2", "tiny_gradient:conv1", "exploding_gradient:fc1"])
def test_only_the_broken_layer_is_named(health_trajectories, health_thresholds, sabotage):
    """The sabotage of one layer must not make the suite blame healthy layers."""
    traj = health_trajectories.get(broken_config(sabotage))
    target = sabotage.split(":")[1]
    for check in ("connected", "moved", "grad_norm"):
        try:
            CHECKS[check](traj, health_thresholds)
        except HealthCheckError as err:
            assert {o.name.split("/")[0] for o in err.offenders} == {target}, str(err)


def test_failing_layer_update_attaches_kernel_pictures(health_trajectories, health_thresholds, tmp_path):
    traj = health_trajectories.get(broken_config("tiny_gradient:conv1"))
    with pytest.raises(HealthCheckError, match="kernel pictures") as caught:
        with pictures_on_failure(traj, ["conv1/kernel", "conv1/bias"], tmp_path, health_thresholds):
            assert_layer_weights_moved(traj, health_thresholds, ["conv1/kernel", "conv1/bias"])
    folder = tmp_path / traj.config.id
    assert str(folder) in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == ["conv1-kernel.png", "dynamics.png"]
