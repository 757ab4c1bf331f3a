"""``tinyspeech explore``: search TinySpeech architectures under board limits (optuna).

Only the options; the search is :mod:`tinyspeech_tf.explore` (see its docstring for the
decisions: limits checked before training, shared studies, seeds, warm starts).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `tinyspeech explore` (limits, budget, study, outputs)."""
    limits = parser.add_argument_group("deployment constraints (checked before training)")
    limits.add_argument("--max-params", type=int, default=None, metavar="N")
    limits.add_argument("--max-macs", type=int, default=None, metavar="N")
    limits.add_argument("--max-bytes", type=int, default=None, metavar="B",
                        help="int8 .tflite flatbuffer size")
    limits.add_argument("--max-arena", type=int, default=None, metavar="B",
                        help="minimum TFLM arena, measured in the TFLM interpreter (64-bit "
                             "host: an upper bound for a Cortex-M)")
    limits.add_argument("--tflm-ops", action="store_true",
                        help="only the TinySpeech-M op set (quantize.TINYSPEECH_OPS, ADD "
                             "included); otherwise any TFLM builtin op")
    limits.add_argument("--no-batchnorm", action="store_true",
                        help="never sample batch norm (TinySpeech-M style)")
    parser.add_argument("--trials", type=int, default=20,
                        help="trained architectures the study should hold, over all workers "
                             "(pruned trials do not count)")
    parser.add_argument("--epochs", type=int, default=20, help="float epochs per trial")
    parser.add_argument("--qat-epochs", type=int, default=5, help="QAT epochs per trial")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic', 'tfds' or a dataset folder (train/val)")
    parser.add_argument("--study", default="tinyspeech", help="study name in the storage")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="optuna storage URL shared by all workers "
                             "(default sqlite:///OUT/study.db)")
    parser.add_argument("--out", default="runs/explore", metavar="DIR",
                        help="trials/, specs/, pareto.json, pareto.png (and the default "
                             "study.db) go here")
    parser.add_argument("--reference", default=None, metavar="RUN_DIR",
                        help="a trained run (e.g. hand-built TinySpeech-M) to mark in the plot")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampler seed (mixed with each trial number) and training seed")
    parser.add_argument("--seeds", type=int, default=1, metavar="K",
                        help="train each architecture with K seeds (--seed, --seed+1, ...) and "
                             "maximize their mean accuracy: a single short run's accuracy "
                             "moves by points with the seed alone")
    parser.add_argument("--start-from", action="append", default=[], metavar="NAME|SPEC",
                        help="queue a known architecture as a trial before sampling, e.g. "
                             "tinyspeech_m or a spec file (repeatable; once per study)")
    parser.add_argument("--warm-start", default=None, metavar="STUDY",
                        help="start a new --study with the trials of STUDY (same storage and "
                             "settings) as points of the current search space, e.g. after the "
                             "space grew")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--max-infeasible", type=int, default=100, metavar="K",
                        help="stop after K infeasible samples in a row")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and TFLM's own output")


def run(args: argparse.Namespace) -> int:
    """Check the options, run this worker's share of the study and print the Pareto front."""
    from tinyspeech_tf.errors import UserError
    from tinyspeech_tf.explore import Budget, Constraints, explore, start_params

    if (args.trials < 0 or args.epochs < 1 or args.qat_epochs < 0 or args.batch_size < 1
            or args.seeds < 1):
        raise UserError("--trials must be at least 0, --epochs, --batch-size and --seeds at "
                        "least 1, --qat-epochs at least 0")
    if args.max_infeasible < 1:
        raise UserError("--max-infeasible must be at least 1")
    for flag in ("max_params", "max_macs", "max_bytes", "max_arena"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be positive")
    constraints = Constraints(max_params=args.max_params, max_macs=args.max_macs,
                              max_bytes=args.max_bytes, max_arena=args.max_arena,
                              tflm_ops=args.tflm_ops, batch_norm=not args.no_batchnorm)
    for start in args.start_from:  # a bad --start-from fails before any data or study
        start_params(start, constraints)
    budget = Budget(epochs=args.epochs, qat_epochs=args.qat_epochs, batch_size=args.batch_size,
                    max_steps_per_epoch=args.max_steps_per_epoch, seed=args.seed,
                    seeds=args.seeds)
    report = explore(args.out, args.data, args.trials, constraints, budget,
                     study_name=args.study, storage=args.storage, reference=args.reference,
                     warm_start_from=args.warm_start, start_from=args.start_from,
                     max_infeasible=args.max_infeasible, verbose=args.verbose)
    print(f"{args.out}: {report['trials']['trained']} trained, {report['trials']['pruned']} "
          f"pruned; Pareto front (accuracy, bytes, arena):")
    for r in report["front"]:
        print(f"  trial {r['trial']:>3}: int8 {r['accuracy']:.1%}, {r['tflite_bytes']:,} B, "
              f"arena {r['arena_bytes']:,} B, {r['params']:,} params, {r['macs']:,} MACs "
              f"-> {r['spec']}")
    sys.stdout.flush()
    return 0
