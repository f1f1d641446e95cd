"""Time the conv core (forward; forward + backward) and the whole training step of the seed
network, per batch size, execution mode and device, on real MNIST digits."""

from __future__ import annotations

import time

import pytest
import tensorflow as tf

from tests.benchmarks.conftest import synced
from training_health.bench.conv_core import WORKLOADS, flops_per_call, make_workload
from training_health.model.seed_network import SeedConvNet
from training_health.probe.devices import device_name
from training_health.probe.training_probe import to_float_images

BATCHES = [1, 128, pytest.param(1024, marks=pytest.mark.slow)]
ROUNDS = {"eager": 30, "graph": 30, "xla": 10}  # more rounds than the defaults: this 2-core VM is noisy


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
        benchmark.pedantic(run, args=(images, labels), rounds=ROUNDS[bench_mode], iterations=1, warmup_rounds=2)
    record_rates(benchmark, flops_per_call(workload, batch), batch, matmul_gflops)


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
