"""The examples a run trains on: the verified real MNIST (default) or the user's own (``--health-data``).

``--health-data MODULE:FUNCTION``: ``FUNCTION()`` takes no arguments and returns either
``(images, labels)`` arrays or a ``tf.data.Dataset`` of ``(images, labels)`` batches (or single
examples). Images must already be shaped for the model: they reach ``model(images)`` unchanged
(float64 is cast to float32). Labels are integer class ids ``[N]``.

Every source is read through one small interface, :class:`TrainingData`, which the probe uses::

    data.train_images[indices], data.train_labels[indices]   # NumPy batches, gathered before the loop
    data.to_model_input(images)                               # what model(...) gets; runs inside tf.function

For MNIST, ``train_images`` stays uint8 ``[60000, 28, 28]`` and ``to_model_input`` is the same
cast-and-scale the probe always used, so the seed network's numbers do not change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from training_health.data.mnist import Mnist, load_mnist
from training_health.errors import UsageError

# A Dataset may be infinite (.repeat()): read at most as many examples as MNIST's training split.
MAX_DATASET_EXAMPLES = 60000
DATA_USAGE = (
    "FUNCTION() must return (images, labels) arrays or a tf.data.Dataset of (images, labels) batches, "
    "images shaped for the model and labels integer class ids"
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
    train_labels: np.ndarray  # int64 [N]
    source: str  # where the examples came from, for messages
    to_model_input: Callable = as_tensor
    mnist: Mnist | None = None  # the verified MNIST behind this data, when that is what it is

    @property
    def is_mnist(self) -> bool:
        return self.mnist is not None

    @property
    def num_classes(self) -> int:
        return int(self.train_labels.max()) + 1

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
    return TrainingData(images, labels, f"{spec}()")


def first_line(err: BaseException, limit: int = 300) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else "")[:limit]


def _arrays_from(returned, spec: str, option: str) -> tuple[np.ndarray, np.ndarray]:
    fail = lambda what: DataSpecError(f"{option} {spec}: {what}; {DATA_USAGE}")  # noqa: E731
    if _is_dataset(returned):
        images, labels = _read_dataset(returned, fail)
    elif isinstance(returned, tuple | list) and len(returned) == 2:
        images, labels = (np.asarray(a) for a in returned)
    else:
        raise fail(f"returned {_describe(returned)}")
    if images.ndim < 2 or len(images) == 0:
        raise fail(f"images have shape {list(images.shape)}, not [N, ...] with N >= 1")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        hint = " (one-hot? give labels.argmax(-1))" if labels.ndim == 2 else ""
        raise fail(f"labels are {labels.dtype} {list(labels.shape)}, not integer class ids [N]{hint}")
    if len(labels) != len(images):
        raise fail(f"{len(images)} images but {len(labels)} labels")
    if labels.min() < 0:
        raise fail(f"labels include {labels.min()}; class ids start at 0")
    if images.dtype == np.float64:  # TF's float default: a float64 input would not match float32 weights
        images = images.astype(np.float32)
    return images, labels.astype(np.int64)


def _is_dataset(value) -> bool:
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _read_dataset(dataset, fail) -> tuple[np.ndarray, np.ndarray]:
    """Batches (or single examples) of (images, labels), up to MAX_DATASET_EXAMPLES examples."""
    images, labels, count = [], [], 0
    for element in dataset:
        if not (isinstance(element, tuple | list) and len(element) == 2):
            raise fail(f"its Dataset yields {_describe(element)}, not (images, labels)")
        x, y = (np.asarray(t) for t in element)
        if y.ndim == 0:  # single examples: make them a batch of one
            x, y = x[None], y[None]
        images.append(x)
        labels.append(y)
        count += len(y)
        if count >= MAX_DATASET_EXAMPLES:
            break
    if not images:
        raise fail("its Dataset is empty")
    return np.concatenate(images)[:MAX_DATASET_EXAMPLES], np.concatenate(labels)[:MAX_DATASET_EXAMPLES]


def _describe(value) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"
