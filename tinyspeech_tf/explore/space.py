"""The search space of ``tinyspeech explore`` and the deployment limits a sample must meet.

Why a module of its own: the grid, the sampler's define-by-run parameters and their inverse
(:func:`space_params`, which maps a known architecture back onto the grid so it can be queued or
warm-started) must agree exactly, so they live side by side. Nothing here trains or converts.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyspeech_tf.errors import UserError

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
    kwargs.update(deployment_forms(kwargs["f_mode"]))
    return {"builder": "tinyspeech", "kwargs": kwargs, "name": f"explore_trial_{trial.number}",
            "per_channel": PER_CHANNEL}


def deployment_forms(f_mode: str) -> dict:
    """How every searched design is laid out for TFLM: TinySpeech-M's forms
    (``zoo.tinyspeech.M_DEPLOYMENT``), the fusion only where there is a residual to fuse. Not
    searched: they change no float maths, only the op count, arena and cycles, and the limits
    should judge a design in the form it ships in."""
    from tinyspeech_tf.zoo.tinyspeech import M_DEPLOYMENT

    return {**M_DEPLOYMENT, "fuse_residual": f_mode == "residual"}


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
    on the search grid, and options outside the space must be at their defaults. The design is
    rebuilt in the space's :func:`deployment_forms`, whatever its own say.
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
