"""Where the time to a verdict goes: the training steps against everything else.

The probe times its phases (``Trajectory.timings``: setup = model inputs and the measurements
before training, trace = tracing the compiled loop and TensorFlow's optimization of its graph on
the first call, train = the steps, finish = the measurements after; run_checks = the run-level checks of
``suite.test_training_run``, added as they run); the caller adds model
building, its start-up (pytest's collection, or the main job's imports and data) and the wall
time since the process started (``process_age``: Python's and pytest's own start counted too).

The time to a verdict is judged against two targets (issue 16: wall <= 1.5x the training; issue 17:
wall <= TensorFlow's import + 1.3x the training, and a small model's start-up <= 1.5x TensorFlow's
import plus building the model); the line prints each ratio as measured, beside its target.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

WALL_TARGET = 1.5  # wall / training (issue 16)
BEYOND_IMPORT_TARGET = 1.3  # (wall - TensorFlow import) / training (issue 17)
STARTUP_TARGET = 1.5  # start-up / (TensorFlow import + building one model) (issue 17)

tf_import_seconds: float | None = None  # set by import_tensorflow_timed; None: not timed in this process


def process_age() -> float:
    """Seconds since this process started (Linux: /proc), else 0.0 (the caller's own start is used)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime: clock ticks after boot
        return max(float(Path("/proc/uptime").read_text().split()[0]) - started, 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def import_tensorflow_timed() -> None:
    """Import TensorFlow now and keep how long it took (the part of start-up no plugin can save); when
    something imported it before, its cost is not known here and stays None."""
    global tf_import_seconds
    if "tensorflow" in sys.modules:
        return
    began = time.perf_counter()
    import tensorflow  # noqa: F401

    tf_import_seconds = time.perf_counter() - began


def time_split(runs, wall: float, build: float = 0.0, startup: float = 0.0, workers: int = 1) -> str:
    """One line, e.g. "training 10.1 s of 14.2 s wall (1.41x); tracing 1.2 s, ...", and the time to verdict.

    ``runs`` are trajectories; training is their compiled loops' run time: the steps only (under
    XLA it includes compiling the step, which happens on the first step).
    """
    runs = list(runs)
    line = time_split_of(phase_totals(runs, build), wall, startup, workers)
    verdict = time_to_verdict(phase_totals(runs, build), wall, startup, len(runs), workers)
    return line + (f"\ntime to verdict: {verdict}" if verdict else "")


def phase_totals(runs, build: float = 0.0) -> dict[str, float]:
    """Seconds per phase over ``runs``: train, trace, measure, build (what an xdist worker reports)."""
    phase = lambda name: sum(t.timings.get(name, 0.0) for t in runs)  # noqa: E731
    runs = list(runs)
    return {
        "train": sum(t.timings.get("train", t.seconds) for t in runs),
        "trace": phase("trace"),
        "measure": phase("setup") + phase("finish"),
        "checks": phase("run_checks"),
        "build": build,
    }


def time_split_of(
    totals: dict[str, float], wall: float, startup: float = 0.0, workers: int = 1, tf_import: float | None = None
) -> str:
    """The line from phase totals; with several xdist workers the phases are summed over workers, so
    the ratio compares the wall time with one worker's share of the training. ``tf_import``: TensorFlow's
    import where this process did not time one (an xdist controller imports none: its workers' longest)."""
    train, trace, measure, build, checks = (
        totals.get(k, 0.0) for k in ("train", "trace", "measure", "build", "checks")
    )
    share = train / workers
    other = max(wall - (train + trace + measure + build + checks) / workers - startup, 0.0)
    # Under a second of training (a small model), a ratio to it says nothing: the wait is start-up.
    ratio = f"{wall / share:.2f}x" if share >= 1.0 else ("under 1 s of training" if share > 0 else "no training")
    over = f" (summed over {workers} workers, as each phase below but start-up)" if workers > 1 else ""
    return (
        f"training {train:.1f} s{over} of {wall:.1f} s wall ({ratio}); start-up {startup:.1f} s{_of_it(tf_import)}, "
        f"tracing {trace:.1f} s, measurements before/after training {measure:.1f} s, "
        f"model building {build:.1f} s, "
        + (f"run-level checks {checks:.1f} s, " if checks else "")
        + f"other {other:.1f} s (data, checks, reports, pictures)"
    )


def time_to_verdict(
    totals: dict[str, float], wall: float, startup: float, runs: int, workers: int = 1, tf_import: float | None = None
) -> str:
    """The wall time against its targets, e.g. "20.1 s = TF import 2.6 s + 1.27x training 13.8 s (target <= 1.3x)
    ...", each ratio over its target marked "over". Under xdist the workers import TensorFlow side by side (the
    slowest's import is subtracted) and train side by side (one worker's share of the training is the measure).
    Empty without training or without a timed import."""
    tf_import = tf_import_seconds if tf_import is None else tf_import
    summed = totals.get("train", 0.0)
    train = summed / max(workers, 1)
    if train <= 0 or tf_import is None:
        return ""
    trained = f"training {train:.1f} s" + (f" per worker ({summed:.1f} s over {workers})" if workers > 1 else "")
    beyond = (wall - tf_import) / train
    one_build = totals.get("build", 0.0) / max(runs, 1)
    startup_ratio = startup / (tf_import + one_build)
    startup_part = (
        f"start-up {startup:.1f} s = {startup_ratio:.2f}x (TF import {tf_import:.1f} s + building one model "
        f"{one_build:.1f} s) {_target(startup_ratio, STARTUP_TARGET)}"
    )
    if train < tf_import:  # a small model: its training is a sliver of the wait, the start-up is the wait
        short = f"{trained} is shorter than TF's import, so start-up is what to judge"
        return f"{wall:.1f} s; {short}: {startup_part}"
    return (
        f"{wall:.1f} s = TF import {tf_import:.1f} s + {beyond:.2f}x {trained} {_target(beyond, BEYOND_IMPORT_TARGET)}"
        f"; {wall / train:.2f}x training {_target(wall / train, WALL_TARGET)}; {startup_part}"
    )


def _target(ratio: float, target: float) -> str:
    return f"(target <= {target}x{'' if ratio <= target else ': over'})"


def _of_it(tf_import: float | None = None) -> str:
    tf_import = tf_import_seconds if tf_import is None else tf_import
    return f" (TF import {tf_import:.1f} s)" if tf_import is not None else ""
