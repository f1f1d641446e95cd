"""Where the time to a verdict goes: the training steps against everything else.

The probe times its phases (``Trajectory.timings``: setup = model inputs and the
measurements before training, trace = tracing the compiled loop, train = the steps, finish =
the measurements after); the caller adds model building and the wall time since it started.
"""

from __future__ import annotations


def time_split(runs, wall: float, build: float = 0.0) -> str:
    """One line, e.g. "training 10.1 s of 14.2 s wall (1.41x); tracing 1.2 s, ...".

    ``runs`` are trajectories; training is their compiled loops' run time (on the first call
    that includes TensorFlow's graph optimization of the loop, ~0.3 s, and under XLA compiling the step).
    """
    phase = lambda name: sum(t.timings.get(name, 0.0) for t in runs)  # noqa: E731
    train = sum(t.timings.get("train", t.seconds) for t in runs)
    trace, measure = phase("trace"), phase("setup") + phase("finish")
    other = max(wall - train - trace - measure - build, 0.0)
    ratio = f"{wall / train:.2f}x" if train > 0 else "no training"
    return (
        f"training {train:.1f} s of {wall:.1f} s wall ({ratio}); tracing {trace:.1f} s, "
        f"measurements before/after training {measure:.1f} s, model building {build:.1f} s, "
        f"other {other:.1f} s (start-up, TensorFlow import, collection, MNIST, checks, pictures)"
    )
