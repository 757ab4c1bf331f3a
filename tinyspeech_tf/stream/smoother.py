"""Posterior smoothing ("RecognizeCommands"): the bit-identical Python twin of the firmware's
``firmware/common/recognize_commands.c``.

Why: on the board the model runs every few tens of milliseconds on overlapping one-second
windows, so one spoken keyword yields a burst of score vectors, some confident, some not.
Reacting to each would fire the same command several times and act on one-window flukes.
Smoothing averages the int8 posteriors over a short time window and reports a *detection* only
when the averaged top class is confident, backed by enough results, not silence, and not a
repeat of the command just reported (suppression), turning per-window posteriors into discrete
commands.

Why a twin: thresholds and windows are tuned on the host (on streamed test audio) and must mean
exactly the same thing on the microcontroller. Everything is integer arithmetic, so for any
sequence of scores and timestamps this class and the C code give identical results
(``tests/test_recognize_commands.py`` checks it on hand-made and random streams).

Rules, per :meth:`RecognizeCommands.process` call at ``time_ms``:

1. results with ``result_time < time_ms - average_window_ms`` leave the window; if more than
   the ring holds (``max_results``) remain, the oldest go too;
2. per class ``avg = (sum(score + 128) + n // 2) // n`` over the ``n`` results (round half up,
   0..255); the top class is the highest average, ties to the lowest index;
3. ``is_new_command`` when ``n >= minimum_count``, ``avg >= detection_threshold``, the top class
   is not ``silence_index``, and it differs from the last reported command or more than
   ``suppression_ms`` passed since that report. Unreported tops do not change the last command.

The ring's capacity (``max_classes`` x ``max_results``) is a parameter, as the C state's
``KWS_RECOGNIZER_STATE(classes, results)`` is: the firmware's runner sizes it by the model's
labels and stride (:func:`results_needed`), and the twin must drop results where the board does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The default capacity of recognize_commands.h (KWS_RECOGNIZER_MAX_CLASSES / _MAX_RESULTS,
# kws_recognizer_state_t).
MAX_CLASSES = 32
MAX_RESULTS = 64
# Largest ring the C accepts: its int32 sums hold up to 255 per result.
MAX_RING_RESULTS = 8_000_000

# Error codes of recognize_commands.h, carried by SmootherError.code.
ERR_NULL = -1
ERR_NUM_CLASSES = -2
ERR_CONFIG = -3
ERR_TIME = -4
ERR_CAPACITY = -6

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_SCORE_OFFSET = 128


class SmootherError(ValueError):
    """Invalid input; ``code`` is the C return code for the same mistake."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SmootherConfig:
    """Tuning knobs; the defaults are micro_speech's (set ``silence_index`` for your model).

    average_window_ms: results newer than ``now - average_window_ms`` are averaged (>= 0).
    detection_threshold: minimum top average of ``score + 128`` to report (0..255).
    suppression_ms: the same command is not reported again within this time (>= 0).
    minimum_count: results needed in the window before anything is reported (1..the ring's
        ``max_results``).
    silence_index: class that is never reported, or -1 for none.
    """

    average_window_ms: int = 1000
    detection_threshold: int = 200
    suppression_ms: int = 1500
    minimum_count: int = 3
    silence_index: int = -1

    def validate(self, num_classes: int, max_classes: int = MAX_CLASSES,
                 max_results: int = MAX_RESULTS) -> None:
        """Raise :class:`SmootherError` exactly where ``kws_recognizer_init`` fails for a state
        of capacity ``max_classes`` x ``max_results`` (so a config is refused on the host
        exactly when the board would refuse it)."""
        if not (1 <= max_classes and 1 <= max_results <= MAX_RING_RESULTS):
            raise SmootherError(f"capacity {max_classes} classes x {max_results} results: both "
                                f"must be >= 1, results <= {MAX_RING_RESULTS}", ERR_CAPACITY)
        if not 1 <= num_classes <= max_classes:
            raise SmootherError(f"num_classes={num_classes} must be in 1..{max_classes} "
                                "(the ring's classes)", ERR_NUM_CLASSES)
        checks = [
            (0 <= self.average_window_ms <= _INT32_MAX, "average_window_ms must be >= 0"),
            (0 <= self.detection_threshold <= 255, "detection_threshold must be in 0..255"),
            (0 <= self.suppression_ms <= _INT32_MAX, "suppression_ms must be >= 0"),
            (1 <= self.minimum_count <= max_results,
             f"minimum_count must be in 1..{max_results} (the ring's results)"),
            (-1 <= self.silence_index < num_classes,
             f"silence_index must be -1 or a class index < {num_classes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise SmootherError(f"{message}: {self}", ERR_CONFIG)


@dataclass(frozen=True)
class Result:
    """One :meth:`RecognizeCommands.process` outcome (the C ``kws_recognizer_result_t``).

    found_command: top class of the smoothed scores; score: its average of ``score + 128``
    (0..255); is_new_command: True only when this call reports a detection; time_ms: the
    timestamp of the result just processed.
    """

    found_command: int
    score: int
    is_new_command: bool
    time_ms: int


class RecognizeCommands:
    """Streaming smoother: feed every model output with its timestamp, act on ``is_new_command``.

    Keeps the same ring of recent results and per-class integer sums as the C code, so results
    match it bit for bit, including the ring-capacity and error behaviour. ``max_classes`` and
    ``max_results`` are the C state's capacity (``KWS_RECOGNIZER_STATE(classes, results)``);
    the defaults are ``kws_recognizer_state_t``'s.
    """

    def __init__(self, num_classes: int, config: SmootherConfig | None = None, *,
                 max_classes: int = MAX_CLASSES, max_results: int = MAX_RESULTS) -> None:
        self.config = config or SmootherConfig()
        self.config.validate(num_classes, max_classes, max_results)
        self.num_classes = num_classes
        self.max_classes = max_classes
        self.max_results = max_results
        self.reset()

    def reset(self) -> None:
        """Forget all results and the last reported command (as ``kws_recognizer_reset``)."""
        self._ring: deque[tuple[int, np.ndarray]] = deque()
        self._sums = np.zeros(self.num_classes, np.int64)
        self._last_time: int | None = None
        self._last_command = -1
        self._last_command_time = 0

    @property
    def results(self) -> int:
        """How many results the ring holds (those averaged by the last call)."""
        return len(self._ring)

    def _check_scores(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores)
        if s.shape != (self.num_classes,):
            raise ValueError(f"scores must have shape ({self.num_classes},), got {s.shape}")
        if s.dtype != np.int8:
            if not np.issubdtype(s.dtype, np.integer) or s.min() < -128 or s.max() > 127:
                raise ValueError("scores must be int8 (the quantized softmax, -128..127)")
        return s.astype(np.int64)

    def process(self, scores: np.ndarray, time_ms: int) -> Result:
        """Add one int8 score vector observed at ``time_ms`` (ms, int32) and smooth.

        Raises :class:`SmootherError` (code ``ERR_TIME``) if ``time_ms`` is earlier than the
        previous result's; the state is then unchanged, as in C.
        """
        time_ms = int(time_ms)
        if not _INT32_MIN <= time_ms <= _INT32_MAX:
            raise ValueError(f"time_ms={time_ms} outside int32 (the C timestamp type)")
        values = self._check_scores(scores) + _SCORE_OFFSET
        if self._last_time is not None and time_ms < self._last_time:
            raise SmootherError(f"timestamps must not decrease: {time_ms} ms after "
                                f"{self._last_time} ms", ERR_TIME)
        cfg = self.config

        oldest_allowed = time_ms - cfg.average_window_ms
        while self._ring and self._ring[0][0] < oldest_allowed:
            self._sums -= self._ring.popleft()[1]
        if len(self._ring) == self.max_results:
            self._sums -= self._ring.popleft()[1]
        self._ring.append((time_ms, values))
        self._sums += values
        self._last_time = time_ms

        n = len(self._ring)
        averages = (self._sums + n // 2) // n  # sums >= 0: floor division = C division
        top = int(np.argmax(averages))  # first maximum, as the C strict '>' scan
        top_score = int(averages[top])

        is_new = False
        if (n >= cfg.minimum_count and top_score >= cfg.detection_threshold
                and top != cfg.silence_index):
            is_new = (top != self._last_command
                      or time_ms - self._last_command_time > cfg.suppression_ms)
        if is_new:
            self._last_command = top
            self._last_command_time = time_ms
        return Result(top, top_score, is_new, time_ms)


def run(score_sequence: Sequence[np.ndarray] | np.ndarray, times_ms: Sequence[int],
        config: SmootherConfig | None = None, *, max_results: int = MAX_RESULTS,
        max_classes: int = MAX_CLASSES) -> list[Result]:
    """Smooth a whole stream: ``score_sequence`` [T, num_classes] int8 with ``times_ms`` [T],
    in a ring of ``max_classes`` x ``max_results`` (as the board's).

    Convenient for tuning ``config`` offline on recorded model outputs.
    """
    scores = np.asarray(score_sequence)
    if scores.ndim != 2 or len(scores) != len(times_ms):
        raise ValueError(f"score_sequence must be [T, num_classes] with T == len(times_ms), "
                         f"got shape {scores.shape} and {len(times_ms)} timestamps")
    smoother = RecognizeCommands(scores.shape[1], config, max_classes=max_classes,
                                 max_results=max_results)
    return [smoother.process(s, t) for s, t in zip(scores, times_ms, strict=True)]


def results_needed(average_window_ms: int, stride_ms: int, minimum_count: int = 1) -> int:
    """Ring size (results) a smoother needs when the model runs every ``stride_ms``: the window
    ``[now - average_window_ms, now]`` holds ``average_window_ms // stride_ms + 1`` results of
    evenly spaced timestamps (both ends count), and at least ``minimum_count`` must fit or the
    detector can never fire. Why: the board's ring is sized by this, not by a worst case
    (kws_runner.h computes the same for the config it is given)."""
    if average_window_ms < 0 or stride_ms < 1 or minimum_count < 1:
        raise ValueError(f"need average_window_ms >= 0, stride_ms >= 1, minimum_count >= 1, got "
                         f"{average_window_ms}, {stride_ms}, {minimum_count}")
    return max(average_window_ms // stride_ms + 1, minimum_count)
