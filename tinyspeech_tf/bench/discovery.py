"""Finding the runs ``tinyspeech bench`` measures, and training the zoo models without one.

Runs are looked up in a fixed order (the user's ``--runs`` first, then ``<root>/real/<name>``,
then known fallbacks, then the shipped pretrained model) so a bench is reproducible from the
folders alone; run files are read only through :mod:`tinyspeech_tf.runs`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tinyspeech_tf import runs
from tinyspeech_tf.bench._common import log

# Finished runs reused before training, after the user's --runs (relative to --runs-root).
FALLBACK_RUNS = {"tinyspeech_m": ["ablation/tinyspeech_m_residual"]}


def _run_model(run: Path) -> str | None:
    return ((runs.read_json_object(run / runs.CONFIG) or {}).get("model")
            or (runs.read_json_object(run / runs.METRICS) or {}).get("model"))


def candidates(name: str, user_dirs: list[str], runs_root: str) -> list[Path]:
    """Where a finished run of ``name`` is looked for, in order."""
    found = []
    for d in user_dirs:
        d = Path(d)
        found += [d, d / name] if (d / runs.MODEL).exists() else [d / name]
    found.append(Path(runs_root) / "real" / name)
    found += [Path(runs_root) / p for p in FALLBACK_RUNS.get(name, [])]
    from tinyspeech_tf.zoo import PRETRAINED_DIR

    found.append(Path(os.path.relpath(PRETRAINED_DIR / name)))  # the shipped model, if any
    return found


def find_run(name: str, user_dirs: list[str], runs_root: str) -> tuple[Path | None, list[Path]]:
    """The first finished run of model ``name`` and every place searched."""
    searched = candidates(name, user_dirs, runs_root)
    for run in searched:
        if runs.is_finished(run) and _run_model(run) in (name, None):
            return run, searched
    return None, searched


def train_run(name: str, *, runs_root: str, recipe: str, data: str) -> Path:
    """Train ``name`` with ``recipe`` into <runs_root>/real/<name> (resuming), so a bench of
    the whole zoo needs no manual training step."""
    from tinyspeech_tf.train import TrainConfig, recipes, train

    out = Path(runs_root) / "real" / name
    fields = recipes.get(recipe)
    config = TrainConfig(model=name, data=data, out=str(out), **fields)
    resume = (out / "checkpoints" / "state.json").exists()
    log(f"{name}: training {'(resuming) ' if resume else ''}with the {recipe} recipe "
        f"({recipes.describe(fields)}), data {data} -> {out}")
    started = time.time()
    train(config, resume=resume, verbose=2)
    log(f"{name}: trained in {(time.time() - started) / 60:.1f} min")
    return out


def variant_runs(folder: str | os.PathLike) -> list[Path]:
    """Finished runs directly under ``folder`` (sorted by name); none if it does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and runs.is_finished(p))


def compressed_runs(run: Path) -> list[Path]:
    """``tinyspeech compress`` reports in a run whose compressed model is present."""
    return [p for p in sorted(run.glob("compression_lut*.json"))
            if (run / runs.read_json_object(p, required=True)["files"]["compressed"]).is_file()]
