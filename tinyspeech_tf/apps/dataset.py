"""``tinyspeech dataset``: make the offline synthetic keyword set, inspect any data source.

``synth`` exists because Speech Commands cannot be downloaded everywhere; ``info`` exists so a
user can check what a folder (or tfds) will look like to training before spending an hour on
it: which loader picked it up, how big each split is, and how balanced the labels are.
TensorFlow is never imported for these commands (except to read a tfds source).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``synth`` and ``info`` sub-commands."""
    from tinyspeech_tf.data.synth import DEFAULT_JOBS, DEFAULT_PER_WORD

    sub = parser.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    p = sub.add_parser("synth", help="generate the synthetic espeak-ng keyword set",
                       description="Generate a labelled synthetic 12-class keyword set with "
                       "espeak-ng in DIR/{train,val,test}/<label>/*.wav (reused if complete).")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--per-word", type=int, default=DEFAULT_PER_WORD, metavar="N",
                   help=f"training clips per label; val/test get N/8 each "
                   f"(default {DEFAULT_PER_WORD})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise-dir", metavar="DIR", default=None,
                   help="16 kHz noise wavs to mix in (default: ../shared's background noise "
                   "if present, else generated coloured noise)")
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                   help=f"parallel espeak-ng processes (default {DEFAULT_JOBS})")
    p = sub.add_parser("info", help="show source kind, split sizes and label counts",
                       description="Detect a data source (folder, `tfds` or `tfds:DATA_DIR`) "
                       "and print its kind, split sizes and per-label counts.")
    p.add_argument("source", metavar="SRC", help="dataset folder, `tfds` or `tfds:DATA_DIR`")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for unknown subsampling / silence cutting (default 0)")
    p.add_argument("--noise-dir", metavar="DIR", default=None,
                   help="background noise folder (default: the source's own, else ../shared)")


def _run_synth(args: argparse.Namespace) -> int:
    from tinyspeech_tf.data.synth import synthesize

    report = synthesize(args.out, per_word=args.per_word, seed=args.seed,
                        noise_dir=args.noise_dir, jobs=args.jobs)
    if not report.cached:
        rate = report.written / report.seconds if report.seconds > 0 else 0.0
        sizes = ", ".join(f"{s} {sum(c.values())}" for s, c in report.counts.items())
        voices = ", ".join(f"{s} {n}" for s, n in report.voices.items())
        print(f"{report.out}: {report.clips} clips ({report.written} new) in "
              f"{report.seconds:.1f} s ({rate:.0f} clips/s); splits: {sizes}; voices: {voices}; "
              f"noise: {report.noise}")
    return 0


def _synthetic_meta(root: Path) -> dict | None:
    """The ``dataset.json`` of a synthetic set at ``root`` (or its parent), if any."""
    for folder in (root, root.parent):
        try:
            meta = json.loads((folder / "dataset.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("synthetic"):
            return meta
    return None


def _run_info(args: argparse.Namespace) -> int:
    from tinyspeech_tf.data.protocol import LABELS
    from tinyspeech_tf.data.sources import KIND_DESCRIPTIONS, load

    src = load(args.source, seed=args.seed, noise_dir=args.noise_dir)
    print(f"source: {src.root}")
    print(f"kind: {src.kind} ({KIND_DESCRIPTIONS[src.kind]})")
    if src.kind != "tfds":
        meta = _synthetic_meta(Path(src.root))
        if meta is not None:
            params = meta.get("params", {})
            print(f"synthetic: yes (espeak-ng, per-word {params.get('per_word')}, seed "
                  f"{params.get('seed')}); accuracy on it does not predict real speech")
    noise_s = sum(len(c) for c in src.background_noise) / 16000.0
    print(f"background noise: {len(src.background_noise)} clips, {noise_s:.0f} s")
    print("labels: " + " ".join(src.label_names))
    names = list(src.splits)
    width = max(len(n) for n in LABELS)
    print(f"{'split':<{width}} " + " ".join(f"{n:>10}" for n in names))
    print(f"{'total':<{width}} " + " ".join(f"{len(src.splits[n]):>10}" for n in names))
    counts = {n: src.splits[n].counts() for n in names}
    for label in src.label_names:
        print(f"{label:<{width}} " + " ".join(f"{counts[n][label]:>10}" for n in names))
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; UserErrors propagate to the CLI's one-line handler."""
    if args.dataset_command == "synth":
        return _run_synth(args)
    return _run_info(args)
