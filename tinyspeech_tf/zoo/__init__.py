"""The model zoo: plain builder functions and a registry by name.

Every builder takes ``input_shape`` and ``num_classes`` first, then its own hyper-parameters
as keyword arguments, like ``keras.applications``.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.zoo import ds_cnn as _ds_cnn
from tinyspeech_tf.zoo import tiny_conv as _tiny_conv
from tinyspeech_tf.zoo import tinyspeech as _tinyspeech
from tinyspeech_tf.zoo.tinyspeech import tinyspeech

# Trained models shipped with the package (``make pretrained``): PRETRAINED_DIR/<name>/ holds
# the Keras weights, the int8 model and the rest of its run (labels, front-end, metrics, card).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
WEIGHTS_FILE = "weights.npz"
# ``weights=`` names: the 12-class Speech Commands real clips of ../shared (CC BY 4.0).
WEIGHT_SETS = ("speech_commands",)


def pretrained_names() -> list[str]:
    """Zoo models with shipped weights."""
    return sorted(p.parent.name for p in PRETRAINED_DIR.glob(f"*/{WEIGHTS_FILE}")) \
        if PRETRAINED_DIR.is_dir() else []


def save_weights(model, path: str | os.PathLike) -> None:
    """``model``'s weights in its own order, compressed (a fifth of Keras' HDF5 file for
    TinySpeech-M); :func:`_with_weights` sets them back on a freshly built model."""
    np.savez_compressed(path, **{f"w{i}": w for i, w in enumerate(model.get_weights())})


def _with_weights(builder: Callable) -> Callable:
    """``builder`` plus the Keras-applications ``weights=`` argument: None (random init),
    ``"speech_commands"`` (the shipped weights of this model) or a weights file path."""
    name = builder.__name__

    @functools.wraps(builder)
    def build(*args, weights: str | os.PathLike | None = None, **kwargs):
        model = builder(*args, **kwargs)
        if weights is None:
            return model
        if weights in WEIGHT_SETS:
            path = PRETRAINED_DIR / name / WEIGHTS_FILE
            if not path.is_file():
                raise UserError(f"{name}: no shipped {weights!r} weights; models with weights: "
                                f"{', '.join(pretrained_names()) or 'none'}")
        else:
            path = Path(weights)
            if not path.is_file():
                raise UserError(f"weights={os.fspath(weights)!r}: neither "
                                f"{' nor '.join(WEIGHT_SETS)} nor a weights file")
        try:
            with np.load(path) as saved:
                model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
        except (ValueError, OSError, KeyError) as err:
            raise UserError(f"{path}: does not fit {name} built with {kwargs or 'defaults'} "
                            f"({str(err).splitlines()[0]}); shipped weights need the default "
                            "architecture, input and 12 classes") from None
        return model

    return build


tinyspeech_x = _with_weights(_tinyspeech.tinyspeech_x)
tinyspeech_y = _with_weights(_tinyspeech.tinyspeech_y)
tinyspeech_z = _with_weights(_tinyspeech.tinyspeech_z)
tinyspeech_m = _with_weights(_tinyspeech.tinyspeech_m)
tinyspeech_m_explored = _with_weights(_tinyspeech.tinyspeech_m_explored)
tinyspeech_m_arena8k = _with_weights(_tinyspeech.tinyspeech_m_arena8k)
tiny_conv = _with_weights(_tiny_conv.tiny_conv)
ds_cnn = _with_weights(_ds_cnn.ds_cnn)
ds_cnn_m = _with_weights(_ds_cnn.ds_cnn_m)

_REGISTRY: dict[str, Callable] = {
    "tinyspeech_x": tinyspeech_x,
    "tinyspeech_y": tinyspeech_y,
    "tinyspeech_z": tinyspeech_z,
    "tinyspeech_m": tinyspeech_m,
    "tinyspeech_m_explored": tinyspeech_m_explored,
    "tinyspeech_m_arena8k": tinyspeech_m_arena8k,
    "tiny_conv": tiny_conv,
    "ds_cnn": ds_cnn,
    "ds_cnn_m": ds_cnn_m,
}

# Paper Table 1 (Speech Commands, 12 classes, 8-bit): accuracy, params, mult-adds.
PAPER = {
    "tinyspeech_x": {"accuracy": 0.946, "params": 10_800, "macs": 10_900_000},
    "tinyspeech_y": {"accuracy": 0.936, "params": 6_100, "macs": 6_500_000},
    "tinyspeech_z": {"accuracy": 0.924, "params": 2_700, "macs": 2_600_000},
    "tinyspeech_m": {"accuracy": 0.919, "params": 4_700, "macs": 4_400_000},
}

# Weight quantization granularity at int8 conversion, by model name (default: per channel).
# TinySpeech-M is quantized per tensor: on a model this small the per-channel scales and zero
# points are a fifth of the flatbuffer, and measured on `val` per-tensor loses no accuracy.
PER_CHANNEL = {"tinyspeech_m": False, "tinyspeech_m_explored": False,
               "tinyspeech_m_arena8k": False}


def names() -> list[str]:
    """Names accepted by :func:`get`, in a stable order."""
    return list(_REGISTRY)


def get(name: str, **kwargs):
    """Build the zoo model ``name``; keyword arguments go to its builder."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(names())}") from None
    return builder(**kwargs)


# Architecture specs: ``{"builder": ..., "kwargs": {...}, "name": ...}`` as JSON, the unit that
# `tinyspeech explore` writes per trial and `tinyspeech train --spec` trains. Optional
# ``"per_channel"`` (bool) fixes the int8 weight granularity the architecture was measured
# with, so training the spec ships the bytes the explorer reported.
SPEC_KEYS = ("builder", "kwargs", "name", "per_channel")
# Supplied by the data (front-end and label set), never by the spec.
_DATA_ARGS = ("input_shape", "num_classes")


