"""Fix lines stay true: they quote the run's own optimizer and learning rate (or none), and no rule
contradicts the failing row it explains (issue 16 item 4).

The trajectories here are built by hand (no training): each states exactly the measurement a rule
reads, so a test can demand what the rule must and must not say about it. The trained negative
controls (tests/test_negative_controls.py, tests/test_user_training.py) cover the same rules on real runs.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from training_health.checks.diagnosis import CHECKS, TOO_LITTLE_CHANGE, diagnose
from training_health.probe.training_probe import PER_STEP_METRICS, ProbeConfig, Trajectory

STEPS = 30
SHAPES = {"hidden/kernel": [64, 32], "hidden/bias": [32], "logits/kernel": [32, 10], "logits/bias": [10]}
RECIPES = {  # how the run was trained -> the learning rate its optimizer reported (None: hidden in a train step)
    "SGD lr=0.01 momentum=0.9, loss sparse_categorical_crossentropy(from_logits=True)": 0.01,
    "RMSprop lr=0.01, loss sparse_categorical_crossentropy(from_logits=True)": 0.01,
    "Adam lr=0.0001, loss sparse_categorical_crossentropy(from_logits=True)": 1e-4,
    "TF1 Adam lr=1, softmax cross-entropy": 1.0,
    "train step mod:step (its own optimizer, loss and variable list)": None,
}
LR_FIX = re.compile(r"(lower|raise) the learning rate from ([0-9.e+-]+) to ~([0-9.e+-]+)")


def trajectory(
    recipe: str,
    lr: float | None,
    update_ratio: float = 1e-3,
    dead: tuple[float, float] = (0.0, 0.0),
    dead_layer: str = "hidden",
    blown: bool = False,
) -> Trajectory:
    """A run whose every weight moves ``update_ratio`` of its norm per step (He-scale weights, no NaN)."""
    names = list(SHAPES)
    std = {n: (np.sqrt(2.0 / s[0]) if len(s) == 2 else 0.05) for n, s in SHAPES.items()}
    norm = {n: std[n] * np.sqrt(np.prod(s)) for n, s in SHAPES.items()}
    per_step = {m: np.ones((STEPS, len(names)), np.float32) for m in PER_STEP_METRICS}
    per_step["weight_norm"][:] = [norm[n] for n in names]
    per_step["update_norm"][:] = [norm[n] * update_ratio for n in names]
    per_step["grad_norm"][:] = 1.0
    per_step["grad_max"][:] = 0.1
    change = {n: norm[n] * (2.0 if blown and n.endswith("kernel") else update_ratio * STEPS) for n in names}
    layers = {"hidden", "logits"} if dead_layer == "logits" else {"hidden"}
    return Trajectory(
        config=ProbeConfig(model="mod:build", initializer="default", steps=STEPS, recipe=recipe),
        parameters=names,
        shapes=SHAPES,
        connected=dict.fromkeys(names, True),
        loss=np.linspace(2.3, 1.0, STEPS),
        per_step=per_step,
        initial_weight_norm=norm,
        initial_weight_std=std,
        change_norm=change,
        frozen_unit_fraction=dict.fromkeys(names, 0.0),
        dead_fraction_start={k: dead[0] if k == dead_layer else 0.0 for k in layers},
        dead_fraction_end={k: dead[1] if k == dead_layer else 0.0 for k in layers},
        logit_std_start=1.0,
        logit_std_end=2.0,
        saturated_fraction_start=0.0,
        recipe=recipe,
        learning_rate_used=lr,
        trainable=dict.fromkeys(names, True),
        initial_weight_mean=dict.fromkeys(names, 0.0),
        input_rms=0.3,
    )


def just_missed(traj, param: str, check: str) -> float:
    """A bound the row just missed: twice the change reached (within reach), or half the measured value."""
    if check == "moved":
        return 2 * traj.relative_change(param)
    return 0.5 if check in ("grad_norm_max", "alive", "units_moved") else 2.0


@pytest.mark.parametrize("recipe", [r for r, lr in RECIPES.items() if lr is not None and lr < 1], ids=lambda r: r[:7])
def test_dead_relu_fix_quotes_the_runs_own_learning_rate(recipe):
    """Units that died during an SGD/RMSprop 0.01 run: the fix lowers *that* rate (was: the suite's 0.001)."""
    lr = RECIPES[recipe]
    cause = diagnose(trajectory(recipe, lr, dead=(0.0, 0.95)), "hidden/kernel", check="alive", bound=0.5)
    assert cause.title == "dead ReLUs", cause
    (fix,) = cause.fixes
    verb, before, after = LR_FIX.search(fix).groups()
    assert verb == "lower" and float(before) == lr and float(after) < lr, fix
    assert recipe.split()[0] != "TF1" and "0.001 to" not in fix, fix


def test_dead_relu_on_the_logits_names_the_activation_not_a_learning_rate():
    """A ReLU on the output layer: the fix removes it (was: "lower the learning rate from 0.001 to ~0.1")."""
    recipe = next(iter(RECIPES))
    traj = trajectory(recipe, 0.01, dead=(0.1, 0.8), dead_layer="logits")
    cause = diagnose(traj, "logits/kernel", check="alive", bound=0.5)
    assert cause.title == "dead ReLUs" and cause.fixes == (
        "remove the activation of logits (logits must be free to be negative; the loss applies the softmax)",
    ), cause
    assert "learning rate" not in str(cause)


def test_an_unknown_learning_rate_is_never_quoted():
    """A train step hides its optimizer: the fix names no rate (was: a fallback of 1.0 -> "~0.1")."""
    recipe = "train step mod:step (its own optimizer, loss and variable list)"
    for traj, param, check in [
        (trajectory(recipe, None, dead=(0.0, 0.95)), "hidden/kernel", "alive"),
        (trajectory(recipe, None, update_ratio=0.5, blown=True), "hidden/kernel", "grad_norm_max"),
        (trajectory(recipe, None, update_ratio=1e-7), "hidden/kernel", "moved"),
    ]:
        fix = " ".join(diagnose(traj, param, check=check, bound=just_missed(traj, param, check)).fixes)
        assert "learning rate ~10x (the suite cannot read it from train step mod:step" in fix, fix
        assert not LR_FIX.search(fix) and "1 to" not in fix and "0.1" not in fix, fix


def test_updates_too_large_never_explains_a_parameter_that_moved_too_little():
    """Blown-up kernels elsewhere do not make a bias that moved too little "too large"."""
    traj = trajectory(next(iter(RECIPES)), 0.01, update_ratio=0.5, blown=True)
    for check in (*TOO_LITTLE_CHANGE, "grad_norm_min"):
        cause = diagnose(traj, "hidden/bias", check=check, bound=just_missed(traj, "hidden/bias", check))
        assert "too large" not in cause.title and "lower the learning rate" not in str(cause), (check, cause)
    assert diagnose(traj, "hidden/kernel", check="grad_norm_max", bound=0.5).title.startswith("updates too large")


@pytest.mark.parametrize("recipe", list(RECIPES), ids=lambda r: r[:7])
def test_no_fix_contradicts_its_row(recipe):
    """Over every check, parameter and update scale: a "lower" fix proposes less than the run's own rate, a
    "raise" more; "updates too large" explains no too-small change, "updates too small" nothing else."""
    lr = RECIPES[recipe]
    runs = [
        trajectory(recipe, lr, update_ratio=ratio, dead=dead, blown=blown)
        for ratio, dead, blown in itertools.product([1e-7, 1e-3, 0.5], [(0, 0), (0, 0.95)], [False, True])
    ]
    seen = set()
    for traj, param, check in itertools.product(runs, SHAPES, CHECKS):
        cause = diagnose(traj, param, check=check, bound=just_missed(traj, param, check))
        seen.add(cause.title)
        for fix in cause.fixes:
            for verb, before, after in LR_FIX.findall(fix):
                assert lr is not None and float(before) == pytest.approx(lr), (check, fix)
                assert float(after) < lr if verb == "lower" else float(after) > lr, (check, fix)
            if lr is None:
                assert "learning rate from" not in fix, fix
        if cause.title.startswith("updates too large"):
            assert check not in TOO_LITTLE_CHANGE, (param, check, cause)
        if cause.title == "updates too small":
            assert check in TOO_LITTLE_CHANGE, (param, check, cause)
    assert {"updates too large: learning rate too high", "updates too small", "dead ReLUs"} <= seen, seen


def test_weights_that_stopped_moving_after_blowing_up_get_a_learning_rate_fix_not_a_crash():
    """A regression at SGD 0.1 (fixtures/bug_corpus regression_lr_too_high): the kernels blow up within a few
    steps, every ReLU dies and the median update/weight ratio is 0; the fix was a ZeroDivisionError."""
    recipe = next(iter(RECIPES))
    traj = trajectory(recipe, 0.01, update_ratio=0.0, blown=True, dead=(0.4, 1.0))
    cause = diagnose(traj, "hidden/kernel", check="alive", bound=0.9)
    verb, before, after = LR_FIX.search(" ".join(cause.fixes)).groups()
    assert verb == "lower" and float(before) == 0.01 and float(after) == pytest.approx(0.001), cause


def test_a_gradient_below_float32_resolution_is_vanishing_not_an_optimizer_that_skips_the_weight():
    """bug corpus deep_relu_small_uniform_init: max|g| 5.75e-16 at SGD 0.01, the kernel unchanged after 30 steps:
    the update rounds to 0 (was: "weights never updated ... is it in the list passed to apply_gradients?")."""
    recipe = next(iter(RECIPES))
    traj = trajectory(recipe, 0.01)
    column = traj.parameters.index("hidden/kernel")
    traj.per_step["grad_max"][:, column] = 5.75e-16
    traj.change_norm["hidden/kernel"] = 0.0
    cause = diagnose(traj, "hidden/kernel", check="moved", bound=1e-3)
    assert cause.title == "vanishing gradient", cause
    assert "below float32's resolution of its weights" in str(cause) and "initialize hidden with He normal" in str(
        cause
    )
    traj.per_step["grad_max"][:, column] = 0.1  # a gradient the optimizer should have applied: the optimizer's fault
    assert diagnose(traj, "hidden/kernel", check="moved", bound=1e-3).title == "weights never updated"


def test_a_kernel_fed_by_a_dead_layer_blames_that_layer_not_an_op_after_it():
    """hidden 99% dead: logits/kernel's gradient (its inputs times the error) is 0 at most steps. The cause is the
    dead layer before it, not "the op after logits" (a first user's SGD 10 on the basic-classification MLP)."""
    recipe = "SGD lr=10, loss sparse_categorical_crossentropy(from_logits=True)"
    traj = trajectory(recipe, 10.0, dead=(0.0, 0.99))
    traj.per_step["grad_norm"][:, traj.parameters.index("logits/kernel")] = 0.0
    cause = diagnose(traj, "logits/kernel", check="grad_norm_min", bound=1e-3)
    said = str(cause)
    assert cause.title == "gradient zero at most steps", cause
    assert "logits's inputs are hidden's outputs, 99% dead" in said and "the op after logits" not in said, said
    assert "lower the learning rate from 10 to ~1" in " ".join(cause.fixes), cause


def test_a_zero_gradient_under_logits_read_as_probabilities_names_the_loss():
    """from_logits=False on a logits output: Keras clips the outputs and no layer gets a gradient. Every layer's
    cause is the loss (a second user's ResNet: 7 layers said "find the op after conv2d")."""
    import dataclasses

    from training_health.model.losses import SUITE_LOSS

    recipe = "Adam lr=0.001, loss sparse_categorical_crossentropy"
    traj = trajectory(recipe, 1e-3)
    traj.per_step["grad_norm"][:] = 0.0
    traj.loss_kind = dataclasses.replace(SUITE_LOSS, from_logits=False)
    traj.outputs_start = {"probabilities": False, "unit_interval": False, "mean": -0.02, "rms": 0.03}
    cause = diagnose(traj, "hidden/kernel", check="grad_norm_min", bound=1e-3)
    assert cause.title == "gradient zero at most steps" and "reads probabilities (from_logits=False)" in str(cause)
    assert cause.fixes == ("compile the loss with from_logits=True, or end the model with a softmax",), cause
    assert "the op after" not in str(cause), cause


def test_the_clipping_fix_quotes_the_runs_own_optimizer_and_rate():
    """The plateau-exit fix (clip rather than lower the rate) names the run's optimizer and keeps its rate."""
    from training_health.checks.diagnosis import clipped_optimizer

    rms = trajectory("RMSprop lr=0.01, loss sparse_categorical_crossentropy(from_logits=True)", 0.01)
    assert clipped_optimizer(rms) == "RMSprop(learning_rate=0.01, clipnorm=1.0), the rate kept"
    hidden = trajectory("train step mod:step (its own optimizer, loss and variable list)", None)
    assert clipped_optimizer(hidden) == "clipnorm=1.0 on the optimizer"  # no rate the suite cannot read


def test_raising_adadelta_names_the_rate_it_is_run_at():
    """Adadelta at Keras' default 0.001 (1000x below its original 1.0): "raise to ~0.01" passed a sixth user's
    convnet at 28% accuracy; the line says to go on and names 1.0."""
    from training_health.checks.diagnosis import lr_fix
    from training_health.model.recipe import Recipe

    traj = trajectory("Adadelta lr=0.001, loss sparse_categorical_crossentropy", 0.001)
    traj.facts = Recipe(optimizer="Adadelta", learning_rate=0.001)
    fix = lr_fix(traj, "raise")
    assert fix.startswith("raise the learning rate from 0.001 to ~0.01 (Adadelta)"), fix
    assert fix.endswith("still fails (Adadelta is run at 1.0, its original rate and Keras 1's default)"), fix


def test_a_rate_far_from_the_calibrated_one_is_the_cause_against_the_models_own_bounds(tmp_path):
    """Bounds calibrated for this very model at Adam 1e-3 (calibrate records the rate in [probe]); the run at 1e-5
    misses them: the rate changed, not the model. A seventh user was told "bound out of Adam's reach ... or
    calibrate bounds for this model", which would bake the bug into the bounds."""
    from training_health.checks.health_checks import rate_far_from_calibration
    from training_health.checks.thresholds import DEFAULT_PATH, load_thresholds
    from training_health.model.recipe import Recipe

    calibrated_at = 'model = "mod:build"\noptimizer = "Adam"\nlearning_rate = 0.001'
    text = DEFAULT_PATH.read_text().replace('model = "seed"', calibrated_at)
    (tmp_path / "mine.toml").write_text(text)
    thresholds = load_thresholds(tmp_path / "mine.toml")
    traj = trajectory("Adam lr=1e-05, loss sparse_categorical_crossentropy", 1e-5)
    traj.facts = Recipe(optimizer="Adam", learning_rate=1e-5)
    cause = rate_far_from_calibration(traj, thresholds, "hidden/kernel")
    assert cause is not None and cause.title == "learning rate far from the one its bounds were calibrated at"
    assert "Adam lr=1e-05, 100x below the Adam lr=0.001 these bounds were measured at (mine.toml" in cause.detail
    assert cause.fixes == ("restore the learning rate 0.001, or, if the new rate is meant, recalibrate at it",)
    traj.facts = Recipe(optimizer="Adam", learning_rate=0.002)
    traj.learning_rate_used = 0.002
    assert rate_far_from_calibration(traj, thresholds, "hidden/kernel") is None  # within 10x: not the cause
    assert rate_far_from_calibration(traj, load_thresholds(), "hidden/kernel") is None  # the package's: no rate
