"""The search loop of ``tinyspeech explore``: sample, check the limits, train, report.

A worker starts a new trial only while completed plus in-flight trials are below the target,
so ``trials`` counts *trained* architectures across all workers; pruned (infeasible) samples
and re-sampled duplicates do not count. Each trial is trained by :func:`tinyspeech_tf.train.train`
with the schedule of the real-data recipe (:mod:`tinyspeech_tf.train.recipes`) on a short
budget of its own, once per seed, and scored by the mean int8 accuracy in TFLM.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.explore.measure import _one_line, measure
from tinyspeech_tf.explore.pareto import read_reference, spec_path, write_reports
from tinyspeech_tf.explore.space import Constraints, sample_spec, start_params
from tinyspeech_tf.explore.storage import open_storage, open_study, trained_trials, warm_start
from tinyspeech_tf.io import write_atomic

# The recipe whose schedule trials train with. Its epoch counts are not used: a trial is a
# ranking on a short budget (--epochs, --qat-epochs), not a final model. Its adopted variants
# (distillation) are not used either, so the budget, and the settings studies already recorded,
# stay what they were (a worker with other settings is refused by the study).
RECIPE = "real"
RECIPE_FIELDS = ("lr_schedule",)


@dataclass(frozen=True)
class Budget:
    """How each trial trains; with the constraints, what makes trials comparable."""

    epochs: int
    qat_epochs: int
    batch_size: int
    max_steps_per_epoch: int | None = None
    seed: int = 0
    seeds: int = 1  # each architecture is trained with seeds seed .. seed + seeds - 1

    def recipe(self) -> dict:
        """The TrainConfig schedule fields: the budget's epochs on :data:`RECIPE`'s schedule."""
        from tinyspeech_tf.train import recipes

        fields = recipes.get(RECIPE)
        return {"epochs": self.epochs, "qat_epochs": self.qat_epochs,
                **{key: fields[key] for key in RECIPE_FIELDS}}


def settings(constraints: Constraints, budget: Budget) -> dict:
    """What makes trials comparable: constraints and training budget (not paths or workers)."""
    recipe = budget.recipe()
    return {"constraints": asdict(constraints),
            "budget": {"epochs": budget.epochs, "qat_epochs": budget.qat_epochs,
                       "batch_size": budget.batch_size,
                       "max_steps_per_epoch": budget.max_steps_per_epoch,
                       "lr_schedule": recipe["lr_schedule"], "seed": budget.seed,
                       # only when averaged, so studies run before --seeds stay comparable
                       **({"seeds": budget.seeds} if budget.seeds > 1 else {})}}


def _check_data(data: str) -> None:
    if data not in ("synthetic", "tfds") and not Path(data).exists():
        raise UserError(f"--data {data}: no such dataset folder")


class _Quiet:
    """Silence TensorFlow's and TFLM's native chatter so progress stays one line per trial."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def __enter__(self):
        if not self.verbose:
            from tinyspeech_tf.tflm import _quiet_native_output

            self._ctx = _quiet_native_output()
            self._ctx.__enter__()

    def __exit__(self, *exc):
        if not self.verbose:
            self._ctx.__exit__(*exc)
        return False


def _progress(trial, target: int, done: int, best) -> str:
    a = trial.user_attrs
    head = f"trial {trial.number:>3} [{a.get('worker', '?')}]"
    costs = ", ".join(f"{label} {a[key]:,}" for key, label in (
        ("params", "params"), ("macs", "MACs"), ("tflite_bytes", "bytes"),
        ("arena_bytes", "arena"))
        if key in a)
    if "pruned_reason" in a:
        return f"{head} pruned before training: {a['pruned_reason']} ({costs})"
    if "duplicate_of" in a:
        return f"{head} same architecture as trial {a['duplicate_of']}: not retrained"
    if "accuracy" not in a:
        return f"{head} {trial.state.name.lower()}: {a.get('error', 'no result')}"
    best_text = f"best {best.value:.1%} (trial {best.number})" if best else ""
    return (f"{head} int8 {a['accuracy']:.1%} | {costs} | {a.get('train_seconds', 0):.0f} s "
            f"| {done}/{target} trained, {best_text}")


def _summary(runs: list[dict]) -> dict:
    """One trial's result from the metrics of its training runs (one per seed).

    Accuracies are means over the seeds (each seed's int8 figure is kept too); bytes and arena
    are the largest, so a trial on the front fits its limits whichever seed a user retrains.
    """
    def mean(values: list) -> float | None:
        return None if None in values else float(sum(values) / len(values))

    return {"accuracy": mean([m["int8_tflm"]["accuracy"] for m in runs]),
            "seed_accuracies": [m["int8_tflm"]["accuracy"] for m in runs],
            "float_accuracy": mean([m["float"]["accuracy"] for m in runs]),
            "qat_accuracy": mean([(m["qat"] or {}).get("accuracy") for m in runs]),
            "tflite_bytes": max(m["tflite_bytes"] for m in runs),
            "arena_bytes": max(m["arena_bytes"] for m in runs),
            "params": runs[0]["params"], "macs": runs[0]["macs"], "ops": runs[0]["ops"],
            "train_seconds": sum(m["train_seconds"] for m in runs)}


