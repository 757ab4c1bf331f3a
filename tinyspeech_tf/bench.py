"""``tinyspeech bench``: the zoo against peer int8 keyword spotters, measured in one process.

For every zoo model a finished run directory is used (``--runs`` first, then
``runs/real/<name>``, then for TinySpeech-M ``runs/ablation/tinyspeech_m_residual``) or, unless
``--no-train``, one is trained with the real-data recipe. Each run and each peer model in
``../shared/models`` is then measured with the same code: int8 accuracy in the TFLM
interpreter on the validation split (``train.evaluate_int8``), .tflite bytes, minimum TFLM
arena, and host TFLM latency with all models interleaved round-robin (one invoke of each model
per round, in a fresh random order every round, many rounds) on one fixed random int8 input,
each model in its own interpreter. Ratios are taken against the MLPerf Tiny KWS reference
DS-CNN measured in the same run.

Writes ``bench/results.json``, ``bench/results.md`` (with TinySpeech-M's flatbuffer and arena
composition), ``bench/accuracy_vs_size.png``, and replaces the block between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md with the results table, so the
README's numbers are always generated, never typed. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.flatbuffer import composition, flatbuffer_params, parse_flatbuffer
from tinyspeech_tf.io import write_atomic as _write_atomic

REFERENCE = "mlperf_tiny_kws_ref"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
REAL_SUBDIR = ("data", "speech_commands_v0.02_real")
# Finished runs reused before training, after the user's --runs (relative to --runs-root).
FALLBACK_RUNS = {"tinyspeech_m": ["ablation/tinyspeech_m_residual"]}

_MLPERF_ORDER = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                 "silence", "unknown")


@dataclass(frozen=True)
class Peer:
    """A peer int8 model in ../shared/models and what is known about it."""

    name: str
    file: str
    what: str
    labels: tuple[str, ...] | None  # output order; None: accuracy not comparable
    labels_doc: str = ""
    float_file: str | None = None
    not_comparable: str = ""  # why accuracy is not measured (when labels is None)
    # A variant of our front-end closer to the model's own, scored as an extra number.
    alt_frontend: dict = field(default_factory=dict)
    alt_note: str = ""


PEERS = (
    Peer(REFERENCE, "mlperf_tiny_kws_ref_int8.tflite",
         "MLPerf Tiny KWS reference DS-CNN (mlcommons/tiny)", _MLPERF_ORDER,
         "../shared/README.md", float_file="mlperf_tiny_kws_ref_float32.tflite"),
    Peer("arm_micronet_m", "arm_micronet_m_int8.tflite",
         "ARM MicroNet-M KWS (ARM-software/ML-examples)", _MLPERF_ORDER,
         "../shared/README.md (no label metadata in the .tflite)",
         alt_frontend={"frame_length": 640, "fft_length": 1024},
         alt_note="trained on 40 ms-window MFCC; int8 acc is on our 30 ms MLPerf front-end "
                  "like every row"),
    Peer("micro_speech", "micro_speech_int8.tflite",
         "TFLM micro_speech (tensorflow/tflite-micro)", None,
         not_comparable="different front-end (49x40 TFLM micro_frontend features, 1960 int8 "
                        "inputs) and 4 classes (silence, unknown, yes, no): its accuracy is "
                        "not comparable with 12-class 49x10-MFCC models"),
)


# ----------------------------------------------------------------------------- arguments

def _default_shared(*parts: str) -> str:
    from tinyspeech_tf.data.sources import shared_dir

    return os.path.relpath(shared_dir().joinpath(*parts))


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
    parser.add_argument("--no-train", action="store_true",
                        help="only use existing runs; list the models without one")
    from tinyspeech_tf import recipes

    parser.add_argument("--recipe", default="real", choices=recipes.names(),
                        help="training recipe when a model has to be trained (default real; "
                             "see tinyspeech_tf/recipes.py)")
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


# ----------------------------------------------------------------------------- small helpers


def _rel(path: str | os.PathLike) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------- runs

def is_finished(run: Path) -> bool:
    """A run directory `tinyspeech train` has finished: the int8 model and its labels."""
    return (run / "model_int8.tflite").is_file() and (run / "labels.txt").is_file()


def _run_model(run: Path) -> str | None:
    return (_read_json(run / "config.json").get("model")
            or _read_json(run / "metrics.json").get("model"))


def candidates(name: str, user_dirs: list[str], runs_root: str) -> list[Path]:
    """Where a finished run of ``name`` is looked for, in order."""
    found = []
    for d in user_dirs:
        d = Path(d)
        found += [d, d / name] if (d / "model_int8.tflite").exists() else [d / name]
    found.append(Path(runs_root) / "real" / name)
    found += [Path(runs_root) / p for p in FALLBACK_RUNS.get(name, [])]
    return found


def find_run(name: str, user_dirs: list[str], runs_root: str) -> tuple[Path | None, list[Path]]:
    """The first finished run of model ``name`` and every place searched."""
    searched = candidates(name, user_dirs, runs_root)
    for run in searched:
        if is_finished(run) and _run_model(run) in (name, None):
            return run, searched
    return None, searched


def train_run(name: str, args: argparse.Namespace) -> Path:
    """Train ``name`` with the real-data recipe into <runs-root>/real/<name> (resuming)."""
    from tinyspeech_tf import recipes
    from tinyspeech_tf.train import TrainConfig, train

    out = Path(args.runs_root) / "real" / name
    fields = recipes.get(args.recipe)
    config = TrainConfig(model=name, data=args.data, out=str(out), **fields)
    resume = (out / "checkpoints" / "state.json").exists()
    _log(f"{name}: training {'(resuming) ' if resume else ''}with the {args.recipe} recipe "
         f"({recipes.describe(fields)}), data {args.data} -> {out}")
    started = time.time()
    train(config, resume=resume, verbose=2)
    _log(f"{name}: trained in {(time.time() - started) / 60:.1f} min")
    return out


# ----------------------------------------------------------------------------- flatbuffer

def activation_peak(tflite_bytes: bytes) -> dict:
    """Activation memory along the op order: which tensors are live at the peak.

    A non-constant tensor is live from the op that produces it (the graph input: from the
    start) to the last op that reads it (a graph output: to the end). The peak sum is the
    lower bound any memory plan needs for the arena head; ``greedy_plan_bytes`` is the
    first-fit-decreasing plan of the same lifetimes (TFLM's algorithm), which can exceed the
    bound by fragmentation and alignment.
    """
    fb = parse_flatbuffer(tflite_bytes)
    n_ops = len(fb["ops"])
    first: dict[int, int] = {i: -1 for i in fb["inputs"]}
    last: dict[int, int] = {}
    producer: dict[int, int] = {}
    for k, op in enumerate(fb["ops"]):
        for i in op["inputs"]:
            if i >= 0:
                last[i] = k
        for o in op["outputs"]:
            first.setdefault(o, k)
            producer[o] = k
    for o in fb["outputs"]:
        last[o] = n_ops
    acts = [t for t in fb["tensors"]
            if not t["constant"] and not t["variable"] and t["index"] in first]
    per_op = []
    for k in range(n_ops):
        live = [t for t in acts if first[t["index"]] <= k <= last.get(t["index"], k)]
        per_op.append((sum(t["bytes"] for t in live), live))
    peak_k = int(np.argmax([b for b, _ in per_op]))
    peak_bytes, live = per_op[peak_k]
    op = fb["ops"][peak_k]

    def role(t: dict) -> str:
        i = t["index"]
        if i in op["outputs"]:
            return "output of the peak op"
        if i in op["inputs"]:
            return "input of the peak op"
        if i in fb["inputs"]:
            return "graph input (kept for the whole invoke)"
        return f"held for op {last[i]} ({fb['ops'][last[i]]['op']})" if last[i] < n_ops \
            else "graph output"

    return {
        "peak_bytes": int(peak_bytes), "peak_op_index": peak_k, "peak_op": op["op"],
        "greedy_plan_bytes": greedy_plan(
            [(t["bytes"], max(first[t["index"]], 0), min(last.get(t["index"], n_ops), n_ops - 1))
             for t in acts]),
        "live": [{"tensor": t["index"], "shape": t["shape"], "type": t["type"],
                  "bytes": t["bytes"],
                  "produced_by": ("graph input" if t["index"] in fb["inputs"] else
                                  f"op {producer[t['index']]} "
                                  f"({fb['ops'][producer[t['index']]]['op']})"),
                  "role": role(t)} for t in sorted(live, key=lambda t: -t["bytes"])],
        "largest_activation_bytes": max((t["bytes"] for t in acts), default=0),
    }


def greedy_plan(buffers: list[tuple[int, int, int]], align: int = 16) -> int:
    """Arena head of a first-fit-decreasing plan of (bytes, first op, last op) buffers.

    The algorithm of TFLM's GreedyMemoryPlanner (largest buffer first, each at the lowest
    offset clear of every placed buffer alive at the same time, sizes rounded up to 16 bytes);
    ties are taken in tensor order, which TFLM's sort need not follow.
    """
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    for size, first, last in sorted(((-(-b // align) * align, f, la) for b, f, la in buffers),
                                    key=lambda x: -x[0]):
        offset = 0
        for o, sz, _, _ in sorted(p for p in placed if not (p[3] < first or p[2] > last)):
            if offset + size <= o:
                break
            offset = max(offset, o + sz)
        placed.append((offset, size, first, last))
    return max((o + sz for o, sz, _, _ in placed), default=0)


def parse_allocation_report(report: str) -> dict:
    """TFLM's RecordingMicroAllocator lines -> total/head/tail and the tail's named parts."""
    out: dict[str, Any] = {"parts": []}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", report)
        out[key] = int(m.group(1)) if m else None
    for m in re.finditer(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested "
                         r"(\d+) bytes for (\d+) ([^)]*)\)", report):
        out["parts"].append({"what": m.group(1), "used": int(m.group(2)),
                             "requested": int(m.group(3)), "count": int(m.group(4))})
    if out["tail"] is not None:
        out["tail_other"] = out["tail"] - sum(p["used"] for p in out["parts"])
    return out


def arena_breakdown(tflite_bytes: bytes, arena: int) -> dict:
    """Arena head (planned activations) vs tail (persistent bookkeeping), with the peak."""
    from tinyspeech_tf import tflm

    parts = parse_allocation_report(tflm.allocation_report(tflite_bytes, arena))
    parts["activation_peak"] = activation_peak(tflite_bytes)
    return parts


# ----------------------------------------------------------------------------- latency

def interleaved_latency(interpreters: dict[str, Any], inputs: dict[str, np.ndarray],
                        rounds: int, warmup: int = 10, seed: int = 0,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Host latency of each model, the models interleaved round-robin.

    Every round invokes each model exactly once, in a fresh random order (so no model always
    runs right after the same neighbour); ``warmup`` untimed rounds come first. The input is
    set before every invoke, outside the timed region (TFLM may reuse the input tensor's
    memory for later activations). Returns per model the median and p90 in microseconds and
    the number of timed invokes.
    """
    if rounds < 1:
        raise UserError("--rounds must be at least 1")
    names = list(interpreters)
    times: dict[str, list[int]] = {n: [] for n in names}
    rng = np.random.default_rng(seed)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(warmup + rounds):
            for i in rng.permutation(len(names)):
                name = names[i]
                interp = interpreters[name]
                interp.set_input(inputs[name], 0)
                t0 = time.perf_counter_ns()
                interp.invoke()
                elapsed = time.perf_counter_ns() - t0
                if r >= warmup:
                    times[name].append(elapsed)
            if progress is not None and r >= warmup:
                progress(r - warmup + 1, rounds)
    finally:
        if enabled:
            gc.enable()
    return {n: {"median_us": float(np.median(t)) / 1000.0,
                "p90_us": float(np.percentile(t, 90)) / 1000.0,
                "invokes": len(t)} for n, t in times.items()}


