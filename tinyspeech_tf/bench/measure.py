"""Measuring one model for ``tinyspeech bench``: accuracy, size, arena and host latency.

Every row (zoo run, variant, LUT-compressed model, peer) goes through the same functions here
and the one int8 scorer :func:`tinyspeech_tf.evaluate.int8_accuracy`, so the numbers in the
table differ only because the models do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tinyspeech_tf.bench._common import rel
from tinyspeech_tf.bench.peers import Peer
from tinyspeech_tf.evaluate import ValSet, int8_accuracy
from tinyspeech_tf.quantize.flatbuffer import flatbuffer_params
from tinyspeech_tf.runs import Run, read_json_object, read_run, read_tflite


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
    from tinyspeech_tf import zoo
    from tinyspeech_tf.zoo import profile

    shape = (*frontend.feature_shape, 1)
    model = (zoo.from_spec(spec, input_shape=shape, num_classes=num_classes) if spec
             else zoo.get(name, input_shape=shape, num_classes=num_classes, **kwargs))
    return int(model.count_params()), int(profile.total_macs(model))


def probe_architecture(name: str) -> tuple[dict, bytes]:
    """Costs of a zoo model without a run, as a trained model of it ships them and as
    ``tinyspeech zoo`` reports them (:func:`tinyspeech_tf.quantize.cost.measure_zoo`)."""
    from tinyspeech_tf.quantize import cost

    return cost.measure_zoo(name)


def _measure_run(name: str, run: Run, val: ValSet | None) -> tuple[dict, bytes]:

    tflite, labels, frontend = run.tflite, run.labels, run.frontend
    config, metrics = run.config or {}, run.metrics or {}
    kwargs = config.get("model_kwargs") or metrics.get("model_kwargs") or {}
    params, macs = _zoo_cost(name, kwargs, len(labels), frontend, config.get("spec"))
    acc, why = int8_accuracy(tflite, val, labels, frontend)
    run_data = config.get("data")
    same_data = (run_data is not None and val is not None
                 and os.path.realpath(run_data) == os.path.realpath(val.data))
    entry = {
        "name": name, "kind": "zoo", "status": "measured", "source": rel(run.path),
        "model_kwargs": kwargs, "run_data": run_data, "run_data_is_bench_data": same_data,
        "epochs": metrics.get("epochs", config.get("epochs")),
        "qat_epochs": metrics.get("qat_epochs", config.get("qat_epochs")),
        "float_accuracy": (metrics.get("float") or {}).get("accuracy"),
        "qat_accuracy": (metrics.get("qat") or {}).get("accuracy"),
        "int8_accuracy_at_training": (metrics.get("int8_tflm") or {}).get("accuracy"),
        "int8_accuracy": acc, "int8_accuracy_note": why,
        "params": params, "macs": macs, "flatbuffer_params": flatbuffer_params(tflite),
        **flatbuffer_facts(tflite), "labels": list(labels),
    }
    return entry, tflite


def flatbuffer_facts(tflite: bytes) -> dict:
    """What every row reads from its int8 flatbuffer: bytes, TFLM arena, estimated Cortex-M4
    CMSIS-NN instructions (:mod:`tinyspeech_tf.board_cost`), op set, input shape."""
    from tinyspeech_tf import board_cost, quantize, tflm

    return {"tflite_bytes": len(tflite), "arena_bytes": tflm.arena_bytes(tflite),
            "cmsis_nn_instructions": board_cost.estimate(tflite)["instructions"],
            "ops": quantize.op_set(tflite),
            "input_shape": quantize.io_quantization(tflite)["input_shape"]}


def measure_zoo_run(name: str, run: Path, val: ValSet | None) -> tuple[dict, bytes]:
    """A finished run of zoo model ``name``: its row and its int8 model."""
    return _measure_run(name, read_run(run), val)


def measure_variant(run: Path, val: ValSet | None) -> tuple[dict, bytes]:
    """A variant run (zoo model with options, or pruned): measured like the zoo rows."""
    model = read_run(run)
    config = model.config or {}
    entry, tflite = _measure_run(config.get("model", "tinyspeech_m"), model, val)
    entry.update(name=run.name, kind="variant", base_model=config.get("model"),
                 prune=config.get("prune") or 0.0, spec=config.get("spec"),
                 cluster_bits=config.get("cluster_bits") or 0)
    return entry, tflite


def measure_compressed(base: dict, run: Path, report_path: Path,
                       val: ValSet | None) -> tuple[dict, bytes]:
    """The LUT-compressed model of a measured run, scored in TFLM like every row."""

    report = read_json_object(report_path, required=True)
    path = run / report["files"]["compressed"]
    tflite = read_tflite(path)
    model = read_run(run)  # the compressed model keeps the run's labels and front-end
    labels = model.labels
    acc, why = int8_accuracy(tflite, val, labels, model.frontend)
    entry = {
        "name": f"{base['name']}+lut{report['bits']}", "kind": "variant",
        "status": "measured", "source": rel(path), "base": base["name"],
        "model_kwargs": base.get("model_kwargs") or {}, "prune": base.get("prune") or 0.0,
        "spec": base.get("spec"), "cluster_bits": base.get("cluster_bits") or 0,
        "compression": {"bits": report["bits"],
                        "filters": len(report["compressed_tensors"]),
                        "report": rel(report_path)},
        "run_data": base.get("run_data"),
        "run_data_is_bench_data": base.get("run_data_is_bench_data"),
        "epochs": base.get("epochs"), "qat_epochs": base.get("qat_epochs"),
        "float_accuracy": None, "int8_accuracy": acc, "int8_accuracy_note": why,
        "params": base.get("params"), "macs": base.get("macs"),
        **flatbuffer_facts(tflite), "labels": list(labels),
    }
    return entry, tflite


def measure_peer(peer: Peer, path: Path, val: ValSet | None) -> tuple[dict, bytes]:
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    tflite = read_tflite(path)
    entry: dict[str, Any] = {
        "name": peer.name, "kind": "peer", "status": "measured", "source": rel(path),
        "what": peer.what, "labels": list(peer.labels) if peer.labels else None,
        "labels_doc": peer.labels_doc, "float_accuracy": None, "int8_accuracy": None,
        "int8_accuracy_note": peer.not_comparable, "params": flatbuffer_params(tflite),
        "params_note": "weights + biases in the flatbuffer (batch norm folded)", "macs": None,
        **flatbuffer_facts(tflite),
    }
    if peer.labels is not None:
        acc, why = int8_accuracy(tflite, val, peer.labels, DEFAULT_CONFIG)
        entry.update(int8_accuracy=acc, int8_accuracy_note=why)
        if acc is not None and peer.alt_frontend:
            alt = FrontendConfig(**peer.alt_frontend)
            alt_acc, _ = int8_accuracy(tflite, val, peer.labels, alt)
            entry["int8_accuracy_alt_frontend"] = {"frontend": peer.alt_frontend,
                                                   "accuracy": alt_acc, "note": peer.alt_note}
        if val is not None and peer.float_file and (path.parent / peer.float_file).is_file():
            entry["float_accuracy"] = float_tflite_accuracy(path.parent / peer.float_file, val,
                                                            peer.labels)
            entry["float_source"] = rel(path.parent / peer.float_file)
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

