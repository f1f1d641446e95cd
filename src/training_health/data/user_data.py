"""The examples a run trains on: the verified real MNIST (default) or the user's own (``--health-data``).

``--health-data MODULE:FUNCTION``: ``FUNCTION()`` takes no arguments and returns either
``(images, labels)`` arrays or a ``tf.data.Dataset`` of ``(images, labels)`` batches (or single
examples). Images must already be shaped for the model: they reach ``model(images)`` unchanged
(float64 is cast to float32). Labels are kept in the form given, as the model's loss reads them
(``TrainingData.label_encoding`` records which): integer class ids ``[N]``, one-hot rows ``[N, C]``,
0/1 multi-label rows ``[N, K]`` or float targets ``[N]`` / ``[N, K]``; the fit step converts ids and
one-hot rows into each other where the loss wants the other (``model/losses.py``). Inputs and labels
must be finite: a NaN would only show up, steps later, as a NaN loss.

Every source is read through one small interface, :class:`TrainingData`, which the probe uses::

    data.train_images[indices], data.train_labels[indices]   # NumPy batches, gathered before the loop
    data.to_model_input(images)                               # what model(...) gets; runs inside tf.function

For MNIST, ``train_images`` stays uint8 ``[60000, 28, 28]`` and ``to_model_input`` is the same
cast-and-scale the probe always used, so the seed network's numbers do not change.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from training_health.data.mnist import Mnist, load_mnist
from training_health.errors import UsageError

# A Dataset may be infinite (.repeat()): read at most as many examples as MNIST's training split.
MAX_DATASET_EXAMPLES = 60000
DATA_USAGE = (
    "FUNCTION() must return (images, labels) arrays or a tf.data.Dataset of (images, labels) batches, "
    "images shaped for the model and labels as the loss reads them (class ids [N], one-hot [N, C] or float targets)"
)


class DataSpecError(UsageError):
    """``--health-data`` cannot be imported, called or read; the message names the option and the function."""


def mnist_to_model_input(images_uint8):
    """uint8 [B, 28, 28] -> float32 [B, 28, 28, 1] in [0, 1]: the seed network's input."""
    import tensorflow as tf

    return tf.cast(images_uint8, tf.float32)[..., None] / 255.0


def as_tensor(images):
    import tensorflow as tf

    return tf.convert_to_tensor(images)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    train_images: np.ndarray  # [N, ...] as stored; to_model_input turns a batch of them into the model's input
    train_labels: np.ndarray  # int64 class ids [N], or float32 [N] / [N, K] (one-hot, multi-label, targets)
    source: str  # where the examples came from, for messages
    to_model_input: Callable = as_tensor
    mnist: Mnist | None = None  # the verified MNIST behind this data, when that is what it is
    dataset_batch: int | None = None  # the batch size of a batched tf.data.Dataset it was read from

    @property
    def is_mnist(self) -> bool:
        return self.mnist is not None

    @property
    def num_classes(self) -> int:
        """Classes the labels name: the largest id + 1, or the width of one-hot rows."""
        if self.train_labels.ndim == 2:
            return int(self.train_labels.shape[1])
        return int(np.nanmax(self.train_labels)) + 1

    @property
    def label_columns(self) -> int:
        """Outputs a binary or regression head needs for these labels: 1 for [N], K for [N, K]."""
        return 1 if self.train_labels.ndim == 1 else int(self.train_labels.shape[1])

    @functools.cached_property
    def label_encoding(self) -> str:
        """ "class ids", "one-hot", "multi-label" (0/1 rows, not one-hot) or "float targets"."""
        return label_encoding(self.train_labels)

    def batch_description(self) -> str:
        """The model input a batch becomes, e.g. ``[B,28,28,1] float32``."""
        sample = self.to_model_input(self.train_images[:1])
        return f"[B,{','.join(str(d) for d in sample.shape[1:])}] {sample.dtype.name}"

    @classmethod
    def from_mnist(cls, mnist: Mnist) -> TrainingData:
        return cls(mnist.train_images, mnist.train_labels, f"MNIST ({mnist.source})", mnist_to_model_input, mnist)


