"""``tinyspeech explore``: machine-driven TinySpeech design search under deployment constraints.

An optuna study samples TinySpeech architectures (number of attention condensers, stem width
and stride, embedding width per condenser, embedding type and depth multiplier, condensation
pool, head width, kernel and stride, and batch norm and the selective-attention mode when
allowed), trains each with a short budget and maximizes its int8 validation accuracy *in the
TFLM interpreter*. Decisions and why:

- Constraints are checked before any training, cheapest first: parameters and MACs from the
  Keras model (``tinyspeech_tf.profile``), then one int8 conversion with random calibration
  for the op set and the flatbuffer size, then the minimum TFLM arena of that flatbuffer. A
  violating architecture costs seconds, not a training run: its trial is pruned
  (``optuna.TrialPruned``) with the first violated constraint in the ``pruned_reason`` user
  attribute, and no trial directory is created. The model converted for the check is the one
  training will ship, measured as ``tinyspeech zoo`` measures the zoo
  (:func:`tinyspeech_tf.cost.int8_flatbuffer`): the QAT copy when the budget has QAT epochs,
  with distinct random weights (fresh zero biases and S = 1 would be stored once each and
  understate the bytes). The trained figures are what the reports show, and a trial whose
  trained model broke a limit anyway would be listed under ``violating_after_training``
  instead of the front.
- ``--tflm-ops`` restricts the op set to ``quantize.TINYSPEECH_OPS``: the ops of the hand-built
  TinySpeech-M (its condensers already need ADD for the residual F, so the set is the "M op set
  plus ADD" of the issue). A searched model then needs no kernel the M firmware lacks, so kernel
  flash stays what it is. Without the flag any TFLM builtin op is allowed (``quantize.TFLM_OPS``:
  the arena is measured in TFLM, so that much is always required).
- Single objective (accuracy) rather than multi-objective: bytes and arena are already bounded
  by the constraints, so the budget goes to accuracy within them; bytes and arena are user
  attributes, and the accuracy / bytes / arena Pareto front is computed from the completed
  trials (``pareto.json``, ``pareto.png``).
- ``--trials N`` is the number of *trained* architectures the study should hold, across all
  workers: pruned (infeasible) trials and re-sampled duplicates do not count, and a worker
  starts a new trial only while completed plus in-flight trials are below N. Re-running the
  command on a finished study therefore only rewrites the reports (raise ``--trials`` to
  continue); a worker that samples ``--max-infeasible`` infeasible architectures in a row
  stops with an error saying which limit bit, since the constraints are then too tight.
- Several workers (processes or machines) share one study by running the same command against
  the same ``--storage`` (default ``sqlite:///DIR/study.db``; any optuna RDB URL such as
  PostgreSQL works). Trials carry a heartbeat, so a killed worker's trial is marked failed and
  does not block the count. Each trial's sampler stream is seeded from ``(--seed, trial
  number)``: reproducible for one worker, and workers never sample in lockstep.
- ``--seeds K`` trains each architecture K times (seeds ``--seed`` .. ``--seed + K - 1``) and
  maximizes the mean: at 60 + 5 epochs TinySpeech-M scored 77.2% with seed 0 and 74.1% with
  seed 1, a spread as wide as the gap between the best few architectures of a study, so one
  run per trial ranks them partly by luck. It costs K trainings per trial.
- The study remembers its constraints and training budget; a worker asking for different ones
  is refused (use another ``--study``), since their accuracies would not be comparable.

Outputs in ``DIR``: ``trials/<n>/`` (each trained run, as ``tinyspeech train`` writes it),
``specs/trial_<n>.json`` (each trained architecture, trainable again with ``tinyspeech train
--spec``), ``pareto.json`` and ``pareto.png``, all written atomically and after every trial.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.io import write_atomic as _write_atomic

# The search space. Strides are (time, frequency); stride 1 in time keeps all 49 frames, which
# the arena limit usually rules out, but the constraint check decides, not the space.
CONDENSERS = (1, 4)
STEM_CHANNELS = (4, 16, 2)
STEM_STRIDES = ("1x1", "2x1", "1x2", "2x2")
# Between the stem and the head, the main path has no conv (a condenser only gates V), so the
# stem's kernel is most of what a feature sees of the spectrogram before the head. 10x4 is the
# stem of the MLPerf Tiny DS-CNN (10 frames, 210 ms of audio, by 4 coefficients); it costs
# weights, not arena.
STEM_KERNELS = ("3x3", "5x3", "10x4")
EMBED_WIDTHS = (4, 24, 2)
DEPTH_MULTIPLIERS = (1, 2)
EMBEDDINGS = ("depthwise", "conv")
POOL_SIZES = (2, 4)
F_MODES = ("residual", "multiply")  # multiply only with batch norm: see searched_f_modes
HEAD_CHANNELS = (8, 48, 4)
# The head conv's output is the largest activation of TinySpeech-M (25x5x28) and its weights a
# third of M's: a 1x1 kernel frees flash, a 2x2 stride frees the arena that a finer stem
# stride (2x1, 1x2) needs. The first choice of each is the hand-built one.
HEAD_KERNELS = ("3x3", "1x1")
HEAD_STRIDES = ("1x1", "2x2")
# The (time, frequency) pair options, as the sampler names them and their grids.
PAIR_OPTIONS = (("stem_strides", STEM_STRIDES), ("stem_kernel", STEM_KERNELS),
                ("head_kernel", HEAD_KERNELS), ("head_strides", HEAD_STRIDES))

INPUT_SHAPE = (49, 10, 1)
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
# Architectures are measured per-tensor like TinySpeech-M (zoo.PER_CHANNEL): at this size
# per-channel scales are a large share of the flatbuffer.
PER_CHANNEL = False


@dataclass(frozen=True)
class Constraints:
    """Deployment limits; ``None`` means unlimited."""

    max_params: int | None = None
    max_macs: int | None = None
    max_bytes: int | None = None
    max_arena: int | None = None
    tflm_ops: bool = False
    batch_norm: bool = True

    @property
    def allowed_ops(self) -> frozenset:
        from tinyspeech_tf import quantize

        return quantize.TINYSPEECH_OPS if self.tflm_ops else quantize.TFLM_OPS

    def violation(self, costs: dict) -> str | None:
        """The first limit ``costs`` break, as a sentence, or None. Missing costs pass."""
        for key, limit, flag, unit in (("params", self.max_params, "--max-params", ""),
                                       ("macs", self.max_macs, "--max-macs", ""),
                                       ("tflite_bytes", self.max_bytes, "--max-bytes", " B"),
                                       ("arena_bytes", self.max_arena, "--max-arena", " B")):
            if limit is not None and key in costs and costs[key] > limit:
                return f"{key} {costs[key]:,}{unit} > {flag} {limit:,}"
        if "ops" in costs:
            extra = sorted(set(costs["ops"]) - self.allowed_ops)
            if extra:
                allowed = "TINYSPEECH_OPS (--tflm-ops)" if self.tflm_ops else "TFLM_OPS"
                return f"ops {', '.join(extra)} outside {allowed}"
        return None


def searched_f_modes(use_batch_norm: bool) -> tuple[str, ...]:
    """The selective-attention modes searched for a model with or without batch norm.

    Without batch norm the multiply form V*A*S starts by shrinking the signal (A near 0.5 per
    condenser) and a short trial budget does not recover: after 60 + 5 epochs on the real set
    TinySpeech-M scored 47.0% with multiply against 77.2% with residual, and a searched
    2-condenser design 59.1% against 76.0% (at 150 + 30 epochs M's gap closes to 4 points,
    reports/f_mode_ablation.md). Searching it there would rank designs by their F mode.
    """
    return F_MODES if use_batch_norm else ("residual",)


def _pair(text: str) -> list[int]:
    return [int(v) for v in text.split("x")]


def _text(pair) -> str:
    return "x".join(str(int(v)) for v in pair)


def sample_spec(trial, constraints: Constraints) -> dict:
    """Sample one TinySpeech architecture spec (define-by-run: widths exist per condenser)."""
    count = trial.suggest_int("condensers", *CONDENSERS)
    embedding = trial.suggest_categorical("embedding", EMBEDDINGS)
    stride = trial.suggest_categorical("stem_strides", STEM_STRIDES)
    kwargs = {
        "stem_channels": trial.suggest_int("stem_channels", STEM_CHANNELS[0], STEM_CHANNELS[1],
                                           step=STEM_CHANNELS[2]),
        "stem_kernel": _pair(trial.suggest_categorical("stem_kernel", STEM_KERNELS)),
        "stem_strides": _pair(stride),
        "embed_widths": [trial.suggest_int(f"embed_width_{i}", EMBED_WIDTHS[0],
                                           EMBED_WIDTHS[1], step=EMBED_WIDTHS[2])
                         for i in range(1, count + 1)],
        # Only the depthwise embedding has a multiplier; the conv one's c1 is the width.
        "depth_multiplier": (trial.suggest_int("depth_multiplier", *DEPTH_MULTIPLIERS)
                             if embedding == "depthwise" else 1),
        "embedding": embedding,
        "pool_size": trial.suggest_int("pool_size", *POOL_SIZES),
        "head_channels": trial.suggest_int("head_channels", HEAD_CHANNELS[0], HEAD_CHANNELS[1],
                                           step=HEAD_CHANNELS[2]),
        "head_kernel": _pair(trial.suggest_categorical("head_kernel", HEAD_KERNELS)),
        "head_strides": _pair(trial.suggest_categorical("head_strides", HEAD_STRIDES)),
        "use_batch_norm": (trial.suggest_categorical("use_batch_norm", (False, True))
                           if constraints.batch_norm else False),
    }
    modes = searched_f_modes(kwargs["use_batch_norm"])
    kwargs["f_mode"] = (trial.suggest_categorical("f_mode", modes) if len(modes) > 1
                        else modes[0])
    return {"builder": "tinyspeech", "kwargs": kwargs, "name": f"explore_trial_{trial.number}",
            "per_channel": PER_CHANNEL}


def _builder_defaults() -> dict:
    """Every ``tinyspeech()`` argument with its default: what a spec's kwargs leave out."""
    import inspect

    from tinyspeech_tf.zoo.tinyspeech import tinyspeech

    return {k: p.default for k, p in inspect.signature(tinyspeech).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _architecture(name_or_spec: str) -> tuple[dict, str]:
    """Full ``tinyspeech()`` arguments of a zoo TinySpeech name or a spec file, and a label."""
    from tinyspeech_tf import zoo
    from tinyspeech_tf.zoo.tinyspeech import PRESETS

    defaults = _builder_defaults()
    if name_or_spec in PRESETS:
        return {**defaults, **PRESETS[name_or_spec]}, name_or_spec
    if name_or_spec in zoo.names():
        raise UserError(f"--start-from {name_or_spec}: not a TinySpeech network; the search "
                        "space only holds TinySpeech architectures")
    spec, where = zoo.load_spec(name_or_spec)
    if spec["builder"] != "tinyspeech" and spec["builder"] not in PRESETS:
        raise UserError(f"--start-from {where}: builder {spec['builder']} is not TinySpeech")
    return {**defaults, **PRESETS.get(spec["builder"], {}), **spec["kwargs"]}, where


def start_params(name_or_spec: str, constraints: Constraints) -> dict:
    """The sampler's parameters that make :func:`sample_spec` rebuild an architecture.

    Used to enqueue known designs (e.g. the hand-built TinySpeech-M) as the study's first
    trials, so the sampler models the space around them from the start. Every value must lie
    on the search grid, and options outside the space must be at their defaults.
    """
    kw, label = _architecture(name_or_spec)
    return space_params(kw, f"--start-from {label}", constraints)


def space_params(kw: dict, where: str, constraints: Constraints) -> dict:
    """:func:`start_params` of full ``tinyspeech()`` arguments ``kw``.

    ``where`` begins the one-line error (the flag and the architecture it names).
    """

    def bad(what: str) -> UserError:
        return UserError(f"{where}: {what} is outside the search space")

    def on_grid(key: str, value, grid: tuple) -> int:
        low, high, step = grid
        if not (low <= int(value) <= high and (int(value) - low) % step == 0):
            raise bad(f"{key} {value} (search: {low}..{high} step {step})")
        return int(value)

    for key, default in (("scale_init", 1.0), ("share", "none"),
                         ("low_rank", 0), ("dropout", 0.0)):
        value = kw.get(key, default)
        if (tuple(value) if isinstance(value, (list, tuple)) else value) != default:
            raise bad(f"{key}={value}")
    widths = list(kw["embed_widths"])
    pairs = {key: _text(kw[key]) for key, _ in PAIR_OPTIONS}
    pool = kw["pool_size"]
    if isinstance(pool, (list, tuple)):
        if len(set(pool)) != 1:
            raise bad(f"pool_size {pool}")
        pool = pool[0]
    if not CONDENSERS[0] <= len(widths) <= CONDENSERS[1]:
        raise bad(f"{len(widths)} condensers")
    for key, grid in PAIR_OPTIONS:
        if pairs[key] not in grid:
            raise bad(f"{key} {pairs[key]}")
    if kw["embedding"] not in EMBEDDINGS:
        raise bad(f"embedding {kw['embedding']}")
    modes = searched_f_modes(kw["use_batch_norm"])
    if kw["f_mode"] not in modes:
        raise bad(f"f_mode {kw['f_mode']} {'with' if kw['use_batch_norm'] else 'without'} "
                  f"batch norm (searched there: {', '.join(modes)})")
    if not POOL_SIZES[0] <= int(pool) <= POOL_SIZES[1]:
        raise bad(f"pool_size {pool}")
    if kw["use_batch_norm"] and not constraints.batch_norm:
        raise bad("batch norm (--no-batchnorm)")
    params = {"condensers": len(widths), "embedding": kw["embedding"], **pairs,
              "stem_channels": on_grid("stem_channels", kw["stem_channels"], STEM_CHANNELS),
              "pool_size": int(pool),
              "head_channels": on_grid("head_channels", kw["head_channels"], HEAD_CHANNELS)}
    for i, width in enumerate(widths, start=1):
        params[f"embed_width_{i}"] = on_grid(f"embed width {i}", width, EMBED_WIDTHS)
    if kw["embedding"] == "depthwise":
        if not DEPTH_MULTIPLIERS[0] <= int(kw["depth_multiplier"]) <= DEPTH_MULTIPLIERS[1]:
            raise bad(f"depth_multiplier {kw['depth_multiplier']}")
        params["depth_multiplier"] = int(kw["depth_multiplier"])
    if constraints.batch_norm:
        params["use_batch_norm"] = bool(kw["use_batch_norm"])
    if len(modes) > 1:
        params["f_mode"] = kw["f_mode"]
    return params


def measure(spec: dict, constraints: Constraints | None = None,
            qat: bool = False) -> tuple[dict, str | None]:
    """Costs of a spec and the first violated constraint (None if feasible).

    Stops at the first violation so an oversized model is never converted. Bytes, op set and
    arena are those of a trained model of the spec (:func:`tinyspeech_tf.cost.int8_flatbuffer`,
    the measurement of ``tinyspeech zoo``); ``qat`` as the budget has QAT epochs, since
    training then ships the QAT copy, which converts larger than the post-training model.
    """
    from tinyspeech_tf import cost, profile, quantize, tflm, zoo
    from tinyspeech_tf._compat import keras
    from tinyspeech_tf.data import LABELS

    constraints = constraints or Constraints()
    keras.backend.clear_session()
    model = zoo.from_spec(spec, input_shape=INPUT_SHAPE, num_classes=len(LABELS))
    costs: dict = {"params": int(model.count_params())}
    if reason := constraints.violation(costs):
        return costs, reason
    costs["macs"] = int(profile.total_macs(model))
    if reason := constraints.violation(costs):
        return costs, reason
    per_channel = spec.get("per_channel", PER_CHANNEL)
    try:
        tflite = cost.int8_flatbuffer(model, per_channel, qat=qat)
    except Exception as err:  # noqa: BLE001 - not convertible is not deployable: infeasible
        return costs, f"int8 conversion failed ({type(err).__name__}: {_one_line(err)})"
    costs["ops"] = quantize.op_set(tflite)
    costs["tflite_bytes"] = len(tflite)
    if reason := constraints.violation(costs):
        return costs, reason
    try:
        costs["arena_bytes"] = tflm.arena_bytes(tflite)
    except RuntimeError as err:
        return costs, f"TFLM does not allocate it ({_one_line(err)})"
    return costs, constraints.violation(costs)


def _one_line(err: BaseException, limit: int = 200) -> str:
    return " ".join(str(err).split())[:limit]


# --- storage and study ----------------------------------------------------------------------

def _redacted(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used in messages
        return url.split("@")[-1]


def open_storage(url: str):
    """An optuna RDB storage with heartbeats; SQLite waits for locks instead of failing.

    Two workers started together may both create the schema; the loser retries.
    """
    import optuna
    import sqlalchemy.exc

    kwargs = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                                                  grace_period=GRACE_SECONDS, **kwargs)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError) as err:
            # Workers started together race to create the schema and stamp its version
            # (IntegrityError) or wait on SQLite's lock; the schema is there on a retry.
            retry = (isinstance(err, sqlalchemy.exc.IntegrityError)
                     or url.startswith("sqlite"))
            if attempt == 4 or not retry:
                raise UserError(f"--storage {_redacted(url)}: {_one_line(err)}") from None
            time.sleep(0.5 + attempt)
        except (ImportError, ValueError, sqlalchemy.exc.ArgumentError) as err:
            raise UserError(f"--storage {_redacted(url)}: {_one_line(err)}") from None
    raise AssertionError("unreachable")


