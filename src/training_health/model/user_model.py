"""Where the model under test comes from: the seed network by default, or a user's factory.

A user's factory is named ``MODULE:FUNCTION`` (``--health-model``); ``FUNCTION(initializer: str,
seed: int)`` returns a Keras model or ``tf.Module`` whose ``__call__(images, training=...)``
returns logits ``[B, classes]``. ``initializer`` is ``"default"`` unless ``--health-inits``
names others. Its variables are the parameters the suite checks.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

SEED_MODEL = "seed"
ModelFactory = Callable[[str, int], object]


class ModelSpecError(ValueError):
    """A ``MODULE:FUNCTION`` option that cannot be resolved; the message names the option."""


def resolve_callable(spec: str, option: str, signature: str) -> Callable:
    """Import ``MODULE:FUNCTION`` and check it is callable with ``signature``'s positional arity."""
    module_name, sep, function_name = spec.partition(":")
    usage = f"{option} must be MODULE:FUNCTION with FUNCTION{signature}"
    if not sep or not module_name or not function_name:
        raise ModelSpecError(f"{usage}, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelSpecError(
            f"{option} {spec}: cannot import {module_name!r} ({err}); run pytest from the folder that holds it "
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


def variable_name(variable) -> str:
    """A readable "layer/param" name: Keras 3 has ``.path``; TF variables have ``.name``."""
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0]


def named_parameters(model) -> dict:
    """Parameters keyed by "layer/param"; the seed network names its own."""
    if hasattr(model, "params") and isinstance(model.params, dict):
        return dict(model.params)
    named, prefix = {}, f"{getattr(model, 'name', '')}/"
    for variable in model.trainable_variables:
        name = variable_name(variable)
        # Keras numbers its models (sequential, sequential_1, ...): names must not depend on build order.
        name = name[len(prefix) :] if name.startswith(prefix) else name
        while name in named:  # Keras 2 may repeat short names across layers.
            name += "_"
        named[name] = variable
    return named


def layer_of(parameter: str) -> str:
    return parameter.rsplit("/", 1)[0] if "/" in parameter else parameter


def parameters_of(parameters: list[str], layer: str) -> list[str]:
    return [p for p in parameters if layer_of(p) == layer]
