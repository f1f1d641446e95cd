"""``--health-initial-weights PATH.npz``: every run of a configuration starts from the same weights.

Keras 2 and Keras 3 draw different initial weights from the same seed, so a run under TF 2.15 and one
under TF 2.21 differ from step 0 whatever else changed. The first run saves each configuration's built
weights to PATH (keys ``<configuration id>::<layer/param>``, the canonical names of
``model/variables.py``); a later run whose PATH holds that configuration loads them before training.
A nested model's weights are spelled with the enclosing models' names under Keras 3 only
(sequential/conv2d/kernel; conv2d/kernel under Keras 2): names are paired by ``variables.pair_names``
(one-to-one up to that prefix, same shapes), silently. A model whose weights do not fit (a missing
name, another shape) is one :class:`UsageError` naming the parameter: "weights cannot be transferred".
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from training_health.errors import UsageError

SEPARATOR = "::"
_path: Path | None = None
_written: set[str] = set()  # configurations this process saved: they may be appended to PATH


class WeightsTransferError(UsageError):
    """The file's weights do not fit the model built now."""


def use(path) -> None:
    """The session's PATH (None: no transfer); the plugin and the main job call it once at start."""
    global _path
    _path = Path(path) if path else None
    _written.clear()


def apply(model, config_id: str) -> str | None:
    """Load ``config_id``'s weights from PATH into ``model`` or save them there; returns what was done."""
    if _path is None:
        return None
    from training_health.model.variables import model_variables, pair_names, tf_variable

    weights = model_variables(model).weights
    stored = _read(_path)
    prefix = config_id + SEPARATOR
    mine = {k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)}
    if not mine:
        if stored and not (_written and _path.exists()):
            held = sorted({k.split(SEPARATOR)[0] for k in stored})
            raise WeightsTransferError(
                f"--health-initial-weights {_path}: holds no weights for configuration {config_id} "
                f"(it holds {', '.join(held)}); run with the same --health-* options as the run that saved it, "
                "or give a new file to save this configuration's weights"
            )
        _save(_path, {**stored, **{prefix + n: tf_variable(v).numpy() for n, v in weights.items()}})
        _written.add(config_id)
        return "saved"
    pairing = pair_names({n: tuple(v.shape) for n, v in weights.items()}, {n: a.shape for n, a in mine.items()})
    if not pairing.complete:
        raise WeightsTransferError(
            f"--health-initial-weights {_path}: the weights cannot be transferred to configuration {config_id}: "
            + "; ".join(_misfits(pairing))
            + " (the model built now is not the model that saved them: same factory, same layers?)"
        )
    for name, variable in weights.items():
        tf_variable(variable).assign(mine[pairing.pairs[name]])
    return "loaded"


def _misfits(pairing) -> list[str]:
    problems = [f"{n}: not in the file" for n in pairing.only_ours]
    problems += [f"{n}: in the file, not in the model" for n in pairing.only_theirs]
    problems += [
        f"{n}: shape {file} in the file{'' if n == stored else f' (as {stored})'}, {model} in the model"
        for n, stored, model, file in pairing.shapes
    ]
    return problems


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _save(path: Path, arrays: dict) -> None:
    from training_health.data.mnist import atomic_write

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())


def misnamed(path, parameters: list[str]) -> str | None:
    """Before training: a problem if PATH holds weights whose names are not the model's (another model)."""
    if not path or not Path(path).exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        stored = {}
        for key in data.files:
            config_id, _, name = key.partition(SEPARATOR)
            stored.setdefault(config_id, set()).add(name)
    from training_health.model.variables import pair_names

    for config_id, names in stored.items():
        pairing = pair_names(dict.fromkeys(parameters), dict.fromkeys(names))  # names only: shapes when loading
        missing, extra = sorted(pairing.only_ours), sorted(pairing.only_theirs)
        if missing or extra:
            return (
                f"--health-initial-weights {path}: the weights cannot be transferred to this model "
                f"(saved for {config_id}; not in the file: {', '.join(missing) or '-'}; not in the model: "
                f"{', '.join(extra) or '-'}); give a new file for this model or delete this one"
            )
    return None
