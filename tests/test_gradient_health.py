"""Gradients reach every layer, stay finite, stay within calibrated norm bounds, and the
ReLU layers keep their units alive; over the healthy initializations x device x mode grid.
The seed's own initializations are judged in tests/test_original_question.py."""

from fixtures.health_checks import (
    assert_all_finite,
    assert_grad_norm_within,
    assert_gradients_connected,
    assert_units_alive,
)
from fixtures.models import parameters_of


def test_gradients_connected(trajectory, healthy_initializer, layer):
    assert_gradients_connected(trajectory, parameters_of(trajectory.parameters, layer))


def test_gradients_finite(trajectory, healthy_initializer, layer):
    assert_all_finite(trajectory, parameters_of(trajectory.parameters, layer))


def test_grad_norm_bounds(trajectory, thresholds, healthy_initializer, layer):
    assert_grad_norm_within(trajectory, thresholds, parameters_of(trajectory.parameters, layer))


def test_units_alive(trajectory, thresholds, healthy_initializer, layer):
    assert_units_alive(trajectory, thresholds, [layer])
