"""The outputs of ``tinyspeech bench``: results table, results.md with TinySpeech-M's
composition, the accuracy-vs-size plot, and README's bench block.

The README's numbers are always generated from results.json by :func:`table`, never typed;
every file is written atomically.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from tinyspeech_tf.bench._common import fmt_int as _int
from tinyspeech_tf.bench._common import fmt_millions as _millions
from tinyspeech_tf.bench._common import fmt_ratio as _ratio
from tinyspeech_tf.bench._common import pct as _pct
from tinyspeech_tf.io import replace_marked, write_atomic

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"

HEADER = ("| model | source | float acc | int8 acc (TFLM) | params | MACs | .tflite bytes "
          "| arena bytes | latency µs median (p90) | est. M4 instructions | bytes × ref "
          "| arena × ref | latency × ref | instructions × ref |")


def table(results: dict) -> str:
    """The results table with its notes (what README's bench block holds)."""
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"<sup>{notes.index(text) + 1}</sup>"

    lines = [HEADER, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in results["models"]:
        name = f"**{e['name']}**" if e["name"] == results["reference"] else e["name"]
        if e["status"] != "measured":
            arch = e.get("architecture")
            mark = note("not run: size of the architecture as a trained model of it "
                        "converts, measured like `tinyspeech zoo` (tinyspeech_tf.quantize.cost); "
                        "no accuracy or latency") if arch else ""
            lines.append(
                f"| {name} | {e['status']}: {e['reason']} | - | - "
                f"| {_int(arch and arch['params'])} | {_int(arch and arch['macs'])} "
                f"| {_int(arch and arch['tflite_bytes'])}{mark} "
                f"| {_int(arch and arch['arena_bytes'])}{mark} | - "
                f"| {_millions(arch and arch['cmsis_nn_instructions'])}{mark} | - | - | - | - |")
            continue
        if e["kind"] in ("zoo", "variant"):
            source = f"`{e['source']}` ({e['epochs']}+{e['qat_epochs']} QAT ep)"
            if e["kind"] == "variant":
                source += note(f"variant {e['name']}: {variant_options(e)}")
            fl = _pct(e["float_accuracy"])
            if e["float_accuracy"] is not None and e.get("run_data_is_bench_data") is not None:
                fl += note("float: the run's Keras model on its validation split, from its "
                           "metrics.json" + ("" if e["run_data_is_bench_data"] else
                                             f" (its data: `{e['run_data']}`)"))
            params = _int(e["params"]) + note("zoo params: Keras count_params (incl. batch "
                                              "norm, as the paper counts)")
        else:
            source = f"`{e['source']}`"
            fl = _pct(e["float_accuracy"])
            if e.get("float_source"):
                fl += note(f"float: `{e['float_source']}` in the tf.lite interpreter, same "
                           "features")
            params = _int(e["params"]) + note(f"peer params: {e['params_note']}")
        at_training = e.get("int8_accuracy_at_training")
        if e["int8_accuracy"] is None and at_training is not None and results["data"] is None:
            acc = f"({_pct(at_training)})" + note(
                "in parentheses: the run's own int8 figure at training (metrics.json); no "
                "validation data on this machine to score it here")
        else:
            acc = _pct(e["int8_accuracy"])
        if at_training is not None and e["int8_accuracy"] is not None \
                and abs(at_training - e["int8_accuracy"]) > 1e-9:
            acc += note(f"{e['name']}: its metrics.json records int8 {_pct(at_training)} "
                        "(scored on the run's own validation data)")
        if e["int8_accuracy"] is None and e["int8_accuracy_note"]:
            acc += note(f"{e['name']}: {e['int8_accuracy_note']}")
        alt = e.get("int8_accuracy_alt_frontend")
        if alt:
            fe = ", ".join(f"{k} {v}" for k, v in alt["frontend"].items())
            acc += note(f"{e['name']}: {alt['note']}; with our front-end at a 40 ms window "
                        f"({fe}) it scores {_pct(alt['accuracy'])}")
        lat = e.get("latency") or {}
        r = e.get("ratios") or {}
        lat_text = (f"{lat['median_us']:,.0f} ({lat['p90_us']:,.0f})" if lat else "-")
        lines.append(f"| {name} | {source} | {fl} | {acc} | {params} | {_int(e.get('macs'))} "
                     f"| {_int(e['tflite_bytes'])} | {_int(e['arena_bytes'])} | {lat_text} "
                     f"| {_millions(e['cmsis_nn_instructions'])} "
                     f"| {_ratio(r.get('bytes'))} | {_ratio(r.get('arena'))} "
                     f"| {_ratio(r.get('latency'))} | {_ratio(r.get('instructions'))} |")
    paper_mark = note("paper Table 1 (Wong et al. 2020): its own training and Google Speech "
                      "Commands test set, 8-bit; not measured here and not directly comparable "
                      "with the rows above")
    for name, p in results["paper"].items():
        lines.append(f"| {name} (paper){paper_mark} | paper Table 1 | - | {_pct(p['accuracy'])} "
                     f"| {_int(p['params'])} | {_int(p['macs'])} | - | - | - | - | - | - | - "
                     "| - |")
    s = results["settings"]
    scored = (f"every model scored by the same code (`train.evaluate_int8`, MLPerf 49×10 MFCC "
              f"front-end, TFLM interpreter) on `{results['data']}` validation "
              f"({results['val_examples']} clips)" if results["data"] is not None else
              "not scored here (no validation data on this machine); figures in parentheses "
              "are each run's own at training")
    out = ["\n".join(lines), "",
           f"int8 accuracy: {scored}. Latency: host TFLM (Python binding, reference "
           f"kernels), {s['rounds']} invokes per model after {s['warmup']} warm-up rounds, "
           "models interleaved round-robin (one invoke each per round, random order within "
           "the round), one fixed random int8 input, each model in its own interpreter with "
           "its minimum arena. Arena: minimum TFLM arena on this 64-bit host (an upper bound "
           "for 32-bit Cortex-M). Est. M4 instructions: per inference on a Cortex-M4 with "
           "CMSIS-NN kernels, each op type priced by the rate a real-TFLM build measured "
           "(tinyspeech_tf.board_cost), not a board's measurement. Ratios: × "
           f"**{results['reference']}** measured in this run.",
           ""]
    out += [f"{i}. {text}" for i, text in enumerate(notes, 1)]
    out += ["", frontend_line(results), "", machine_line(results)]
    return "\n".join(out)


def variant_options(e: dict) -> str:
    """What makes a variant row: zoo options, pruning, LUT compression."""
    spec = e.get("spec")
    kwargs = (spec or {}).get("kwargs") or e.get("model_kwargs") or {}
    parts = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
             for k, v in sorted(kwargs.items())]
    if spec:
        parts.insert(0, f"architecture spec {spec.get('name')} (builder {spec['builder']}, "
                        "e.g. found by `tinyspeech explore`)")
    if e.get("prune"):
        parts.append(f"magnitude pruning to {e['prune']:.0%} sparsity")
    if e.get("cluster_bits"):
        parts.append(f"big filters held on {2 ** e['cluster_bits']} learned values during QAT "
                     f"(--cluster-bits {e['cluster_bits']})")
    if e.get("compression"):
        c = e["compression"]
        parts.append(f"{c['filters']} filter(s) clustered to {2 ** c['bits']} values and "
                     f"TFLM LUT-compressed ({c['bits']}-bit indices, TFLM_DECODE ops; "
                     f"`{c['report']}`)")
    return "; ".join(parts) or "zoo defaults"


def frontend_line(results: dict) -> str:
    fe = results.get("frontend")
    if not fe:
        return "Front-end: not measured (--no-frontend)."
    c = (f"C {fe['c_us_per_frame']:.2f} µs/frame (host, -O2, best of 20)"
         if fe.get("c_us_per_frame") is not None else f"C {fe.get('c_note')}")
    return (f"Front-end (MLPerf MFCC, 49 frames per 1 s clip): Python (batched TF "
            f"`features.mfcc`) {fe['python_clips_per_second']:,.0f} clips/s over "
            f"{fe['clips']} clips (best of 5); {c}.")


def machine_line(results: dict) -> str:
    m = results["machine"]
    return (f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, TensorFlow "
            f"{m['tensorflow']}, tflite-micro {m['tflite_micro']}; {m['date']}.")


def _plan_check(results: dict) -> tuple[list[str], list[str]]:
    """Measured models whose TFLM head the greedy simulation reproduces, and the others."""
    same, other = [], []
    for e in results["models"]:
        parts = e.get("arena_parts")
        if parts:
            (same if parts["greedy_plan_simulated"] == parts["head"] else other).append(e["name"])
    return same, other


def composition_markdown(name: str, comp: dict, results: dict | None = None) -> str:
    fb, arena = comp["flatbuffer"], comp["arena"]
    total = fb["total_bytes"]
    rows = [("weights (int8 constant buffers)", fb["bytes"]["weights"],
             f"{fb['elements']['weights']:,} int8 values"),
            ("biases (int32 bias buffers)", fb["bytes"]["biases"],
             f"{fb['elements']['biases']:,} int32 values"),
            ("other constants (shapes, axes, sizes)", fb["bytes"]["other_constants"],
             f"{fb['elements']['other_constants']:,} values"),
            ("quantization parameters (scales, zero points)", fb["bytes"]["quantization"],
             f"{fb['quantized_tensors']} tensors, {fb['quant_channels']} scale/zero-point "
             "pairs (float32 + int64)"),
            ("rest: graph structure and metadata", fb["bytes"]["rest"],
             f"{fb['tensors']} tensors, {fb['operators']} operators, opcodes, vector "
             "prefixes, alignment")]
    lines = [f"## {name} composition", "", f"Source: `{comp['source']}`.", "",
             f"Flatbuffer: {total:,} bytes.", "", "| part | bytes | share | what |",
             "|---|---:|---:|---|"]
    lines += [f"| {p} | {b:,} | {100 * b / total:.1f}% | {w} |" for p, b, w in rows]
    peak = arena["activation_peak"]
    plan_check = ""
    if results is not None:
        same, other = _plan_check(results)
        plan_check = (f" Across this run the simulation equals TFLM's head for "
                      f"{', '.join(same) or 'no model'}"
                      + (f" and not for {', '.join(other)}." if other else "."))
    lines += ["", f"Arena: {_int(arena['total'])} bytes = head {_int(arena['head'])} "
              f"(planned activations, reused across ops) + tail {_int(arena['tail'])} "
              "(persistent bookkeeping), from TFLM's RecordingMicroAllocator.", "",
              "| tail part | bytes | count |", "|---|---:|---:|"]
    lines += [f"| {p['what']} | {p['used']:,} | {p['count']} |" for p in arena["parts"]]
    if arena.get("tail_other") is not None:
        lines.append(f"| other (allocator and subgraph structs, not itemised by TFLM) "
                     f"| {arena['tail_other']:,} | - |")
    lines += ["", f"Head: the activations live at the peak, op {peak['peak_op_index']} "
              f"({peak['peak_op']}), sum to {peak['peak_bytes']:,} bytes (liveness along the "
              "op order: a lower bound for any memory plan). A first-fit-decreasing plan of "
              "the same lifetimes with 16-byte alignment (the algorithm of TFLM's "
              "GreedyMemoryPlanner) needs "
              f"{peak['greedy_plan_bytes']:,} bytes; TFLM's head is {_int(arena['head'])} "
              "bytes" + (" (reproduced: the head holds only the planned activations)."
                         if peak["greedy_plan_bytes"] == arena["head"] else
                         " (the Python binding exposes neither TFLM's offsets nor its kernel "
                         "scratch buffers, so the difference is not itemised here).")
              + plan_check, "",
              "| tensor | shape | type | bytes | produced by | why live |",
              "|---:|---|---|---:|---|---|"]
    lines += [f"| {t['tensor']} | {'×'.join(map(str, t['shape']))} | {t['type']} "
              f"| {t['bytes']:,} | {t['produced_by']} | {t['role']} |" for t in peak["live"]]
    return "\n".join(lines)


def to_markdown(results: dict) -> str:
    parts = ["# Benchmark: TinySpeech zoo vs peer int8 keyword spotters", "",
             "Generated by `tinyspeech bench` (`make bench`); do not edit by hand.", "",
             table(results), "",
             "Plot: [accuracy_vs_size.png](accuracy_vs_size.png).", ""]
    for name, comp in results["composition"].items():
        parts += [composition_markdown(name, comp, results), ""]
    return "\n".join(parts)


def readme_block(results: dict, results_md: str) -> str:
    return (f"{table(results)}\n\nGenerated by `make bench` from "
            f"[`{results_md}`]({results_md}) (TinySpeech-M's flatbuffer and arena composition "
            "are there too); do not edit between the markers.")


def replace_block(text: str, block: str) -> str:
    """``text`` with everything strictly between the bench markers replaced by ``block``."""
    return replace_marked(text, README_START, README_END, block,
                          "(under '## Results'); add them or pass --no-readme")


def plot(results: dict, path: Path) -> None:
    """Two panels: int8 accuracy vs .tflite bytes and vs arena bytes (log x)."""
    from tinyspeech_tf.plots import figure

    fig, axes = figure((12, 6), cols=2)  # selects the Agg backend
    import matplotlib.ticker

    measured = [e for e in results["models"]
                if e["status"] == "measured" and e["int8_accuracy"] is not None]
    sizes = {}  # zoo name -> (bytes, arena, our int8 accuracy or None, size measured on)
    for e in results["models"]:
        if e["kind"] != "zoo":
            continue
        if e["status"] == "measured":
            sizes[e["name"]] = (e["tflite_bytes"], e["arena_bytes"], e["int8_accuracy"], "run")
        elif e.get("architecture"):
            a = e["architecture"]
            sizes[e["name"]] = (a["tflite_bytes"], a["arena_bytes"], None, "untrained")
    accs = [100 * e["int8_accuracy"] for e in measured]
    accs += [100 * p["accuracy"] for n, p in results["paper"].items() if n in sizes]
    for ax, key, col, label in ((axes[0], "tflite_bytes", 0, ".tflite bytes"),
                                (axes[1], "arena_bytes", 1, "minimum TFLM arena bytes")):
        for kind, marker, color, text in (
                ("zoo", "o", "tab:blue", "zoo models, our runs: int8 TFLM accuracy, measured"),
                ("peer", "s", "tab:red", "peer models: int8 TFLM accuracy, measured"),
                ("variant", "^", "tab:purple",
                 "variants (sharing, low rank, pruning, LUT compression): measured")):
            pts = [e for e in measured if e["kind"] == kind]
            if not pts:
                continue
            ax.scatter([e[key] for e in pts], [100 * e["int8_accuracy"] for e in pts],
                       marker=marker, color=color, s=50, zorder=3, label=text)
            for e in pts:  # zoo labels above the point, peers below: equal sizes stay legible
                ax.annotate(e["name"], (e[key], 100 * e["int8_accuracy"]),
                            textcoords="offset points", fontsize=8,
                            xytext=(6, -11) if kind == "peer" else (6, 5))
        first = True
        for name, p in results["paper"].items():
            if name not in sizes:
                continue
            x, ours, measured_on = sizes[name][col], sizes[name][2], sizes[name][3]
            ax.scatter([x], [100 * p["accuracy"]], marker="D", facecolors="none",
                       edgecolors="tab:green", s=60, zorder=3,
                       label=("paper Table 1 accuracy (its own training and test set; not "
                              "measured here),\nplaced at our measured size of the same "
                              "architecture (our run, or the untrained\narchitecture's int8 "
                              "conversion: size does not depend on training)")
                       if first else None)
            first = False
            ax.annotate(f"{name} paper" + (" (size: untrained arch.)"
                                           if measured_on == "untrained" else ""),
                        (x, 100 * p["accuracy"]), textcoords="offset points",
                        xytext=(6, -3), fontsize=7, color="tab:green")
            if ours is not None:
                ax.plot([x, x], [100 * ours, 100 * p["accuracy"]], ":", color="tab:green",
                        linewidth=1)
        ax.set_xscale("log")
        ax.margins(x=0.15)
        lo, hi = ax.get_xlim()
        ticks = [t for t in (2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6) if lo <= t <= hi]
        ax.set_xticks(ticks, [f"{t / 1000:g}k" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_ylabel("int8 accuracy (%)")
        ax.set_title(f"int8 accuracy vs {label}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if accs:
            ax.set_ylim(min(accs) - 2, max(accs) + 1.5)
    skipped = [e["name"] for e in results["models"]
               if e["status"] == "measured" and e["int8_accuracy"] is None]
    why = "accuracy not comparable" if results["data"] is not None else "no validation data here"
    fig.suptitle(f"int8 accuracy measured on {results['data']} validation "
                 f"({results['val_examples']} clips), the same front-end and TFLM for every "
                 "model" + (f"\nnot plotted ({why}): {', '.join(skipped)}"
                            if skipped else ""), fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    # Not plots.save_figure: it lays the figure out again over the legend's band at the
    # bottom and saves at 100 dpi; the bytes are written atomically all the same.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def write_outputs(results: dict, out: Path, readme: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    write_atomic(out / "results.md", to_markdown(results))
    plot(results, out / "accuracy_vs_size.png")
    if readme is not None:
        md_rel = os.path.relpath(out / "results.md", readme.resolve().parent)
        text = readme.read_text()
        write_atomic(readme, replace_block(text, readme_block(results, md_rel)))

