"""``tinyspeech bench``: zoo vs peer int8 models, accuracy, size, arena and interleaved TFLM
latency (the library is :mod:`tinyspeech_tf.bench`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyspeech_tf.bench import run_bench, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=None, metavar="A,B,...",
                        help="zoo models to bench (comma-separated; default: the whole zoo); "
                             "the others are listed as not run")
    parser.add_argument("--runs", action="append", default=[], metavar="DIR",
                        help="a run directory, or a folder holding <model>/ run directories, "
                             "searched first (repeatable)")
    parser.add_argument("--runs-root", default="runs",
                        help="where runs live: <root>/real/<model> is searched and trained "
                             "into, <root>/ablation/tinyspeech_m_residual reused (default runs)")
    parser.add_argument("--variants", default="runs/variants", metavar="DIR",
                        help="folder of variant runs (`tinyspeech train --out DIR/<name>` with "
                             "zoo options such as share, low_rank or --prune) and their "
                             "`tinyspeech compress` outputs: one row each (default "
                             "runs/variants; no folder, no rows)")
    parser.add_argument("--train", action="store_true",
                        help="train the zoo models that have no finished run (with --recipe, "
                             "on --data); without it they are listed as not run")
    from tinyspeech_tf.train import recipes

    parser.add_argument("--recipe", default="real", choices=recipes.names(),
                        help="training recipe when a model has to be trained (default real; "
                             "see tinyspeech_tf/train/recipes.py)")
    parser.add_argument("--data", default=None,
                        help="dataset scored (its validation split) and trained on (default "
                             "../shared/data/speech_commands_v0.02_real)")
    parser.add_argument("--peers", default=None, metavar="DIR",
                        help="folder of the peer .tflite models (default ../shared/models)")
    parser.add_argument("--rounds", type=int, default=500,
                        help="latency rounds: each model is invoked once per round (default 500)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first (default 10)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random int8 input and the order within rounds")
    parser.add_argument("--out", default="bench", help="output folder (default bench)")
    parser.add_argument("--readme", default="README.md",
                        help="README whose bench block is replaced (default README.md)")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument("--no-frontend", action="store_true",
                        help="skip the front-end speed measurement")
    parser.add_argument("--no-probe", action="store_true",
                        help="do not convert untrained architectures to size the models "
                             "without a run (their rows and paper points then have no size)")


def run(args: argparse.Namespace) -> int:
    readme = None if args.no_readme else Path(args.readme)
    results = run_bench(data=args.data, peers=args.peers, out=args.out, readme=readme,
                        models=args.models, runs=args.runs, runs_root=args.runs_root,
                        variants=args.variants, train=args.train, recipe=args.recipe,
                        rounds=args.rounds, warmup=args.warmup, seed=args.seed,
                        frontend=not args.no_frontend, probe=not args.no_probe)
    out = Path(args.out)
    print(table(results))
    missing = [e["name"] for e in results["models"] if e["status"] != "measured"]
    print(f"[bench] wrote {out / 'results.json'}, {out / 'results.md'}, "
          f"{out / 'accuracy_vs_size.png'}" + ("" if readme is None else f", {readme}"),
          flush=True)
    if missing:
        print(f"[bench] not measured: {', '.join(missing)}", flush=True)
    return 0
