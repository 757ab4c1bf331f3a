"""C side of the front-end: generated tables, host build (ctypes), Cortex-M4 build, QEMU run.

Why here: the firmware must compute the same features as training. The C tables are generated
from :class:`~tinyspeech_tf.features.FrontendConfig`, the host build lets pytest compare C with
TensorFlow on real clips, and the Cortex-M4/QEMU build proves the same code gives the same int8
features on the target instruction set.

Regenerate the committed header with ``python -m tinyspeech_tf.frontend_c``.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.features import (
    DEFAULT_CONFIG,
    FrontendConfig,
    dct_matrix,
    hann_window,
    mel_weight_matrix,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO_ROOT / "firmware"
COMMON_DIR = FIRMWARE_DIR / "common"
QEMU_DIR = FIRMWARE_DIR / "qemu"
HEADER_PATH = COMMON_DIR / "kws_frontend_tables.h"
GENERATE_COMMAND = "python -m tinyspeech_tf.frontend_c"
SOURCES = [COMMON_DIR / "kws_frontend.c"]

ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
C_WARNINGS = ["-std=c99", "-Wall", "-Wextra"]


def shared_dir() -> Path:
    """The read-only ``../shared`` data directory beside the repository."""
    return REPO_ROOT.parent / "shared"


def default_build_dir() -> Path:
    """Out-of-source build directory (``build/`` is git-ignored)."""
    return REPO_ROOT / "build" / "frontend"


# ---- header generation -----------------------------------------------------------------------
def _c_float(value: float) -> str:
    v = np.float32(value)
    if v == 0:
        return "0.0f" if not np.signbit(v) else "-0.0f"
    if 1e-4 <= abs(v) < 1e7:
        text = np.format_float_positional(v, unique=True, trim="0")
    else:
        text = np.format_float_scientific(v, unique=True, trim="0")
    return text + "f"


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 6) -> str:
    flat = np.asarray(values).ravel()
    fmt = _c_float if ctype == "float" else (lambda v: str(int(v)))
    items = [fmt(v) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


def sparse_mel(config: FrontendConfig = DEFAULT_CONFIG
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per mel bin: first nonzero FFT bin, count, offset into weights, and the weights.

    Each triangle covers a contiguous run of FFT bins, so this stores ~260 floats instead of the
    dense 257 x 40 matrix (10 KB of flash saved).
    """
    mel = mel_weight_matrix(config)
    starts, counts, offsets, weights = [], [], [], []
    for m in range(config.num_mel_bins):
        nz = np.nonzero(mel[:, m])[0]
        if len(nz) == 0:
            start, stop = 0, 0
        else:
            start, stop = int(nz[0]), int(nz[-1]) + 1
        starts.append(start)
        counts.append(stop - start)
        offsets.append(len(weights))
        weights.extend(mel[start:stop, m].tolist())
    return (np.array(starts), np.array(counts), np.array(offsets),
            np.array(weights, dtype=np.float32))


