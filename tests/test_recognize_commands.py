"""Posterior smoothing: firmware/common/recognize_commands.c against tinyspeech_tf.stream.smoother.

The C is built with host gcc into a shared library (ctypes) and must agree bit for bit with the
Python twin, and both with the answers worked out by hand below and with a brute-force
reference that recomputes every window from scratch, at the default capacity and at small
rings that overflow (the oldest results are dropped in both). The same C must build warning-free for
Cortex-M4F with no .data/.bss (all state in the caller's struct).

Skips when gcc / arm-none-eabi-gcc is missing, except in CI (CI=true): fails there.
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tools

from tinyspeech_tf import frontend_c as FC
from tinyspeech_tf.stream import smoother as S
from tinyspeech_tf.stream.smoother import RecognizeCommands, Result, SmootherConfig, SmootherError

pytestmark = pytest.mark.firmware

SOURCE = FC.COMMON_DIR / "recognize_commands.c"
HEADER = FC.COMMON_DIR / "recognize_commands.h"
STRICT = [*FC.C_WARNINGS, "-Werror", "-O2"]
ERR_NOT_INIT = -5


class CConfig(ctypes.Structure):
    _fields_ = [(f.name, ctypes.c_int32) for f in dataclasses.fields(SmootherConfig)]


class CResult(ctypes.Structure):
    _fields_ = [("found_command", ctypes.c_int32), ("score", ctypes.c_int32),
                ("is_new_command", ctypes.c_bool), ("time_ms", ctypes.c_int32)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    require_tools("gcc")
    out = tmp_path_factory.mktemp("recognize_commands") / "librecognize_commands.so"
    cmd = ["gcc", *STRICT, "-shared", "-fPIC", f"-I{FC.COMMON_DIR}", str(SOURCE), "-o",
           str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    c = ctypes.CDLL(str(out))
    c.kws_recognizer_default_config.argtypes = [ctypes.POINTER(CConfig)]
    c.kws_recognizer_default_config.restype = None
    c.kws_recognizer_init.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                      ctypes.c_int, ctypes.POINTER(CConfig), ctypes.c_int]
    c.kws_recognizer_init.restype = ctypes.c_int
    c.kws_recognizer_check.argtypes = [ctypes.POINTER(CConfig), ctypes.c_int, ctypes.c_int,
                                       ctypes.c_int]
    c.kws_recognizer_check.restype = ctypes.c_int
    c.kws_recognizer_reset.argtypes = [ctypes.c_void_p]
    c.kws_recognizer_reset.restype = None
    c.kws_recognizer_process.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int8),
                                         ctypes.c_int32, ctypes.POINTER(CResult)]
    c.kws_recognizer_process.restype = ctypes.c_int
    c.kws_recognizer_state_size.argtypes = [ctypes.c_int, ctypes.c_int]
    c.kws_recognizer_state_size.restype = ctypes.c_size_t
    return c


def c_state(lib: ctypes.CDLL, max_classes: int, max_results: int) -> tuple[ctypes.Array, int]:
    """Zeroed, 8-byte aligned memory for a KWS_RECOGNIZER_STATE and its size in bytes."""
    size = lib.kws_recognizer_state_size(max_classes, max_results)
    assert size > 0
    return (ctypes.c_int64 * (size // 8 + 1))(), size


class CSmoother:
    """ctypes twin of RecognizeCommands over the host-built C."""

    def __init__(self, lib: ctypes.CDLL, num_classes: int, config: SmootherConfig,
                 max_classes: int = S.MAX_CLASSES, max_results: int = S.MAX_RESULTS) -> None:
        self.lib = lib
        self.num_classes = num_classes
        self.state, size = c_state(lib, max_classes, max_results)
        self.rc = lib.kws_recognizer_init(self.state, size, max_classes, max_results,
                                          CConfig(**dataclasses.asdict(config)), num_classes)

    def process(self, scores: np.ndarray, time_ms: int) -> tuple[int, Result | None]:
        s = np.ascontiguousarray(scores, np.int8)
        assert s.shape == (self.num_classes,)
        out = CResult()
        rc = self.lib.kws_recognizer_process(
            self.state, s.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)), int(time_ms),
            ctypes.byref(out))
        if rc != 0:
            return rc, None
        return rc, Result(out.found_command, out.score, bool(out.is_new_command), out.time_ms)


def both(lib: ctypes.CDLL, scores, times, config: SmootherConfig,
         max_results: int = S.MAX_RESULTS) -> list[Result]:
    """Run C and Python on the same stream in a ring of ``max_results``; they must agree on
    every step."""
    scores = np.asarray(scores, np.int8)
    nc = scores.shape[1]
    c = CSmoother(lib, nc, config, nc, max_results)
    assert c.rc == 0
    py = RecognizeCommands(nc, config, max_classes=nc, max_results=max_results)
    out = []
    for s, t in zip(scores, times, strict=True):
        rc, c_res = c.process(s, t)
        assert rc == 0
        py_res = py.process(s, t)
        assert c_res == py_res, (t, c_res, py_res)
        out.append(py_res)
    assert out == S.run(scores, times, config, max_results=max_results, max_classes=nc)
    return out


def onehot(cls: int, num_classes: int = 4) -> np.ndarray:
    """A confident model output: 127 for cls, -128 elsewhere (averages 255 / 0)."""
    v = np.full(num_classes, -128, np.int8)
    v[cls] = 127
    return v


def new_times(results: list[Result]) -> list[int]:
    return [r.time_ms for r in results if r.is_new_command]


# ---- interface agreement -------------------------------------------------------------------
def test_header_limits_and_codes_match_python(lib) -> None:
    text = HEADER.read_text()

    def define(name: str) -> int:
        m = re.search(rf"#define {name} \(?(-?\d+)\)?", text)
        assert m, name
        return int(m.group(1))

    assert define("KWS_RECOGNIZER_MAX_CLASSES") == S.MAX_CLASSES
    assert define("KWS_RECOGNIZER_MAX_RESULTS") == S.MAX_RESULTS
    assert define("KWS_RECOGNIZER_ERR_NULL") == S.ERR_NULL
    assert define("KWS_RECOGNIZER_ERR_NUM_CLASSES") == S.ERR_NUM_CLASSES
    assert define("KWS_RECOGNIZER_ERR_CONFIG") == S.ERR_CONFIG
    assert define("KWS_RECOGNIZER_ERR_TIME") == S.ERR_TIME
    assert define("KWS_RECOGNIZER_ERR_NOT_INIT") == ERR_NOT_INIT
    assert define("KWS_RECOGNIZER_ERR_CAPACITY") == S.ERR_CAPACITY
    assert define("KWS_RECOGNIZER_DEFAULT_WINDOW_MS") == SmootherConfig().average_window_ms
    assert define("KWS_RECOGNIZER_DEFAULT_MIN_COUNT") == SmootherConfig().minimum_count

    cfg = CConfig(-7, -7, -7, -7, -7)
    lib.kws_recognizer_default_config(ctypes.byref(cfg))
    got = {name: getattr(cfg, name) for name, _ in CConfig._fields_}
    assert got == dataclasses.asdict(SmootherConfig())
    assert got == {"average_window_ms": 1000, "detection_threshold": 200,
                   "suppression_ms": 1500, "minimum_count": 3, "silence_index": -1}

    # the state is the counters plus sums [classes], times [results] and scores [results x
    # classes] rounded up to 4 bytes: KWS_RECOGNIZER_STATE_BYTES, grown by exactly that
    size = lib.kws_recognizer_state_size
    counters = size(1, 1) - 12
    assert counters > 0 and counters % 4 == 0
    for classes, results in ((12, 3), (12, 11), (1, 1), (3, 5), (32, 64)):
        ring = 4 * classes + 4 * results + (results * classes + 3) // 4 * 4
        assert size(classes, results) == counters + ring, (classes, results)
    for classes, results in ((0, 5), (5, 0), (-1, 5), (5, S.MAX_RING_RESULTS + 1)):
        assert size(classes, results) == 0, (classes, results)


# ---- hand-made sequences with known answers --------------------------------------------------
def test_clear_detection(lib) -> None:
    times = [0, 100, 200, 300]
    res = both(lib, [onehot(2)] * 4, times, SmootherConfig())
    assert [r.found_command for r in res] == [2, 2, 2, 2]
    assert [r.score for r in res] == [255] * 4
    # minimum_count 3: nothing at 0 and 100; detected at 200; 300 is a suppressed repeat
    assert [r.is_new_command for r in res] == [False, False, True, False]
    assert [r.time_ms for r in res] == times


def test_threshold_is_inclusive_and_below_threshold_never_fires(lib) -> None:
    cfg = SmootherConfig()  # threshold 200
    below = np.full(4, -128, np.int8)
    below[1] = 199 - 128
    res = both(lib, [below] * 10, range(0, 1000, 100), cfg)
    assert all(r.found_command == 1 and r.score == 199 for r in res)
    assert new_times(res) == []
    at = below.copy()
    at[1] = 200 - 128
    res = both(lib, [at] * 10, range(0, 1000, 100), cfg)
    assert new_times(res) == [200]
    assert res[2].score == 200


def test_average_rounds_half_up(lib) -> None:
    cfg = SmootherConfig(minimum_count=1, detection_threshold=255)
    seq = np.array([[-127], [-126], [-127]], np.int8)  # score + 128: 1, 2, 1
    res = both(lib, seq, [0, 10, 20], cfg)
    # (1 + 1) / 1 = 1; (3 + 1) // 2 = 2 (1.5 rounds up); (4 + 1) // 3 = 1 (1.33 rounds down)
    assert [r.score for r in res] == [1, 2, 1]


def test_repeat_within_suppression_is_suppressed(lib) -> None:
    times = list(range(0, 3001, 100))
    res = both(lib, [onehot(2)] * len(times), times, SmootherConfig())
    # first at 200 (third result); a repeat needs more than 1500 ms: 1700 is exactly 1500 ms
    # after, so not yet, 1800 is; then 3400 would be next, beyond the stream
    assert new_times(res) == [200, 1800]
    assert res[17].time_ms == 1700 and not res[17].is_new_command


def test_different_command_inside_suppression_is_reported(lib) -> None:
    cfg = SmootherConfig(average_window_ms=200, minimum_count=2)
    labels = [1, 1, 1, 3, 3, 3, 1, 1, 1]
    times = list(range(0, 900, 100))
    res = both(lib, [onehot(k) for k in labels], times, cfg)
    # 100: "1"; 300/400 mixed windows average 170 < 200; 500: "3" although "1" was reported
    # only 400 ms ago; 800: "1" again, it differs from the last reported command "3"
    assert new_times(res) == [100, 500, 800]
    assert [r.found_command for r in res] == [1, 1, 1, 1, 3, 3, 3, 1, 1]
    assert [r.score for r in res] == [255, 255, 255, 170, 170, 255, 170, 170, 255]


def test_silence_is_never_reported(lib) -> None:
    labels = [0] * 20 + [2] * 15
    times = list(range(0, 3500, 100))
    seq = [onehot(k) for k in labels]
    res = both(lib, seq, times, SmootherConfig(silence_index=0))
    assert all(r.found_command == 0 and r.score == 255 for r in res[:20])
    # "2" fires once it holds 9 of the 11 results in the 1000 ms window: (9 * 255 + 5) // 11
    assert new_times(res) == [2800]
    assert res[28].score == 209
    # the same stream without a silence class does report class 0 (first at 200, again at 1800)
    res = both(lib, seq, times, SmootherConfig(silence_index=-1))
    assert new_times(res) == [200, 1800, 2800]


def test_minimum_count_not_reached_early_or_after_a_gap(lib) -> None:
    cfg = SmootherConfig(minimum_count=5)
    times = [0, 100, 200, 300, 400, 5000, 5100, 5200, 5300, 5400]
    res = both(lib, [onehot(2)] * len(times), times, cfg)
    assert all(r.found_command == 2 and r.score == 255 for r in res)
    # the gap empties the window: 5000 is far beyond suppression but holds one result only
    assert new_times(res) == [400, 5400]


def test_window_eviction_boundary(lib) -> None:
    cfg = SmootherConfig(average_window_ms=500, minimum_count=1, suppression_ms=0)
    labels, times = [1, 2, 2, 2], [0, 400, 500, 501]
    res = both(lib, [onehot(k) for k in labels], times, cfg)
    assert res == [
        Result(1, 255, True, 0),
        Result(1, 128, False, 400),  # tie 255/2 -> 128 each: lowest index wins
        Result(2, 170, False, 500),  # t=0 is exactly 500 ms old: still in the window
        Result(2, 255, True, 501),  # t=0 evicted
    ]


def test_ring_capacity_keeps_newest_results(lib) -> None:
    cfg = SmootherConfig(average_window_ms=1_000_000, minimum_count=1, suppression_ms=10**9)
    labels = [0] * 36 + [1] * 64
    res = both(lib, [onehot(k, 2) for k in labels], range(100), cfg)
    # 64 results (36 x "0", 28 x "1"): (36 * 255 + 32) // 64 = 143
    assert (res[63].found_command, res[63].score) == (0, 143)
    # 65th result: the ring holds results 1..64, 35 x "0": (35 * 255 + 32) // 64 = 139
    assert (res[64].found_command, res[64].score) == (0, 139)
    # the last 64 are all "1"; without the capacity limit the average would be 163
    assert (res[-1].found_command, res[-1].score) == (1, 255)
    # "1" is top from 33 of 64 results on, but reaches the threshold only with 51 of 64:
    # (51 * 255 + 32) // 64 = 203 at the 87th result
    assert new_times(res) == [0, 86]
    assert res[86].score == 203 and res[85].score < 200


def test_small_ring_averages_the_most_recent_results(lib) -> None:
    # a 500 ms window at a 100 ms stride holds 6 results; a ring of 3 keeps the newest 3
    cfg = SmootherConfig(average_window_ms=500, minimum_count=1, suppression_ms=0,
                         detection_threshold=255)
    labels = [0, 0, 0, 1, 1, 1, 1]
    res = both(lib, [onehot(k, 2) for k in labels], range(0, 700, 100), cfg, max_results=3)
    # at 300 the ring holds 0, 0, 1: (255 + 1) // 3 = 85 for "1"; at 500 only "1" is left,
    # where a ring of 6 would still average 0, 0, 0, 1, 1, 1 (a tie)
    assert [(r.found_command, r.score) for r in res] == [
        (0, 255), (0, 255), (0, 255), (0, 170), (1, 170), (1, 255), (1, 255)]
    assert new_times(res) == [0, 100, 200, 500, 600]
    full = both(lib, [onehot(k, 2) for k in labels], range(0, 700, 100), cfg)
    assert (full[5].found_command, full[5].score) == (0, 128)


# ---- random streams: C == Python == brute-force reference -----------------------------------
def reference(scores: np.ndarray, times: list[int], cfg: SmootherConfig,
              max_results: int = S.MAX_RESULTS) -> list[Result | None]:
    """Recompute every window from the full history (None where the input is rejected), of
    which a ring of ``max_results`` keeps the newest."""
    kept_t: list[int] = []
    kept_s: list[np.ndarray] = []
    last_cmd, last_time = -1, 0
    out: list[Result | None] = []
    for s, t in zip(scores, times, strict=True):
        if kept_t and t < kept_t[-1]:
            out.append(None)
            continue
        kept_t.append(t)
        kept_s.append(s.astype(np.int64) + 128)
        window = [v for tt, v in zip(kept_t, kept_s, strict=True)
                  if tt >= t - cfg.average_window_ms][-max_results:]
        n = len(window)
        sums = np.sum(window, axis=0)
        avgs = [(int(x) + n // 2) // n for x in sums]
        top = max(range(len(avgs)), key=lambda i: (avgs[i], -i))
        new = (n >= cfg.minimum_count and avgs[top] >= cfg.detection_threshold
               and top != cfg.silence_index
               and (top != last_cmd or t - last_time > cfg.suppression_ms))
        if new:
            last_cmd, last_time = top, t
        out.append(Result(top, avgs[top], new, t))
    return out


def random_case(rng: np.random.Generator
                ) -> tuple[np.ndarray, list[int], SmootherConfig, int, int]:
    """(scores, times, config, max_classes, max_results): half the cases in the default
    capacity, half in a small ring (as a runner sizes it) that the streams overflow."""
    nc = int(rng.choice([1, 2, 3, 12, 32])) if rng.random() < 0.3 else int(rng.integers(1, 33))
    if rng.random() < 0.5:
        max_classes, max_results = S.MAX_CLASSES, S.MAX_RESULTS
    else:
        max_classes, max_results = nc + int(rng.choice([0, 0, 3])), int(rng.integers(1, 12))
    length = int(rng.integers(1, 300))
    cfg = SmootherConfig(
        average_window_ms=int(rng.choice([0, int(rng.integers(1, 3000)), 1000])),
        detection_threshold=int(rng.choice([0, 255, int(rng.integers(100, 256))])),
        suppression_ms=int(rng.choice([0, int(rng.integers(1, 4000)), 1500])),
        minimum_count=int(rng.choice([1, min(3, max_results),
                                      int(rng.integers(1, max_results + 1))])),
        silence_index=int(rng.integers(-1, nc)),
    )
    # bursts of one dominant class over low noise, like a keyword passing through the window
    scores = rng.integers(-128, -60, size=(length, nc)).astype(np.int8)
    pos = 0
    while pos < length:
        run = int(rng.integers(1, 40))
        if rng.random() < 0.7:
            scores[pos:pos + run, int(rng.integers(nc))] = rng.integers(40, 128)
        pos += run
    if rng.random() < 0.2:
        scores = rng.integers(-128, 128, size=(length, nc)).astype(np.int8)
    if rng.random() < 0.3:  # a fast model: more results per window than the ring holds
        steps = rng.choice([0, 1, 5, 10, 16, 20], size=length)
    else:
        steps = rng.choice([0, 1, 10, 20, 50, 100, 200, 1000, 3000], size=length,
                           p=[0.05, 0.05, 0.1, 0.2, 0.2, 0.2, 0.1, 0.05, 0.05])
    times = (int(rng.integers(-(2**31) + 1000, 2**31 - 10**6)) if rng.random() < 0.1 else 0) \
        + np.cumsum(steps)
    times = [int(t) for t in times]
    for i in range(1, length):  # occasional timestamps going backwards (must be rejected)
        if rng.random() < 0.02:
            times[i] = times[i - 1] - int(rng.integers(1, 500))
    return scores, times, cfg, max_classes, max_results


def test_random_streams_c_python_reference_identical(lib) -> None:
    rng = np.random.default_rng(20240611)
    detections = suppressed = rejected = 0
    capacity_bound = {"default": 0, "small": 0}
    for case in range(200):
        scores, times, cfg, max_classes, max_results = random_case(rng)
        nc = scores.shape[1]
        c = CSmoother(lib, nc, cfg, max_classes, max_results)
        assert c.rc == 0, cfg
        py = RecognizeCommands(nc, cfg, max_classes=max_classes, max_results=max_results)
        expected = reference(scores, times, cfg, max_results)
        for i, (s, t) in enumerate(zip(scores, times, strict=True)):
            rc, c_res = c.process(s, t)
            try:
                py_res: Result | None = py.process(s, t)
                py_rc = 0
            except SmootherError as err:
                py_res, py_rc = None, err.code
            ctx = (case, i, cfg, max_classes, max_results)
            assert rc == py_rc, ctx
            assert c_res == py_res == expected[i], (ctx, c_res, py_res, expected[i])
            if py_res is None:
                rejected += 1
            elif py_res.is_new_command:
                detections += 1
            elif (py_res.score >= cfg.detection_threshold
                  and py_res.found_command != cfg.silence_index
                  and len(py._ring) >= cfg.minimum_count):
                suppressed += 1
            if py_res is not None and py.results == max_results:
                capacity_bound["default" if max_results == S.MAX_RESULTS else "small"] += 1
    # the random streams must exercise every branch, or this test proves little
    assert detections > 200 and suppressed > 200 and rejected > 10, \
        (detections, suppressed, rejected)
    assert capacity_bound["default"] > 0 and capacity_bound["small"] > 200, capacity_bound


# ---- errors ----------------------------------------------------------------------------------
def test_timestamps_backwards_rejected_and_state_unchanged(lib) -> None:
    cfg = SmootherConfig(minimum_count=2)
    c = CSmoother(lib, 4, cfg)
    py = RecognizeCommands(4, cfg)
    for t in (100, 200):
        assert c.process(onehot(1), t)[0] == 0
        py.process(onehot(1), t)
    assert c.process(onehot(3), 199) == (S.ERR_TIME, None)
    with pytest.raises(SmootherError) as err:
        py.process(onehot(3), 199)
    assert err.value.code == S.ERR_TIME
    # the rejected result left no trace: equal timestamps are fine and the stream continues
    # exactly as if the bad call never happened
    tail = [(onehot(1), 200), (onehot(2), 250), (onehot(1), 2000)]
    clean = both(lib, [onehot(1), onehot(1)] + [s for s, _ in tail],
                 [100, 200] + [t for _, t in tail], cfg)
    for k, (s, t) in enumerate(tail):
        rc, c_res = c.process(s, t)
        assert rc == 0 and c_res == py.process(s, t) == clean[2 + k]


def test_too_many_classes_and_bad_config_rejected(lib) -> None:
    good = SmootherConfig()
    assert CSmoother(lib, S.MAX_CLASSES, good).rc == 0
    RecognizeCommands(S.MAX_CLASSES, good)
    for nc in (0, -1, S.MAX_CLASSES + 1, 1000):
        assert CSmoother(lib, nc, good).rc == S.ERR_NUM_CLASSES
        with pytest.raises(SmootherError) as err:
            RecognizeCommands(nc, good)
        assert err.value.code == S.ERR_NUM_CLASSES
    bad = [
        dict(average_window_ms=-1), dict(detection_threshold=-1),
        dict(detection_threshold=256), dict(suppression_ms=-1), dict(minimum_count=0),
        dict(minimum_count=S.MAX_RESULTS + 1), dict(silence_index=-2), dict(silence_index=4),
    ]
    for fields in bad:
        cfg = dataclasses.replace(good, **fields)
        assert CSmoother(lib, 4, cfg).rc == S.ERR_CONFIG, fields
        with pytest.raises(SmootherError) as err:
            RecognizeCommands(4, cfg)
        assert err.value.code == S.ERR_CONFIG, fields
    edge = SmootherConfig(average_window_ms=0, detection_threshold=255, suppression_ms=0,
                          minimum_count=S.MAX_RESULTS, silence_index=3)
    assert CSmoother(lib, 4, edge).rc == 0
    RecognizeCommands(4, edge)


def test_capacity_limits_what_is_accepted(lib) -> None:
    """The state's capacity, not the default one, bounds num_classes and minimum_count; C and
    Python refuse the same inputs with the same code, and check() agrees with init()."""
    def codes(nc: int, cfg: SmootherConfig, max_classes: int, max_results: int) -> tuple:
        try:
            RecognizeCommands(nc, cfg, max_classes=max_classes, max_results=max_results)
            py = 0
        except SmootherError as err:
            py = err.code
        check = lib.kws_recognizer_check(CConfig(**dataclasses.asdict(cfg)), nc, max_classes,
                                         max_results)
        if lib.kws_recognizer_state_size(max_classes, max_results) == 0:
            # no state of that capacity exists: init must refuse before touching memory
            dummy = (ctypes.c_int64 * 4)()
            init = lib.kws_recognizer_init(dummy, 0, max_classes, max_results,
                                           CConfig(**dataclasses.asdict(cfg)), nc)
            assert not any(dummy)
            return py, check, init
        return py, check, CSmoother(lib, nc, cfg, max_classes, max_results).rc

    cfg = SmootherConfig(minimum_count=3)
    assert codes(12, cfg, 12, 3) == (0, 0, 0)
    assert codes(12, cfg, 12, 2) == (S.ERR_CONFIG,) * 3  # minimum_count 3 cannot fit
    assert codes(13, cfg, 12, 3) == (S.ERR_NUM_CLASSES,) * 3
    assert codes(12, cfg, 40, 3) == (0, 0, 0)  # room for more classes is fine
    for max_classes, max_results in ((0, 3), (12, 0), (12, S.MAX_RING_RESULTS + 1)):
        assert codes(12, cfg, max_classes, max_results) == (S.ERR_CAPACITY,) * 3

    # init refuses memory that is not the size of that capacity, and leaves it untouched
    state, size = c_state(lib, 12, 3)
    c_cfg = CConfig(**dataclasses.asdict(cfg))
    for wrong in (size - 4, size + 4, 0):
        assert lib.kws_recognizer_init(state, wrong, 12, 3, c_cfg, 12) == S.ERR_CAPACITY
        assert not any(state)
    assert lib.kws_recognizer_init(state, size, 12, 3, c_cfg, 12) == 0


def test_c_rejects_null_and_uninitialised_state(lib) -> None:
    cfg = CConfig(**dataclasses.asdict(SmootherConfig()))
    zeroed, size = c_state(lib, 4, 8)
    scores = onehot(1)
    sp = scores.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
    out = CResult()
    assert lib.kws_recognizer_process(zeroed, sp, 0, ctypes.byref(out)) == ERR_NOT_INIT
    assert lib.kws_recognizer_init(None, size, 4, 8, cfg, 4) == S.ERR_NULL
    assert lib.kws_recognizer_init(zeroed, size, 4, 8, None, 4) == S.ERR_NULL
    assert lib.kws_recognizer_check(None, 4, 4, 8) == S.ERR_NULL
    assert lib.kws_recognizer_init(zeroed, size, 4, 8, cfg, 4) == 0
    assert lib.kws_recognizer_process(zeroed, None, 0, ctypes.byref(out)) == S.ERR_NULL
    assert lib.kws_recognizer_process(zeroed, sp, 0, None) == S.ERR_NULL
    assert lib.kws_recognizer_process(zeroed, sp, 0, ctypes.byref(out)) == 0
    # reset forgets history: a time before the last one is accepted again afterwards
    assert lib.kws_recognizer_process(zeroed, sp, -5, ctypes.byref(out)) == S.ERR_TIME
    lib.kws_recognizer_reset(zeroed)
    assert lib.kws_recognizer_process(zeroed, sp, -5, ctypes.byref(out)) == 0


def test_python_rejects_bad_scores_and_times() -> None:
    py = RecognizeCommands(4)
    with pytest.raises(ValueError):
        py.process(np.zeros(3, np.int8), 0)
    with pytest.raises(ValueError):
        py.process(np.full(4, 128), 0)
    with pytest.raises(ValueError):
        py.process(np.zeros(4, np.float32), 0)
    with pytest.raises(ValueError):
        py.process(np.zeros(4, np.int8), 2**31)
    with pytest.raises(ValueError):
        S.run(np.zeros((3, 4), np.int8), [0, 1])
    py.reset()
    assert py.process(np.zeros(4, np.int64), 0) == Result(0, 128, False, 0)


# ---- Cortex-M4 -------------------------------------------------------------------------------
def test_cortex_m4_build_no_warnings_no_static_state(tmp_path: Path) -> None:
    require_tools("arm-none-eabi-gcc", "arm-none-eabi-size")
    obj = tmp_path / "recognize_commands_m4.o"
    cmd = ["arm-none-eabi-gcc", *FC.ARM_FLAGS, *STRICT, f"-I{FC.COMMON_DIR}", "-c",
           str(SOURCE), "-o", str(obj)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
    size = subprocess.run(["arm-none-eabi-size", "-B", str(obj)], capture_output=True,
                          text=True, check=True)
    text, data, bss = (int(x) for x in size.stdout.strip().splitlines()[-1].split()[:3])
    print(f"\nCortex-M4 -O2 recognize_commands.o: .text {text} B, .data {data} B, .bss {bss} B")
    assert data == 0 and bss == 0
    assert 0 < text < 4096


def test_c_and_python_agree_at_every_setting_stream_tune_chooses(lib) -> None:
    """Every window, count and a spread of thresholds of the stream-tune sweep, at the strides
    it measures, on random keyword-burst streams of 12 classes: C and Python identical."""
    from tinyspeech_tf.stream import tune

    rng = np.random.default_rng(7)
    detections = overflowed = 0
    for window_ms in tune.WINDOWS_MS:
        for min_count in tune.MIN_COUNTS:
            for threshold in (tune.THRESHOLDS[0], 170, 215, tune.THRESHOLDS[-1]):
                stride = int(rng.choice([20, 100, 250, 500]))
                scores = rng.integers(-128, -60, size=(150, 12)).astype(np.int8)
                scores[:, 0] = 90
                for start in range(0, 150, int(rng.integers(4, 12))):
                    scores[start:start + 3, int(rng.integers(2, 12))] = rng.integers(0, 128)
                cfg = SmootherConfig(average_window_ms=window_ms, detection_threshold=threshold,
                                     suppression_ms=tune.SUPPRESSION_MS,
                                     minimum_count=min_count, silence_index=0)
                times = list(range(0, 150 * stride, stride))
                results = both(lib, scores, times, cfg)
                detections += sum(r.is_new_command for r in results)
                # the ring a runner sizes for this window, stride and count loses nothing
                sized = S.results_needed(window_ms, stride, min_count)
                assert both(lib, scores, times, cfg, max_results=sized) == results
                if sized - 1 >= min_count:
                    smaller = both(lib, scores, times, cfg, max_results=sized - 1)
                    overflowed += smaller != results
    assert detections > 50, detections
    assert overflowed > 0  # one result less than results_needed does change the output
