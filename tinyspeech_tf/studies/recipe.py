"""``tinyspeech recipe``: measure changes to the real-data recipe one at a time.

Why: on 2,673 training clips one run's accuracy moves by points with the seed, so a recipe
change is kept only on evidence: each variant of ``recipes.VARIANTS`` (the ``real_plain`` recipe
plus one change) is trained with the same seeds as ``real_plain`` itself, and the report gives every
seed's int8 TFLM accuracy, the mean, the change of the mean against the baseline and on how many
seeds the variant won. A variant helps when its mean is higher *and* it wins on every seed: a
change tuned to the 487 val clips by a fraction of a point would not carry over to other
speakers.

Runs go to ``RUNS/<variant>/<model>_seed<s>``; finished runs with exactly that configuration are
reused (also when copied there from another folder), so the command resumes. A run whose
folder is gone (run folders are not committed) keeps its figures from the existing report when
that report measured exactly the same data, base recipe and change; the report marks it, so a
new variant can be added without retraining every earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tinyspeech_tf.errors import UserError

REPORT = Path("reports") / "recipe"
BASE = "real_plain"
BASELINE = "baseline"  # the variant that changes nothing


@dataclass(frozen=True)
class Study:
    """Where a study's data, runs and report are, and the options that apply to every run
    (``overrides``: TrainConfig fields given explicitly, e.g. ``epochs`` for a quick look)."""

    data: str
    runs: str = "runs/recipe"
    report: str = str(REPORT)
    overrides: dict = field(default_factory=dict)
    max_steps_per_epoch: int | None = None

    def base(self) -> dict:
        """The base recipe's fields with the overrides applied."""
        from tinyspeech_tf.train import recipes

        return {**recipes.get(BASE), **self.overrides}

    def config(self, model: str, variant: str, seed: int):
        from tinyspeech_tf.train import TrainConfig, recipes

        fields = {**recipes.get(BASE), **recipes.VARIANTS[variant], **self.overrides}
        return TrainConfig(model=model, data=self.data, seed=seed,
                           out=(Path(self.runs) / variant / f"{model}_seed{seed}").as_posix(),
                           max_steps_per_epoch=self.max_steps_per_epoch, **fields)


def _reported_runs(study: Study) -> dict:
    """(model, variant, seed) -> run summary, from the study's existing report when it
    measured the same data and base recipe (else empty); each marked with where it came from."""
    import json

    path = Path(study.report).with_suffix(".json")
    try:
        report = json.loads(path.read_text())
        if report["data"] != study.data or report["base"] != study.base():
            return {}
        return {(row["model"], row["variant"], run["seed"]):
                {**run, "from_report": path.as_posix(), "changes": row["changes"]}
                for row in report["rows"] for run in row["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _summary(study: Study, model: str, variant: str, seed: int, reported: dict) -> dict:
    """Train or reuse the run; a run whose folder holds nothing keeps its reported figures."""
    from tinyspeech_tf.train import finished_metrics, recipes, run_summary

    config = study.config(model, variant, seed)
    earlier = reported.get((model, variant, seed))
    if (earlier is not None and earlier.pop("changes") == recipes.VARIANTS[variant]
            and not Path(config.out).exists() and finished_metrics(config) is None):
        return earlier
    return run_summary(config)


def check(study: Study, models: list[str], variants: list[str], seeds: list[int]) -> None:
    """One-line errors for bad models, variants, seeds or option values, before any training."""
    from tinyspeech_tf import zoo
    from tinyspeech_tf.train import check_config, recipes

    bad = [m for m in models if m not in zoo.names()]
    if bad or not models:
        raise UserError(f"--models {','.join(bad) or '(none)'}: choose from "
                        f"{', '.join(zoo.names())}")
    bad = [v for v in variants if v not in recipes.VARIANTS]
    if bad:
        raise UserError(f"--variants {','.join(bad)}: choose from {', '.join(recipes.VARIANTS)}")
    if not seeds:
        raise UserError("--seeds must be at least 1")
    for variant in variants:
        check_config(study.config(models[0], variant, seeds[0]))


def run_study(study: Study, models: list[str], variants: list[str], seeds: list[int],
              command: str) -> dict:
    """Train (or reuse) model x variant x seed; return the report."""
    from tinyspeech_tf.train import recipes

    check(study, models, variants, seeds)
    variants = [BASELINE, *[v for v in variants if v != BASELINE]]
    reported = _reported_runs(study)
    rows = []
    for model in models:
        measured: dict[str, list[float]] = {}
        for variant in variants:
            runs = [_summary(study, model, variant, seed, reported) for seed in seeds]
            accs = [r["int8_tflm"] for r in runs]
            measured[variant] = accs
            row = {"model": model, "variant": variant, "changes": recipes.VARIANTS[variant],
                   "runs": runs, "mean": sum(accs) / len(accs),
                   "float_mean": sum(r["float"] for r in runs) / len(runs),
                   "train_seconds_mean": sum(r["train_seconds"] for r in runs) / len(runs)}
            if variant != BASELINE:
                # "a+b" adds b on top of a: it helps only if it beats a, not the baseline.
                against = variant.rpartition("+")[0]
                against = against if against in measured else BASELINE
                base_accs = measured[against]
                row["against"] = against
                row["delta"] = row["mean"] - sum(base_accs) / len(base_accs)
                row["seeds_won"] = sum(a > b for a, b in zip(accs, base_accs, strict=True))
                row["helps"] = row["delta"] > 0 and row["seeds_won"] == len(seeds)
            rows.append(row)
    return {"command": command, "data": study.data, "base": study.base(),
            "seeds": seeds, "rows": rows}


def _changes(changes: dict) -> str:
    if not changes:
        return "(the recipe itself)"
    shown = {k: (Path(v).name if k == "teacher" else v) for k, v in changes.items()
             if k != "teacher_labels"}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def to_markdown(report: dict) -> str:
    from tinyspeech_tf.train import recipes

    seeds = report["seeds"]
    lines = ["# Real-data recipe: one change at a time", "",
             "Generated by `" + report["command"] + "`; data `" + report["data"]
             + "`; base recipe `"
             + BASE + "` (" + recipes.describe(report["base"]) + "); seeds "
             + ", ".join(map(str, seeds)) + ". Accuracy is int8 in TFLM on the validation "
             "split; a change *helps* when its mean rises and it wins on every seed, against the "
             "baseline or, for `a+b`, against `a`. "
             "Figures marked * are kept from the earlier report of the same data, base recipe "
             "and change (their run folders were not present).", "",
             "| model | variant | change | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean | against | Δ mean | seeds won | helps | train s (mean) |",
             "|---|---|---|" + "---:|" * len(seeds) + "---:|---|---:|---:|---:|---:|"]
    for row in report["rows"]:
        delta = f"{100 * row['delta']:+.2f} pts" if "delta" in row else "-"
        won = f"{row['seeds_won']}/{len(seeds)}" if "seeds_won" in row else "-"
        helps = ("yes" if row["helps"] else "no") if "helps" in row else "-"
        lines.append(f"| {row['model']} | {row['variant']} | {_changes(row['changes'])} | "
                     + " | ".join(f"{r['int8_tflm']:.2%}" + ("*" if "from_report" in r else "")
                                  for r in row["runs"])
                     + f" | **{row['mean']:.2%}** | {row.get('against', '-')} | {delta} | {won} "
                     f"| {helps} "
                     f"| {row['train_seconds_mean']:.0f} |")
    return "\n".join(lines + [""])
