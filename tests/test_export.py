"""``tinyspeech export-tflite``: the generated firmware files hold the run's model and numbers.

The run directory is made without training (a seeded zoo model, int8-converted on random
calibration data) and the golden clip is a generated tone passed with --golden-wav, so nothing
here needs ../shared. Compile checks use host g++ and arm-none-eabi-g++; op_resolver.h is
compiled against the TFLM mock in tests/fixtures/tflm_mock (regenerate it with
``.venv/bin/python tests/test_export.py`` when quantize.TFLM_OPS changes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, require_tools
from conftest import fails_one_line as _fails
from tiny_export import make_run

from tinyspeech_tf import board_arena, cli, quantize, tflm
from tinyspeech_tf.audio import write_wav
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.export import bundle as E
from tinyspeech_tf.export import headers as H
from tinyspeech_tf.export.c_array import c_float, c_string, parse_byte_array, parse_int_array
from tinyspeech_tf.frontend_c import ARM_FLAGS, COMMON_DIR, fnv1a32

MOCK_DIR = REPO_ROOT / "tests" / "fixtures" / "tflm_mock"
MOCK_HEADER = MOCK_DIR / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
CXX_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
ARM_CXX = ["arm-none-eabi-g++", *ARM_FLAGS, *CXX_FLAGS]


# ---- the TFLM mock -----------------------------------------------------------------------------
def mock_header_text() -> str:
    """A stand-in for TFLM's micro_mutable_op_resolver.h: one Add* per op TFLM registers.

    Like TFLM, an Add fails when the resolver is full or the op is already registered; it
    records builtin names so a test program can print what was registered. As in TFLM it
    derives from MicroOpResolver (what MicroInterpreter takes) and gets TfLiteStatus from
    common.h; both are hand-written mocks beside it (see tests/test_firmware_runner.py).
    """
    methods = "".join(
        f'  TfLiteStatus {quantize.resolver_method(op)}() {{ return Register("{op}"); }}\n'
        for op in sorted(quantize.TFLM_OPS))
    return (
        "// GENERATED FILE - do not edit. Regenerate with: .venv/bin/python tests/test_export.py\n"
        "// Test mock of TFLM's MicroMutableOpResolver: one Add* method per op in\n"
        "// tinyspeech_tf.quantize.TFLM_OPS (named by quantize.resolver_method).\n"
        "#ifndef TINYSPEECH_TFLM_MOCK_MICRO_MUTABLE_OP_RESOLVER_H_\n"
        "#define TINYSPEECH_TFLM_MOCK_MICRO_MUTABLE_OP_RESOLVER_H_\n\n"
        "#include <cstring>\n\n"
        '#include "tensorflow/lite/c/common.h"\n'
        '#include "tensorflow/lite/micro/micro_op_resolver.h"\n\n'
        "namespace tflite {\n\n"
        "template <unsigned int tOpCount>\n"
        "class MicroMutableOpResolver : public MicroOpResolver {\n"
        " public:\n"
        "  unsigned int registered() const override { return count_; }\n"
        "  const char* name(unsigned int i) const { return names_[i]; }\n\n"
        + methods +
        "\n private:\n"
        "  TfLiteStatus Register(const char* op) {\n"
        "    for (unsigned int i = 0; i < count_; ++i) {\n"
        "      if (std::strcmp(names_[i], op) == 0) return kTfLiteError;  // twice, as TFLM\n"
        "    }\n"
        "    if (count_ >= tOpCount) return kTfLiteError;  // resolver too small, as TFLM\n"
        "    names_[count_++] = op;\n"
        "    return kTfLiteOk;\n"
        "  }\n"
        "  const char* names_[tOpCount > 0 ? tOpCount : 1] = {};\n"
        "  unsigned int count_ = 0;\n"
        "};\n\n"
        "}  // namespace tflite\n\n"
        "#endif  // TINYSPEECH_TFLM_MOCK_MICRO_MUTABLE_OP_RESOLVER_H_\n")


def test_mock_is_up_to_date() -> None:
    assert MOCK_HEADER.read_text() == mock_header_text(), \
        "regenerate with: .venv/bin/python tests/test_export.py"


# ---- fixtures ----------------------------------------------------------------------------------
def _tone(freq: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(16000) / 16000.0
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as `tinyspeech train` leaves it, minus the training."""
    return make_run(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def golden_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wav") / "tone.wav"
    write_wav(path, _tone())
    return path


@pytest.fixture(scope="module")
def exported(run_dir, golden_wav, tmp_path_factory) -> dict:
    """One export through the CLI; copy targets inside tmp (never the repository)."""
    root = tmp_path_factory.mktemp("export")
    out, copies = root / "build" / "tinyspeech_m", [root / "arduino", root / "zephyr" / "model"]
    argv = ["export-tflite", str(run_dir), "--out", str(out), "--golden-wav", str(golden_wav)]
    for c in copies:
        argv += ["--copy-to", str(c)]
    assert cli.main(argv) == 0
    files = {name: (out / name).read_text() for name in H.FILES}
    manifest = json.loads((out / E.MANIFEST).read_text())
    tflite = (run_dir / "model_int8.tflite").read_bytes()
    return {"out": out, "copies": copies, "files": files, "manifest": manifest,
            "tflite": tflite, "root": root}


# ---- files and contents ------------------------------------------------------------------------
def test_all_files_written_and_copied(exported) -> None:
    out = exported["out"]
    for name in (*H.FILES, E.MANIFEST):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for target in exported["copies"]:
        for name in H.FILES:
            assert (target / name).read_text() == exported["files"][name], (target, name)
    assert not list(out.glob(".*tmp*")), "temporary files left behind"
    m = exported["manifest"]
    assert m["files"] == list(H.FILES) and len(m["copied_to"]) == 2
    assert m["tflite_bytes"] == len(exported["tflite"])
    assert m["golden"]["clip"] == "tone.wav" and m["golden"]["label_source"] == "prediction"
    assert m["warnings"] == []


def test_warns_when_firmware_tables_are_for_another_frontend() -> None:
    from tinyspeech_tf.features import DEFAULT_CONFIG, FrontendConfig

    assert E._tables_mismatch(DEFAULT_CONFIG) is None
    assert "frontend.json" in E._tables_mismatch(FrontendConfig(log_offset=1e-3))


def test_files_say_generated_and_hold_no_local_paths(exported, tmp_path_factory) -> None:
    texts = {**exported["files"], E.MANIFEST: json.dumps(exported["manifest"])}
    for name, text in texts.items():
        assert str(exported["root"]) not in text and str(REPO_ROOT) not in text, name
        assert str(tmp_path_factory.getbasetemp()) not in text, name
    for name in H.FILES:
        head = exported["files"][name].splitlines()[:6]
        assert head[0].startswith("/* GENERATED FILE - do not edit"), name
        assert any("Generated by: tinyspeech export-tflite" in line for line in head), name
        assert any("From run: tinyspeech_m" in line for line in head), name


def test_model_data_parses_back_to_the_tflite(exported) -> None:
    cc = exported["files"][H.MODEL_DATA_CC]
    assert parse_byte_array(cc) == exported["tflite"]
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    h = exported["files"][H.MODEL_DATA_H]
    assert "extern const unsigned char g_model_data[];" in h
    assert "extern const unsigned int g_model_data_len;" in h
    # the parser notices a broken file
    with pytest.raises(ValueError, match="g_model_data_len"):
        parse_byte_array(cc.replace("0x18, ", "", 1))
    with pytest.raises(ValueError, match="no initialised array"):
        parse_byte_array(h)


def _defines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#define "):
            parts = line.split(None, 2)
            value = parts[2].split("/*")[0].strip() if len(parts) > 2 else ""
            out[parts[1]] = value
    return out


def test_settings_match_run(exported, run_dir) -> None:
    from tinyspeech_tf.features import DEFAULT_CONFIG as fe

    d = _defines(exported["files"][H.MODEL_SETTINGS_H])
    io = quantize.io_quantization(exported["tflite"])
    measured = tflm.arena_bytes(exported["tflite"])
    # TINYSPEECH_ARENA_SIZE is defined twice: for 64-bit hosts, then for 32-bit targets.
    arena, arena_32bit = (int(line.split()[2]) for line in
                          exported["files"][H.MODEL_SETTINGS_H].splitlines()
                          if line.startswith("#define TINYSPEECH_ARENA_SIZE "))
    margin = E.DEFAULT_ARENA_MARGIN
    assert int(d["TINYSPEECH_ARENA_MARGIN"]) == margin
    assert int(d["TINYSPEECH_ARENA_MEASURED"]) == measured
    assert arena == -(-(measured + margin) // 16) * 16
    tflm.interpreter(exported["tflite"], arena)  # allocates in the header's arena
    board = board_arena.board_arena_bytes(exported["tflite"])
    assert int(d["TINYSPEECH_ARENA_32BIT"]) == board["arena"] < measured
    assert arena_32bit == -(-(board["arena"] + margin) // 16) * 16
    assert d["TINYSPEECH_INPUT_SCALE"] == c_float(io["input_scale"])
    assert int(d["TINYSPEECH_INPUT_ZERO_POINT"]) == io["input_zero_point"]
    assert d["TINYSPEECH_OUTPUT_SCALE"] == c_float(io["output_scale"])
    assert int(d["TINYSPEECH_OUTPUT_ZERO_POINT"].strip("()")) == io["output_zero_point"]
    assert np.float32(d["TINYSPEECH_INPUT_SCALE"].rstrip("f")) == np.float32(io["input_scale"])
    labels = (run_dir / "labels.txt").read_text().split()
    assert d["TINYSPEECH_LABELS_INIT"] == "{" + ", ".join(map(c_string, labels)) + "}"
    assert int(d["TINYSPEECH_LABEL_COUNT"]) == len(labels) == 12
    assert int(d["TINYSPEECH_SILENCE_INDEX"]) == labels.index("_silence_")
    assert int(d["TINYSPEECH_UNKNOWN_INDEX"]) == labels.index("_unknown_")
    for macro, value in (("SAMPLE_RATE", fe.sample_rate), ("CLIP_SAMPLES", fe.clip_samples),
                         ("FRAME_LENGTH", fe.frame_length), ("FRAME_STEP", fe.frame_step),
                         ("NUM_FRAMES", fe.num_frames), ("NUM_MFCC", fe.num_mfcc),
                         ("INPUT_FRAMES", 49), ("INPUT_COEFFICIENTS", 10)):
        assert int(d[f"TINYSPEECH_{macro}"]) == value, macro
    assert d["TINYSPEECH_MODEL_FNV1A32"] == f"0x{fnv1a32(exported['tflite']):08x}u"
    m = exported["manifest"]
    assert (m["arena_measured_bytes"], m["arena_header_bytes"], m["arena_margin_bytes"]) == \
        (measured, arena, margin)


def _settings(detector=None) -> H.Settings:
    from tinyspeech_tf.data import LABELS
    from tinyspeech_tf.features import DEFAULT_CONFIG

    return H.Settings(labels=LABELS, frontend=DEFAULT_CONFIG, input_frames=49,
                      input_coefficients=10, input_scale=0.5, input_zero_point=0,
                      output_scale=1 / 256, output_zero_point=-128, arena_measured=1000,
                      arena_margin=16, arena_size=1024, arena_32bit=800,
                      arena_32bit_size=816, silence_index=0, unknown_index=1,
                      detector=detector)


@pytest.mark.parametrize("stride_ms,window_ms,min_count,results", [
    (100, 250, 1, 3),  # the shipped detector: results 0, 100 and 200 ms back
    (100, 500, 2, 6),  # 0..500 ms at 100 ms: both ends count
    (500, 250, 3, 3),  # fewer results than the count: the count must fit
    (20, 1000, 3, 51),
])
def test_smoother_ring_sized_by_the_detector(stride_ms, window_ms, min_count, results) -> None:
    from tinyspeech_tf.runs import DetectorSettings

    detector = DetectorSettings(stride_ms=stride_ms, threshold=200, window_ms=window_ms,
                                min_count=min_count, suppression_ms=1500, chosen_on="a.wav",
                                max_false_alarms_per_hour=6.0, hit_rate=0.5,
                                false_alarms_per_hour=1.0)
    s = _settings(detector)
    assert H.smoother_capacity(s)[:2] == (12, results)
    prov = H.Provenance("tinyspeech export-tflite runs/x", "runs/x", 100, "0" * 64, 1)
    d = _defines(H.model_settings_h(s, prov))
    assert int(d["TINYSPEECH_SMOOTHER_RESULTS"]) == results
    assert d["TINYSPEECH_SMOOTHER_CLASSES"] == "TINYSPEECH_LABEL_COUNT"


def test_smoother_ring_without_detector_fits_the_runner_defaults(exported) -> None:
    """No detector: the runner runs every KWS_RUNNER_DEFAULT_INVOKE_EVERY frames with
    micro_speech's window and count, and the export sizes the ring for exactly that."""
    import re

    runner_h = (COMMON_DIR / "kws_runner.h").read_text()
    m = re.search(r"#define KWS_RUNNER_DEFAULT_INVOKE_EVERY (\d+)", runner_h)
    assert m and int(m.group(1)) == H.RUNNER_DEFAULT_STRIDE_FRAMES
    d = _defines(exported["files"][H.MODEL_SETTINGS_H])
    assert "TINYSPEECH_DETECTOR_WINDOW_MS" not in d
    assert int(d["TINYSPEECH_SMOOTHER_RESULTS"]) == 1000 // (2 * 20) + 1 == \
        H.smoother_capacity(_settings())[1]


def test_resolver_adds_exactly_the_model_ops(exported) -> None:
    import re

    text = exported["files"][H.OP_RESOLVER_H]
    ops = quantize.op_set(exported["tflite"])
    adds = re.findall(r"resolver\.(Add\w+)\(\)", text)
    assert adds == [quantize.resolver_method(op) for op in ops]
    assert int(_defines(text)["TINYSPEECH_OP_COUNT"]) == len(ops) == len(set(adds))
    assert "MicroMutableOpResolver<TINYSPEECH_OP_COUNT>" in text
    assert '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"' in text
    assert exported["manifest"]["ops"] == ops


def test_golden_vectors_are_tflm_on_the_python_frontend(exported, golden_wav) -> None:
    from tinyspeech_tf.audio import read_wav, to_int16
    from tinyspeech_tf.features import features_from_samples
    from tinyspeech_tf.features import quantize as quantize_features

    text = exported["files"][H.GOLDEN_H]
    samples = parse_int_array(text, "g_golden_samples")
    features = parse_int_array(text, "g_golden_features").astype(np.int8).reshape(49, 10)
    scores = parse_int_array(text, "g_golden_scores").astype(np.int8)
    d = _defines(text)
    first, count = int(d["TINYSPEECH_GOLDEN_FIRST_FRAME"]), int(d["TINYSPEECH_GOLDEN_FRAME_COUNT"])
    clip = to_int16(read_wav(golden_wav)[0])
    # the PCM of the default few frames, from the loudest: flash for the self-test <= 4 KB
    assert count == H.DEFAULT_GOLDEN_FRAMES and len(samples) == 480 + (count - 1) * 320
    assert first == H.golden_segment(clip, 480, 320, count)
    np.testing.assert_array_equal(samples, clip[first * 320:first * 320 + len(samples)])
    assert 2 * samples.size + features.size + scores.size <= 4096
    io = quantize.io_quantization(exported["tflite"])

    def python_features(pcm):
        return quantize_features(features_from_samples(pcm.astype(np.float32) / 32768.0),
                                 io["input_scale"], io["input_zero_point"])

    np.testing.assert_array_equal(features, python_features(clip))
    # frames are independent: the segment's frames are those rows of the whole clip's
    np.testing.assert_array_equal(python_features(samples)[:count], features[first:first + count])
    tflm_scores = tflm.run_tflm(exported["tflite"], features.reshape(1, 49, 10, 1))[0]
    np.testing.assert_array_equal(scores, tflm_scores)
    assert int(d["TINYSPEECH_GOLDEN_PREDICTED_INDEX"]) == int(np.argmax(scores))
    # a tone has no label, so the expected label is the model's own prediction
    assert int(d["TINYSPEECH_GOLDEN_LABEL_INDEX"]) == int(np.argmax(scores))
    assert f"0x{fnv1a32(exported['tflite']):08x}u" in text


def test_golden_label_from_option_or_folder(run_dir, tmp_path) -> None:
    run = E.read_run(run_dir)
    io = quantize.io_quantization(run.tflite)
    wav = tmp_path / "go" / "clip.wav"
    wav.parent.mkdir()
    write_wav(wav, _tone(700.0))
    g = E.make_golden(run, io, str(wav))
    assert (g.label, g.label_index, g.label_source) == ("go", run.labels.index("go"), "folder")
    g = E.make_golden(run, io, str(wav), "yes")
    assert (g.label, g.label_index, g.label_source) == ("yes", 2, "option")
    with pytest.raises(UserError, match="not a label"):
        E.make_golden(run, io, str(wav), "hello")


def test_dataset_golden_clip_is_first_validation_clip_of_first_keyword(run_dir, tmp_path,
                                                                       monkeypatch) -> None:
    from tinyspeech_tf.data import LABELS

    ds = tmp_path / "ds"
    for i, label in enumerate(LABELS):
        (ds / "val" / label).mkdir(parents=True)
        write_wav(ds / "val" / label / "c.wav", _tone(200.0 + 100 * i))
    write_wav(ds / "val" / "yes" / "a.wav", _tone(333.0))
    write_wav(ds / "val" / "yes" / "b.wav", _tone(444.0))
    run = E.read_run(run_dir)
    run.config = {"data": str(ds)}
    samples, path, label = E.dataset_golden_clip(run)
    assert label == "yes" and Path(path).as_posix().endswith("val/yes/a.wav")
    np.testing.assert_allclose(samples, _tone(333.0), atol=1 / 32768)
    # `synthetic` means the offline set in .cache/synthetic of the working directory
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ds, tmp_path / ".cache" / "synthetic")
    run.config = {"data": "synthetic"}
    assert Path(E._dataset_path(run)).as_posix() == ".cache/synthetic"


def test_no_copy_writes_only_out_and_is_reproducible(exported, run_dir, golden_wav,
                                                     tmp_path) -> None:
    out, copy = tmp_path / "out", tmp_path / "copy"
    assert cli.main(["export-tflite", str(run_dir), "--out", str(out), "--golden-wav",
                     str(golden_wav), "--copy-to", str(copy), "--no-copy"]) == 0
    assert not copy.exists()
    for name in H.FILES:  # same run, same files: nothing depends on time or place
        assert (out / name).read_text() == exported["files"][name], name


def test_default_out_dir_is_build_slash_run_name() -> None:
    assert E.default_out_dir("runs/tinyspeech_m") == Path("build/tinyspeech_m")
    assert E.default_out_dir("runs/real/ds_cnn/") == Path("build/ds_cnn")
    assert E.DEFAULT_COPY_DIRS == ("firmware/arduino/TinySpeechM", "firmware/zephyr/src/model")


# ---- user mistakes: exit 2, one line -----------------------------------------------------------


def test_bad_run_dir_is_one_line_error(tmp_path, capsys) -> None:
    _fails(["export-tflite", str(tmp_path / "nope"), "--no-copy"], capsys,
           "no such run directory", "make train")


@pytest.mark.parametrize("missing", ["model_int8.tflite", "labels.txt", "frontend.json"])
def test_incomplete_run_is_one_line_error(run_dir, tmp_path, capsys, missing) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / missing).unlink()
    _fails(["export-tflite", str(run), "--out", str(tmp_path / "o"), "--no-copy"], capsys,
           missing, "is missing")
    assert not (tmp_path / "o").exists()


def test_other_mistakes_are_one_line_errors(run_dir, tmp_path, capsys) -> None:
    base = ["export-tflite", str(run_dir), "--out", str(tmp_path / "o"), "--no-copy"]
    _fails([*base, "--arena-margin", "-16"], capsys, "--arena-margin")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    _fails([*base, "--golden-wav", str(bad)], capsys, "bad.wav", "wav")
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "model_int8.tflite").write_bytes(b"\0" * 64)
    _fails(["export-tflite", str(broken), "--no-copy"], capsys, "not a TFLite flatbuffer")
    assert not (tmp_path / "o" / E.MANIFEST).exists()


