"""Where the time to a verdict goes: the training steps against everything else.

The probe times its phases (``Trajectory.timings``: setup = model inputs and the measurements
before training, trace = tracing the compiled loop and TensorFlow's optimization of its graph on
the first call, train = the steps, finish = the measurements after; run_checks = the run-level checks of
``suite.test_training_run``, added as they run); the caller adds model
building, its start-up (pytest's collection, or the main job's imports and data) and the wall
time since it started.
"""

from __future__ import annotations


def time_split(runs, wall: float, build: float = 0.0, startup: float = 0.0, workers: int = 1) -> str:
    """One line, e.g. "training 10.1 s of 14.2 s wall (1.41x); tracing 1.2 s, ...".

    ``runs`` are trajectories; training is their compiled loops' run time: the steps only (under
    XLA it includes compiling the step, which happens on the first step).
    """
    return time_split_of(phase_totals(runs, build), wall, startup, workers)


def phase_totals(runs, build: float = 0.0) -> dict[str, float]:
    """Seconds per phase over ``runs``: train, trace, measure, build (what an xdist worker reports)."""
    phase = lambda name: sum(t.timings.get(name, 0.0) for t in runs)  # noqa: E731
    return {
        "train": sum(t.timings.get("train", t.seconds) for t in runs),
        "trace": phase("trace"),
        "measure": phase("setup") + phase("finish"),
        "checks": phase("run_checks"),
        "build": build,
    }


def time_split_of(totals: dict[str, float], wall: float, startup: float = 0.0, workers: int = 1) -> str:
    """The line from phase totals; with several xdist workers the phases are summed over workers, so
    the ratio compares the wall time with one worker's share of the training."""
    train, trace, measure, build, checks = (
        totals.get(k, 0.0) for k in ("train", "trace", "measure", "build", "checks")
    )
    share = train / workers
    other = max(wall - (train + trace + measure + build + checks) / workers - startup, 0.0)
    ratio = f"{wall / share:.2f}x" if share > 0 else "no training"
    over = f" (summed over {workers} workers)" if workers > 1 else ""
    return (
        f"training {train:.1f} s{over} of {wall:.1f} s wall ({ratio}); start-up {startup:.1f} s, "
        f"tracing {trace:.1f} s, measurements before/after training {measure:.1f} s, "
        f"model building {build:.1f} s, "
        + (f"run-level checks {checks:.1f} s (overfit_batch trains), " if checks else "")
        + f"other {other:.1f} s (data, checks, reports, pictures)"
    )
