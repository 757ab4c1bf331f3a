"""``tinyspeech bench``: the zoo against peer int8 keyword spotters, measured in one process.

For every zoo model a finished run directory is used (``--runs`` first, then
``runs/real/<name>``, then for TinySpeech-M ``runs/ablation/tinyspeech_m_residual``, then the
shipped pretrained model) or, with ``--train``, one is trained with the real-data recipe. On a
clone without the dataset nothing is scored or trained: sizes, arena and latency are measured,
each run's accuracy at training is shown beside, and absent peers are listed as skipped. Each
run and each peer model in ``../shared/models`` is then measured with the same code: int8
accuracy in the TFLM interpreter on the validation split
(:func:`tinyspeech_tf.evaluate.int8_accuracy`), .tflite bytes, minimum TFLM arena, and host TFLM
latency with all models interleaved round-robin (one invoke of each model per round, in a fresh
random order every round, many rounds) on one fixed random int8 input, each model in its own
interpreter. Ratios are taken against the MLPerf Tiny KWS reference DS-CNN measured in the same
run.

Writes ``bench/results.json``, ``bench/results.md`` (with TinySpeech-M's flatbuffer and arena
composition), ``bench/accuracy_vs_size.png``, and replaces the block between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md with the results table, so the
README's numbers are always generated, never typed. Every file is written atomically.

The parts: :mod:`.discovery` (finding and training runs), :mod:`.peers` (the peer registry),
:mod:`.measure` (one model's accuracy, size, arena, latency), :mod:`.memory` (arena and
activation analysis), :mod:`.collect` (a whole bench), :mod:`.report` (table, markdown, plot,
README block). The command itself is apps/bench.py (argument parsing only).
"""

from __future__ import annotations

from tinyspeech_tf.bench.collect import (
    add_ratios,
    default_shared,
    machine_info,
    measure,
    run_bench,
    select_models,
)
from tinyspeech_tf.bench.discovery import (
    FALLBACK_RUNS,
    candidates,
    compressed_runs,
    find_run,
    train_run,
    variant_runs,
)
from tinyspeech_tf.bench.measure import (
    float_tflite_accuracy,
    frontend_speed,
    measure_compressed,
    measure_peer,
    measure_variant,
    measure_zoo_run,
    probe_architecture,
)
from tinyspeech_tf.bench.memory import (
    activation_peak,
    arena_breakdown,
    greedy_plan,
    parse_allocation_report,
)
from tinyspeech_tf.bench.peers import PEERS, REFERENCE, Peer
from tinyspeech_tf.bench.report import (
    HEADER,
    README_END,
    README_START,
    composition_markdown,
    plot,
    readme_block,
    replace_block,
    table,
    to_markdown,
    variant_options,
    write_outputs,
)
from tinyspeech_tf.quantize.flatbuffer import composition
from tinyspeech_tf.tflm import interleaved_latency, random_input

__all__ = [
    "FALLBACK_RUNS", "HEADER", "PEERS", "README_END", "README_START", "REFERENCE", "Peer",
    "activation_peak", "add_ratios", "arena_breakdown", "candidates", "composition",
    "composition_markdown", "compressed_runs", "default_shared", "find_run",
    "float_tflite_accuracy", "frontend_speed", "greedy_plan", "interleaved_latency",
    "machine_info", "measure", "measure_compressed", "measure_peer", "measure_variant",
    "measure_zoo_run", "parse_allocation_report", "plot", "probe_architecture", "random_input",
    "readme_block", "replace_block", "run_bench", "select_models", "table", "to_markdown",
    "train_run", "variant_options", "variant_runs", "write_outputs",
]
