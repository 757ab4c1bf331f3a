"""``tinyspeech recipe``: measure changes to the real-data recipe one at a time.

Why: on 2,673 training clips one run's accuracy moves by points with the seed, so a recipe
change is kept only on evidence: each variant of ``recipes.VARIANTS`` (the ``real_plain`` recipe
plus one change) is trained with the same seeds as ``real_plain`` itself, and the report gives every
seed's int8 TFLM accuracy, the mean, the change of the mean against the baseline and on how many
seeds the variant won. A variant helps when its mean is higher *and* it wins on every seed: a
change tuned to the 487 val clips by a fraction of a point would not carry over to other
speakers.

Runs go to ``RUNS/<variant>/<model>_seed<s>``; finished runs with exactly that configuration are
reused (also when copied there from another folder), so the command resumes. A run whose
folder is gone (run folders are not committed) keeps its figures from the existing report when
that report measured exactly the same data, base recipe and change; the report marks it, so a
new variant can be added without retraining every earlier one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyspeech_tf.errors import UserError

REPORT = Path("reports") / "recipe"
BASE = "real_plain"
BASELINE = "baseline"  # the variant that changes nothing


def _config(args: argparse.Namespace, model: str, variant: str, seed: int):
    from tinyspeech_tf import recipes
    from tinyspeech_tf.train import TrainConfig, recipe_fields

    # Options given explicitly (e.g. --epochs for a quick look) apply to every variant.
    fields = {**recipes.get(BASE), **recipes.VARIANTS[variant], **recipe_fields(args)}
    return TrainConfig(model=model, data=args.data, seed=seed,
                       out=(Path(args.runs) / variant / f"{model}_seed{seed}").as_posix(),
                       max_steps_per_epoch=args.max_steps_per_epoch, **fields)


def _base(args: argparse.Namespace) -> dict:
    """The base recipe's fields with the options given explicitly (e.g. --epochs) applied."""
    from tinyspeech_tf import recipes
    from tinyspeech_tf.train import recipe_fields

    return {**recipes.get(BASE), **recipe_fields(args)}


