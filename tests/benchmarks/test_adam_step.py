"""The training step side by side, in one process (graph, batch 128, real MNIST): TF1's Adam in
plain ops, the fused ``ResourceApplyAdam`` kernel, no update at all, and the probe's own
instrumented step (per step of its compiled 10-step loop) with either, each as a fraction of
this machine's matmul ceiling.

Interleaved rounds, so load from other processes hits every variant alike; run with
``tox -e bench -- -k adam_step`` (or ``pytest tests/benchmarks/test_adam_step.py -s``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from tests.benchmarks.conftest import STEPS
from tests.benchmarks.test_probe_overhead import compiled_loop
from training_health.bench.conv_core import flops_per_call
from training_health.model.optimizer import Adam
from training_health.model.seed_network import SeedConvNet
from training_health.probe.training_probe import to_float_images

BATCH = 128
ROUNDS = 12


class PlainAdam(Adam):
    """The probe's step as it was before the fused kernel: plain-op updates, added by assign_add."""

    def apply_measured(self, grads):
        before = [p.read_value() for p in self.params]
        updates = self.updates(grads)
        for p, u in zip(self.params, updates):
            p.assign_add(u)
        return before, updates


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


def test_adam_step_side_by_side(health_mnist, loop_inputs, matmul_gflops, request):
    if matmul_gflops is None:
        pytest.skip("timing disabled (--benchmark-disable): run `tox -e bench -- -k adam_step` to measure")
    images, labels = health_mnist.train_images[:BATCH], tf.constant(health_mnist.train_labels[:BATCH])
    images = tf.constant(images)
    variants = {name: step_variant(name) for name in ("plain", "fused", "none")}
    probes = {"probe plain": compiled_loop(True, PlainAdam), "probe fused": compiled_loop(True, Adam)}
    times: dict[str, list[float]] = {name: [] for name in [*variants, *probes]}
    for _ in range(ROUNDS):
        for name, run in variants.items():
            times[name].append(timed(run, images, labels))
        for name, loop in probes.items():
            times[name].append(timed(loop, *loop_inputs) / STEPS)
    flops = flops_per_call("train_step", BATCH)
    lines = []
    for name, samples in times.items():
        median = float(np.median(samples[2:]))  # the first rounds include graph optimization
        fraction = flops / median / 1e9 / matmul_gflops
        request.node.user_properties.append((f"{name}_ms", median * 1e3))
        request.node.user_properties.append((f"{name}_fraction_of_matmul_ceiling", fraction))
        lines.append(f"  {name:10s} {median * 1e3:7.1f} ms  {fraction:6.1%} of the matmul ceiling")
    print(f"\ntraining step, graph, batch {BATCH} (matmul ceiling {matmul_gflops:.1f} GFLOP/s):\n" + "\n".join(lines))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
