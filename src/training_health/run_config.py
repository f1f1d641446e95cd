"""What a pytest session asks of a health run, read from its config: shared by the plugin and the
option check (``validation.py``), so that neither imports the other. No TensorFlow at import.
"""

from __future__ import annotations

import pytest

from training_health.defaults import HEALTHY_INITS, SEED_MODEL
from training_health.settings import flag

LAYER_NAMES = pytest.StashKey[list]()  # the grid's layers, from the model the option check built
TRAINING_DATA = pytest.StashKey[object]()  # the session's TrainingData, loaded once
# Options that name what to train: giving one of them asks for the built-in checks.
RUN_OPTIONS = ("health_model", "health_data", "health_train_step")


def csv_option(config, name: str) -> list[str]:
    return [v.strip() for v in (config.getoption(name) or "").split(",") if v.strip()]


def model_spec(config) -> str:
    return config.getoption("health_model") or SEED_MODEL


def grid_inits(config) -> list[str]:
    if config.getoption("health_inits") is not None:
        return csv_option(config, "health_inits")
    return list(HEALTHY_INITS) if model_spec(config) == SEED_MODEL else ["default"]


def training_data(config):
    """The session's training data (``--health-data`` or the verified MNIST), loaded once: the model
    contract reads it at configure time, the probe at test time."""
    if TRAINING_DATA not in config.stash:
        from training_health.data.user_data import load_training_data

        spec = config.getoption("health_data")
        option = flag(config, "data")
        config.stash[TRAINING_DATA] = load_training_data(spec, config.getoption("health_mnist_path"), option=option)
    return config.stash[TRAINING_DATA]
