"""Runs as a cache: commands that need many runs (ablations, seed comparisons, recipe studies)
reuse a finished run of exactly the same configuration and resume an interrupted one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.runs import CONFIG, METRICS, read_json_object
from tinyspeech_tf.train.config import TrainConfig, uses_synthetic
from tinyspeech_tf.train.loop import train


def finished_metrics(config: TrainConfig) -> dict | None:
    """The metrics of a finished run in ``config.out`` with exactly this config, else None."""
    out = Path(config.out)
    try:
        saved = read_json_object(out / CONFIG)
        metrics = read_json_object(out / METRICS)
    except UserError:
        return None
    if saved is None or metrics is None:
        return None
    # Compared as configs, not dicts: a run saved before a TrainConfig field existed still
    # matches when the new field has its default. Where the run lives is not part of what it
    # is: a finished run moved or copied into another folder still counts.
    try:
        same = dataclasses.replace(type(config).from_dict(saved), out=config.out) == config
    except (UserError, TypeError):
        same = False
    if same and "architecture" in metrics:
        # A zoo preset (named by the model or by a spec) may have changed since: the run must
        # be of today's architecture. Spec runs recorded before they recorded one pass as is.
        from tinyspeech_tf import zoo

        name, kwargs = ((config.spec["builder"], config.spec["kwargs"])
                        if config.spec is not None else (config.model, config.model_kwargs))
        try:
            same = zoo.same_architecture(metrics["architecture"], name, **kwargs)
        except (KeyError, TypeError):
            same = False
    if same and uses_synthetic(config):
        # The synthetic set is regenerated when its generator changes: a run of an older set
        # is of other data under the same config.
        from tinyspeech_tf.data.synth import GENERATOR_VERSION

        same = metrics.get("synthetic_generator") == GENERATOR_VERSION
    return metrics if same else None


def train_or_reuse(config: TrainConfig) -> dict:
    """A finished run's metrics, else train (resuming an interrupted run in the same folder).

    What commands that need many runs (ablations, seed comparisons) call, so they can be
    re-run after an interruption and count runs trained beforehand by ``tinyspeech train``.
    """
    metrics = finished_metrics(config)
    if metrics is None:
        metrics = train(config, resume=(Path(config.out) / "checkpoints" / "state.json").exists())
    return metrics


def run_summary(config: TrainConfig) -> dict:
    """Train (or reuse) ``config``'s run; the figures by which reports compare runs."""
    metrics = train_or_reuse(config)
    return {"seed": config.seed, "run": config.out, "float": metrics["float"]["accuracy"],
            "int8_tflm": metrics["int8_tflm"]["accuracy"],
            "tflite_bytes": metrics["tflite_bytes"], "arena_bytes": metrics["arena_bytes"],
            "params": metrics["params"], "val_examples": metrics["val_examples"],
            "train_seconds": metrics["train_seconds"]}
