"""The Arduino sketch and the Zephyr app compile (against mocks) and are wired consistently.

Neither the Arduino core nor Zephyr nor TFLM is available here, so each source is compiled
with arm-none-eabi-gcc/g++ (-Wall -Wextra -Werror, -fno-exceptions -fno-rtti) against small
mocks of the headers it includes: tests/fixtures/arduino_mock (Arduino.h, PDM.h,
TensorFlowLite.h), tests/fixtures/zephyr_mock (kernel, printk, device, DMIC) and
tests/fixtures/tflm_mock. That catches syntax, type and API-shape breakage in CI; it does not
prove the real SDKs accept the code (see the READMEs). firmware/arduino/sync.py, which makes the
sketch folder self-contained, is tested for real.

Skips without arm-none-eabi-gcc/g++, except in CI (CI=true): fails there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tools
from tiny_export import make_export

from tinyspeech_tf import firmware_build as FB
from tinyspeech_tf.export import headers as H
from tinyspeech_tf.frontend_c import ARM_FLAGS, COMMON_DIR

pytestmark = pytest.mark.firmware

FIXTURES = REPO_ROOT / "tests" / "fixtures"
TFLM_MOCK = FIXTURES / "tflm_mock"
ARDUINO_MOCK = FIXTURES / "arduino_mock"
ZEPHYR_MOCK = FIXTURES / "zephyr_mock"
SKETCH = REPO_ROOT / "firmware" / "arduino" / "TinySpeechM"
SYNC = REPO_ROOT / "firmware" / "arduino" / "sync.py"
ZEPHYR_APP = REPO_ROOT / "firmware" / "zephyr"
MODEL_FILES = H.FILES  # model_data.h/.cc, model_settings.h, op_resolver.h, golden.h


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    return make_export(tmp_path_factory.mktemp("export"))


def _sketch_copy(tmp_path: Path) -> Path:
    """The committed sketch folder, copied (tests never write into the repository)."""
    sketch = tmp_path / "TinySpeechM"
    sketch.mkdir()
    for name in ("TinySpeechM.ino", "README.md"):
        shutil.copy(SKETCH / name, sketch / name)
    return sketch


def _sync(*args: str) -> subprocess.CompletedProcess:
    # the system's python3 would do (stdlib only); the test's interpreter is one
    return subprocess.run([sys.executable, str(SYNC), *args], capture_output=True, text=True,
                          check=False)


# ---- firmware/arduino/sync.py ------------------------------------------------------------------
def test_sync_converts_the_exporters_copy_and_is_idempotent(export_dir, tmp_path) -> None:
    sketch = _sketch_copy(tmp_path)
    for name in MODEL_FILES:  # what `tinyspeech export-tflite` copies into the sketch
        shutil.copy(export_dir / name, sketch / name)
    proc = _sync("--sketch-dir", str(sketch))
    assert proc.returncode == 0, proc.stderr
    names = {p.name for p in sketch.iterdir()}
    assert "model_data.cc" not in names and "kws_runner.cc" not in names
    expected = {"kws_frontend.c", "kws_frontend.h", "kws_frontend_tables.h",
                "recognize_commands.c", "recognize_commands.h", "kws_runner.h",
                "kws_runner.cpp", "model_data.cpp", *(set(MODEL_FILES) - {"model_data.cc"})}
    assert expected <= names
    # the Arduino builder compiles .c/.cpp/.S (and .cc since arduino-cli 0.35): each unit once
    units = sorted(p.name for p in sketch.iterdir() if p.suffix in (".c", ".cpp", ".cc", ".S"))
    assert units == ["kws_frontend.c", "kws_runner.cpp", "model_data.cpp",
                     "recognize_commands.c"]
    runner = (sketch / "kws_runner.cpp").read_text()
    assert runner.startswith("/* COPIED by firmware/arduino/sync.py from "
                             "firmware/common/kws_runner.cc")
    assert runner.endswith((COMMON_DIR / "kws_runner.cc").read_text())
    assert (sketch / "model_data.cpp").read_text().endswith(
        (export_dir / "model_data.cc").read_text())
    before = {p.name: p.read_text() for p in sketch.iterdir()}
    proc = _sync("--sketch-dir", str(sketch))  # nothing new exported: nothing changes
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_text() for p in sketch.iterdir()} == before


def test_sync_without_an_export_says_what_to_run(tmp_path) -> None:
    sketch = _sketch_copy(tmp_path)
    proc = _sync("--sketch-dir", str(sketch))
    assert proc.returncode != 0
    assert "make export-tflite" in proc.stderr and "model_data.cc" in proc.stderr
    proc = _sync("--sketch-dir", str(tmp_path))  # not a sketch folder
    assert proc.returncode != 0 and "not a sketch folder" in proc.stderr


# ---- the Arduino sketch --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synced_sketch(export_dir, tmp_path_factory) -> Path:
    sketch = _sketch_copy(tmp_path_factory.mktemp("arduino"))
    proc = _sync("--sketch-dir", str(sketch), "--model-dir", str(export_dir))
    assert proc.returncode == 0, proc.stderr
    return sketch


def test_arduino_sketch_compiles_for_the_nano_33_ble_sense(synced_sketch, tmp_path) -> None:
    """Every file the Arduino builder would compile, as it would: the .ino as C++ with
    Arduino.h included first, only the sketch folder and the libraries on the include path."""
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-g++")
    includes = [synced_sketch]
    sources = sorted(p for p in synced_sketch.iterdir() if p.suffix in (".c", ".cpp", ".ino"))
    assert [p.suffix for p in sources].count(".ino") == 1
    for src in sources:
        extra = ["-x", "c++", "-include", "Arduino.h"] if src.suffix == ".ino" else []
        FB.compile_source(src, includes, tmp_path / f"{src.name}.o", "qemu", extra=extra,
                          system_dirs=[ARDUINO_MOCK, TFLM_MOCK])


def test_arduino_sketch_prints_the_self_test_verdict() -> None:
    ino = (SKETCH / "TinySpeechM.ino").read_text()
    assert '"self-test: PASS"' in ino and '"self-test: FAIL"' in ino
    assert "kws_runner_self_test(" in ino and "PDM.begin(1, KWS_FE_SAMPLE_RATE)" in ino
    assert ino.index("#include <TensorFlowLite.h>") < ino.index('#include "kws_runner.h"')


# ---- the Zephyr app ------------------------------------------------------------------------------
ZEPHYR_SOURCES = [ZEPHYR_APP / "src" / "main.cpp", *sorted(COMMON_DIR.glob("*.c")),
                  *sorted(COMMON_DIR.glob("*.cc"))]


@pytest.mark.parametrize("cpu,defines", [
    ("cortex-m3", []), ("cortex-m3", ["CONFIG_AUDIO_DMIC=1"]),
    ("cortex-m4f", []), ("cortex-m4f", ["CONFIG_AUDIO_DMIC=1"]),
    ("cortex-m4f", ["KWS_RUNNER_NO_SELF_TEST"])])
def test_zephyr_app_compiles(export_dir, tmp_path, cpu, defines) -> None:
    """What the CMakeLists compiles: src/main.cpp, ../common/*.c(c) and the export's *.cc,
    for qemu_cortex_m3 (no FPU) and a Cortex-M4F board, with and without the DMIC path and
    the self-test."""
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-g++")
    flags = FB.CORTEX_M3_FLAGS if cpu == "cortex-m3" else ARM_FLAGS
    includes = [COMMON_DIR, export_dir]
    for src in [*ZEPHYR_SOURCES, export_dir / "model_data.cc"]:
        FB.compile_source(src, includes, tmp_path / f"{src.name}.o", "qemu", defines,
                          arm_flags=flags, system_dirs=[ZEPHYR_MOCK, TFLM_MOCK])


def test_runner_functions_keep_small_stack_frames(export_dir, tmp_path) -> None:
    """kws_runner_init once held a whole smoother (2.5 KB) on the stack to validate its config;
    the Cortex-M4 frames of the runner's own functions (gcc -fstack-usage; TFLM's callees come
    on top) stay small now."""
    require_tools("arm-none-eabi-g++")
    includes = [COMMON_DIR, export_dir]
    obj = tmp_path / "kws_runner.o"
    FB.compile_source(COMMON_DIR / "kws_runner.cc", includes, obj, "qemu",
                      extra=["-fstack-usage"], system_dirs=[TFLM_MOCK])
    frames = {}
    for line in obj.with_suffix(".su").read_text().splitlines():
        where, size, _kind = line.rsplit("\t", 2)
        frames[where.rsplit(":", 1)[-1]] = int(size)
    init = next(v for k, v in frames.items() if "kws_runner_init" in k)
    push = next(v for k, v in frames.items() if "kws_runner_push_audio" in k)
    print(f"\nCortex-M4 stack frames: kws_runner_init {init} B, kws_runner_push_audio {push} B")
    assert init <= 256 and push <= 256, frames


def test_zephyr_app_is_wired_consistently() -> None:
    yaml = pytest.importorskip("yaml")
    cmake = (ZEPHYR_APP / "CMakeLists.txt").read_text()
    for name in MODEL_FILES:
        assert name in cmake, f"CMakeLists.txt does not check for {name}"
    assert "../common" in cmake and "src/model" in cmake and "src/main.cpp" in cmake
    conf = dict(line.split("=", 1) for line in (ZEPHYR_APP / "prj.conf").read_text().splitlines()
                if line and not line.startswith("#"))
    for option in ("CONFIG_CPP", "CONFIG_STD_CPP17", "CONFIG_REQUIRES_FULL_LIBCPP",
                   "CONFIG_REQUIRES_FULL_LIBC", "CONFIG_TENSORFLOW_LITE_MICRO"):
        assert conf.get(option) == "y", option
    sample = yaml.safe_load((ZEPHYR_APP / "sample.yaml").read_text())
    assert sample["common"]["modules"] == ["tflite-micro"]
    regexes = sample["common"]["harness_config"]["regex"]
    main = (ZEPHYR_APP / "src" / "main.cpp").read_text()
    printed = ["golden clip \"_unknown_\": host predicted \"yes\", board \"yes\"",
               "self-test: PASS"]  # what main.cpp's format strings print on success
    assert 'printk("golden clip \\"%s\\": host predicted \\"%s\\", board \\"%s\\"\\n"' in main
    assert 'printk("self-test: %s\\n", passed ? "PASS" : "FAIL")' in main
    for regex, line in zip(regexes, printed, strict=True):
        assert re.fullmatch(regex, line), (regex, line)
    dmic_conf = (ZEPHYR_APP / "dmic.conf").read_text()
    assert "CONFIG_AUDIO=y" in dmic_conf and "CONFIG_AUDIO_DMIC=y" in dmic_conf
