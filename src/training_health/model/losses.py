"""What the run's loss is, resolved once from the compiled loss, whatever its spelling.

Keras accepts a loss as a string (``"categorical_crossentropy"``, ``"CategoricalCrossentropy"``,
``"mse"``), a class instance (``CategoricalCrossentropy(from_logits=True)``) or a function
(``keras.losses.categorical_crossentropy``). :func:`loss_kind` reduces each to one
:class:`LossKind`: the loss *family* (which labels it reads, which head it fits), ``from_logits``
and, for classification, whether the model's outputs are read as probabilities. The contract, the fit
step's label conversion, the output measurements and the data checks all read this one description.

An uncompiled model (and the seed network) is trained with the suite's own recipe, softmax
cross-entropy on class ids from logits: :data:`SUITE_LOSS`.
"""

from __future__ import annotations

import dataclasses

SPARSE = "sparse_categorical"  # softmax over classes, labels are class ids [N]
CATEGORICAL = "categorical"  # softmax over classes, labels are one-hot (or class probabilities) [N, C]
BINARY = "binary"  # one sigmoid per output, labels 0/1 [N] or [N, K] (one binary head or multi-label)
REGRESSION = "regression"  # float targets [N] or [N, K]
OTHER = "other"  # a loss this module does not know: trained as fit would, checks that need the loss skip

# Keras loss names, lowercased without underscores (class, function and alias spellings) -> family.
FAMILIES = {
    "sparsecategoricalcrossentropy": SPARSE,
    "categoricalcrossentropy": CATEGORICAL,
    "categoricalfocalcrossentropy": CATEGORICAL,
    "binarycrossentropy": BINARY,
    "binaryfocalcrossentropy": BINARY,
    "meansquarederror": REGRESSION,
    "mse": REGRESSION,
    "meanabsoluteerror": REGRESSION,
    "mae": REGRESSION,
    "huber": REGRESSION,
    "huberloss": REGRESSION,
    "logcosh": REGRESSION,
    "meansquaredlogarithmicerror": REGRESSION,
    "msle": REGRESSION,
}
# Short names -> the long one (so "mse" and MeanSquaredError predict the same initial loss).
ALIASES = {"mse": "meansquarederror", "mae": "meanabsoluteerror", "msle": "meansquaredlogarithmicerror"}
CLASS_FAMILIES = (SPARSE, CATEGORICAL)


@dataclasses.dataclass(frozen=True)
class LossKind:
    """The loss a run is trained with, as far as the checks need it."""

    family: str  # SPARSE, CATEGORICAL, BINARY, REGRESSION or OTHER
    from_logits: bool  # the loss applies softmax/sigmoid itself (False for regression)
    name: str  # as the run spells it ("categorical_crossentropy", "CategoricalCrossentropy", "mse"); see ``key``
    reduction: str = "mean"  # "sum" when the loss object says it sums over the batch
    source: str = "compiled"  # "compiled", "suite" (the suite's recipe) or "train step" (assumed, not known)

    @property
    def key(self) -> str:
        """The name normalized: "categoricalcrossentropy", "meansquarederror" ("mse" included)."""
        return normalized(self.name)

    @property
    def classifies(self) -> bool:
        """A softmax over classes: labels are class ids or one-hot rows."""
        return self.family in CLASS_FAMILIES

    @property
    def head(self) -> str:
        """How the model's outputs are read: "softmax", "sigmoid" or "linear" (regression, unknown loss)."""
        return "softmax" if self.classifies else "sigmoid" if self.family == BINARY else "linear"

    @property
    def expects_probabilities(self) -> bool:
        """The model's outputs are read as probabilities (softmax/sigmoid in the model, from_logits=False)."""
        return self.family in (*CLASS_FAMILIES, BINARY) and not self.from_logits

    @property
    def known(self) -> bool:
        """The loss is the run's own (compiled or the suite's), not assumed for a train step."""
        return self.source != "train step" and self.family != OTHER

    def describe(self) -> str:
        logits = "" if self.family in (REGRESSION, OTHER) else f", from_logits={self.from_logits}"
        return f"{self.name} ({self.family}{logits}{', summed over the batch' if self.reduction == 'sum' else ''})"


SUITE_LOSS = LossKind(SPARSE, True, "softmax cross-entropy", source="suite")
# A train step's loss is its own code: the contract still asks for logits over classes, the checks
# that need to know the loss do not apply.
TRAIN_STEP_LOSS = LossKind(SPARSE, True, "the train step's own loss", source="train step")


def normalized(name: str) -> str:
    key = name.lower().replace("_", "").replace(" ", "")
    return ALIASES.get(key, key)


def loss_kind(model, train_step: str | None = None) -> LossKind:
    """The loss ``model`` is trained with: its compiled loss, the train step's, or the suite's recipe."""
    if not (hasattr(model, "compile") and getattr(model, "optimizer", None) is not None):  # not compiled
        return TRAIN_STEP_LOSS if train_step else SUITE_LOSS
    loss = getattr(model, "loss", None)
    if loss is None:  # compiled for its optimizer only (a train step's), or trained on model.losses alone
        return TRAIN_STEP_LOSS if train_step else LossKind(OTHER, False, "no compiled loss")
    if isinstance(loss, list | tuple | dict):  # one loss per output: the contract asks for one output
        return LossKind(OTHER, False, f"{type(loss).__name__} of {len(loss)} losses")
    return compiled_loss_kind(loss)


def compiled_loss_kind(loss) -> LossKind:
    """A Keras loss as ``compile`` takes it: string, class instance or function."""
    if isinstance(loss, str):
        return _kind(loss, from_logits=False, reduction="mean")
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    config = config if isinstance(config, dict) else {}
    # A loss instance's class name ("CategoricalCrossentropy"); Keras 2 may wrap a function in a
    # LossFunctionWrapper whose config "name" then is the function's name.
    names = [config.get("name") or "", type(loss).__name__, getattr(loss, "__name__", "")]
    name = next((n for n in names if normalized(n) in FAMILIES), names[2] or names[1])
    reduction = "sum" if str(config.get("reduction", "")).lower() == "sum" else "mean"
    return _kind(name, from_logits=bool(config.get("from_logits", False)), reduction=reduction)


def _kind(name: str, from_logits: bool, reduction: str) -> LossKind:
    family = FAMILIES.get(normalized(name), OTHER)
    return LossKind(family, from_logits if family != REGRESSION else False, name, reduction)


def targets_for_loss(kind: LossKind, labels, predictions):
    """The data's labels as ``kind``'s loss reads them, inside the compiled step (ranks are static).

    Class ids become one-hot rows for a categorical loss and one-hot rows become ids for a sparse one
    (the suite's recipe included); binary and regression targets become floats shaped like the outputs
    (``[B]`` -> ``[B, 1]`` for one output). An unknown loss gets the labels as given, as ``fit`` would.
    """
    import tensorflow as tf

    rank = labels.shape.rank
    if kind.family == CATEGORICAL:
        if rank == 1:
            return tf.one_hot(tf.cast(labels, tf.int32), tf.shape(predictions)[-1])
        return tf.cast(labels, tf.float32)
    if kind.family == SPARSE:
        return tf.argmax(labels, axis=-1, output_type=tf.int32) if rank == 2 else tf.cast(labels, tf.int32)
    if kind.family in (BINARY, REGRESSION):
        targets = tf.cast(labels, tf.float32)
        return targets[:, None] if rank == 1 and predictions.shape.rank == 2 else targets
    return labels
