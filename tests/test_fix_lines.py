"""A fix line names what the user can change where the run was started, in words that are true and code that runs.

The knob: ``--health-frozen`` / ``--health-steps`` in ``pytest --health-model``, ``--frozen`` / ``--steps`` in
``python -m training_health``, the keywords ``frozen=`` / ``steps=`` in ``health_check(...)`` and
``check_training(...)`` (a user's own test got told to pass a pytest option it had not used). The unfreeze: a
layer's name is no Python attribute (``set sequential/conv2d_1.trainable = True`` was printed), so the fix says
the layer in words and gives the code that reaches it from the built model, nested models too.
"""

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