def test_export_without_the_runs_dataset_uses_a_generated_golden(run_dir, tmp_path, capsys):
    """A shipped model on a user's machine: the dataset it was trained on is absent, so the
    self-test's golden clip is a generated signal, labelled by the model's own prediction;
    the export needs no data and copies none."""
    out = tmp_path / "o"
    assert cli.main(["export-tflite", str(run_dir), "--out", str(out), "--no-copy"]) == 0
    assert E.GENERATED_CLIP in capsys.readouterr().out
    golden = (out / "golden.h").read_text()
    assert "generated test signal" in golden
    manifest = json.loads((out / E.MANIFEST).read_text())
    assert manifest["golden"]["label_source"] == "prediction"
    samples = E.generated_golden_clip(16000, 16000)
    assert samples.shape == (16000,) and 0.1 < np.abs(samples).max() < 1.0
    np.testing.assert_array_equal(samples, E.generated_golden_clip(16000, 16000))


def test_export_replays_the_golden_clip_the_run_stored(run_dir, tmp_path, capsys) -> None:
    """Training fixes the self-test clip in the run (golden.wav + golden.json): export takes
    it, with its label, on a machine without the dataset; a label the model lacks is refused."""
    from tinyspeech_tf.runs import write_golden

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    write_golden(run, _tone(555.0), "no", "val/no/x.wav")
    out = tmp_path / "o"
    assert cli.main(["export-tflite", str(run), "--out", str(out), "--no-copy"]) == 0
    manifest = json.loads((out / E.MANIFEST).read_text())
    assert manifest["golden"]["label_source"] == "run"
    assert manifest["golden"]["label"] == "no" and "val/no/x.wav" in manifest["golden"]["clip"]
    golden = (out / "golden.h").read_text()
    from tinyspeech_tf.audio import to_int16

    first = int(_defines(golden)["TINYSPEECH_GOLDEN_FIRST_FRAME"])
    pcm = parse_int_array(golden, "g_golden_samples")
    np.testing.assert_array_equal(pcm, to_int16(_tone(555.0))[first * 320:first * 320 + len(pcm)])
    (run / "golden.json").write_text('{"label": "hello", "clip": "x"}')
    _fails(["export-tflite", str(run), "--out", str(tmp_path / "o2"), "--no-copy"], capsys,
           "golden.json", "hello")


