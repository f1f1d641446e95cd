"""The original question: "my first conv layer does not change during training".

Network and training as asked (every weight and bias N(0, 1), Adam 1e-3, batch 128), on real
MNIST. The accepted answer said "vanishing gradients". Measured here instead:
  * conv1's gradient is not small: it is ~10^4 times its size under he_normal;
  * Adam's step per weight is ~lr whatever the gradient's size, so conv1's weights move by
    about as much per step as under a healthy initialization;
  * but they are N(0, 1), 3.5x the He scale for conv1's fan-in of 25 (40x for fc1), so the
    *relative* change is small for every layer alike, conv1 included (conv1 moves the most);
  * the logits start with a std of ~10^4 and the softmax is saturated for every example.
And the asker's experiment with conv1 initialized to zeros: the filters whose N(0, 1) bias is
negative are dead ReLUs from step 0 (pre-activation = bias < 0 everywhere), receive exactly
zero gradient and stay zero forever; the others learn.
"""

import numpy as np
import pytest

from training_health.checks.health_checks import (
    HealthCheckError,
    assert_grad_norm_within,
    assert_layer_healthy,
    assert_layer_units_moved,
)
from training_health.model.initializations import fans, reference_std
from training_health.probe.training_probe import ProbeConfig

KERNELS = ["conv1/kernel", "conv2/kernel", "fc1/kernel", "out/kernel"]
# Under pytest-xdist: the module's tests share its training runs (seed_normal's above all), so one worker trains them.
pytestmark = pytest.mark.xdist_group("original_question")


@pytest.fixture(scope="module")
def seed_normal(health_trajectories):
    return health_trajectories.get(ProbeConfig(initializer="seed_normal"))


@pytest.fixture(scope="module")
def he_normal(health_trajectories):
    return health_trajectories.get(ProbeConfig(initializer="he_normal"))


def per_weight_step(traj, name):
    """RMS of Adam's update per weight per step (median over steps)."""
    size = np.prod(traj.shapes[name])
    return float(np.median(traj.column("update_norm", name)) / np.sqrt(size))


def test_conv1_gradient_is_large_not_vanishing(seed_normal, he_normal):
    ratio = np.median(seed_normal.column("grad_norm", "conv1/kernel")) / np.median(
        he_normal.column("grad_norm", "conv1/kernel")
    )
    assert ratio > 1000, f"conv1 grad norm is only {ratio:.3g}x that under he_normal"


def test_suite_says_not_vanishing_but_oversized_init(seed_normal, health_thresholds):
    with pytest.raises(HealthCheckError, match="oversized initialization, not vanishing gradients") as caught:
        assert_grad_norm_within(seed_normal, health_thresholds, ["conv1/kernel"])
    assert "grad norm (max)" in str(caught.value) and "logits start with std" in str(caught.value)


def test_adam_moves_conv1_weights_at_its_fixed_step(seed_normal, he_normal):
    """Per weight, conv1 moves by a healthy-sized step: Adam divides the huge gradient away."""
    lr = seed_normal.config.learning_rate
    step = per_weight_step(seed_normal, "conv1/kernel")
    assert 0.1 * lr < step < 1.5 * lr
    assert 0.3 < step / per_weight_step(he_normal, "conv1/kernel") < 10


def test_conv1_moves_at_least_as_much_as_the_other_layers(seed_normal):
    changes = {name: seed_normal.relative_change(name) for name in KERNELS}
    others = max(v for k, v in changes.items() if k != "conv1/kernel")
    assert changes["conv1/kernel"] >= 0.8 * others, changes


def test_small_relative_change_is_explained_by_the_init_scale(seed_normal):
    """relative change ~ steps x (per-weight step) / (weight std): large weights, normal steps."""
    for name in KERNELS:
        predicted_max = (
            seed_normal.config.steps * per_weight_step(seed_normal, name) / seed_normal.initial_weight_std[name]
        )
        assert seed_normal.relative_change(name) <= 1.5 * predicted_max, name
    conv1_scale = seed_normal.initial_weight_std["conv1/kernel"] / reference_std((5, 5, 1, 32))["he"]
    assert conv1_scale > 3


