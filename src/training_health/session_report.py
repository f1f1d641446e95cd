"""Green means checked: a session whose selected health tests all skipped fails, and says why.

Health tests are the tests that use one of the plugin's ``health_*`` fixtures (the plugin marks
them ``training_health``, so ``-m training_health`` selects them). Other tests do not count: a
project's unrelated pytest run with the plugin installed is unaffected. Everything is counted
from test reports, which also reach the controller under pytest-xdist (its items do not).

The same reports carry the dynamics baselines a run wrote (a ``record_property`` of the test),
listed in the terminal summary so that no baseline changes unnoticed.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

MARK = "training_health"
ALLOW_SKIPPED_OPTION = "--health-allow-skipped"
SEED_IN_ID = re.compile(r"-seed(\d+)(?=[-\]])")  # the --health-seeds parameter in a test id
BASELINE_PROPERTY = "training_health_baseline"  # record_property(BASELINE_PROPERTY, "<what>: <path>")


def without_xdist_group(nodeid: str) -> str:
    """``test[cell-seed1-conv1]@cell-seed1`` (an xdist id: plugin.GroupInTestIds) -> ``test[cell-seed1-conv1]``,
    ``test_fit@group`` -> ``test_fit``: the id a serial run gives (one test over its seeds: a serial summary said
    39 tests where xdist's said 78). The suffix is an ``@`` after the test's name and parameters."""
    if nodeid.endswith("]"):  # parameters last: no suffix
        return nodeid
    if "]@" in nodeid:
        return nodeid[: nodeid.rfind("]@") + 1]
    name = nodeid.rsplit("::", 1)[-1]  # a test's name has no "@" or "[" of its own
    return nodeid[: len(nodeid) - len(name) + name.find("@")] if "@" in name and "[" not in name else nodeid


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
        self.by_seed: dict[str, dict[str, str]] = {}  # test id without its seed -> {seed: outcome}
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
        self._record_seed(report)
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skip_reasons[skip_reason(report)] += 1
        elif report.when == "call" or report.failed:
            self.checked.add(report.nodeid)
        if report.when == "teardown":  # it carries every property the test recorded
            for name, value in report.user_properties:
                if name == BASELINE_PROPERTY:
                    what, _, path = value.partition(": ")
                    self.baselines[path] = what

    def _record_seed(self, report) -> None:
        """With --health-seeds, each test's outcome per seed (setup and call: a failed setup counts)."""
        if not self.config.getoption("health_seeds", None):
            return  # an id's "-seed0-" is only a --health-seeds cell when that option was given
        match = SEED_IN_ID.search(report.nodeid)
        if not match or (report.when != "call" and not report.failed):
            return
        outcomes = self.by_seed.setdefault(SEED_IN_ID.sub("", without_xdist_group(report.nodeid)), {})
        if outcomes.get(match.group(1)) != "failed":
            outcomes[match.group(1)] = report.outcome

    def seed_verdicts(self) -> list[str]:
        """'<test>: fails at 2 of 3 seeds (0, 2)' for every test that failed at some seed."""
        lines = []
        for test, outcomes in sorted(self.by_seed.items()):
            failed = sorted((seed for seed, outcome in outcomes.items() if outcome == "failed"), key=int)
            if failed:
                lines.append(f"{test}: fails at {len(failed)} of {len(outcomes)} seeds ({', '.join(failed)})")
        return lines

    def nothing_checked(self) -> bool:
        return bool(self.selected) and not self.checked

    def is_controller(self) -> bool:
        return not hasattr(self.config, "workerinput")  # an xdist worker's verdict is the controller's to make

    def pytest_sessionfinish(self, session) -> None:
        if self.is_controller() and self.nothing_checked() and not self.config.getoption("health_allow_skipped"):
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.is_controller() and self.notes:
            self.notes_once()

    def notes_once(self) -> None:
        """The notes are listed in their own block (``write_notes``): pytest's warnings summary printed each again,
        with a path and a source line, 5 notes in 20 lines more (a fifth user). ``-W error::TrainingHealthWarning``
        still turns them into failures: only what the summary shows changes."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        stats = getattr(reporter, "stats", None)
        if not stats or "warnings" not in stats:
            return
        others = [w for w in stats["warnings"] if "TrainingHealthWarning:" not in str(getattr(w, "message", ""))]
        if others:
            stats["warnings"] = others
        else:
            del stats["warnings"]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.is_controller():
            return
        if self.notes:
            self.write_notes(terminalreporter)
        if self.baselines:
            terminalreporter.section("training health: dynamics baselines written")
            for path, what in sorted(self.baselines.items()):
                terminalreporter.write_line(f"{what:>9s}  {path}")
        if self.by_seed:
            self.write_seed_verdicts(terminalreporter)
        if self.nothing_checked():
            self.write_nothing_checked(terminalreporter)

    def write_seed_verdicts(self, terminalreporter) -> None:
        verdicts = self.seed_verdicts()
        terminalreporter.section("training health: verdicts over seeds", red=bool(verdicts), green=not verdicts)
        for line in verdicts:
            terminalreporter.write_line(line)
        if not verdicts:
            terminalreporter.write_line(f"{len(self.by_seed)} tests passed at every seed")

    def write_notes(self, terminalreporter) -> None:
        terminalreporter.section("training health: notes (warnings, not failures)", yellow=True)
        for message, nodeids in self.notes.items():
            test = nodeids[0].rsplit("::", 1)[-1]
            terminalreporter.write_line(f"{test}: {message}")
        terminalreporter.write_line(
            f"{len(self.notes)} finding(s) that do not stop learning: none of them failed a test. "
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