def generate_header(config: FrontendConfig = DEFAULT_CONFIG) -> str:
    """Text of kws_frontend_tables.h for ``config``: sizes as macros, tables as arrays."""
    starts, counts, offsets, weights = sparse_mel(config)
    half = config.fft_length // 2
    k = np.arange(half, dtype=np.float64)
    cos_t = np.cos(2.0 * np.pi * k / config.fft_length).astype(np.float32)
    sin_t = np.sin(2.0 * np.pi * k / config.fft_length).astype(np.float32)
    index_type = "uint16_t" if max(config.num_spectrogram_bins, len(weights)) < 65536 \
        else "uint32_t"
    parts = [
        f"/* GENERATED FILE - do not edit. Regenerate with: {GENERATE_COMMAND} */\n",
        "/*\n * Tables of the MFCC front-end for this FrontendConfig (JSON):\n",
        "".join(f" *   {line}\n" for line in config.to_json().splitlines()),
        " */\n",
        "#ifndef KWS_FRONTEND_TABLES_H\n#define KWS_FRONTEND_TABLES_H\n\n",
        "#include <stdint.h>\n\n",
        f"#define KWS_FE_SAMPLE_RATE {config.sample_rate}\n",
        f"#define KWS_FE_CLIP_SAMPLES {config.clip_samples}\n",
        f"#define KWS_FE_FRAME_LENGTH {config.frame_length}\n",
        f"#define KWS_FE_FRAME_STEP {config.frame_step}\n",
        f"#define KWS_FE_FFT_LENGTH {config.fft_length}\n",
        f"#define KWS_FE_NUM_BINS {config.num_spectrogram_bins}\n",
        f"#define KWS_FE_NUM_MEL_BINS {config.num_mel_bins}\n",
        f"#define KWS_FE_NUM_MFCC {config.num_mfcc}\n",
        f"#define KWS_FE_NUM_FRAMES {config.num_frames}\n",
        f"#define KWS_FE_LOWER_EDGE_HERTZ {_c_float(config.lower_edge_hertz)}\n",
        f"#define KWS_FE_UPPER_EDGE_HERTZ {_c_float(config.upper_edge_hertz)}\n",
        f"#define KWS_FE_LOG_OFFSET {_c_float(config.log_offset)}\n",
        f"#define KWS_FE_MEL_WEIGHT_COUNT {len(weights)}\n\n",
        "/* Arrays are defined only where KWS_FE_DEFINE_TABLES is set (kws_frontend.c). */\n",
        "#ifdef KWS_FE_DEFINE_TABLES\n\n",
        "/* periodic Hann window, tf.signal.hann_window(frame_length) */\n",
        _c_array("float", "kws_fe_window", hann_window(config)),
        "\n/* cos/sin(2 pi k / fft_length), k < fft_length / 2: FFT twiddles */\n",
        _c_array("float", "kws_fe_twiddle_cos", cos_t),
        _c_array("float", "kws_fe_twiddle_sin", sin_t),
        "\n/* sparse tf.signal.linear_to_mel_weight_matrix: per mel bin, FFT bins\n"
        " * [start, start + count) weighted by weights[offset .. offset + count) */\n",
        _c_array(index_type, "kws_fe_mel_start", starts, 10),
        _c_array(index_type, "kws_fe_mel_count", counts, 10),
        _c_array(index_type, "kws_fe_mel_offset", offsets, 10),
        _c_array("float", "kws_fe_mel_weights", weights),
        "\n/* [num_mfcc][num_mel_bins]: tf.signal.mfccs_from_log_mel_spectrograms as a matrix */\n",
        _c_array("float", "kws_fe_dct", dct_matrix(config)),
        "\n#endif /* KWS_FE_DEFINE_TABLES */\n",
        "#endif /* KWS_FRONTEND_TABLES_H */\n",
    ]
    return "".join(parts)


def write_header(path: Path = HEADER_PATH, config: FrontendConfig = DEFAULT_CONFIG) -> Path:
    path.write_text(generate_header(config))
    return path


# ---- host build + ctypes ---------------------------------------------------------------------
def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    except FileNotFoundError:
        raise UserError(f"{cmd[0]}: not found; install it (see .ci/run)") from None


