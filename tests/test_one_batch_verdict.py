"""overfit_batch's verdict from hand-built fits (no training): a model is "slow", not "stuck", when its loss on the
16 examples falls below the best any constant answer can reach (the entropy of the labels), even before it flips
a prediction; a constant model can never get there."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training_health.checks.one_batch import SLOW, STUCK, _constant_loss, fit_verdict
from training_health.model.losses import BINARY, SPARSE, LossKind

ODD_EVEN = np.array([1] * 11 + [0] * 5)  # 11 of 16 one label: the constant answer gets 11 right
BEST_CONSTANT = -(11 / 16 * math.log(11 / 16) + 5 / 16 * math.log(5 / 16))  # 0.621


def fit(loss: float, correct: int = 11, constant_loss: float | None = BEST_CONSTANT) -> dict:
    return {"correct": correct, "left": 0.84, "loss": loss, "constant_correct": 11, "constant_loss": constant_loss}


def test_the_constant_loss_is_the_entropy_of_the_labels():
    binary = LossKind(family=BINARY, from_logits=False, name="binary_crossentropy")
    sparse = LossKind(family=SPARSE, from_logits=True, name="sparse_categorical_crossentropy")
    assert _constant_loss(ODD_EVEN, binary) == pytest.approx(BEST_CONSTANT)
    assert _constant_loss(ODD_EVEN, sparse) == pytest.approx(BEST_CONSTANT)
    assert _constant_loss(np.arange(16) % 4, sparse) == pytest.approx(math.log(4))


def test_a_loss_below_every_constant_answer_is_learning_even_with_no_prediction_flipped():
    """Bug corpus softmax_one_unit_mae's fixed twin: 11 of 16 right (= the constant), loss 0.579 < 0.621."""
    assert fit_verdict(fit(0.579)) == SLOW


def test_a_model_at_the_constant_answer_is_stuck():
    """A softmax over one unit (always 1) or all-dead units: the loss stays at or above the constant's best."""
    assert fit_verdict(fit(BEST_CONSTANT)) == STUCK
    assert fit_verdict(fit(0.69)) == STUCK
    assert fit_verdict(fit(0.5, constant_loss=None)) == STUCK  # not a cross-entropy: accuracy alone decides


def test_a_batch_of_one_class_is_fitted_with_two():
    """A constant answer fits 16 examples of one class: the breast-cancer data starts with 16 malignant rows (a
    sixth user's run said "13 of 16 right, no more than the 16 that one constant answer gets"). The fit takes the
    first 8 of that class and the first 8 of the others; a batch that already mixes classes is kept as it is."""
    from training_health.checks.one_batch import _two_classes

    binary = LossKind(family=BINARY, from_logits=False, name="binary_crossentropy")
    sparse = LossKind(family=SPARSE, from_logits=True, name="sparse_categorical_crossentropy")
    labels = np.array([0.0] * 20 + [1.0] * 3 + [0.0] * 10 + [1.0] * 10)
    chosen = _two_classes(labels, 16, binary)
    assert list(chosen) == [*range(8), 20, 21, 22, 33, 34, 35, 36, 37], chosen
    assert list(_two_classes(np.arange(40) % 10, 16, sparse)) == list(range(16))
    one_hot = np.eye(3)[[2] * 18 + [0, 1]]
    assert sorted(one_hot[_two_classes(one_hot, 16, sparse)].argmax(-1)) == [0, 1] + [2] * 14