def as_training_data(source) -> TrainingData:
    """What ``run_probe`` accepts: a :class:`TrainingData`, or a verified :class:`Mnist` (wrapped)."""
    return source if isinstance(source, TrainingData) else TrainingData.from_mnist(source)


def load_training_data(spec: str | None, mnist_path: str | None = None, option: str = "--health-data") -> TrainingData:
    """The user's data when ``spec`` names a function, else the verified real MNIST."""
    if not spec:
        return TrainingData.from_mnist(load_mnist(mnist_path))
    from training_health.model.user_model import ModelSpecError, resolve_callable

    try:
        function = resolve_callable(spec, option, "()")
    except ModelSpecError as err:
        raise DataSpecError(str(err)) from err
    try:
        returned = function()
    except Exception as err:  # the user's code: report it with the option that ran it
        raise DataSpecError(f"{option} {spec}: calling it raised {type(err).__name__}: {first_line(err)}") from err
    images, labels = _arrays_from(returned, spec, option)
    return TrainingData(images, labels, f"{spec}()", dataset_batch=dataset_batch_of(returned))


def fewer_than_a_batch(data: TrainingData, batch_size: int, option: str | None = None) -> str | None:
    """Why ``data`` cannot fill one batch, or None: each batch would repeat examples, hiding what a real batch does."""
    return batch_exceeds(data.source, len(data.train_labels), batch_size, option)


def batch_exceeds(source: str, count: int, batch_size: int, option: str | None = None) -> str | None:
    """The one wording of a batch larger than the training data (plugin, main job, calibrate), or None.

    ``option`` is the batch-size option as the caller spells it (``--health-batch-size``, ``--batch-size``)."""
    if count >= batch_size:
        return None
    named = f"{option} {batch_size}: " if option else ""
    smaller = f", or give {option} {count} or less" if option else ""
    return (
        f"{named}{source} has {count} examples, fewer than one batch of {batch_size}: every step would train on the "
        f"same examples repeated within the batch. Give at least {batch_size} examples{smaller}"
    )


def first_line(err: BaseException, limit: int = 300) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else "")[:limit]


def _arrays_from(returned, spec: str, option: str) -> tuple[np.ndarray, np.ndarray]:
    fail = lambda what: DataSpecError(f"{option} {spec}: {what}; {DATA_USAGE}")  # noqa: E731
    if _is_dataset(returned):
        images, labels = _read_dataset(returned, fail)
    elif isinstance(returned, tuple | list) and len(returned) == 2:
        _one_input(returned[0], returned[1], fail)
        images, labels = (np.asarray(a) for a in returned)
    else:
        raise fail(f"returned {_describe(returned)}")
    if images.ndim < 2 or len(images) == 0:
        raise fail(f"images have shape {list(images.shape)}, not [N, ...] with N >= 1")
    if labels.dtype == np.bool_:  # e.g. labels == 0 for a binary head
        labels = labels.astype(np.float32)
    if labels.ndim == 2 and labels.shape[1] == 1:  # [N, 1] targets (Keras accepts both): one column
        labels = labels[:, 0]
    numeric = np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)
    if labels.ndim not in (1, 2) or not numeric:
        image_like = (
            " (targets shaped like images, as an autoencoder's: give them flat, [N, H*W*C], and end the "
            "model with a Reshape to that width)"
            if labels.ndim > 2 and numeric
            else ""
        )
        raise fail(f"labels are {labels.dtype} {list(labels.shape)}, not numbers [N] or [N, K]{image_like}")
    if len(labels) != len(images):
        raise fail(f"{len(images)} images but {len(labels)} labels")
    if images.dtype == np.float64:  # TF's float default: a float64 input would not match float32 weights
        images = images.astype(np.float32)
    _finite(images, "images", f"{option} {spec}")
    _finite(labels, "labels", f"{option} {spec}")
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        return images, labels.astype(np.int64)
    return images, labels.astype(np.float32)