def builders() -> list[str]:
    """Builder names a spec may use: the generic ``tinyspeech`` and every zoo model."""
    return ["tinyspeech", *_REGISTRY]


def _builder(name: str) -> Callable:
    return tinyspeech if name == "tinyspeech" else _REGISTRY[name]


def _builder_args(name: str) -> set[str]:
    """Keyword arguments a builder accepts; the TinySpeech presets take the generic builder's."""
    fn = _builder(name)
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        params = inspect.signature(tinyspeech).parameters
    return set(params) - set(_DATA_ARGS)


def load_spec(path_or_dict: str | os.PathLike | dict) -> tuple[dict, str]:
    """A validated, normalised spec dict and where it came from (for error messages).

    Checks everything that can be checked without building: JSON syntax, top-level keys,
    builder name and argument names. Bad argument *values* surface in :func:`from_spec`.
    """
    if isinstance(path_or_dict, dict):
        raw, where = path_or_dict, "spec"
    else:
        where = os.fspath(path_or_dict)
        try:
            with open(where, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise UserError(f"{where}: no such spec file") from None
        except UnicodeDecodeError:
            raise UserError(f"{where}: not a text file; a spec is JSON (see reports/specs/ "
                            "for examples)") from None
        except OSError as err:
            raise UserError(f"{where}: cannot read spec ({err.strerror})") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a spec is a JSON object "
                        '{"builder": "tinyspeech", "kwargs": {...}, "name": ...}')
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown spec key(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(SPEC_KEYS)}")
    builder = raw.get("builder")
    if builder not in builders():
        raise UserError(f"{where}: unknown builder {builder!r}; choose one of: "
                        f"{', '.join(builders())}")
    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise UserError(f"{where}: kwargs must be a JSON object of builder arguments")
    bad = sorted(set(kwargs) - _builder_args(builder))
    if bad:
        raise UserError(f"{where}: builder {builder} has no argument(s) {', '.join(bad)}"
                        + (" (set by the data, not the spec)"
                           if set(bad) & set(_DATA_ARGS) else ""))
    name = raw.get("name", builder)
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: name must be a non-empty string")
    spec = {"builder": builder, "kwargs": dict(kwargs), "name": name}
    if "per_channel" in raw:
        if not isinstance(raw["per_channel"], bool):
            raise UserError(f"{where}: per_channel must be true or false")
        spec["per_channel"] = raw["per_channel"]
    return spec, where


def _builder_and_preset(name: str) -> tuple[Callable, dict]:
    from tinyspeech_tf.zoo.ds_cnn import PRESETS as DS_CNN_PRESETS
    from tinyspeech_tf.zoo.tinyspeech import PRESETS

    if name == "tinyspeech":
        return tinyspeech, {}
    if name in PRESETS:
        return tinyspeech, PRESETS[name]
    if name in DS_CNN_PRESETS:
        return ds_cnn, DS_CNN_PRESETS[name]
    return _REGISTRY[name], {}


def _defaults(fn: Callable) -> dict:
    params = inspect.signature(fn).parameters
    return {k: p.default for k, p in params.items()
            if k not in _DATA_ARGS and k != "name" and p.default is not inspect.Parameter.empty}


def architecture(name: str, **kwargs) -> dict:
    """Every builder argument zoo model ``name`` is built with (its preset and ``kwargs`` over
    the builder's defaults), as JSON values.

    A run records it, so a run trained before a zoo preset changed is told apart from one of
    today's architecture of the same name.
    """
    fn, preset = _builder_and_preset(name)
    args = {**_defaults(fn), **preset, **kwargs}
    args.pop("name", None)
    return json.loads(json.dumps(args))


def same_architecture(recorded: dict, name: str, **kwargs) -> bool:
    """Whether a run's recorded :func:`architecture` is today's of zoo model ``name``.

    An argument the builder gained after the run was recorded counts at its default: a new
    option that leaves the model as it was does not make older runs of it stale, while a
    preset that sets it does.
    """
    fn, _ = _builder_and_preset(name)
    defaults = json.loads(json.dumps(_defaults(fn)))
    return architecture(name, **kwargs) == {**defaults, **recorded}


def from_spec(path_or_dict: str | os.PathLike | dict,
              input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12):
    """Build the Keras model an architecture spec (file or dict) describes.

    The spec's ``name`` becomes the model's name unless ``kwargs`` sets one. Every problem
    (unknown builder, unknown argument, a value the builder rejects) is a UserError naming the
    spec file, since specs are written by hand or by `tinyspeech explore` and edited.
    """
    spec, where = load_spec(path_or_dict)
    kwargs = dict(spec["kwargs"])
    if "name" in _builder_args(spec["builder"]):
        kwargs.setdefault("name", spec["name"])
    try:
        return _builder(spec["builder"])(input_shape=tuple(input_shape),
                                         num_classes=int(num_classes), **kwargs)
    except (TypeError, ValueError, KeyError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        raise UserError(f"{where}: builder {spec['builder']} rejects its kwargs: "
                        f"{message[:300]}") from None


__all__ = ["get", "names", "builders", "architecture", "same_architecture", "load_spec",
           "from_spec", "SPEC_KEYS", "PAPER", "PER_CHANNEL", "tinyspeech", "tinyspeech_x",
           "tinyspeech_y", "tinyspeech_z", "tinyspeech_m", "tinyspeech_m_explored",
           "tinyspeech_m_arena8k", "tiny_conv", "ds_cnn", "ds_cnn_m"]