# ---- compiling ---------------------------------------------------------------------------------
HOST_MAIN = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "golden.h"
#include "model_data.h"
#include "model_settings.h"

static uint32_t fnv1a32(const unsigned char* p, unsigned int n) {
  uint32_t h = 0x811C9DC5u;
  for (unsigned int i = 0; i < n; ++i) h = (h ^ p[i]) * 0x01000193u;
  return h;
}

int main() {
  static uint8_t arena[kArenaSize];
  (void)arena;
  if (g_model_data_len != TINYSPEECH_MODEL_BYTES) return 1;
  if (reinterpret_cast<uintptr_t>(g_model_data) % 16 != 0) return 2;
  if (fnv1a32(g_model_data, g_model_data_len) != TINYSPEECH_MODEL_FNV1A32) return 3;
  if (std::strcmp(kLabels[kSilenceIndex], "_silence_") != 0) return 4;
  if (std::strcmp(kLabels[kUnknownIndex], "_unknown_") != 0) return 5;
  if (std::strcmp(kLabels[TINYSPEECH_GOLDEN_LABEL_INDEX], TINYSPEECH_GOLDEN_LABEL) != 0) return 6;
  int best = 0;
  for (int i = 1; i < TINYSPEECH_GOLDEN_SCORE_COUNT; ++i) {
    if (g_golden_scores[i] > g_golden_scores[best]) best = i;
  }
  if (best != TINYSPEECH_GOLDEN_PREDICTED_INDEX) return 7;
  long sum = 0;
  for (int i = 0; i < kInputSize; ++i) sum += g_golden_features[i];
  for (int i = 0; i < TINYSPEECH_GOLDEN_SAMPLE_COUNT; ++i) sum += g_golden_samples[i] != 0;
  std::printf("ok %ld %d %d\n", sum, kArenaSize, kLabelCount);
  return 0;
}
"""

C_USER = r"""
#include "golden.h"
#include "model_settings.h"

