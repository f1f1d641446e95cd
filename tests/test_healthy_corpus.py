"""No false alarms on healthy models (issue 15, "Done when"): every model of ``fixtures/healthy_models``,
written as its public source writes it, passes the installed plugin's checks from a folder outside the
repository: exit status 0, readable test ids (the layer names a fresh process gives).

Each model is one pytest session (``python -m pytest --health-model ... --health-devices cpu``), two at a
time.
``python tests/test_healthy_corpus.py`` prints the table: model, exit status, verdict, time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "fixtures.healthy_models"
# model -> its options (data, train step, batch size: as its public source trains it)
CORPUS = {
    "mnist_convnet": ["--health-data", f"{PACKAGE}.mnist_convnet:data"],
    "quickstart_beginner": ["--health-batch-size", "32"],
    "quickstart_beginner_class_name": ["--health-batch-size", "32"],
    "quickstart_expert": ["--health-train-step", f"{PACKAGE}.quickstart_expert:train_step", "--health-batch-size", "32"]
    + ["--health-inits", "first,second"],  # two runs: one module-level optimizer serves both
    "training_loop_from_scratch": ["--health-data", f"{PACKAGE}.training_loop_from_scratch:data"]
    + ["--health-batch-size", "64", "--health-train-step", f"{PACKAGE}.training_loop_from_scratch:train_step"],
    "functional_guide": ["--health-data", f"{PACKAGE}.functional_guide:data", "--health-batch-size", "64"],
    "small_resnet": ["--health-batch-size", "64"],
    "lstm_rows": ["--health-data", f"{PACKAGE}.lstm_rows:data", "--health-batch-size", "64"],
    "gru_rows": ["--health-batch-size", "64"],
    "separable_convnet": [],
    "custom_layer": ["--health-batch-size", "64"],
    "l2_convnet": [],
    "cnn_tutorial": ["--health-batch-size", "32"],
    "basic_classification": ["--health-batch-size", "256"],
    "binary_zero": ["--health-data", f"{PACKAGE}.binary_zero:data"],
    "regression_ink": ["--health-data", f"{PACKAGE}.regression_ink:data"],
    "dense_autoencoder": ["--health-data", f"{PACKAGE}.dense_autoencoder:data", "--health-batch-size", "256"],
    "regression_raw_target": ["--health-data", f"{PACKAGE}.regression_raw_target:data", "--health-batch-size", "32"],
    "imbalanced_mlp": ["--health-data", f"{PACKAGE}.imbalanced_mlp:data", "--health-batch-size", "2048"],
    "toy_resnet": ["--health-data", f"{PACKAGE}.toy_resnet:data", "--health-batch-size", "64"],
}
COMMON = ["--health-devices", "cpu", "-p", "no:cacheprovider", "-q", "-rA"]
TEST_ID = re.compile(r"(?:PASSED|FAILED|ERROR) \S*::(test_\w+\[[^\]]*\])")


def run_model(name: str, folder: Path, extra: tuple = ()) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    options = CORPUS[name]
    command = [sys.executable, "-m", "pytest", "--health-model", f"{PACKAGE}.{name}:build", *options, *COMMON, *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    began = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False, timeout=900)
    lines = result.stdout.strip().splitlines()
    return {
        "status": result.returncode,
        "verdict": lines[-1].strip("= ") if lines else (result.stderr.strip().splitlines() or [""])[-1].strip(),
        "seconds": time.perf_counter() - began,
        "ids": TEST_ID.findall(result.stdout),
        "output": result.stdout + result.stderr,
    }


def run_corpus(base: Path, names=None, workers: int = 2, extra: tuple = ()) -> dict[str, dict]:
    names = list(names or CORPUS)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_model, name, base / name, extra) for name in names}
        return {name: future.result() for name, future in futures.items()}


def table(results: dict[str, dict]) -> str:
    rows = [f"{'model':32s} {'exit':>4s}  {'time':>6s}  verdict"]
    for name, r in results.items():
        rows.append(f"{name:32s} {r['status']:>4d}  {r['seconds']:5.1f}s  {r['verdict']}")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("healthy-project")
    assert ROOT not in base.parents
    results = run_corpus(base)
    print("\n" + table(results))
    return results


def expected_layers(name: str) -> set[str]:
    """The layers a fresh process names: the test ids must name exactly these."""
    from training_health.model.user_model import ensure_built, layer_of, resolve_factory
    from training_health.model.variables import model_variables

    model = resolve_factory(f"{PACKAGE}.{name}:build")("default", 0)
    if not model_variables(model).weights:
        import numpy as np

        ensure_built(model, np.zeros((1, 28, 28, 1), np.float32), name)
    return {layer_of(p) for p in model_variables(model).weights}


@pytest.mark.subprocess
@pytest.mark.parametrize("name", list(CORPUS))
def test_healthy_model_passes_from_outside_the_repository(corpus, name):
    result = corpus[name]
    assert result["status"] == 0, f"{name}: exit {result['status']}\n{result['output'][-5000:]}"
    layer_ids = {i.split("[", 1)[1].rstrip("]").rsplit("-", 1)[-1] for i in result["ids"] if "layer_updates" in i}
    assert layer_ids, result["output"][-3000:]
    if name not in ("training_loop_from_scratch", "functional_guide", "lstm_rows"):  # flat/row inputs: not 28x28x1
        assert layer_ids == expected_layers(name), result["ids"]
    assert all(re.fullmatch(r"[a-z][a-z0-9_/]*", layer) for layer in layer_ids), result["ids"]


if __name__ == "__main__":  # the table as run: python tests/test_healthy_corpus.py [--seeds 1,2,3,4] [MODEL ...]
    import tempfile

    names, extra = sys.argv[1:], ()
    if names[:1] == ["--seeds"]:  # other seeds than the test's 0: one run each, verdicts grouped over seeds
        extra, names = ("--health-seeds", names[1]), names[2:]
    with tempfile.TemporaryDirectory() as folder:
        results = run_corpus(Path(folder), names or None, extra=extra)
        print(table(results))
        for name, result in results.items():
            print("\n".join(f"  {name}: {line}" for line in result["output"].splitlines() if "fails at" in line))
