"""Graph, XLA and eager runs of one seed agree; CPU and GPU too (where a GPU exists).

Bounds, from he_normal after 5 steps, graph vs xla and graph vs eager, TF 2.21, measured on 9
simulated x86 machines (oneDNN ops on/off, ONEDNN_MAX_CPU_ISA SSE41/AVX2/AVX512_CORE, 1 and 4
intra-op threads; docs/reference.md "Stored numbers on other CPUs"): mean |diff| per layer <= 1.13e-5
(conv1/kernel, oneDNN off, eager), max <= 4.62e-3 (fc1/kernel). The negative control, one step
more, moves every layer's mean by 1.7e-4 (out/bias) to 6.6e-4 (conv2/bias).
  mean bound 5e-5: 4.4x the worst machine, 3.3x below the smallest one-step difference;
  max bound 1e-2: a float32 rounding difference where a gradient is near zero can flip the sign
  of Adam's step for that weight (<= ~lr = 1e-3 per step), so at most two steps' worth per step.
"""

import pytest

from training_health.checks.health_checks import HealthCheckError, assert_parameters_close
from training_health.probe.devices import GPU_MISSING, gpu_available
from training_health.probe.training_probe import ProbeConfig

PARITY_STEPS = 5
PARITY_MEAN_ATOL = 5e-5
PARITY_MAX_ATOL = 2 * PARITY_STEPS * 1e-3


def trained_weights(health_trajectories, mode="graph", device="cpu", steps=PARITY_STEPS):
    config = ProbeConfig(initializer="he_normal", mode=mode, device=device, steps=steps)
    return {n: v.numpy() for n, v in health_trajectories.trained_model(config).params.items()}


@pytest.mark.parametrize("other_mode", ["xla", "eager"])
def test_mode_parity(health_trajectories, health_device, other_mode):
    reference = trained_weights(health_trajectories, "graph", health_device)
    obtained = trained_weights(health_trajectories, other_mode, health_device)
    context = f"{other_mode} vs graph, {health_device}, {PARITY_STEPS} steps"
    assert_parameters_close(obtained, reference, PARITY_MEAN_ATOL, PARITY_MAX_ATOL, context)


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason=GPU_MISSING)
def test_cpu_gpu_parity(health_trajectories):
    cpu, gpu = trained_weights(health_trajectories, device="cpu"), trained_weights(health_trajectories, device="gpu")
    assert_parameters_close(
        gpu, cpu, PARITY_MEAN_ATOL, PARITY_MAX_ATOL, f"gpu vs cpu, graph, {PARITY_STEPS} steps, TF32 off"
    )


def test_parity_failure_shows_per_layer_table(health_trajectories):
    """Negative control: a run with one step more must fail parity, naming the layers."""
    reference = trained_weights(health_trajectories, "graph")
    longer = trained_weights(health_trajectories, "graph", steps=PARITY_STEPS + 1)
    with pytest.raises(HealthCheckError, match=r"conv1/kernel\s+mean .* FAIL") as caught:
        assert_parameters_close(longer, reference, PARITY_MEAN_ATOL, PARITY_MAX_ATOL, "one step more")
    assert "max" in str(caught.value) and "beyond mean 5e-05" in str(caught.value)


def test_eager_smoke_run_learns(health_trajectories):
    traj = health_trajectories.get(ProbeConfig(initializer="he_normal", mode="eager", steps=PARITY_STEPS))
    assert traj.loss[-1] < traj.loss[0] and traj.config.mode in traj.config.context()
