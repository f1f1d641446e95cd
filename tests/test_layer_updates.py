"""Does every layer learn? Minimum relative weight change, and no frozen units, per layer.

Selected by ``pytest -k layer_updates``; one cached training run per grid cell.
"""

from pathlib import Path

import pytest

from fixtures.health_checks import HealthCheckError, assert_layer_units_moved, assert_layer_weights_moved
from fixtures.kernel_pictures import pictures_on_failure
from fixtures.models import parameters_of

# Grid cells that the suite, by measurement, flags: (initializer, layer) -> the cause it must name.
# Evidence and the full story: tests/test_original_question.py.
KNOWN_FINDINGS = {
    ("seed_zero_conv1", "conv1"): "dead ReLUs",
    ("seed_zero_conv1", "fc1"): "dead ReLUs",
}


def test_layer_updates(trajectory, thresholds, initializer, layer, pytestconfig):
    params = parameters_of(trajectory.parameters, layer)
    assert params, f"layer {layer} has no trainable parameters"
    finding = KNOWN_FINDINGS.get((initializer, layer))
    if finding is None:
        with pictures_on_failure(trajectory, params, Path(pytestconfig.getoption("probe_output")) / "kernels"):
            assert_layer_weights_moved(trajectory, thresholds, params)
            assert_layer_units_moved(trajectory, thresholds, params)
        return
    with pytest.raises(HealthCheckError, match=finding) as caught:
        assert_layer_weights_moved(trajectory, thresholds, params)
        assert_layer_units_moved(trajectory, thresholds, params)
    assert {o.name for o in caught.value.offenders} <= set(params)
