"""Every bad --health-* value is refused before collection and training: one usage error (exit 4)
for the whole session, naming the option and what to do, and nothing written.

Each case runs pytest, as a user would, from a folder outside the repository with the installed
plugin. A child costs ~3-5 s of start-up, so the cases share four children (the options of a
group are independent: each adds its own line to the one error); ``--co`` makes sure that a
value let through would collect, never train.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.subprocess

USAGE_ERROR = 4
HEADER = "training health: bad option(s):"

MALFORMED_TOML = "[probe\nsteps = 30\n"
INCOMPLETE_TOML = "[probe]\nsteps = 30\n"  # no [defaults]: every parameter without its own bound would KeyError

# (id, group, options, what the error must say)
CASES = [
    (
        "steps-0",
        "a",
        ["--health-steps", "0"],
        "--health-steps 0: a run needs training steps, and the calibrated bounds hold from 10 on",
    ),
    (
        "steps-negative",
        "b",
        ["--health-steps", "-3"],
        "--health-steps -3: a run needs training steps, and the calibrated bounds hold from 10 on",
    ),
    ("seed-negative", "a", ["--health-seed", "-1"], "--health-seed -1: seeds are non-negative integers"),
    (
        "seed-dropped-by-seeds",
        "b",
        ["--health-seed", "3", "--health-seeds", "0,1"],
        "--health-seed 3 and --health-seeds 0,1: the seeds list replaces the single seed, so seed 3 would not run",
    ),
    ("inits-bogus", "a", ["--health-inits", "bogus"], "--health-inits: unknown bogus; choose from seed_normal"),
    ("inits-empty", "b", ["--health-inits", ""], "--health-inits '' names nothing: give at least one of seed_normal"),
    ("thresholds-missing", "a", ["--health-thresholds", "{files}/missing.toml"], "{files}/missing.toml does not exist"),
    (
        "thresholds-malformed",
        "b",
        ["--health-thresholds", "{files}/malformed.toml"],
        "--health-thresholds: {files}/malformed.toml is not valid TOML (",
    ),
    (
        "thresholds-incomplete",
        "c",
        ["--health-thresholds", "{files}/incomplete.toml"],
        "--health-thresholds: {files}/incomplete.toml lacks [defaults] relative_change",
    ),
    (
        "min-relative-change-negative",
        "a",
        ["--health-min-relative-change", "-1"],
        "--health-min-relative-change -1: must be > 0",
    ),
    (
        "probe-output-under-a-file",
        "a",
        ["--health-probe-output", "{files}/a-file/out"],
        "--health-probe-output {files}/a-file/out: {files}/a-file is a file, not a folder; give a folder path",
    ),
    (
        "devices-gpu-without-gpu",
        "b",
        ["--health-devices", "gpu"],
        "--health-devices asks for gpu, but TensorFlow sees no GPU",
    ),
    (
        "devices-empty",
        "a",
        ["--health-devices", ""],
        "--health-devices '' names nothing: give at least one of cpu, gpu",
    ),
    ("modes-empty", "a", ["--health-modes", ""], "--health-modes '' names nothing: give at least one of graph, xla"),
    (
        "model-not-importable",
        "c",
        ["--health-model", "nosuchmodule:build"],
        "--health-model nosuchmodule:build: cannot import 'nosuchmodule'",
    ),
    (
        "frozen-unknown-layer",  # alone: the model is only looked at once every other option is valid
        "d",
        ["--health-frozen", "conv_2"],
        "--health-frozen conv_2: the model has no such layer (its layers: conv1, conv2, fc1, out)",
    ),
    (
        "batch-size-0",
        "a",
        ["--health-batch-size", "0"],
        "--health-batch-size 0: a training step needs examples: give the batch size your training uses (1 or more)",
    ),
    (
        "batch-size-above-the-data",  # with the model: the data's size is known once it is loaded
        "d",
        ["--health-batch-size", "60001"],
        "--health-batch-size 60001: MNIST's training set has 60000 examples, fewer than one batch of 60001: "
        "every step would train on the same examples repeated within the batch. Give at least 60001 examples, "
        "or give --health-batch-size 60000 or less",
    ),
    (
        "train-step-without-model",  # a first user's forgotten --health-model: 39 errors, one paragraph each
        "e",
        ["--health-train-step", "mysteps:train_step"],  # refused before its module is imported: it has none
        "--health-train-step mysteps:train_step without --health-model: a train step trains the model it was written "
        "for; without --health-model the suite trains its built-in seed network, with that network's own recipe "
        "(TF1 Adam, the one its bounds were calibrated for). Give --health-model MODULE:FUNCTION, the factory of the "
        "model mysteps:train_step trains",
    ),
    (
        "mnist-path-missing",
        "c",
        ["--health-mnist-path", "{files}/nowhere"],
        "--health-mnist-path {files}/nowhere: does not exist",
    ),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    (folder / "malformed.toml").write_text(MALFORMED_TOML)
    (folder / "incomplete.toml").write_text(INCOMPLETE_TOML)
    (folder / "a-file").write_text("a regular file\n")
    return folder


@pytest.fixture(scope="module")
def group_runs(files, tmp_path_factory):
    """Runs each group's child once (when a case first asks), from a fresh folder outside the repository."""
    runs = {}

    def run(group):
        if group not in runs:
            options = [o.format(files=files) for _, g, opts, _ in CASES if g == group for o in opts]
            cwd = tmp_path_factory.mktemp(f"user-project-{group}")
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", "--health-suite"]
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU on any machine: the gpu case always applies
            result = subprocess.run(
                [*command, *options], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
            )
            runs[group] = (result, cwd)
        return runs[group]

    return run


@pytest.mark.parametrize("group, message", [pytest.param(g, m, id=i) for i, g, _, m in CASES])
def test_bad_option_is_one_usage_error_before_any_training(group_runs, files, group, message):
    result, cwd = group_runs(group)
    output = result.stdout + result.stderr
    assert result.returncode == USAGE_ERROR, output[-3000:]
    assert output.count(message.format(files=files)) == 1, output[-3000:]
    assert output.count(HEADER) == 1, output[-3000:]  # one error for the session, not one per test
    assert "collected" not in output and not (cwd / "probe-output").exists()  # refused before collection
