"""Training: data -> features -> Keras fit -> int8 conversion -> TFLM evaluation -> run directory.

A run directory is self-describing so the exporter and the firmware never guess:
``config.json`` (this module's TrainConfig), ``frontend.json``, ``labels.txt``,
``model.keras`` (best on validation), ``model_int8.tflite``, ``metrics.json``, plots and a
model card. ``checkpoints/`` holds the last epoch's model and optimizer state for ``--resume``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    seed: int = 0
    calibration_examples: int = 256
    model_kwargs: dict = field(default_factory=dict)
    max_steps_per_epoch: int | None = None  # for smoke tests only

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**data)


def _write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file, then rename: an interrupted run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


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


def _plot_curves(history: dict, path: Path) -> None:
    fig, axes = _figure((9, 3.5), cols=2)
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        for prefix in ("", "val_"):
            if prefix + key in history:
                ax.plot(range(1, len(history[prefix + key]) + 1), history[prefix + key],
                        label=prefix + key)
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


def train(config: TrainConfig, resume: bool = False, verbose: int = 1) -> dict:
    """Run the whole recipe and fill the run directory; returns the metrics dict."""
    from tinyspeech_tf import profile, quantize, tflm, zoo
    from tinyspeech_tf._compat import keras, tf
    from tinyspeech_tf.data import make_dataset, write_labels
    from tinyspeech_tf.features import DEFAULT_CONFIG as frontend

    if config.model not in zoo.names():
        raise UserError(f"unknown model {config.model!r}; choose one of: "
                        f"{', '.join(zoo.names())}")
    out = Path(config.out)
    ckpt_dir = out / "checkpoints"
    state_path = ckpt_dir / "state.json"
    if resume:
        if not state_path.exists():
            raise UserError(f"{out}: nothing to resume (no checkpoints/state.json); "
                            "drop --resume to start a new run")
        saved = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        # The saved run defines everything but how far to go: --epochs may extend it.
        config = dataclasses.replace(saved, epochs=config.epochs)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    source = load_source(config.data, config.seed)
    train_split = source.split("train")
    val_split = source.split("validation")
    names = tuple(train_split.label_names)
    val_x = features_of(val_split.waveforms, frontend)
    val_y = val_split.labels

    steps = -(-len(train_split) // config.batch_size)
    if config.max_steps_per_epoch:
        steps = min(steps, config.max_steps_per_epoch)

    initial_epoch, best = 0, {"val_accuracy": -1.0, "epoch": 0}
    history: dict[str, list] = {}
    if resume:
        state = json.loads(state_path.read_text())
        initial_epoch, best, history = state["epoch"], state["best"], state["history"]
        model = keras.models.load_model(ckpt_dir / "last.keras")
    else:
        model = zoo.get(config.model, input_shape=(*frontend.feature_shape, 1),
                        num_classes=len(names), **config.model_kwargs)
        model.compile(
            optimizer=keras.optimizers.SGD(config.learning_rate, momentum=config.momentum),
            loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    from tinyspeech_tf.features import model_features

    def epoch_data(epoch: int):
        """Exactly the batches of ``epoch`` (a function of seed and epoch only), so a resumed
        run sees what an uninterrupted one would have seen."""
        ds = make_dataset(train_split, batch_size=config.batch_size, training=True,
                          background_noise=source.background_noise, seed=config.seed,
                          epoch=epoch, epochs=1)
        return ds.take(steps).map(lambda x, y: (model_features(x, frontend), y))

    class EpochState(keras.callbacks.Callback):
        """Saves model + optimizer and the loop state after every epoch, and the best model."""

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            for key, value in logs.items():
                history.setdefault(key, []).append(float(value))
            if logs.get("val_accuracy", -1.0) > best["val_accuracy"]:
                best.update(val_accuracy=float(logs["val_accuracy"]), epoch=epoch + 1)
                self.model.save(ckpt_dir / "best.keras")
            self.model.save(ckpt_dir / "last.keras")
            _write_atomic(state_path, json.dumps(
                {"epoch": epoch + 1, "best": best, "history": history}))

    started = time.time()
    callbacks = [EpochState(), keras.callbacks.TensorBoard(os.fspath(out / "logs"))]
    for epoch in range(initial_epoch, config.epochs):
        model.fit(epoch_data(epoch), epochs=epoch + 1, initial_epoch=epoch,
                  validation_data=(val_x, val_y), verbose=verbose, callbacks=callbacks)
    train_seconds = time.time() - started

    model = keras.models.load_model(ckpt_dir / "best.keras")
    float_val = model.evaluate(val_x, val_y, verbose=0, return_dict=True)
    float_pred = model.predict(val_x, verbose=0).argmax(axis=1)

    rng = np.random.default_rng(config.seed)
    calib_idx = rng.choice(len(train_split), min(config.calibration_examples,
                                                 len(train_split)), replace=False)
    calib = features_of(train_split.waveforms[calib_idx], frontend)
    tflite_bytes = quantize.convert_int8(model, calib)
    int8_report = evaluate_int8(tflite_bytes, val_x, val_y, names)
    float_report = _accuracy_report(val_y, float_pred, names)

    metrics = {
        "model": config.model,
        "data": config.data,
        "data_kind": source.kind,
        "synthetic": config.data == "synthetic",
        "labels": list(names),
        "epochs": config.epochs,
        "best_epoch": best["epoch"],
        "train_examples": len(train_split),
        "val_examples": len(val_split),
        "float": {"accuracy": float_report["accuracy"],
                  "loss": float(float_val["loss"]),
                  "per_class": float_report["per_class"]},
        "int8_tflm": {k: int8_report[k] for k in ("accuracy", "per_class", "confusion")},
        "params": int(model.count_params()),
        "macs": profile.total_macs(model),
        "tflite_bytes": len(tflite_bytes),
        "arena_bytes": tflm.arena_bytes(tflite_bytes),
        "ops": quantize.op_set(tflite_bytes),
        "train_seconds": round(train_seconds, 1),
    }

    model.save(out / ".model.tmp.keras")
    os.replace(out / ".model.tmp.keras", out / "model.keras")
    _write_atomic(out / "model_int8.tflite", tflite_bytes)
    write_labels(out / "labels.txt", names)
    _write_atomic(out / "frontend.json", frontend.to_json())
    _write_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    _plot_curves(history, out / "curves.png")
    what = "synthetic" if metrics["synthetic"] else source.kind
    _plot_confusion(int8_report["confusion"], names,
                    f"{config.model} int8 (TFLM), val ({what}): "
                    f"{int8_report['accuracy']:.1%}", out / "confusion_int8.png")
    _write_atomic(out / "MODEL_CARD.md", model_card(metrics))
    return metrics


def model_card(metrics: dict) -> str:
    """The run's model card, generated from its metrics (never typed by hand)."""
    data_line = ("**synthetic** keywords spoken by espeak-ng (see `tinyspeech dataset synth`); "
                 "accuracy on synthetic speech says little about real speech"
                 if metrics["synthetic"] else f"`{metrics['data']}` ({metrics['data_kind']})")
    rows = "\n".join(
        f"| {name} | {_pct(metrics['float']['per_class'][name])} "
        f"| {_pct(metrics['int8_tflm']['per_class'][name])} |" for name in metrics["labels"])
    float_acc = _pct(metrics["float"]["accuracy"])
    int8_acc = _pct(metrics["int8_tflm"]["accuracy"])
    return f"""# Model card: {metrics['model']}

Generated by `tinyspeech train` from this run's `metrics.json`.

- Data: {data_line}; {metrics['train_examples']} training and {metrics['val_examples']}
  validation examples, 12-class Speech Commands protocol, labels in `labels.txt`.
- Front-end: MLPerf Tiny KWS MFCC, 49 frames x 10 coefficients (`frontend.json`).
- Training: {metrics['epochs']} epochs, best validation epoch {metrics['best_epoch']}.
- Cost: {metrics['params']:,} parameters, {metrics['macs']:,} MACs, int8 .tflite
  {metrics['tflite_bytes']:,} bytes, TFLM arena {metrics['arena_bytes']:,} bytes
  (minimum measured in the TFLM Python interpreter).
- Ops: {', '.join(metrics['ops'])}.

| | float (Keras) | int8 (TFLM) |
|---|---:|---:|
| validation accuracy | {float_acc} | {int8_acc} |

| class | float | int8 (TFLM) |
|---|---:|---:|
{rows}
"""


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--model", default=defaults.model, help="zoo model name")
    parser.add_argument("--data", default=defaults.data,
                        help="'synthetic' (offline default), 'tfds', or a dataset folder")
    parser.add_argument("--out", default=None, help="run directory (default runs/MODEL)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last completed epoch")


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(model=args.model, data=args.data,
                         out=args.out or f"runs/{args.model}", epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                         max_steps_per_epoch=args.max_steps_per_epoch)
    if config.epochs < 1 or config.batch_size < 1:
        raise UserError("--epochs and --batch-size must be at least 1")
    metrics = train(config, resume=args.resume)
    print(f"{config.out}: float {metrics['float']['accuracy']:.2%}, int8 (TFLM) "
          f"{metrics['int8_tflm']['accuracy']:.2%} on {metrics['val_examples']} validation "
          f"examples; {metrics['tflite_bytes']} bytes, arena {metrics['arena_bytes']} bytes")
    return 0
