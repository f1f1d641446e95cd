"""Time the conv core (forward; forward + backward) and the whole training step of the seed
network, per batch size, execution mode and device, on real MNIST digits.

Each benchmark measures at least ``MIN_SECONDS`` of calls (30 rounds of ~15 ms, under half a second,
let the batch-128 graph median move 13.4-18.4 ms between processes on this shared 2-core machine). The
conv-core and training-step benchmarks interleave, round for round, the independent timing of the same workload
(``training_health.bench.independent_timing``: raw ``tf.nn`` ops, weights of its own), so that load
from other processes hits both alike; the two medians must agree within 15%, and both spreads are
reported (``extra_info`` and a printed line, shown with ``-s``).
"""

from __future__ import annotations

import math
import statistics
import time

import pytest
import tensorflow as tf

from tests.benchmarks.conftest import synced
from training_health.bench.conv_core import WORKLOADS, flops_per_call, make_workload
from training_health.bench.independent_timing import Spread, independent_workloads, waited
from training_health.model.seed_network import SeedConvNet
from training_health.probe.devices import device_name
from training_health.probe.training_probe import to_float_images

BATCHES = [1, 128, pytest.param(1024, marks=pytest.mark.slow)]
MIN_SECONDS = 2.0  # of the suite's own calls per benchmark (the interleaved reference takes as long again)
MIN_ROUNDS, MAX_ROUNDS, WARMUP_ROUNDS = 20, 2000, 3
AGREEMENT = 1.15  # the suite's median / the independent timing's median, either way


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_conv_core(benchmark, health_mnist, matmul_gflops, workload, batch, bench_mode, health_device):
    benchmark.group = f"{workload}-batch{batch}"
    with tf.device(device_name(health_device)):
        model = SeedConvNet("he_normal", 0)
        images = to_float_images(health_mnist.train_images[:batch])
        labels = tf.constant(health_mnist.train_labels[:batch])
        run = synced(make_workload(workload, bench_mode, model))
        started = time.perf_counter()
        run(images, labels)  # tracing / XLA compilation, kept out of the timings
        benchmark.extra_info["first_call_s"] = time.perf_counter() - started
        reference = Reference(bench_mode, workload, images, labels)
        benchmark.pedantic(
            run,
            args=(images, labels),
            setup=reference.call if reference.run else None,
            rounds=rounds_for(run, images, labels),
            iterations=1,
            warmup_rounds=WARMUP_ROUNDS,
        )
    record_rates(benchmark, flops_per_call(workload, batch), batch, matmul_gflops)
    if reference.run and benchmark.stats is not None:
        assert_agrees_with_reference(benchmark, reference.times[WARMUP_ROUNDS:])


def rounds_for(run, *args) -> int:
    """Enough rounds for ``MIN_SECONDS`` of calls, from the median of three timed calls."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - start)
    return min(MAX_ROUNDS, max(MIN_ROUNDS, math.ceil(MIN_SECONDS / statistics.median(times))))


class Reference:
    """The independent timing of the same workload, called and timed as the setup of every round
    (pytest-benchmark leaves a round's setup out of its timing): reference, suite, reference, suite..."""

    def __init__(self, mode: str, workload: str, images, labels):
        fn = independent_workloads(mode).get(workload)
        self.run, self.args, self.times = (waited(fn) if fn else None), (images, labels), []

    def call(self) -> None:
        start = time.perf_counter()
        self.run(*self.args)
        self.times.append(time.perf_counter() - start)


def assert_agrees_with_reference(benchmark, reference_times: list[float]) -> None:
    """The benchmark's median against the interleaved independent timing's: within ``AGREEMENT``."""
    ours, theirs = Spread.of(list(benchmark.stats.stats.data)), Spread.of(reference_times)
    ratio = ours.median / theirs.median
    benchmark.extra_info.update(
        iqr_s=ours.iqr,
        reference_median_s=theirs.median,
        reference_iqr_s=theirs.iqr,
        ratio_to_reference=ratio,
    )
    line = f"{benchmark.name}: suite {ours.describe()}; independent {theirs.describe()}; ratio {ratio:.3f}"
    print("\n" + line)
    assert 1 / AGREEMENT <= ratio <= AGREEMENT, f"the benchmark disagrees with the independent timing: {line}"


def record_rates(benchmark, flops: float, batch: int, matmul_gflops: float | None) -> None:
    benchmark.extra_info["flops_per_call"] = flops
    if benchmark.stats is None:  # --benchmark-disable: ran once as a smoke test
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info["images_per_s"] = batch / median
    benchmark.extra_info["gflops_per_s"] = flops / median / 1e9
    if matmul_gflops:
        benchmark.extra_info["matmul_ceiling_gflops"] = matmul_gflops
        benchmark.extra_info["fraction_of_matmul_ceiling"] = flops / median / 1e9 / matmul_gflops