def _reported_runs(args: argparse.Namespace) -> dict:
    """(model, variant, seed) -> run summary, from the report at ``args.report`` when it
    measured the same data and base recipe (else empty); each marked with where it came from."""
    import json

    path = Path(args.report).with_suffix(".json")
    try:
        report = json.loads(path.read_text())
        if report["data"] != args.data or report["base"] != _base(args):
            return {}
        return {(row["model"], row["variant"], run["seed"]):
                {**run, "from_report": path.as_posix(), "changes": row["changes"]}
                for row in report["rows"] for run in row["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _summary(args: argparse.Namespace, model: str, variant: str, seed: int,
             reported: dict) -> dict:
    """Train or reuse the run; a run whose folder holds nothing keeps its reported figures."""
    from tinyspeech_tf import recipes
    from tinyspeech_tf.train import finished_metrics, run_summary

    config = _config(args, model, variant, seed)
    earlier = reported.get((model, variant, seed))
    if (earlier is not None and earlier.pop("changes") == recipes.VARIANTS[variant]
            and not Path(config.out).exists() and finished_metrics(config) is None):
        return earlier
    return run_summary(config)


def study(args: argparse.Namespace) -> dict:
    """Train (or reuse) model x variant x seed; return the report."""
    from tinyspeech_tf import recipes

    seeds = list(range(args.seed, args.seed + args.seeds))
    variants = [BASELINE, *[v for v in args.variants if v != BASELINE]]
    reported = _reported_runs(args)
    rows = []
    for model in args.models:
        base_accs = None
        for variant in variants:
            runs = [_summary(args, model, variant, seed, reported) for seed in seeds]
            accs = [r["int8_tflm"] for r in runs]
            row = {"model": model, "variant": variant, "changes": recipes.VARIANTS[variant],
                   "runs": runs, "mean": sum(accs) / len(accs),
                   "float_mean": sum(r["float"] for r in runs) / len(runs),
                   "train_seconds_mean": sum(r["train_seconds"] for r in runs) / len(runs)}
            if variant == BASELINE:
                base_accs = accs
            else:
                row["delta"] = row["mean"] - sum(base_accs) / len(base_accs)
                row["seeds_won"] = sum(a > b for a, b in zip(accs, base_accs, strict=True))
                row["helps"] = row["delta"] > 0 and row["seeds_won"] == len(seeds)
            rows.append(row)
    from tinyspeech_tf.io import command_line

    return {"command": command_line(args), "data": args.data, "base": _base(args),
            "seeds": seeds, "rows": rows}


def _changes(changes: dict) -> str:
    if not changes:
        return "(the recipe itself)"
    shown = {k: (Path(v).name if k == "teacher" else v) for k, v in changes.items()
             if k != "teacher_labels"}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def to_markdown(report: dict) -> str:
    from tinyspeech_tf import recipes

    seeds = report["seeds"]
    lines = ["# Real-data recipe: one change at a time", "",
             "Generated by `" + report["command"] + "`; data `" + report["data"]
             + "`; base recipe `"
             + BASE + "` (" + recipes.describe(report["base"]) + "); seeds "
             + ", ".join(map(str, seeds)) + ". Accuracy is int8 in TFLM on the validation "
             "split; a change *helps* when its mean rises and it wins on every seed. "
             "Figures marked * are kept from the earlier report of the same data, base recipe "
             "and change (their run folders were not present).", "",
             "| model | variant | change | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean | Δ mean | seeds won | helps | train s (mean) |",
             "|---|---|---|" + "---:|" * (len(seeds) + 5)]
    for row in report["rows"]:
        delta = f"{100 * row['delta']:+.2f} pts" if "delta" in row else "-"
        won = f"{row['seeds_won']}/{len(seeds)}" if "seeds_won" in row else "-"
        helps = ("yes" if row["helps"] else "no") if "helps" in row else "-"
        lines.append(f"| {row['model']} | {row['variant']} | {_changes(row['changes'])} | "
                     + " | ".join(f"{r['int8_tflm']:.2%}" + ("*" if "from_report" in r else "")
                                  for r in row["runs"])
                     + f" | **{row['mean']:.2%}** | {delta} | {won} | {helps} "
                     f"| {row['train_seconds_mean']:.0f} |")
    return "\n".join(lines + [""])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyspeech_tf import recipes

    parser.add_argument("--data", required=True, help="dataset with train and val splits")
    parser.add_argument("--models", default="tinyspeech_m",
                        help="comma-separated zoo models (default tinyspeech_m)")
    parser.add_argument("--variants", default=",".join(recipes.VARIANTS),
                        help="comma-separated variants of recipes.VARIANTS (default: all)")
    parser.add_argument("--seeds", type=int, default=3, metavar="K", help="seeds per variant")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--runs", default="runs/recipe", help="where the runs go")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the recipe's float epochs (quick looks, tests)")
    parser.add_argument("--qat-epochs", type=int, default=None,
                        help="override the recipe's QAT epochs")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--report", default=str(REPORT),
                        help="report path without suffix (.json and .md are written)")


def run(args: argparse.Namespace) -> int:
    from tinyspeech_tf import recipes, zoo
    from tinyspeech_tf.io import write_report

    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [m for m in args.models if m not in zoo.names()]
    if bad or not args.models:
        raise UserError(f"--models {','.join(bad) or '(none)'}: choose from "
                        f"{', '.join(zoo.names())}")
    bad = [v for v in args.variants if v not in recipes.VARIANTS]
    if bad:
        raise UserError(f"--variants {','.join(bad)}: choose from {', '.join(recipes.VARIANTS)}")
    if args.seeds < 1:
        raise UserError("--seeds must be at least 1")
    from tinyspeech_tf.train import check_config

    for variant in args.variants:  # bad option values fail before any training
        check_config(_config(args, args.models[0], variant, args.seed))
    report = study(args)
    write_report(args.report, report, to_markdown(report))
    print(to_markdown(report))
    return 0
