"""Side by side: the same training recorded under two (or more) TensorFlow versions.

    python -m training_health.report.upgrade upgrade/tf2.15 upgrade/tf2.21 [--figure]
    python3 -m tox -e upgrade-tf215,upgrade-tf221,upgrade -- --health-model mymodels:build   (records, then this)

Each DIR holds the probe JSON of a run (``--health-probe-output DIR``; one file per configuration, in
subfolders too: several runs of a version give the train-step time's spread) and, if present, the
pytest verdicts (``--junitxml DIR/junit.xml``). Configurations are paired by id; the first DIR is the
reference; their parameters are paired as the weights file pairs them (``model/variables.pair_names``:
a nested model's sequential/conv2d/kernel under Keras 3 is conv2d/kernel under Keras 2), and a
configuration whose parameters cannot be paired is one "not comparable" line and exit status 1. Per
configuration the report says whether the runs started from the same weights
(``--health-initial-weights``), lists each layer's quantity that differs beyond the cross-machine
tolerances of ``checks/baselines.py`` (the suite's own measured machine noise) with the first step
where the per-step values part, the tests whose verdict changed, and each version's train-step time.
"""

from __future__ import annotations

if __name__ == "__main__":  # the report's own run: before TensorFlow is imported (by checks.baselines), as the
    from training_health import tf_logs  # plugin and the main job keep its C++ log lines out of stderr

    tf_logs.keep_out()

import argparse
import math
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

# Tolerances: the measured cross-machine spread of the dynamics baselines (checks/baselines.py).
# Imported from there (not copied) so that a re-measurement moves both.
from training_health.checks.baselines import (
    GRAD_NORM_WINDOW_RTOL,
    LOSS_WINDOW_RTOL,
    RELATIVE_CHANGE_RTOL,
    STEP0_RTOL,
    UPDATE_RATIO_STEP0_RTOL,
    UPDATE_RATIO_WINDOW_RTOL,
    compare,
    summarize,
    windows,
)
from training_health.report.table import read_json

SAME_START_RTOL = 1e-6  # initial weight norms of transferred weights agree to float32 rounding


class RecordedRun:
    """A probe JSON with the few methods ``baselines.summarize`` reads from a Trajectory."""

    def __init__(self, data: dict, path: Path):
        self.data, self.path = data, path
        self.parameters = list(data["parameters"])
        self.loss = np.asarray(data["loss"], np.float64)
        self.per_step = {k: np.asarray(v, np.float64) for k, v in data["per_step"].items()}
        self.steps = len(self.loss)
        self.config = type("Config", (), {"steps": self.steps, "id": data["config"]["id"]})()

    def column(self, metric: str, parameter: str) -> np.ndarray:
        return self.per_step[metric][:, self.parameters.index(parameter)]

    def relative_change(self, parameter: str) -> float:
        return float(self.data["relative_change"][parameter])

    def series(self, parameter: str, metric: str) -> np.ndarray:
        """The per-step values behind a baseline quantity."""
        if parameter == "loss":
            return self.loss
        if metric.startswith("update_ratio"):
            weight = self.column("weight_norm", parameter)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(weight > 0, self.column("update_norm", parameter) / weight, np.nan)
        if metric.startswith("relative_change"):
            return np.asarray(self.data["relative_change_per_step"][parameter], np.float64)
        return self.column("grad_norm", parameter)

    def renamed(self, names: dict) -> RecordedRun:
        """This run with its parameters called by ``names`` (its name -> the reference's name)."""
        data = {
            key: {names.get(k, k): v for k, v in value.items()}
            if isinstance(value, dict) and key != "config"
            else value
            for key, value in self.data.items()
        }
        data["parameters"] = [names.get(p, p) for p in self.parameters]
        return RecordedRun(data, self.path)

    @property
    def step_seconds(self) -> float:
        return float(self.data.get("timings", {}).get("train", math.nan)) / max(self.steps, 1)

    @property
    def version(self) -> str:
        return str(self.data.get("tf_version", "?"))


def load_runs(directory: Path) -> dict[str, list[RecordedRun]]:
    """Configuration id -> its recorded runs under ``directory`` (every *.json that is a probe file)."""
    runs: dict[str, list[RecordedRun]] = {}
    for path in sorted(Path(directory).rglob("*.json")):
        data = read_json(path)
        if isinstance(data, dict) and "per_step" in data and "config" in data:
            run = RecordedRun(data, path)
            runs.setdefault(run.config.id, []).append(run)
    return runs


