"""A loss that does not fall for a reason no learning rate fixes gets that reason and its fix, never "raise the
learning rate" (a first user's report): a schedule that took the rate to ~0 within the run, and weights that were
never updated (a forgotten frozen backbone, a train step that updates the last layer only). Each cause beside its
healthy twin: a reasonable schedule and a declared freeze pass. Real MNIST, real training, 30 steps
(fixtures/user_models/not_learning.py: the models and where each comes from).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fixtures.healthy_models._data import one_hot
from fixtures.user_models import not_learning
from training_health.checks.calibrate import bounds, render
from training_health.checks.diagnosis import never_updated_fixes
from training_health.checks.loss_curve import not_learning_cause
from training_health.checks.run_checks import RUN_CHECKS, run_check_names
from training_health.checks.schedule import SCHEDULE_COLLAPSED, collapsed_schedule
from training_health.checks.thresholds import load_thresholds
from training_health.errors import HealthCheckError
from training_health.own_tests import check_training, train
from training_health.probe.training_probe import callable_label

run_check_names()  # registers every run check


def run_of(model, data=None, train_step=None, batch_size: int = 128, frozen=()):
    _, run = train(model, data, train_step, 30, batch_size, 0, "default", "graph", None, None)
    return dataclasses.replace(run, frozen=tuple(frozen))


def loss_decreases_failure(run) -> str:
    with pytest.raises(HealthCheckError) as caught:
        RUN_CHECKS["loss_decreases"](run)
    return str(caught.value)


def frozen_layers(traj) -> list[str]:
    return list(dict.fromkeys(p.rsplit("/", 1)[0] for p in traj.parameters if not traj.trainable[p]))


def test_a_schedule_that_collapses_is_named_with_its_own_setting():
    """ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5): "raise the learning rate to ~0.01" passed while the rate
    was still ~1e-11 by step 30; the cause is the schedule, measured at the steps the run took."""
    run = run_of(not_learning.decay_collapsed, one_hot)
    rates = run.trajectory.learning_rates
    assert len(rates) == 30 and rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-3 * 0.5**29), rates
    message = loss_decreases_failure(run)
    collapsed = "likely cause: learning-rate schedule collapsed: ExponentialDecay took the rate from 0.001 at step 0"
    assert collapsed in message, message
    assert "at step 29" in message and "the rate of 2 steps at the starting rate" in message, message
    assert "fix: raise ExponentialDecay's decay_steps=1 (now the rate is multiplied by 0.5 every 1 step)" in message
    assert "raise the learning rate" not in message, message


def test_a_schedule_that_reaches_zero_is_named_not_divided_by():
    """CosineDecay(1e-3, decay_steps=3) ends at exactly 0 from step 3: the cause said "(1e-3 / 0)x lower" and raised
    ZeroDivisionError, a traceback instead of a verdict (a fifth user, pytest and health_check alike)."""
    run = run_of(not_learning.cosine_decay_to_zero, one_hot)
    assert run.trajectory.learning_rates[-1] == 0.0, run.trajectory.learning_rates
    message = loss_decreases_failure(run)
    assert "CosineDecay took the rate from 0.001 at step 0 to 0 at step 29 (none left)" in message, message
    assert "fix: raise CosineDecay's decay_steps=3 to the steps the decay should span" in message, message


def test_a_collapsing_schedule_whose_loss_fell_never_passes_silently():
    """The old fix line applied (ExponentialDecay from 1e-2, decay_steps=1): the loss falls in the first steps and
    passed silently at TF 2.21. Its fall is on the edge of the bound (TF 2.21: passes, a note naming the schedule, as
    these steps learned; TF 2.15: 2.5x its noise, just short: a failure naming the schedule). Either way the schedule
    and its setting are named, never the learning rate."""
    run = run_of(not_learning.decay_collapsed_from_higher, one_hot)
    try:
        notes = RUN_CHECKS["loss_decreases"](run)
    except HealthCheckError as err:
        said = str(err)
        assert "likely cause: learning-rate schedule collapsed: ExponentialDecay took the rate from 0.01" in said, said
    else:
        assert len(notes) == 1, notes
        said = notes[0]
        fell = "the loss fell, but the learning-rate schedule collapsed: ExponentialDecay took the rate from 0.01"
        assert said.startswith(fell) and "a longer training learns nothing after the first steps" in said, said
    assert "fix: raise ExponentialDecay's decay_steps=1" in said and "raise the learning rate" not in said, said


def calibrated_for(model, healthy_traj, tmp_path):
    """A thresholds file as ``python -m training_health.checks.calibrate --model`` writes it (its bounds and margins),
    from one run of the healthy twin, labelled for ``model``: the bounds a user calibrated for their factory before
    its schedule's decay_steps changed."""
    config = dataclasses.replace(healthy_traj.config, model=callable_label(model))
    path = tmp_path / f"{model.__name__}.toml"
    path.write_text(render(bounds({"default": [healthy_traj]}, ["default"]), "test", config, [0], "one_hot"))
    return load_thresholds(path)


