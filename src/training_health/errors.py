"""One error hierarchy for the package (exported from ``training_health``).

* :class:`UsageError` and its subclasses: what the user gave cannot be run (an option, a model
  factory, a data function, a contract). The plugin turns them into one ``pytest.UsageError``
  before training (exit status 4); the main job prints them and exits 4.
* :class:`HealthCheckError`: a check ran and failed (an ``AssertionError``, so pytest shows it as a failure).
* :class:`TrainingHealthWarning`: a finding that does not stop learning (a redundant bias before a
  normalization, a slow but moving layer): shown by pytest's warnings summary, never a failure.

Standard library only: importing it costs nothing.
"""

from __future__ import annotations


class TrainingHealthError(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(TrainingHealthError, ValueError):
    """Input that cannot be trained or checked; the message names the option and what to do."""


class HealthCheckError(TrainingHealthError, AssertionError):
    """A health check failed; ``offenders`` keeps the rows for tests and reports."""

    def __init__(self, message: str, offenders: list | None = None):
        super().__init__(message)
        self.offenders = list(offenders or [])


class TrainingHealthWarning(UserWarning):
    """A finding that does not stop learning; reported, never failed."""
