"""Every run option, defined once: name, type, default, help; used by the pytest plugin (``--health-``
prefix), the main job (``python -m training_health``) and calibrate (``--`` prefix).

Standard library only (the plugin imports it in every pytest run). Values are read back the same way
whoever parsed them: ``config.getoption("health_<name>")`` on pytest's config, or on a
:class:`CommandOptions` wrapping argparse's namespace; messages name an option with :func:`flag`, in
the form the user typed (``--health-steps`` in pytest, ``--steps`` on the main job's command line).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import shlex

from training_health.defaults import HEALTHY_INITS, SEED_MODEL
from training_health.probe.modes import DEFAULT_STEPS, MODES

PLUGIN_PREFIX = "--health-"
COMMAND_PREFIX = "--"
DEFAULT_BATCH_SIZE = 128  # the question's batch size; --health-batch-size gives the user's
KEYWORDS = "keywords"  # health_check(...) / check_training(...): a setting is a keyword argument
PLUGIN, MAIN, CALIBRATE = "plugin", "main", "calibrate"
EVERYWHERE = (PLUGIN, MAIN, CALIBRATE)


@dataclasses.dataclass(frozen=True)
class Option:
    name: str  # "batch-size": --health-batch-size / --batch-size; read as getoption("health_batch_size")
    help: str
    metavar: str | None = None
    type: type | None = None
    default: object = None
    flag: bool = False  # a switch (store_true)
    scopes: tuple[str, ...] = EVERYWHERE

    @property
    def dest(self) -> str:
        return "health_" + self.name.replace("-", "_")

    def arguments(self) -> dict:
        if self.flag:
            return {"dest": self.dest, "action": "store_true", "help": self.help}
        return {
            "dest": self.dest,
            "metavar": self.metavar,
            "type": self.type,
            "default": self.default,
            "help": self.help,
        }


OPTIONS = (
    Option("suite", "collect the built-in checks (implied by --health-model etc.)", flag=True, scopes=(PLUGIN,)),
    Option(
        "model",
        "factory FUNCTION(initializer, seed) building your model (default: the seed network)",
        "MODULE:FUNCTION",
    ),
    Option(
        "data",
        "FUNCTION() returning (images, labels) or a tf.data.Dataset of them, shaped for the model "
        "(default: the verified real MNIST)",
        "MODULE:FUNCTION",
    ),
    Option(
        "train-step",
        "FUNCTION(model, images, labels) doing one step of your training and returning its loss; needs the model "
        "option (default: a compiled model's own optimizer and loss, else TF1 Adam + softmax cross-entropy)",
        "MODULE:FUNCTION",
    ),
    Option(
        "frozen",
        "layers frozen on purpose: they pass while unchanged ('frozen as declared'); any other weight that "
        "never changes fails with its reason",
        "LAYER[,LAYER]",
        scopes=(PLUGIN, MAIN),
    ),
    Option("mnist-path", "Keras mnist.npz or a folder of IDX files (default: $MNIST_PATH, caches, mirror)", "PATH"),
    Option("inits", f"comma-separated initializations (seed network: {', '.join(HEALTHY_INITS)})", "LIST"),
    Option(
        "devices",
        "comma-separated of cpu, gpu (default cpu,gpu: a missing GPU skips)",
        "LIST",
        scopes=(PLUGIN,),
    ),
    Option("modes", f"comma-separated of {', '.join(MODES)}", "LIST", default="graph"),
    Option("steps", "training steps per run", "N", int, DEFAULT_STEPS),
    Option("seed", "seed for initialization, batches and dropout", "N", int, 0, scopes=(PLUGIN, MAIN)),
    Option(
        "seeds",
        "comma-separated seeds, one training run each (e.g. 0,1,2): for faults that show in some runs only; "
        "the summary groups each test's verdicts ('fails at 2 of 3 seeds')",
        "LIST",
        scopes=(PLUGIN,),
    ),
    Option(
        "batch-size",
        f"examples per training step (default {DEFAULT_BATCH_SIZE}, the seed network's); give your training's",
        "N",
        int,
        DEFAULT_BATCH_SIZE,
    ),
    Option(
        "thresholds",
        "a thresholds file (from python -m training_health.checks.calibrate)",
        "TOML",
        scopes=(PLUGIN, MAIN),
    ),
    Option("min-relative-change", "one minimum relative change for every parameter", "X", float, scopes=(PLUGIN,)),
    Option("probe-output", "folder for probe JSON and pictures", "DIR", default="probe-output", scopes=(PLUGIN,)),
    Option(
        "initial-weights",
        "start every run from the weights in this .npz (saved there by the first run if it does not exist): "
        "the same start under two TensorFlow versions (python -m training_health.report.upgrade)",
        "PATH.npz",
        scopes=(PLUGIN, MAIN),
    ),
    Option(
        "regen-baselines",
        "rewrite each existing dynamics baseline this run differs from beyond tolerance (files within tolerance "
        "stay untouched); the summary lists every file written",
        flag=True,
        scopes=(PLUGIN,),
    ),
    Option(
        "add-baselines",
        "write a dynamics baseline for each configuration that has none (a new TF version or setting)",
        flag=True,
        scopes=(PLUGIN,),
    ),
    Option(
        "resume",
        "also run test_resume_equivalent: train k+m steps straight and k steps -> save -> restore into a fresh "
        "model -> m steps, and fail naming what the checkpoint left out (also run by -k resume)",
        flag=True,
        scopes=(PLUGIN,),
    ),
    Option(
        "resume-with",
        "your own save and restore for the resume check, each FUNCTION(model, optimizer, directory) "
        "(default: model.save(.keras) + load_model for a compiled Keras model, else tf.train.Checkpoint)",
        "MODULE:SAVE,MODULE:RESTORE",
        scopes=(PLUGIN,),
    ),
    Option(
        "allow-skipped",
        "exit 0 even when every selected health test skipped (default: such a run checked nothing and fails)",
        flag=True,
        scopes=(PLUGIN,),
    ),
)


def add_options(add, scope: str, prefix: str) -> None:
    """Register every option of ``scope`` with ``add`` (pytest's ``group.addoption`` or argparse's
    ``add_argument``) under ``prefix``."""
    for option in OPTIONS:
        if scope in option.scopes:
            add(prefix + option.name, **option.arguments())


class CommandOptions:
    """argparse's namespace read like pytest's config (``getoption("health_steps")``), so that one piece of
    code (``validation.py``, the model contract) checks every entry point before any training."""

    def __init__(self, namespace, prefix: str = COMMAND_PREFIX, **overrides):
        self.values = {**vars(namespace), **overrides}
        self.option_prefix = prefix
        self.stash = {}

    def getoption(self, name: str, default=None):
        return self.values.get(name, default)


def flag(config, name: str) -> str:
    """An option as the user writes it on this entry point: ``--health-steps`` in pytest, ``--steps`` elsewhere."""
    return getattr(config, "option_prefix", PLUGIN_PREFIX) + name


# How the user changes a setting where this run was started: the plugin's option (the default), the main job's
# option, or a keyword of health_check / check_training. Fix lines deep in the checks name it with ``setting``.
_SPELLING = contextvars.ContextVar("training_health_setting_spelling", default=PLUGIN_PREFIX)


@contextlib.contextmanager
def settings_spelt(spelling: str):
    """Within: ``setting`` spells settings as ``spelling`` (an option prefix, or ``KEYWORDS``)."""
    token = _SPELLING.set(spelling)
    try:
        yield
    finally:
        _SPELLING.reset(token)


# A plugin option that another entry point names otherwise, or has not: the knob that does its job there (named
# without a value). The main job writes its figures to --out; check_training / health_check take pictures=; a
# bound is changed there through the thresholds given (thresholds= / --thresholds).
_KNOB_ELSEWHERE = {
    "probe-output": {KEYWORDS: "pictures", COMMAND_PREFIX: "out"},
    "min-relative-change": {KEYWORDS: "thresholds", COMMAND_PREFIX: "thresholds"},
}


def setting(name: str, value=None) -> str:
    """A setting as the user changes it here: ``--health-frozen conv2d`` (pytest), ``--frozen conv2d`` (the main
    job), ``frozen="conv2d"`` (``health_check`` / ``check_training``); without ``value``, its name alone."""
    spelling = _SPELLING.get()
    name = _KNOB_ELSEWHERE.get(name, {}).get(spelling, name)
    if spelling == KEYWORDS:
        keyword = name.replace("-", "_")
        return f"{keyword}=" + ("" if value is None else f'"{value}"' if isinstance(value, str) else str(value))
    return spelling + name + ("" if value is None else f" {value}")


def frozen_declaration() -> str:
    """Where layers are declared frozen on purpose, here."""
    marker = " or the health_frozen marker" if _SPELLING.get() == PLUGIN_PREFIX else ""
    return setting("frozen") + marker


def calibrate_command(model: str, train_step: str | None, data: str | None, steps: int, batch_size: int) -> str:
    """The calibrate command for a run, runnable as printed (tests/test_printed_commands.py runs it)."""
    words = ["python", "-m", "training_health.checks.calibrate", "--model", model]
    if train_step:
        words += ["--train-step", train_step]
    if data:
        words += ["--data", data]
    if batch_size != DEFAULT_BATCH_SIZE:
        words += ["--batch-size", str(batch_size)]
    name = model.split(":")[0].replace(".", "-") if model != SEED_MODEL else "seed"
    words += ["--steps", str(steps), "--out", f"thresholds-{name}.toml"]
    return shlex.join(words)
