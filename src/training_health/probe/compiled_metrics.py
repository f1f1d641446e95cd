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
            continue
        return {name: float(value) for name, value in result.items() if name != "loss"}
    return {}


def _label_forms(model, images, labels):
    yield labels
    labels = np.asarray(labels)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        classes = int(model(images[:1], training=False).shape[-1])
        if classes > int(labels.max()):
            yield np.eye(classes, dtype=np.float32)[labels]
