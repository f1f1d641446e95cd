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
    """Interleaved A/B timing in one process, so drift hits both loops alike; reports the ratio."""
    if request.config.getoption("benchmark_disable"):
        pytest.skip("timing disabled (--benchmark-disable): run `tox -e bench` to measure the overhead")
    import time

    loops = {name: compiled_loop(name == "instrumented") for name in ("bare", "instrumented")}
    times = {name: [] for name in loops}
    for _ in range(6):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(*loop_inputs)
            times[name].append(time.perf_counter() - start)
    bare, probed = (float(np.median(times[n][1:])) for n in ("bare", "instrumented"))
    print(
        f"\nprobe overhead: bare {bare:.3f}s, instrumented {probed:.3f}s per {STEPS} steps, ratio {probed / bare:.3f}"
    )
    request.node.user_properties.append(("overhead_ratio", probed / bare))
