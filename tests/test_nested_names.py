"""A model nested in another is named differently by Keras 2 and Keras 3; the plugin matches both spellings.

The model is ``fixtures/user_models/transfer_nested.py``: a Sequential base called inside a functional model,
as the Keras guide "Transfer learning & fine-tuning" writes it. Keras 3 (TF 2.21) names the base's weights
``sequential/conv2d/kernel``, Keras 2 (TF 2.15) ``conv2d/kernel``. One rule (``variables.pair_names`` /
``resolve_names``: equal up to the enclosing models' prefix, one-to-one, same shapes) serves the weights file
(``--health-initial-weights``), the upgrade report and ``--health-frozen``. This suite runs in one TF version:
the other version's spelling is produced by renaming the names of real files this version wrote
(``other_keras_spelling``), which is what the other version writes for this model.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.user_models import transfer_nested
from training_health.checks.health_checks import FROZEN_AS_DECLARED, assert_variables_updated
from training_health.data.user_data import load_training_data
from training_health.errors import UsageError
from training_health.model import initial_weights
from training_health.model.variables import model_variables, pair_names, resolve_names
from training_health.probe.training_probe import ProbeConfig, run_probe
from training_health.report import upgrade
from training_health.report.table import write_json
from training_health.suite import _known_frozen_names

ROOT = Path(__file__).resolve().parents[1]
MODEL = "fixtures.user_models.transfer_nested"
DATA = f"{MODEL}:one_hot"
STEPS = 12  # three windows of the upgrade report's tolerances, a few seconds per run
BASE = "sequential/"  # Keras 3's prefix for the base model's weights


def keras3() -> bool:
    import tensorflow as tf

    return tuple(int(p) for p in tf.__version__.split(".")[:2]) >= (2, 16)


def other_keras_spelling(name: str) -> str:
    """``name`` (a parameter or layer of transfer_nested.build) as the other Keras version spells it."""
    if name.startswith(BASE):
        return name[len(BASE) :]  # Keras 3 -> Keras 2: the base's layers without the enclosing model
    return BASE + name if name.startswith("conv2d") else name  # Keras 2 -> 3: the base's layers are conv2d*


def shapes_of(model) -> dict:
    return {n: tuple(v.shape) for n, v in model_variables(model).weights.items()}


@pytest.fixture(scope="module")
def one_hot_mnist():
    return load_training_data(DATA)


@pytest.fixture
def weights_file(tmp_path):
    initial_weights.use(tmp_path / "initial.npz")
    yield tmp_path / "initial.npz"
    initial_weights.use(None)  # the setting is per process: leave none for the next tests


# --- the rule ---------------------------------------------------------------------------------------------


def test_names_that_differ_by_the_nesting_prefix_pair_one_to_one():
    ours = shapes_of(transfer_nested.build("default", 0))
    assert any(n.startswith(BASE) for n in ours) == keras3()  # the spelling this test is about
    theirs = {other_keras_spelling(n): s for n, s in ours.items()}
    pairing = pair_names(ours, theirs)
    assert pairing.complete and pairing.pairs == {n: other_keras_spelling(n) for n in ours}
    # The first conv is the first conv in both spellings (Keras 3 once listed a nested model's layers reversed).
    first = next(n for n in ours if n.endswith("kernel"))
    assert ours[first] == (3, 3, 1, 8) and other_keras_spelling(first).endswith("conv2d/kernel")


def test_a_short_name_of_several_nested_layers_pairs_with_none():
    # As TF 2.21 names transfer_nested.build_two_bases: two bases whose helper named a layer "conv" by hand.
    ours = {"sequential/conv/kernel": (3, 3, 1, 8), "sequential_1/conv/kernel": (3, 3, 1, 8), "dense/kernel": None}
    pairing = pair_names(ours, {"conv/kernel": (3, 3, 1, 8), "dense/kernel": (800, 10)})
    assert pairing.pairs == {"dense/kernel": "dense/kernel"} and not pairing.complete
    assert pairing.ambiguous == {"conv/kernel": ["sequential/conv/kernel", "sequential_1/conv/kernel"]}
    resolved = resolve_names(["conv", "sequential_1/conv", "dense"], ["sequential/conv", "sequential_1/conv", "dense"])
    assert resolved.names == ["sequential_1/conv", "dense"]
    assert resolved.ambiguous == {"conv": ["sequential/conv", "sequential_1/conv"]} and not resolved.unknown


def test_names_that_pair_but_whose_shapes_differ_are_a_mismatch():
    # The user's TF 2.21 recording made before the layer-order fix: the base's two convs' names swapped.
    ours = {"conv2d/kernel": (3, 3, 1, 32), "conv2d_1/kernel": (3, 3, 32, 64), "dense/kernel": (1600, 10)}
    theirs = {"sequential/conv2d_1/kernel": (3, 3, 1, 32), "sequential/conv2d/kernel": (3, 3, 32, 64)}
    theirs["dense/kernel"] = (1600, 10)
    pairing = pair_names(ours, theirs)
    assert not pairing.complete and pairing.pairs == {"dense/kernel": "dense/kernel"}
    assert ("conv2d/kernel", "sequential/conv2d/kernel", [3, 3, 1, 32], [3, 3, 32, 64]) in pairing.shapes


# --- the weights file -------------------------------------------------------------------------------------


def rewrite_in_other_spelling(path: Path, swap_base_convs: bool = False) -> None:
    """The real file this version saved, its keys renamed as the other Keras version names them (and, to make a
    real mismatch, the base's two convs' arrays exchanged: shapes [3, 3, 1, 8] and [3, 3, 8, 16])."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    renamed = {}
    for key, array in arrays.items():
        config_id, _, name = key.partition(initial_weights.SEPARATOR)
        renamed[config_id + initial_weights.SEPARATOR + other_keras_spelling(name)] = array
    if swap_base_convs:
        kernels = sorted(k for k in renamed if "conv2d" in k and k.endswith("kernel"))
        renamed[kernels[0]], renamed[kernels[1]] = renamed[kernels[1]], renamed[kernels[0]]
    np.savez(path, **renamed)


