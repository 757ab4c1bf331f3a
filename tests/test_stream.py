"""Streaming detection (`tinyspeech stream`) and the test-stream builder (`stream-make`).

What must hold: a window of the stream's features is exactly the features of its 1 s slice
(frame alignment with the C streaming front-end), the scores are the model's on that slice,
the hit / miss / false-alarm bookkeeping follows the documented rule, stream-make is
deterministic and its track says where the keywords really are, and bad input is one line and
exit code 2. No ../shared data is needed: clips, noise and the model are made here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line as _fails
from tiny_export import make_run

from tinyspeech_tf import cli
from tinyspeech_tf import stream as S
from tinyspeech_tf.audio import read_wav, write_wav
from tinyspeech_tf.data.protocol import LABELS, SILENCE, UNKNOWN, WORDS
from tinyspeech_tf.features import DEFAULT_CONFIG, features_from_samples, quantize
from tinyspeech_tf.stream import detect as D

RATE = 16000
# Tone frequency of each label's fake "word" in the generated clips (distinct, FFT-resolvable).
FREQ = {label: 300.0 + 150.0 * i for i, label in enumerate(LABELS)}
BURST = (0.25, 0.60)  # where the fake word sits inside its 1 s clip (s)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as `tinyspeech train` leaves it, minus the training (random weights)."""
    return make_run(tmp_path_factory.mktemp("runs"))


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise plus a gliding tone: every frame differs, so a misaligned frame cannot match."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    glide = 0.2 * np.sin(2 * np.pi * (200.0 * t + 150.0 * t ** 2))
    return (glide + 0.02 * rng.standard_normal(len(t))).astype(np.float32)




