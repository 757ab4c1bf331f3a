"""Training: data -> features -> Keras fit -> QAT -> int8 -> TFLM evaluation -> run directory.

The package's public API; the stages live in its modules: ``config`` (TrainConfig and its
checks), ``recipes`` (named recipes as data), ``distill`` (teacher and loss), ``loop`` (the
run), ``card`` (model card and plots), ``reuse`` (finished runs as a cache).
"""

from __future__ import annotations

from tinyspeech_tf.evaluate import evaluate_int8, features_of
from tinyspeech_tf.train.config import (
    SYNTHETIC_DIR,
    TrainConfig,
    check_config,
    concat_splits,
    load_source,
)
from tinyspeech_tf.train.loop import Interrupted, train
from tinyspeech_tf.train.reuse import finished_metrics, run_summary, train_or_reuse

__all__ = ["SYNTHETIC_DIR", "Interrupted", "TrainConfig", "check_config", "concat_splits",
           "evaluate_int8", "features_of", "finished_metrics", "load_source", "run_summary",
           "train", "train_or_reuse"]