def test_weights_saved_with_the_other_keras_spelling_load(weights_file):
    first = transfer_nested.build("default", 0)
    assert initial_weights.apply(first, "cfg") == "saved"
    rewrite_in_other_spelling(weights_file)
    initial_weights.use(weights_file)  # a new session, as the other TF version's run
    second = transfer_nested.build("default", 7)  # another seed: other weights until loaded
    assert initial_weights.misnamed(weights_file, list(model_variables(second).weights)) is None
    assert initial_weights.apply(second, "cfg") == "loaded"
    for a, b in zip(model_variables(first).weights.values(), model_variables(second).weights.values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_of_the_other_spelling_with_other_shapes_are_refused(weights_file):
    initial_weights.apply(transfer_nested.build("default", 0), "cfg")
    rewrite_in_other_spelling(weights_file, swap_base_convs=True)
    initial_weights.use(weights_file)
    with pytest.raises(initial_weights.WeightsTransferError, match=r"cannot be transferred") as caught:
        initial_weights.apply(transfer_nested.build("default", 0), "cfg")
    first_kernel = next(n for n in model_variables(transfer_nested.build("default", 0)).weights if "kernel" in n)
    expected = f"{first_kernel}: shape [3, 3, 8, 16] in the file (as {other_keras_spelling(first_kernel)})"
    assert expected + ", [3, 3, 1, 8] in the model" in str(caught.value)


# --- the upgrade report -----------------------------------------------------------------------------------


def record(directory: Path, data) -> Path:
    config = ProbeConfig(model=f"{MODEL}:build", initializer="default", steps=STEPS, seed=0, data_spec=DATA)
    traj = run_probe(config, data, transfer_nested.build("default", 0))
    return write_json(traj, directory)


def respell_recording(path: Path, swap_base_convs: bool = False) -> None:
    """A real probe JSON with its parameter names as the other Keras version writes them (every key that names
    a parameter or a layer); ``swap_base_convs``: the two convs' names exchanged, as TF 2.21 wrote them before
    the layer-order fix (shapes no longer agree)."""
    data = json.loads(path.read_text())
    spell = other_keras_spelling
    if swap_base_convs:
        spell = lambda n: other_keras_spelling(  # noqa: E731
            n.replace("conv2d/", "@/").replace("conv2d_1/", "conv2d/").replace("@/", "conv2d_1/")
        )
    for key, value in data.items():
        if isinstance(value, dict) and key != "config":
            data[key] = {spell(k): v for k, v in value.items()}
    data["parameters"] = [spell(p) for p in data["parameters"]]
    path.write_text(json.dumps(data))


def junit(directory: Path, layers: list[str]) -> None:
    """The junit XML of the per-layer tests, ids as pytest writes them (the layer is the id's last part)."""
    cases = "".join(f'<testcase classname="suite" name="test_layer_updates[default-cpu-graph-{x}]"/>' for x in layers)
    (directory / "junit.xml").write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")


def test_upgrade_report_pairs_the_two_spellings(tmp_path, weights_file, one_hot_mnist, capsys):
    record(tmp_path / "a", one_hot_mnist)
    path = record(tmp_path / "b", one_hot_mnist)  # loads the weights the first run saved
    respell_recording(path)
    layers = list(dict.fromkeys(p.rsplit("/", 1)[0] for p in json.loads(path.read_text())["parameters"]))
    junit(tmp_path / "a", [other_keras_spelling(layer) for layer in layers])
    junit(tmp_path / "b", layers)
    assert upgrade.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "same initial weights" in text and "no difference beyond machine noise" in text, text
    assert "names: 4 parameters paired up to the enclosing models' names" in text, text
    assert "verdicts: unchanged (3 tests)" in text, text  # the test ids name the layers in either spelling

    respell_recording(path)  # back to this version's spelling: then with the convs' names exchanged
    respell_recording(path, swap_base_convs=True)
    assert upgrade.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1  # one message, no traceback
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if upgrade.NOT_PAIRED in line]
    assert len(lines) == 1 and "shape [3, 3, 1, 8] in TF" in lines[0] and "Record them again" in lines[0], text


