"""Graph, XLA and eager runs of one seed agree; CPU and GPU too (where a GPU exists).

Tolerance: after 5 steps the largest per-weight difference graph-vs-xla and graph-vs-eager
was 1.2e-5 (seeds 0-2, TF 2.21, this 2-core CPU; Adam steps are ~1e-3 per weight, so a
float32 rounding difference can grow to a few 1e-6 where a gradient is near zero). The
bound is 1e-4: 8x the worst observed, 10x below one Adam step.
"""

import pytest

from fixtures.devices import GPU_MISSING, gpu_available
from fixtures.health_checks import HealthCheckError, assert_parameters_close
from fixtures.training_probe import ProbeConfig

PARITY_STEPS = 5
PARITY_ATOL = 1e-4


def trained_weights(trajectories, mode="graph", device="cpu", steps=PARITY_STEPS):
    config = ProbeConfig(initializer="he_normal", mode=mode, device=device, steps=steps)
    return {n: v.numpy() for n, v in trajectories.trained_model(config).params.items()}


@pytest.mark.parametrize("other_mode", ["xla", "eager"])
def test_mode_parity(trajectories, device, other_mode):
    reference = trained_weights(trajectories, "graph", device)
    obtained = trained_weights(trajectories, other_mode, device)
    assert_parameters_close(obtained, reference, PARITY_ATOL, f"{other_mode} vs graph, {device}, {PARITY_STEPS} steps")


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason=GPU_MISSING)
def test_cpu_gpu_parity(trajectories):
    cpu, gpu = trained_weights(trajectories, device="cpu"), trained_weights(trajectories, device="gpu")
    assert_parameters_close(gpu, cpu, PARITY_ATOL, f"gpu vs cpu, graph, {PARITY_STEPS} steps, TF32 off")


def test_parity_failure_shows_per_layer_table(trajectories):
    """Negative control: a run with one step more must fail parity, naming the layers."""
    reference = trained_weights(trajectories, "graph")
    longer = trained_weights(trajectories, "graph", steps=PARITY_STEPS + 1)
    with pytest.raises(HealthCheckError, match=r"conv1/kernel\s+max .* FAIL") as caught:
        assert_parameters_close(longer, reference, PARITY_ATOL, "one step more")
    assert "mean" in str(caught.value) and "atol 0.0001" in str(caught.value)


def test_eager_smoke_run_learns(trajectories):
    traj = trajectories.get(ProbeConfig(initializer="he_normal", mode="eager", steps=PARITY_STEPS))
    assert traj.loss[-1] < traj.loss[0] and traj.config.mode in traj.config.context()
