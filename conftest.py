"""Suite-wide options, the device x mode x initialization grid, and session-shared trajectories.

Every test that reads a training run asks for ``trajectory``; runs are cached per
(model, init, device, mode, seed, steps) for the session, so the layer-update, gradient and
finiteness tests of one configuration share a single compiled training run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ info lines out of test output

import tensorflow as tf  # noqa: E402

from fixtures.devices import GPU_MISSING, gpu_available  # noqa: E402
from fixtures.initializations import HEALTHY, INITIALIZATIONS  # noqa: E402
from fixtures.models import SEED_MODEL  # noqa: E402
from fixtures.report import layer_table, write_json  # noqa: E402
from fixtures.seed_network import LAYERS  # noqa: E402
from fixtures.thresholds import load_thresholds  # noqa: E402
from fixtures.training_probe import DEFAULT_STEPS, MODES, ProbeConfig, run_probe  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("training health")
    group.addoption("--mnist-path", help="Keras mnist.npz or a folder of IDX files (default: $MNIST_PATH, caches)")
    group.addoption("--model", default=SEED_MODEL, help="MODULE:FUNCTION(initializer, seed) building the model")
    group.addoption("--inits", help=f"comma-separated initializations (default: all of {', '.join(INITIALIZATIONS)})")
    group.addoption("--devices", default="cpu,gpu", help="comma-separated devices: cpu, gpu (default both)")
    group.addoption("--modes", default="graph", help=f"comma-separated execution modes of {MODES} (default graph)")
    group.addoption("--steps", type=int, default=DEFAULT_STEPS, help="training steps per probe run")
    group.addoption("--seed", type=int, default=0, help="seed for initialization, batches and dropout")
    group.addoption("--thresholds", help="a thresholds TOML replacing fixtures/thresholds.toml")
    group.addoption("--min-relative-change", type=float, help="override every minimum relative weight change")
    group.addoption("--probe-output", default="probe-output", help="folder for per-configuration probe JSON")
    group.addoption(
        "--regen-baselines", action="store_true", help="rewrite fixtures/baselines/<tf>/ from this run (explicit only)"
    )


def pytest_configure(config):
    """Refuse a misspelt device or mode up front, rather than silently running another one."""
    for option, known in (("devices", ("cpu", "gpu")), ("modes", MODES)):
        unknown = set(_csv(config, option)) - set(known)
        if unknown:
            raise pytest.UsageError(f"--{option}: unknown {', '.join(sorted(unknown))}; choose from {', '.join(known)}")


def _csv(config, name: str) -> list[str]:
    return [v.strip() for v in config.getoption(name).split(",") if v.strip()]


def grid_inits(config) -> list[str]:
    if config.getoption("inits"):
        return _csv(config, "inits")
    return list(INITIALIZATIONS) if config.getoption("model") == SEED_MODEL else ["default"]


def device_params(config) -> list:
    params = []
    for device in _csv(config, "devices"):
        marks = (
            [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=GPU_MISSING)] if device == "gpu" else []
        )
        params.append(pytest.param(device, marks=marks, id=device))
    return params


LAYER_NAMES = pytest.StashKey[list]()


def model_layers(config) -> list[str]:
    """The layers to parametrize over; a user's model is built once, at collection, to list them."""
    if config.getoption("model") == SEED_MODEL:
        return list(LAYERS)
    if LAYER_NAMES not in config.stash:
        from fixtures.models import layer_of, named_parameters, resolve_factory

        model = resolve_factory(config.getoption("model"))(grid_inits(config)[0], config.getoption("seed"))
        config.stash[LAYER_NAMES] = list(dict.fromkeys(layer_of(n) for n in named_parameters(model)))
    return config.stash[LAYER_NAMES]


def pytest_generate_tests(metafunc):
    """The grid: tests name ``initializer``/``healthy_initializer``, ``device``, ``mode``, ``layer``."""
    config, names = metafunc.config, metafunc.fixturenames
    if "initializer" in names:
        metafunc.parametrize("initializer", grid_inits(config))
    if "healthy_initializer" in names:
        inits = [i for i in grid_inits(config) if i in HEALTHY or config.getoption("model") != SEED_MODEL]
        metafunc.parametrize("healthy_initializer", inits)
    if "device" in names:
        metafunc.parametrize("device", device_params(config))
    if "mode" in names:
        metafunc.parametrize("mode", _csv(config, "modes"))
    if "layer" in names:
        metafunc.parametrize("layer", model_layers(config))


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n 2 --dist loadgroup`` a grid cell's tests share one worker, hence one run."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        init = params.get("initializer") or params.get("healthy_initializer")
        if init and "device" in params and "mode" in params:
            item.add_marker(pytest.mark.xdist_group(f"{init}-{params['device']}-{params['mode']}"))


@pytest.fixture(scope="session", autouse=True)
def tf32_off_for_correctness():
    """TF32 matmuls on Ampere+ GPUs change numerics by ~1e-3; correctness checks want float32."""
    if gpu_available():
        tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture(scope="session")
def mnist(pytestconfig):
    from fixtures.mnist import load_mnist

    return load_mnist(pytestconfig.getoption("mnist_path"))


@pytest.fixture(scope="session")
def thresholds(pytestconfig):
    return load_thresholds(pytestconfig.getoption("thresholds"), pytestconfig.getoption("min_relative_change"))


class TrajectoryCache:
    """One probe run per configuration per session, shared by every test that reads it."""

    def __init__(self, mnist, output: Path):
        self.mnist, self.output, self.runs, self.models = mnist, output, {}, {}

    def get(self, config: ProbeConfig):
        if config not in self.runs:
            self.models[config] = config.build_model()
            self.runs[config] = run_probe(config, self.mnist, self.models[config])
            write_json(self.runs[config], self.output)
        return self.runs[config]

    def trained_model(self, config: ProbeConfig):
        self.get(config)
        return self.models[config]


@pytest.fixture(scope="session")
def trajectories(mnist, pytestconfig) -> TrajectoryCache:
    cache = TrajectoryCache(mnist, Path(pytestconfig.getoption("probe_output")))
    pytestconfig.stash[TRAJECTORIES] = cache
    return cache


TRAJECTORIES = pytest.StashKey[TrajectoryCache]()


@pytest.fixture
def probe_config(request, pytestconfig, device, mode) -> ProbeConfig:
    """The configuration of the current grid cell (initialization x device x mode)."""
    names = request.fixturenames
    init = request.getfixturevalue("initializer" if "initializer" in names else "healthy_initializer")
    return ProbeConfig(
        initializer=init,
        seed=pytestconfig.getoption("seed"),
        device=device,
        mode=mode,
        steps=pytestconfig.getoption("steps"),
        model=pytestconfig.getoption("model"),
    )


@pytest.fixture
def trajectory(trajectories, probe_config):
    return trajectories.get(probe_config)


def pytest_terminal_summary(terminalreporter, config):
    cache = config.stash.get(TRAJECTORIES, None)
    if not cache or not cache.runs:
        return
    terminalreporter.section("per-layer training health")
    for traj in cache.runs.values():
        terminalreporter.write_line(layer_table(traj) + "\n")
    terminalreporter.write_line(f"probe data (JSON, one file per configuration): {cache.output}/")
