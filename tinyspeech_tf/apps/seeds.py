"""``tinyspeech seeds``: train architectures by one recipe over several seeds; compare their
means."""

from __future__ import annotations

import argparse

from tinyspeech_tf.apps.common import add_recipe_arguments, recipe_fields
from tinyspeech_tf.io import command_line, write_report
from tinyspeech_tf.studies.seeds import REPORT, compare, to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("architectures", nargs="+", metavar="NAME|SPEC",
                        help="zoo models or architecture spec files to compare")
    parser.add_argument("--data", required=True, help="dataset with train and val splits")
    parser.add_argument("--seeds", type=int, default=3, metavar="K", help="seeds per model")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    add_recipe_arguments(parser)
    parser.set_defaults(recipe="real")
    parser.add_argument("--runs", default="runs/seeds", help="where the runs go")
    parser.add_argument("--rounds", type=int, default=300,
                        help="timed invokes per model for the host TFLM latency (default 300)")
    parser.add_argument("--report", default=str(REPORT),
                        help="report path without suffix (.json and .md are written)")


def run(args: argparse.Namespace) -> int:
    report = compare(args.architectures, args.data,
                     list(range(args.seed, args.seed + max(args.seeds, 0))), args.runs,
                     recipe_fields(args), command_line(args), rounds=args.rounds)
    write_report(args.report, report, to_markdown(report))
    print(to_markdown(report))
    return 0