def test_softmax_saturated_from_the_start(seed_normal):
    assert seed_normal.logit_std_start > 1000 and seed_normal.saturated_fraction_start > 0.9


def test_zero_conv1_filters_with_negative_bias_never_move(health_trajectories):
    config = ProbeConfig(initializer="seed_zero_conv1")
    health_trajectories.get(config)
    model = health_trajectories.trained_model(config)
    initial_bias = config.build_model().params["conv1/bias"].numpy()
    moved = np.any(model.params["conv1/kernel"].numpy() != 0, axis=(0, 1, 2))
    assert np.array_equal(moved, initial_bias > 0), (moved, initial_bias)


def test_zero_conv1_is_flagged_as_dead_relus(health_trajectories, health_thresholds):
    traj = health_trajectories.get(ProbeConfig(initializer="seed_zero_conv1"))
    with pytest.raises(HealthCheckError, match=r"conv1/kernel: \d+% of conv1's units output 0") as caught:
        assert_layer_units_moved(traj, health_thresholds, ["conv1/kernel"])
    dead_share = traj.dead_fraction_start["conv1"]
    assert traj.frozen_unit_fraction["conv1/kernel"] == pytest.approx(dead_share), str(caught.value)


def layer_failure(traj, thresholds, layer: str) -> str:
    """The message ``pytest -k layer_updates`` prints for ``layer`` (every per-layer check together)."""
    with pytest.raises(HealthCheckError) as caught:
        assert_layer_healthy(traj, thresholds, layer)
    return str(caught.value)


def he_fix_line(traj, kernel: str, now: str) -> str:
    """The fix line the verdict must print, from the He rule and the measured init (nothing hard-coded)."""
    shape = tuple(traj.shapes[kernel])
    std, fan_in = reference_std(shape)["he"], fans(shape)[0]
    return f"fix: initialize {kernel.split('/')[0]} with He normal: std {std:.3g} for fan-in {fan_in} (now {now})"


@pytest.mark.parametrize("layer", ["conv1", "conv2", "fc1", "out"])
def test_layer_updates_flag_seed_normal_as_oversized_init(seed_normal, health_thresholds, layer):
    """The question's network: each layer's verdict is an oversized init, proven and with its fix."""
    message = layer_failure(seed_normal, health_thresholds, layer)
    kernel = f"{layer}/kernel"
    assert "oversized initialization, not vanishing gradients" in message, message
    assert message.count("oversized initialization") == 1, f"the cause must be printed once:\n{message}"
    assert f"{kernel}: init std" in message and "x the He std" in message, message
    assert "as the init scale predicts" in message and "scaled output" not in message, message
    assert he_fix_line(seed_normal, kernel, f"{seed_normal.initial_weight_std[kernel]:.3g}") in message, message


def test_layer_updates_group_the_seed_normal_failure_by_cause(seed_normal, health_thresholds):
    """One line per cause naming the parameters it covers, then one table row per failure."""
    lines = layer_failure(seed_normal, health_thresholds, "conv1").splitlines()
    causes = [line for line in lines if line.lstrip().startswith("[1]")]
    assert causes == ["  [1] oversized initialization, not vanishing gradients: conv1/kernel, conv1/bias"], lines
    rows = [line for line in lines if line.rstrip().endswith("[1]") and not line.lstrip().startswith("[1]")]
    assert [row.split()[0] for row in rows] == ["conv1/kernel", "conv1/bias"], lines


def test_layer_updates_flag_seed_zero_conv1_as_dead_relus(health_trajectories, health_thresholds):
    """The asker's experiment: conv1 = 0 kills the units whose bias is negative; the fix re-initializes conv1."""
    traj = health_trajectories.get(ProbeConfig(initializer="seed_zero_conv1"))
    message = layer_failure(traj, health_thresholds, "conv1")
    assert "dead ReLUs: conv1/kernel, conv1/bias" in message, message
    assert "conv1/kernel starts all zeros" in message, message
    assert he_fix_line(traj, "conv1/kernel", "all zeros") in message, message
    assert "conv1/kernel: init std 0 (all zeros)" in message, message
    assert "started at zero, so judged by absolute change" in message, message
