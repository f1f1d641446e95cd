"""A fix line names what the user can change where the run was started, in words that are true and code that runs.

The knob: ``--health-frozen`` / ``--health-steps`` in ``pytest --health-model``, ``--frozen`` / ``--steps`` in
``python -m training_health``, the keywords ``frozen=`` / ``steps=`` in ``health_check(...)`` and
``check_training(...)`` (a user's own test got told to pass a pytest option it had not used). The unfreeze: a
layer's name is no Python attribute (``set sequential/conv2d_1.trainable = True`` was printed), so the fix says
the layer in words and gives the code that reaches it from the built model, nested models too.
"""

import contextlib
import re
from types import SimpleNamespace

import numpy as np
import pytest

from fixtures.user_models import transfer_nested
from training_health import check_training
from training_health.errors import HealthCheckError
from training_health.model.variables import model_variables
from training_health.settings import COMMAND_PREFIX, KEYWORDS, frozen_declaration, setting, settings_spelt


def test_a_setting_is_spelt_as_where_the_run_started():
    assert setting("frozen", "conv2d,conv2d_1") == "--health-frozen conv2d,conv2d_1"  # pytest, the default
    assert setting("steps", 100) == "--health-steps 100"
    with settings_spelt(COMMAND_PREFIX):
        assert setting("steps", 100) == "--steps 100"
        assert frozen_declaration() == "--frozen"
    with settings_spelt(KEYWORDS):
        assert setting("frozen", "conv2d,conv2d_1") == 'frozen="conv2d,conv2d_1"'
        assert setting("steps", 100) == "steps=100"
        assert frozen_declaration() == "frozen="
    assert frozen_declaration() == "--health-frozen or the health_frozen marker"  # restored on leaving


def test_a_dataset_batch_note_names_the_keyword_in_a_fixture_run():
    """A tf.data.Dataset batched by 64, checked at 128 through health_check: the note says ``batch_size=64``."""
    from training_health.checks.data_checks import _dataset_batch_not_used

    data = SimpleNamespace(dataset_batch=64, train_labels=np.zeros(6000), source="load()")
    run = SimpleNamespace(data=data, config=SimpleNamespace(batch_size=128))
    assert "Give --health-batch-size 64 to" in _dataset_batch_not_used(run)[0]
    with settings_spelt(KEYWORDS):
        assert "Give batch_size=64 to" in _dataset_batch_not_used(run)[0]


def test_a_frozen_base_is_fixed_with_keywords_and_code_that_unfreezes_it(tmp_path):
    """Phase 1 of the Keras transfer-learning guide (``base_model.trainable = False``) checked from a script:
    the fix names ``frozen=`` (no pytest option), and its code, run on the model, makes every weight train."""
    with pytest.raises(HealthCheckError) as caught:
        check_training(transfer_nested.build_frozen_base, data=transfer_nested.one_hot, steps=10, pictures=tmp_path)
    message = str(caught.value)
    assert "--health-" not in message, message
    fix = re.search(r"fix: set trainable = True on layer '(\w+)' \((model[.\w\[\]]*\.trainable = True)\), or declare "
                    r'the freeze: frozen="([\w/,]+)"', message)  # fmt: skip
    assert fix, message
    assert fix.group(1) == "sequential", message  # the base model frozen whole, not each of its layers
    assert "declare it: frozen=" in message, message
    model = transfer_nested.build_frozen_base("default", 0)
    assert model_variables(model).frozen  # the base's four weights
    exec(fix.group(2), {"model": model})  # the printed code, as printed
    assert model_variables(model).frozen == [], fix.group(2)


OWN_STEP = "train step mod:step (its own optimizer, loss and variable list)"  # tests/test_diagnosis_fixes.py


@pytest.mark.parametrize(
    "spelling, figure, bound",
    [
        (None, "--health-probe-output", "--health-min-relative-change"),  # pytest --health-model
        (COMMAND_PREFIX, "--out", "--thresholds"),  # python -m training_health: figures in --out, no bound option
        (KEYWORDS, "pictures=", "thresholds="),  # health_check / check_training: their keywords
    ],
)
def test_a_diagnosis_fix_line_names_the_knob_of_where_the_run_started(spelling, figure, bound):
    """Fixture and check_training runs were told "look at its figure (--health-probe-output)" and
    "(--health-min-relative-change, or calibrate ...)": they take pictures= and thresholds=, no pytest option. The
    trajectories are built by hand (tests/test_diagnosis_fixes.py): a row no rule explains, and a bound of 50 that
    the steps could not reach."""
    from tests.test_diagnosis_fixes import trajectory
    from training_health.checks.diagnosis import diagnose

    traj = trajectory(OWN_STEP, None)
    with settings_spelt(spelling) if spelling else contextlib.nullcontext():
        unexplained = diagnose(traj, "hidden/kernel", check="moved", bound=2 * traj.relative_change("hidden/kernel"))
        unreachable = diagnose(traj, "hidden/kernel", check="moved", bound=50.0)
    assert unexplained.title == "no single cause stands out", unexplained
    assert f"look at its figure ({figure}) and calibrate bounds" in str(unexplained), unexplained
    assert unreachable.title == "bound out of reach of the steps taken", unreachable
    assert f"({bound}, or calibrate bounds for this model" in str(unreachable), unreachable
    if spelling:
        assert "--health-" not in str(unexplained) + str(unreachable)


def step_forgetting_its_loss(model, images, labels):
    """A train step that never returns its loss (the contract: it returns the loss of the step)."""
    model(images, training=True)


def test_a_train_step_message_names_the_keyword_in_a_fixture_run():
    """A step given to check_training that returns None was told "--health-train-step ... returned None"."""
    with pytest.raises(TypeError) as caught:
        check_training(
            transfer_nested.build, data=transfer_nested.one_hot, train_step=step_forgetting_its_loss, pictures=None
        )
    assert f'train_step="{__name__}:step_forgetting_its_loss" returned None' in str(caught.value), caught.value


def test_a_bad_mnist_path_names_the_keyword_in_a_fixture_run(tmp_path):
    """check_training(mnist_path=...) pointing nowhere was told "The path comes from --health-mnist-path"."""
    from training_health.errors import UsageError

    with pytest.raises(UsageError) as caught:
        check_training(transfer_nested.build, mnist_path=tmp_path / "nowhere", pictures=None)
    assert "The path comes from mnist_path=" in str(caught.value) and "--health-" not in str(caught.value)


def test_a_frozen_name_the_model_lacks_is_refused_before_training(monkeypatch):
    """``check_training(..., frozen="conv2d_9")`` trained the whole run before saying the name matched no layer (a
    fifth user); the built model's layers decide it before the first step."""
    from training_health.errors import UsageError
    from training_health.probe import training_probe

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the frozen names were checked")

    monkeypatch.setattr(training_probe, "run_probe", no_training)
    with pytest.raises(UsageError, match=r"frozen=\('conv2d_9',\): no layer 'conv2d_9' in the model"):
        check_training(transfer_nested.build_frozen_base, data=transfer_nested.one_hot, frozen="conv2d_9")
