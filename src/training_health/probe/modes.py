"""Execution modes and the default run length; no TensorFlow import, so the plugin loads fast."""

MODES = ("graph", "xla", "eager")
DEFAULT_STEPS = 30  # the step count checks/thresholds.toml is calibrated at
