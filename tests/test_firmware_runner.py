"""The firmware's streaming pipeline against its Python twins, on the host and on QEMU.

1. ``firmware/common/kws_runner.cc`` (the TFLM glue the Arduino sketch and the Zephyr app
   use) is built against the TFLM mock in tests/fixtures/tflm_mock, whose Invoke records the
   model input and answers with scripted scores. tests/fixtures/runner_harness.cc streams audio
   through it; every model input must equal the host C front-end's window (and the Python
   front-end's within 1 LSB), the windows, timestamps and invoke count must follow the
   documented cadence, and the smoother results must equal ``tinyspeech_tf.stream.smoother.run``.
   The same harness runs on QEMU (Cortex-M4) and must print exactly what the host prints.
2. ``firmware/qemu/main_smoother.c`` runs the streaming front-end on an export's golden clip
   and the C smoother on the scores TFLM gives for a stream around that clip, on QEMU and the
   host; both must match each other and Python.

What this cannot show: that real TFLM kernels give the golden scores on a board (the
self-test does that on the board) or that the real Arduino/Zephyr SDKs accept the code.
Skips without gcc/g++/arm-none-eabi-*/qemu-system-arm, except in CI (CI=true): fails there.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, require_tools
from tiny_export import make_export, tone

from tinyspeech_tf import firmware_build as FB
from tinyspeech_tf.audio import to_int16
from tinyspeech_tf.data import LABELS
from tinyspeech_tf.export.c_array import parse_int_array
from tinyspeech_tf.features import DEFAULT_CONFIG as FE
from tinyspeech_tf.features import quantize
from tinyspeech_tf.frontend_c import COMMON_DIR, HostFrontend, build_host_library, fnv1a32
from tinyspeech_tf.stream import smoother

pytestmark = pytest.mark.firmware

FIXTURES = REPO_ROOT / "tests" / "fixtures"
MOCK_DIR = FIXTURES / "tflm_mock"
HARNESS = FIXTURES / "runner_harness.cc"
RUNNER = COMMON_DIR / "kws_runner.cc"
SILENCE = LABELS.index("_silence_")
DEFAULT_INVOKE_EVERY = 2  # KWS_RUNNER_DEFAULT_INVOKE_EVERY
# The harness's smoother settings (a shorter window than the defaults: more decisions per
# second of test audio).
HARNESS_SMOOTHER = smoother.SmootherConfig(average_window_ms=500, detection_threshold=170,
                                           suppression_ms=600, minimum_count=3,
                                           silence_index=SILENCE)


# ---- shared inputs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    # the whole clip's PCM: these tests stream it (the default golden.h holds a few frames)
    return make_export(tmp_path_factory.mktemp("export"), golden_frames=49)


@pytest.fixture(scope="module")
def golden(export_dir) -> dict:
    text = (export_dir / "golden.h").read_text()
    settings = (export_dir / "model_settings.h").read_text()

    def define(name: str) -> str:
        return re.search(rf"#define {name} (\S+)", settings + text).group(1)

    return {"samples": parse_int_array(text, "g_golden_samples").astype(np.int16),
            "features": parse_int_array(text, "g_golden_features").astype(np.int8),
            "scores": parse_int_array(text, "g_golden_scores").astype(np.int8),
            "scale": float(define("TINYSPEECH_INPUT_SCALE").rstrip("f")),
            "zero_point": int(define("TINYSPEECH_INPUT_ZERO_POINT").strip("()")),
            "predicted": int(define("TINYSPEECH_GOLDEN_PREDICTED_INDEX")),
            "smoother_results": int(define("TINYSPEECH_SMOOTHER_RESULTS"))}


def _stream(golden_samples: np.ndarray) -> np.ndarray:
    """0.3 s of quiet noise, the golden clip, 0.8 s of a chirp in noise: int16."""
    rng = np.random.default_rng(7)
    lead = rng.normal(0.0, 0.01, 4800)
    t = np.arange(12800) / 16000.0
    tail = 0.2 * np.sin(2 * np.pi * (300 + 900 * t) * t) + rng.normal(0.0, 0.02, len(t))
    return np.concatenate([to_int16(lead), golden_samples, to_int16(tail)]).astype(np.int16)


def _chunks(total: int) -> list[int]:
    """Uneven chunk sizes covering ``total`` samples (with a 1-sample and a >1-frame chunk)."""
    sizes, pattern = [], [256, 1, 333, 640, 97, 1024, 320, 17, 2000, 480]
    while sum(sizes) < total:
        sizes.append(min(pattern[len(sizes) % len(pattern)], total - sum(sizes)))
    return sizes


# (label, rows, level of that label's score); None: every class near -107 (a flat softmax)
HARNESS_SEGMENTS = (("_silence_", 4, 100), ("yes", 10, 120), (None, 2, 0), ("no", 12, 110))
SMOOTHER_SEGMENTS = (("_silence_", 5, 100), ("yes", 30, 120), (None, 5, 0), ("no", 30, 110))


def _scripted_scores(segments=HARNESS_SEGMENTS, seed: int = 3) -> np.ndarray:
    """Model outputs to script, segment by segment, with a little noise (int8)."""
    rng = np.random.default_rng(seed)
    parts = []
    for label, rows, level in segments:
        s = np.full((rows, len(LABELS)), -120) + rng.integers(-5, 6, (rows, len(LABELS)))
        if label is None:
            s = -107 + rng.integers(-3, 4, (rows, len(LABELS)))
        else:
            s[:, LABELS.index(label)] = level + rng.integers(-6, 7, rows)
        parts.append(s)
    return np.clip(np.concatenate(parts), -128, 127).astype(np.int8)


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    items = [str(int(v)) for v in np.asarray(values).ravel()]
    body = ",\n".join("    " + ", ".join(items[i:i + per_line])
                      for i in range(0, len(items), per_line))
    return f"static const {ctype} {name}[{len(items)}] = {{\n{body}\n}};\n"


def _write_harness_data(path: Path, samples: np.ndarray, chunks: list[int],
                        scores: np.ndarray, cfg: smoother.SmootherConfig) -> None:
    path.write_text(
        "/* GENERATED at test time by tests/test_firmware_runner.py; do not commit. */\n"
        "#include <stdint.h>\n"
        f"#define HARNESS_CHUNK_COUNT {len(chunks)}\n#define HARNESS_SCORE_ROWS {len(scores)}\n"
        f"#define HARNESS_WINDOW_MS {cfg.average_window_ms}\n"
        f"#define HARNESS_THRESHOLD {cfg.detection_threshold}\n"
        f"#define HARNESS_SUPPRESSION_MS {cfg.suppression_ms}\n"
        f"#define HARNESS_MIN_COUNT {cfg.minimum_count}\n"
        + _c_array("int16_t", "harness_samples", samples)
        + _c_array("int", "harness_chunks", np.array(chunks))
        + _c_array("int8_t", "harness_scores", scores))


@pytest.fixture(scope="module")
def harness_inputs(golden, tmp_path_factory) -> dict:
    samples = _stream(golden["samples"])
    chunks = _chunks(len(samples))
    scores = _scripted_scores()
    data_dir = tmp_path_factory.mktemp("harness_data")
    _write_harness_data(data_dir / "harness_data.h", samples, chunks, scores, HARNESS_SMOOTHER)
    return {"samples": samples, "chunks": chunks, "scores": scores, "dir": data_dir}


def _harness_includes(export_dir: Path, data_dir: Path) -> list[Path]:
    return [export_dir, COMMON_DIR, MOCK_DIR, data_dir]


def _build_harness(export_dir: Path, data_dir: Path, out: Path, target: str) -> Path:
    # semihosting hands the program QEMU's command line, not ours: no argv on QEMU
    defines = ["HARNESS_NO_ARGS"] if target == "qemu" else []
    return FB.build_program([HARNESS, RUNNER, *FB.COMMON_C_SOURCES, export_dir / "model_data.cc"],
                            _harness_includes(export_dir, data_dir), out, target, defines)


@pytest.fixture(scope="module")
def harness_host(export_dir, harness_inputs, tmp_path_factory) -> Path:
    require_tools("gcc", "g++")
    out = tmp_path_factory.mktemp("harness_host") / "runner_harness"
    return _build_harness(export_dir, harness_inputs["dir"], out, "host")


def _run_harness(exe: Path, target: str = "host", invoke_every: int | None = None) -> str:
    args = [] if invoke_every is None else [str(invoke_every)]
    rc, out = FB.run_program(exe, target, args)
    assert rc == 0, f"harness exit code {rc}:\n{out[-3000:]}"
    return out


def _checks(out: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^check (\S+) (.*)$", out, re.M)}


# ---- the expected stream, from the Python twins ---------------------------------------------
@pytest.fixture(scope="module")
def python_frames(harness_inputs) -> np.ndarray:
    """Every MFCC frame of the harness stream by TensorFlow: frame k = samples [320k, 320k+480)."""
    from tinyspeech_tf.features import mfcc

    x = harness_inputs["samples"].astype(np.float32) / 32768.0
    return np.asarray(mfcc(x).numpy(), np.float32)


@pytest.fixture(scope="module")
def host_c(harness_inputs, tmp_path_factory) -> tuple[HostFrontend, np.ndarray]:
    """The host-built C front-end and its frames of the harness stream."""
    require_tools("gcc")
    lib, _ = build_host_library(tmp_path_factory.mktemp("frontend_host"))
    host = HostFrontend(lib)
    frames, _ = host.stream(harness_inputs["samples"], 320)
    return host, frames


def _expected_stream(inputs: dict, n_frames: int, every: int) -> tuple[list[int], list[int]]:
    """Frame index and timestamp of every inference, as kws_runner.h documents them."""
    ends = np.cumsum(inputs["chunks"])
    frames, times, last = [], [], None
    for f in range(FE.num_frames - 1, n_frames, every):
        end = FE.frame_length + FE.frame_step * f  # samples up to the frame's last one
        total = int(ends[np.searchsorted(ends, end)])  # the chunk it completes in
        t = total * 1000 // FE.sample_rate - (total - end) * 1000 // FE.sample_rate
        t = t if last is None else max(t, last)
        frames.append(f)
        times.append(t)
        last = t
    return frames, times


def _parse_stream(out: str) -> tuple[list[np.ndarray], list[tuple]]:
    inputs = [np.frombuffer(bytes.fromhex(m.group(2)), np.int8)
              for m in re.finditer(r"^invoke (\d+) ([0-9a-f]+)$", out, re.M)]
    events = [(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)),
               int(m.group(5)), int(m.group(6)),
               np.frombuffer(bytes.fromhex(m.group(7)), np.int8), m.group(8))
              for m in re.finditer(r"^event (\d+) (\d+) (-?\d+) (\d+) (\d+) ([01]) "
                                   r"([0-9a-f]+) (\S+)$", out, re.M)]
    return inputs, events


# ---- compile checks ------------------------------------------------------------------------------
# A run with a chosen detector (stream-tune) defines TINYSPEECH_DETECTOR_* in model_settings.h.
DETECTOR_DEFINES = ["TINYSPEECH_DETECTOR_STRIDE_FRAMES=5", "TINYSPEECH_DETECTOR_THRESHOLD=180",
                    "TINYSPEECH_DETECTOR_WINDOW_MS=500", "TINYSPEECH_DETECTOR_MIN_COUNT=2",
                    "TINYSPEECH_DETECTOR_SUPPRESSION_MS=1500"]


@pytest.mark.parametrize("target,defines", [("host", []), ("qemu", []),
                                            ("qemu", ["KWS_RUNNER_NO_SELF_TEST"]),
                                            ("host", DETECTOR_DEFINES)])
def test_runner_compiles_warning_free(export_dir, tmp_path, target, defines) -> None:
    """g++ and arm-none-eabi-g++ -mcpu=cortex-m4 ... -fno-exceptions -fno-rtti, -Werror."""
    require_tools("g++" if target == "host" else "arm-none-eabi-g++")
    obj = FB.compile_source(RUNNER, [export_dir, COMMON_DIR, MOCK_DIR],
                            tmp_path / "kws_runner.o", target, defines)
    assert obj.stat().st_size > 0


def test_runner_refuses_to_compile_with_a_ring_too_small_for_its_defaults(export_dir,
                                                                          tmp_path) -> None:
    """The default config's window at its stride needs 26 results (the export's ring): one
    fewer is a compile error, not a board that silently averages less."""
    require_tools("g++")
    FB.compile_source(RUNNER, [export_dir, COMMON_DIR, MOCK_DIR], tmp_path / "ok.o", "host",
                      ["KWS_RUNNER_SMOOTHER_RESULTS=26"])
    with pytest.raises(RuntimeError, match="smoother ring is too small"):
        FB.compile_source(RUNNER, [export_dir, COMMON_DIR, MOCK_DIR], tmp_path / "small.o",
                          "host", ["KWS_RUNNER_SMOOTHER_RESULTS=25"])


# ---- the runner on the host --------------------------------------------------------------------
def test_runner_error_paths_and_self_test(harness_host, golden) -> None:
    c = _checks(_run_harness(harness_host))
    codes = {"push_before_init": -9, "small_arena": -5, "push_after_failed_init": -9,
             "bad_invoke_every": -1, "bad_smoother": -8, "other_quantization": -6,
             "null_arena": -1, "init": 0, "arena_used_positive": 1, "negative_n": -1,
             "selftest_invocations": 1, "selftest_fed_golden_features": 1,
             "last_scores_are_last_row": 1, "invoke_fails": -7, "reinit": 0,
             # the smoother ring (kws_runner.h): a config needing more is refused, with its
             # own code, and the runner keeps working; one that fills it exactly is not
             "ring_one_short": -10, "working_after_ring_refused": 0, "ring_exactly_full": 0,
             "ring_slower_stride": 0, "ring_count_too_large": -8, "ring_huge_values": 0,
             "init_again": 0}
    assert {k: int(c[k]) for k in codes} == codes
    # the ring the export sized: 12 labels, micro_speech's 1 s window at the default 40 ms
    assert (int(c["smoother_classes"]), int(c["smoother_results"])) == \
        (len(LABELS), smoother.results_needed(1000, DEFAULT_INVOKE_EVERY * 20, 3)) == (12, 26)
    expected = golden["predicted"]
    exact = (f"1 status=0 passed=1 frames=49 feature_max_diff=(0|1) feature_diff_count=\\d+ "
             f"score_max_diff=0 predicted={expected} expected={expected}")
    assert re.fullmatch(exact, c["selftest_exact"]), c["selftest_exact"]
    assert re.fullmatch(exact, c["selftest_after_reinit"]), c["selftest_after_reinit"]
    off = c["selftest_off_by_two"]
    assert off.startswith("0 status=0 passed=0 frames=49 ") and "score_max_diff=2 " in off, off


@pytest.mark.parametrize("every", [None, 1, 3])
def test_runner_stream_matches_python_twins(harness_host, harness_inputs, python_frames,
                                            host_c, golden, every) -> None:
    host, host_frames = host_c
    out = _run_harness(harness_host, "host", every)
    inputs, events = _parse_stream(out)
    n = DEFAULT_INVOKE_EVERY if every is None else every
    frames, times = _expected_stream(harness_inputs, len(python_frames), n)
    assert len(host_frames) == len(python_frames)
    assert re.search(rf"^done {len(frames)}$", out, re.M), out[-500:]
    assert len(inputs) == len(events) == len(frames) > 10

    # every model input: the window ending at that frame, quantized with the tensor's params
    scale, zp = golden["scale"], golden["zero_point"]
    worst = 0
    for got, f in zip(inputs, frames, strict=True):
        window = slice(f - FE.num_frames + 1, f + 1)
        np.testing.assert_array_equal(got, host.quantize(host_frames[window], scale, zp).ravel())
        py_q = quantize(python_frames[window], scale, zp).astype(np.int16)
        worst = max(worst, int(np.abs(py_q.ravel() - got).max()))
    assert worst <= 1, f"runner input differs from the Python front-end by {worst} LSB"

    # every event: cadence, timestamps, scripted scores, and the smoother twin's decision
    rows = np.stack([harness_inputs["scores"][k % len(harness_inputs["scores"])]
                     for k in range(len(frames))])
    expected = smoother.run(rows, times, HARNESS_SMOOTHER, max_classes=len(LABELS),
                            max_results=golden["smoother_results"])
    labels = list(LABELS)
    for k, (event, f, t, res) in enumerate(zip(events, frames, times, expected, strict=True)):
        index, frame, time_ms, found, score, new, scores, label = event
        assert (index, frame, time_ms) == (k, f, t)
        np.testing.assert_array_equal(scores, rows[k])
        assert (found, score, bool(new)) == (res.found_command, res.score, res.is_new_command)
        assert label == labels[found]
    detected = [labels[r.found_command] for r in expected if r.is_new_command]
    assert "yes" in detected, detected  # the comparison covered detections
    if n == DEFAULT_INVOKE_EVERY:  # the segments are sized for the default cadence
        assert detected == ["yes", "no"], detected



# ---- the runner on QEMU --------------------------------------------------------------------------
def test_runner_harness_on_qemu_prints_what_the_host_prints(export_dir, harness_inputs,
                                                            harness_host, tmp_path) -> None:
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-g++", "qemu-system-arm")
    elf = _build_harness(export_dir, harness_inputs["dir"], tmp_path / "runner_harness.elf",
                         "qemu")
    qemu = _run_harness(elf, "qemu")
    host = _run_harness(harness_host)
    lines = [line for line in qemu.splitlines() if line]
    assert lines == [line for line in host.splitlines() if line]
    assert any(line.startswith("event ") for line in lines)


# ---- front-end + smoother on QEMU: main_smoother.c -----------------------------------------------
SMOOTHER_CFG = smoother.SmootherConfig(average_window_ms=1000, detection_threshold=180,
                                       suppression_ms=1000, minimum_count=3,
                                       silence_index=SILENCE)
# A ring smaller than the 26 results the 1 s window holds at the 40 ms stride below: the
# program must drop the oldest exactly where the Python twin does.
SMOOTHER_RING = 16


@pytest.fixture(scope="module")
def scripted_tflm_scores(export_dir, golden, harness_inputs, python_frames) -> dict:
    """TFLM's scores on the stream around the golden clip (every 2 frames), then a synthetic
    tail that must trigger detections (an untrained model rarely clears the threshold)."""
    from tinyspeech_tf import tflm

    tflite = (export_dir.parent / "runs" / "tinyspeech_m" / "model_int8.tflite").read_bytes()
    q = quantize(python_frames, golden["scale"], golden["zero_point"])
    starts = np.arange(0, len(q) - FE.num_frames + 1, 2)
    inputs = np.stack([q[s:s + FE.num_frames] for s in starts])[..., None]
    scores = tflm.run_tflm(tflite, inputs)
    times = [int((FE.frame_step * (s + FE.num_frames - 1) + FE.frame_length) * 1000
                 // FE.sample_rate) for s in starts]
    tail = _scripted_scores(SMOOTHER_SEGMENTS, seed=5)
    tail_times = [times[-1] + 40 * (i + 1) for i in range(len(tail))]
    return {"scores": np.concatenate([scores, tail]).astype(np.int8),
            "times": times + tail_times, "tflm_rows": len(scores)}


def _hash_results(results: list[smoother.Result]) -> int:
    data = b"".join(int(v).to_bytes(4, "little", signed=True)
                    for r in results for v in (r.time_ms, r.found_command, r.score,
                                               int(r.is_new_command)))
    return fnv1a32(data)


@pytest.fixture(scope="module")
def scores_dir(scripted_tflm_scores, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("scores")
    cfg = SMOOTHER_CFG
    FB.write_scores_header(d / FB.SCORES_HEADER, scripted_tflm_scores["scores"],
                           scripted_tflm_scores["times"],
                           average_window_ms=cfg.average_window_ms,
                           detection_threshold=cfg.detection_threshold,
                           suppression_ms=cfg.suppression_ms, minimum_count=cfg.minimum_count,
                           silence_index=cfg.silence_index, max_results=SMOOTHER_RING)
    return d


def test_qemu_frontend_and_smoother_match_host_and_python(export_dir, golden, scores_dir,
                                                           scripted_tflm_scores,
                                                           tmp_path) -> None:
    require_tools("gcc", "arm-none-eabi-gcc", "qemu-system-arm")
    runs = {}
    for target in FB.TARGETS:
        exe = FB.build_smoother_program(export_dir, scores_dir, tmp_path / target, target)
        rc, out = FB.run_program(exe, target)
        assert rc == 0, f"{target} exit code {rc}:\n{out[-2000:]}"
        runs[target] = FB.parse_smoother_output(out)
    qemu, host = runs["qemu"], runs["host"]

    # front-end: the golden clip streamed in uneven chunks on the Cortex-M4 == host C, and
    # within 1 LSB of the Python front-end (golden.h)
    assert qemu.frames == 49 and qemu.feature_max_diff <= 1
    np.testing.assert_array_equal(qemu.features, host.features)
    assert qemu.features_fnv == fnv1a32(qemu.features.tobytes())
    diff = np.abs(qemu.features.astype(np.int16) - golden["features"])
    assert int(diff.max()) == qemu.feature_max_diff and int((diff > 0).sum()) == \
        qemu.feature_diff_count
    print(f"\nQEMU front-end: {qemu.feature_diff_count} of 490 int8 features differ from "
          f"Python (max {qemu.feature_max_diff} LSB); smoother: "
          f"{scripted_tflm_scores['tflm_rows']} TFLM rows + "
          f"{len(qemu.results) - scripted_tflm_scores['tflm_rows']} scripted rows")

    # smoother: QEMU == host == Python twin, row by row and by hash
    expected = smoother.run(scripted_tflm_scores["scores"], scripted_tflm_scores["times"],
                            SMOOTHER_CFG, max_results=SMOOTHER_RING)
    # the ring overflowed: a full-size one would have averaged differently
    assert expected != smoother.run(scripted_tflm_scores["scores"],
                                    scripted_tflm_scores["times"], SMOOTHER_CFG)
    as_tuples = [(i, r.time_ms, r.found_command, r.score, int(r.is_new_command))
                 for i, r in enumerate(expected)]
    assert qemu.results == host.results == as_tuples
    assert qemu.results_fnv == host.results_fnv == _hash_results(expected)
    assert sum(r.is_new_command for r in expected) >= 2  # detections were exercised


def test_smoother_program_fails_on_features_off_by_two(export_dir, scores_dir, golden,
                                                       tmp_path) -> None:
    """A golden.h whose features are 2 LSB off must make the program fail (exit 1)."""
    require_tools("gcc")
    broken = tmp_path / "broken"
    shutil.copytree(export_dir, broken)
    text = (broken / "golden.h").read_text()
    body_start = text.index("int8_t g_golden_features[")
    body = text[body_start:]
    first = re.search(r"\{\s*(-?\d+)", body)
    value = int(first.group(1))
    bumped = value + 2 if value <= 125 else value - 2
    body = body[:first.start(1)] + str(bumped) + body[first.end(1):]
    (broken / "golden.h").write_text(text[:body_start] + body)
    exe = FB.build_smoother_program(broken, scores_dir, tmp_path / "host", "host")
    rc, out = FB.run_program(exe, "host")
    assert rc == 1 and FB.parse_smoother_output(out).feature_max_diff >= 2, out[:300]


def test_tone_is_the_golden_clip(golden) -> None:
    """Guards the fixtures: the export's golden clip is the tone this module assumes."""
    np.testing.assert_array_equal(golden["samples"], to_int16(tone()))
