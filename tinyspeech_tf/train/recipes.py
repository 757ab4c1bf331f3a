"""Training recipes as data: named sets of :class:`tinyspeech_tf.train.TrainConfig` fields.

Why: the same recipe is used by ``tinyspeech train``, ``seeds``, ``recipe``, ``ablate-fmode``,
``bench`` and the Makefile; written out in each it drifts. A command takes ``--recipe NAME``
and any option given explicitly overrides the recipe's value.

- ``paper``: the paper's recipe (SGD momentum 0.9, lr 0.01, 50 epochs, batch 64) + 30 QAT.
- ``real_plain``: for the few thousand real clips in ``../shared``: 150 cosine-decayed epochs +
  30 QAT epochs. ``tinyspeech recipe`` measures each of :data:`VARIANTS` against it.
- ``real``: ``real_plain`` with the variants in :data:`ADOPTED`, the ones
  ``reports/recipe.md`` shows helping on every seed, alone and on top of those adopted
  before them. Every command that trains on real data uses it by default.
"""

from __future__ import annotations

from tinyspeech_tf.errors import UserError

MLPERF_TEACHER = "../shared/models/mlperf_tiny_kws_ref_float32.tflite"
MLPERF_TEACHER_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                         "silence", "unknown"]


# Changes to ``real_plain`` that ``tinyspeech recipe`` measures one at a time (each alone
# against the baseline, same seeds): the fields each one sets on top of ``real_plain``.
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "distill": {"teacher": MLPERF_TEACHER, "teacher_labels": MLPERF_TEACHER_LABELS,
                "distill_alpha": 0.5, "distill_temperature": 4.0},
    "label_smoothing": {"label_smoothing": 0.1},
    "spec_augment": {"time_masks": 2, "time_mask_frames": 5, "freq_masks": 1,
                     "freq_mask_coeffs": 2},
    "time_shift_200ms": {"time_shift_ms": 200.0},
    # Streaming-aware examples: a quarter of each batch cut between and across words.
    "stream_windows": {"stream_windows": 0.25},
    # The paper's (Honk's) input resolution instead of MLPerf's 49 x 10.
    "honk_40x98": {"frontend": "honk_40x98"},
}
# A change that helps alone is adopted once it also helps on top of the adopted ones: these
# variants measure a candidate together with ADOPTED.
VARIANTS["distill+label_smoothing"] = {**VARIANTS["distill"], **VARIANTS["label_smoothing"]}

# The variants ``real`` adds to ``real_plain``: those reports/recipe.md shows helping alone and
# on top of the ones adopted before them.
ADOPTED: tuple[str, ...] = ("distill",)

_REAL_PLAIN = {"epochs": 150, "lr_schedule": "cosine", "qat_epochs": 30}
RECIPES: dict[str, dict] = {
    "paper": {"epochs": 50, "lr_schedule": "constant", "qat_epochs": 30},
    "real_plain": _REAL_PLAIN,
    "real": {**_REAL_PLAIN, **{k: v for name in ADOPTED for k, v in VARIANTS[name].items()}},
}


def names() -> list[str]:
    return list(RECIPES)


def get(name: str) -> dict:
    """The fields of recipe ``name`` (a copy); unknown names fail in one line."""
    try:
        return dict(RECIPES[name])
    except KeyError:
        raise UserError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}") \
            from None


def describe(fields: dict) -> str:
    """One line naming a recipe's fields, for reports."""
    return ", ".join(f"{k}={v}" for k, v in fields.items())
