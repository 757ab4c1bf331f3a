"""The Cortex-M4 CMSIS-NN instruction estimate: its calibration on the real build's per-op
measurement, its work units, and its error on a model the build measured and it was not
calibrated on."""

import pytest

from tinyspeech_tf import board_cost, quantize
from tinyspeech_tf._compat import keras


def _op(name: str, x: tuple, w: tuple | None, y: tuple) -> tuple[dict, list[dict]]:
    tensors = [{"shape": list(x)}, {"shape": list(w or ())}, {"shape": list(y)}]
    return {"op": name, "inputs": [0, 1] if w else [0], "outputs": [2]}, tensors


def test_work_units() -> None:
    work = board_cost._work
    # MACs: outputs x kernel area (x input channels for a full conv).
    assert work(*_op("CONV_2D", (1, 25, 5, 12), (28, 3, 3, 12), (1, 25, 5, 28))) \
        == 25 * 5 * 28 * 9 * 12
    assert work(*_op("DEPTHWISE_CONV_2D", (1, 25, 5, 28), (1, 1, 5, 28), (1, 25, 1, 28))) \
        == 25 * 28 * 5
    assert work(*_op("FULLY_CONNECTED", (1, 28), (12, 28), (1, 12))) == 12 * 28
    # Reductions by the elements they read, element-wise ops by the elements they write.
    assert work(*_op("MEAN", (1, 25, 5, 28), (2,), (1, 28))) == 3500
    assert work(*_op("MAX_POOL_2D", (1, 25, 5, 12), None, (1, 13, 3, 12))) == 1500
    assert work(*_op("RESIZE_NEAREST_NEIGHBOR", (1, 13, 3, 12), (2,), (1, 25, 5, 12))) == 1500


def test_calibration_reproduces_the_measured_build() -> None:
    """Priced by its own rates, the measured model comes back to the build's total and to each
    op type it itemised."""
    m = board_cost.measurement()
    est = board_cost.estimate((board_cost.MEASURED / m["model"]).read_bytes())
    assert est["unpriced"] == []
    assert est["instructions"] == pytest.approx(m["instructions_per_inference"]["cmsis_nn"],
                                                abs=2000)
    for name, count in m["cmsis_nn_instructions_by_op"].items():
        assert est["by_op"][name] == count, name


def test_estimate_is_within_ten_percent_on_ds_cnn(shared_dir) -> None:
    """MLPerf's DS-CNN (64-channel convolutions, an AVERAGE_POOL_2D) was measured by the same
    build and takes no part in the calibration."""
    checks = board_cost.check(shared_dir / "models")
    assert [c["model"] for c in checks] == ["mlperf_tiny_kws_ref_int8.tflite"], checks
    print(f"\n{checks}")
    assert abs(checks[0]["error"]) < 0.10 and checks[0]["unpriced"] == []


def test_op_types_without_a_rate_are_listed_not_priced() -> None:
    inputs = keras.Input((8, 4, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
    x = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, x)
    tflite = quantize.convert_int8(
        model, quantize.random_representative((8, 4, 1), count=4, seed=0))
    assert "TANH" in quantize.op_set(tflite)
    est = board_cost.estimate(tflite)
    assert est["unpriced"] == ["TANH"] and "TANH" not in est["by_op"]
    conv_rate = board_cost.rates()["convolution"]
    assert est["by_op"]["CONV_2D"] == round(8 * 4 * 4 * 9 * conv_rate, -3)