def make_sampler(seed: int | None):
    """TPE whose random stream for trial ``n`` is seeded from ``(seed, n)``.

    One seeded TPE per worker would make workers started with the same command sample the same
    architectures in lockstep; trial numbers are unique within a storage, so seeding per trial
    is both reproducible (one worker, same seed, same sequence) and collision-free.
    """
    import numpy as np
    import optuna

    def tpe(number: int | None):
        trial_seed = (None if seed is None else int(
            np.random.SeedSequence([int(seed), int(number or 0)]).generate_state(1)[0]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Multivariate TPE over groups of parameters that occur together: the widths exist
            # only for the condensers a trial has.
            return optuna.samplers.TPESampler(seed=trial_seed, multivariate=True, group=True)

    class Sampler(optuna.samplers.BaseSampler):
        def __init__(self):
            self._inner = tpe(None)

        def before_trial(self, study, trial):
            self._inner = tpe(trial.number)
            self._inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return self._inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self._inner.after_trial(study, trial, state, values)

    return Sampler()


def warm_start(study, source, constraints: Constraints) -> int:
    """Copy every trial of ``source`` into the empty ``study`` as a point of today's space.

    A search space that grows (e.g. the head kernel and stride) adds parameters the old trials
    lack; continuing the old study would leave the sampler modelling the new ones apart from
    the rest, on new trials only. Each copied trial gets the parameters its recorded
    architecture has in today's space (the hand-built value of a new option), its state,
    value and attributes; trial numbers stay the same, so ``specs/`` and ``trials/`` of the
    old study remain valid. Trials without a result (failed, or left running by a killed
    worker) are copied as failed. Returns the number of trials copied.
    """
    import optuna
    from optuna.trial import TrialState

    if study.user_attrs.get("warm_start") == source.study_name:
        return 0  # another worker (or an earlier run of this command) copied them
    if study.get_trials(deepcopy=False):
        raise UserError(f"--warm-start: study {study.study_name!r} already has trials; "
                        "warm-start a new --study")
    if source.user_attrs.get("settings") != study.user_attrs.get("settings"):
        raise UserError(f"--warm-start: study {source.study_name!r} was run with other "
                        "constraints or budget; its accuracies would not be comparable")
    study.set_user_attr("warm_start", source.study_name)
    defaults = _builder_defaults()

    def full(spec: dict) -> dict:  # every builder argument, as JSON has it
        return json.loads(json.dumps({**spec, "kwargs": {**defaults, **spec["kwargs"]}}))

    old_trials = source.get_trials(deepcopy=False)
    for old in old_trials:
        done = old.state in (TrialState.COMPLETE, TrialState.PRUNED) and "spec" in old.user_attrs
        if not done:
            study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL,
                                                      user_attrs=old.user_attrs))
            continue
        spec = old.user_attrs["spec"]
        fixed = optuna.trial.FixedTrial(space_params({**defaults, **spec["kwargs"]},
                                                     f"--warm-start: trial {old.number} of "
                                                     f"{source.study_name!r}", constraints),
                                        number=old.number)
        if full(sample_spec(fixed, constraints)) != full(spec):
            raise UserError(f"--warm-start: trial {old.number} of {source.study_name!r} is not "
                            "a point of this search space")
        study.add_trial(optuna.trial.create_trial(
            state=old.state, value=old.value, params=fixed.params,
            distributions=fixed.distributions, user_attrs=old.user_attrs,
            intermediate_values=old.intermediate_values))
    return len(old_trials)


