"""Every variable of the model under test, named and sorted into weights and state.

*Weights* are what the model's layers would train: the variables ``trainable_variables`` lists once
every layer is made trainable (kernels, biases, embeddings, BatchNorm gamma/beta), whether or not a
layer is frozen now. Everything else the model holds is *state* that a training step may or may not
change and that is never flagged: BatchNorm moving statistics, RNG seed states, dropout call counters.
Optimizer slots and step counters belong to the optimizer, not the model, and are not listed at all.

For a plain ``tf.Module`` there is no layer flag to consult: its trainable variables are its weights.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass
class ModelVariables:
    weights: dict  # "layer/param" -> variable, every weight-like variable
    trainable: dict  # "layer/param" -> bool: trained by the model's own trainable_variables now
    state: dict  # "layer/param" -> variable, non-weight state (never flagged)

    @property
    def frozen(self) -> list[str]:
        return [name for name, trains in self.trainable.items() if not trains]


def variable_name(variable) -> str:
    """A readable "layer/param" name: Keras 3 has ``.path``; TF variables have ``.name``."""
    name = getattr(variable, "path", None) or variable.name
    return name.split(":")[0]


def tf_variable(variable):
    """The ``tf.Variable`` behind a Keras 3 variable (read outside any autocast scope), else itself."""
    import tensorflow as tf  # here, not at import: the plugin imports this module without TensorFlow

    return variable if isinstance(variable, tf.Variable) else variable.value


def _unique_names(variables, prefix: str, renames: dict | None = None) -> list[str]:
    """Readable, unique "layer/param" names; ``renames`` maps Keras' numbered layer names to canonical ones."""
    names, renames, numbered = [], dict(renames or {}), {}
    for variable in variables:
        name = variable_name(variable)
        # Keras numbers its models (sequential, sequential_1, ...): names must not depend on build order.
        name = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        parts: list[str] = []
        for part in name.split("/"):
            parts.append(_canonical_segment(part, renames, "/".join(parts), numbered))
        name = "/".join(parts)
        while name in names:  # Keras 2 may repeat short names across layers.
            name += "_"
        names.append(name)
    return names


# Keras 3 numbers per process what is not a layer too: the seed generators of Dropout etc.
# (seed_generator_3/...) and weights a custom layer adds without a name (add_weight(): variable_5).
_NUMBERED_OBJECTS = re.compile(r"^(seed_generator|variable)(_\d+)?$")


def _canonical_segment(part: str, renames: dict, parent: str, numbered: dict) -> str:
    """``part`` renamed: a layer by ``renames``; a numbered non-layer object by its order among the objects
    of its kind under the same parent (linear/variable, linear/variable_1, ...)."""
    if part in renames:
        return renames[part]
    match = _NUMBERED_OBJECTS.match(part)
    if not match:
        return part
    kind = (parent, match.group(1))
    seen = numbered.setdefault(kind, {})
    if part not in seen:
        seen[part] = match.group(1) + (f"_{len(seen)}" if seen else "")
    return seen[part]


def _snake_cases(class_name: str) -> set[str]:
    """How Keras 3 (``naming.to_snake_case``) and Keras 2 (``generic_utils.to_snake_case``) name a class."""
    keras3 = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name)))
    keras2 = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name))
    return {keras3.lower(), keras2.lower()}


def _automatic_base(layer) -> str | None:
    """The base of ``layer``'s name if it is Keras' automatic form ``<snake_case(class)>(_<n>)?``, else None."""
    for base in _snake_cases(type(layer).__name__):
        if re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name):
            return base
    return None


def canonical_layer_names(model) -> dict[str, str]:
    """{name Keras gave a layer: the name a fresh process would give it}, for automatically named layers.

    Keras numbers automatic names per process (conv2d, conv2d_1; the next build of the same factory
    gets conv2d_2, conv2d_3), so names from one build would not find the layers of the next. A layer
    named automatically gets ``<base>`` for the first layer with that base in the model's layer order,
    ``<base>_1`` for the second, ...; hand-given names stay (and are never given to another layer).
    A name several layers share (Keras 3 names every LSTM's cell ``lstm_cell``) stays as it is.
    """
    layers = _all_layers(model)[1:]
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer.name] = counts.get(layer.name, 0) + 1
    automatic = {id(layer): _automatic_base(layer) for layer in layers}
    reserved = {layer.name for layer in layers if automatic[id(layer)] is None or counts[layer.name] > 1}
    renames, next_index = {}, {}
    for layer in layers:
        base = automatic[id(layer)]
        if base is None or layer.name in reserved or layer.name in renames:
            continue
        index = next_index.get(base, 0)
        while (candidate := base if index == 0 else f"{base}_{index}") in reserved:
            index += 1
        next_index[base] = index + 1
        renames[layer.name] = candidate
    return renames


