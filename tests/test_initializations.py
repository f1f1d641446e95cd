"""Each named initialization draws what its name promises."""

import numpy as np
import pytest

from training_health.model.initializations import INITIALIZATIONS, fans, initial_value
from training_health.model.seed_network import PARAMETER_SHAPES

KERNELS = [n for n in PARAMETER_SHAPES if n.endswith("kernel")]
# Sample-size-aware tolerance: conv1 has only 800 weights, so its std estimate is the loosest.
STD_TOLERANCE = 0.08


def draw(init, role, seed=0):
    return initial_value(init, seed, role, PARAMETER_SHAPES[role])


@pytest.mark.parametrize("role", list(PARAMETER_SHAPES))
def test_seed_normal_is_standard_normal_everywhere(role):
    """Small tensors (the biases: 10 to 1024 values) pool draws over seeds, so every role is held to
    the same tolerance on at least 800 values; a zero or uniform bias init fails here too."""
    seeds = range(-(-800 // int(np.prod(PARAMETER_SHAPES[role]))))
    values = np.concatenate([draw("seed_normal", role, seed).ravel() for seed in seeds])
    assert abs(values.std() - 1) < STD_TOLERANCE and abs(values.mean()) < 0.1, (values.std(), values.mean())


def test_seed_zero_conv1_differs_from_seed_normal_only_in_conv1_kernel():
    for role in PARAMETER_SHAPES:
        same = np.array_equal(draw("seed_zero_conv1", role), draw("seed_normal", role))
        assert same == (role != "conv1/kernel"), role
    assert not draw("seed_zero_conv1", "conv1/kernel").any()


@pytest.mark.parametrize("role", KERNELS)
def test_he_normal_std_matches_fan_in(role):
    fan_in, _ = fans(PARAMETER_SHAPES[role])
    assert draw("he_normal", role).std() == pytest.approx(np.sqrt(2 / fan_in), rel=STD_TOLERANCE)


@pytest.mark.parametrize("role", KERNELS)
def test_glorot_uniform_limit(role):
    fan_in, fan_out = fans(PARAMETER_SHAPES[role])
    values, limit = draw("glorot_uniform", role), np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(values).max() <= limit and values.std() == pytest.approx(limit / np.sqrt(3), rel=STD_TOLERANCE)


@pytest.mark.parametrize("role", KERNELS)
def test_tutorial_truncated_normal_is_within_two_sigma(role):
    values = draw("truncated_normal", role)
    # Truncation at +-2 sigma shrinks the std to 0.88 of the 0.1 asked for.
    assert np.abs(values).max() <= 0.2 and values.std() == pytest.approx(0.088, rel=STD_TOLERANCE)
    assert np.all(draw("truncated_normal", role.replace("kernel", "bias")) == np.float32(0.1))


@pytest.mark.parametrize("init", ["glorot_uniform", "he_normal"])
def test_modern_inits_have_zero_bias(init):
    assert not any(draw(init, r).any() for r in PARAMETER_SHAPES if r.endswith("bias"))


@pytest.mark.parametrize("init", list(INITIALIZATIONS))
def test_reproducible_from_seed(init):
    assert all(np.array_equal(draw(init, r, 3), draw(init, r, 3)) for r in PARAMETER_SHAPES)


def test_unknown_initialization_lists_known_ones():
    with pytest.raises(ValueError, match="known: seed_normal"):
        initial_value("xavier", 0, "conv1/kernel", (5, 5, 1, 32))