def open_study(storage, name: str, seed: int | None, settings: dict):
    """Create or load the study; refuse to mix workers with different settings."""
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=make_sampler(seed), load_if_exists=True)
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", settings)
    elif saved != settings:
        diff = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
        raise UserError(f"study {name!r} was created with other settings ({', '.join(diff)}: "
                        f"{', '.join(f'{saved.get(k)!r}' for k in diff)}); use the same options "
                        "or another --study")
    return study


def trained_trials(study) -> list:
    """Completed trials that trained an architecture (not re-sampled duplicates)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "duplicate_of" not in t.user_attrs and "accuracy" in t.user_attrs]


# --- reports ----------------------------------------------------------------------------------

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
    """The hand-built model's point from its run directory's metrics.json."""
    path = Path(run_dir) / "metrics.json"
    try:
        m = json.loads(path.read_text())
        return {"run": run_dir, "model": m["model"], "accuracy": m["int8_tflm"]["accuracy"],
                "tflite_bytes": m["tflite_bytes"], "arena_bytes": m["arena_bytes"],
                "params": m["params"], "macs": m["macs"], "epochs": m.get("epochs"),
                "qat_epochs": m.get("qat_epochs")}
    except FileNotFoundError:
        raise UserError(f"--reference {run_dir}: no metrics.json (a `tinyspeech train` run "
                        "directory is expected)") from None
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
            _write_atomic(spec_file, json.dumps(t.user_attrs["spec"], indent=2) + "\n")
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
    _write_atomic(out / "pareto.json", json.dumps(report, indent=2) + "\n")
    plot_front(report, constraints, out / "pareto.png")
    return report


def plot_front(report: dict, constraints: Constraints, path: Path) -> None:
    """Accuracy vs bytes and vs arena: every trained trial, the front highlighted, the limits
    dashed, the hand-built reference starred."""
    from tinyspeech_tf.train import _figure

    fig, axes = _figure((11, 4.2), cols=2)
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
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    """Save atomically under a per-process temporary name (workers may report at once)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# --- the search loop --------------------------------------------------------------------------

