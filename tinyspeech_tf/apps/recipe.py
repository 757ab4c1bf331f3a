"""``tinyspeech recipe``: measure changes to the real-data recipe one at a time over several
seeds."""

from __future__ import annotations

import argparse

from tinyspeech_tf.apps.common import recipe_fields
from tinyspeech_tf.io import command_line, write_report
from tinyspeech_tf.studies.recipe import REPORT, Study, run_study, to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyspeech_tf.train import recipes

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
    study = Study(data=args.data, runs=args.runs, report=args.report,
                  overrides=recipe_fields(args), max_steps_per_epoch=args.max_steps_per_epoch)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    seeds = list(range(args.seed, args.seed + max(args.seeds, 0)))
    report = run_study(study, models, variants, seeds, command_line(args))
    write_report(args.report, report, to_markdown(report))
    print(to_markdown(report))
    return 0
