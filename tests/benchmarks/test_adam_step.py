"""The training step side by side, in one process (graph, batch 128, real MNIST): TF1's Adam in
plain ops, the fused ``ResourceApplyAdam`` kernel, no update at all, and the probe's own
instrumented step (per step of its compiled 10-step loop) with either, each as a fraction of
this machine's matmul ceiling.

Interleaved rounds (the matmul too), so load from other processes hits every variant alike;
reported: the best wall time, and the median CPU time of all threads (steadier on a shared
machine), each against the matmul measured the same way. Run with
``tox -e bench -- -k adam_step`` (or ``pytest tests/benchmarks/test_adam_step.py -s``).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from tests.benchmarks.conftest import MATMUL_N, STEPS
from tests.benchmarks.test_probe_overhead import compiled_loop
from training_health.bench.conv_core import flops_per_call
from training_health.model.optimizer import Adam
from training_health.model.seed_network import SeedConvNet
from training_health.probe.training_probe import to_float_images

BATCH = 128
ROUNDS = 16


class PlainAdam(Adam):
    """The probe's step as it was before the fused kernel: plain-op updates, added by assign_add."""

    def apply(self, grads):
        for p, u in zip(self.params, self.updates(grads)):
            p.assign_add(u)


def step_variant(variant: str):
    model = SeedConvNet("he_normal", 0)
    params, optimizer = model.parameters, Adam(model.parameters)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(to_float_images(images), training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        grads = tape.gradient(loss, params)
        if variant == "plain":
            for p, u in zip(params, optimizer.updates(grads)):
                p.assign_add(u)
        elif variant == "fused":
            optimizer.apply(grads)
        return loss, grads  # the gradients are outputs, so "none" still computes them

    return lambda images, labels: step(images, labels)[0].numpy()


def assert_variants_train_alike(images, labels) -> None:
    """The timed variants are the same computation: one forward, and plain and fused Adam the same update."""
    variants = {name: step_variant(name) for name in ("plain", "fused", "none")}
    first = {name: run(images, labels) for name, run in variants.items()}
    second = {name: run(images, labels) for name, run in variants.items()}
    assert first["plain"] == first["fused"] == first["none"], first
    np.testing.assert_allclose(second["fused"], second["plain"], rtol=1e-5, err_msg="fused Adam != plain Adam")
    assert second["plain"] != first["plain"], "plain Adam did not update"  # (dropout differs per call: no other order)


def test_adam_step_side_by_side(health_mnist, loop_inputs, request):
    """Timings are printed and stored, not asserted; that the variants compute the same training is."""
    images, labels = tf.constant(health_mnist.train_images[:BATCH]), tf.constant(health_mnist.train_labels[:BATCH])
    assert_variants_train_alike(images, labels)
    if request.config.getoption("benchmark_disable"):
        return  # the smoke test: run `tox -e bench -- -k adam_step` to measure
    variants = {name: step_variant(name) for name in ("plain", "fused", "none")}
    probes = {"probe plain": compiled_loop(True, PlainAdam), "probe fused": compiled_loop(True, Adam)}
    matmul_input = tf.random.stateless_normal([MATMUL_N, MATMUL_N], seed=[1, 2])
    matmul = tf.function(lambda x: x @ x)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ["matmul", *variants, *probes]}
    for _ in range(ROUNDS):
        times["matmul"].append(timed(lambda: matmul(matmul_input).numpy()))
        for name, run in variants.items():
            times[name].append(timed(run, images, labels))
        for name, loop in probes.items():
            wall, cpu = timed(loop, *loop_inputs)
            times[name].append((wall / STEPS, cpu / STEPS))
    # Best wall time (least disturbed by other processes) and median CPU time (all threads' work).
    best = {name: min(w for w, _ in samples[2:]) for name, samples in times.items()}
    cpu = {name: float(np.median([c for _, c in samples[2:]])) for name, samples in times.items()}
    flops, matmul_flops = flops_per_call("train_step", BATCH), 2 * MATMUL_N**3
    lines = [f"  {'':12s} {'best wall':>10s} {'of ceiling':>10s} {'median CPU':>11s} {'of ceiling':>10s}"]
    for name in [*variants, *probes]:
        of_wall = flops / best[name] / (matmul_flops / best["matmul"])
        of_cpu = flops / cpu[name] / (matmul_flops / cpu["matmul"])
        request.node.user_properties += [(f"{name}_best_ms", best[name] * 1e3), (f"{name}_of_ceiling", of_wall)]
        lines.append(f"  {name:12s} {best[name] * 1e3:8.1f}ms {of_wall:10.1%} {cpu[name] * 1e3:9.1f}ms {of_cpu:10.1%}")
    ceiling = f"matmul {MATMUL_N}^3: {matmul_flops / best['matmul'] / 1e9:.1f} GFLOP/s best wall"
    print(f"\ntraining step, graph, batch {BATCH}, {ROUNDS} interleaved rounds ({ceiling}):\n" + "\n".join(lines))


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every thread of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu
