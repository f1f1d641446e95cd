"""One traced training loop serves every initialization of the seed network (probe/training_loop.py).

Reuse must not change a number: a run on a reused loop equals a run on a fresh loop bit for bit,
and every caller's model ends up holding its own trained weights.
"""

import collections

import numpy as np
import pytest

from training_health.probe import training_loop
from training_health.probe.training_probe import ProbeConfig, run_probe

STEPS = 3  # enough for Adam's moments and the dropout counter to matter; the checks are not run here


@pytest.fixture
def no_traced_loops(monkeypatch):
    monkeypatch.setattr(training_loop, "_LOOPS", collections.OrderedDict())
    return training_loop._LOOPS


def same_trajectory(obtained, expected) -> None:
    __tracebackhide__ = True
    np.testing.assert_array_equal(obtained.loss, expected.loss)
    for metric, values in expected.per_step.items():
        np.testing.assert_array_equal(obtained.per_step[metric], values, err_msg=metric)
    assert obtained.change_norm == expected.change_norm
    assert obtained.dead_fraction_start == expected.dead_fraction_start
    assert obtained.dead_fraction_end == expected.dead_fraction_end
    assert obtained.logit_std_end == expected.logit_std_end


def test_a_reused_loop_trains_exactly_like_a_fresh_one(health_training_data, no_traced_loops):
    run_probe(ProbeConfig("glorot_uniform", steps=STEPS), health_training_data)  # traces the loop
    reused = run_probe(ProbeConfig("he_normal", steps=STEPS), health_training_data)
    (loop,) = no_traced_loops.values()
    assert loop.runs == 2, "the second initialization should have reused the traced loop"
    no_traced_loops.clear()
    fresh = run_probe(ProbeConfig("he_normal", steps=STEPS), health_training_data)
    same_trajectory(reused, fresh)


def test_the_comparison_catches_a_loop_that_keeps_the_last_runs_optimizer(
    health_training_data, no_traced_loops, monkeypatch
):
    fresh = run_probe(ProbeConfig("he_normal", steps=STEPS), health_training_data)
    no_traced_loops.clear()
    run_probe(ProbeConfig("glorot_uniform", steps=STEPS), health_training_data)
    (loop,) = no_traced_loops.values()
    monkeypatch.setattr(loop.step, "restart", lambda: None)  # Adam's moments and step count carry over
    stale = run_probe(ProbeConfig("he_normal", steps=STEPS), health_training_data)
    with pytest.raises(AssertionError):
        same_trajectory(stale, fresh)


def test_each_caller_keeps_its_own_trained_model(health_training_data, no_traced_loops):
    configs = [ProbeConfig(init, steps=STEPS) for init in ("he_normal", "truncated_normal", "seed_normal")]
    models = [config.build_model() for config in configs]
    runs = [run_probe(config, health_training_data, model) for config, model in zip(configs, models)]
    for model, run in zip(models, runs):
        for name, (_, trained) in run.kernel_snapshots.items():
            np.testing.assert_array_equal(model.params[name].numpy(), trained, err_msg=f"{run.config.id} {name}")


def test_a_loop_is_shared_only_where_that_is_exact(health_training_data, no_traced_loops):
    from fixtures.user_models.keras_convnet import build  # a Keras model: its code may branch in Python

    keras_config = ProbeConfig("default", model="fixtures.user_models.keras_convnet:build", steps=STEPS)
    keras_model = build("default", 0)
    first = training_loop.probe_loop(keras_config, keras_model, health_training_data.to_model_input)
    again = training_loop.probe_loop(keras_config, keras_model, health_training_data.to_model_input)
    assert first is not again and not no_traced_loops
    eager = ProbeConfig("he_normal", mode="eager")
    eager_model = eager.build_model()
    eager_loop = training_loop.probe_loop(eager, eager_model, health_training_data.to_model_input)
    assert eager_loop.model is eager_model and eager_loop.mode == "eager"  # the run's own model, not a shared one
    assert not no_traced_loops, "eager runs trace nothing, so there is nothing to share"
