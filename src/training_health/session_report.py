"""Green means checked: a session whose selected health tests all skipped fails, and says why.

Health tests are the tests that use one of the plugin's ``health_*`` fixtures (the plugin marks
them ``training_health``, so ``-m training_health`` selects them). Other tests do not count: a
project's unrelated pytest run with the plugin installed is unaffected. Everything is counted
from test reports, which also reach the controller under pytest-xdist (its items do not).

The same reports carry the dynamics baselines a run wrote (a ``record_property`` of the test),
listed in the terminal summary so that no baseline changes unnoticed.
"""

from __future__ import annotations

from collections import Counter

import pytest

MARK = "training_health"
ALLOW_SKIPPED_OPTION = "--health-allow-skipped"
BASELINE_PROPERTY = "training_health_baseline"  # record_property(BASELINE_PROPERTY, "<what>: <path>")


def skip_reason(report) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


class SessionReport:
    """Registered by the plugin at configure; one per session."""

    def __init__(self, config):
        self.config = config
        self.selected: set[str] = set()
        self.checked: set[str] = set()
        self.skip_reasons: Counter[str] = Counter()
        self.baselines: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}  # TrainingHealthWarning message -> test ids that warned

    def pytest_warning_recorded(self, warning_message, when, nodeid, location) -> None:
        """A finding that does not stop learning (``checks/severity.py``): listed in the summary's notes."""
        from training_health.errors import TrainingHealthWarning

        if issubclass(warning_message.category, TrainingHealthWarning):
            self.notes.setdefault(str(warning_message.message), []).append(nodeid)

    def pytest_runtest_logreport(self, report) -> None:
        if MARK not in report.keywords:
            return
        self.selected.add(report.nodeid)
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skip_reasons[skip_reason(report)] += 1
        elif report.when == "call" or report.failed:
            self.checked.add(report.nodeid)
        if report.when == "teardown":  # it carries every property the test recorded
            for name, value in report.user_properties:
                if name == BASELINE_PROPERTY:
                    what, _, path = value.partition(": ")
                    self.baselines[path] = what

    def nothing_checked(self) -> bool:
        return bool(self.selected) and not self.checked

    def is_controller(self) -> bool:
        return not hasattr(self.config, "workerinput")  # an xdist worker's verdict is the controller's to make

    def pytest_sessionfinish(self, session) -> None:
        if self.is_controller() and self.nothing_checked() and not self.config.getoption("health_allow_skipped"):
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.is_controller():
            return
        if self.notes:
            self.write_notes(terminalreporter)
        if self.baselines:
            terminalreporter.section("training health: dynamics baselines written")
            for path, what in sorted(self.baselines.items()):
                terminalreporter.write_line(f"{what:>9s}  {path}")
        if self.nothing_checked():
            self.write_nothing_checked(terminalreporter)

    def write_notes(self, terminalreporter) -> None:
        terminalreporter.section("training health: notes (warnings, not failures)", yellow=True)
        for message, nodeids in self.notes.items():
            test = nodeids[0].rsplit("::", 1)[-1]
            terminalreporter.write_line(f"{test}: {message}")
        terminalreporter.write_line(
            f"{len(self.notes)} finding(s) that do not stop learning; the tests passed. "
            "Each says what it measured and what to change if you want it gone."
        )

    def write_nothing_checked(self, terminalreporter) -> None:
        allowed = self.config.getoption("health_allow_skipped")
        terminalreporter.section("training health: nothing was checked", red=not allowed, yellow=allowed)
        write = terminalreporter.write_line
        write(f"All {len(self.selected)} selected health tests skipped:")
        for reason, count in self.skip_reasons.most_common():
            write(f"  {count} x {reason}")
        if allowed:
            write(f"Accepted by {ALLOW_SKIPPED_OPTION}: exit status 0.")
        else:
            write(
                f"A run that checks nothing is not green: exit status 1. Select tests that can run here, "
                f"or pass {ALLOW_SKIPPED_OPTION} to accept it."
            )
