"""Training: data -> features -> Keras fit -> int8 conversion -> TFLM evaluation -> run directory.

A run directory is self-describing so the exporter and the firmware never guess:
``config.json`` (this module's TrainConfig), ``frontend.json``, ``labels.txt``,
``model.keras`` (best on validation), ``model_int8.tflite``, ``metrics.json``, plots and a
model card. ``checkpoints/`` holds the last epoch's model and optimizer state for ``--resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import write_atomic as _write_atomic

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
    # through QAT (tinyspeech_tf.pruning); 0 = no pruning.
    prune: float = 0.0
    # Hold the filters TFLM LUT compression would shrink on 2**cluster_bits learned values
    # during QAT (tinyspeech_tf.clustering), so `tinyspeech compress` is lossless; 0 = off.
    cluster_bits: int = 0
    seed: int = 0
    calibration_examples: int = 256
    model_kwargs: dict = field(default_factory=dict)
    max_steps_per_epoch: int | None = None  # for smoke tests only
    # An architecture spec (see zoo.load_spec) built instead of the zoo model `model`, which
    # then only names the run in reports; stored whole so --resume and the run directory need
    # no spec file on disk.
    spec: dict | None = None
    # Knowledge distillation (tinyspeech_tf.distill): a run directory or .tflite teacher on the
    # same front-end, its label order (None: its labels.txt), the weight alpha of the label
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
    # The MFCC front-end, a name in tinyspeech_tf.features.FRONTENDS (written to frontend.json).
    frontend: str = "mlperf_10x49"

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)



def features_of(waveforms: np.ndarray, frontend) -> np.ndarray:
    """[N, frames, mfcc, 1] float32 model inputs for a batch of 1 s waveforms."""
    from tinyspeech_tf.features import features_from_samples

    return features_from_samples(waveforms, frontend)[..., None]


def load_source(data: str, seed: int):
    """Resolve ``--data``: ``synthetic`` (the offline default set, generated if missing) or any
    source ``tinyspeech_tf.data.load`` accepts."""
    from tinyspeech_tf import data as data_mod

    if data == "synthetic":
        from tinyspeech_tf.data import synth

        synth.synthesize(SYNTHETIC_DIR)
        data = SYNTHETIC_DIR
    return data_mod.load(data, seed=seed)


def concat_splits(first, second):
    """``first`` followed by ``second`` relabelled into ``first``'s label order."""
    from tinyspeech_tf.data.sources import Split, remap_labels

    second = remap_labels(second, first.label_names)
    return Split(np.concatenate([first.waveforms, second.waveforms]),
                 np.concatenate([first.labels, second.labels]), first.label_names,
                 first.paths + second.paths, first.name)


def _optimizer(rate: float, config: TrainConfig, steps_per_epoch: int, epochs: int):
    """SGD with momentum at a constant or cosine-decayed rate; the schedule counts optimizer
    iterations, which the checkpoint saves, so a resumed run continues the same curve."""
    from tinyspeech_tf._compat import keras

    lr = rate
    if config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(rate, steps_per_epoch * epochs, alpha=0.01)
    return keras.optimizers.SGD(lr, momentum=config.momentum)


def _load(path: Path, config: TrainConfig):
    """A float checkpoint; a pruning run's checkpoints hold tfmot's pruning wrappers."""
    from tinyspeech_tf import pruning
    from tinyspeech_tf._compat import keras

    if not config.prune:
        return keras.models.load_model(path)
    with pruning.scope():
        return keras.models.load_model(path)


def _custom_loss(config: TrainConfig) -> bool:
    """Whether the run trains with :class:`tinyspeech_tf.distill.DistillationLoss` (and its
    ``[N, 1 + C]`` targets) instead of plain sparse cross-entropy."""
    return bool(config.teacher) or bool(config.label_smoothing)


def _compile(net, optimizer, config: TrainConfig) -> None:
    """Compile with the run's loss; the metric is named ``accuracy`` either way, which the
    epoch callbacks and the history read."""
    from tinyspeech_tf._compat import keras

    if not _custom_loss(config):
        net.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"])
        return
    from tinyspeech_tf import distill

    alpha = config.distill_alpha if config.teacher else 1.0
    net.compile(optimizer=optimizer,
                loss=distill.DistillationLoss(alpha, config.distill_temperature,
                                              config.label_smoothing),
                metrics=[keras.metrics.MeanMetricWrapper(distill.label_accuracy,
                                                         name="accuracy")])


