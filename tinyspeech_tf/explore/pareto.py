"""The reports of ``tinyspeech explore``: the accuracy / bytes / arena Pareto front of the trained
trials (``pareto.json``), its plot (``pareto.png``) and each trial's spec file.

Why from the study and not from this worker's trials: several workers share one study, and
each rewrites the reports after every trial, so any of them leaves the whole study reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.explore.space import Constraints
from tinyspeech_tf.explore.storage import trained_trials
from tinyspeech_tf.io import write_atomic

FRONT_KEYS = ("accuracy", "tflite_bytes", "arena_bytes")


def _dominates(a: dict, b: dict) -> bool:
    """``a`` is at least as accurate, small and lean as ``b``, and better in one."""
    no_worse = (a["accuracy"] >= b["accuracy"] and a["tflite_bytes"] <= b["tflite_bytes"]
                and a["arena_bytes"] <= b["arena_bytes"])
    better = (a["accuracy"] > b["accuracy"] or a["tflite_bytes"] < b["tflite_bytes"]
              or a["arena_bytes"] < b["arena_bytes"])
    return no_worse and better


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row dominates (max accuracy, min bytes, min arena), smallest first."""
    front = [r for r in rows if not any(_dominates(o, r) for o in rows)]
    return sorted(front, key=lambda r: (r["tflite_bytes"], r["arena_bytes"], -r["accuracy"]))


def _row(trial) -> dict:
    a = trial.user_attrs
    return {"trial": trial.number, "accuracy": a["accuracy"],
            "float_accuracy": a.get("float_accuracy"), "tflite_bytes": a["tflite_bytes"],
            "arena_bytes": a["arena_bytes"], "params": a["params"], "macs": a["macs"],
            "ops": a.get("ops"), "spec": spec_path(trial.number), "run": f"trials/{trial.number}",
            "worker": a.get("worker"), "seed_accuracies": a.get("seed_accuracies")}


def spec_path(number: int) -> str:
    """Where trial ``number``'s spec lives, relative to the output directory."""
    return f"specs/trial_{number}.json"


def read_reference(run_dir: str) -> dict:
    """The hand-built model's point from its run directory's metrics.json (read by
    :mod:`tinyspeech_tf.runs`, the one reader of run directories)."""
    from tinyspeech_tf.runs import METRICS, read_json_object

    path = Path(run_dir) / METRICS
    try:
        m = read_json_object(path)
    except UserError as err:  # bad JSON: say which option named the file
        raise UserError(f"--reference {err}") from None
    if m is None:
        raise UserError(f"--reference {run_dir}: no metrics.json (a `tinyspeech train` run "
                        "directory is expected)")
    try:
        return {"run": run_dir, "model": m["model"], "accuracy": m["int8_tflm"]["accuracy"],
                "tflite_bytes": m["tflite_bytes"], "arena_bytes": m["arena_bytes"],
                "params": m["params"], "macs": m["macs"], "epochs": m.get("epochs"),
                "qat_epochs": m.get("qat_epochs")}
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"--reference {path}: not a training run's metrics ({err})") from None


def write_reports(study, out: Path, settings: dict, reference: dict | None) -> dict:
    """pareto.json, pareto.png and any missing spec file (specs live in the study too, so a
    worker on another machine can report architectures it did not train)."""
    from optuna.trial import TrialState

    trials = trained_trials(study)
    constraints = Constraints(**settings["constraints"])
    rows, late = [], []
    for t in trials:
        spec_file = out / spec_path(t.number)
        if not spec_file.exists():
            write_atomic(spec_file, json.dumps(t.user_attrs["spec"], indent=2) + "\n")
        row = _row(t)
        # Graph-determined figures, so this is a guard, not an expectation.
        (late if constraints.violation(row) else rows).append(row)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    report = {
        "study": study.study_name,
        "objective": "int8 validation accuracy in TFLM (maximize)",
        "settings": settings,
        "trials": {"trained": len(trials),
                   "pruned": states.count(TrialState.PRUNED),
                   "failed": states.count(TrialState.FAIL),
                   "running": states.count(TrialState.RUNNING),
                   "duplicates": sum(1 for t in study.get_trials(
                       deepcopy=False, states=(TrialState.COMPLETE,))
                       if "duplicate_of" in t.user_attrs)},
        "front": pareto_front(rows),
        "evaluated": sorted(rows, key=lambda r: r["trial"]),
        "violating_after_training": [r["trial"] for r in late],
        "reference": reference,
    }
    write_atomic(out / "pareto.json", json.dumps(report, indent=2) + "\n")
    plot_front(report, constraints, out / "pareto.png")
    return report


def plot_front(report: dict, constraints: Constraints, path: Path) -> None:
    """Accuracy vs bytes and vs arena: every trained trial, the front highlighted, the limits
    dashed, the hand-built reference starred."""
    from tinyspeech_tf.plots import figure, save_figure

    fig, axes = figure((11, 4.2), cols=2)
    front = {r["trial"] for r in report["front"]}
    rows = report["evaluated"]
    ref = report["reference"]
    for ax, key, limit, label in ((axes[0], "tflite_bytes", constraints.max_bytes,
                                   "int8 .tflite bytes"),
                                  (axes[1], "arena_bytes", constraints.max_arena,
                                   "TFLM arena bytes")):
        others = [r for r in rows if r["trial"] not in front]
        ax.scatter([r[key] for r in others], [100 * r["accuracy"] for r in others],
                   color="0.6", s=18, label="trained trial")
        best = sorted((r for r in rows if r["trial"] in front), key=lambda r: r[key])
        ax.scatter([r[key] for r in best], [100 * r["accuracy"] for r in best], color="C3",
                   s=36, zorder=3, label="Pareto front (acc, bytes, arena)")
        for r in best:
            ax.annotate(f"#{r['trial']}", (r[key], 100 * r["accuracy"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        if limit is not None:
            ax.axvline(limit, color="C0", linestyle="--", linewidth=1, label=f"limit {limit:,}")
        if ref:
            ax.scatter([ref[key]], [100 * ref["accuracy"]], marker="*", s=140, color="C2",
                       zorder=4, label=f"{ref['model']} (hand-built, {ref['epochs']}"
                                       f"+{ref['qat_epochs']} epochs)")
        ax.set_xlabel(label)
        ax.set_ylabel("int8 val accuracy in TFLM (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    budget = report["settings"]["budget"]
    fig.suptitle(f"explore {report['study']}: {report['trials']['trained']} trained, "
                 f"{report['trials']['pruned']} pruned; {budget['epochs']}+"
                 f"{budget['qat_epochs']} epochs per trial", fontsize=10)
    save_figure(fig, path)