def random_input(tflite_bytes: bytes, seed: int) -> np.ndarray:
    """A fixed random int8 input of the model's input shape."""
    from tinyspeech_tf import quantize

    shape = quantize.io_quantization(tflite_bytes)["input_shape"]
    return np.random.default_rng(seed).integers(-128, 128, size=shape, dtype=np.int8)


# ----------------------------------------------------------------------------- accuracy

class ValSet:
    """The validation split, loaded once; features cached per front-end config."""

    def __init__(self, data: str):
        from tinyspeech_tf import data as data_mod

        self.data = data
        self.split = data_mod.load(data, splits=("validation",)).split("validation")
        self._features: dict[str, np.ndarray] = {}

    def features(self, frontend) -> np.ndarray:
        from tinyspeech_tf.train import features_of

        key = frontend.digest()
        if key not in self._features:
            self._features[key] = features_of(self.split.waveforms, frontend)
        return self._features[key]

    def labels_for(self, names: tuple[str, ...]) -> np.ndarray:
        from tinyspeech_tf import data as data_mod

        return data_mod.remap_labels(self.split, names).labels


def int8_accuracy(tflite_bytes: bytes, val: ValSet, names: tuple[str, ...],
                  frontend) -> tuple[float | None, str]:
    """(accuracy, "") or (None, why not): the one code path every model is scored with."""
    from tinyspeech_tf import quantize
    from tinyspeech_tf.data.protocol import canonical_label
    from tinyspeech_tf.train import evaluate_int8

    io = quantize.io_quantization(tflite_bytes)
    expected = [1, *frontend.feature_shape, 1]
    if io["input_shape"] != expected:
        return None, f"input {io['input_shape']} is not {expected} (49x10 MFCC)"
    names = tuple(canonical_label(n) for n in names)
    if len(names) != io["output_shape"][-1]:
        return None, f"{io['output_shape'][-1]} outputs but {len(names)} labels known"
    report = evaluate_int8(tflite_bytes, val.features(frontend), val.labels_for(names), names)
    return report["accuracy"], ""


