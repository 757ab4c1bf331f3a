"""The shared optuna study of ``tinyspeech explore``: storage, sampler, warm start, queries.

Several workers (processes or machines) share one study through an RDB storage; what makes
that safe lives here: heartbeats (a killed worker's trial is failed, not left running), a
sampler seeded per trial (workers never sample in lockstep), and settings the study remembers
(a worker with other limits or budget is refused, since accuracies would not be comparable).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.explore.measure import _one_line
from tinyspeech_tf.explore.space import (
    Constraints,
    _builder_defaults,
    sample_spec,
    space_params,
)

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


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
