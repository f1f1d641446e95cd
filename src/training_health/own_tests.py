"""Check a model from your own test file or script: the same training, checks and verdicts as
``pytest --health-model``, for a factory or a model object you hold.

In a test, through the plugin's fixture (the session's data, thresholds and summary table)::

    def test_my_model_learns(health_check):
        traj = health_check(build_model, data=load_data)   # fails the test with the verdict if unhealthy
        assert traj.compiled_metrics["accuracy"][1] > 0.5   # and the trajectory is yours to read

Alone (a script, a notebook): ``check_training(build_model)`` returns the trajectory or raises
:class:`~training_health.errors.HealthCheckError` carrying every finding.

``model`` is a factory ``FUNCTION(initializer, seed)`` or a built model. A built model is trained
once, in place, and labelled by what it is (``object:<class>(<name>)``): it is judged with the bounds for
a user's model, never the seed network's; run checks that need a fresh model skip for it.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from training_health.errors import HealthCheckError, TrainingHealthWarning
from training_health.probe.modes import DEFAULT_STEPS

PICTURES = Path("probe-output") / "kernels"


def check_training(
    model,
    *,
    data=None,
    train_step=None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 128,
    seed: int = 0,
    initializer: str = "default",
    mode: str = "graph",
    thresholds=None,
    frozen=(),
    pictures: Path | None = PICTURES,
    mnist_path=None,
    **misspelt,
):
    """Train ``model`` ``steps`` steps your way and check every layer and the run; returns the Trajectory."""
    from training_health.settings import KEYWORDS, settings_spelt

    if misspelt:  # refused as the fixture refuses it, in one line: "stepz" (did you mean steps?), not a TypeError
        from training_health.errors import UsageError

        raise UsageError(f"check_training: {_unknown_keywords(misspelt)}")

    with settings_spelt(KEYWORDS):  # a fix line names this function's keywords (frozen=...), not pytest's options
        frozen = checked_settings(steps, batch_size, mode, frozen, seed, initializer)
        traj, run = train(
            model, data, train_step, steps, batch_size, seed, initializer, mode, thresholds, mnist_path, "", frozen
        )
        raise_findings(run, frozen, pictures)
    return traj


def checked_thresholds(thresholds):
    """``thresholds=``: None (the package's), a path to a TOML file (calibrate's ``--out``, a ``str`` or ``Path``),
    or loaded ``Thresholds``; a missing or malformed file is refused as ``--health-thresholds`` refuses it."""
    from training_health.checks.thresholds import Thresholds, load_thresholds
    from training_health.errors import UsageError

    if thresholds is None or isinstance(thresholds, (str, Path)):
        try:
            return load_thresholds(thresholds)
        except UsageError as err:
            raise UsageError(f"thresholds={str(thresholds)!r}: {err}") from None
    if isinstance(thresholds, Thresholds):
        return thresholds
    raise UsageError(f"thresholds={thresholds!r}: give the path of a thresholds TOML file (calibrate's --out)")


def checked_settings(steps, batch_size, mode, frozen, seed: int = 0, initializer: str = "default") -> tuple:
    """The values the command line refuses (exit 4) refused here too, before training, with its wording; returns
    ``frozen`` as a tuple of names (a string is comma-separated names, as the marker takes them, not letters)."""
    from training_health.checks.thresholds import MIN_STEPS
    from training_health.errors import UsageError
    from training_health.probe.modes import MODES

    if mode not in MODES:
        raise UsageError(f"mode={mode!r}: not one of {', '.join(MODES)}")
    if not isinstance(steps, int) or steps < MIN_STEPS:
        raise UsageError(
            f"steps={steps!r}: the calibrated bounds hold from {MIN_STEPS} steps on: give {MIN_STEPS} or more"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size={batch_size!r}: give a whole number of examples per step, 1 or more")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"seed={seed!r}: give a whole number, 0 or more (initialization, batch order, dropout)")
    if not isinstance(initializer, str):
        raise UsageError(f"initializer={initializer!r}: give a name (a string), 'default' for the model's own")
    return tuple(frozen.split(",")) if isinstance(frozen, str) else tuple(frozen)  # "conv2d,conv2d_1" as the marker


def resolved_frozen(traj, frozen) -> list[str]:
    """The declared frozen names as the run spells them (either Keras spelling of a nested model's layers:
    ``variables.resolve_names``); a name matching no layer, or several, is refused (it would declare nothing)."""
    return frozen_among(traj.parameters, frozen)


def frozen_among(parameters: list[str], frozen) -> list[str]:
    """``resolved_frozen`` on the parameter names of a built model: checked before training too."""
    from training_health.errors import UsageError
    from training_health.model.user_model import layer_of
    from training_health.model.variables import resolve_names

    layers = list(dict.fromkeys(layer_of(p) for p in parameters))
    resolved = resolve_names(list(frozen), layers + list(parameters))
    if resolved.unknown:
        missing = ", ".join(map(repr, resolved.unknown))
        raise UsageError(f"frozen={tuple(frozen)!r}: no layer {missing} in the model (its layers: {', '.join(layers)})")
    for name, found in resolved.ambiguous.items():
        raise UsageError(f"frozen: {name!r} names {len(found)} layers ({', '.join(found)}); give the full name")
    return resolved.names


def raise_findings(run, frozen=(), pictures: Path | None = PICTURES) -> None:
    """One HealthCheckError with every layer's and every run check's failure, if any."""
    frozen = resolved_frozen(run.trajectory, frozen)
    run = dataclasses.replace(run, frozen=tuple(frozen))  # the run checks leave declared-frozen weights alone
    findings = layer_findings(run.trajectory, run.thresholds, frozen, pictures) + run_findings(run)
    if findings:
        raise HealthCheckError("\n\n".join(str(f) for f in findings), [o for f in findings for o in f.offenders])


def train(
    model, data, train_step, steps, batch_size, seed, initializer, mode, thresholds, mnist_path, caller="", frozen=()
):
    """(Trajectory, RunContext) of one run of ``model`` on ``data``; ``caller``: the test running it (its id);
    ``frozen``: declared frozen names, refused before training when they name no layer of the built model."""
    from training_health.checks.run_checks import NotApplicable, RunContext
    from training_health.model.contract import check_built_model
    from training_health.probe.training_probe import ProbeConfig, callable_label, model_label, run_probe

    thresholds = checked_thresholds(thresholds)  # a bad file is refused before training, not after it
    is_factory = callable(model) and not hasattr(model, "trainable_variables")
    config = ProbeConfig(
        initializer=initializer,
        seed=seed,
        mode=mode,
        steps=steps,
        batch_size=batch_size,
        model=callable_label(model) if is_factory else model_label(model),
        factory=model if is_factory else None,
        train_step=callable_label(train_step) if callable(train_step) else train_step,
        train_step_function=train_step if callable(train_step) else None,
        caller=caller,
        data_spec=data_spec_of(data),
    )
    built = config.build_model() if is_factory else model
    check_built_model(built, training_data(data, mnist_path), config.model, config.train_step, "data")
    if frozen:  # a misspelt name is refused before the run, not after it (a fifth user waited a whole run)
        from training_health.model.variables import model_variables

        frozen_among(list(model_variables(built).weights), frozen)
    traj = run_probe(config, training_data(data, mnist_path), built)

    def fresh_model():
        if not is_factory:
            raise NotApplicable("the model was given as an object: give its factory to build a fresh one")
        return config.build_model()

    run = RunContext(traj, training_data(data, mnist_path), thresholds, lambda: built, fresh_model)
    return traj, run


def data_spec_of(data) -> str | None:
    """``data`` as a command names it (the calibrate command of a fix line): None for MNIST, ``MODULE:FUNCTION``
    for a module-level function, else an ``object:`` label: arrays or a nested function no command can name."""
    from training_health.model.user_model import importable_label
    from training_health.probe.training_probe import OBJECT_PREFIX

    if data is None or type(data).__name__ == "Mnist":
        return None
    if callable(data):
        return importable_label(data) or f"{OBJECT_PREFIX}{getattr(data, '__qualname__', type(data).__name__)}"
    return f"{OBJECT_PREFIX}{type(data).__name__}"


_DATA_CACHE: dict = {}


def training_data(data, mnist_path=None):
    """``data`` as the probe reads it: None (the verified MNIST), a TrainingData or Mnist, a function
    returning (images, labels) or a Dataset, or the (images, labels) pair itself."""
    from training_health.data.user_data import (
        TrainingData,
        _arrays_from,
        as_training_data,
        dataset_batch_of,
        load_training_data,
    )

    if data is None:
        if mnist_path not in _DATA_CACHE:
            _DATA_CACHE[mnist_path] = load_training_data(None, mnist_path)
        return _DATA_CACHE[mnist_path]
    if isinstance(data, TrainingData) or type(data).__name__ == "Mnist":
        return as_training_data(data)
    from training_health.probe.training_probe import callable_label

    label = callable_label(data) + "()" if callable(data) else "the given (images, labels)"
    returned = data() if callable(data) else data
    images, labels = _arrays_from(returned, label, "data")
    return TrainingData(images, labels, label, dataset_batch=dataset_batch_of(returned))


def layer_findings(traj, thresholds, frozen, pictures) -> list[HealthCheckError]:
    """Each layer's failures; what does not stop learning (checks/severity.py) is a warning, as in the suite's
    own test_layer_updates (a second user's healthy ResNet: red here, a note from the command line)."""
    from training_health.checks import severity
    from training_health.model.user_model import layer_of, parameters_of
    from training_health.suite import _check_layer

    found = []
    for layer in dict.fromkeys(layer_of(p) for p in traj.parameters):
        try:
            _check_layer(traj, parameters_of(traj.parameters, layer), thresholds, layer, list(frozen), pictures)
        except HealthCheckError as err:
            failing, notes = severity.split(traj, err.offenders, thresholds)
            if failing or not err.offenders:
                found.append(err)
                continue
            for note in notes:
                warnings.warn(TrainingHealthWarning(note), stacklevel=3)
    return found


def run_findings(run) -> list[HealthCheckError]:
    from training_health.checks.run_checks import run_every_check

    found, notes = run_every_check(run)
    for note in notes:
        warnings.warn(TrainingHealthWarning(note), stacklevel=3)
    return found


@dataclasses.dataclass
class HealthCheckFixture:
    """The ``health_check`` fixture: ``check_training`` with the session's settings as defaults; each run
    joins the session's per-layer table, and an unhealthy run fails the test with the verdict alone."""

    defaults: dict
    record: object  # callable(traj): adds the run to the session's summary
    caller: str = ""  # the test's node id: in each run's id (ProbeConfig.caller)
    calls: int = 0

    def __call__(self, model, *, frozen=(), **options):
        import pytest

        from training_health.errors import UsageError
        from training_health.settings import KEYWORDS, settings_spelt

        settings = {**self.defaults, **options}
        pictures = settings.pop("pictures", PICTURES)
        get = settings.get
        traj, verdict = None, None
        self.calls += 1
        caller = self.caller + (f"#{self.calls}" if self.calls > 1 else "")
        with settings_spelt(KEYWORDS):  # a fix line names the fixture's keywords (frozen=...), not pytest's options
            try:
                _known_keywords(options)
                frozen = checked_settings(
                    get("steps", DEFAULT_STEPS),
                    get("batch_size", 128),
                    get("mode", "graph"),
                    frozen,
                    get("seed", 0),
                    get("initializer", "default"),
                )
                traj, run = train(
                    model,
                    get("data"),
                    get("train_step"),
                    get("steps", DEFAULT_STEPS),
                    get("batch_size", 128),
                    get("seed", 0),
                    get("initializer", "default"),
                    get("mode", "graph"),
                    get("thresholds"),
                    get("mnist_path"),
                    caller,
                    frozen,
                )
                self.record(traj)
                raise_findings(run, frozen, pictures)
            except HealthCheckError as err:
                verdict = str(err)
            except UsageError as err:  # what the command line refuses with exit 4: one line, no traceback
                verdict = f"health_check: {err}"
        if verdict:  # outside the except clauses: the verdict alone, not a chain of exceptions through this code
            pytest.fail(verdict, pytrace=False)
        return traj


def _known_keywords(options: dict) -> None:
    """A misspelt keyword (``batchsize=32``) would silently leave its default in place: refuse it."""
    from training_health.errors import UsageError

    unknown = _unknown_keywords(options)
    if unknown:
        raise UsageError(unknown)


def _unknown_keywords(options: dict) -> str:
    """What is wrong with ``options``' names ("unknown keyword(s) stepz (did you mean steps?)"), "" if nothing."""
    import inspect

    parameters = inspect.signature(check_training).parameters
    known = {n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY} - {"frozen"}
    unknown = [name for name in options if name not in known]
    return f"unknown keyword(s) {', '.join(unknown)}{_close(unknown, known)}" if unknown else ""


def _close(unknown: list, known: set) -> str:
    import difflib

    guesses = [g for name in unknown for g in difflib.get_close_matches(name, sorted(known), n=1)]
    return f" (did you mean {', '.join(guesses)}?)" if guesses else f"; known: {', '.join(sorted(known))}"
