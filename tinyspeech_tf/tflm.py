"""Running int8 models the way the board does: the TFLM interpreter for Python.

Accuracy, arena size and bit-exactness are all measured here, so what Python reports is what
the firmware's TFLM build computes (the host build uses TFLM's reference kernels; boards that
use CMSIS-NN kernels agree to within rounding).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyspeech_tf.errors import UserError

ARENA_SEARCH_LIMIT = 4 << 20  # 4 MiB: more than any KWS model needs
ARENA_ALIGN = 16
ARENA_SLACK = 4096  # how far above its reported total a model may need (see arena_bytes)
# Ops where TFLM and tf.lite's reference kernels may differ by 1 LSB (see first_divergences).
KNOWN_DIVERGENCES = frozenset({"FULLY_CONNECTED", "MUL"})


def _flush_c_stdio() -> None:
    """Flush C stdio buffers: when stdout is a file or pipe, TFLM's printf output sits in the
    C library's buffer and would otherwise land wherever file descriptor 1 points later."""
    import ctypes

    ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _quiet_native_output():
    """Silence what the C++ interpreter prints (failed allocations during the arena search).

    TFLM logs through printf, so redirecting Python's sys.stdout is not enough: the process
    file descriptors 1 and 2 are pointed at /dev/null for the duration.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def interpreter(tflite_bytes: bytes, arena_size: int | None = None):
    """A TFLM Python interpreter for the model (all TFLM builtin kernels registered)."""
    from tflite_micro.python.tflite_micro import runtime

    kwargs = {} if arena_size is None else {"arena_size": int(arena_size)}
    return runtime.Interpreter.from_bytes(tflite_bytes, **kwargs)


def _allocates(tflite_bytes: bytes, arena_size: int) -> bool:
    try:
        with _quiet_native_output():
            interpreter(tflite_bytes, arena_size)
        return True
    except RuntimeError:
        return False


def _recorded_total(report: str) -> int | None:
    match = re.search(r"Arena allocation total (\d+) bytes", report)
    return int(match.group(1)) if match else None


def arena_bytes(tflite_bytes: bytes) -> int:
    """Smallest arena (multiple of 16 bytes) in which TFLM allocates the model.

    The TFLM Python binding has no "arena used" query, but its RecordingMicroAllocator prints
    the total it allocated. The model is allocated once in a generous arena, the total read
    from that report, and the figure then checked by allocating in exactly that many bytes.
    (A bisection over failing sizes is not safe: TFLM's MEAN kernel crashes the process on
    some failed allocations instead of reporting them.) Measured on the 64-bit host:
    interpreter bookkeeping (eval tensors, node structs) is larger there than on a 32-bit
    Cortex-M, so the figure is an upper bound for the board.
    """
    size = max(64 * 1024, 16 * len(tflite_bytes))
    while not _allocates(tflite_bytes, size):
        size *= 2
        if size > ARENA_SEARCH_LIMIT:
            raise RuntimeError(f"model does not allocate in {ARENA_SEARCH_LIMIT} bytes of arena")
    total = _recorded_total(allocation_report(tflite_bytes, size))
    if total is None:
        raise RuntimeError("TFLM printed no allocation total; cannot measure the arena")
    total = -(-total // ARENA_ALIGN) * ARENA_ALIGN
    # The report can fall short of what allocation needs in an arena of exactly that size:
    # while planning, TFLM holds temporary buffers (allocation info per tensor) that it frees
    # before the total is recorded, which matters when the activations are small. A board
    # needs them too, so step up to the first size that allocates.
    for size in range(total, total + ARENA_SLACK + 1, ARENA_ALIGN):
        if _allocates(tflite_bytes, size):
            return size
    raise RuntimeError(f"TFLM reported {total} arena bytes but does not allocate in "
                       f"{total + ARENA_SLACK}")


def allocation_report(tflite_bytes: bytes, arena_size: int | None = None) -> str:
    """TFLM's own allocation breakdown (``print_allocations``) as text."""
    interp = interpreter(tflite_bytes, arena_size or arena_bytes(tflite_bytes))
    with tempfile.TemporaryFile(mode="w+b") as buf:
        # TFLM logs through printf or stderr depending on the build: capture both descriptors.
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(buf.fileno(), 1)
            os.dup2(buf.fileno(), 2)
            interp.print_allocations()
        finally:
            _flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        buf.seek(0)
        return buf.read().decode(errors="replace")


def run_tflm(tflite_bytes: bytes, inputs: np.ndarray, interp=None) -> np.ndarray:
    """Invoke the model once per row of ``inputs`` (already int8) in TFLM; stacked outputs."""
    interp = interp or interpreter(tflite_bytes)
    outputs = []
    for row in inputs:
        interp.set_input(np.ascontiguousarray(row[None, ...]), 0)
        interp.invoke()
        outputs.append(np.array(interp.get_output(0))[0])
    return np.stack(outputs)


def _reference_interpreter(tflite_bytes: bytes, preserve_all_tensors: bool = False):
    import warnings

    from tinyspeech_tf._compat import tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interp = tf.lite.Interpreter(
            model_content=tflite_bytes,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=preserve_all_tensors)
    interp.allocate_tensors()
    return interp


def run_tflite_reference(tflite_bytes: bytes, inputs: np.ndarray) -> np.ndarray:
    """Invoke the model in tf.lite with its reference kernels (bit-exact with TFLM, see
    :func:`first_divergences` for the one exception).

    tf.lite's default optimised kernels round differently by 1 LSB on some outputs, so the
    reference resolver is the right baseline for bit-exact checks.
    """
    interp = _reference_interpreter(tflite_bytes)
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    outputs = []
    for row in inputs:
        interp.set_tensor(inp, np.ascontiguousarray(row[None, ...]))
        interp.invoke()
        outputs.append(interp.get_tensor(out)[0].copy())
    return np.stack(outputs)


def first_divergences(tflite_bytes: bytes, inputs: np.ndarray) -> list[dict]:
    """Op by op, where TFLM and tf.lite's reference kernels first disagree, per input row.

    Every intermediate tensor is kept in both interpreters and compared in execution order; a
    row that diverges reports its first differing op and the largest difference in LSBs.
    Measured so far the divergences are 1 LSB in the ops of :data:`KNOWN_DIVERGENCES`:
    FULLY_CONNECTED (tf.lite's reference FC requantizes with a single rounding, TFLM with the
    gemmlowp-style double rounding) and MUL (the two derive its requantization multiplier
    s1 * s2 / s_out once in single and once in double precision, which differ in the
    multiplier's last bits); both show only when an exact result lies next to a rounding tie.
    """
    from tflite_micro.python.tflite_micro import runtime

    ref = _reference_interpreter(tflite_bytes, preserve_all_tensors=True)
    ops = ref._get_ops_details()
    inp = ref.get_input_details()[0]["index"]
    found = []
    for row_index, row in enumerate(inputs):
        row = np.ascontiguousarray(row[None, ...])
        ref.set_tensor(inp, row)
        ref.invoke()
        micro = runtime.Interpreter.from_bytes(
            tflite_bytes, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        micro.set_input(row, 0)
        micro.invoke()
        for op in ops:
            diffs = []
            for t in op["outputs"]:
                expected = ref.get_tensor(t)
                actual = np.asarray(micro.GetTensor(t, 0)["tensor_data"]).reshape(expected.shape)
                diffs.append(int(np.abs(expected.astype(np.int64) - actual).max()))
            if max(diffs):
                found.append({"row": row_index, "op_index": int(op["index"]),
                              "op": op["op_name"], "max_lsb": max(diffs)})
                break
    return found


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
