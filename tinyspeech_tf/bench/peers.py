"""The peer int8 keyword spotters ``tinyspeech bench`` measures beside the zoo.

Kept as data in one place so the models compared, their label orders (the .tflite files carry
none) and why a peer's accuracy is or is not comparable are reviewed together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Every ratio in the results is taken against this peer, measured in the same run.
REFERENCE = "mlperf_tiny_kws_ref"

_MLPERF_ORDER = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes",
                 "silence", "unknown")


@dataclass(frozen=True)
class Peer:
    """A peer int8 model in ../shared/models and what is known about it."""

    name: str
    file: str
    what: str
    labels: tuple[str, ...] | None  # output order; None: accuracy not comparable
    labels_doc: str = ""
    float_file: str | None = None
    not_comparable: str = ""  # why accuracy is not measured (when labels is None)
    # A variant of our front-end closer to the model's own, scored as an extra number.
    alt_frontend: dict = field(default_factory=dict)
    alt_note: str = ""


PEERS = (
    Peer(REFERENCE, "mlperf_tiny_kws_ref_int8.tflite",
         "MLPerf Tiny KWS reference DS-CNN (mlcommons/tiny)", _MLPERF_ORDER,
         "../shared/README.md", float_file="mlperf_tiny_kws_ref_float32.tflite"),
    Peer("arm_micronet_m", "arm_micronet_m_int8.tflite",
         "ARM MicroNet-M KWS (ARM-software/ML-examples)", _MLPERF_ORDER,
         "../shared/README.md (no label metadata in the .tflite)",
         alt_frontend={"frame_length": 640, "fft_length": 1024},
         alt_note="trained on 40 ms-window MFCC; int8 acc is on our 30 ms MLPerf front-end "
                  "like every row"),
    Peer("micro_speech", "micro_speech_int8.tflite",
         "TFLM micro_speech (tensorflow/tflite-micro)", None,
         not_comparable="different front-end (49x40 TFLM micro_frontend features, 1960 int8 "
                        "inputs) and 4 classes (silence, unknown, yes, no): its accuracy is "
                        "not comparable with 12-class 49x10-MFCC models"),
)
