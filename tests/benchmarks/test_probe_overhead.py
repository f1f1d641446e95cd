"""The probe's instrumentation against a bare compiled training loop of the same model.

Both loops run the same 10 real MNIST steps; the ratio of their medians is the overhead
(target: at most 1.10), stored in extra_info and printed in the benchmark table's group.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks.conftest import STEPS
from training_health.model.optimizer import Adam
from training_health.model.seed_network import SeedConvNet
from training_health.probe.training_loop import build_training_loop


def compiled_loop(instrument: bool, optimizer=Adam):
    model = SeedConvNet("he_normal", 0)
    loop = build_training_loop(model, model.parameters, optimizer(model.parameters), "graph", [], instrument=instrument)
    return lambda *args: [t.numpy() for t in loop(*args)]


@pytest.mark.parametrize("instrument", [False, True], ids=["bare", "instrumented"])
def test_training_loop(benchmark, loop_inputs, instrument):
    benchmark.group = "probe-overhead"
    benchmark.pedantic(compiled_loop(instrument), args=loop_inputs, rounds=5, iterations=1, warmup_rounds=1)


def test_probe_overhead_ratio(loop_inputs, request):
    """Interleaved A/B timing in one process, so drift hits both loops alike; reports the ratio (not
    asserted: a timing target is measured, not a pass/fail). Asserts that both loops train identically."""
    import time

    loops = {name: compiled_loop(name == "instrumented") for name in ("bare", "instrumented")}
    # The ratio compares like with like only if both loops train the same: same losses, step by step.
    (bare_loss, _), (probed_loss, _) = (loop(*loop_inputs) for loop in loops.values())
    np.testing.assert_allclose(probed_loss, bare_loss, rtol=1e-5, err_msg="instrumentation changed the training")
    times = {name: [] for name in loops}
    for _ in range(6 if not request.config.getoption("benchmark_disable") else 0):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(*loop_inputs)
            times[name].append(time.perf_counter() - start)
    if not times["bare"]:
        return  # --benchmark-disable: the equivalence above is the smoke test
    bare, probed = (float(np.median(times[n][1:])) for n in ("bare", "instrumented"))
    print(
        f"\nprobe overhead: bare {bare:.3f}s, instrumented {probed:.3f}s per {STEPS} steps, ratio {probed / bare:.3f}"
    )
    request.node.user_properties.append(("overhead_ratio", probed / bare))
