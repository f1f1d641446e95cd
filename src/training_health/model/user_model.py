"""Where the model under test comes from: the seed network by default, or a user's factory.

A user's factory is named ``MODULE:FUNCTION`` (``--health-model``); ``FUNCTION(initializer: str,
seed: int)`` returns a Keras model or ``tf.Module`` whose ``__call__(images, training=...)``
returns logits ``[B, classes]``. ``initializer`` is ``"default"`` unless ``--health-inits``
names others. The model may be unbuilt (a subclassed Keras model never called): it is built by
calling it once on a batch. Every weight-like variable is checked, frozen layers' too
(``training_health.model.variables``).

How it is trained (``training_health.model.train_step``): a Keras model compiled with an optimizer
and a loss is trained by them, as ``fit`` would; ``--health-train-step MODULE:FUNCTION`` runs the
user's own step ``FUNCTION(model, images, labels) -> loss``; anything else gets the suite's recipe
(TF1 Adam, softmax cross-entropy). Dead ReLU units are found in Keras models without help; a
``tf.Module`` opts in with ``relu_activations(images) -> {layer: post-ReLU tensor}``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from training_health.defaults import SEED_MODEL  # noqa: F401  (re-exported)
from training_health.errors import UsageError
from training_health.model.variables import model_variables, variable_name  # noqa: F401  (re-exported)

ModelFactory = Callable[[str, int], object]


class ModelSpecError(UsageError):
    """A ``MODULE:FUNCTION`` option that cannot be resolved; the message names the option."""


def import_from_here(module_name: str):
    """Import ``module_name``, also from the current folder: the ``pytest`` script, unlike ``python -m
    pytest``, does not put it on ``sys.path``, and a user's ``mymodels.py`` usually lives there."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        top, here = module_name.split(".")[0], Path.cwd()
        beside = (here / f"{top}.py").is_file() or (here / top).is_dir()
        if err.name != top or not beside or str(here) in sys.path:
            raise
        sys.path.insert(0, str(here))
        return importlib.import_module(module_name)


def importable_label(function) -> str | None:
    """``MODULE:FUNCTION`` naming ``function`` for a command (calibrate's ``--model``/``--data``), or None when no
    command can import it: a nested function or lambda, a method, a script's ``__main__``, any other object."""
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        return None
    return f"{module}:{name}" if getattr(sys.modules.get(module), name, None) is function else None


def resolve_callable(spec: str, option: str, signature: str) -> Callable:
    """Import ``MODULE:FUNCTION`` and check it is callable with ``signature``'s positional arity."""
    module_name, sep, function_name = spec.partition(":")
    usage = f"{option} must be MODULE:FUNCTION with FUNCTION{signature}"
    if not sep or not module_name or not function_name:
        raise ModelSpecError(f"{usage}, got {spec!r}")
    try:
        module = import_from_here(module_name)
    except ImportError as err:
        raise ModelSpecError(
            f"{option} {spec}: cannot import {module_name!r} ({err}); run from the folder that holds it "
            "or install its package"
        ) from err
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ModelSpecError(f"{option} {spec}: {module_name} has no callable {function_name!r}; {usage}")
    arity = len([p for p in signature.strip("()").split(",") if p.strip()])
    try:
        inspect.signature(function).bind(*range(arity))
    except TypeError as err:
        raise ModelSpecError(
            f"{option} {spec}: {function_name} cannot be called as FUNCTION{signature} ({err})"
        ) from err
    except ValueError:  # builtins without a signature: trust them
        pass
    return function


def resolve_factory(spec: str, option: str = "--health-model") -> ModelFactory:
    if spec == SEED_MODEL:
        from training_health.model.seed_network import build_seed_network

        return build_seed_network
    return resolve_callable(spec, option, "(initializer, seed)")


def named_parameters(model) -> dict:
    """Every weight-like variable keyed by "layer/param", frozen layers' too (see model.variables)."""
    return model_variables(model).weights


def ensure_built(model, sample_images, spec: str):
    """``model`` with its variables: a model never called yet (a subclassed Keras model) is built by
    calling it once on ``sample_images`` (inference mode: no state changes). A model that still has
    no weights is an error naming the factory, never a silent skip."""
    if not model_variables(model).weights and callable(model):
        model(sample_images, training=False)
    if not model_variables(model).weights:
        raise ModelSpecError(
            f"{spec}: the model has no weights to check, even after calling it on a batch of shape "
            f"{list(sample_images.shape)}; the factory must return a model with trainable variables"
        )
    return model


def layer_of(parameter: str) -> str:
    return parameter.rsplit("/", 1)[0] if "/" in parameter else parameter


def parameters_of(parameters: list[str], layer: str) -> list[str]:
    return [p for p in parameters if layer_of(p) == layer]
