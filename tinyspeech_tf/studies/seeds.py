"""``tinyspeech seeds``: compare architectures by one recipe over several training seeds.

On the 3,160-clip real set one training run's validation accuracy moves by points with the
seed alone (TinySpeech-M by the full recipe over seeds 0..2: reports/seeds.md), more than the
gap between the architectures worth comparing; so "A beats B" is measured here as the
mean int8 TFLM accuracy over the same seeds, with every seed's figure and the spread shown.

Each architecture (a zoo name or an architecture spec file) is trained with seeds ``--seed``
.. ``--seed + K - 1`` into ``RUNS/<name>_seed<s>``; a finished run with exactly that
configuration is reused, so the command resumes and runs trained beforehand with
``tinyspeech train`` under those names count. The report (``--report``, .json and .md) lists
per architecture the int8 accuracy of every seed, their mean, min and max, the flatbuffer
bytes and arena (the largest over the seeds), and of the first seed's int8 model the number of
TFLM operators and the host TFLM latency (the models timed interleaved, one invoke each per
round, so a busy machine slows them alike): what a graph change costs or saves besides
accuracy.
"""

from __future__ import annotations

from pathlib import Path

from tinyspeech_tf.errors import UserError

REPORT = Path("reports") / "seeds"


def _architecture(name_or_spec: str) -> tuple[str, dict | None]:
    """(label, spec or None) of a zoo name or a spec file; bad ones fail in one line."""
    from tinyspeech_tf import zoo

    if name_or_spec in zoo.names():
        return name_or_spec, None
    if not name_or_spec.endswith(".json"):
        raise UserError(f"{name_or_spec}: neither a zoo model ({', '.join(zoo.names())}) nor "
                        "an architecture spec file (.json)")
    zoo.from_spec(name_or_spec)  # a spec that does not build fails here, naming its file
    return Path(name_or_spec).stem, zoo.load_spec(name_or_spec)[0]


def _config(data: str, runs: str, fields: dict, label: str, spec: dict | None, seed: int):
    from tinyspeech_tf.train import TrainConfig

    return TrainConfig(model=spec["name"] if spec else label, spec=spec, data=data,
                       out=(Path(runs) / f"{label}_seed{seed}").as_posix(), seed=seed, **fields)


def compare(architectures: list[str], data: str, seeds: list[int], runs: str, fields: dict,
            command: str, rounds: int = 300) -> dict:
    """Train (or reuse) every architecture x seed run by recipe ``fields``; the report.

    ``rounds``: timed invokes of each architecture's first-seed model for its host latency.
    """
    import dataclasses

    from tinyspeech_tf.train import TrainConfig, check_config, run_summary

    if not seeds:
        raise UserError("--seeds must be at least 1")
    check_config(TrainConfig(**fields))
    archs = [_architecture(a) for a in architectures]
    labels = [label for label, _ in archs]
    if len(set(labels)) != len(labels):
        raise UserError(f"two architectures share the run name of {labels}: rename a spec file")
    rows = []
    for label, spec in archs:
        summaries = [run_summary(_config(data, runs, fields, label, spec, seed))
                     for seed in seeds]
        accuracies = [r["int8_tflm"] for r in summaries]
        rows.append({"architecture": label, "spec": spec, "runs": summaries,
                     "mean": sum(accuracies) / len(accuracies), "min": min(accuracies),
                     "max": max(accuracies),
                     "float_mean": sum(r["float"] for r in summaries) / len(summaries),
                     "tflite_bytes": max(r["tflite_bytes"] for r in summaries),
                     "arena_bytes": max(r["arena_bytes"] for r in summaries),
                     "params": summaries[0]["params"]})
    _add_graph_costs(rows, rounds)
    recipe = dataclasses.asdict(_config(data, runs, fields, labels[0], None, seeds[0]))
    for key in ("model", "data", "out", "model_kwargs", "spec", "seed"):
        recipe.pop(key)
    return {"command": command, "data": data, "recipe": recipe, "seeds": seeds,
            "val_examples": rows[0]["runs"][0]["val_examples"], "architectures": rows}


def _add_graph_costs(rows: list[dict], rounds: int) -> None:
    """Operator count, the 32-bit target's arena (:mod:`tinyspeech_tf.board_arena`), estimated
    Cortex-M4 CMSIS-NN instructions (:mod:`tinyspeech_tf.board_cost`) and interleaved host TFLM
    latency of each row's first-seed model."""
    from tinyspeech_tf import board_arena, board_cost, quantize, tflm
    from tinyspeech_tf.runs import read_tflite

    models = {row["architecture"]: read_tflite(Path(row["runs"][0]["run"]) / "model_int8.tflite")
              for row in rows}
    latency = tflm.interleaved_latency(
        {name: tflm.interpreter(b) for name, b in models.items()},
        {name: tflm.random_input(b, 0) for name, b in models.items()}, rounds)
    for row in rows:
        row["ops"] = quantize.op_count(models[row["architecture"]])
        row["arena_32bit_bytes"] = board_arena.board_arena_bytes(
            models[row["architecture"]])["arena"]
        row["cmsis_nn_instructions"] = board_cost.estimate(
            models[row["architecture"]])["instructions"]
        row["latency_us"] = latency[row["architecture"]]["median_us"]


def to_markdown(report: dict) -> str:
    seeds = report["seeds"]
    lines = ["# Architectures over training seeds", "",
             f"Generated by `{report.get('command', 'tinyspeech seeds')}`; "
             f"data `{report['data']}`, "
             f"{report['val_examples']} validation examples; recipe: "
             + ", ".join(f"{k}={v}" for k, v in report["recipe"].items() if v not in ([], None))
             + f"; seeds {', '.join(map(str, seeds))}. Accuracy is int8 in TFLM.", "",
             "| architecture | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean | min..max | float mean | .tflite bytes | arena bytes "
             "| 32-bit arena bytes | params | TFLM ops | host µs | est. M4 instructions |",
             "|---|" + "---:|" * (len(seeds) + 10)]
    for row in report["architectures"]:
        lines.append(f"| {row['architecture']} | "
                     + " | ".join(f"{r['int8_tflm']:.2%}" for r in row["runs"])
                     + f" | **{row['mean']:.2%}** | {row['min']:.2%}..{row['max']:.2%} "
                     f"| {row['float_mean']:.2%} | {row['tflite_bytes']:,} "
                     f"| {row['arena_bytes']:,} | {row['arena_32bit_bytes']:,} "
                     f"| {row['params']:,} "
                     f"| {row['ops']} | {row['latency_us']:.1f} "
                     f"| {row['cmsis_nn_instructions'] / 1e6:.2f}M |")
    return "\n".join(lines + ["", "Arena bytes: the 64-bit host's, measured in TFLM. 32-bit "
                               "arena bytes, TFLM ops and host µs: the first seed's int8 "
                               "model; the 32-bit arena is an upper bound for a Cortex-M with "
                               "CMSIS-NN (tinyspeech_tf.board_arena); host µs is the median of "
                               "interleaved invokes in the TFLM Python interpreter (reference "
                               "kernels), not a board's time; est. M4 instructions: per "
                               "inference with CMSIS-NN on a Cortex-M4, priced by the rates "
                               "of a real build's measurement (tinyspeech_tf.board_cost).", ""])