def test_every_row_that_moved_too_little_in_a_collapsed_run_names_the_schedule(tmp_path):
    """One premise for the run and its layers: with bounds calibrated for the model (its healthy schedule moves the
    kernels 0.23-0.47 and the biases 0.028-0.092 in 30 steps, seeds 0-2; the collapsed one 0.018-0.044 and
    0.0036-0.012), every weight misses its minimum. The kernels' rows said "updates too small ... raise the learning
    rate from 0.001 to ~1 (Adam)" and the zero-initialized biases' "no single cause stands out"; each now names the
    schedule with loss_decreases' own fix (diagnosis.schedule_collapsed). The healthy schedule passes the same
    bounds at another seed."""
    healthy = run_of(not_learning.decay_reasonable, one_hot).trajectory
    check_training(
        not_learning.decay_reasonable,
        data=one_hot,
        seed=1,
        thresholds=calibrated_for(not_learning.decay_reasonable, healthy, tmp_path),
        pictures=None,
    )
    thresholds = calibrated_for(not_learning.decay_collapsed, healthy, tmp_path)
    with pytest.raises(HealthCheckError) as caught:
        check_training(not_learning.decay_collapsed, data=one_hot, thresholds=thresholds, pictures=None)
    rows = caught.value.offenders
    _, fix = collapsed_schedule(run_of(not_learning.decay_collapsed, one_hot).trajectory)
    assert {row.name for row in rows} == set(healthy.parameters), rows  # kernels and zero-initialized biases
    for row in rows:
        assert row.cause.title == SCHEDULE_COLLAPSED and row.cause.fixes == (fix,), row
        assert "ExponentialDecay took the rate from 0.001 at step 0" in row.cause.evidence[0], row
    message = str(caught.value)
    assert "fix: raise ExponentialDecay's decay_steps=1" in message and "raise the learning rate" not in message


def test_a_reasonable_schedule_passes():
    """The Keras docs' decay_steps=10000, decay_rate=0.9: 0.9997x over 30 steps, every check passes."""
    traj = check_training(not_learning.decay_reasonable, data=one_hot, pictures=None)
    rates = np.asarray(traj.learning_rates)
    assert len(rates) == 30 and rates[-1] / rates[0] > 0.999, rates
    assert collapsed_schedule(traj) is None


def test_a_forgotten_frozen_backbone_is_named_with_the_per_layer_fix():
    """Adam 1e-4 on a head over a base left trainable=False: the base's update/weight ratio is exactly 0, which no
    learning rate raises (it was told "raise the learning rate from 0.0001 to ~0.001")."""
    run = run_of(not_learning.frozen_backbone, one_hot, batch_size=64)
    traj = run.trajectory
    stuck = [p for p in traj.parameters if not traj.trainable[p]]
    assert len(stuck) == 4, traj.trainable
    message = loss_decreases_failure(run)
    named = "likely cause: weights never updated: 4 of 6 weights ended the run exactly where they started "
    named += f"({', '.join(stuck)})"
    assert named in message, message
    assert "not trainable (layer.trainable=False)" in message, message
    fix = "; ".join(never_updated_fixes(traj, stuck))  # the per-layer rule's own words
    assert f"fix: {fix}" in message and "--health-frozen " + ",".join(frozen_layers(traj)) in fix, message
    assert "raise the learning rate" not in message, message


