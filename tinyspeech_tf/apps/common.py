"""Options several commands share: ``--recipe`` and the training options it sets."""

from __future__ import annotations

import argparse
import json
import os

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.train.config import TrainConfig

# Options a recipe may set: argparse dest -> TrainConfig field. Their argparse default is None,
# so an option given explicitly overrides the recipe, and the recipe TrainConfig's defaults.
RECIPE_OPTIONS = {
    "epochs": "epochs", "batch_size": "batch_size", "lr": "learning_rate",
    "lr_schedule": "lr_schedule", "qat_epochs": "qat_epochs", "qat_lr": "qat_learning_rate",
    "teacher": "teacher", "teacher_labels": "teacher_labels", "distill_alpha": "distill_alpha",
    "distill_temperature": "distill_temperature", "label_smoothing": "label_smoothing",
    "time_shift_ms": "time_shift_ms", "time_masks": "time_masks",
    "time_mask_frames": "time_mask_frames", "freq_masks": "freq_masks",
    "freq_mask_coeffs": "freq_mask_coeffs", "frontend": "frontend",
    "stream_windows": "stream_windows",
}


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """``--recipe`` and the options it sets (shared by every command that trains)."""
    from tinyspeech_tf.features import FRONTENDS
    from tinyspeech_tf.train import recipes

    d = TrainConfig()
    parser.add_argument("--recipe", default=None, choices=recipes.names(),
                        help="named training recipe (tinyspeech_tf/train/recipes.py); "
                             "options given explicitly override it")
    parser.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs}")
    parser.add_argument("--batch-size", type=int, default=None, help=f"default {d.batch_size}")
    parser.add_argument("--lr", type=float, default=None, help=f"default {d.learning_rate}")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default=None,
                        help=f"default {d.lr_schedule}")
    parser.add_argument("--qat-epochs", type=int, default=None,
                        help="quantization-aware fine-tuning epochs after float training "
                             f"(0: post-training quantization only; default {d.qat_epochs})")
    parser.add_argument("--qat-lr", type=float, default=None,
                        help=f"default {d.qat_learning_rate}")
    parser.add_argument("--teacher", default=None, metavar="RUN_OR_TFLITE",
                        help="distil from this teacher: a run directory or a .tflite model "
                             "(float or int8) on the same 49x10 MFCC front-end")
    parser.add_argument("--teacher-labels", default=None, metavar="LABELS",
                        help="the teacher's output order: comma-separated or a labels.txt "
                             "(default: labels.txt beside it)")
    parser.add_argument("--distill-alpha", type=float, default=None,
                        help=f"weight of the label cross-entropy (default {d.distill_alpha}); "
                             "the teacher term gets 1 - alpha")
    parser.add_argument("--distill-temperature", type=float, default=None,
                        help=f"softening temperature tau (default {d.distill_temperature})")
    parser.add_argument("--label-smoothing", type=float, default=None,
                        help=f"default {d.label_smoothing}")
    parser.add_argument("--time-shift-ms", type=float, default=None,
                        help=f"random time shift of the waveform, +/- ms (default "
                             f"{d.time_shift_ms:g})")
    parser.add_argument("--time-masks", type=int, default=None,
                        help="SpecAugment time masks per example (default 0)")
    parser.add_argument("--time-mask-frames", type=int, default=None,
                        help="widest time mask in frames")
    parser.add_argument("--freq-masks", type=int, default=None,
                        help="SpecAugment coefficient masks per example (default 0)")
    parser.add_argument("--freq-mask-coeffs", type=int, default=None,
                        help="widest coefficient mask")
    parser.add_argument("--stream-windows", type=float, default=None, metavar="FRACTION",
                        help="replace this fraction of training examples by 1 s windows cut at "
                             "random offsets from two joined clips, labelled by what they hold "
                             "(word, fragment = _unknown_, nothing = _silence_): what a "
                             "streaming board sees (default 0)")
    parser.add_argument("--frontend", default=None, metavar="NAME",
                        help=f"MFCC front-end: {', '.join(FRONTENDS)} (default {d.frontend}; "
                             "the run's frontend.json carries it to export and the C "
                             "front-end)")


def recipe_fields(args: argparse.Namespace) -> dict:
    """TrainConfig fields from ``--recipe`` and the options given explicitly (which win)."""
    from tinyspeech_tf.train import recipes

    fields = recipes.get(args.recipe) if getattr(args, "recipe", None) else {}
    for dest, field_name in RECIPE_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            fields[field_name] = value
    labels = fields.get("teacher_labels")
    if isinstance(labels, str):
        fields["teacher_labels"] = [n.strip() for n in labels.split(",") if n.strip()] \
            if not os.path.isfile(labels) else labels
    return fields


def parse_model_args(items: list[str]) -> dict:
    """``["f_mode=residual", "head_channels=32"]`` -> ``{"f_mode": "residual", ...}``."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"--model-arg {item!r}: expected KEY=VALUE, e.g. f_mode=residual")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs
