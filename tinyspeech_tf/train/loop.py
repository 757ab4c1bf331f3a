"""Training: data -> features -> Keras fit -> QAT -> int8 conversion -> TFLM evaluation -> run
directory.

A run directory is self-describing so the exporter and the firmware never guess:
``config.json`` (:class:`~tinyspeech_tf.train.config.TrainConfig`), ``frontend.json``,
``labels.txt``, ``model.keras`` (best on validation), ``model_int8.tflite``, ``metrics.json``,
plots and a model card. ``checkpoints/`` holds the last epoch's model and optimizer state for
``--resume``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.evaluate import accuracy_report, evaluate_int8, features_of
from tinyspeech_tf.io import replace_files
from tinyspeech_tf.io import write_atomic as _write_atomic
from tinyspeech_tf.runs import (
    CONFIG,
    TRAINING_CONFIG,
    read_json_object,
    training_config,
    write_golden,
)
from tinyspeech_tf.train.card import model_card, plot_confusion, plot_curves
from tinyspeech_tf.train.config import TrainConfig, concat_splits, load_source, uses_synthetic


def _save_keras(model, path: Path) -> None:
    """Keras writes in place: a kill mid-write would leave a checkpoint no resume can read.
    Written beside it first, then renamed over it."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
    from tinyspeech_tf._compat import keras
    from tinyspeech_tf.quantize import pruning

    try:
        if not config.prune:
            return keras.models.load_model(path)
        with pruning.scope():
            return keras.models.load_model(path)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"{path}: cannot load this checkpoint ({str(err)[:120]}); the run "
                        f"cannot resume from it: delete {path.parent} and train again "
                        "without --resume") from None


def _custom_loss(config: TrainConfig) -> bool:
    """Whether the run trains with :class:`tinyspeech_tf.train.distill.DistillationLoss` (and its
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
    from tinyspeech_tf.train import distill

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
    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.quantize import qat

    qat_model = qat.quantize_model(model, per_channel=per_channel)
    optimizer = _optimizer(config.qat_learning_rate, config, steps_per_epoch, config.qat_epochs)
    _compile(qat_model, optimizer, config)
    optimizer.build(qat_model.trainable_variables)
    return qat_model, tf.train.Checkpoint(model=qat_model, optimizer=optimizer)


def _store_golden(out: Path, val_split, data: str) -> None:
    """Fix the run's self-test clip now, while its data is here: export replays it on any
    machine (a user's clone has no dataset), and every export of the run tests the same clip."""
    from tinyspeech_tf.data.protocol import golden_index

    index = golden_index(val_split.labels, val_split.label_names, val_split.paths)
    if index is not None:
        write_golden(out, val_split.waveforms[index],
                     val_split.label_names[val_split.labels[index]], val_split.paths[index],
                     data)


class Interrupted(Exception):
    """Raised by :func:`train` when ``stop_after`` epochs are done (simulates a killed run)."""


def train(config: TrainConfig, resume: bool = False, verbose: int = 1,
          stop_after: int | None = None) -> dict:
    """Run the whole recipe and fill the run directory; returns the metrics dict.

    ``stop_after`` ends the run with :class:`Interrupted` once that many epochs (float and QAT
    counted together) are checkpointed, exactly as if the process had been killed there.
    """
    from tinyspeech_tf import quantize, tflm, zoo
    from tinyspeech_tf._compat import keras, tf
    from tinyspeech_tf.data import make_dataset
    from tinyspeech_tf.features import frontend_named
    from tinyspeech_tf.quantize import pruning, qat
    from tinyspeech_tf.zoo import profile

    begun = time.time()
    timing: dict = {"first_batch_seconds": None, "epoch_train_seconds": []}
    frontend = frontend_named(config.frontend)
    if config.spec is not None:
        config = dataclasses.replace(config, spec=zoo.load_spec(config.spec)[0])
    elif config.model not in zoo.names():
        raise UserError(f"unknown model {config.model!r}; choose one of: "
                        f"{', '.join(zoo.names())}")
    if _custom_loss(config):
        # Registers the loss a checkpoint is compiled with, and serves the teacher below.
        from tinyspeech_tf.train import distill
    out = Path(config.out)
    ckpt_dir = out / "checkpoints"
    state_path = ckpt_dir / "state.json"
    if resume:
        if not state_path.exists():
            raise UserError(f"{out}: nothing to resume (no checkpoints/state.json); "
                            "drop --resume to start a new run")
        stored = training_config(out)
        if stored is None:
            raise UserError(f"{out}: no {TRAINING_CONFIG} or {CONFIG} to resume from; train "
                            "again without --resume")
        saved = TrainConfig.from_dict(stored)
        # The saved run defines everything but how far to go (--epochs may extend it) and
        # where it now lives (a run folder may have been moved or copied).
        config = dataclasses.replace(saved, epochs=config.epochs, out=config.out)
        try:
            done = int(read_json_object(state_path, required=True)["epoch"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{state_path}: not a training state; delete {ckpt_dir} and train "
                            "again without --resume") from None
        if config.epochs < min(done, saved.epochs) or (done > saved.epochs
                                                         and config.epochs != saved.epochs):
            raise UserError(f"--epochs {config.epochs}: {out} has done {done} epochs "
                            f"({saved.epochs} float, then QAT); give at least "
                            f"{min(done, saved.epochs)} float epochs before QAT starts, or "
                            "omit --epochs to keep the run's own")
    from tinyspeech_tf.train import distribute

    strategy = distribute.make_strategy(config.strategy)
    if not distribute.is_chief(config.strategy):
        # Another worker writes the run; this one keeps its own checkpoints (for --resume on
        # this machine) in a folder of its own, and nothing a reader of the run looks at.
        out = out / f"worker-{distribute.tf_config()['task'].get('index', 0)}"
        ckpt_dir, state_path = out / "checkpoints", out / "checkpoints" / "state.json"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    config_text = json.dumps(dataclasses.asdict(config), indent=2)
    _write_atomic(out / TRAINING_CONFIG, config_text)

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    source = load_source(config.data, config.seed, config.words)
    train_split = source.split("train")
    if np.count_nonzero(np.bincount(train_split.labels)) < 2:
        raise UserError(f"{config.data}: its train split has examples of "
                        f"{np.count_nonzero(np.bincount(train_split.labels))} class(es); a "
                        "classifier needs at least two")
    for extra in config.extra_train:
        train_split = concat_splits(train_split, load_source(extra, config.seed, config.words)
                                    .split("train"))
    val_split = source.split("validation")
    names = tuple(train_split.label_names)
    val_x = features_of(val_split.waveforms, frontend)
    val_y = val_split.labels

    steps = -(-len(train_split) // config.batch_size)
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)

    # Variables made from here on (models, optimizers, QAT copies) are the strategy's: mirrored
    # across its replicas, which split each --batch-size batch between them.
    scope = contextlib.ExitStack()
    scope.enter_context(strategy.scope())
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
    if not resume and config.init_from is not None:
        from tinyspeech_tf.train.init_from import initialise

        done = initialise(model, config.init_from, config.model, config.model_kwargs, frontend)
        if verbose:
            print(f"[train] weights from {done['source']}: {done['layers_copied']} layers "
                  f"copied, fresh: {', '.join(done['layers_fresh']) or 'none'}", flush=True)
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
    augment = AugmentConfig(time_shift_ms=config.time_shift_ms,
                            stream_windows=config.stream_windows)
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
        if config.strategy == "multiworker":
            ds = distribute.shard_by_data(ds)

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
            if not all(math.isfinite(float(logs[k])) for k in ("loss", "val_loss") if k in logs):
                # Before anything is saved: the last good epoch stays the one to resume from.
                raise UserError(f"epoch {epoch + 1}: the loss is not finite "
                                f"({logs.get('loss')}); lower --lr (now "
                                f"{config.learning_rate:g}) and start again")
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if logs.get("val_accuracy", -1.0) > self.best_so_far["val_accuracy"]:
                self.best_so_far.update(val_accuracy=float(logs["val_accuracy"]),
                                        epoch=epoch + 1)
                self.save_best()
            self.save_last()
            save_state(epoch + 1)

    total = config.epochs + config.qat_epochs

    class EpochLine(keras.callbacks.Callback):
        """One line per epoch with the run's true epoch count (Keras' own bar, fed one epoch
        per fit call, would print "Epoch 41/41" and "75/Unknown")."""

        def __init__(self, phase: str):
            super().__init__()
            self.phase = phase

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            figures = ", ".join(f"{k} {logs[k]:.4f}" for k in
                                ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
            print(f"epoch {epoch + 1}/{total} ({self.phase}, {steps} steps, "
                  f"{time.time() - self.started:.1f} s): {figures}", flush=True)

    class Timing(keras.callbacks.Callback):
        """Seconds from the command's start to the first trained batch (loading, checking and
        the first read included), and each epoch's training time without its validation."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.training = time.time(), True

        def on_train_batch_end(self, batch, logs=None):
            if timing["first_batch_seconds"] is None:
                timing["first_batch_seconds"] = round(time.time() - begun, 2)

        def on_test_begin(self, logs=None):
            if self.training:
                timing["epoch_train_seconds"].append(round(time.time() - self.started, 2))
                self.training = False

    def fit(net, first: int, last: int, callback, extra: tuple = ()) -> None:
        tensorboard = keras.callbacks.TensorBoard(os.fspath(out / "logs"))
        line = (EpochLine("float" if last <= config.epochs else "QAT"),) if verbose else ()
        for epoch in range(first, last):
            net.fit(epoch_data(epoch), epochs=epoch + 1, initial_epoch=epoch,
                    validation_data=(val_x, val_targets), verbose=0,
                    callbacks=[*extra, callback, tensorboard, Timing(), *line])
            # Each epoch's dataset holds copies of the training clips and noise as tensors,
            # kept alive by reference cycles until the cyclic collector runs, which large
            # tensors do not trigger: without this a 150-epoch run grew by gigabytes.
            gc.collect()
            if stop_after is not None and epoch + 1 >= stop_after:
                raise Interrupted(f"stopped after epoch {epoch + 1}")

    started = time.time()
    fit(model, initial_epoch, config.epochs, EpochState(
        best, lambda: _save_keras(model, ckpt_dir / "best.keras"),
        lambda: _save_keras(model, ckpt_dir / "last.keras")),
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
            from tinyspeech_tf.quantize import clustering

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
    scope.close()
    train_seconds = time.time() - started

    float_val = model.evaluate(val_x, val_targets, verbose=0, return_dict=True)
    float_pred = model.predict(val_x, verbose=0).argmax(axis=1)
    int8_report = evaluate_int8(tflite_bytes, val_x, val_y, names)
    ptq_report = (int8_report if tflite_bytes is ptq_bytes
                  else evaluate_int8(ptq_bytes, val_x, val_y, names))
    float_report = accuracy_report(val_y, float_pred, names)

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
        "strategy": {"name": config.strategy, "replicas": int(strategy.num_replicas_in_sync)},
        # This process's share (a resumed run times only the epochs it ran).
        "timing": {**timing, "clips_per_epoch": min(steps * config.batch_size,
                                                    len(train_split))},
        "frontend": {"name": config.frontend, "feature_shape": list(frontend.feature_shape)},
    }
    if config.spec is not None:
        metrics["spec"] = config.spec
        # What the spec built today: a spec naming a preset means another model once the
        # preset changes, which only this record tells (train.reuse compares it).
        metrics["architecture"] = zoo.architecture(config.spec["builder"],
                                                   **config.spec["kwargs"])
    else:
        metrics["architecture"] = zoo.architecture(config.model, **config.model_kwargs)
    if teacher is not None:
        teacher_pred = teacher_val.argmax(axis=1)
        metrics["distillation"] = {
            "teacher": teacher.info.source, "teacher_kind": teacher.info.kind,
            "teacher_labels": list(teacher.info.labels), "alpha": config.distill_alpha,
            "temperature": config.distill_temperature,
            "teacher_val_accuracy": float(np.mean(teacher_pred == val_y))}
    if config.init_from is not None:
        metrics["init_from"] = config.init_from
    if uses_synthetic(config):
        from tinyspeech_tf.data.synth import GENERATOR_VERSION

        metrics["synthetic_generator"] = GENERATOR_VERSION
    metrics["augmentation"] = {
        "time_shift_ms": config.time_shift_ms, "label_smoothing": config.label_smoothing,
        "stream_windows": config.stream_windows,
        "time_masks": [config.time_masks, config.time_mask_frames],
        "freq_masks": [config.freq_masks, config.freq_mask_coeffs]}
    if config.cluster_bits and config.qat_epochs:
        metrics["clustering"] = {"bits": config.cluster_bits, "layers": clustered_layers}
    if config.prune:
        from tinyspeech_tf.quantize import lut as compress

        metrics["pruning"] = {"target_sparsity": config.prune,
                              "float_sparsity": pruning.sparsity_of(model),
                              "int8_sparsity": compress.zero_fraction(tflite_bytes)}

    model.save(out / ".model.tmp.keras")
    os.replace(out / ".model.tmp.keras", out / "model.keras")
    _store_golden(out, val_split, config.data)
    plot_curves(history, out / "curves.png", config.epochs if config.qat_epochs else None)
    what = "synthetic" if metrics["synthetic"] else source.kind
    plot_confusion(int8_report["confusion"], names,
                    f"{config.model} int8 (TFLM), val ({what}): "
                    f"{int8_report['accuracy']:.1%}", out / "confusion_int8.png")
    # What readers of a run use, replaced as one set (a kill leaves the old set or the new).
    replace_files({out / "model_int8.tflite": tflite_bytes,
                   out / "labels.txt": "".join(f"{name}\n" for name in names),
                   out / "frontend.json": frontend.to_json(),
                   out / CONFIG: config_text,
                   out / "metrics.json": json.dumps(metrics, indent=2),
                   out / "MODEL_CARD.md": model_card(metrics)})
    return metrics