def float_tflite_accuracy(path: Path, val: ValSet, names: tuple[str, ...]) -> float:
    """Accuracy of a float32 .tflite (tf.lite interpreter) on the validation features."""
    import warnings

    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.data.protocol import canonical_label
    from tinyspeech_tf.features import DEFAULT_CONFIG

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    feats = val.features(DEFAULT_CONFIG)
    labels = val.labels_for(tuple(canonical_label(n) for n in names))
    preds = []
    for x in feats:
        interp.set_tensor(inp, x[None].astype(np.float32))
        interp.invoke()
        preds.append(int(np.argmax(interp.get_tensor(out))))
    return float(np.mean(np.array(preds) == labels))


# ----------------------------------------------------------------------------- measuring

def _zoo_cost(name: str, kwargs: dict, num_classes: int, frontend,
              spec: dict | None = None) -> tuple[int, int]:
    """Params and MACs of a zoo model with ``kwargs``, or of an architecture ``spec``."""
    from tinyspeech_tf import profile, zoo

    shape = (*frontend.feature_shape, 1)
    model = (zoo.from_spec(spec, input_shape=shape, num_classes=num_classes) if spec
             else zoo.get(name, input_shape=shape, num_classes=num_classes, **kwargs))
    return int(model.count_params()), int(profile.total_macs(model))


def probe_architecture(name: str) -> tuple[dict, bytes]:
    """Costs of a zoo model without a run, as a trained model of it ships them and as
    ``tinyspeech zoo`` reports them (:func:`tinyspeech_tf.cost.measure_zoo`)."""
    from tinyspeech_tf import cost

    return cost.measure_zoo(name)


def measure_zoo_run(name: str, run: Path, val: ValSet) -> tuple[dict, bytes]:
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    tflite = (run / "model_int8.tflite").read_bytes()
    labels = data_mod.read_labels(run / "labels.txt")
    config = _read_json(run / "config.json")
    metrics = _read_json(run / "metrics.json")
    fe_path = run / "frontend.json"
    frontend = FrontendConfig.from_json(fe_path.read_text()) if fe_path.exists() \
        else DEFAULT_CONFIG
    kwargs = config.get("model_kwargs") or metrics.get("model_kwargs") or {}
    params, macs = _zoo_cost(name, kwargs, len(labels), frontend, config.get("spec"))
    acc, why = int8_accuracy(tflite, val, labels, frontend)
    run_data = config.get("data")
    same_data = run_data is not None and os.path.realpath(run_data) == os.path.realpath(val.data)
    entry = {
        "name": name, "kind": "zoo", "status": "measured", "source": _rel(run),
        "model_kwargs": kwargs, "run_data": run_data, "run_data_is_bench_data": same_data,
        "epochs": metrics.get("epochs", config.get("epochs")),
        "qat_epochs": metrics.get("qat_epochs", config.get("qat_epochs")),
        "float_accuracy": (metrics.get("float") or {}).get("accuracy"),
        "qat_accuracy": (metrics.get("qat") or {}).get("accuracy"),
        "int8_accuracy_at_training": (metrics.get("int8_tflm") or {}).get("accuracy"),
        "int8_accuracy": acc, "int8_accuracy_note": why,
        "params": params, "macs": macs, "flatbuffer_params": flatbuffer_params(tflite),
        "tflite_bytes": len(tflite), "arena_bytes": tflm.arena_bytes(tflite),
        "ops": quantize.op_set(tflite),
        "input_shape": quantize.io_quantization(tflite)["input_shape"],
        "labels": list(labels),
    }
    return entry, tflite


