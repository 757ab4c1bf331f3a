"""Costs of a sampled architecture, measured before any training (the feasibility check).

Cheapest first (parameters, MACs, then one int8 conversion for the op set and bytes, then the
TFLM arena) and stopping at the first violated limit, so an infeasible sample costs seconds.
"""

from __future__ import annotations

from tinyspeech_tf.explore.space import INPUT_SHAPE, PER_CHANNEL, Constraints


def measure(spec: dict, constraints: Constraints | None = None,
            qat: bool = False) -> tuple[dict, str | None]:
    """Costs of a spec and the first violated constraint (None if feasible).

    Stops at the first violation so an oversized model is never converted. Bytes, op set and
    arena are those of a trained model of the spec
    (:func:`tinyspeech_tf.quantize.cost.int8_flatbuffer`, the measurement of ``tinyspeech
    zoo``); ``qat`` as the budget has QAT epochs, since training then ships the QAT copy,
    which converts larger than the post-training model.
    """
    from tinyspeech_tf import quantize, tflm, zoo
    from tinyspeech_tf._compat import keras
    from tinyspeech_tf.data import LABELS
    from tinyspeech_tf.quantize import cost
    from tinyspeech_tf.zoo import profile

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
