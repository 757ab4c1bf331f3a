"""Machine-driven TinySpeech design search under deployment constraints (``tinyspeech explore``).

An optuna study samples TinySpeech architectures (number of attention condensers, stem width
and stride, embedding width per condenser, embedding type and depth multiplier, condensation
pool, head width, kernel and stride, and batch norm and the selective-attention mode when
allowed), trains each with a short budget and maximizes its int8 validation accuracy *in the
TFLM interpreter*. Decisions and why:

- Constraints are checked before any training, cheapest first: parameters and MACs from the
  Keras model (``tinyspeech_tf.zoo.profile``), then one int8 conversion with random calibration
  for the op set and the flatbuffer size, then the minimum TFLM arena of that flatbuffer. A
  violating architecture costs seconds, not a training run: its trial is pruned
  (``optuna.TrialPruned``) with the first violated constraint in the ``pruned_reason`` user
  attribute, and no trial directory is created. The model converted for the check is the one
  training will ship, measured as ``tinyspeech zoo`` measures the zoo
  (:func:`tinyspeech_tf.quantize.cost.int8_flatbuffer`): the QAT copy when the budget has QAT
  epochs, with distinct random weights (fresh zero biases and S = 1 would be stored once each and
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

The package's public API; the stages live in its modules: ``space`` (search grid, limits,
sampling), ``measure`` (costs before training), ``storage`` (shared study, sampler, warm
start), ``study`` (the search loop and the training of trials), ``pareto`` (front, plot,
reports). The command itself (options) is :mod:`tinyspeech_tf.apps.explore`.
"""

from __future__ import annotations

from tinyspeech_tf.explore.measure import measure
from tinyspeech_tf.explore.pareto import (
    FRONT_KEYS,
    pareto_front,
    plot_front,
    read_reference,
    spec_path,
    write_reports,
)
from tinyspeech_tf.explore.space import (
    CONDENSERS,
    DEPTH_MULTIPLIERS,
    EMBED_WIDTHS,
    EMBEDDINGS,
    F_MODES,
    HEAD_CHANNELS,
    HEAD_KERNELS,
    HEAD_STRIDES,
    INPUT_SHAPE,
    PAIR_OPTIONS,
    PER_CHANNEL,
    POOL_SIZES,
    STEM_CHANNELS,
    STEM_KERNELS,
    STEM_STRIDES,
    Constraints,
    sample_spec,
    searched_f_modes,
    space_params,
    start_params,
)
from tinyspeech_tf.explore.storage import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    make_sampler,
    open_storage,
    open_study,
    trained_trials,
    warm_start,
)
from tinyspeech_tf.explore.study import RECIPE, Budget, explore, settings, train_trial

__all__ = ["CONDENSERS", "DEPTH_MULTIPLIERS", "EMBEDDINGS", "EMBED_WIDTHS", "FRONT_KEYS",
           "F_MODES", "GRACE_SECONDS", "HEAD_CHANNELS", "HEAD_KERNELS", "HEAD_STRIDES",
           "HEARTBEAT_SECONDS", "INPUT_SHAPE", "PAIR_OPTIONS", "PER_CHANNEL", "POOL_SIZES",
           "RECIPE", "STEM_CHANNELS", "STEM_KERNELS", "STEM_STRIDES", "Budget", "Constraints",
           "explore", "make_sampler", "measure", "open_storage", "open_study", "pareto_front",
           "plot_front", "read_reference", "sample_spec", "searched_f_modes", "settings",
           "space_params", "spec_path", "start_params", "train_trial", "trained_trials",
           "warm_start", "write_reports"]
