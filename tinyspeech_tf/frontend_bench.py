"""``tinyspeech bench-frontend``: does the C front-end compute what training computes, and how fast?

Prints (and with ``--json`` writes) the numbers that decide whether the firmware features can be
trusted: max float difference C vs TensorFlow on every real validation clip, int8 mismatch rate,
the MLPerf reference model's accuracy on Python and on C features (the oracle), the front-end's
Cortex-M4 code size, host microseconds per frame of the C, and batched TF clips per second.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tinyspeech_tf.errors import UserError

MLPERF_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                 "silence", "unknown"]
VAL_SUBDIR = ("data", "speech_commands_v0.02_real", "val")
MICRO_SPEECH_SUBDIR = ("data", "micro_speech_testdata")
ORACLE_MODEL = ("models", "mlperf_tiny_kws_ref_int8.tflite")


def label_index(dir_name: str) -> int:
    """Val folder name -> MLPerf model output index (_silence_ -> silence, ...)."""
    return MLPERF_LABELS.index(dir_name.strip("_"))


def val_files(shared: Path) -> list[Path]:
    return sorted(shared.joinpath(*VAL_SUBDIR).glob("*/*.wav"))


def load_clips(paths: list[Path]) -> np.ndarray:
    """float32 [n, 16000] clips (padded/cropped), as read_wav gives them (x / 32768)."""
    from tinyspeech_tf.audio import fit_length, read_wav

    return np.stack([fit_length(read_wav(p)[0]) for p in paths])


def load_val(shared: Path) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    paths = val_files(shared)
    if not paths:
        raise UserError(f"no validation clips under {shared.joinpath(*VAL_SUBDIR)}")
    labels = np.array([label_index(p.parent.name) for p in paths])
    return load_clips(paths), labels, paths


def oracle_predictions(model_path: Path, q_features: np.ndarray) -> np.ndarray:
    """Run the int8 reference model (reference kernels) on int8 features [n, 49, 10]."""
    from tinyspeech_tf._compat import tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(
            model_path=str(model_path),
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    preds = np.empty(len(q_features), np.int64)
    for i, q in enumerate(q_features):
        interp.set_tensor(inp["index"], q.reshape(inp["shape"]).astype(np.int8))
        interp.invoke()
        preds[i] = int(np.argmax(interp.get_tensor(out["index"])))
    return preds


def oracle_input_quantization(model_path: Path) -> tuple[float, int]:
    from tinyspeech_tf._compat import tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_path=str(model_path))
    scale, zero_point = interp.get_input_details()[0]["quantization"]
    return float(scale), int(zero_point)


def float_violations(c: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Mask of entries beyond the parity tolerance max(1e-2 absolute, 1e-4 relative)."""
    return np.abs(c - py) > np.maximum(1e-2, 1e-4 * np.abs(py))


def python_clips_per_second(clips: np.ndarray, repeats: int = 5) -> float:
    """Batched TF throughput of features.mfcc inside a tf.function (as in tf.data)."""
    from tinyspeech_tf._compat import tf
    from tinyspeech_tf.features import mfcc

    fn = tf.function(mfcc)
    x = tf.constant(clips, tf.float32)
    fn(x).numpy()  # trace + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x).numpy()
        best = min(best, time.perf_counter() - t0)
    return len(clips) / best