def _qat_model(model, config: TrainConfig, steps_per_epoch: int, per_channel: bool):
    """The QAT copy of the best float model, compiled, and a checkpoint of it and its optimizer.

    A QAT model does not survive Keras' whole-model save/load (tfmot's quantize layers), so
    its epochs are checkpointed as TensorFlow checkpoints of weights and optimizer state.
    """
    from tinyspeech_tf import qat
    from tinyspeech_tf._compat import tf

    qat_model = qat.quantize_model(model, per_channel=per_channel)
    optimizer = _optimizer(config.qat_learning_rate, config, steps_per_epoch, config.qat_epochs)
    _compile(qat_model, optimizer, config)
    optimizer.build(qat_model.trainable_variables)
    return qat_model, tf.train.Checkpoint(model=qat_model, optimizer=optimizer)


def _accuracy_report(labels: np.ndarray, predicted: np.ndarray, names: tuple[str, ...]) -> dict:
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum()
                        else None) for i, name in enumerate(names)}
    return {"accuracy": float(np.mean(labels == predicted)) if len(labels) else 0.0,
            "examples": int(len(labels)), "per_class": per_class,
            "confusion": confusion.tolist()}


def evaluate_int8(tflite_bytes: bytes, features: np.ndarray, labels: np.ndarray,
                  names: tuple[str, ...]) -> dict:
    """Accuracy of an int8 model in the TFLM interpreter on float features."""
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.features import quantize as quantize_features

    io = quantize.io_quantization(tflite_bytes)
    q = quantize_features(features, io["input_scale"], io["input_zero_point"])
    scores = tflm.run_tflm(tflite_bytes, q)
    return _accuracy_report(labels, scores.argmax(axis=1), names)


def _figure(size: tuple[float, float], cols: int = 1):
    """A matplotlib figure on the file-only backend (no display on CI or headless boards)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, cols, figsize=size)


def _save_figure(fig, path: Path) -> None:
    """Save atomically (temp file, then rename) and release the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path.with_suffix(".tmp.png"))
    plt.close(fig)
    os.replace(path.with_suffix(".tmp.png"), path)


def _plot_curves(history: dict, path: Path, qat_from: int | None = None) -> None:
    fig, axes = _figure((9, 3.5), cols=2)
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        for prefix in ("", "val_"):
            if prefix + key in history:
                ax.plot(range(1, len(history[prefix + key]) + 1), history[prefix + key],
                        label=prefix + key)
        if qat_from:
            ax.axvline(qat_from + 0.5, color="gray", linestyle=":", label="QAT starts")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    _save_figure(fig, path)