def layer_names(model) -> dict[int, str]:
    """{id(layer): canonical name} for every layer of a Keras model (see canonical_layer_names)."""
    renames = canonical_layer_names(model)
    return {id(layer): renames.get(layer.name, layer.name) for layer in _all_layers(model)}


def variable_names(model, variables) -> list[str]:
    """The canonical "layer/param" names of ``variables`` of ``model`` (the same on every build)."""
    renames = canonical_layer_names(model) if is_keras_model(model) else {}
    return _unique_names(variables, f"{getattr(model, 'name', '')}/", renames)


def frozen_at(model) -> dict[str, str]:
    """{layer (as parameter names spell it): how to make it train again}, for layers holding a weight the model
    does not train: ``trainable = True`` on the outermost layer set to False on the way to it (a base model frozen
    whole: the base model), with the code that reaches it from the built model by position
    (``model.layers[1].layers[0]``). Positions, not names: Keras numbers automatic names per process, and a name
    from an earlier build (``conv2d_1``) may be another layer's, or none, in the next (canonical_layer_names)."""
    if not is_keras_model(model):
        return {}
    canonical, chains = layer_names(model), {}  # id(variable) -> [(parent, layer), ...] down to its deepest owner

    def visit(layer, chain, seen) -> None:
        for variable in layer.weights:
            chains[id(variable)] = chain
        for child in layer._flatten_layers(include_self=False, recursive=False):
            if id(child) not in seen:
                visit(child, [*chain, (layer, child)], seen | {id(child)})

    visit(model, [], {id(model)})
    found = {}
    variables = model_variables(model)
    for name in variables.frozen:
        chain = chains.get(id(variables.weights[name]), [])
        cut = next((i for i, (_, layer) in enumerate(chain) if not layer.trainable), None)
        if cut is None:  # a weight created non-trainable, not a frozen layer: no flag to set
            continue
        path = "/".join(canonical[id(layer)] for _, layer in chain[: cut + 1])  # a nested layer with its models
        positions = [_position(parent, layer) for parent, layer in chain[: cut + 1]]
        code = "" if None in positions else f" (model{''.join(f'.layers[{i}]' for i in positions)}.trainable = True)"
        found[name.rsplit("/", 1)[0]] = f"set trainable = True on layer '{path}'{code}"
    return found


def _position(parent, layer) -> int | None:
    return next((i for i, child in enumerate(getattr(parent, "layers", ())) if child is layer), None)


def _all_layers(model) -> list:
    """The model and every nested layer, parents before children, each model's layers in their own order.

    Not ``_flatten_layers(recursive=True)``: Keras 3's walk lists a nested model's layers in reverse
    (deque.extendleft), so a Sequential base's conv2d/conv2d_1 were renamed the other way round from
    Keras 2's (sequential/conv2d_1/kernel held the first conv's [3, 3, 1, 32] under TF 2.21, conv2d_1/kernel
    its [3, 3, 32, 64] under TF 2.15). One level at a time (both Keras have ``recursive=False``) keeps the order.
    """
    if not hasattr(model, "_flatten_layers"):
        return [model]
    ordered, seen = [], set()

    def visit(layer) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        ordered.append(layer)
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child)

    visit(model)
    return ordered


def _would_be_trainable(model) -> set[int]:
    """ids of the variables ``trainable_variables`` lists with every layer trainable.

    Keras keeps which variables a frozen layer *would* train only privately (and differently in
    Keras 2 and 3); the public way is to ask with every layer trainable, then restore each flag.
    """
    layers = _all_layers(model)
    flags = [layer.trainable for layer in layers]
    if all(flags):
        return {id(v) for v in model.trainable_variables}
    try:
        for layer in layers:  # each one: Keras 3's Sequential does not pass the flag down
            layer.trainable = True
        return {id(v) for v in model.trainable_variables}
    finally:
        for layer, flag in zip(layers, flags):  # parents first: a parent's setter recurses into children
            layer.trainable = flag


def is_keras_model(model) -> bool:
    return hasattr(model, "_flatten_layers") and hasattr(model, "trainable_weights")


