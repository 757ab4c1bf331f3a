"""A whole ``tinyspeech bench``: find or train the runs, measure every model in one process,
time them interleaved, and write the outputs.

Library entry points take explicit parameters (the command, apps/bench.py, only parses
arguments), so a bench can be run from Python or a test with the same code.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import numpy as np

from tinyspeech_tf.bench._common import log, pct, rel
from tinyspeech_tf.bench.discovery import compressed_runs, find_run, train_run, variant_runs
from tinyspeech_tf.bench.measure import (
    frontend_speed,
    measure_compressed,
    measure_peer,
    measure_variant,
    measure_zoo_run,
    probe_architecture,
)
from tinyspeech_tf.bench.memory import activation_peak, arena_breakdown, parse_allocation_report
from tinyspeech_tf.bench.peers import PEERS, REFERENCE
from tinyspeech_tf.bench.report import replace_block, write_outputs
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.evaluate import ValSet
from tinyspeech_tf.quantize.flatbuffer import composition
from tinyspeech_tf.tflm import interleaved_latency, random_input

REAL_SUBDIR = ("data", "speech_commands_v0.02_real")


def default_shared(*parts: str) -> str:
    """A path under ../shared (relative to the working directory, as results quote it)."""
    from tinyspeech_tf.data.sources import shared_dir

    return os.path.relpath(shared_dir().joinpath(*parts))


def machine_info() -> dict:
    import importlib.metadata as md

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {"cpu": cpu or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": version("tensorflow"), "tflite_micro": version("tflite_micro")
            or version("tflite-micro"), "platform": platform.platform(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def add_ratios(entries: list[dict], reference: str = REFERENCE) -> None:
    """ratios[bytes|arena|latency|instructions] = entry / reference, measured rows only (None
    if absent)."""
    ref = next((e for e in entries if e["name"] == reference and e["status"] == "measured"),
               None)
    for e in entries:
        if e["status"] != "measured" or ref is None:
            e["ratios"] = None
            continue
        lat, ref_lat = (e.get("latency") or {}).get("median_us"), \
            (ref.get("latency") or {}).get("median_us")
        e["ratios"] = {"bytes": e["tflite_bytes"] / ref["tflite_bytes"],
                       "arena": e["arena_bytes"] / ref["arena_bytes"],
                       "latency": lat / ref_lat if lat and ref_lat else None,
                       "instructions": e["cmsis_nn_instructions"] / ref["cmsis_nn_instructions"]}



def select_models(models: str | None) -> list[str]:
    """The zoo models named in ``models`` (comma-separated; None or empty: the whole zoo)."""
    from tinyspeech_tf import zoo

    if not models:
        return zoo.names()
    chosen = [n.strip() for n in models.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in zoo.names()]
    if unknown:
        raise UserError(f"--models: unknown model {unknown[0]!r}; choose from "
                        f"{', '.join(zoo.names())}")
    return chosen


def measure(*, data: str | None, peers: str, models: str | None = None,
            runs: list[str] | tuple[str, ...] = (), runs_root: str = "runs",
            variants: str = "runs/variants", train: bool = False, recipe: str = "real",
            rounds: int = 500, warmup: int = 10, seed: int = 0, frontend: bool = True,
            probe: bool = True) -> dict:
    """Everything in results.json. Zoo models without a finished run are trained with
    ``recipe`` when ``train`` is True; ``probe`` sizes the untrained architecture of every
    model left without a run; ``frontend`` adds the front-end speed. With ``data`` None (a
    clone without the dataset) nothing is scored or trained: sizes, arena and latency are
    measured and each run's accuracy at training is reported beside."""
    from tinyspeech_tf import tflm, zoo

    selected = select_models(models)
    val = None
    if data is None:
        log("validation set: none on this machine; accuracy is each run's own figure at "
            "training (metrics.json), nothing is trained")
    else:
        log(f"validation set: {data}")
        val = ValSet(data)
        log(f"{len(val.split)} validation clips")
    entries: list[dict] = []
    measured_runs: list[tuple[dict, Path]] = []
    tflites: dict[str, bytes] = {}
    probes: dict[str, bytes] = {}
    for name in zoo.names():
        if name not in selected:
            entries.append({"name": name, "kind": "zoo", "status": "not run",
                            "reason": "not selected (--models)"})
            continue
        run, searched = find_run(name, list(runs), runs_root)
        if run is None and train and val is not None:
            run = train_run(name, runs_root=runs_root, recipe=recipe, data=data)
        if run is None:
            where = ", ".join(rel(p) for p in searched)
            why = "--train trains it" if val is not None else "no data here to train it"
            log(f"{name}: MISSING: no finished run in {where} ({why})")
            entries.append({"name": name, "kind": "zoo", "status": "not run",
                            "reason": f"no finished run (searched {where}; {why})",
                            "searched": [rel(p) for p in searched]})
            continue
        log(f"{name}: measuring run {rel(run)}")
        entry, tflite = measure_zoo_run(name, run, val)
        measured_runs.append((entry, run))
        entries.append(entry)
        tflites[name] = tflite
        log(f"{name}: int8 {pct(entry['int8_accuracy'])}, {entry['tflite_bytes']:,} B, "
            f"arena {entry['arena_bytes']:,} B")
    runs_of = {e["name"]: run_path for e, run_path in measured_runs}
    for run in variant_runs(variants):
        log(f"variant {run.name}: measuring run {rel(run)}")
        entry, tflite = measure_variant(run, val)
        entries.append(entry)
        tflites[entry["name"]] = tflite
        runs_of[entry["name"]] = run
    for base in [e for e in entries if e["status"] == "measured"
                 and (e["kind"] == "variant" or e["name"] == "tinyspeech_m")]:
        for report_path in compressed_runs(runs_of[base["name"]]):
            entry, tflite = measure_compressed(base, runs_of[base["name"]], report_path, val)
            log(f"variant {entry['name']}: int8 {pct(entry['int8_accuracy'])}, "
                f"{entry['tflite_bytes']:,} B, arena {entry['arena_bytes']:,} B")
            entries.append(entry)
            tflites[entry["name"]] = tflite
    for entry in entries:
        if entry["status"] != "measured" and probe:
            log(f"{entry['name']}: sizing the untrained architecture (no run to measure)")
            entry["architecture"], probes[entry["name"]] = probe_architecture(entry["name"])
    peers_dir = Path(peers)
    for peer in PEERS:
        path = peers_dir / peer.file
        if not path.is_file():
            log(f"{peer.name}: skipped: no file {rel(path)}")
            entries.append({"name": peer.name, "kind": "peer", "status": "skipped",
                            "reason": f"no file {rel(path)} (the peer models are not on this "
                                      "machine; give --peers DIR)", "what": peer.what})
            continue
        log(f"{peer.name}: measuring {rel(path)}")
        entry, tflite = measure_peer(peer, path, val)
        entries.append(entry)
        tflites[peer.name] = tflite
        log(f"{peer.name}: int8 {pct(entry['int8_accuracy'])}, {entry['tflite_bytes']:,} B, "
            f"arena {entry['arena_bytes']:,} B")

    step = max(1, rounds // 4)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            log(f"latency: round {done}/{total}")

    log(f"latency: {len(tflites)} models interleaved, {warmup} warm-up + {rounds} rounds")
    by_name = {e["name"]: e for e in entries}
    interps = {n: tflm.interpreter(b, by_name[n]["arena_bytes"]) for n, b in tflites.items()}
    inputs = {n: random_input(b, seed) for n, b in tflites.items()}
    latency = interleaved_latency(interps, inputs, rounds, warmup, seed, progress)
    del interps
    for name, lat in latency.items():
        by_name[name]["latency"] = lat
    add_ratios(entries)
    for name, b in tflites.items():  # head/tail of every measured model, and its plan check
        e = by_name[name]
        report = parse_allocation_report(tflm.allocation_report(b, e["arena_bytes"]))
        peak = activation_peak(b)
        e["arena_parts"] = {"head": report["head"], "tail": report["tail"],
                            "activation_lower_bound": peak["peak_bytes"],
                            "greedy_plan_simulated": peak["greedy_plan_bytes"]}

    compositions = {}
    m_bytes = tflites.get("tinyspeech_m") or probes.get("tinyspeech_m")
    if m_bytes is not None:
        e = by_name["tinyspeech_m"]
        arena = e["arena_bytes"] if e["status"] == "measured" else e["architecture"]["arena_bytes"]
        compositions["tinyspeech_m"] = {
            "source": e.get("source") or "untrained architecture (no run)",
            "flatbuffer": composition(m_bytes), "arena": arena_breakdown(m_bytes, arena)}

    speed = None
    if frontend:
        log("front-end: Python clips/s and C us/frame")
        speed = frontend_speed(np.asarray(val.split.waveforms) if val is not None else
                               np.random.default_rng(seed).uniform(-0.5, 0.5, (64, 16000))
                               .astype(np.float32))

    from tinyspeech_tf.zoo import PAPER

    return {
        "generated_by": "tinyspeech bench",
        "machine": machine_info(),
        "data": data, "val_examples": len(val.split) if val is not None else 0,
        "settings": {"rounds": rounds, "warmup": warmup, "seed": seed,
                     "train_recipe": recipe, "no_train": not train},
        "reference": REFERENCE,
        "models": entries,
        "paper": PAPER,
        "frontend": speed,
        "composition": compositions,
    }



def run_bench(*, data: str | None = None, peers: str | None = None,
              out: str | os.PathLike = "bench", readme: str | os.PathLike | None = "README.md",
              models: str | None = None, runs: list[str] | tuple[str, ...] = (),
              runs_root: str = "runs", variants: str = "runs/variants", train: bool = False,
              recipe: str = "real", rounds: int = 500, warmup: int = 10, seed: int = 0,
              frontend: bool = True, probe: bool = True) -> dict:
    """:func:`measure`, then results.json, results.md and accuracy_vs_size.png in ``out`` and
    the table in ``readme``'s bench block (None: leave it alone); returns the results.

    ``data`` defaults to ../shared/data/speech_commands_v0.02_real (when absent, as on a
    user's clone, nothing is scored: see :func:`measure`) and ``peers`` to ../shared/models.
    The README and a given dataset are checked first, so a bad path fails before an hour of
    measuring, not after.
    """
    if data is None and os.path.exists(default_shared(*REAL_SUBDIR)):
        data = default_shared(*REAL_SUBDIR)
    peers = peers or default_shared("models")
    readme = None if readme is None else Path(readme)
    if readme is not None:
        if not readme.is_file():
            raise UserError(f"{readme}: no such README; pass --readme PATH or --no-readme")
        replace_block(readme.read_text(), "")
    if data is not None and not os.path.exists(data):
        raise UserError(f"{data}: no such dataset folder; give --data")
    results = measure(data=data, peers=peers, models=models, runs=runs, runs_root=runs_root,
                      variants=variants, train=train, recipe=recipe, rounds=rounds,
                      warmup=warmup, seed=seed, frontend=frontend, probe=probe)
    write_outputs(results, Path(out), readme)
    return results