def test_a_declared_freeze_passes_and_is_no_cause():
    """Phase 1 of the transfer-learning guide, the base frozen on purpose and declared: every check passes. With the
    fine-tuning run's freeze declared, no cause is drawn from the frozen weights' ratio of 0."""
    probe = run_of(not_learning.frozen_backbone_phase1, one_hot, batch_size=64).trajectory
    check_training(
        not_learning.frozen_backbone_phase1, data=one_hot, batch_size=64, frozen=frozen_layers(probe), pictures=None
    )
    run = run_of(not_learning.frozen_backbone, one_hot, batch_size=64)
    run = dataclasses.replace(run, frozen=tuple(frozen_layers(run.trajectory)))
    cause, _ = not_learning_cause(run.trajectory, np.asarray(run.trajectory.loss), run.frozen)
    assert not cause.startswith("weights never updated") and "ratio 0 " not in cause, cause


def test_a_frozen_untrained_base_under_a_pooling_head_is_named_as_the_cause():
    """The Keras guide "Transfer learning & fine-tuning", phase 1 with its own head (GlobalAveragePooling2D ->
    Dropout(0.2) -> Dense) on a base that was never trained, the freeze declared. Not a false alarm: the loss and
    the test accuracy stay at chance in 30 steps over seeds 0-2 (checks/loss_curve.py, frozen_untrained_base: the
    measurement), so both failing checks stay red, but their cause was "no single cause stands out" / "a bug in
    the model or in the loss". They name the frozen random base and the fix; the fix applied passes."""
    probe = run_of(not_learning.frozen_random_base_pooled, one_hot, batch_size=64).trajectory
    with pytest.raises(HealthCheckError) as caught:
        check_training(
            not_learning.frozen_random_base_pooled,
            data=one_hot,
            batch_size=64,
            frozen=frozen_layers(probe),
            pictures=None,
        )
    message = str(caught.value)
    assert [block.split(":")[0] for block in message.split("\n\n")] == ["loss_decreases", "overfit_batch"], message
    named = "likely cause: features from a frozen base that was never trained: " + ", ".join(frozen_layers(probe))
    assert message.count(named) == 2 and "the factory built with seed 1 gives them other values" in message, message
    fix = "fix: load the base's trained weights before freezing it"
    assert message.count(fix) == 2 and "base.trainable = True" in message and "no single cause" not in message
    check_training(not_learning.random_base_pooled_trained, data=one_hot, batch_size=64, pictures=None)


def test_a_train_step_updating_the_last_layer_only_names_the_left_out_weights():
    run = run_of(not_learning.build_quickstart, None, not_learning.train_step_last_layer_only, batch_size=32)
    traj = run.trajectory
    stuck = [p for p in traj.parameters if traj.change_norm[p] == 0]
    assert len(stuck) == 4 and all(traj.trainable[p] for p in stuck), traj.change_norm
    message = loss_decreases_failure(run)
    assert "likely cause: weights never updated: 4 of 6 weights ended the run exactly where they started" in message
    assert "their gradient is non-zero" in message and "but no step applied it" in message, message
    label = traj.config.train_step
    assert f"fix: add {', '.join(stuck)} to the variable list {label} applies gradients to" in message, message
    assert "raise the learning rate" not in message, message


def test_the_same_train_step_updating_every_weight_passes():
    check_training(
        not_learning.build_quickstart, train_step=not_learning.train_step, batch_size=32, pictures=None
    )  # raises with the verdict if any check fails


def test_a_frozen_base_with_the_same_weights_in_every_build_is_not_called_untrained(tmp_path):
    """frozen_untrained_base names a frozen base "never trained" only when a build with another seed gives it other
    values. The guide's phase 1 on a base loaded from a weights file (base.load_weights) has the same frozen
    weights in every build: whatever the run's verdict, that cause is not drawn."""
    from training_health.checks.loss_curve import frozen_untrained_base

    weights = tmp_path / "base.weights.h5"
    not_learning._frozen_base(7).save_weights(str(weights))  # a base saved once; every build loads it
    factory = not_learning.base_from_weights_pooled(str(weights))
    run = run_of(factory, one_hot, batch_size=64)
    assert len(frozen_layers(run.trajectory)) == 2 and frozen_untrained_base(run) is None  # the base, loaded
    try:
        RUN_CHECKS["loss_decreases"](run)
    except HealthCheckError as err:
        assert "never trained" not in str(err), err