def _plot_confusion(confusion: list, names: tuple[str, ...], title: str, path: Path) -> None:
    matrix = np.asarray(confusion)
    fig, ax = _figure((6.5, 5.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    _save_figure(fig, path)


class Interrupted(Exception):
    """Raised by :func:`train` when ``stop_after`` epochs are done (simulates a killed run)."""


def train(config: TrainConfig, resume: bool = False, verbose: int = 1,
          stop_after: int | None = None) -> dict:
    """Run the whole recipe and fill the run directory; returns the metrics dict.

    ``stop_after`` ends the run with :class:`Interrupted` once that many epochs (float and QAT
    counted together) are checkpointed, exactly as if the process had been killed there.
    """
    from tinyspeech_tf import profile, pruning, qat, quantize, tflm, zoo
    from tinyspeech_tf._compat import keras, tf
    from tinyspeech_tf.data import make_dataset, write_labels
    from tinyspeech_tf.features import frontend_named

    frontend = frontend_named(config.frontend)
    if config.spec is not None:
        config = dataclasses.replace(config, spec=zoo.load_spec(config.spec)[0])
    elif config.model not in zoo.names():
        raise UserError(f"unknown model {config.model!r}; choose one of: "
                        f"{', '.join(zoo.names())}")
    if _custom_loss(config):
        # Registers the loss a checkpoint is compiled with, and serves the teacher below.
        from tinyspeech_tf import distill
    out = Path(config.out)
    ckpt_dir = out / "checkpoints"
    state_path = ckpt_dir / "state.json"
    if resume:
        if not state_path.exists():
            raise UserError(f"{out}: nothing to resume (no checkpoints/state.json); "
                            "drop --resume to start a new run")
        saved = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        # The saved run defines everything but how far to go (--epochs may extend it) and
        # where it now lives (a run folder may have been moved or copied).
        config = dataclasses.replace(saved, epochs=config.epochs, out=config.out)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    source = load_source(config.data, config.seed)
    train_split = source.split("train")
    for extra in config.extra_train:
        train_split = concat_splits(train_split, load_source(extra, config.seed).split("train"))
    val_split = source.split("validation")
    names = tuple(train_split.label_names)
    val_x = features_of(val_split.waveforms, frontend)
    val_y = val_split.labels

    steps = -(-len(train_split) // config.batch_size)
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)

    initial_epoch, best = 0, {"val_accuracy": -1.0, "epoch": 0}
    qat_best = {"val_accuracy": -1.0, "epoch": 0}
    history: dict[str, list] = {}
    if resume:
        state = json.loads(state_path.read_text())
        initial_epoch, best, history = state["epoch"], state["best"], state["history"]
        qat_best = state.get("qat_best", qat_best)
        model = _load(ckpt_dir / "last.keras", config)
    elif config.spec is not None:
        model = zoo.from_spec(config.spec, input_shape=(*frontend.feature_shape, 1),
                              num_classes=len(names))
    else:
        try:
            model = zoo.get(config.model, input_shape=(*frontend.feature_shape, 1),
                            num_classes=len(names), **config.model_kwargs)
        except (TypeError, ValueError) as err:
            raise UserError(f"{config.model} with {config.model_kwargs}: {err}") from None
    if not resume and config.prune:
        model = pruning.wrap(model, config.prune, steps * config.epochs)
    if not resume:
        _compile(model, _optimizer(config.learning_rate, config, steps, config.epochs), config)

    from tinyspeech_tf.data import AugmentConfig, SpecAugment, mask_features
    from tinyspeech_tf.features import model_features

    teacher = teacher_val = None
    if config.teacher:
        teacher = distill.load_teacher(config.teacher, names, frontend, config.teacher_labels)
        teacher_val = teacher.probabilities(val_x)
    augment = AugmentConfig(time_shift_ms=config.time_shift_ms)
    spec_masks = SpecAugment(config.time_masks, config.time_mask_frames, config.freq_masks,
                             config.freq_mask_coeffs)
    val_targets = val_y
    if _custom_loss(config):
        val_targets = distill.targets(val_y, teacher_val).numpy()

    def epoch_data(epoch: int):
        """Exactly the batches of ``epoch`` (a function of seed and epoch only), so a resumed
        run sees what an uninterrupted one would have seen."""
        ds = make_dataset(train_split, batch_size=config.batch_size, training=True,
                          background_noise=source.background_noise, seed=config.seed,
                          epoch=epoch, epochs=1, augment=augment)

        def prepare(batch, x, y):
            x = model_features(x, frontend)
            if spec_masks.active:
                x = mask_features(x, spec_masks, config.seed, epoch, batch)
            if not _custom_loss(config):
                return x, y
            return x, distill.targets(y, None if teacher is None else teacher.tf_probabilities(x))

        return ds.take(steps).enumerate().map(lambda i, xy: prepare(i, *xy))

    def save_state(epoch: int) -> None:
        _write_atomic(state_path, json.dumps({"epoch": epoch, "best": best,
                                              "qat_best": qat_best, "history": history}))

    class EpochState(keras.callbacks.Callback):
        """After every epoch: history, the best-on-validation weights, the last state."""

        def __init__(self, best_so_far: dict, save_best, save_last):
            super().__init__()
            self.best_so_far, self.save_best, self.save_last = best_so_far, save_best, save_last

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if logs.get("val_accuracy", -1.0) > self.best_so_far["val_accuracy"]:
                self.best_so_far.update(val_accuracy=float(logs["val_accuracy"]),
                                        epoch=epoch + 1)
                self.save_best()
            self.save_last()
            save_state(epoch + 1)

    def fit(net, first: int, last: int, callback, extra: tuple = ()) -> None:
        tensorboard = keras.callbacks.TensorBoard(os.fspath(out / "logs"))
        for epoch in range(first, last):
            net.fit(epoch_data(epoch), epochs=epoch + 1, initial_epoch=epoch,
                    validation_data=(val_x, val_targets), verbose=verbose,
                    callbacks=[*extra, callback, tensorboard])
            # Each epoch's dataset holds copies of the training clips and noise as tensors,
            # kept alive by reference cycles until the cyclic collector runs, which large
            # tensors do not trigger: without this a 150-epoch run grew by gigabytes.
            gc.collect()
            if stop_after is not None and epoch + 1 >= stop_after:
                raise Interrupted(f"stopped after epoch {epoch + 1}")

    started = time.time()
    fit(model, initial_epoch, config.epochs, EpochState(
        best, lambda: model.save(ckpt_dir / "best.keras"),
        lambda: model.save(ckpt_dir / "last.keras")),
        extra=pruning.callbacks() if config.prune else ())
    model = _load(ckpt_dir / "best.keras", config)
    masks = None
    if config.prune:
        model = pruning.strip(model)
        _compile(model, "sgd", config)
        masks = pruning.masks(model)
    per_channel = config.per_channel
    if per_channel is None:
        per_channel = ((config.spec or {}).get("per_channel")
                       if (config.spec or {}).get("per_channel") is not None
                       else zoo.PER_CHANNEL.get(config.model, True))

    rng = np.random.default_rng(config.seed)
    calib_idx = rng.choice(len(train_split), min(config.calibration_examples,
                                                 len(train_split)), replace=False)
    calib = features_of(train_split.waveforms[calib_idx], frontend)
    ptq_bytes = quantize.convert_int8(model, calib, per_channel=per_channel)
    tflite_bytes = ptq_bytes
    qat_val = None
    if config.qat_epochs:
        qat_model, qat_ckpt = _qat_model(model, config, steps, per_channel)
        qat_callbacks: tuple = (pruning.KeepMasks(masks),) if masks is not None else ()
        clustered_layers = []
        if config.cluster_bits:
            from tinyspeech_tf import clustering

            clustered_layers = clustering.chosen_layers(model, config.cluster_bits, per_channel)
            qat_callbacks += (clustering.KeepClusters(clustered_layers, config.cluster_bits,
                                                      per_channel),)
        qat.init_ranges(qat_model, model, calib)
        if initial_epoch > config.epochs:
            qat_ckpt.read(os.fspath(ckpt_dir / "qat_last")).assert_consumed()
        fit(qat_model, max(initial_epoch, config.epochs), config.epochs + config.qat_epochs,
            EpochState(qat_best, lambda: qat_ckpt.write(os.fspath(ckpt_dir / "qat_best")),
                       lambda: qat_ckpt.write(os.fspath(ckpt_dir / "qat_last"))),
            extra=qat_callbacks)
        qat_ckpt.read(os.fspath(ckpt_dir / "qat_best")).assert_consumed()
        qat_val = qat_model.evaluate(val_x, val_targets, verbose=0, return_dict=True)
        tflite_bytes = quantize.convert_int8(qat_model, calib, per_channel=per_channel)
    train_seconds = time.time() - started

    float_val = model.evaluate(val_x, val_targets, verbose=0, return_dict=True)
    float_pred = model.predict(val_x, verbose=0).argmax(axis=1)
    int8_report = evaluate_int8(tflite_bytes, val_x, val_y, names)
    ptq_report = (int8_report if tflite_bytes is ptq_bytes
                  else evaluate_int8(ptq_bytes, val_x, val_y, names))
    float_report = _accuracy_report(val_y, float_pred, names)

    metrics = {
        "model": config.model,
        "model_kwargs": config.model_kwargs,
        "data": config.data,
        "data_kind": source.kind,
        "synthetic": config.data == "synthetic",
        "labels": list(names),
        "epochs": config.epochs,
        "best_epoch": best["epoch"],
        "qat_epochs": config.qat_epochs,
        "qat_best_epoch": qat_best["epoch"] if config.qat_epochs else None,
        "quantization": ("QAT (tensorflow-model-optimization)" if config.qat_epochs
                         else "post-training") + (", per-channel weights" if per_channel
                                                  else ", per-tensor weights"),
        "train_examples": len(train_split),
        "val_examples": len(val_split),
        "float": {"accuracy": float_report["accuracy"],
                  "loss": float(float_val["loss"]),
                  "per_class": float_report["per_class"]},
        "qat": {"accuracy": float(qat_val["accuracy"])} if qat_val else None,
        "int8_tflm": {k: int8_report[k] for k in ("accuracy", "per_class", "confusion")},
        "int8_ptq_tflm": {"accuracy": ptq_report["accuracy"]},
        "params": int(model.count_params()),
        "macs": profile.total_macs(model),
        "tflite_bytes": len(tflite_bytes),
        "arena_bytes": tflm.arena_bytes(tflite_bytes),
        "ops": quantize.op_set(tflite_bytes),
        "train_seconds": round(train_seconds, 1),
        "frontend": {"name": config.frontend, "feature_shape": list(frontend.feature_shape)},
    }
    if config.spec is not None:
        metrics["spec"] = config.spec
    else:
        metrics["architecture"] = zoo.architecture(config.model, **config.model_kwargs)
    if teacher is not None:
        teacher_pred = teacher_val.argmax(axis=1)
        metrics["distillation"] = {
            "teacher": teacher.info.source, "teacher_kind": teacher.info.kind,
            "teacher_labels": list(teacher.info.labels), "alpha": config.distill_alpha,
            "temperature": config.distill_temperature,
            "teacher_val_accuracy": float(np.mean(teacher_pred == val_y))}
    metrics["augmentation"] = {
        "time_shift_ms": config.time_shift_ms, "label_smoothing": config.label_smoothing,
        "time_masks": [config.time_masks, config.time_mask_frames],
        "freq_masks": [config.freq_masks, config.freq_mask_coeffs]}
    if config.cluster_bits and config.qat_epochs:
        metrics["clustering"] = {"bits": config.cluster_bits, "layers": clustered_layers}
    if config.prune:
        from tinyspeech_tf import compress

        metrics["pruning"] = {"target_sparsity": config.prune,
                              "float_sparsity": pruning.sparsity_of(model),
                              "int8_sparsity": compress.zero_fraction(tflite_bytes)}

    model.save(out / ".model.tmp.keras")
    os.replace(out / ".model.tmp.keras", out / "model.keras")
    _write_atomic(out / "model_int8.tflite", tflite_bytes)
    write_labels(out / "labels.txt", names)
    _write_atomic(out / "frontend.json", frontend.to_json())
    _write_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    _plot_curves(history, out / "curves.png", config.epochs if config.qat_epochs else None)
    what = "synthetic" if metrics["synthetic"] else source.kind
    _plot_confusion(int8_report["confusion"], names,
                    f"{config.model} int8 (TFLM), val ({what}): "
                    f"{int8_report['accuracy']:.1%}", out / "confusion_int8.png")
    _write_atomic(out / "MODEL_CARD.md", model_card(metrics))
    return metrics


def finished_metrics(config: TrainConfig) -> dict | None:
    """The metrics of a finished run in ``config.out`` with exactly this config, else None."""
    out = Path(config.out)
    try:
        saved = json.loads((out / "config.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    # Compared as configs, not dicts: a run saved before a TrainConfig field existed still
    # matches when the new field has its default. Where the run lives is not part of what it
    # is: a finished run moved or copied into another folder still counts.
    try:
        same = dataclasses.replace(type(config).from_dict(saved), out=config.out) == config
    except (UserError, TypeError):
        same = False
    if same and config.spec is None and "architecture" in metrics:
        # A zoo preset may have changed since: the run must be of today's architecture.
        from tinyspeech_tf import zoo

        try:
            same = metrics["architecture"] == zoo.architecture(config.model,
                                                               **config.model_kwargs)
        except (KeyError, TypeError):
            same = False
    return metrics if same else None


def train_or_reuse(config: TrainConfig) -> dict:
    """A finished run's metrics, else train (resuming an interrupted run in the same folder).

    What commands that need many runs (ablations, seed comparisons) call, so they can be
    re-run after an interruption and count runs trained beforehand by ``tinyspeech train``.
    """
    metrics = finished_metrics(config)
    if metrics is None:
        metrics = train(config, resume=(Path(config.out) / "checkpoints" / "state.json").exists())
    return metrics


def run_summary(config: TrainConfig) -> dict:
    """Train (or reuse) ``config``'s run; the figures by which reports compare runs."""
    metrics = train_or_reuse(config)
    return {"seed": config.seed, "run": config.out, "float": metrics["float"]["accuracy"],
            "int8_tflm": metrics["int8_tflm"]["accuracy"],
            "tflite_bytes": metrics["tflite_bytes"], "arena_bytes": metrics["arena_bytes"],
            "params": metrics["params"], "val_examples": metrics["val_examples"],
            "train_seconds": metrics["train_seconds"]}


def model_card(metrics: dict) -> str:
    """The run's model card, generated from its metrics (never typed by hand)."""
    data_line = ("**synthetic** keywords spoken by espeak-ng (see `tinyspeech dataset synth`); "
                 "accuracy on synthetic speech says little about real speech"
                 if metrics["synthetic"] else f"`{metrics['data']}` ({metrics['data_kind']})")
    rows = "\n".join(
        f"| {name} | {_pct(metrics['float']['per_class'][name])} "
        f"| {_pct(metrics['int8_tflm']['per_class'][name])} |" for name in metrics["labels"])
    attention = ""
    spec = metrics.get("spec") or {}
    if spec.get("builder", metrics["model"]).startswith("tinyspeech"):
        import inspect

        from tinyspeech_tf import ablation, zoo

        mode = {**metrics.get("model_kwargs", {}), **spec.get("kwargs", {})}.get(
            "f_mode", inspect.signature(zoo.tinyspeech).parameters["f_mode"].default)
        report = ablation.load_report()
        attention = (f"\n- Selective attention: F = {mode}"
                     + (f"; {ablation.summary_line(report)}." if report else "."))
    teacher = ""
    if metrics.get("distillation"):
        d = metrics["distillation"]
        teacher = (f"\n- Distilled from `{d['teacher']}` ({d['teacher_kind']}, "
                   f"{_pct(d['teacher_val_accuracy'])} on this validation split), "
                   f"alpha {d['alpha']}, temperature {d['temperature']}.")
    float_acc = _pct(metrics["float"]["accuracy"])
    int8_acc = _pct(metrics["int8_tflm"]["accuracy"])
    return f"""# Model card: {metrics['model']}

Generated by `tinyspeech train` from this run's `metrics.json`.

- Data: {data_line}; {metrics['train_examples']} training and {metrics['val_examples']}
  validation examples, 12-class Speech Commands protocol, labels in `labels.txt`.
- Front-end: {_frontend_line(metrics)} (`frontend.json`).
- Training: {metrics['epochs']} float epochs (best on validation: {metrics['best_epoch']}),
  then {metrics['qat_epochs']} quantization-aware epochs; int8 by {metrics['quantization']}.
- Cost: {metrics['params']:,} parameters, {metrics['macs']:,} MACs, int8 .tflite
  {metrics['tflite_bytes']:,} bytes, TFLM arena {metrics['arena_bytes']:,} bytes
  (minimum measured in the TFLM Python interpreter).
- Ops: {', '.join(metrics['ops'])}.{attention}{teacher}

| | float (Keras) | int8 (TFLM) |
|---|---:|---:|
| validation accuracy | {float_acc} | {int8_acc} |

Post-training quantization of the same float model would give
{_pct(metrics['int8_ptq_tflm']['accuracy'])} in TFLM; the QAT Keras model (fake-quant) gives
{_pct((metrics['qat'] or {}).get('accuracy'))}.

| class | float | int8 (TFLM) |
|---|---:|---:|
{rows}
"""


def _frontend_line(metrics: dict) -> str:
    fe = metrics.get("frontend") or {"name": "mlperf_10x49", "feature_shape": [49, 10]}
    frames, coeffs = fe["feature_shape"]
    return f"`{fe['name']}` MFCC, {frames} frames x {coeffs} coefficients"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


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
}


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """``--recipe`` and the options it sets (shared by every command that trains)."""
    from tinyspeech_tf import recipes
    from tinyspeech_tf.features import FRONTENDS

    d = TrainConfig()
    parser.add_argument("--recipe", default=None, choices=recipes.names(),
                        help="named training recipe (tinyspeech_tf/recipes.py); options given "
                             "explicitly override it")
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
    parser.add_argument("--frontend", default=None, metavar="NAME",
                        help=f"MFCC front-end: {', '.join(FRONTENDS)} (default {d.frontend}; "
                             "the run's frontend.json carries it to export and the C "
                             "front-end)")


def recipe_fields(args: argparse.Namespace) -> dict:
    """TrainConfig fields from ``--recipe`` and the options given explicitly (which win)."""
    from tinyspeech_tf import recipes

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


def check_config(config: TrainConfig) -> None:
    """One-line errors for option values no run can use."""
    if config.epochs < 1 or config.batch_size < 1 or config.qat_epochs < 0:
        raise UserError("--epochs and --batch-size must be at least 1, --qat-epochs at least 0")
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
    from tinyspeech_tf.features import frontend_named

    frontend_named(config.frontend)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--model", default=None,
                        help=f"zoo model name (default {defaults.model}; with --spec: the run's "
                             "name in reports, default the spec's name)")
    parser.add_argument("--spec", default=None, metavar="SPEC.json",
                        help="train the architecture in this spec file (e.g. one written by "
                             "`tinyspeech explore`) instead of a zoo model")
    parser.add_argument("--data", default=defaults.data,
                        help="'synthetic' (offline default), 'tfds', or a dataset folder")
    parser.add_argument("--out", default=None, help="run directory (default runs/MODEL)")
    add_recipe_arguments(parser)
    parser.add_argument("--extra-train", action="append", default=[], metavar="SRC",
                        help="another source whose train split joins --data's (repeatable), "
                             "e.g. synthetic")
    parser.add_argument("--prune", type=float, default=defaults.prune, metavar="SPARSITY",
                        help="magnitude-prune convs and dense layers to this fraction of zero "
                             "weights during float training (tensorflow-model-optimization), "
                             "masks kept through QAT; e.g. 0.5 (default 0: off)")
    parser.add_argument("--cluster-bits", type=int, default=defaults.cluster_bits,
                        metavar="BITS",
                        help="during QAT, hold the filters that TFLM LUT compression would "
                             "shrink on 2**BITS learned values, so `tinyspeech compress --bits "
                             "BITS` loses nothing (default 0: off)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a builder argument of the zoo model, e.g. f_mode=residual "
                             "(VALUE read as JSON when it parses, else as text; repeatable)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last completed epoch")


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


def run(args: argparse.Namespace) -> int:
    spec = None
    if args.spec is not None:
        from tinyspeech_tf import zoo

        if args.model_arg:
            raise UserError("--model-arg and --spec do not mix: put builder arguments in the "
                            f"spec's kwargs ({args.spec})")
        # Build once now so a bad spec fails here, naming its file, before any data loads.
        zoo.from_spec(args.spec)
        spec = zoo.load_spec(args.spec)[0]
    model = args.model or (spec["name"] if spec else TrainConfig.model)
    config = TrainConfig(model=model, data=args.data, spec=spec,
                         out=args.out or f"runs/{model}", seed=args.seed,
                         extra_train=list(args.extra_train),
                         model_kwargs=parse_model_args(args.model_arg), prune=args.prune,
                         cluster_bits=args.cluster_bits,
                         max_steps_per_epoch=args.max_steps_per_epoch, **recipe_fields(args))
    check_config(config)
    metrics = train(config, resume=args.resume)
    print(f"{config.out}: float {metrics['float']['accuracy']:.2%}, int8 (TFLM) "
          f"{metrics['int8_tflm']['accuracy']:.2%} on {metrics['val_examples']} validation "
          f"examples; {metrics['tflite_bytes']} bytes, arena {metrics['arena_bytes']} bytes")
    return 0