# ---- framing ---------------------------------------------------------------------------------
def test_windows_are_the_features_of_their_1s_slices(monkeypatch) -> None:
    x = _signal(3.3)
    monkeypatch.setattr(D, "_CHUNK_FRAMES", 37)  # chunk edges fall inside windows
    frames = S.stream_frames(x, DEFAULT_CONFIG)
    assert len(frames) == 1 + (len(x) - 480) // 320
    stride = S.stride_frames(40, DEFAULT_CONFIG)
    assert stride == 2
    starts = S.window_starts(len(frames), DEFAULT_CONFIG, stride)
    assert starts[0] == 0 and np.all(np.diff(starts) == 2) and starts[-1] + 49 <= len(frames)
    assert starts[-1] + 2 + 49 > len(frames)  # no complete window left out
    times = S.window_times_ms(starts, DEFAULT_CONFIG)
    assert times[0] == 990 and np.all(np.diff(times) == 40)  # last frame ends at 15840 samples
    inputs = S.window_inputs(frames, starts, DEFAULT_CONFIG, 0.6, 77)
    assert inputs.shape == (len(starts), 49, 10, 1) and inputs.dtype == np.int8
    for j in (0, 1, 17, len(starts) - 1):
        first = int(starts[j]) * 320
        expected = features_from_samples(x[first:first + 16000])
        np.testing.assert_allclose(frames[starts[j]:starts[j] + 49], expected, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(inputs[j, ..., 0], quantize(expected, 0.6, 77))


@pytest.mark.parametrize("stride_ms", [0, -20, 30, 10, 25])
def test_stride_must_be_whole_frame_steps(stride_ms) -> None:
    from tinyspeech_tf.errors import UserError

    with pytest.raises(UserError, match="stride"):
        S.stride_frames(stride_ms, DEFAULT_CONFIG)


def test_scores_are_the_model_on_each_slice(run_dir) -> None:
    from tinyspeech_tf import tflm

    model = S.load_model(run_dir)
    x = _signal(2.0, seed=1)
    result = S.run_stream(x, model, stride_ms=60)
    assert result["windows"] == len(result["scores"]) == (99 - 49) // 3 + 1
    scale, zp = model.io["input_scale"], model.io["input_zero_point"]
    for j in (0, 5, result["windows"] - 1):
        first = j * 3 * 320
        q = quantize(features_from_samples(x[first:first + 16000]), scale, zp)[None, ..., None]
        np.testing.assert_array_equal(result["scores"][j], tflm.run_tflm(model.tflite, q)[0])
    assert list(result["times_ms"][:2]) == [990, 1050]


# ---- smoothing and scoring -------------------------------------------------------------------
def test_detections_skip_silence_and_mark_unknown() -> None:
    labels = LABELS
    rows = []
    for name in (SILENCE, "yes", UNKNOWN, "go"):
        row = np.full(len(labels), -128, np.int8)
        row[labels.index(name)] = 127
        rows += [row] * 60  # 1.2 s of confident windows every 20 ms
    times = 990 + 20 * np.arange(len(rows))
    config = S.smoother_config(labels, threshold=200, suppression_ms=1500, window_ms=1000,
                               min_count=3)
    found = S.detections_from_scores(np.stack(rows), times, labels, config)
    assert [d.label for d in found] == ["yes", UNKNOWN, "go"]
    assert [S.is_keyword(d.label) for d in found] == [True, False, True]
    assert all(d.score >= 200 for d in found)


def _det(t: float, label: str) -> S.Detection:
    return S.Detection(int(round(t * 1000)), label, 210)


def test_scoring_hits_misses_and_false_alarms() -> None:
    utterances = [S.Utterance(1.0, 1.4, "yes"), S.Utterance(5.0, 5.3, "no"),
                  S.Utterance(9.0, 9.5, "yes"), S.Utterance(13.0, 13.2, "up")]
    detections = [
        _det(1.9, "yes"),      # hit of utterance 0
        _det(2.2, "yes"),      # same utterance again: duplicate
        _det(3.0, UNKNOWN),    # not scored
        _det(4.0, "stop"),     # nothing near: spurious
        _det(5.5, "go"),       # inside the window of "no": wrong label
        _det(6.3, "no"),       # exactly end + tolerance: hit of utterance 1
        _det(8.9, "yes"),      # 0.1 s before utterance 2 starts: spurious
        _det(14.3, "up"),      # 0.1 s after end + tolerance of utterance 3: spurious
    ]
    sc = S.score_detections(detections, utterances, duration_s=36.0, keywords=WORDS,
                            tolerance_s=1.0)
    assert (sc["utterances"], sc["hits"], sc["misses"]) == (4, 2, 2)
    assert sc["hit_rate"] == 0.5
    assert sc["false_alarms"] == 5
    assert sc["false_alarm_kinds"] == {"duplicate": 1, "wrong_label": 1, "spurious": 3}
    assert sc["false_alarms_per_hour"] == pytest.approx(500.0)
    assert sc["missed"] == [2, 3]
    outcomes = {i: o for i, (o, _) in sc["detection_outcomes"].items()}
    assert outcomes == {0: "hit", 1: "duplicate", 3: "spurious", 4: "wrong_label", 5: "hit",
                        6: "spurious", 7: "spurious"}
    per = sc["per_label"]
    assert per["yes"] == {"utterances": 2, "hits": 1, "misses": 1, "false_alarms": 2,
                          "hit_rate": 0.5}
    assert per["no"]["hits"] == 1 and per["no"]["false_alarms"] == 0
    assert (per["up"]["misses"], per["up"]["false_alarms"]) == (1, 1)
    assert (per["stop"]["utterances"], per["stop"]["false_alarms"]) == (0, 1)
    assert per["go"]["false_alarms"] == 1
    # A tighter tolerance turns the late "no" into a miss plus a false alarm.
    tight = S.score_detections(detections, utterances, duration_s=36.0, keywords=WORDS,
                               tolerance_s=0.5)
    assert (tight["hits"], tight["false_alarms"]) == (1, 6)


def test_each_utterance_hit_once_and_matching_is_maximal() -> None:
    close = [S.Utterance(1.0, 1.3, "yes"), S.Utterance(1.8, 2.0, "yes")]
    # 1.9 s fits both windows ([1.0, 2.3] and [1.8, 3.0]); 2.5 s only the second. Giving 1.9 s
    # to the second utterance would leave 2.5 s without a partner: one hit instead of two.
    both = S.score_detections([_det(1.9, "yes"), _det(2.5, "yes")], close, duration_s=10.0,
                              keywords=WORDS)
    assert (both["hits"], both["misses"], both["false_alarms"]) == (2, 0, 0)
    once = S.score_detections([_det(1.9, "yes")], close, duration_s=10.0, keywords=WORDS)
    assert (once["hits"], once["misses"], once["false_alarms"]) == (1, 1, 0)
    many = S.score_detections([_det(1.5, "yes")] * 3, close[:1], duration_s=10.0,
                              keywords=WORDS)
    assert (many["hits"], many["false_alarm_kinds"]["duplicate"]) == (1, 2)


def test_read_track_header_comments_and_extra_columns(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("start_s,end_s,label,clip\n# a comment\n\n2.5,2.9,no,no/b.wav\n"
                    "1.0,1.25,yes,yes/a.wav\n")
    assert S.read_track(path) == [S.Utterance(1.0, 1.25, "yes"), S.Utterance(2.5, 2.9, "no")]


# ---- stream-make -----------------------------------------------------------------------------
def _clip(label: str, rng: np.random.Generator) -> np.ndarray:
    clip = np.zeros(RATE, np.float32)
    if label == SILENCE:
        return (0.001 * rng.standard_normal(RATE)).astype(np.float32)
    a, b = int(BURST[0] * RATE), int(BURST[1] * RATE)
    t = np.arange(b - a) / RATE
    clip[a:b] = 0.3 * np.sin(2 * np.pi * FREQ[label] * t)
    return clip


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> tuple[Path, Path]:
    """A 12-class folder of tone-burst "words" (two per label) and a noise folder."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    data = root / "val"
    for label in LABELS:
        (data / label).mkdir(parents=True)
        for k in range(2):
            write_wav(data / label / f"{label}_{k}.wav", _clip(label, rng))
    noise = root / "noise"
    noise.mkdir()
    write_wav(noise / "white.wav", (0.1 * rng.standard_normal(5 * RATE)).astype(np.float32))
    return data, noise


def _make(clip_folder, out: Path, seed: int = 3) -> int:
    data, noise = clip_folder
    return cli.main(["stream-make", str(out), "--data", str(data), "--minutes", "0.5",
                     "--seed", str(seed), "--noise-dir", str(noise), "--gap-s", "0.5", "1.0"])


def _bursts(x: np.ndarray) -> list[tuple[float, float, float]]:
    """(start_s, end_s, dominant Hz) of every loud stretch, from 10 ms frame energy."""
    hop = 160
    n = len(x) // hop
    rms = np.sqrt((x[:n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1))
    loud = np.concatenate([[False], rms > 0.1, [False]])
    edges = np.flatnonzero(np.diff(loud.astype(int)))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        seg = x[a * hop:b * hop]
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        out.append((a * hop / RATE, b * hop / RATE, np.argmax(spectrum) * RATE / len(seg)))
    return out


def test_stream_make_is_deterministic_and_its_track_is_where_the_words_are(
        clip_folder, tmp_path, capsys) -> None:
    a, b, c = tmp_path / "a.wav", tmp_path / "b" / "b.wav", tmp_path / "c.wav"
    assert _make(clip_folder, a) == 0 and _make(clip_folder, b) == 0
    assert _make(clip_folder, c, seed=4) == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".csv").read_bytes() == b.with_suffix(".csv").read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert str(tmp_path) not in a.with_suffix(".csv").read_text()

    x, rate = read_wav(a)
    assert rate == RATE and len(x) == 30 * RATE
    track = S.read_track(a.with_suffix(".csv"))
    assert len(track) >= 8 and {u.label for u in track} <= set(WORDS)
    by_freq = {f: label for label, f in FREQ.items()}
    found = []
    for start, end, hz in _bursts(x):
        label = by_freq[min(by_freq, key=lambda f: abs(f - hz))]
        assert abs(FREQ[label] - hz) < 40, (start, hz)
        if label != UNKNOWN:
            found.append((start, end, label))
    assert len(found) == len(track)
    for (start, end, label), u in zip(found, track, strict=True):
        assert u.label == label
        assert abs(u.start_s - start) <= 0.011 and abs(u.end_s - end) <= 0.011
        assert u.end_s - u.start_s == pytest.approx(BURST[1] - BURST[0], abs=0.011)
    assert "keyword utterances" in capsys.readouterr().out


def test_a_track_belongs_to_its_recording(clip_folder, run_dir, tmp_path, capsys) -> None:
    """stream-make's track names its wav by content: scoring another recording against it is
    refused in one line (a stale .csv of an interrupted stream-make), its own is accepted."""
    a, c = tmp_path / "a.wav", tmp_path / "c.wav"
    assert _make(clip_folder, a) == 0 and _make(clip_folder, c, seed=4) == 0
    from tinyspeech_tf.stream.score import TRACK_AUDIO

    assert a.with_suffix(".csv").read_text().startswith(TRACK_AUDIO)
    assert cli.main(["stream", str(a), "--model", str(run_dir), "--stride-ms", "100",
                     "--track", str(a.with_suffix(".csv"))]) == 0
    capsys.readouterr()
    _fails(["stream", str(c), "--model", str(run_dir), "--track", str(a.with_suffix(".csv"))],
           capsys, "written for another recording")


# ---- the command end to end ------------------------------------------------------------------
def test_stream_command_writes_json_and_markdown(run_dir, tmp_path, capsys) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, _signal(3.0, seed=2))
    track = tmp_path / "t.csv"
    track.write_text("start_s,end_s,label\n1.0,1.4,yes\n")
    out_json, out_md = tmp_path / "r" / "report.json", tmp_path / "r" / "report.md"
    argv = ["stream", str(wav), "--model", str(run_dir), "--stride-ms", "40", "--threshold",
            "150", "--track", str(track), "--json", str(out_json), "--markdown", str(out_md)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert report["windows"] == (149 - 49) // 2 + 1
    assert report["stride_ms"] == 40 and report["smoother"]["detection_threshold"] == 150
    assert report["smoother"]["silence_index"] == 0
    assert report["stream_s"] == 3.0
    sc = report["scoring"]
    assert sc["utterances"] == 1 and sc["hits"] + sc["misses"] == 1
    assert sc["false_alarms"] == sum(d.get("outcome") not in (None, "hit")
                                     for d in report["detection_list"])
    assert str(tmp_path) not in out_json.read_text() + out_md.read_text()
    assert "| utterances | hits |" in out_md.read_text()
    assert f"{sc['utterances']} utterances, {sc['hits']} hits" in out


@pytest.mark.parametrize("extra, track_text, fragments", [
    (["--stride-ms", "30"], None, ("--stride-ms 30", "multiple of the 20 ms")),
    ([], "start_s,end_s,label\nabc,1.0,yes\n", ("t.csv:2", "numbers")),
    ([], "1.0,0.5,yes\n", ("t.csv:1", "start_s <= end_s")),
    ([], "1.0,1.5\n", ("t.csv:1", "expected start_s,end_s,label")),
    ([], "1.0,1.5,hello\n", ("hello", "not keywords")),
    ([], "9.0,9.5,yes\n", ("after the end of the audio",)),
    (["--threshold", "300"], None, ("--threshold", "0..255")),
])
def test_stream_bad_input_is_one_line(run_dir, tmp_path, capsys, extra, track_text,
                                      fragments) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, _signal(1.5))
    argv = ["stream", str(wav), "--model", str(run_dir), *extra]
    if track_text is not None:
        (tmp_path / "t.csv").write_text(track_text)
        argv += ["--track", str(tmp_path / "t.csv")]
    _fails(argv, capsys, *fragments)


def test_stream_missing_inputs(run_dir, tmp_path, capsys) -> None:
    _fails(["stream", str(tmp_path / "none.wav"), "--model", str(run_dir)], capsys,
           "none.wav", "no such file")
    write_wav(tmp_path / "short.wav", _signal(0.5))
    _fails(["stream", str(tmp_path / "short.wav"), "--model", str(run_dir)], capsys,
           "at least 1 s")
    _fails(["stream", str(tmp_path / "short.wav"), "--model", str(tmp_path / "nomodel")],
           capsys, "no such run directory")
    _fails(["stream", str(tmp_path / "short.wav"), "--model", str(run_dir), "--track",
            str(tmp_path / "none.csv")], capsys, "no such track file")


def test_stream_make_bad_input(clip_folder, tmp_path, capsys) -> None:
    data, noise = clip_folder
    _fails(["stream-make", str(tmp_path / "o.wav"), "--data", str(tmp_path / "nodata")], capsys,
           "no such dataset folder")
    _fails(["stream-make", str(tmp_path / "o.wav"), "--data", str(data), "--minutes", "0"],
           capsys, "--minutes")
    _fails(["stream-make", str(tmp_path / "o.txt"), "--data", str(data)], capsys, ".wav")
    _fails(["stream-make", str(tmp_path / "o.wav"), "--data", str(data), "--noise-dir",
            str(tmp_path / "nonoise")], capsys, "noise folder does not exist")
    assert not (tmp_path / "o.wav").exists()