def test_every_row_of_an_sgd_run_whose_schedule_collapsed_names_the_schedule(tmp_path):
    """SGD on the Keras docs' ExponentialDecay with the bug decay_steps=1, decay_rate=0.5, bounds calibrated for its
    healthy twin (decay_steps=10000, decay_rate=0.9). SGD's reach is measured from the steps it took, and a
    collapsed schedule shrank those steps: conv2d_1/kernel's row said "bound out of reach of the steps taken"
    (TF 2.21: bound 0.0027, 3.2x the 0.00086 its shrunken steps could reach) instead of naming the schedule."""
    healthy = run_of(not_learning.decay_reasonable_sgd, one_hot).trajectory
    thresholds = calibrated_for(not_learning.decay_collapsed_sgd, healthy, tmp_path)
    with pytest.raises(HealthCheckError) as caught:
        check_training(not_learning.decay_collapsed_sgd, data=one_hot, thresholds=thresholds, pictures=None)
    rows = caught.value.offenders
    assert {row.name for row in rows} == set(healthy.parameters), rows  # each weight misses its bound
    for row in rows:
        assert row.cause.title == SCHEDULE_COLLAPSED, row
        assert "ExponentialDecay took the rate from 0.01 at step 0" in row.cause.evidence[0], row
    assert "out of reach" not in str(caught.value), caught.value


def test_a_regression_on_targets_far_from_its_outputs_is_a_slow_start_not_red():
    """The TF "Basic regression" DNN on a target left in its own units (mean ~100, batch 32): its loss barely moves
    in 30 steps (a sixth user's diabetes regression was red "not learning, no single cause"); it learns in a few
    hundred (plain fit, 600 steps: held-out MAE 6.05 against 27.0 for the best constant). A note naming the
    targets, their scale against the untrained outputs, and the fix."""
    from fixtures.healthy_models import regression_raw_target
    from training_health.checks.loss_curve import check_loss_decreases

    data = regression_raw_target.data
    _, run = train(regression_raw_target.build, data, None, 30, 32, 0, "default", "graph", None, None)
    notes = check_loss_decreases(run)
    assert len(notes) == 1 and "its targets are far from what the untrained model outputs (targets: mean" in notes[0]
    assert "fix: standardize the targets ((y - mean) / std" in notes[0], notes[0]
    assert "which takes Adam at lr=0.001 many steps" in notes[0], notes[0]  # the run's own optimizer and rate


def test_calibrate_refuses_runs_whose_weights_never_trained():
    """Bounds of 0 (a minimum change or a gradient ceiling) would pass the very model that does not learn: a
    seventh user calibrated a dead-bias model and got min = 0 under "healthy initializations". Weights that are not
    trainable (a frozen base) are meant not to move and do not count."""
    import types

    from training_health.checks.calibrate import never_trained

    b = {
        "relative_change": {"default": {"dense/kernel": (0.0, ""), "dense/bias": (0.01, ""), "base/kernel": (0.0, "")}},
        "grad_norm": {"dense/kernel": (0.0, 0.0, "", ""), "dense/bias": (1e-3, 1.0, "", "")},
    }
    run = types.SimpleNamespace(trainable={"dense/kernel": True, "dense/bias": True, "base/kernel": False})
    said = never_trained(b, [run])
    assert said is not None and said.startswith("dense/kernel never moved or had no gradient"), said
    assert "base/kernel" not in said
    b["relative_change"]["default"]["dense/kernel"] = (0.02, "")
    b["grad_norm"]["dense/kernel"] = (1e-3, 2.0, "", "")
    assert never_trained(b, [run]) is None


@pytest.mark.parametrize(
    "keywords, said",
    [
        ({"stepz": 30}, "check_training: unknown keyword(s) stepz (did you mean steps?)"),
        ({"seed": "x"}, "seed='x': give a whole number, 0 or more"),
        ({"initializer": 123}, "initializer=123: give a name (a string)"),
        ({"thresholds": 3}, "thresholds=3: give the path of a thresholds TOML file"),
    ],
    ids=["misspelt", "seed", "initializer", "thresholds"],
)
def test_check_training_refuses_bad_keywords_in_one_line_before_training(keywords, said):
    """A seventh user's check_training(stepz=30) was a TypeError, seed="x" and initializer=123 Keras tracebacks,
    thresholds= of any kind an AttributeError after training; each is one UsageError now, nothing trained."""
    from training_health.errors import UsageError

    built = []
    with pytest.raises(UsageError) as caught:
        check_training(lambda initializer, seed: built.append(1), **keywords)
    assert said in str(caught.value) and not built, str(caught.value)