def train_trial(spec: dict, run_dir: Path, data: str, budget: Budget,
                verbose: bool = False) -> list[dict]:
    """Train ``spec`` once per seed of the budget into ``run_dir`` (``run_dir/seed_<s>`` when
    several); returns each run's metrics. One worker trains many models, so each run's graphs
    and data are freed after it."""
    from tinyspeech_tf.train import TrainConfig, train

    runs = []
    for seed in range(budget.seed, budget.seed + budget.seeds):
        config = TrainConfig(model=spec["name"], spec=spec, data=data,
                             out=(run_dir if budget.seeds == 1
                                  else run_dir / f"seed_{seed}").as_posix(),
                             **budget.recipe(), batch_size=budget.batch_size,
                             per_channel=spec["per_channel"], seed=seed,
                             max_steps_per_epoch=budget.max_steps_per_epoch)
        try:
            with _Quiet(verbose):
                runs.append(train(config, verbose=0))
        finally:
            import gc

            from tinyspeech_tf._compat import keras

            keras.backend.clear_session()
            gc.collect()
    return runs


def explore(out: str | os.PathLike, data: str, trials: int, constraints: Constraints,
            budget: Budget, *, study_name: str = "tinyspeech", storage: str | None = None,
            reference: str | None = None, warm_start_from: str | None = None,
            start_from: tuple[str, ...] | list[str] = (), max_infeasible: int = 100,
            verbose: bool = False) -> dict:
    """Run this worker's share of the study, then write the reports; returns pareto.json.

    ``storage`` is an optuna RDB URL shared by all workers (default ``sqlite:///OUT/study.db``),
    ``reference`` a trained run directory marked in the plot, ``warm_start_from`` a study of
    the same storage whose trials seed a new one, ``start_from`` architectures (zoo names or
    spec files) queued once per study before sampling.
    """
    import optuna
    import optuna.logging
    from optuna.trial import TrialState

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_data(data)
    reference_point = read_reference(reference) if reference else None
    study_settings = settings(constraints, budget)
    # Failed trials are reported in this module's progress line; optuna's own warnings (with
    # tracebacks) only with --verbose.
    optuna.logging.set_verbosity(optuna.logging.WARNING if verbose else optuna.logging.ERROR)
    rdb = open_storage(storage or f"sqlite:///{out.as_posix()}/study.db")
    study = open_study(rdb, study_name, budget.seed, study_settings)
    if warm_start_from:
        if warm_start_from == study_name:
            raise UserError("--warm-start names the study itself; give a new --study")
        try:
            source = optuna.load_study(study_name=warm_start_from, storage=rdb)
        except KeyError:
            raise UserError(f"--warm-start: no study {warm_start_from!r} in the storage "
                            "(list them with optuna studies --storage URL)") from None
        if copied := warm_start(study, source, constraints):
            print(f"{study_name}: {copied} trials copied from {warm_start_from!r}")
    for start in start_from:
        # Once per study whatever the number of workers: an equal queued or finished trial
        # is not queued again.
        study.enqueue_trial(start_params(start, constraints), skip_if_exists=True)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    fatal: list[BaseException] = []
    current: dict = {}

    def objective(trial) -> float:
        current["number"] = trial.number
        spec = sample_spec(trial, constraints)
        trial.set_user_attr("spec", spec)
        trial.set_user_attr("worker", worker)
        for other in study.get_trials(deepcopy=False,
                                      states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if other.number == trial.number or other.params != trial.params:
                continue
            trial.set_user_attr("duplicate_of", other.number)
            if other.state == TrialState.PRUNED and "pruned_reason" in other.user_attrs:
                trial.set_user_attr("pruned_reason", other.user_attrs["pruned_reason"])
                raise optuna.TrialPruned(other.user_attrs["pruned_reason"])
            if other.state == TrialState.COMPLETE and other.value is not None:
                return other.value
        with _Quiet(verbose):
            costs, reason = measure(spec, constraints, qat=budget.qat_epochs > 0)
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        if reason:
            trial.set_user_attr("pruned_reason", reason)
            raise optuna.TrialPruned(reason)
        write_atomic(out / spec_path(trial.number), json.dumps(spec, indent=2) + "\n")
        try:
            runs = train_trial(spec, out / "trials" / str(trial.number), data, budget, verbose)
        except UserError as err:  # the data or options are wrong: stop, do not sample on
            fatal.append(err)
            raise
        except Exception as err:
            trial.set_user_attr("error", f"{type(err).__name__}: {_one_line(err)}")
            raise
        trained = _summary(runs)
        for key, value in trained.items():
            trial.set_user_attr(key, value)
        return trained["accuracy"]

    infeasible = failures = 0
    try:
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            done = len(trained_trials(study))
            running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            if done + running >= trials:
                break
            current.clear()
            study.optimize(objective, n_trials=1, catch=(Exception,))
            if fatal:
                raise fatal[0]
            trial = next(t for t in study.get_trials(deepcopy=False)
                         if t.number == current["number"])
            done = len(trained_trials(study))
            best = max(trained_trials(study), key=lambda t: t.value, default=None)
            print(_progress(trial, trials, done, best), flush=True)
            infeasible = infeasible + 1 if "pruned_reason" in trial.user_attrs else 0
            failures = failures + 1 if trial.state == TrialState.FAIL else 0
            if trial.state != TrialState.PRUNED:
                write_reports(study, out, study_settings, reference_point)
            if infeasible >= max_infeasible:
                raise UserError(
                    f"{infeasible} sampled architectures in a row broke the constraints (last: "
                    f"{trial.user_attrs['pruned_reason']}); loosen the limits or raise "
                    "--max-infeasible")
            if failures >= 3:
                raise RuntimeError(f"3 trials in a row failed to train; last: "
                                   f"{trial.user_attrs.get('error', 'see --verbose')}")
    finally:
        report = write_reports(study, out, study_settings, reference_point)
    return report