def model_variables(model) -> ModelVariables:
    """Named weights (with their trainable flag now) and state of ``model``.

    The seed network names its own parameters (``model.params``); its other variables are state.
    """
    if hasattr(model, "params") and isinstance(model.params, dict):
        weights = dict(model.params)
        ids = {id(v) for v in weights.values()}
        others = [v for v in model.variables if id(v) not in ids]
        state = dict(zip(_unique_names(others, ""), others))
        return ModelVariables(weights, {n: True for n in weights}, state)
    variables = list({id(v): v for v in model.variables}.values())
    names = variable_names(model, variables)
    trainable_now = {id(v) for v in model.trainable_variables}
    weight_ids = _would_be_trainable(model) if is_keras_model(model) else trainable_now
    weights = {n: v for n, v in zip(names, variables) if id(v) in weight_ids}
    state = {n: v for n, v in zip(names, variables) if id(v) not in weight_ids}
    return ModelVariables(weights, {n: id(v) in trainable_now for n, v in weights.items()}, state)


# --- One name across Keras versions --------------------------------------------------------------------
# A model nested in another (the Keras "Transfer learning" guide's base model) names its weights with the
# enclosing models' names under Keras 3 (sequential/conv2d/kernel) and without them under Keras 2
# (conv2d/kernel). The weights file, the upgrade report and --health-frozen all match names by this rule.


def same_up_to_nesting(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same layer or parameter but for the enclosing models' prefix: equal, or one
    is the other with leading path segments removed (conv2d/kernel, sequential/conv2d/kernel)."""
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def candidates(name: str, names) -> list[str]:
    """The names of ``names`` that ``name`` may stand for: itself if present, else those equal up to nesting."""
    names = list(names)
    return [name] if name in names else [n for n in names if same_up_to_nesting(name, n)]


@dataclasses.dataclass
class NamePairing:
    pairs: dict  # name in ``ours`` -> its name in ``theirs``
    only_ours: list  # names of ``ours`` paired with nothing
    only_theirs: list  # names of ``theirs`` paired with nothing
    shapes: list  # (ours, theirs, our shape, their shape): the same name up to nesting, other shapes
    ambiguous: dict  # name -> the several names of the other side it could be

    @property
    def complete(self) -> bool:
        return not (self.only_ours or self.only_theirs or self.shapes)


def pair_names(ours: dict, theirs: dict) -> NamePairing:
    """Pairs two spellings of one model's parameters: ``{name: shape or None}`` each (None: shape unknown).

    Equal names pair; otherwise two names pair when they are the same up to the enclosing models' prefix
    (``same_up_to_nesting``) and each is the other's only such name (one-to-one). A pair whose shapes
    are both known and differ is not a pair: it goes to ``shapes``. Anything else stays unpaired.
    """
    pairs = {n: n for n in ours if n in theirs}
    rest_ours = [n for n in ours if n not in pairs]
    rest_theirs = [n for n in theirs if n not in pairs]
    ambiguous, shapes = {}, []
    for name in rest_ours:
        mine = candidates(name, rest_theirs)
        if len(mine) > 1:
            ambiguous[name] = mine
        if len(mine) == 1 and candidates(mine[0], rest_ours) == [name]:
            pairs[name] = mine[0]
    for name in rest_theirs:
        others = candidates(name, rest_ours)
        if len(others) > 1:
            ambiguous[name] = others
    for name, other in list(pairs.items()):
        a, b = ours[name], theirs[other]
        if a is not None and b is not None and tuple(a) != tuple(b):
            shapes.append((name, other, list(a), list(b)))
            del pairs[name]
    in_shapes = {s[0] for s in shapes}, {s[1] for s in shapes}
    paired = set(pairs.values())
    return NamePairing(
        pairs,
        [n for n in ours if n not in pairs and n not in in_shapes[0]],
        [n for n in theirs if n not in paired and n not in in_shapes[1]],
        shapes,
        ambiguous,
    )


@dataclasses.dataclass
class ResolvedNames:
    names: list  # each resolvable declared name, spelled as in the model
    unknown: list  # declared names the model does not have, in either spelling
    ambiguous: dict  # declared name -> the model's names it could be


def resolve_names(declared, names) -> ResolvedNames:
    """Declared layer (or parameter) names, as the model spells them: a name the model has, or one that
    is a single name of the model but for the enclosing models' prefix (``candidates``)."""
    resolved = ResolvedNames([], [], {})
    for name in declared:
        found = candidates(name, names)
        if len(found) == 1:
            resolved.names.append(found[0])
        elif found:
            resolved.ambiguous[name] = found
        else:
            resolved.unknown.append(name)
    return resolved
