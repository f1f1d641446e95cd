"""Measure what the run-level checks read, over seeds and models: the numbers behind their thresholds.

    python -m training_health.checks.calibrate_run_checks --seeds 0,1,2 --steps 30 \\
        --models seed:he_normal,seed:glorot_uniform,fixtures.user_models.compiled_keras:sgd_momentum:default

prints one line per model and seed: the loss-curve statistics (``loss_curve.loss_statistics``: z, drop,
distance of the last window from ln C, largest rise), the steps a fresh model needed to fit 16 examples
(``batch_checks.fit_one_batch``, up to ``--max-fit-steps``) and the largest cross-example gradient ratio
(``batch_checks.cross_talk``). A model is ``MODULE:FUNCTION:INIT`` or ``seed:INIT``.
"""

from __future__ import annotations

import argparse
import math

from training_health.checks import batch_checks
from training_health.checks.loss_curve import loss_statistics
from training_health.checks.run_checks import NotApplicable, RunContext
from training_health.data.user_data import load_training_data
from training_health.probe.training_probe import ProbeConfig, run_probe


def measure(config: ProbeConfig, data, max_fit_steps: int) -> str:
    traj = run_probe(config, data)
    run = RunContext(traj, data, None, lambda: None, config.build_model)
    s = loss_statistics(traj.loss)
    gap = abs(math.log(data.num_classes) - s["last"]) / math.log(data.num_classes)
    fit = batch_checks.fit_one_batch(run, max_fit_steps, run_evidence=False)  # the steps a fit takes
    try:
        talk = f"{batch_checks.cross_talk(run)[0]:.3g}"
    except NotApplicable as reason:
        talk = f"n/a ({reason})"
    return (
        f"z {s['z']:.3g}  drop {s['drop']:.3g}  |last-lnC|/lnC {gap:.3g}  rise {s['rise']:.3g}  "
        f"fit {fit['correct']}/16 after {fit['steps']} steps  cross-talk {talk}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seed:he_normal,seed:glorot_uniform,seed:truncated_normal")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-fit-steps", type=int, default=2 * batch_checks.MAX_STEPS)
    args = parser.parse_args(argv)
    data = load_training_data(None)
    for spec in args.models.split(","):
        model, init = spec.rsplit(":", 1)
        for seed in map(int, args.seeds.split(",")):
            config = ProbeConfig(model=model, initializer=init, seed=seed, steps=args.steps)
            print(f"{model}:{init} seed {seed}: {measure(config, data, args.max_fit_steps)}", flush=True)


if __name__ == "__main__":
    main()
