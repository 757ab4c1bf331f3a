"""What defines a training run: :class:`TrainConfig` (saved as ``config.json`` in the run
directory) and the data sources it names; checked before any data loads."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np

from tinyspeech_tf.errors import UserError

# Where `--data synthetic` generates (once) and reuses the offline default set.
SYNTHETIC_DIR = os.path.join(".cache", "synthetic")


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` in the run directory."""

    model: str = "tinyspeech_m"
    data: str = "synthetic"
    out: str = "runs/tinyspeech_m"
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 0.01
    momentum: float = 0.9
    # "constant" is the paper's recipe; "cosine" decays to 1% over the run (small data sets).
    lr_schedule: str = "constant"
    # More training sources appended to --data's train split (e.g. "synthetic" beside real).
    extra_train: list = field(default_factory=list)
    # Quantization-aware fine-tuning after float training (0 = post-training quantization only).
    qat_epochs: int = 30
    qat_learning_rate: float = 0.001
    # int8 weight scales per output channel (True) or per tensor (False); None: zoo.PER_CHANNEL.
    per_channel: bool | None = None
    # Magnitude pruning to this fraction of zero weights during float training, masks kept
    # through QAT (tinyspeech_tf.quantize.pruning); 0 = no pruning.
    prune: float = 0.0
    # Hold the filters TFLM LUT compression would shrink on 2**cluster_bits learned values
    # during QAT (tinyspeech_tf.quantize.clustering), so `tinyspeech compress` is lossless; 0 = off.
    cluster_bits: int = 0
    seed: int = 0
    calibration_examples: int = 256
    model_kwargs: dict = field(default_factory=dict)
    max_steps_per_epoch: int | None = None  # for smoke tests only
    # An architecture spec (see zoo.load_spec) built instead of the zoo model `model`, which
    # then only names the run in reports; stored whole so --resume and the run directory need
    # no spec file on disk.
    spec: dict | None = None
    # Knowledge distillation (tinyspeech_tf.train.distill): a run directory or .tflite teacher
    # on the same front-end, its label order (None: its labels.txt), the weight alpha of the label
    # cross-entropy and the softening temperature tau.
    teacher: str | None = None
    teacher_labels: list | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0
    # Label smoothing of the cross-entropy term (0 = none).
    label_smoothing: float = 0.0
    # Waveform time shift of the augmentation, up to +/- this many ms (100: TF/MLPerf default).
    time_shift_ms: float = 100.0
    # SpecAugment on the MFCC features: this many time masks of up to time_mask_frames frames
    # and frequency masks of up to freq_mask_coeffs coefficients per example (0 = off).
    time_masks: int = 0
    time_mask_frames: int = 0
    freq_masks: int = 0
    freq_mask_coeffs: int = 0
    # Fraction of training examples replaced by windows cut at random offsets from two joined
    # clips, labelled by what they hold (tinyspeech_tf.data.augment.stream_windows); 0 = off.
    stream_windows: float = 0.0
    # Custom keywords (labels _silence_, _unknown_, then these); None: the ten protocol words.
    words: list | None = None
    # The MFCC front-end, a name in tinyspeech_tf.features.FRONTENDS (written to frontend.json).
    frontend: str = "mlperf_10x49"
    # Start from trained weights (tinyspeech_tf.train.init_from): "pretrained" (the shipped
    # model) or a run directory of the same model; the classifier starts fresh if the label
    # count differs. None: random initialisation.
    init_from: str | None = None
    # tf.distribute strategy (tinyspeech_tf.train.distribute): "default" (one device),
    # "mirrored" (local GPUs) or "multiworker" (TF_CONFIG); batch_size is the global batch.
    strategy: str = "default"

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)



