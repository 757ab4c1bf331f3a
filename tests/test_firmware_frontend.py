"""The front-end on the target ISA: Cortex-M4F code size, and int8 features under QEMU.

Skips when arm-none-eabi-gcc or qemu-system-arm is missing, except in CI (CI=true): fails there.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import require_shared, require_tools

from tinyspeech_tf import frontend_c as C
from tinyspeech_tf.audio import fit_length, read_wav, to_int16
from tinyspeech_tf.features import (
    MLPERF_INPUT_SCALE,
    MLPERF_INPUT_ZERO_POINT,
    features_from_samples,
    quantize,
)

pytestmark = pytest.mark.firmware
SCALE, ZP = MLPERF_INPUT_SCALE, MLPERF_INPUT_ZERO_POINT


def test_cortex_m4_build_size(tmp_path) -> None:
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-size")
    sizes = C.arm_object_sizes(tmp_path)
    print(f"\nCortex-M4 -O2 kws_frontend.o: .text {sizes['text']} B "
          f"(.rodata tables {sizes['rodata']} B), .data {sizes['data']} B, "
          f".bss {sizes['bss']} B")
    assert sizes["warnings"].strip() == "", sizes["warnings"]
    # no hidden static state: everything lives in the caller's kws_frontend_t
    assert sizes["data"] == 0 and sizes["bss"] == 0
    assert 0 < sizes["text"] < 16 * 1024


def test_state_sizes_on_cortex_m4(tmp_path) -> None:
    """The front-end's state is the int16 samples of one frame, nothing more (the FFT's float
    buffer is a local of the call that completes a frame); the sizes come from the compiler,
    as `make firmware-check` prints."""
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-nm")
    sizes = C.arm_state_sizes(tmp_path)
    assert set(sizes) == set(C.STATE_PARTS)
    frame = 2 * 480
    assert frame <= sizes["kws_frontend_t"] <= frame + 16
    assert sizes["kws_feature_window_t"] == 4 * 49 * 10 + 4


def test_frame_transform_stack_is_the_fft_buffer_and_little_more(tmp_path) -> None:
    """What moved the FFT buffer out of the state costs stack while a frame is transformed: the
    2 KB of floats plus the mel energies and a few locals (gcc -fstack-usage, Cortex-M4), well
    under the stack TFLM's interpreter construction needs at init (3.3 KB on a real build)."""
    require_tools("arm-none-eabi-gcc")
    obj = tmp_path / "kws_frontend.o"
    subprocess.run(["arm-none-eabi-gcc", *C.ARM_FLAGS, "-O2", "-fstack-usage", f"-I{C.COMMON_DIR}",
                    "-c", str(C.COMMON_DIR / "kws_frontend.c"), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    usage = {}
    for line in obj.with_suffix(".su").read_text().splitlines():
        where, size, kind = line.split("\t")
        usage[where.rsplit(":", 1)[-1]] = (int(size), kind)
    print(f"\nCortex-M4 stack: {usage}")
    frames = [size for name, (size, kind) in usage.items() if kind == "static"
              and name in ("kws_frontend_push", "transform_frame", "kws_frontend_frame")]
    fft = 4 * 512
    assert frames and all(size <= fft + 512 for size in frames), usage
    # the call that completes a frame: push, or the transform it calls (one holds the buffer)
    assert max(frames) >= fft


def test_qemu_int8_hash_equals_host(tmp_path) -> None:
    require_tools("arm-none-eabi-gcc", "qemu-system-arm", "gcc")
    wav = require_shared("data", "micro_speech_testdata", "yes_1000ms.wav")
    samples = fit_length(read_wav(wav)[0])
    pcm = to_int16(samples)
    elf = C.build_qemu_program(pcm, tmp_path, SCALE, ZP)
    rc, out = C.run_qemu(elf, timeout=60)
    assert rc == 0, f"QEMU exit code {rc}:\n{out}"
    qemu_hash = C.parse_qemu_hash(out)
    assert qemu_hash is not None, out

    lib, _ = C.build_host_library(tmp_path / "host")
    host = C.HostFrontend(lib)
    host_q = host.quantize(host.clip(pcm), SCALE, ZP)
    py_q = quantize(features_from_samples(samples), SCALE, ZP)
    qemu_hex = out.split("int8_hex=")[1].split()[0]
    qemu_q = np.frombuffer(bytes.fromhex(qemu_hex), np.int8).reshape(49, 10)
    py_diff = np.abs(py_q.astype(np.int16) - qemu_q)
    print(f"\nQEMU fnv1a32 0x{qemu_hash:08x}, host C 0x{C.fnv1a32(host_q.tobytes()):08x}, "
          f"Python 0x{C.fnv1a32(py_q.tobytes()):08x}; QEMU vs Python: "
          f"{int((py_diff != 0).sum())} of 490 int8 differ (max {int(py_diff.max())} LSB)")
    np.testing.assert_array_equal(qemu_q, host_q)
    assert qemu_hash == C.fnv1a32(host_q.tobytes())
    assert py_diff.max() <= 1


def test_qemu_exit_code_reports_failure(tmp_path) -> None:
    """A too-short clip gives fewer than 49 frames: main returns 1 and QEMU must say so."""
    require_tools("arm-none-eabi-gcc", "qemu-system-arm")
    elf = C.build_qemu_program(np.zeros(320 * 10, np.int16), tmp_path, SCALE, ZP)
    rc, out = C.run_qemu(elf, timeout=60)
    assert rc == 1 and "error: 9 frames" in out, (rc, out)