def _finite(values: np.ndarray, what: str, where: str) -> None:
    """NaN or inf in the data: the first step's loss would be NaN, and every check after it meaningless."""
    if not np.issubdtype(values.dtype, np.floating):
        return
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
        kinds = ", ".join(k for k, m in (("NaN", np.isnan(values)), ("inf", np.isinf(values))) if m.any())
        raise DataSpecError(
            f"{where}: {what} contain {kinds}: {int(bad.sum())} values in "
            f"{rows.size} of {len(values)} examples (first at example {int(rows[0])}); training on them gives a "
            f"NaN loss from the first step. Remove or repair those examples (e.g. keep = np.isfinite({what})"
            f".reshape(len({what}), -1).all(axis=1)), or fill them (np.nan_to_num)"
        )


def label_encoding(labels: np.ndarray) -> str:
    if labels.ndim == 1:
        integral = np.issubdtype(labels.dtype, np.integer) or bool(np.all(labels == np.round(labels)))
        return "class ids" if integral and labels.min() >= 0 else "float targets"
    binary = bool(np.all((labels == 0) | (labels == 1)))
    if binary and np.all(labels.sum(axis=1) == 1):
        return "one-hot"
    return "multi-label" if binary else "float targets"


def _is_dataset(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def dataset_batch_of(returned) -> int | None:
    """The batch size a batched ``tf.data.Dataset`` yields (its first element's), None for arrays or single
    examples: the check trains at ``--health-batch-size``, which the user may expect to come from ``.batch()``."""
    if not _is_dataset(returned):
        return None
    for element in returned.take(1):
        if isinstance(element, tuple | list) and len(element) == 2:
            x, y = (np.asarray(t) for t in element)
            if y.ndim >= 1 and x.ndim >= 1 and x.shape[0] == y.shape[0]:
                return int(y.shape[0])
    return None


def _read_dataset(dataset, fail) -> tuple[np.ndarray, np.ndarray]:
    """Batches (or single examples) of (images, labels), up to MAX_DATASET_EXAMPLES examples."""
    images, labels, count = [], [], 0
    for element in dataset:
        if not (isinstance(element, tuple | list) and len(element) == 2):
            raise fail(f"its Dataset yields {_describe(element)}, not (images, labels)")
        _one_input(element[0], element[1], fail)
        x, y = (np.asarray(t) for t in element)
        # Single examples: a scalar label, or a label vector (one-hot) whose length is not the images' batch size.
        if y.ndim == 0 or x.ndim == 0 or x.shape[0] != y.shape[0]:
            x, y = x[None], y[None]
        images.append(x)
        labels.append(y)
        count += len(y)
        if count >= MAX_DATASET_EXAMPLES:
            break
    if not images:
        raise fail("its Dataset is empty")
    return np.concatenate(images)[:MAX_DATASET_EXAMPLES], np.concatenate(labels)[:MAX_DATASET_EXAMPLES]


def _one_input(images, labels, fail) -> None:
    """Several model inputs (a dict, or a tuple of arrays as the Keras functional guide's multi-input models take
    them) are not one images array: say so, rather than fail converting them (a user saw an INTERNALERROR)."""
    count = len(labels) if np.ndim(labels) else 1
    several = isinstance(images, dict) or (
        isinstance(images, tuple | list) and len(images) != count and all(np.ndim(a) >= 1 for a in images)
    )
    if several:
        parts = images.items() if isinstance(images, dict) else enumerate(images)
        shapes = ", ".join(f"{k}: {list(np.shape(v))}" for k, v in parts)
        raise fail(
            f"gives {len(images)} model inputs ({shapes}): the checks train models with one input, images [N, ...]; "
            "several inputs are not supported yet. Check the branch that reads the images as a model of its own, "
            "or join the inputs into one array"
        )


def _describe(value) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"