def measure(shared: Path, build_dir: Path) -> dict[str, Any]:
    """All bench numbers; raises UserError if ../shared lacks a needed file."""
    from tinyspeech_tf import frontend_c
    from tinyspeech_tf.audio import to_int16
    from tinyspeech_tf.features import features_from_samples, quantize

    model = shared.joinpath(*ORACLE_MODEL)
    if not model.exists():
        raise UserError(f"oracle model missing: {model}")
    clips, labels, _ = load_val(shared)
    micro = sorted(shared.joinpath(*MICRO_SPEECH_SUBDIR).glob("*.wav"))
    all_clips = np.concatenate([clips, load_clips(micro)]) if micro else clips
    scale, zp = oracle_input_quantization(model)

    py = features_from_samples(all_clips)
    lib, warn = frontend_c.build_host_library(build_dir)
    host = frontend_c.HostFrontend(lib)
    pcm = [to_int16(x) for x in all_clips]
    c = np.stack([host.clip(x) for x in pcm])
    q_py, q_c = quantize(py, scale, zp), host.quantize(c, scale, zp)
    lsb = np.abs(q_py.astype(np.int16) - q_c.astype(np.int16))
    n_val = len(clips)
    acc_py = float(np.mean(oracle_predictions(model, q_py[:n_val]) == labels))
    acc_c = float(np.mean(oracle_predictions(model, q_c[:n_val]) == labels))
    streaming_equal = all(np.array_equal(host.stream(x, 320)[0], cf)
                          for x, cf in zip(pcm, c, strict=True))

    result: dict[str, Any] = {
        "clips": int(len(all_clips)),
        "val_clips": int(n_val),
        "max_float_abs_diff": float(np.max(np.abs(c - py))),
        "float_tolerance_violations": int(np.sum(float_violations(c, py))),
        "int8_mismatch_rate": float(np.mean(lsb != 0)),
        "int8_max_lsb_diff": int(lsb.max()),
        "streaming_equals_whole_clip": bool(streaming_equal),
        "oracle_accuracy_python": acc_py,
        "oracle_accuracy_c": acc_c,
        "oracle_input_quantization": [scale, zp],
        "host_c_us_per_frame": host.us_per_frame(pcm[0]),
        "python_clips_per_second": python_clips_per_second(clips),
        "host_compiler_warnings": warn.strip(),
    }
    missing = frontend_c.arm_toolchain_missing()
    if missing and "arm-none-eabi-gcc" in missing:
        result["cortex_m4_size"] = f"n/a ({missing} missing)"
    else:
        sizes = frontend_c.arm_object_sizes(build_dir)
        result["cortex_m4_size"] = {k: sizes[k] for k in ("text", "data", "bss", "rodata")}
    if missing:
        result["qemu_int8_hash_matches_host"] = f"n/a ({missing} missing)"
    else:
        yes = shared.joinpath(*MICRO_SPEECH_SUBDIR, "yes_1000ms.wav")
        x = to_int16(load_clips([yes])[0])
        elf = frontend_c.build_qemu_program(x, build_dir, scale, zp)
        rc, out = frontend_c.run_qemu(elf)
        host_hash = frontend_c.fnv1a32(host.quantize(host.clip(x), scale, zp).tobytes())
        py_hash = frontend_c.fnv1a32(quantize(features_from_samples(x / 32768.0), scale,
                                              zp).tobytes())
        result["qemu_int8_hash_matches_host"] = bool(
            rc == 0 and frontend_c.parse_qemu_hash(out) == host_hash)
        result["qemu_int8_hash_matches_python"] = bool(
            rc == 0 and frontend_c.parse_qemu_hash(out) == py_hash)
    return result


def format_report(r: dict[str, Any]) -> str:
    size = r["cortex_m4_size"]
    size_text = (f".text {size['text']} B (of which tables/.rodata {size['rodata']} B), "
                 f".data {size['data']} B, .bss {size['bss']} B"
                 if isinstance(size, dict) else size)
    lines = [
        f"clips compared             {r['clips']} ({r['val_clips']} val + micro_speech)",
        f"max float diff C vs TF     {r['max_float_abs_diff']:.3g} "
        f"({r['float_tolerance_violations']} beyond max(1e-2, 1e-4 rel))",
        f"int8 mismatch rate         {100 * r['int8_mismatch_rate']:.4f} % "
        f"(max {r['int8_max_lsb_diff']} LSB)",
        f"streaming == whole clip    {r['streaming_equals_whole_clip']}",
        f"oracle accuracy Python     {100 * r['oracle_accuracy_python']:.2f} %",
        f"oracle accuracy C          {100 * r['oracle_accuracy_c']:.2f} %",
        f"Cortex-M4 -O2 size         {size_text}",
        f"QEMU int8 hash == host C   {r['qemu_int8_hash_matches_host']}",
        f"host C per frame           {r['host_c_us_per_frame']:.2f} us",
        f"Python (batched TF)        {r['python_clips_per_second']:.0f} clips/s",
    ]
    if "qemu_int8_hash_matches_python" in r:
        lines.insert(8, f"QEMU int8 hash == Python   {r['qemu_int8_hash_matches_python']}")
    return "\n".join(lines)
