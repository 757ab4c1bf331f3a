"""Build and run firmware test programs on the host and on QEMU (Cortex-M4, mps2-an386).

Why: the board code (front-end, smoother, TFLM runner) must compute exactly what the Python
twins compute, on the target instruction set. TFLM itself is not available here, so the tests
build (a) ``firmware/qemu/main_smoother.c``: the streaming front-end on an export's golden clip
and the smoother on a scripted score sequence, and (b) any program with C and C++ sources, e.g.
the kws_runner harness against the TFLM mock, once with host gcc/g++ and once for QEMU with
arm-none-eabi-gcc/g++ and semihosting, and compare the outputs with each other and with Python.

Generated inputs (headers with scores or audio) go into the caller's build directory, never
into the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyspeech_tf.frontend_c import ARM_FLAGS, COMMON_DIR, QEMU_DIR, _checked, _run, run_qemu

C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
CXX_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2"]
# What an embedded C++ build (Arduino mbed core, Zephyr) uses; the runner must not need more.
ARM_CXX_EXTRA = ["-fno-exceptions", "-fno-rtti"]
QEMU_LINK = ["--specs=rdimon.specs", "-nostartfiles", f"-T{QEMU_DIR / 'mps2_an386.ld'}"]
COMMON_C_SOURCES = (COMMON_DIR / "kws_frontend.c", COMMON_DIR / "recognize_commands.c")
SMOOTHER_MAIN = QEMU_DIR / "main_smoother.c"
SCORES_HEADER = "kws_test_scores.h"
TARGETS = ("host", "qemu")


def _c_rows(values: Iterable[int], per_line: int) -> str:
    items = [str(int(v)) for v in values]
    return ",\n".join("    " + ", ".join(items[i:i + per_line])
                      for i in range(0, len(items), per_line))


def write_scores_header(path: Path, scores: np.ndarray, times_ms: Sequence[int], *,
                        average_window_ms: int, detection_threshold: int, suppression_ms: int,
                        minimum_count: int, silence_index: int, max_results: int) -> Path:
    """kws_test_scores.h for main_smoother.c: int8 scores [T, classes], times, smoother config
    and the ring's size in results (``max_results``, as a runner sizes its own).

    Generated into a build directory at test time (never committed).
    """
    s = np.asarray(scores)
    if s.ndim != 2 or len(s) != len(times_ms) or len(s) == 0:
        raise ValueError(f"scores must be [T, classes] with T == len(times_ms) > 0, got "
                         f"{s.shape} and {len(times_ms)} times")
    if s.min() < -128 or s.max() > 127:
        raise ValueError("scores must be int8")
    rows, classes = s.shape
    text = (
        "/* GENERATED at test time by tinyspeech_tf.firmware_build; do not commit. */\n"
        "#ifndef KWS_TEST_SCORES_H\n#define KWS_TEST_SCORES_H\n\n#include <stdint.h>\n\n"
        f"#define KWS_TEST_SCORE_ROWS {rows}\n#define KWS_TEST_CLASSES {classes}\n"
        f"#define KWS_TEST_WINDOW_MS {int(average_window_ms)}\n"
        f"#define KWS_TEST_THRESHOLD {int(detection_threshold)}\n"
        f"#define KWS_TEST_SUPPRESSION_MS {int(suppression_ms)}\n"
        f"#define KWS_TEST_MIN_COUNT {int(minimum_count)}\n"
        f"#define KWS_TEST_SILENCE_INDEX ({int(silence_index)})\n"
        f"#define KWS_TEST_RESULTS {int(max_results)}\n\n"
        f"static const int8_t kws_test_scores[{rows}][{classes}] = {{\n"
        + ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in s)
        + "\n};\n\n"
        f"static const int32_t kws_test_times[{rows}] = {{\n"
        + _c_rows(times_ms, 12) + "\n};\n\n#endif /* KWS_TEST_SCORES_H */\n")
    path.write_text(text)
    return path


# Cortex-M3 without FPU (Zephyr's qemu_cortex_m3): the same code must build for soft float.
CORTEX_M3_FLAGS = ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]


def _compile_commands(target: str, arm_flags: Sequence[str] = ARM_FLAGS
                      ) -> tuple[list[str], list[str]]:
    """(C compiler, C++ compiler) commands for "host" or "qemu" (arm-none-eabi, by default for
    the Cortex-M4F of mps2-an386)."""
    if target == "host":
        return ["gcc", *C_FLAGS], ["g++", *CXX_FLAGS]
    if target == "qemu":
        return (["arm-none-eabi-gcc", *arm_flags, *C_FLAGS],
                ["arm-none-eabi-g++", *arm_flags, *CXX_FLAGS, *ARM_CXX_EXTRA])
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def compile_source(src: Path, include_dirs: Sequence[Path], obj: Path, target: str = "host",
                   defines: Sequence[str] = (), extra: Sequence[str] = (),
                   arm_flags: Sequence[str] = ARM_FLAGS,
                   system_dirs: Sequence[Path] = ()) -> Path:
    """Compile one C (``.c``) or C++ (any other suffix, e.g. ``.ino`` with ``-x c++`` in
    ``extra``) source warning-free; RuntimeError with the compiler output otherwise.
    ``system_dirs`` (TFLM, a board's SDK) go in with -isystem, as a -Werror build against the
    real TFLM needs: its headers have unused parameters that -Wextra would turn into errors."""
    cc, cxx = _compile_commands(target, arm_flags)
    compiler = cc if Path(src).suffix == ".c" else cxx
    flags = ([f"-I{d}" for d in include_dirs] + [f"-isystem{d}" for d in system_dirs]
             + [f"-D{d}" for d in defines])
    _checked([*compiler, *flags, *extra, "-c", str(src), "-o", str(obj)],
             f"{target} compile of {Path(src).name}")
    return Path(obj)


def build_program(sources: Sequence[Path], include_dirs: Sequence[Path], out: Path,
                  target: str = "host", defines: Sequence[str] = (),
                  system_dirs: Sequence[Path] = ()) -> Path:
    """Compile C (``.c``, C99) and C++ (``.cc``/``.cpp``, C++17) sources warning-free and link.

    ``system_dirs`` (TFLM, a board's SDK) go in with -isystem (see :func:`compile_source`).
    ``target="qemu"`` builds for mps2-an386 with firmware/qemu/startup.c, the linker script and
    newlib semihosting; run the result with :func:`tinyspeech_tf.frontend_c.run_qemu`.
    Raises RuntimeError with the compiler output on any warning or error.
    """
    cc, cxx = _compile_commands(target)
    out = Path(out)
    obj_dir = out.parent / f"{out.name}.obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    srcs = [Path(s) for s in sources]
    if target == "qemu":
        srcs.insert(0, QEMU_DIR / "startup.c")
    objects = [str(compile_source(src, include_dirs, obj_dir / f"{i:02d}_{src.stem}.o",
                                  target, defines, system_dirs=system_dirs))
               for i, src in enumerate(srcs)]
    link = [cxx[0]] if any(s.suffix != ".c" for s in srcs) else [cc[0]]
    if target == "qemu":
        link += [*ARM_FLAGS, *QEMU_LINK]
    _checked([*link, *objects, "-o", str(out), "-lm"], f"{target} link of {out.name}")
    return out


def build_smoother_program(export_dir: Path, scores_dir: Path, out_dir: Path,
                           target: str = "host") -> Path:
    """main_smoother.c with an export's golden.h and a kws_test_scores.h in ``scores_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "kws_smoother_qemu.elf" if target == "qemu" else "kws_smoother_host"
    return build_program([SMOOTHER_MAIN, *COMMON_C_SOURCES],
                         [Path(export_dir), COMMON_DIR, Path(scores_dir)], out_dir / name, target)


def run_program(exe: Path, target: str = "host", args: Sequence[str] = (),
                timeout: float = 120.0) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a program built by :func:`build_program`."""
    if target == "qemu":
        if args:
            raise ValueError("QEMU programs take no arguments (semihosting has no argv here)")
        return run_qemu(exe, timeout=timeout)
    proc = _run([str(exe), *args], timeout=timeout, stdin=subprocess.DEVNULL,
                env={**os.environ, "LC_ALL": "C"})
    return proc.returncode, proc.stdout + proc.stderr


@dataclass(frozen=True)
class SmootherRun:
    """Parsed output of main_smoother.c."""

    frames: int
    feature_max_diff: int
    feature_diff_count: int
    features: np.ndarray  # int8 [frames * coefficients]
    features_fnv: int
    results: list[tuple[int, int, int, int, int]]  # (row, time_ms, found, score, is_new)
    results_fnv: int


def parse_smoother_output(text: str) -> SmootherRun:
    """Raise ValueError (with the text) when a line is missing."""
    feat = re.search(r"features frames=(\d+) max_diff=(\d+) diff_count=(\d+) "
                     r"int8_fnv1a32=0x([0-9a-f]{8}) int8_hex=([0-9a-f]*)", text)
    summary = re.search(r"smoother results=(\d+) fnv1a32=0x([0-9a-f]{8})", text)
    if feat is None or summary is None:
        raise ValueError(f"unexpected main_smoother output:\n{text}")
    results = [tuple(int(v) for v in m.groups())
               for m in re.finditer(r"^result (\d+) (-?\d+) (\d+) (\d+) ([01])$", text, re.M)]
    if len(results) != int(summary.group(1)):
        raise ValueError(f"{len(results)} result lines but the summary says "
                         f"{summary.group(1)}:\n{text}")
    return SmootherRun(int(feat.group(1)), int(feat.group(2)), int(feat.group(3)),
                       np.frombuffer(bytes.fromhex(feat.group(5)), np.int8).copy(),
                       int(feat.group(4), 16), results, int(summary.group(2), 16))
