"""A compiled Keras model's own metrics (``compile(metrics=["accuracy"])``) before and after the run.

Accuracy is what Keras users read first; the probe reports it beside the loss, as ``evaluate`` gives
it on the probe's fixed examples. Models compiled without metrics pay nothing.
"""

from __future__ import annotations

import numpy as np


def has_compiled_metrics(model) -> bool:
    """Keras 3 keeps ``compile(metrics=...)`` in ``_compile_metrics``; Keras 2 in ``compiled_metrics``."""
    if getattr(model, "optimizer", None) is None or not hasattr(model, "evaluate"):
        return False
    if getattr(model, "_compile_metrics", None) is not None:
        return True
    container = getattr(model, "compiled_metrics", None)
    return bool(getattr(container, "_user_metrics", None) or getattr(container, "_metrics", None))


def compiled_metrics(model, images, labels) -> dict[str, float]:
    """{metric: value} on these examples; {} without compiled metrics, or when ``evaluate`` cannot read
    these labels (class ids for a one-hot loss are retried as one-hot)."""
    if not has_compiled_metrics(model):
        return {}
    for targets in _label_forms(model, images, labels):
        try:
            result = model.evaluate(images, targets, batch_size=len(labels), verbose=0, return_dict=True)
        except (ValueError, TypeError, KeyError):
            model.test_function = None  # a failed evaluate leaves a broken compiled function for the next one
            continue
        return {name: float(value) for name, value in result.items() if name != "loss"}
    return {}


def _label_forms(model, images, labels):
    """The labels as given, and the forms Keras may want instead: [N] targets for one output as [N, 1] (a metric
    such as keras.metrics.BinaryCrossentropy refuses the ranks apart: a fifth user's accuracy went missing), class
    ids as one-hot rows."""
    labels = np.asarray(labels)
    width = int(model(images[:1], training=False).shape[-1])
    if labels.ndim == 1 and width == 1:
        yield labels[:, None]
    yield labels
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) and width > int(labels.max()):
        yield np.eye(width, dtype=np.float32)[labels]
