"""loss_stable: a loss that more than doubles within the warm-up steps diverges from the start, and a train step
whose loss starts at ~batch x ln C is named as summed over the batch (bug corpus summed_loss_lr, Zhang IPS-14).
Hand-built runs (no training): the curves are the corpus program's and its fixed twin's, as measured."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from tests.test_diagnosis_fixes import trajectory
from training_health.checks.run_checks import RUN_CHECKS, RunContext, run_check_names
from training_health.errors import HealthCheckError
from training_health.model.losses import SPARSE, LossKind

run_check_names()
STEP = "train step mod:step (its own optimizer, loss and variable list)"
# fixtures/bug_corpus zhang_ips14_summed_loss_lr, TF 2.21 seed 0, batch 128: GD 0.01 (bug) and 0.005 (fix)
FAULTY = [294.7, 259.9, 515.9, 553.4, 703.7, 987.1, 665.1, 340.7, 132.5, 125.0, 100.9, 174.1, 130.1, 106.5, 147.0]
FAULTY += [119.2, 169.3, 72.5, 106.5, 136.6, 80.0, 55.2, 78.5, 91.0, 67.8, 85.0, 75.2, 101.3, 62.8, 85.0]
TWIN = [294.7, 249.4, 264.4, 229.4, 199.1, 194.9, 159.0, 138.3, 121.6, 104.0, 101.8, 119.0, 96.9, 92.0, 75.0]
TWIN += [78.6, 84.1, 78.1, 89.2, 80.1, 78.8, 64.0, 82.7, 93.9, 69.8, 77.7, 57.2, 87.2, 72.2, 79.6]


def run(loss, source: str = "train step") -> RunContext:
    kind = LossKind(family=SPARSE, from_logits=True, name="step loss", source=source)
    traj = dataclasses.replace(trajectory(STEP, None), loss=np.asarray(loss, np.float32), loss_kind=kind)
    traj.config = dataclasses.replace(traj.config, batch_size=128)
    data = types.SimpleNamespace(num_classes=10)
    return RunContext(trajectory=traj, data=data, thresholds=None, trained_model=None, fresh_model=None)


def test_a_loss_that_triples_in_its_first_steps_diverges_and_a_summed_loss_is_named():
    with pytest.raises(HealthCheckError) as caught:
        RUN_CHECKS["loss_stable"](run(FAULTY))
    said = str(caught.value)
    assert "the loss rises from 294.7 at step 0 to 987.1 at step 5 (3.3x" in said and "diverges from the" in said
    assert "it is summed over the batch of 128, not averaged" in said and "128 x ln 10" in said, said
    assert "or average the loss over the batch (reduce_mean)" in said, said


def test_the_fixed_twin_with_the_same_summed_loss_passes():
    assert RUN_CHECKS["loss_stable"](run(TWIN)) == []


def test_a_penalty_that_wipes_the_weights_out_is_named_before_the_learning_rate():
    """bug corpus regularizer_and_lr_too_high (L2 beta 1, SGD 0.5): the penalty is most of the loss at step 0 and
    the kernels halve every step; without the penalty (or when the weights keep their size) the rule is silent."""
    from training_health.checks.loss_curve import not_learning_cause

    recipe = "SGD lr=0.5, loss sparse_categorical_crossentropy(from_logits=True) + 1 regularization losses"
    traj = trajectory(recipe, 0.5)
    traj.outputs_start = {"regularization": 2976.0}
    loss = np.array([2979.0] + [2.3] * 29)
    for k in ("hidden/kernel", "logits/kernel"):
        traj.per_step["weight_norm"][:, traj.parameters.index(k)] *= 0.5 ** np.arange(30)
    cause, fix = not_learning_cause(traj, loss)
    assert cause.startswith("the regularization wipes the weights out: the penalty is 2976 of the loss 2979"), cause
    assert "lower the regularization factor (10x or more) and lower the learning rate from 0.5 to ~0.05" in fix, fix
    traj.outputs_start = {"regularization": 0.0}
    assert "regularization" not in not_learning_cause(traj, loss)[0]


def test_a_mean_absolute_error_on_sigmoid_outputs_is_named_when_the_loss_stays_flat():
    """bug corpus xor_mae: flat at 0.4994 (was: "no single cause stands out")."""
    from training_health.checks.loss_curve import not_learning_cause
    from training_health.model.losses import REGRESSION

    traj = trajectory("SGD lr=0.05, loss mean_absolute_error", 0.05)
    traj.loss_kind = LossKind(family=REGRESSION, from_logits=False, name="mean_absolute_error")
    traj.outputs_start = {"unit_interval": True, "mean": 0.5}
    cause, fix = not_learning_cause(traj, np.full(30, 0.4994))
    assert cause.startswith("the loss is the mean absolute error (mean_absolute_error) on outputs in [0, 1]"), cause
    assert "use binary_crossentropy" in fix and "raise the learning rate from 0.05 to ~0.5" in fix, fix
    traj.outputs_start = {"unit_interval": False, "mean": 3.0}  # a regression head: MAE is a fair choice there
    assert "mean absolute" not in not_learning_cause(traj, np.full(30, 0.4994))[0]


# A sixth user's breast-cancer MLP (Dense 16-relu, Dropout, Dense(1, sigmoid), binary_crossentropy), batch 32, TF 2.21
# seed 0, Adam 1e-3 (93% accuracy by step 30) and Adam 1e-4 (slow): batches of 32 rows stray far from each other.
SMALL_BATCH_1E3 = [0.654, 0.7096, 0.4928, 0.6333, 0.6013, 0.5514, 0.5881, 0.5603, 0.5161, 0.433, 0.5097, 0.4703]
SMALL_BATCH_1E3 += [0.5205, 0.5527, 0.5873, 0.4219, 0.7501, 0.5391, 0.3451, 0.3229, 0.4343, 0.4335, 0.5233, 0.424]
SMALL_BATCH_1E3 += [0.4169, 0.425, 0.325, 0.3845, 0.4312, 0.2912]
SMALL_BATCH_1E4 = [0.654, 0.7225, 0.5144, 0.68, 0.6518, 0.6023, 0.6901, 0.6382, 0.6858, 0.5598, 0.6401, 0.59]
SMALL_BATCH_1E4 += [0.7165, 0.7104, 0.798, 0.5482, 1.0967, 0.7706, 0.5474, 0.4726, 0.8884, 0.6653, 0.7766, 0.7244]
SMALL_BATCH_1E4 += [0.7679, 0.6215, 0.5777, 0.743, 0.6576, 0.7249]


@pytest.mark.parametrize("loss", [SMALL_BATCH_1E3, SMALL_BATCH_1E4], ids=["adam_1e-3", "adam_1e-4"])
def test_a_small_batch_straying_within_its_noise_is_not_oscillation(loss):
    """+53% / +84% of the start, but 5-6x the step-to-step noise: red 'it oscillates' with 'lower the learning
    rate' before (which made the slower run fail the same way); the oscillating control jumps 89-329 noises."""
    assert RUN_CHECKS["loss_stable"](run(loss)) == []


def test_a_jump_far_beyond_the_noise_still_oscillates():
    calm = [2.30 - 0.02 * k + 0.004 * (-1) ** k for k in range(30)]
    calm[12] = calm[11] * 2.5  # +150% of its start, hundreds of noises, and no recovery: it stays up
    calm[13:] = [calm[12] - 0.01 * k for k in range(17)]
    with pytest.raises(HealthCheckError, match="it oscillates"):
        RUN_CHECKS["loss_stable"](run(calm))
