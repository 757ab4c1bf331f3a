"""``tinyspeech ablate-fmode``: train both selective-attention modes and report which wins."""

from __future__ import annotations

import argparse

from tinyspeech_tf.apps.common import add_recipe_arguments, recipe_fields
from tinyspeech_tf.io import write_report
from tinyspeech_tf.studies.ablation import REPORT, run_ablation, to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset with train and val splits")
    parser.add_argument("--model", default="tinyspeech_m")
    add_recipe_arguments(parser)
    parser.set_defaults(recipe="real")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/ablation", help="where the two runs go")
    parser.add_argument("--report", default=str(REPORT),
                        help="report path without suffix (.json and .md are written)")


def run(args: argparse.Namespace) -> int:
    report = run_ablation(args.model, args.data, args.runs, args.seed, recipe_fields(args))
    write_report(args.report, report, to_markdown(report))
    print(to_markdown(report))
    return 0