def load_verdicts(directory: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (outcome, first line of its message) from every junit XML under ``directory``."""
    verdicts = {}
    for path in sorted(Path(directory).rglob("*.xml")):
        for case in ET.parse(path).getroot().iter("testcase"):
            outcome, message = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                    message = (child.get("message") or "").strip().splitlines()[0:1]
                    message = message[0][:160] if message else ""
            # The module's last name: junit's classname holds the install path (.tox.<env>.lib...site-packages).
            verdicts[f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name', '')}"] = (outcome, message)
    return verdicts


def step_tolerance(metric: str, parameter: str, step: int, steps: int) -> float:
    """A single step's tolerance: step 0's, else that of the window holding the step (checks/baselines.py)."""
    if metric.startswith("relative_change"):
        return RELATIVE_CHANGE_RTOL
    if step == 0:
        return UPDATE_RATIO_STEP0_RTOL if metric.startswith("update_ratio") else STEP0_RTOL
    table = LOSS_WINDOW_RTOL if parameter == "loss" else GRAD_NORM_WINDOW_RTOL
    table = UPDATE_RATIO_WINDOW_RTOL if metric.startswith("update_ratio") else table
    for i, (a, b) in enumerate(windows(steps)):
        if a <= step < b:
            return table[i]
    return table[-1]


def first_step_apart(a: RecordedRun, b: RecordedRun, parameter: str, metric: str) -> int | None:
    """The first step whose values differ beyond that step's tolerance (None: no single step does)."""
    x, y = a.series(parameter, metric), b.series(parameter, metric)
    for step in range(min(len(x), len(y))):
        p, q = x[step], y[step]
        if np.isnan(p) and np.isnan(q):
            continue
        if not (
            abs(p - q) <= 1e-9 or abs(p - q) / max(abs(q), 1e-30) <= step_tolerance(metric, parameter, step, a.steps)
        ):
            return step
    return None


def same_start(a: RecordedRun, b: RecordedRun) -> list[str]:
    """Parameters whose initial weight norm differs: the runs did not start from the same weights."""
    na, nb = a.data["initial_weight_norm"], b.data["initial_weight_norm"]
    return [n for n in na if n not in nb or abs(na[n] - nb[n]) > SAME_START_RTOL * max(abs(nb[n]), 1e-30) + 1e-12] + [
        n for n in nb if n not in na
    ]


def timing(runs: list[RecordedRun]) -> str:
    times = [r.step_seconds * 1e3 for r in runs if math.isfinite(r.step_seconds)]
    if not times:
        return "no timing recorded"
    if len(times) == 1:
        return f"{times[0]:.2f} ms/step (1 run: no spread)"
    return f"{statistics.median(times):.2f} ms/step (median of {len(times)} runs, {min(times):.2f}-{max(times):.2f})"


NOT_PAIRED = "not comparable: the runs' parameters cannot be paired"


def _pairing(a: RecordedRun, b: RecordedRun):
    """The two runs' parameters paired by the rule the weights file uses (model/variables.pair_names)."""
    from training_health.model.variables import pair_names

    shapes = lambda run: {p: run.data.get("shapes", {}).get(p) for p in run.parameters}  # noqa: E731
    return pair_names(shapes(a), shapes(b))


def paired(a: RecordedRun, b: RecordedRun) -> tuple[RecordedRun | None, str]:
    """``b`` with its parameters called by ``a``'s names (model/variables.pair_names), and a note on any
    renaming; (None, what cannot be paired) if they do not pair one-to-one with the same shapes."""
    pairing = _pairing(a, b)
    if not pairing.complete:
        ta, tb = f"TF {a.version}", f"TF {b.version}"
        what = [f"{n}: shape {x} in {ta}, {y}{f' as {m}' * (m != n)} in {tb}" for n, m, x, y in pairing.shapes]
        what += [f"{n}: could be {' or '.join(c)}" for n, c in pairing.ambiguous.items()]
        what += [f"only in {ta}: {', '.join(pairing.only_ours)}"] if pairing.only_ours else []
        what += [f"only in {tb}: {', '.join(pairing.only_theirs)}"] if pairing.only_theirs else []
        return None, "; ".join(what)
    renamed = {theirs: ours for ours, theirs in pairing.pairs.items() if theirs != ours}
    if not renamed:
        return b, ""
    shown = ", ".join(f"{ours} = {theirs}" for theirs, ours in list(renamed.items())[:2])
    more = ", ..." if len(renamed) > 2 else ""
    note = f"{len(renamed)} parameters paired up to the enclosing models' names ({shown}{more})"
    return b.renamed(renamed), note


def renamed_layers(a: RecordedRun, b: RecordedRun) -> dict[str, str]:
    """{layer as ``b`` names it: as ``a`` does} for the layers whose parameters ``paired`` renames."""
    from training_health.model.user_model import layer_of

    pairing = _pairing(a, b)
    if not pairing.complete:
        return {}
    return {layer_of(theirs): layer_of(ours) for ours, theirs in pairing.pairs.items() if ours != theirs}


def _respelt(test_id: str, layers: dict[str, str]) -> str:
    """A per-layer test id (``...[<cell>-<layer>]``) with its layer named as in the reference."""
    for theirs, ours in layers.items():
        if test_id.endswith(f"-{theirs}]"):
            return test_id[: -len(theirs) - 1] + ours + "]"
    return test_id


def compare_configuration(config_id: str, ref: list[RecordedRun], other: list[RecordedRun]) -> list[str]:
    a, b = ref[0], other[0]
    out = [f"configuration {config_id}: {a.steps} steps"]
    if a.steps != b.steps:
        return [*out, f"  not comparable: {b.steps} steps in {b.path}"]
    b, note = paired(a, b)
    if b is None:
        return [
            *out,
            f"  {NOT_PAIRED} ({note}): were both recorded from the same model, by the same version of "
            "pytest-training-health? Record them again",
        ]
    if note:
        out.append(f"  names: {note}")
    moved = same_start(a, b)
    out.append(
        "  start: same initial weights (initial weight norms equal)"
        if not moved
        else f"  start: DIFFERENT initial weights ({', '.join(moved[:4])}{' ...' if len(moved) > 4 else ''}): "
        "the differences below include where the runs started; record with --health-initial-weights"
    )
    rows = compare(summarize(b), summarize(a))  # b obtained, a expected: relative to the reference
    if a.data.get("recipe") != b.data.get("recipe"):  # what the run says it trained with: optimizer, lr, loss
        out.append(f"  recipe changed: {a.data.get('recipe')!r} -> {b.data.get('recipe')!r}")
    random = sorted({n for r in (a, b) for n in r.data.get("state_variables", {}) if "seed_generator" in n})
    if rows and random and a.data.get("tf_version") != b.data.get("tf_version"):
        # Measured: the README's convnet differs from step 0 under TF 2.15 -> 2.21 from the same weights; the
        # same model without its Dropout shows no difference beyond machine noise (docs/upgrade.md).
        out.append(
            f"  note: the model draws random numbers while training ({', '.join(random)}: Dropout or another random "
            "layer); Keras 2 and Keras 3 draw different masks from the same seed, so the runs differ from step 0 "
            "even from the same weights"
        )
    if not rows:
        out.append("  dynamics: no difference beyond machine noise (the suite's cross-machine tolerances)")
    else:
        out.append(f"  dynamics: {len(rows)} quantities differ beyond machine noise")
        out.append(
            f"    {'layer':28s} {'quantity':24s} {a.version:>12s} {b.version:>12s} {'difference':>10s} "
            f"{'tolerance':>9s}  first step apart"
        )
        for layer, metric, got, want, diff, tol in rows:
            first = first_step_apart(a, b, layer, metric) if layer != "(file)" else None
            cell = lambda v: f"{v:12.6g}" if isinstance(v, float) else f"{v!s:>12s}"  # noqa: E731
            out.append(
                f"    {layer:28s} {metric:24s} {cell(want)} {cell(got)} {diff:10.1%} {tol:9.1%}  "
                f"{'-' if first is None else first}"
            )
    out.append(f"  train step: {a.version}: {timing(ref)};  {b.version}: {timing(other)}")
    ta, tb = ref[0].step_seconds, other[0].step_seconds
    if ta > 0 and math.isfinite(ta) and math.isfinite(tb):
        out.append(f"    {b.version} / {a.version}: {tb / ta:.2f}x")
    return out


def verdict_changes(ref: dict, other: dict, names: tuple[str, str]) -> list[str]:
    if not ref and not other:
        return ["verdicts: no junit XML recorded (run pytest with --junitxml DIR/junit.xml)"]
    changed = [
        t for t in sorted(set(ref) | set(other)) if ref.get(t, ("absent", ""))[0] != other.get(t, ("absent", ""))[0]
    ]
    if not changed:
        return [f"verdicts: unchanged ({len(ref)} tests)"]
    lines = [f"verdicts: {len(changed)} changed"]
    for test in changed:
        (va, ma), (vb, mb) = ref.get(test, ("absent", "")), other.get(test, ("absent", ""))
        lines.append(f"  {test}: {names[0]} {va} -> {names[1]} {vb}" + (f": {mb or ma}" if mb or ma else ""))
    return lines


def report(directories: list[Path]) -> str:
    return report_status(directories)[0]


def report_status(directories: list[Path]) -> tuple[str, bool]:
    """The report, and whether every configuration's parameters could be paired."""
    reference, lines = directories[0], []
    ref_runs = load_runs(reference)
    if not ref_runs:
        raise SystemExit(f"{reference}: no probe JSON (record with --health-probe-output {reference})")
    for directory in directories[1:]:
        runs = load_runs(directory)
        lines.append(f"== {reference} -> {directory}")
        layers: dict[str, str] = {}  # a layer's name in ``directory`` -> in the reference (test ids name layers)
        for config_id in sorted(set(ref_runs) | set(runs)):
            if config_id not in runs or config_id not in ref_runs:
                where = reference if config_id in ref_runs else directory
                lines.append(f"configuration {config_id}: only in {where} (run both with the same --health-* options)")
                continue
            lines.extend(compare_configuration(config_id, ref_runs[config_id], runs[config_id]))
            layers.update(renamed_layers(ref_runs[config_id][0], runs[config_id][0]))
        other = {_respelt(test, layers): verdict for test, verdict in load_verdicts(directory).items()}
        lines.extend(verdict_changes(load_verdicts(reference), other, (reference.name, directory.name)))
    return "\n".join(lines), not any(NOT_PAIRED in line for line in lines)


def figure(directories: list[Path], out: Path) -> list[Path]:
    """Per configuration one PNG: each parameter's gradient norm and update/weight ratio, one line style per DIR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded = [(d.name, load_runs(d)) for d in directories]
    written = []
    for config_id in sorted(loaded[0][1]):
        params = loaded[0][1][config_id][0].parameters
        fig, axes = plt.subplots(len(params) + 1, 2, figsize=(10, 2.2 * (len(params) + 1)), squeeze=False)
        for (label, runs), style in zip(loaded, ("-", "--", ":", "-.")):
            if config_id not in runs:
                continue
            run = paired(loaded[0][1][config_id][0], runs[config_id][0])[0]  # named as the reference's
            if run is None:
                continue
            axes[0][0].plot(run.loss, style, label=f"{label} (TF {run.version})")
            axes[0][0].set_title("loss")
            for row, name in enumerate(params, start=1):
                if name not in run.parameters:
                    continue
                for col, metric in enumerate(("grad_norm", "update_ratio")):
                    axes[row][col].plot(run.series(name, metric), style, label=label)
                    axes[row][col].set_title(f"{name} {metric}", fontsize=8)
                    axes[row][col].set_yscale("log")
        axes[0][0].legend(fontsize=7)
        axes[0][1].axis("off")
        fig.tight_layout()
        path = out / f"upgrade-{config_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="recorded runs: the reference first")
    parser.add_argument("--figure", action="store_true", help="also write one PNG per configuration (matplotlib)")
    parser.add_argument("--out", type=Path, help="write the report here too (default: DIR_1/../upgrade-report.txt)")
    args = parser.parse_args(argv)
    if len(args.dirs) < 2:
        parser.error("give two or more folders of recorded runs")
    missing = [d for d in args.dirs if not d.is_dir()]
    if missing:
        parser.error(f"no such folder: {', '.join(map(str, missing))}")
    text, paired_all = report_status(args.dirs)
    print(text)
    out = args.out or args.dirs[0].parent / "upgrade-report.txt"
    out.write_text(text + "\n")
    if args.figure:
        for path in figure(args.dirs, out.parent):
            print(f"figure: {path}")
    return 0 if paired_all else 1


if __name__ == "__main__":
    sys.exit(main())