# --- --health-frozen ---------------------------------------------------------------------------------------


def test_frozen_base_declared_in_either_spelling(one_hot_mnist):
    config = ProbeConfig(model=f"{MODEL}:build_frozen_base", initializer="default", steps=STEPS, data_spec=DATA)
    traj = run_probe(config, one_hot_mnist, transfer_nested.build_frozen_base("default", 0))
    base_layers = [p.rsplit("/", 1)[0] for p in traj.parameters if "conv2d" in p][::2]
    for declared in (base_layers, [other_keras_spelling(layer) for layer in base_layers]):
        resolved = _known_frozen_names(traj, declared)
        assert resolved == base_layers
        status = assert_variables_updated(traj, [p for p in traj.parameters if "conv2d" in p], frozen=resolved)
        assert set(status.values()) == {FROZEN_AS_DECLARED}


def test_own_test_declares_the_frozen_base_in_either_spelling():
    # The user's tests call health_check(build, frozen=...) under both TF versions: one spelling of each.
    from training_health.own_tests import check_training

    check_training(transfer_nested.build_frozen_base, data=transfer_nested.one_hot, frozen="conv2d,sequential/conv2d_1")
    with pytest.raises(UsageError, match=r"frozen=\('nonexistent',\): no layer 'nonexistent' in the model"):
        check_training(transfer_nested.build_frozen_base, data=transfer_nested.one_hot, frozen=("nonexistent",))


def pytest_child(*options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", "--health-suite"]
    command += ["--health-devices", "cpu", "--health-data", DATA, *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.subprocess
def test_health_frozen_option_takes_either_spelling_and_refuses_an_ambiguous_one():
    # One option for both TF versions (tox.ini): the first conv as Keras 2 spells it, the second as Keras 3 does.
    ok = pytest_child("--health-model", f"{MODEL}:build_frozen_base", "--health-frozen", "conv2d,sequential/conv2d_1")
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-3000:]
    if not keras3():
        return  # Keras 2 names both bases' layers conv/kernel (no prefix): "conv" is the model's own name there
    bad = pytest_child("--health-model", f"{MODEL}:build_two_bases", "--health-frozen", "conv")
    output = bad.stdout + bad.stderr
    assert bad.returncode == 4, output[-3000:]
    assert output.count("--health-frozen conv: names 2 layers of the model (sequential/conv, sequential_1/conv)") == 1