int tinyspeech_label_count(void) { return TINYSPEECH_LABEL_COUNT; }
"""

RESOLVER_MAIN = r"""
#include <cstdio>

#include "op_resolver.h"

int main() {
  TinySpeechOpResolver resolver;
  if (RegisterTinySpeechOps(resolver) != kTfLiteOk) return 1;
  if (resolver.registered() != TINYSPEECH_OP_COUNT) return 2;
  for (unsigned int i = 0; i < resolver.registered(); ++i) std::printf("%s\n", resolver.name(i));
  tflite::MicroMutableOpResolver<2 * TINYSPEECH_OP_COUNT> larger;
  if (RegisterTinySpeechOps(larger) != kTfLiteOk) return 3;
  if (RegisterTinySpeechOps(larger) == kTfLiteOk) return 4;  // duplicates must fail
  return 0;
}
"""


def _compile(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)}\n{proc.stdout}{proc.stderr}"


def _includes(out: Path) -> list[str]:
    return [f"-I{out}", f"-I{COMMON_DIR}"]


@pytest.mark.firmware
@pytest.mark.parametrize("compiler", ["host", "arm"])
def test_model_files_compile_warning_free(exported, tmp_path, compiler) -> None:
    cxx = ["g++", *CXX_FLAGS] if compiler == "host" else ARM_CXX
    require_tools(cxx[0])
    out = exported["out"]
    (tmp_path / "main.cc").write_text(HOST_MAIN)
    for src in (out / H.MODEL_DATA_CC, tmp_path / "main.cc"):
        _ok(_compile([*cxx, "-O2", *_includes(out), "-c", str(src), "-o",
                      str(tmp_path / f"{src.stem}.o")], tmp_path))
    if compiler == "host":
        _ok(_compile(["g++", "main.o", "model_data.o", "-o", "check"], tmp_path))
        proc = _compile([str(tmp_path / "check")], tmp_path)
        _ok(proc)
        assert proc.stdout.startswith("ok ")


@pytest.mark.firmware
@pytest.mark.parametrize("compiler", ["host", "arm"])
def test_arena_size_follows_the_target_pointer_size(exported, tmp_path, compiler) -> None:
    """A 64-bit host build gets the measured arena, a Cortex-M build board_arena's bound
    (each plus the margin): the value the compiler sees is the one for its target."""
    cxx = ["g++", *CXX_FLAGS] if compiler == "host" else ARM_CXX
    require_tools(cxx[0])
    out = exported["out"]
    sizes = [int(line.split()[2]) for line in (out / H.MODEL_SETTINGS_H).read_text().splitlines()
             if line.startswith("#define TINYSPEECH_ARENA_SIZE ")]
    expected = sizes[0] if compiler == "host" else sizes[1]
    assert sizes[0] != sizes[1]
    (tmp_path / "a.cc").write_text('#include "model_settings.h"\n'
                                   f'static_assert(kArenaSize == {expected}, "arena");\n')
    _ok(_compile([*cxx, *_includes(out), "-c", "a.cc", "-o", "a.o"], tmp_path))


@pytest.mark.firmware
@pytest.mark.parametrize("compiler", ["gcc", "arm-none-eabi-gcc"])
def test_settings_and_golden_compile_as_c(exported, tmp_path, compiler) -> None:
    """The C parts of the firmware (front-end, command recognizer) can include them too."""
    require_tools(compiler)
    flags = ARM_FLAGS if compiler.startswith("arm") else []
    (tmp_path / "user.c").write_text(C_USER)
    _ok(_compile([compiler, *flags, "-std=c99", "-Wall", "-Wextra", "-Werror",
                  *_includes(exported["out"]), "-c", "user.c", "-o", "user.o"], tmp_path))


@pytest.mark.firmware
def test_op_resolver_registers_exactly_the_ops(exported, tmp_path) -> None:
    require_tools("g++")
    (tmp_path / "main.cc").write_text(RESOLVER_MAIN)
    _ok(_compile(["g++", *CXX_FLAGS, f"-I{exported['out']}", f"-I{MOCK_DIR}", "main.cc",
                  "-o", "resolver"], tmp_path))
    proc = _compile([str(tmp_path / "resolver")], tmp_path)
    _ok(proc)
    assert proc.stdout.split() == quantize.op_set(exported["tflite"])


@pytest.mark.firmware
def test_op_resolver_compiles_for_cortex_m4(exported, tmp_path) -> None:
    require_tools("arm-none-eabi-g++")
    (tmp_path / "r.cc").write_text('#include "op_resolver.h"\n'
                                   "TfLiteStatus setup(TinySpeechOpResolver& r) {\n"
                                   "  return RegisterTinySpeechOps(r);\n}\n")
    _ok(_compile([*ARM_CXX, f"-I{exported['out']}", f"-I{MOCK_DIR}", "-c", "r.cc"], tmp_path))


@pytest.mark.firmware
def test_compile_time_checks_catch_mismatches(exported, tmp_path) -> None:
    """A too-small resolver, other front-end tables, or files of two exports do not compile."""
    require_tools("g++")
    out = exported["out"]
    small = ('#include "op_resolver.h"\nint main() {\n'
             "  tflite::MicroMutableOpResolver<TINYSPEECH_OP_COUNT - 1> r;\n"
             "  return RegisterTinySpeechOps(r) == kTfLiteOk;\n}\n")
    (tmp_path / "small.cc").write_text(small)
    proc = _compile(["g++", *CXX_FLAGS, f"-I{out}", f"-I{MOCK_DIR}", "-c", "small.cc"],
                    tmp_path)
    assert proc.returncode != 0 and "resolver too small" in proc.stderr

    other = tmp_path / "other_tables"
    other.mkdir()
    tables = (COMMON_DIR / H.TABLES_HEADER).read_text()
    (other / H.TABLES_HEADER).write_text(
        tables.replace("#define KWS_FE_NUM_FRAMES 49", "#define KWS_FE_NUM_FRAMES 50"))
    (tmp_path / "s.cc").write_text('#include "model_settings.h"\n')
    proc = _compile(["g++", *CXX_FLAGS, f"-I{out}", f"-I{other}", "-c", "s.cc"], tmp_path)
    assert proc.returncode != 0 and "another front-end" in proc.stderr

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    settings = exported["files"][H.MODEL_SETTINGS_H]
    fnv = f"0x{fnv1a32(exported['tflite']):08x}u"
    (mixed / H.MODEL_SETTINGS_H).write_text(settings.replace(fnv, "0x12345678u"))
    shutil.copy(out / H.GOLDEN_H, mixed / H.GOLDEN_H)
    (tmp_path / "g.cc").write_text('#include "golden.h"\n')
    proc = _compile(["g++", *CXX_FLAGS, f"-I{mixed}", f"-I{COMMON_DIR}", "-c", "g.cc"],
                    tmp_path)
    assert proc.returncode != 0 and "different exports" in proc.stderr


if __name__ == "__main__":
    MOCK_HEADER.parent.mkdir(parents=True, exist_ok=True)
    tmp = MOCK_HEADER.with_name(MOCK_HEADER.name + ".tmp")
    tmp.write_text(mock_header_text())
    tmp.replace(MOCK_HEADER)
    print(f"wrote {MOCK_HEADER.relative_to(REPO_ROOT)}")
    sys.exit(0)


def test_golden_segment_is_the_loudest_run_of_frames() -> None:
    x = np.zeros(16000, np.int16)
    x[8000:8600] = 10000
    first = H.golden_segment(x, 480, 320, 4)
    assert first * 320 <= 8000 and 8600 <= first * 320 + 1440
    assert H.golden_segment(np.zeros(16000, np.int16), 480, 320, 4) == 0