def load_source(data: str, seed: int, words: list | None = None):
    """Resolve ``--data``: ``synthetic`` (the offline default set, generated if missing) or any
    source ``tinyspeech_tf.data.load`` accepts, with ``words`` as its keywords (None: the
    protocol's ten)."""
    from tinyspeech_tf import data as data_mod

    if data == "synthetic":
        from tinyspeech_tf.data import synth

        synth.synthesize(SYNTHETIC_DIR)
        data = SYNTHETIC_DIR
    return data_mod.load(data, seed=seed, words=None if words is None else tuple(words))


def uses_synthetic(config: TrainConfig) -> bool:
    """Whether the run trains on the generated synthetic set (whose content depends on the
    generator's version, not on anything in the config)."""
    return config.data == "synthetic" or "synthetic" in config.extra_train


def concat_splits(first, second):
    """``first`` followed by ``second`` relabelled into ``first``'s label order."""
    from tinyspeech_tf.data.clips import Clips
    from tinyspeech_tf.data.sources import Split, remap_labels

    second = remap_labels(second, first.label_names)
    return Split(Clips.concat([first.waveforms, second.waveforms]),
                 np.concatenate([first.labels, second.labels]), first.label_names,
                 first.paths + second.paths, first.name)


def check_config(config: TrainConfig) -> None:
    """One-line errors for option values no run can use."""
    if config.epochs < 1 or config.batch_size < 1 or config.qat_epochs < 0:
        raise UserError("--epochs and --batch-size must be at least 1, --qat-epochs at least 0")
    for option, rate in (("--lr", config.learning_rate), ("--qat-lr", config.qat_learning_rate)):
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise UserError(f"{option} {rate}: a learning rate must be a finite number > 0")
    if config.max_steps_per_epoch is not None and config.max_steps_per_epoch < 1:
        raise UserError(f"--max-steps-per-epoch {config.max_steps_per_epoch}: at least 1")
    if not 0 <= config.cluster_bits <= 7 or (config.cluster_bits and not config.qat_epochs):
        raise UserError(f"--cluster-bits {config.cluster_bits}: use 1..7 with --qat-epochs "
                        "of at least 1 (clusters are held during QAT), or 0 for none")
    if not 0.0 <= config.prune < 1.0:
        raise UserError(f"--prune {config.prune}: a sparsity is a fraction in [0, 1), e.g. 0.5")
    if not 0.0 <= config.distill_alpha <= 1.0:
        raise UserError(f"--distill-alpha {config.distill_alpha}: use a weight in [0, 1]")
    if not config.distill_temperature > 0:
        raise UserError(f"--distill-temperature {config.distill_temperature}: must be > 0")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UserError(f"--label-smoothing {config.label_smoothing}: use a value in [0, 1)")
    if config.time_shift_ms < 0 or min(config.time_masks, config.time_mask_frames,
                                       config.freq_masks, config.freq_mask_coeffs) < 0:
        raise UserError("--time-shift-ms and the SpecAugment mask options must be >= 0")
    if not 0.0 <= config.stream_windows <= 1.0:
        raise UserError(f"--stream-windows {config.stream_windows}: a fraction in [0, 1]")
    from tinyspeech_tf.train.distribute import STRATEGIES

    if config.strategy not in STRATEGIES:
        raise UserError(f"--strategy {config.strategy}: choose one of {', '.join(STRATEGIES)}")
    if config.words is not None:
        from tinyspeech_tf.data.protocol import labels_for

        labels_for(config.words)
        if config.data == "synthetic":
            raise UserError("--words: the offline synthetic set speaks the ten protocol words; "
                            "give --data a Speech Commands archive folder for other words")
        if config.teacher:
            raise UserError("--words and --teacher do not mix: the teacher knows other labels")
    from tinyspeech_tf.features import frontend_named

    frontend_named(config.frontend)
    if config.init_from is not None:
        if config.spec is not None:
            raise UserError("--init-from and --spec do not mix: shipped weights are for zoo "
                            "models")
        from tinyspeech_tf.train.init_from import donor_dir

        donor_dir(config.init_from, config.model)
