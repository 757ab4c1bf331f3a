"""``tinyspeech compress``'s library half: cluster a run's int8 filters, LUT-compress them
(:mod:`tinyspeech_tf.quantize.lut`), score every stage in TFLM and check the compressed model
computes exactly what its clustered source does, leaving the files and a report in the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.quantize.lut import cluster, lut_compress, worth_compressing, zero_fraction


def compress_run(run_dir: str | os.PathLike, bits: int, min_saving: int = 0,
                 data: str | None = None) -> dict:
    """Cluster, compress, score and check a run's int8 model; files land in the run. ``data``
    is the dataset scored (its validation split), default the run's own."""
    from tinyspeech_tf import tflm
    from tinyspeech_tf.evaluate import ValSet, int8_accuracy
    from tinyspeech_tf.features import quantize as quantize_features
    from tinyspeech_tf.io import write_atomic
    from tinyspeech_tf.quantize import io_quantization
    from tinyspeech_tf.runs import read_run

    run = read_run(run_dir)
    run_dir = Path(run_dir)
    if not 1 <= bits <= 7:
        raise UserError(f"--bits {bits}: use 1..7 (8-bit indices would not compress int8)")
    data = data or (run.config or {}).get("data")
    if not data or (data != "synthetic" and not os.path.exists(data)):
        raise UserError(f"{run_dir}: its data {data!r} is not here; pass --data DATASET")
    if data == "synthetic":
        from tinyspeech_tf.train import SYNTHETIC_DIR

        data = SYNTHETIC_DIR

    source = run.tflite
    # Only filters that compression shrinks are clustered: clustering the others would cost
    # accuracy and save nothing.
    clustered, clusters = cluster(source, bits, worth_compressing(source, bits, min_saving))
    compressed, chosen = lut_compress(clustered, bits, min_saving)
    labels, frontend = run.labels, run.frontend
    val = ValSet(data)
    accuracy = {name: int8_accuracy(blob, val, labels, frontend)[0]
                for name, blob in (("source", source), ("clustered", clustered),
                                   ("compressed", compressed))}
    io = io_quantization(source)
    q = quantize_features(val.features(frontend), io["input_scale"], io["input_zero_point"])
    identical = bool(np.array_equal(tflm.run_tflm(clustered, q), tflm.run_tflm(compressed, q)))
    if not identical:
        raise RuntimeError("the compressed model's TFLM outputs differ from its clustered "
                           "source: the compression is wrong, not the model")
    stem = f"lut{bits}"
    report = {
        "generated_by": "tinyspeech compress", "run": os.fspath(run_dir), "bits": bits,
        "min_saving": min_saving, "data": data, "val_examples": int(len(q)),
        "bytes": {"source": len(source), "clustered": len(clustered),
                  "compressed": len(compressed)},
        "arena_bytes": {"source": tflm.arena_bytes(source),
                        "compressed": tflm.arena_bytes(compressed)},
        "int8_accuracy": accuracy,
        "compressed_equals_clustered_in_tflm": identical,
        "zero_fraction": zero_fraction(source),
        "clustered_tensors": clusters, "compressed_tensors": chosen,
        "files": {"clustered": f"model_int8_clustered{bits}.tflite",
                  "compressed": f"model_int8_{stem}.tflite"},
    }
    write_atomic(run_dir / report["files"]["clustered"], clustered)
    write_atomic(run_dir / report["files"]["compressed"], compressed)
    write_atomic(run_dir / f"compression_{stem}.json", json.dumps(report, indent=2))
    return report
