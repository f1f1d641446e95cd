"""The plugin's built-in per-layer checks on the seed network, collected as any project can collect them."""

from training_health.suite import *  # noqa: F403