def _settings(args: argparse.Namespace) -> dict:
    """What makes trials comparable: constraints and training budget (not paths or workers)."""
    return {"constraints": asdict(_constraints(args)),
            "budget": {"epochs": args.epochs, "qat_epochs": args.qat_epochs,
                       "batch_size": args.batch_size,
                       "max_steps_per_epoch": args.max_steps_per_epoch,
                       "lr_schedule": "cosine", "seed": args.seed,
                       # only when averaged, so studies run before --seeds stay comparable
                       **({"seeds": args.seeds} if args.seeds > 1 else {})}}


def _constraints(args: argparse.Namespace) -> Constraints:
    return Constraints(max_params=args.max_params, max_macs=args.max_macs,
                       max_bytes=args.max_bytes, max_arena=args.max_arena,
                       tflm_ops=args.tflm_ops, batch_norm=not args.no_batchnorm)


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


def explore(args: argparse.Namespace) -> dict:
    """Run this worker's share of the study, then write the reports; returns pareto.json."""
    import optuna
    from optuna.trial import TrialState

    from tinyspeech_tf.train import TrainConfig, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_data(args.data)
    reference = read_reference(args.reference) if args.reference else None
    settings = _settings(args)
    constraints = _constraints(args)
    import optuna.logging

    # Failed trials are reported in this module's progress line; optuna's own warnings (with
    # tracebacks) only with --verbose.
    optuna.logging.set_verbosity(optuna.logging.WARNING if args.verbose
                                 else optuna.logging.ERROR)
    storage = open_storage(args.storage or f"sqlite:///{out.as_posix()}/study.db")
    study = open_study(storage, args.study, args.seed, settings)
    if args.warm_start:
        if args.warm_start == args.study:
            raise UserError("--warm-start names the study itself; give a new --study")
        try:
            source = optuna.load_study(study_name=args.warm_start, storage=storage)
        except KeyError:
            raise UserError(f"--warm-start: no study {args.warm_start!r} in the storage "
                            "(list them with optuna studies --storage URL)") from None
        if copied := warm_start(study, source, constraints):
            print(f"{args.study}: {copied} trials copied from {args.warm_start!r}")
    for start in args.start_from:
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
        with _Quiet(args.verbose):
            costs, reason = measure(spec, constraints, qat=args.qat_epochs > 0)
        for key, value in costs.items():
            trial.set_user_attr(key, value)
        if reason:
            trial.set_user_attr("pruned_reason", reason)
            raise optuna.TrialPruned(reason)
        _write_atomic(out / spec_path(trial.number), json.dumps(spec, indent=2) + "\n")
        runs = []
        run_dir = out / "trials" / str(trial.number)
        for seed in range(args.seed, args.seed + args.seeds):
            config = TrainConfig(model=spec["name"], spec=spec, data=args.data,
                                 out=(run_dir if args.seeds == 1
                                      else run_dir / f"seed_{seed}").as_posix(),
                                 epochs=args.epochs, qat_epochs=args.qat_epochs,
                                 batch_size=args.batch_size, lr_schedule="cosine",
                                 per_channel=spec["per_channel"], seed=seed,
                                 max_steps_per_epoch=args.max_steps_per_epoch)
            try:
                with _Quiet(args.verbose):
                    runs.append(train(config, verbose=0))
            except UserError as err:  # the data or options are wrong: stop, do not sample on
                fatal.append(err)
                raise
            except Exception as err:
                trial.set_user_attr("error", f"{type(err).__name__}: {_one_line(err)}")
                raise
            finally:
                import gc

                from tinyspeech_tf._compat import keras

                keras.backend.clear_session()
                gc.collect()  # one worker trains many models: free each run's graphs and data
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
            if done + running >= args.trials:
                break
            current.clear()
            study.optimize(objective, n_trials=1, catch=(Exception,))
            if fatal:
                raise fatal[0]
            trial = next(t for t in study.get_trials(deepcopy=False)
                         if t.number == current["number"])
            done = len(trained_trials(study))
            best = max(trained_trials(study), key=lambda t: t.value, default=None)
            print(_progress(trial, args.trials, done, best), flush=True)
            infeasible = infeasible + 1 if "pruned_reason" in trial.user_attrs else 0
            failures = failures + 1 if trial.state == TrialState.FAIL else 0
            if trial.state != TrialState.PRUNED:
                write_reports(study, out, settings, reference)
            if infeasible >= args.max_infeasible:
                raise UserError(
                    f"{infeasible} sampled architectures in a row broke the constraints (last: "
                    f"{trial.user_attrs['pruned_reason']}); loosen the limits or raise "
                    "--max-infeasible")
            if failures >= 3:
                raise RuntimeError(f"3 trials in a row failed to train; last: "
                                   f"{trial.user_attrs.get('error', 'see --verbose')}")
    finally:
        report = write_reports(study, out, settings, reference)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    limits = parser.add_argument_group("deployment constraints (checked before training)")
    limits.add_argument("--max-params", type=int, default=None, metavar="N")
    limits.add_argument("--max-macs", type=int, default=None, metavar="N")
    limits.add_argument("--max-bytes", type=int, default=None, metavar="B",
                        help="int8 .tflite flatbuffer size")
    limits.add_argument("--max-arena", type=int, default=None, metavar="B",
                        help="minimum TFLM arena, measured in the TFLM interpreter (64-bit "
                             "host: an upper bound for a Cortex-M)")
    limits.add_argument("--tflm-ops", action="store_true",
                        help="only the TinySpeech-M op set (quantize.TINYSPEECH_OPS, ADD "
                             "included); otherwise any TFLM builtin op")
    limits.add_argument("--no-batchnorm", action="store_true",
                        help="never sample batch norm (TinySpeech-M style)")
    parser.add_argument("--trials", type=int, default=20,
                        help="trained architectures the study should hold, over all workers "
                             "(pruned trials do not count)")
    parser.add_argument("--epochs", type=int, default=20, help="float epochs per trial")
    parser.add_argument("--qat-epochs", type=int, default=5, help="QAT epochs per trial")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic', 'tfds' or a dataset folder (train/val)")
    parser.add_argument("--study", default="tinyspeech", help="study name in the storage")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="optuna storage URL shared by all workers "
                             "(default sqlite:///OUT/study.db)")
    parser.add_argument("--out", default="runs/explore", metavar="DIR",
                        help="trials/, specs/, pareto.json, pareto.png (and the default "
                             "study.db) go here")
    parser.add_argument("--reference", default=None, metavar="RUN_DIR",
                        help="a trained run (e.g. hand-built TinySpeech-M) to mark in the plot")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampler seed (mixed with each trial number) and training seed")
    parser.add_argument("--seeds", type=int, default=1, metavar="K",
                        help="train each architecture with K seeds (--seed, --seed+1, ...) and "
                             "maximize their mean accuracy: a single short run's accuracy "
                             "moves by points with the seed alone")
    parser.add_argument("--start-from", action="append", default=[], metavar="NAME|SPEC",
                        help="queue a known architecture as a trial before sampling, e.g. "
                             "tinyspeech_m or a spec file (repeatable; once per study)")
    parser.add_argument("--warm-start", default=None, metavar="STUDY",
                        help="start a new --study with the trials of STUDY (same storage and "
                             "settings) as points of the current search space, e.g. after the "
                             "space grew")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--max-infeasible", type=int, default=100, metavar="K",
                        help="stop after K infeasible samples in a row")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and TFLM's own output")


def run(args: argparse.Namespace) -> int:
    if (args.trials < 0 or args.epochs < 1 or args.qat_epochs < 0 or args.batch_size < 1
            or args.seeds < 1):
        raise UserError("--trials must be at least 0, --epochs, --batch-size and --seeds at "
                        "least 1, --qat-epochs at least 0")
    if args.max_infeasible < 1:
        raise UserError("--max-infeasible must be at least 1")
    for flag in ("max_params", "max_macs", "max_bytes", "max_arena"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be positive")
    constraints = _constraints(args)
    for start in args.start_from:  # a bad --start-from fails before any data or study
        start_params(start, constraints)
    report = explore(args)
    print(f"{args.out}: {report['trials']['trained']} trained, {report['trials']['pruned']} "
          f"pruned; Pareto front (accuracy, bytes, arena):")
    for r in report["front"]:
        print(f"  trial {r['trial']:>3}: int8 {r['accuracy']:.1%}, {r['tflite_bytes']:,} B, "
              f"arena {r['arena_bytes']:,} B, {r['params']:,} params, {r['macs']:,} MACs "
              f"-> {r['spec']}")
    sys.stdout.flush()
    return 0
