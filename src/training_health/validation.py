"""Every ``--health-*`` option checked once, before collection and before any training.

A bad value ends the session with one ``pytest.UsageError`` listing each problem with the
option that caused it and what to do, instead of one traceback per test after minutes of training.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training_health.model.contract import FACTORY_CONTRACT
from training_health.model.initializations import INITIALIZATIONS
from training_health.model.user_model import SEED_MODEL, ModelSpecError, resolve_callable, resolve_factory
from training_health.probe.modes import MODES
from training_health.report.time_split import import_tensorflow_timed
from training_health.settings import flag

KNOWN_DEVICES = ("cpu", "gpu")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _listed(config, option: str, known, problems: list[str], default_ok: bool) -> None:
    raw = config.getoption(option.replace("-", "_"))
    if raw is None and default_ok:
        return
    values = _csv(raw)
    written = flag(config, option.removeprefix("health_").replace("_", "-"))
    if not values:
        problems.append(f"{written} {raw!r} names nothing: give at least one of {', '.join(known)}")
        return
    unknown = [v for v in values if v not in known]
    if unknown:
        problems.append(f"{written}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")


def _devices(config, problems: list[str]) -> None:
    _listed(config, "health_devices", KNOWN_DEVICES, problems, default_ok=True)
    if "gpu" in _csv(config.getoption("health_devices")):
        from training_health.probe.devices import GPU_MISSING, gpu_available

        if not gpu_available():
            problems.append(
                f"{flag(config, 'devices')} asks for gpu, but {GPU_MISSING}. "
                "Leave --health-devices unset to run on the CPU and skip the GPU with this reason."
            )


def _numbers(config, problems: list[str]) -> None:
    if config.getoption("health_steps") < 1:
        from training_health.checks.thresholds import MIN_STEPS

        problems.append(
            f"{flag(config, 'steps')} {config.getoption('health_steps')}: a run needs training steps, and the "
            "calibrated "
            f"bounds hold from {MIN_STEPS} on: give {flag(config, 'steps')} {MIN_STEPS} or more"
        )
    if config.getoption("health_batch_size", 128) < 1:
        problems.append(
            f"{flag(config, 'batch-size')} {config.getoption('health_batch_size')}: a training step needs examples: "
            "give the batch size your training uses (1 or more)"
        )
    if config.getoption("health_seed") < 0:
        problems.append(f"{flag(config, 'seed')} {config.getoption('health_seed')}: seeds are non-negative integers")
    _seeds(config, config.getoption("health_seeds", None), problems)
    minimum = config.getoption("health_min_relative_change")
    if minimum is not None and not minimum > 0:
        problems.append(f"{flag(config, 'min-relative-change')} {minimum:g}: must be > 0 (a bound of 0 checks nothing)")


def _seeds(config, raw: str | None, problems: list[str]) -> None:
    if raw is None:
        return
    seeds = _csv(raw)
    if not seeds or not all(seed.isdigit() for seed in seeds):
        problems.append(
            f"{flag(config, 'seeds')} {raw!r}: give comma-separated non-negative integers, "
            f"e.g. {flag(config, 'seeds')} 0,1,2"
        )
    elif len(set(map(int, seeds))) != len(seeds):
        problems.append(f"{flag(config, 'seeds')} {raw}: a seed is listed twice; each seed is one training run")
    elif config.getoption("health_seed", 0) != 0 and str(config.getoption("health_seed")) not in seeds:
        # a first user's --health-seed 3 --health-seeds 0,1 ran seeds 0 and 1 and never said that 3 was dropped
        problems.append(
            f"{flag(config, 'seed')} {config.getoption('health_seed')} and {flag(config, 'seeds')} {raw}: the seeds "
            f"list replaces the single seed, so seed {config.getoption('health_seed')} would not run; list every "
            f"seed in {flag(config, 'seeds')}"
        )


def _thresholds(config, problems: list[str]) -> None:
    from training_health.checks.thresholds import HEALTHY_FROZEN_BY_STEPS, ThresholdsError, load_thresholds

    try:
        thresholds = load_thresholds(config.getoption("health_thresholds"))
    except ThresholdsError as err:
        fix = "" if "calibrate" in str(err) else "; give a file written by python -m training_health.checks.calibrate"
        problems.append(
            f"{flag(config, 'thresholds')}: {err}{fix}, or leave the option unset for the calibrated bounds"
        )
        return
    steps = config.getoption("health_steps")
    if 1 <= steps < thresholds.min_steps:
        measured = ", ".join(f"{n} steps {f:.1%}" for n, f in HEALTHY_FROZEN_BY_STEPS.items())
        problems.append(
            f"{flag(config, 'steps')} {steps}: the bounds in {thresholds.source.name} (calibrated at "
            f"{thresholds.calibrated_steps} steps) hold from {thresholds.min_steps} steps on; in fewer, healthy "
            f"units that no batch has made fire yet count as frozen (measured on the seed network's healthy fc1, "
            f"largest: {measured}). "
            f"Give {flag(config, 'steps')} {thresholds.min_steps} or more"
        )


def _writable(folder: str, option: str, problems: list[str]) -> None:
    """The folder can be made and written later; nothing is created now (a run may not need it)."""
    path = Path(folder).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        where = "it" if existing == path else f"{existing}"
        problems.append(f"{option} {folder}: {where} is a file, not a folder; give a folder path")
    elif not os.access(existing, os.W_OK | os.X_OK):
        problems.append(f"{option} {folder}: {existing} is not writable; give a writable folder")


def _mnist_path(config, problems: list[str]) -> None:
    """Only that it exists: verifying 55 MB belongs to the first test that needs the data."""
    path = config.getoption("health_mnist_path")
    if path and not Path(path).exists():
        problems.append(
            f"{flag(config, 'mnist-path')} {path}: does not exist; give Keras' mnist.npz or a folder of the four MNIST "
            "IDX files, or leave it unset to use the verified cache"
        )


def _model(config, problems: list[str]) -> None:
    spec = config.getoption("health_model")
    if spec and spec != SEED_MODEL:
        try:
            resolve_factory(spec, option=flag(config, "model"))
        except ModelSpecError as err:
            problems.append(f"{err}; {FACTORY_CONTRACT}")
    if config.getoption("health_inits") is not None:
        if spec and spec != SEED_MODEL:  # a user's factory decides which names it accepts
            if not _csv(config.getoption("health_inits")):
                problems.append(
                    f"{flag(config, 'inits')} '' names nothing: give the initializer name(s) your factory accepts"
                )
        else:
            _listed(config, "health_inits", list(INITIALIZATIONS), problems, default_ok=False)


def _train_step(config, problems: list[str]) -> None:
    spec = config.getoption("health_train_step", None)
    if spec:
        try:
            resolve_callable(spec, flag(config, "train-step"), "(model, images, labels)")
        except ModelSpecError as err:
            problems.append(f"{err}; a train step performs one step of your training and returns the loss")


def _train_step_without_model(config) -> str | None:
    """A train step trains the model it was written for, which only ``--health-model`` gives. The seed network is
    trained with its question's recipe (TF1 Adam 1e-3, softmax cross-entropy), the recipe its per-parameter bounds
    were calibrated under; a user's step would train it with an optimizer of its own, built for other variables
    (a first user's forgotten --health-model: every test of three runs errored, one long paragraph each)."""
    spec, model = config.getoption("health_train_step", None), config.getoption("health_model", None)
    if not spec or model not in (None, SEED_MODEL):
        return None
    given = f"without {flag(config, 'model')}" if model is None else f"with {flag(config, 'model')} {SEED_MODEL}"
    return (
        f"{flag(config, 'train-step')} {spec} {given}: a train step trains the model it was written for; "
        f"{given} the suite trains its built-in seed network, with that network's own recipe (TF1 Adam, the one its "
        f"bounds were calibrated for). Give {flag(config, 'model')} MODULE:FUNCTION, the factory of the model "
        f"{spec} trains"
    )


def _resume_with(config, problems: list[str]) -> None:
    spec = config.getoption("health_resume_with", None)
    if spec:
        from training_health.checks.resume import resolve_resume_with

        try:
            resolve_resume_with(spec)
        except ModelSpecError as err:
            problems.append(str(err))


def _thresholds_model(config, problems: list[str]) -> None:
    """A thresholds file calibrated for one user model must not silently judge another."""
    from training_health.checks.thresholds import ThresholdsError, load_thresholds
    from training_health.run_config import model_spec

    path = config.getoption("health_thresholds")
    try:
        calibrated_for = load_thresholds(path).model if path else SEED_MODEL
    except ThresholdsError:
        return  # reported by _thresholds
    if calibrated_for not in (SEED_MODEL, model_spec(config)):
        problems.append(
            f"{flag(config, 'thresholds')} {path} was calibrated for {flag(config, 'model')} {calibrated_for}, not "
            f"{model_spec(config)}: calibrate this model with python -m training_health.checks.calibrate "
            f"--model {model_spec(config)} --out FILE"
        )


def _contract(config, problems: list[str]) -> list[str] | None:
    """The user's model (or the seed network on the user's data) called once on a real batch, before training.

    Returns the model's parameter names ("layer/param"), or None where the contract failed.
    """
    from training_health.data.mnist import MnistDataError
    from training_health.data.user_data import DataSpecError, fewer_than_a_batch
    from training_health.model.contract import ContractError, check_model_contract
    from training_health.model.user_model import named_parameters
    from training_health.run_config import grid_inits, model_spec, training_data

    spec = model_spec(config)
    if spec == SEED_MODEL and not config.getoption("health_data", None):
        from training_health.defaults import SEED_PARAMETER_SHAPES  # no TensorFlow: an xdist controller needs none

        _batch_fits(config, MNIST_TRAIN_EXAMPLES, "MNIST's training set", problems)
        return list(SEED_PARAMETER_SHAPES)  # this package's own network and data
    try:
        data = training_data(config)
    except (DataSpecError, MnistDataError) as err:
        problems.append(str(err))
        return None
    short = fewer_than_a_batch(data, config.getoption("health_batch_size", 128), flag(config, "batch-size"))
    if short:
        problems.append(short)
        return None
    try:
        seed, step, option = (
            config.getoption("health_seed"),
            config.getoption("health_train_step", None),
            flag(config, "model"),
        )
        models = [
            check_model_contract(
                spec, init, seed, data, option=option, train_step=step, data_option=flag(config, "data")
            )
            for init in grid_inits(config)
        ]
    except ContractError as err:  # the factory must accept every initializer of the grid
        problems.append(str(err))
        return None
    _ignored_init_names(config, spec, seed, grid_inits(config), models, problems)
    return list(named_parameters(models[0]))


def _ignored_init_names(config, spec: str, seed: int, inits: list[str], models: list, problems: list[str]) -> None:
    """A name in ``--health-inits`` that neither Keras nor the suite knows, which the factory ignored (it built
    the very weights it builds for "default"): a typo that would label a run with an initialization it never had
    (a first user's ``he_normall``). A factory that reads names of its own builds other weights: accepted."""
    import difflib

    import numpy as np

    from training_health.model.contract import known_initializer

    unknown = [(name, model) for name, model in zip(inits, models) if name != "default" and not known_initializer(name)]
    if not unknown:
        return
    try:
        default = resolve_factory(spec, flag(config, "model"))("default", seed)
    except Exception:  # a factory of its own names only: nothing to compare with  # noqa: BLE001
        return
    reference = [np.asarray(w) for w in default.get_weights()] if hasattr(default, "get_weights") else None
    for name, model in unknown:
        weights = [np.asarray(w) for w in model.get_weights()] if hasattr(model, "get_weights") else None
        same = reference is not None and weights is not None and len(weights) == len(reference)
        if not (same and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(weights, reference))):
            continue
        close = difflib.get_close_matches(name, [*INITIALIZATIONS, *KERAS_INITIALIZER_NAMES], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(
            f"{flag(config, 'inits')} {name}: neither a Keras initializer nor one of the suite's{hint}, and "
            f"{spec} built exactly the weights it builds for 'default': it ignores the name, so the run would "
            "be labelled with an initialization it never had. Give a name the factory reads, or leave "
            f"{flag(config, 'inits')} out"
        )


# Keras initializer identifiers (keras.initializers.get accepts these strings in Keras 2 and 3): for "did you mean".
KERAS_INITIALIZER_NAMES = (
    "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
    "random_normal", "random_uniform", "truncated_normal", "variance_scaling", "orthogonal", "zeros", "ones",
)  # fmt: skip


MNIST_TRAIN_EXAMPLES = 60000


def _batch_fits(config, examples: int, source: str, problems: list[str]) -> None:
    """A batch larger than the data would repeat examples within one step: not the user's training."""
    from training_health.data.user_data import batch_exceeds

    short = batch_exceeds(source, examples, config.getoption("health_batch_size", 128), flag(config, "batch-size"))
    if short:
        problems.append(short)


def _share_layers(config, parameters: list[str]) -> None:
    """The grid's layers, from the model the contract check built: collection need not build it again."""
    from training_health.model.user_model import layer_of
    from training_health.run_config import LAYER_NAMES

    config.stash[LAYER_NAMES] = list(dict.fromkeys(layer_of(p) for p in parameters))


def _frozen(config, parameters: list[str], problems: list[str]) -> None:
    """``--health-frozen`` names layers (or parameters) the model has: a misspelt name would declare nothing.
    A nested model's layer may be named with or without the enclosing models' names (sequential/conv2d or
    conv2d: Keras 3 and Keras 2 spell it so), as long as the name is one layer's (``variables.resolve_names``)."""
    from training_health.model.user_model import layer_of
    from training_health.model.variables import resolve_names

    layers = list(dict.fromkeys(layer_of(p) for p in parameters))
    resolved = resolve_names(_csv(config.getoption("health_frozen")), layers + parameters)
    if resolved.unknown:
        problems.append(
            f"{flag(config, 'frozen')} {','.join(resolved.unknown)}: the model has no such layer "
            f"(its layers: {', '.join(layers)}); "
            "name the layers your training leaves frozen on purpose"
        )
    for name, found in resolved.ambiguous.items():
        problems.append(
            f"{flag(config, 'frozen')} {name}: names {len(found)} layers of the model ({', '.join(found)}); "
            "give the full name of the one your training leaves frozen"
        )


def _initial_weights(config, parameters: list[str], problems: list[str]) -> None:
    """--health-initial-weights saved by another model: said before training (shapes are checked when loading)."""
    from training_health.model.initial_weights import misnamed

    problem = misnamed(config.getoption("health_initial_weights", None), parameters)
    if problem:
        problems.append(problem)


USER_CODE_OPTIONS = ("health_model", "health_train_step", "health_resume_with")  # their modules are imported here


def validate_options(config, model_checked_on_workers: bool = False) -> None:
    """Raises one ``pytest.UsageError`` listing every problem. ``model_checked_on_workers``: an xdist
    controller checks only what needs neither TensorFlow nor the user's code; each worker checks the rest
    (it imports TensorFlow to train anyway), and the controller reports a worker's failure (plugin.py)."""
    problems: list[str] = []
    step_refused = _train_step_without_model(config)  # needs neither TensorFlow nor the step's module
    user_code = [o for o in USER_CODE_OPTIONS if not (step_refused and o == "health_train_step")]
    if any(config.getoption(o, None) not in (None, SEED_MODEL) for o in user_code):
        if not model_checked_on_workers:
            import_tensorflow_timed()  # before the user's module imports it: timed for the summary's time to verdict
    if step_refused:
        problems.append(step_refused)
    _numbers(config, problems)
    _listed(config, "health_modes", MODES, problems, default_ok=False)
    if model_checked_on_workers:
        _listed(config, "health_devices", KNOWN_DEVICES, problems, default_ok=True)  # whether a GPU is seen: workers
    else:
        _devices(config, problems)
    _thresholds(config, problems)
    if config.getoption("health_probe_output") is not None:  # the main job writes none
        _writable(config.getoption("health_probe_output"), flag(config, "probe-output"), problems)
    _mnist_path(config, problems)
    if model_checked_on_workers:
        _raise_if_any(problems)
        return
    if not any(p.startswith(flag(config, "model")) for p in problems):
        _model(config, problems)
    if not step_refused:
        _train_step(config, problems)
    _resume_with(config, problems)
    _thresholds_model(config, problems)
    if not problems:  # only a valid configuration is worth loading data and building the model for
        import_tensorflow_timed()  # the contract needs it
        parameters = _contract(config, problems)
        if parameters:
            _frozen(config, parameters, problems)
            _share_layers(config, parameters)
            _initial_weights(config, parameters, problems)
    _raise_if_any(problems)


def _raise_if_any(problems: list[str]) -> None:
    if problems:
        raise pytest.UsageError("training health: " + "\n  ".join(["bad option(s):", *problems]))
