"""The corpus of real training bugs (``fixtures/bug_corpus``) is consistent: no training here.

Every program names its source, its benchmark's label, a category and an expected cause; every function the
manifest names exists in its module and has the contract's signature; importing a program builds no model and
reads no data; the runner reads pytest's output the way the corpus baseline (NOTES.md) depends on.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from fixtures.bug_corpus import manifest, run
from fixtures.bug_corpus.manifest import PACKAGE, PROGRAMS


def program_module(program):
    return importlib.import_module(f"{PACKAGE}.{program.module}")


def test_the_corpus_has_at_least_15_programs_with_unique_names():
    names = [p.name for p in PROGRAMS]
    assert len(names) >= 15
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_program_names_its_source_label_category_and_cause(program):
    for field in ("category", "benchmark", "source_id", "label", "cause"):
        assert getattr(program, field).strip(), f"{program.name} has no {field}"
    assert program.cause == program.cause.lower(), "causes are matched against lowercased text"
    pattern = re.compile(program.cause)
    # A cause must not match what every failing session prints whatever went wrong.
    neutral_texts = (
        "1 failed, 4 passed",
        "assertionerror: layer conv2d has no weights",
        "exit status 1",
        "grad norm median 2.6e-17, conv2d dead units 0%, rms step per weight 9.7e-21 at lr 0.00255",
    )
    for neutral in neutral_texts:
        assert not pattern.search(neutral), f"{program.name}'s cause {program.cause!r} matches {neutral!r}"
    number = re.search(r"\d{6,}|[A-Z]+-\d+|model_\w+|tmp_\w+", program.source_id).group(0)
    assert number in inspect.getdoc(program_module(program)), f"{program.module}'s docstring must cite {number}"


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_program_and_twin_functions_exist_with_the_contract_signature(program):
    module = program_module(program)
    runs = [program.faulty] + ([program.twin] if program.twin else [])
    assert program.twin is not None or "no fixed" in inspect.getdoc(module), "a program without a twin says why"
    for which in runs:
        factory = getattr(module, which.model)
        assert list(inspect.signature(factory).parameters) == ["initializer", "seed"]
        if which.data:
            assert not inspect.signature(getattr(module, which.data)).parameters
        if which.train_step:
            assert len(inspect.signature(getattr(module, which.train_step)).parameters) == 3
    options = program.options(program.faulty)
    assert options[:2] == ["--health-model", f"{PACKAGE}.{program.module}:{program.faulty.model}"]


def test_importing_a_program_builds_nothing_and_reads_no_data(monkeypatch):
    """Programs only define functions: the plugin imports them before any training and for --collect-only."""
    from training_health.data import mnist

    def no_data(*args, **kwargs):
        raise AssertionError("MNIST read at import")

    monkeypatch.setattr(mnist, "load_mnist", no_data)
    import numpy as np
    import tensorflow as tf

    for program in PROGRAMS:
        module = importlib.reload(program_module(program))
        made = [
            name
            for name, value in vars(module).items()
            if isinstance(value, (tf.keras.Model, tf.Variable, tf.Tensor, np.ndarray))
        ]
        assert not made, f"{program.module} makes {made} at import"


def test_runner_selects_by_name_and_refuses_unknown_names():
    assert [p.name for p in run.select("xor_mae")] == ["xor_mae"]
    assert len(run.select(None)) == len(PROGRAMS)
    with pytest.raises(SystemExit, match="unknown program"):
        run.select("no_such_program")


FAILED_OUTPUT = """\
FF.                                                                      [100%]
=================================== FAILURES ===================================
_________________ test_layer_updates[default-cpu-graph-conv2d] _________________
/site-packages/training_health/suite.py:32: in test_layer_updates
    assert params, f"layer {health_layer} has no weights"
E   AssertionError: layer conv2d has no weights
E   assert []
_________________ test_layer_updates[default-cpu-graph-hidden] _________________
layer hidden: 2 of 2 weights never updated
  likely cause(s):
  context: model=m:build training="SGD lr=0.01, loss mse + 1 regularization loss" data="MNIST"
  [1] weights never updated: hidden/kernel, hidden/bias
        fix: set hidden.trainable = True
========================== per-layer training health ===========================
hidden/kernel  0  100%  dead 0%->0%  learning rate
=========================== short test summary info ============================
FAILED training_health/suite.py::test_layer_updates[default-cpu-graph-conv2d] - AssertionError: layer conv2d
FAILED training_health/suite.py::test_layer_updates[default-cpu-graph-hidden]
2 failed, 1 passed in 7.28s
"""


def test_runner_reads_failures_without_test_source_or_the_summary_table():
    assert run.failed_tests(FAILED_OUTPUT) == [
        "test_layer_updates[default-cpu-graph-conv2d]",
        "test_layer_updates[default-cpu-graph-hidden]",
    ]
    text = run.failure_text(FAILED_OUTPUT, "", 1)
    assert "layer conv2d has no weights" in text and "fix: set hidden.trainable = True" in text
    assert "health_layer" not in text  # the test's own source line
    assert "regularization" not in text  # the context line says what ran, not what is wrong
    assert "learning rate" not in text and "dead" not in text  # the per-layer table of the summary
    assert run.first_statement(text) == "[1] weights never updated: hidden/kernel, hidden/bias"
    assert run.failure_reasons(FAILED_OUTPUT) == [
        "AssertionError: layer conv2d has no weights",
        "layer hidden: 2 of 2 weights never updated",
    ]


def test_runner_reads_a_refusal_before_training_from_stderr():
    stderr = "ERROR: training health: bad option(s):\n  --health-data m:data: labels are float64 [60000]\n"
    text = run.failure_text("", stderr, 4)
    assert "labels are float64" in text
    assert run.first_statement(text) == "--health-data m:data: labels are float64 [60000]"


def test_manifest_module_has_no_stray_programs():
    """Every program module in the folder is listed (a module left out would never be measured)."""
    from pathlib import Path

    folder = Path(manifest.__file__).parent
    helpers = {"__init__", "_common", "manifest", "run", "losses", "gradients"}
    modules = {path.stem for path in folder.glob("*.py")} - helpers
    assert modules == {p.module for p in PROGRAMS}


def test_a_program_named_after_its_bug_does_not_name_its_cause():
    """Messages quote the option value; the module's name is not a diagnosis."""
    program = manifest.by_name()["relu_output_binary"]
    option = f"--health-model {PACKAGE}.{program.module}:build"
    stderr = f"ERROR: training health: bad option(s):\n  {option}: needs 2 outputs\n"
    text = run.without_program_names(run.failure_text("", stderr, 4), program)
    assert not re.search(program.cause, text.lower())
    assert "needs 2 outputs" in text


def test_stable_names_shim_wraps_only_the_model_option(tmp_path):
    program = manifest.by_name()["linear_mse_lr3"]
    options = run.with_stable_names(program.options(program.faulty), tmp_path)
    assert options[:2] == ["--health-model", "corpus_shim:build"]
    assert options[2:] == program.options(program.faulty)[2:]  # data and train step unchanged
    shim = (tmp_path / "corpus_shim.py").read_text()
    assert f"{PACKAGE}.{program.module}" in shim and "'build'" in shim and "clear_session()" in shim
    compile(shim, "corpus_shim.py", "exec")