def variant_runs(folder: str | os.PathLike) -> list[Path]:
    """Finished runs directly under ``folder`` (sorted by name); none if it does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_finished(p))


def measure_variant(run: Path, val: ValSet) -> tuple[dict, bytes]:
    """A variant run (zoo model with options, or pruned): measured like the zoo rows."""
    config = _read_json(run / "config.json")
    entry, tflite = measure_zoo_run(config.get("model", "tinyspeech_m"), run, val)
    entry.update(name=run.name, kind="variant", base_model=config.get("model"),
                 prune=config.get("prune") or 0.0, spec=config.get("spec"),
                 cluster_bits=config.get("cluster_bits") or 0)
    return entry, tflite


def compressed_runs(run: Path) -> list[Path]:
    """``tinyspeech compress`` reports in a run whose compressed model is present."""
    return [p for p in sorted(run.glob("compression_lut*.json"))
            if (run / _read_json(p)["files"]["compressed"]).is_file()]


def measure_compressed(base: dict, run: Path, report_path: Path,
                       val: ValSet) -> tuple[dict, bytes]:
    """The LUT-compressed model of a measured run, scored in TFLM like every row."""
    from tinyspeech_tf import data as data_mod
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    report = _read_json(report_path)
    path = run / report["files"]["compressed"]
    tflite = path.read_bytes()
    labels = data_mod.read_labels(run / "labels.txt")
    fe_path = run / "frontend.json"
    frontend = FrontendConfig.from_json(fe_path.read_text()) if fe_path.exists() \
        else DEFAULT_CONFIG
    acc, why = int8_accuracy(tflite, val, labels, frontend)
    entry = {
        "name": f"{base['name']}+lut{report['bits']}", "kind": "variant",
        "status": "measured", "source": _rel(path), "base": base["name"],
        "model_kwargs": base.get("model_kwargs") or {}, "prune": base.get("prune") or 0.0,
        "spec": base.get("spec"), "cluster_bits": base.get("cluster_bits") or 0,
        "compression": {"bits": report["bits"],
                        "filters": len(report["compressed_tensors"]),
                        "report": _rel(report_path)},
        "run_data": base.get("run_data"),
        "run_data_is_bench_data": base.get("run_data_is_bench_data"),
        "epochs": base.get("epochs"), "qat_epochs": base.get("qat_epochs"),
        "float_accuracy": None, "int8_accuracy": acc, "int8_accuracy_note": why,
        "params": base.get("params"), "macs": base.get("macs"),
        "tflite_bytes": len(tflite), "arena_bytes": tflm.arena_bytes(tflite),
        "ops": quantize.op_set(tflite),
        "input_shape": quantize.io_quantization(tflite)["input_shape"],
        "labels": list(labels),
    }
    return entry, tflite


def measure_peer(peer: Peer, path: Path, val: ValSet) -> tuple[dict, bytes]:
    from tinyspeech_tf import quantize, tflm
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    tflite = path.read_bytes()
    entry: dict[str, Any] = {
        "name": peer.name, "kind": "peer", "status": "measured", "source": _rel(path),
        "what": peer.what, "labels": list(peer.labels) if peer.labels else None,
        "labels_doc": peer.labels_doc, "float_accuracy": None, "int8_accuracy": None,
        "int8_accuracy_note": peer.not_comparable, "params": flatbuffer_params(tflite),
        "params_note": "weights + biases in the flatbuffer (batch norm folded)", "macs": None,
        "tflite_bytes": len(tflite), "arena_bytes": tflm.arena_bytes(tflite),
        "ops": quantize.op_set(tflite),
        "input_shape": quantize.io_quantization(tflite)["input_shape"],
    }
    if peer.labels is not None:
        acc, why = int8_accuracy(tflite, val, peer.labels, DEFAULT_CONFIG)
        entry.update(int8_accuracy=acc, int8_accuracy_note=why)
        if acc is not None and peer.alt_frontend:
            alt = FrontendConfig(**peer.alt_frontend)
            alt_acc, _ = int8_accuracy(tflite, val, peer.labels, alt)
            entry["int8_accuracy_alt_frontend"] = {"frontend": peer.alt_frontend,
                                                   "accuracy": alt_acc, "note": peer.alt_note}
        if peer.float_file and (path.parent / peer.float_file).is_file():
            entry["float_accuracy"] = float_tflite_accuracy(path.parent / peer.float_file, val,
                                                            peer.labels)
            entry["float_source"] = _rel(path.parent / peer.float_file)
    return entry, tflite


def frontend_speed(waveforms: np.ndarray) -> dict:
    """Python (batched TF) clips/s and host C us/frame, by tinyspeech_tf.frontend_bench."""
    from tinyspeech_tf import frontend_c
    from tinyspeech_tf.audio import to_int16
    from tinyspeech_tf.frontend_bench import python_clips_per_second

    out: dict[str, Any] = {"clips": int(len(waveforms)),
                           "python_clips_per_second": python_clips_per_second(waveforms)}
    try:
        with tempfile.TemporaryDirectory(prefix="tinyspeech-bench-fe-") as tmp:
            lib, _ = frontend_c.build_host_library(Path(tmp))
            host = frontend_c.HostFrontend(lib)
            out["c_us_per_frame"] = host.us_per_frame(to_int16(waveforms[0]))
    except (OSError, RuntimeError) as err:
        out["c_us_per_frame"] = None
        out["c_note"] = f"not measured: {str(err).splitlines()[0][:160]}"
    return out


def machine_info() -> dict:
    import importlib.metadata as md

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {"cpu": cpu or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": version("tensorflow"), "tflite_micro": version("tflite_micro")
            or version("tflite-micro"), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def add_ratios(entries: list[dict], reference: str = REFERENCE) -> None:
    """ratios[bytes|arena|latency] = entry / reference, measured rows only (None if absent)."""
    ref = next((e for e in entries if e["name"] == reference and e["status"] == "measured"),
               None)
    for e in entries:
        if e["status"] != "measured" or ref is None:
            e["ratios"] = None
            continue
        lat, ref_lat = (e.get("latency") or {}).get("median_us"), \
            (ref.get("latency") or {}).get("median_us")
        e["ratios"] = {"bytes": e["tflite_bytes"] / ref["tflite_bytes"],
                       "arena": e["arena_bytes"] / ref["arena_bytes"],
                       "latency": lat / ref_lat if lat and ref_lat else None}


def _selected(args: argparse.Namespace) -> list[str]:
    from tinyspeech_tf import zoo

    if not args.models:
        return zoo.names()
    chosen = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in zoo.names()]
    if unknown:
        raise UserError(f"--models: unknown model {unknown[0]!r}; choose from "
                        f"{', '.join(zoo.names())}")
    return chosen


def measure(args: argparse.Namespace) -> dict:
    """Everything in results.json."""
    from tinyspeech_tf import tflm, zoo

    selected = _selected(args)
    _log(f"validation set: {args.data}")
    val = ValSet(args.data)
    _log(f"{len(val.split)} validation clips")
    entries: list[dict] = []
    measured_runs: list[tuple[dict, Path]] = []
    tflites: dict[str, bytes] = {}
    probes: dict[str, bytes] = {}
    for name in zoo.names():
        if name not in selected:
            entries.append({"name": name, "kind": "zoo", "status": "not run",
                            "reason": "not selected (--models)"})
            continue
        run, searched = find_run(name, args.runs, args.runs_root)
        if run is None and not args.no_train:
            run = train_run(name, args)
        if run is None:
            where = ", ".join(_rel(p) for p in searched)
            _log(f"{name}: MISSING: no finished run in {where} (--no-train)")
            entries.append({"name": name, "kind": "zoo", "status": "not run",
                            "reason": f"no finished run (searched {where}; --no-train)",
                            "searched": [_rel(p) for p in searched]})
            continue
        _log(f"{name}: measuring run {_rel(run)}")
        entry, tflite = measure_zoo_run(name, run, val)
        measured_runs.append((entry, run))
        entries.append(entry)
        tflites[name] = tflite
        _log(f"{name}: int8 {_pct(entry['int8_accuracy'])}, {entry['tflite_bytes']:,} B, "
             f"arena {entry['arena_bytes']:,} B")
    runs_of = {e["name"]: run_path for e, run_path in measured_runs}
    for run in variant_runs(args.variants):
        _log(f"variant {run.name}: measuring run {_rel(run)}")
        entry, tflite = measure_variant(run, val)
        entries.append(entry)
        tflites[entry["name"]] = tflite
        runs_of[entry["name"]] = run
    for base in [e for e in entries if e["status"] == "measured"
                 and (e["kind"] == "variant" or e["name"] == "tinyspeech_m")]:
        for report_path in compressed_runs(runs_of[base["name"]]):
            entry, tflite = measure_compressed(base, runs_of[base["name"]], report_path, val)
            _log(f"variant {entry['name']}: int8 {_pct(entry['int8_accuracy'])}, "
                 f"{entry['tflite_bytes']:,} B, arena {entry['arena_bytes']:,} B")
            entries.append(entry)
            tflites[entry["name"]] = tflite
    for entry in entries:
        if entry["status"] != "measured" and not args.no_probe:
            _log(f"{entry['name']}: sizing the untrained architecture (no run to measure)")
            entry["architecture"], probes[entry["name"]] = probe_architecture(entry["name"])
    peers_dir = Path(args.peers)
    for peer in PEERS:
        path = peers_dir / peer.file
        if not path.is_file():
            _log(f"{peer.name}: MISSING peer file {_rel(path)}")
            entries.append({"name": peer.name, "kind": "peer", "status": "missing",
                            "reason": f"no file {_rel(path)}", "what": peer.what})
            continue
        _log(f"{peer.name}: measuring {_rel(path)}")
        entry, tflite = measure_peer(peer, path, val)
        entries.append(entry)
        tflites[peer.name] = tflite
        _log(f"{peer.name}: int8 {_pct(entry['int8_accuracy'])}, {entry['tflite_bytes']:,} B, "
             f"arena {entry['arena_bytes']:,} B")

    step = max(1, args.rounds // 4)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            _log(f"latency: round {done}/{total}")

    _log(f"latency: {len(tflites)} models interleaved, {args.warmup} warm-up + {args.rounds} "
         "rounds")
    by_name = {e["name"]: e for e in entries}
    interps = {n: tflm.interpreter(b, by_name[n]["arena_bytes"]) for n, b in tflites.items()}
    inputs = {n: random_input(b, args.seed) for n, b in tflites.items()}
    latency = interleaved_latency(interps, inputs, args.rounds, args.warmup, args.seed, progress)
    del interps
    for name, lat in latency.items():
        by_name[name]["latency"] = lat
    add_ratios(entries)
    for name, b in tflites.items():  # head/tail of every measured model, and its plan check
        e = by_name[name]
        report = parse_allocation_report(tflm.allocation_report(b, e["arena_bytes"]))
        peak = activation_peak(b)
        e["arena_parts"] = {"head": report["head"], "tail": report["tail"],
                            "activation_lower_bound": peak["peak_bytes"],
                            "greedy_plan_simulated": peak["greedy_plan_bytes"]}

    compositions = {}
    m_bytes = tflites.get("tinyspeech_m") or probes.get("tinyspeech_m")
    if m_bytes is not None:
        e = by_name["tinyspeech_m"]
        arena = e["arena_bytes"] if e["status"] == "measured" else e["architecture"]["arena_bytes"]
        compositions["tinyspeech_m"] = {
            "source": e.get("source") or "untrained architecture (no run)",
            "flatbuffer": composition(m_bytes), "arena": arena_breakdown(m_bytes, arena)}

    frontend = None
    if not args.no_frontend:
        _log("front-end: Python clips/s and C us/frame")
        frontend = frontend_speed(val.split.waveforms)

    from tinyspeech_tf.zoo import PAPER

    return {
        "generated_by": "tinyspeech bench",
        "machine": machine_info(),
        "data": args.data, "val_examples": len(val.split),
        "settings": {"rounds": args.rounds, "warmup": args.warmup, "seed": args.seed,
                     "train_recipe": args.recipe,
                     "no_train": bool(args.no_train)},
        "reference": REFERENCE,
        "models": entries,
        "paper": PAPER,
        "frontend": frontend,
        "composition": compositions,
    }


# ----------------------------------------------------------------------------- reporting

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


HEADER = ("| model | source | float acc | int8 acc (TFLM) | params | MACs | .tflite bytes "
          "| arena bytes | latency µs median (p90) | bytes × ref | arena × ref | latency × ref |")


def table(results: dict) -> str:
    """The results table with its notes (what README's bench block holds)."""
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"<sup>{notes.index(text) + 1}</sup>"

    lines = [HEADER, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in results["models"]:
        name = f"**{e['name']}**" if e["name"] == results["reference"] else e["name"]
        if e["status"] != "measured":
            arch = e.get("architecture")
            mark = note("not run: size of the architecture as a trained model of it "
                        "converts, measured like `tinyspeech zoo` (tinyspeech_tf.cost); "
                        "no accuracy or latency") if arch else ""
            lines.append(
                f"| {name} | {e['status']}: {e['reason']} | - | - "
                f"| {_int(arch and arch['params'])} | {_int(arch and arch['macs'])} "
                f"| {_int(arch and arch['tflite_bytes'])}{mark} "
                f"| {_int(arch and arch['arena_bytes'])}{mark} | - | - | - | - |")
            continue
        if e["kind"] in ("zoo", "variant"):
            source = f"`{e['source']}` ({e['epochs']}+{e['qat_epochs']} QAT ep)"
            if e["kind"] == "variant":
                source += note(f"variant {e['name']}: {variant_options(e)}")
            fl = _pct(e["float_accuracy"])
            if e["float_accuracy"] is not None and e.get("run_data_is_bench_data") is not None:
                fl += note("float: the run's Keras model on its validation split, from its "
                           "metrics.json" + ("" if e["run_data_is_bench_data"] else
                                             f" (its data: `{e['run_data']}`)"))
            params = _int(e["params"]) + note("zoo params: Keras count_params (incl. batch "
                                              "norm, as the paper counts)")
        else:
            source = f"`{e['source']}`"
            fl = _pct(e["float_accuracy"])
            if e.get("float_source"):
                fl += note(f"float: `{e['float_source']}` in the tf.lite interpreter, same "
                           "features")
            params = _int(e["params"]) + note(f"peer params: {e['params_note']}")
        acc = _pct(e["int8_accuracy"])
        at_training = e.get("int8_accuracy_at_training")
        if at_training is not None and e["int8_accuracy"] is not None \
                and abs(at_training - e["int8_accuracy"]) > 1e-9:
            acc += note(f"{e['name']}: its metrics.json records int8 {_pct(at_training)} "
                        "(scored on the run's own validation data)")
        if e["int8_accuracy"] is None and e["int8_accuracy_note"]:
            acc += note(f"{e['name']}: {e['int8_accuracy_note']}")
        alt = e.get("int8_accuracy_alt_frontend")
        if alt:
            fe = ", ".join(f"{k} {v}" for k, v in alt["frontend"].items())
            acc += note(f"{e['name']}: {alt['note']}; with our front-end at a 40 ms window "
                        f"({fe}) it scores {_pct(alt['accuracy'])}")
        lat = e.get("latency") or {}
        r = e.get("ratios") or {}
        lat_text = (f"{lat['median_us']:,.0f} ({lat['p90_us']:,.0f})" if lat else "-")
        lines.append(f"| {name} | {source} | {fl} | {acc} | {params} | {_int(e.get('macs'))} "
                     f"| {_int(e['tflite_bytes'])} | {_int(e['arena_bytes'])} | {lat_text} "
                     f"| {_ratio(r.get('bytes'))} | {_ratio(r.get('arena'))} "
                     f"| {_ratio(r.get('latency'))} |")
    paper_mark = note("paper Table 1 (Wong et al. 2020): its own training and Google Speech "
                      "Commands test set, 8-bit; not measured here and not directly comparable "
                      "with the rows above")
    for name, p in results["paper"].items():
        lines.append(f"| {name} (paper){paper_mark} | paper Table 1 | - | {_pct(p['accuracy'])} "
                     f"| {_int(p['params'])} | {_int(p['macs'])} | - | - | - | - | - | - |")
    s = results["settings"]
    out = ["\n".join(lines), "",
           f"int8 accuracy: every model scored by the same code (`train.evaluate_int8`, MLPerf "
           f"49×10 MFCC front-end, TFLM interpreter) on `{results['data']}` validation "
           f"({results['val_examples']} clips). Latency: host TFLM (Python binding, reference "
           f"kernels), {s['rounds']} invokes per model after {s['warmup']} warm-up rounds, "
           "models interleaved round-robin (one invoke each per round, random order within "
           "the round), one fixed random int8 input, each model in its own interpreter with "
           "its minimum arena. Arena: minimum TFLM arena on this 64-bit host (an upper bound "
           f"for 32-bit Cortex-M). Ratios: × **{results['reference']}** measured in this run.",
           ""]
    out += [f"{i}. {text}" for i, text in enumerate(notes, 1)]
    out += ["", frontend_line(results), "", machine_line(results)]
    return "\n".join(out)


def variant_options(e: dict) -> str:
    """What makes a variant row: zoo options, pruning, LUT compression."""
    spec = e.get("spec")
    kwargs = (spec or {}).get("kwargs") or e.get("model_kwargs") or {}
    parts = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
             for k, v in sorted(kwargs.items())]
    if spec:
        parts.insert(0, f"architecture spec {spec.get('name')} (builder {spec['builder']}, "
                        "e.g. found by `tinyspeech explore`)")
    if e.get("prune"):
        parts.append(f"magnitude pruning to {e['prune']:.0%} sparsity")
    if e.get("cluster_bits"):
        parts.append(f"big filters held on {2 ** e['cluster_bits']} learned values during QAT "
                     f"(--cluster-bits {e['cluster_bits']})")
    if e.get("compression"):
        c = e["compression"]
        parts.append(f"{c['filters']} filter(s) clustered to {2 ** c['bits']} values and "
                     f"TFLM LUT-compressed ({c['bits']}-bit indices, TFLM_DECODE ops; "
                     f"`{c['report']}`)")
    return "; ".join(parts) or "zoo defaults"


def frontend_line(results: dict) -> str:
    fe = results.get("frontend")
    if not fe:
        return "Front-end: not measured (--no-frontend)."
    c = (f"C {fe['c_us_per_frame']:.2f} µs/frame (host, -O2, best of 20)"
         if fe.get("c_us_per_frame") is not None else f"C {fe.get('c_note')}")
    return (f"Front-end (MLPerf MFCC, 49 frames per 1 s clip): Python (batched TF "
            f"`features.mfcc`) {fe['python_clips_per_second']:,.0f} clips/s over "
            f"{fe['clips']} clips (best of 5); {c}.")


def machine_line(results: dict) -> str:
    m = results["machine"]
    return (f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, TensorFlow "
            f"{m['tensorflow']}, tflite-micro {m['tflite_micro']}; {m['date']}.")


def _plan_check(results: dict) -> tuple[list[str], list[str]]:
    """Measured models whose TFLM head the greedy simulation reproduces, and the others."""
    same, other = [], []
    for e in results["models"]:
        parts = e.get("arena_parts")
        if parts:
            (same if parts["greedy_plan_simulated"] == parts["head"] else other).append(e["name"])
    return same, other


def composition_markdown(name: str, comp: dict, results: dict | None = None) -> str:
    fb, arena = comp["flatbuffer"], comp["arena"]
    total = fb["total_bytes"]
    rows = [("weights (int8 constant buffers)", fb["bytes"]["weights"],
             f"{fb['elements']['weights']:,} int8 values"),
            ("biases (int32 bias buffers)", fb["bytes"]["biases"],
             f"{fb['elements']['biases']:,} int32 values"),
            ("other constants (shapes, axes, sizes)", fb["bytes"]["other_constants"],
             f"{fb['elements']['other_constants']:,} values"),
            ("quantization parameters (scales, zero points)", fb["bytes"]["quantization"],
             f"{fb['quantized_tensors']} tensors, {fb['quant_channels']} scale/zero-point "
             "pairs (float32 + int64)"),
            ("rest: graph structure and metadata", fb["bytes"]["rest"],
             f"{fb['tensors']} tensors, {fb['operators']} operators, opcodes, vector "
             "prefixes, alignment")]
    lines = [f"## {name} composition", "", f"Source: `{comp['source']}`.", "",
             f"Flatbuffer: {total:,} bytes.", "", "| part | bytes | share | what |",
             "|---|---:|---:|---|"]
    lines += [f"| {p} | {b:,} | {100 * b / total:.1f}% | {w} |" for p, b, w in rows]
    peak = arena["activation_peak"]
    plan_check = ""
    if results is not None:
        same, other = _plan_check(results)
        plan_check = (f" Across this run the simulation equals TFLM's head for "
                      f"{', '.join(same) or 'no model'}"
                      + (f" and not for {', '.join(other)}." if other else "."))
    lines += ["", f"Arena: {_int(arena['total'])} bytes = head {_int(arena['head'])} "
              f"(planned activations, reused across ops) + tail {_int(arena['tail'])} "
              "(persistent bookkeeping), from TFLM's RecordingMicroAllocator.", "",
              "| tail part | bytes | count |", "|---|---:|---:|"]
    lines += [f"| {p['what']} | {p['used']:,} | {p['count']} |" for p in arena["parts"]]
    if arena.get("tail_other") is not None:
        lines.append(f"| other (allocator and subgraph structs, not itemised by TFLM) "
                     f"| {arena['tail_other']:,} | - |")
    lines += ["", f"Head: the activations live at the peak, op {peak['peak_op_index']} "
              f"({peak['peak_op']}), sum to {peak['peak_bytes']:,} bytes (liveness along the "
              "op order: a lower bound for any memory plan). A first-fit-decreasing plan of "
              "the same lifetimes with 16-byte alignment (the algorithm of TFLM's "
              "GreedyMemoryPlanner) needs "
              f"{peak['greedy_plan_bytes']:,} bytes; TFLM's head is {_int(arena['head'])} "
              "bytes" + (" (reproduced: the head holds only the planned activations)."
                         if peak["greedy_plan_bytes"] == arena["head"] else
                         " (the Python binding exposes neither TFLM's offsets nor its kernel "
                         "scratch buffers, so the difference is not itemised here).")
              + plan_check, "",
              "| tensor | shape | type | bytes | produced by | why live |",
              "|---:|---|---|---:|---|---|"]
    lines += [f"| {t['tensor']} | {'×'.join(map(str, t['shape']))} | {t['type']} "
              f"| {t['bytes']:,} | {t['produced_by']} | {t['role']} |" for t in peak["live"]]
    return "\n".join(lines)


def to_markdown(results: dict) -> str:
    parts = ["# Benchmark: TinySpeech zoo vs peer int8 keyword spotters", "",
             "Generated by `tinyspeech bench` (`make bench`); do not edit by hand.", "",
             table(results), "",
             "Plot: [accuracy_vs_size.png](accuracy_vs_size.png).", ""]
    for name, comp in results["composition"].items():
        parts += [composition_markdown(name, comp, results), ""]
    return "\n".join(parts)


def readme_block(results: dict, results_md: str) -> str:
    return (f"{table(results)}\n\nGenerated by `make bench` from "
            f"[`{results_md}`]({results_md}) (TinySpeech-M's flatbuffer and arena composition "
            "are there too); do not edit between the markers.")


def replace_block(text: str, block: str) -> str:
    """``text`` with everything strictly between the bench markers replaced by ``block``."""
    start = text.find(README_START)
    end = text.find(README_END)
    if start < 0 or end < 0 or end < start or text.count(README_START) != 1 \
            or text.count(README_END) != 1:
        raise UserError(f"README: needs exactly one {README_START} followed by one "
                        f"{README_END} (under '## Results'); add them or pass --no-readme")
    head = text[:start + len(README_START)]
    return f"{head}\n{block.strip()}\n{text[end:]}"


def plot(results: dict, path: Path) -> None:
    """Two panels: int8 accuracy vs .tflite bytes and vs arena bytes (log x)."""
    from tinyspeech_tf.train import _figure

    fig, axes = _figure((12, 6), cols=2)  # selects the Agg backend
    import matplotlib.ticker

    measured = [e for e in results["models"]
                if e["status"] == "measured" and e["int8_accuracy"] is not None]
    sizes = {}  # zoo name -> (bytes, arena, our int8 accuracy or None, size measured on)
    for e in results["models"]:
        if e["kind"] != "zoo":
            continue
        if e["status"] == "measured":
            sizes[e["name"]] = (e["tflite_bytes"], e["arena_bytes"], e["int8_accuracy"], "run")
        elif e.get("architecture"):
            a = e["architecture"]
            sizes[e["name"]] = (a["tflite_bytes"], a["arena_bytes"], None, "untrained")
    accs = [100 * e["int8_accuracy"] for e in measured]
    accs += [100 * p["accuracy"] for n, p in results["paper"].items() if n in sizes]
    for ax, key, col, label in ((axes[0], "tflite_bytes", 0, ".tflite bytes"),
                                (axes[1], "arena_bytes", 1, "minimum TFLM arena bytes")):
        for kind, marker, color, text in (
                ("zoo", "o", "tab:blue", "zoo models, our runs: int8 TFLM accuracy, measured"),
                ("peer", "s", "tab:red", "peer models: int8 TFLM accuracy, measured"),
                ("variant", "^", "tab:purple",
                 "variants (sharing, low rank, pruning, LUT compression): measured")):
            pts = [e for e in measured if e["kind"] == kind]
            if not pts:
                continue
            ax.scatter([e[key] for e in pts], [100 * e["int8_accuracy"] for e in pts],
                       marker=marker, color=color, s=50, zorder=3, label=text)
            for e in pts:  # zoo labels above the point, peers below: equal sizes stay legible
                ax.annotate(e["name"], (e[key], 100 * e["int8_accuracy"]),
                            textcoords="offset points", fontsize=8,
                            xytext=(6, -11) if kind == "peer" else (6, 5))
        first = True
        for name, p in results["paper"].items():
            if name not in sizes:
                continue
            x, ours, measured_on = sizes[name][col], sizes[name][2], sizes[name][3]
            ax.scatter([x], [100 * p["accuracy"]], marker="D", facecolors="none",
                       edgecolors="tab:green", s=60, zorder=3,
                       label=("paper Table 1 accuracy (its own training and test set; not "
                              "measured here),\nplaced at our measured size of the same "
                              "architecture (our run, or the untrained\narchitecture's int8 "
                              "conversion: size does not depend on training)")
                       if first else None)
            first = False
            ax.annotate(f"{name} paper" + (" (size: untrained arch.)"
                                           if measured_on == "untrained" else ""),
                        (x, 100 * p["accuracy"]), textcoords="offset points",
                        xytext=(6, -3), fontsize=7, color="tab:green")
            if ours is not None:
                ax.plot([x, x], [100 * ours, 100 * p["accuracy"]], ":", color="tab:green",
                        linewidth=1)
        ax.set_xscale("log")
        ax.margins(x=0.15)
        lo, hi = ax.get_xlim()
        ticks = [t for t in (2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6) if lo <= t <= hi]
        ax.set_xticks(ticks, [f"{t / 1000:g}k" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_ylabel("int8 accuracy (%)")
        ax.set_title(f"int8 accuracy vs {label}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if accs:
            ax.set_ylim(min(accs) - 2, max(accs) + 1.5)
    skipped = [e["name"] for e in results["models"]
               if e["status"] == "measured" and e["int8_accuracy"] is None]
    fig.suptitle(f"int8 accuracy measured on {results['data']} validation "
                 f"({results['val_examples']} clips), the same front-end and TFLM for every "
                 "model" + (f"\nnot plotted (accuracy not comparable): {', '.join(skipped)}"
                            if skipped else ""), fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fig.savefig(tmp, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    os.replace(tmp, path)


def write_outputs(results: dict, out: Path, readme: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    _write_atomic(out / "results.md", to_markdown(results))
    plot(results, out / "accuracy_vs_size.png")
    if readme is not None:
        md_rel = os.path.relpath(out / "results.md", readme.resolve().parent)
        text = readme.read_text()
        _write_atomic(readme, replace_block(text, readme_block(results, md_rel)))


def run(args: argparse.Namespace) -> int:
    args.data = args.data or _default_shared(*REAL_SUBDIR)
    args.peers = args.peers or _default_shared("models")
    readme = None if args.no_readme else Path(args.readme)
    if readme is not None:  # fail before an hour of measuring, not after
        if not readme.is_file():
            raise UserError(f"{readme}: no such README; pass --readme PATH or --no-readme")
        replace_block(readme.read_text(), "")
    if not os.path.exists(args.data):
        raise UserError(f"{args.data}: no such dataset folder; give --data")
    results = measure(args)
    out = Path(args.out)
    write_outputs(results, out, readme)
    print(table(results))
    missing = [e["name"] for e in results["models"] if e["status"] != "measured"]
    _log(f"wrote {out / 'results.json'}, {out / 'results.md'}, "
         f"{out / 'accuracy_vs_size.png'}" + ("" if readme is None else f", {readme}"))
    if missing:
        _log(f"not measured: {', '.join(missing)}")
    return 0


__all__ = ["add_arguments", "run", "measure", "interleaved_latency", "composition",
           "activation_peak", "replace_block", "add_ratios", "find_run"]