def _checked(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = _run(cmd, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{' '.join(cmd)}\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc


def build_host_library(out_dir: Path | None = None, cc: str = "gcc",
                       config: FrontendConfig | None = None) -> tuple[Path, str]:
    """Compile the front-end as a shared library; returns (path, compiler warnings text).
    With ``config``, against tables generated for it (sources copied beside them in out_dir,
    since the C file includes its tables from its own folder) instead of the committed ones."""
    out_dir = Path(out_dir or default_build_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "libkws_frontend.so"
    sources, include = list(SOURCES), COMMON_DIR
    if config is not None:
        for name in ("kws_frontend.c", "kws_frontend.h"):
            shutil.copyfile(COMMON_DIR / name, out_dir / name)
        (out_dir / HEADER_PATH.name).write_text(generate_header(config))
        sources, include = [out_dir / "kws_frontend.c"], out_dir
    cmd = [cc, "-O2", "-shared", "-fPIC", *C_WARNINGS, f"-I{include}",
           *map(str, sources), "-o", str(lib), "-lm"]
    proc = _checked(cmd, "host build of the C front-end")
    return lib, proc.stderr


class HostFrontend:
    """ctypes wrapper over the host-built C front-end."""

    def __init__(self, lib_path: Path, config: FrontendConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.lib = ctypes.CDLL(str(lib_path))
        i16p = ctypes.POINTER(ctypes.c_int16)
        f32p = ctypes.POINTER(ctypes.c_float)
        self.lib.kws_frontend_init.argtypes = [ctypes.c_void_p]
        self.lib.kws_frontend_push.argtypes = [ctypes.c_void_p, i16p, ctypes.c_int, f32p,
                                               ctypes.c_int]
        self.lib.kws_frontend_push.restype = ctypes.c_int
        self.lib.kws_frontend_clip.argtypes = [ctypes.c_void_p, i16p, f32p]
        self.lib.kws_frontend_quantize.argtypes = [f32p, ctypes.c_int, ctypes.c_float,
                                                   ctypes.c_int,
                                                   ctypes.POINTER(ctypes.c_int8)]
        # Upper bound of sizeof(kws_frontend_t): int16 ring, two ints, FFT work, magnitudes.
        size = (2 * config.frame_length + 16 + 4 * config.fft_length
                + 4 * config.num_spectrogram_bins + 64)
        self._state = (ctypes.c_double * (size // 8 + 1))()
        self.lib.kws_frontend_init(self._state)

    @staticmethod
    def _ptr(a: np.ndarray, ctype) -> ctypes._Pointer:
        return a.ctypes.data_as(ctypes.POINTER(ctype))

    def clip(self, samples: np.ndarray) -> np.ndarray:
        """int16 clip (padded/cropped to clip_samples) -> float32 [frames, mfcc]."""
        cfg = self.config
        x = np.zeros(cfg.clip_samples, np.int16)
        s = np.asarray(samples, np.int16)[:cfg.clip_samples]
        x[:len(s)] = s
        out = np.zeros(cfg.feature_shape, np.float32)
        self.lib.kws_frontend_clip(self._state, self._ptr(x, ctypes.c_int16),
                                   self._ptr(out, ctypes.c_float))
        return out

    def reset(self) -> None:
        self.lib.kws_frontend_init(self._state)

    def push(self, samples: np.ndarray, max_frames: int = 64) -> np.ndarray:
        """Stream int16 samples; returns the frames completed by this chunk [n, mfcc]."""
        x = np.ascontiguousarray(samples, np.int16)
        out = np.zeros((max_frames, self.config.num_mfcc), np.float32)
        n = self.lib.kws_frontend_push(self._state, self._ptr(x, ctypes.c_int16), len(x),
                                       self._ptr(out, ctypes.c_float), max_frames)
        return out[:n]

    def stream(self, samples: np.ndarray, chunk: int) -> tuple[np.ndarray, list[int]]:
        """Reset, push in ``chunk``-sample pieces; returns all frames and frames per push."""
        self.reset()
        frames, per_push = [], []
        x = np.asarray(samples, np.int16)
        for i in range(0, len(x), chunk):
            f = self.push(x[i:i + chunk], max_frames=chunk // self.config.frame_step + 2)
            frames.append(f)
            per_push.append(len(f))
        return np.concatenate(frames), per_push

    def quantize(self, features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
        x = np.ascontiguousarray(features, np.float32)
        out = np.zeros(x.shape, np.int8)
        self.lib.kws_frontend_quantize(self._ptr(x, ctypes.c_float), x.size, scale,
                                       zero_point, self._ptr(out, ctypes.c_int8))
        return out

    def us_per_frame(self, samples: np.ndarray, repeats: int = 20) -> float:
        """Host wall time per frame of kws_frontend_clip (best of ``repeats``)."""
        x = np.zeros(self.config.clip_samples, np.int16)
        x[:len(samples)] = np.asarray(samples, np.int16)[:len(x)]
        out = np.zeros(self.config.feature_shape, np.float32)
        xp, op = self._ptr(x, ctypes.c_int16), self._ptr(out, ctypes.c_float)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(10):
                self.lib.kws_frontend_clip(self._state, xp, op)
            best = min(best, (time.perf_counter() - t0) / 10)
        return best / self.config.num_frames * 1e6


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32-bit hash, the same as firmware/qemu/main.c prints."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


# ---- Cortex-M4 ---------------------------------------------------------------------------------
def arm_toolchain_missing() -> str | None:
    """None if arm-none-eabi-gcc/-size and qemu-system-arm are on PATH, else what is missing."""
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
               if shutil.which(t) is None]
    return ", ".join(missing) or None


def arm_object_sizes(out_dir: Path | None = None) -> dict[str, int]:
    """Compile the front-end for Cortex-M4F (-O2) and return .text/.data/.bss bytes."""
    out_dir = Path(out_dir or default_build_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    obj = out_dir / "kws_frontend_m4.o"
    cmd = ["arm-none-eabi-gcc", *ARM_FLAGS, "-O2", *C_WARNINGS, f"-I{COMMON_DIR}", "-c",
           str(SOURCES[0]), "-o", str(obj)]
    proc = _checked(cmd, "Cortex-M4 build of the C front-end")
    size = _checked(["arm-none-eabi-size", "-B", str(obj)], "arm-none-eabi-size")
    fields = size.stdout.strip().splitlines()[-1].split()
    sections = _checked(["arm-none-eabi-size", "-A", str(obj)], "arm-none-eabi-size -A")
    rodata = sum(int(parts[1]) for parts in map(str.split, sections.stdout.splitlines())
                 if len(parts) >= 2 and parts[0].startswith(".rodata") and parts[1].isdigit())
    # Berkeley .text includes .rodata (the generated tables); report the split as well.
    return {"text": int(fields[0]), "data": int(fields[1]), "bss": int(fields[2]),
            "rodata": rodata, "warnings": proc.stderr}  # type: ignore[dict-item]


# The runner's state by part, with its smoother ring sized for a model, is
# tinyspeech_tf.firmware_state's; these are the front-end's own structs.
STATE_PARTS = {"kws_frontend_t": "front-end (int16 samples of the frame being filled)",
               "kws_feature_window_t": "float feature window (the runner keeps an int8 one)"}


def arm_state_sizes(out_dir: Path | None = None) -> dict[str, int]:
    """sizeof of the firmware's state structs as arm-none-eabi-gcc lays them out for Cortex-M4
    (read from the symbol sizes of one object of each), so the RAM a board needs is measured,
    not typed."""
    out_dir = Path(out_dir or default_build_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    src, obj = out_dir / "kws_state_sizes.c", out_dir / "kws_state_sizes.o"
    src.write_text('#include "kws_frontend.h"\n'
                   + "".join(f"{t} size_of_{t};\n" for t in STATE_PARTS))
    _checked(["arm-none-eabi-gcc", *ARM_FLAGS, "-O2", "-fno-common", f"-I{COMMON_DIR}", "-c",
              str(src), "-o", str(obj)], "Cortex-M4 build of the state sizes")
    nm = _checked(["arm-none-eabi-nm", "-S", str(obj)], "arm-none-eabi-nm")
    sizes = {}
    for line in nm.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("size_of_"):
            sizes[parts[3][len("size_of_"):]] = int(parts[1], 16)
    return sizes


def write_samples_header(path: Path, samples: np.ndarray, name: str = "kws_test_samples") -> Path:
    """C header with int16 audio (generated into a build dir at test time, never committed)."""
    x = np.asarray(samples, np.int16)
    path.write_text(
        f"/* GENERATED at build time by tinyspeech_tf.frontend_c; do not commit. */\n"
        f"#include <stdint.h>\n#define {name.upper()}_COUNT {len(x)}\n"
        + _c_array("int16_t", name, x, 16))
    return path


def build_qemu_program(samples: np.ndarray, out_dir: Path | None = None,
                       scale: float = 0.5847029, zero_point: int = 83) -> Path:
    """Bare-metal MPS2-AN386 (Cortex-M4) program streaming ``samples`` through the front-end."""
    out_dir = Path(out_dir or default_build_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    write_samples_header(out_dir / "kws_test_samples.h", samples)
    elf = out_dir / "kws_frontend_qemu.elf"
    cmd = ["arm-none-eabi-gcc", *ARM_FLAGS, "-O2", *C_WARNINGS, "--specs=rdimon.specs",
           "-nostartfiles", f"-T{QEMU_DIR / 'mps2_an386.ld'}", f"-I{COMMON_DIR}",
           f"-I{out_dir}", f"-DKWS_QSCALE={scale!r}f", f"-DKWS_QZERO={zero_point}",
           str(QEMU_DIR / "startup.c"), str(QEMU_DIR / "main.c"), *map(str, SOURCES),
           "-o", str(elf), "-lm"]
    _checked(cmd, "QEMU firmware build")
    return elf


def run_qemu(elf: Path, timeout: float = 60.0) -> tuple[int, str]:
    """Run the ELF on qemu-system-arm -M mps2-an386 with semihosting; (exit code, stdout)."""
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"QEMU did not finish within {timeout} s: {err.stdout!r}") from None
    return proc.returncode, proc.stdout + proc.stderr


def parse_qemu_hash(output: str) -> int | None:
    m = re.search(r"int8_fnv1a32=0x([0-9a-fA-F]{8})", output)
    return int(m.group(1), 16) if m else None


def main(argv: list[str] | None = None) -> int:
    """Regenerate kws_frontend_tables.h; ``--check`` only verifies it, ``--sizes`` prints the
    Cortex-M4 section sizes (used by ``make firmware-check``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tinyspeech_tf.frontend_c",
                                     description=main.__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed header differs from a fresh generation")
    parser.add_argument("--sizes", action="store_true",
                        help="print .text/.data/.bss of the front-end for Cortex-M4 (-O2)")
    args = parser.parse_args(argv)
    rel = os.path.relpath(HEADER_PATH, REPO_ROOT)
    if args.sizes:
        import tempfile

        missing = arm_toolchain_missing()
        if missing and "arm-none-eabi-gcc" in missing:
            print(f"Cortex-M4 size: n/a ({missing} missing)")
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            s = arm_object_sizes(Path(tmp))
            state = arm_state_sizes(Path(tmp))
        print(f"kws_frontend.c, Cortex-M4F -O2: .text {s['text']} B (of which .rodata tables "
              f"{s['rodata']} B), .data {s['data']} B, .bss {s['bss']} B")
        print("state on Cortex-M4: " + ", ".join(
            f"{what} {state[name]:,} B" for name, what in STATE_PARTS.items()))
        return 0
    if args.check:
        if HEADER_PATH.read_text() != generate_header():
            print(f"{rel} is stale; regenerate with `{GENERATE_COMMAND}`")
            return 1
        print(f"{rel} is up to date")
        return 0
    write_header()
    print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
