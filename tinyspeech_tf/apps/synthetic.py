"""``tinyspeech synthetic``: synthetic-only, real-only and synthetic+real training, each scored
on real speech (the library is :mod:`tinyspeech_tf.studies.synthetic`)."""

from __future__ import annotations

import argparse

from tinyspeech_tf.io import command_line, write_report
from tinyspeech_tf.studies.synthetic import REPORT, ROWS, run_study, to_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real", default="../shared/data/speech_commands_v0.02_real",
                        help="the real set: trained on by the real rows, its validation split "
                             "scores every row (default ../shared/data/speech_commands_v0.02_real)")
    parser.add_argument("--rows", default=",".join(ROWS), metavar="A,B",
                        help=f"rows to train and score (default {','.join(ROWS)})")
    parser.add_argument("--seeds", type=int, default=3, metavar="K", help="seeds per row")
    parser.add_argument("--runs", default="runs/synthetic", help="where the runs go")
    parser.add_argument("--report", default=str(REPORT),
                        help="report path without suffix (.json and .md are written)")


def run(args: argparse.Namespace) -> int:
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    report = run_study(rows, args.real, list(range(max(args.seeds, 0))), args.runs,
                       command_line(args))
    write_report(args.report, report, to_markdown(report))
    print(to_markdown(report))
    return 0
