"""Benchmark plumbing: the marker, the matmul ceiling, and labelled machine info."""

from __future__ import annotations

import os
import time

import pytest
import tensorflow as tf

from training_health.probe.devices import cpu_model

BENCH_MODES = ("eager", "graph", "xla")
STEPS = 10  # training steps per call of a compiled loop
MATMUL_N = 4096


def pytest_collection_modifyitems(items):
    for item in items:
        if "benchmarks" in item.path.parts:
            item.add_marker(pytest.mark.benchmark)


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark is the `bench` extra: without it, this hook is not called
def pytest_benchmark_update_machine_info(config, machine_info):
    """Saved runs carry what makes them comparable: TF/Keras versions, oneDNN, XLA, CPU, GPU."""
    import keras

    gpus = tf.config.list_physical_devices("GPU")
    machine_info.update(
        tensorflow=tf.__version__,
        keras=keras.__version__,
        TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TF default)"),
        xla_available=tf.test.is_built_with_xla() if hasattr(tf.test, "is_built_with_xla") else "unknown",
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count(),
        gpu=[tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus] or "none",
    )


@pytest.fixture(params=BENCH_MODES)
def bench_mode(request):
    return request.param


def synced(fn):
    """Call ``fn`` and wait for the device: .numpy() on one output blocks until it is computed."""

    def run(*args):
        out = fn(*args)
        tf.nest.flatten(out)[0].numpy()

    return run


@pytest.fixture(scope="module")
def loop_inputs(health_mnist):
    """``STEPS`` real MNIST batches of 128, as the probe's compiled loop takes them."""
    from training_health.probe.training_probe import batch_indices

    indices = batch_indices(0, STEPS, 128, len(health_mnist.train_labels))
    return tf.constant(health_mnist.train_images[indices]), tf.constant(health_mnist.train_labels[indices])


@pytest.fixture(scope="session")
def matmul_gflops(request) -> float | None:
    """This machine's fp32 matmul rate (best of 3, 4096^3), the ceiling results are judged against."""
    if request.config.getoption("benchmark_disable"):
        return None
    with tf.device("/CPU:0"):
        a = tf.random.stateless_normal([MATMUL_N, MATMUL_N], seed=[1, 2])
        matmul = tf.function(lambda x: x @ x)
        matmul(a).numpy()
        best = min(_timed(lambda: matmul(a).numpy()) for _ in range(3))
    return 2 * MATMUL_N**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
