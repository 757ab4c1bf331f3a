"""The zoo: budgets against the paper, and every model int8-converted and run in TFLM."""

import functools
import json

import numpy as np
import pytest

from tinyspeech_tf import quantize, tflm, zoo
from tinyspeech_tf._compat import keras
from tinyspeech_tf.cli import main
from tinyspeech_tf.errors import UserError
from tinyspeech_tf.zoo import profile

ALL = ["tinyspeech_x", "tinyspeech_y", "tinyspeech_z", "tinyspeech_m", "tinyspeech_m_explored",
       "tinyspeech_m_arena8k", "tiny_conv", "ds_cnn", "ds_cnn_m"]
TINYSPEECH = ALL[:6]


@functools.cache
def converted(name: str) -> tuple[keras.Model, bytes]:
    keras.utils.set_random_seed(11)  # the same weights on every run
    model = zoo.get(name)
    rep = quantize.random_representative(model.input_shape[1:], count=32, seed=1)
    return model, quantize.convert_int8(model, rep)


def test_registry_names_and_unknown_name():
    assert zoo.names() == ALL
    with pytest.raises(UserError, match="unknown model 'nope'.*tinyspeech_m"):
        zoo.get("nope")


def test_builders_take_shape_and_classes():
    model = zoo.get("tinyspeech_m", input_shape=(49, 12, 1), num_classes=5)
    assert model.input_shape == (None, 49, 12, 1)
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("name", [n for n in TINYSPEECH if n in zoo.PAPER])
def test_params_within_ten_percent_and_macs_within_paper(name):
    model = zoo.get(name)
    paper = zoo.PAPER[name]
    assert abs(model.count_params() - paper["params"]) <= 0.10 * paper["params"]
    assert 0 < profile.total_macs(model) <= paper["macs"]


@pytest.mark.parametrize("name", TINYSPEECH)
def test_tinyspeech_networks_have_no_batch_norm_anywhere(name):
    """Batch norm kept X/Y/Z from training (see the zoo module's docstring): none uses it."""
    model = zoo.get(name)
    attends = [la for la in model.layers if isinstance(la, keras.layers.Multiply)]
    assert attends and all(la.name.endswith("_attend") for la in attends)
    assert not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers)
    assert not any("batch_normalization" in w.name or "bn" in w.name.split("/")[-2]
                   for w in model.weights if "/" in w.name)
    # ... though the builder still offers it.
    assert any(isinstance(la, keras.layers.BatchNormalization)
               for la in zoo.get(name, use_batch_norm=True).layers)


def _trained_like_qat_int8(name: str) -> bytes:
    """The int8 flatbuffer a QAT-trained model of this architecture converts to: the
    measurement ``tinyspeech zoo`` reports (tinyspeech_tf.quantize.cost)."""
    from tinyspeech_tf.quantize import cost

    return cost.int8_flatbuffer(zoo.get(name), cost.per_channel(name))


def test_explored_design_keeps_within_tinyspeech_m():
    """The explored design was searched under M's limits: no more parameters, flatbuffer bytes
    or arena than M, and M's ops only."""
    m = _trained_like_qat_int8("tinyspeech_m")
    e = _trained_like_qat_int8("tinyspeech_m_explored")
    assert zoo.get("tinyspeech_m_explored").count_params() <= zoo.get("tinyspeech_m").count_params()
    assert len(e) <= len(m) and tflm.arena_bytes(e) <= tflm.arena_bytes(m)
    assert set(quantize.op_set(e)) <= set(quantize.op_set(m))


def test_arena8k_design_fits_its_arena_with_m_ops():
    """The 8 KB-arena design: at most 10,240 B of host arena (about 8 KB on a 32-bit board),
    no more parameters or flatbuffer bytes than M, and M's ops only."""
    m = _trained_like_qat_int8("tinyspeech_m")
    small = _trained_like_qat_int8("tinyspeech_m_arena8k")
    assert tflm.arena_bytes(small) <= 10_240 < tflm.arena_bytes(m)
    assert len(small) <= len(m)
    assert zoo.get("tinyspeech_m_arena8k").count_params() <= zoo.get("tinyspeech_m").count_params()
    assert set(quantize.op_set(small)) <= set(quantize.op_set(m))


def test_equal_footprint_ds_cnn_fits_within_tinyspeech_m():
    """ds_cnn_m is the baseline at M's bytes: no larger flatbuffer, no larger arena."""
    m = _trained_like_qat_int8("tinyspeech_m")
    d = _trained_like_qat_int8("ds_cnn_m")
    assert len(d) <= len(m), (len(d), len(m))
    assert tflm.arena_bytes(d) <= tflm.arena_bytes(m)
    # ... and it is not a token model: most of M's flash goes to its weights too.
    assert len(d) > 0.85 * len(m)


def test_profile_counts_a_known_conv():
    inputs = keras.Input((10, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    # conv: 5*4 positions * 4 out * 9 * 3 in; depthwise: 5*4*4 * 9; dense: 80 * 2
    assert profile.total_macs(model) == 5 * 4 * 4 * 27 + 5 * 4 * 4 * 9 + 80 * 2


@pytest.mark.parametrize("name", ALL)
def test_int8_model_runs_in_tflm_bit_exact(name):
    model, tflite_bytes = converted(name)
    ops = quantize.op_set(tflite_bytes)
    assert set(ops) <= quantize.TFLM_OPS
    if name in TINYSPEECH:
        assert set(ops) <= quantize.TINYSPEECH_OPS, ops
    io = quantize.io_quantization(tflite_bytes)
    assert io["input_shape"] == [1, 49, 10, 1] and io["output_shape"] == [1, 12]
    x = np.random.default_rng(7).integers(-128, 128, (20, 49, 10, 1)).astype(np.int8)
    micro = tflm.run_tflm(tflite_bytes, x)
    reference = tflm.run_tflite_reference(tflite_bytes, x)
    assert micro.dtype == np.int8 and micro.shape == (20, 12)
    # Op by op the same, but for the documented 1-LSB rounding differences
    # (tflm.first_divergences), which can reach the scores.
    for divergence in tflm.first_divergences(tflite_bytes, x):
        assert divergence["op"] in tflm.KNOWN_DIVERGENCES and divergence["max_lsb"] == 1, \
            divergence
    assert np.abs(micro.astype(np.int32) - reference).max() <= 1
    assert len(np.unique(micro.argmax(axis=1))) >= 1


def test_tinyspeech_m_fits_its_flash_budget_and_reports_arena():
    _, tflite_bytes = converted("tinyspeech_m")
    assert len(tflite_bytes) <= 16 * 1024
    # Fresh weights share buffers (zero biases, equal scales S) that trained weights do not:
    # the budget must hold for distinct weights too.
    model = zoo.get("tinyspeech_m")
    rng = np.random.default_rng(5)
    model.set_weights([w + 0.05 * rng.standard_normal(w.shape) for w in model.get_weights()])
    trained_like = quantize.convert_int8(
        model, quantize.random_representative((49, 10, 1), count=16, seed=2))
    assert len(trained_like) <= 16 * 1024, len(trained_like)
    arena = tflm.arena_bytes(tflite_bytes)
    assert 1024 < arena < 64 * 1024
    # The measured figure is tight: 64 bytes less does not allocate.
    with pytest.raises(RuntimeError):
        with tflm._quiet_native_output():
            tflm.interpreter(tflite_bytes, arena - 64)
    tflm.interpreter(tflite_bytes, arena)


def test_check_ops_names_ops_outside_tflm():
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Lambda(lambda t: keras.backend.tile(t, (1, 2, 1, 1)))(inputs)
    model = keras.Model(inputs, outputs, name="tiler")
    rep = np.random.default_rng(0).standard_normal((4, 4, 4, 1)).astype(np.float32)
    with pytest.raises(UserError, match="tiler uses ops outside the allowed set: TILE"):
        quantize.convert_int8(model, rep)


def test_resolver_method_names():
    assert quantize.resolver_method("CONV_2D") == "AddConv2D"
    assert quantize.resolver_method("RESIZE_NEAREST_NEIGHBOR") == "AddResizeNearestNeighbor"
    assert quantize.resolver_method("SPACE_TO_BATCH_ND") == "AddSpaceToBatchNd"
    assert quantize.resolver_method("FULLY_CONNECTED") == "AddFullyConnected"


def test_cli_zoo_json(capsys):
    assert main(["zoo", "--json", "--models", "tinyspeech_m", "tiny_conv"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == ["tinyspeech_m", "tiny_conv"]
    for row in report.values():
        assert set(row) == {"params", "macs", "tflite_bytes", "arena_bytes", "ops",
                            "cmsis_nn_instructions"}
        assert row["tflite_bytes"] > 0 and row["arena_bytes"] > 0
        assert row["cmsis_nn_instructions"] > 0
    assert report["tinyspeech_m"]["params"] == zoo.get("tinyspeech_m").count_params()


def test_cli_zoo_unknown_model_is_one_line(capsys):
    assert main(["zoo", "--models", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinyspeech zoo: error: unknown model 'bogus'") and "\n" not in err


def test_default_attention_mode_is_the_measured_winner():
    """The zoo's default F mode is the one the committed ablation report chose."""
    import inspect

    from tinyspeech_tf.studies import ablation

    report = ablation.load_report()
    if report is None:
        pytest.skip("no reports/f_mode_ablation.json (make ablation writes it)")
    default = inspect.signature(zoo.tinyspeech).parameters["f_mode"].default
    assert report["chosen"] == default
    assert report["modes"][default]["int8_tflm"] == max(
        row["int8_tflm"] for row in report["modes"].values())


def test_head_kernel_and_stride_shape_the_last_conv():
    """A 1x1 head keeps the map and cuts its weights ninefold; a 2x2 stride halves the map."""
    base = zoo.get("tinyspeech_m")
    small = zoo.get("tinyspeech_m", head_kernel=(1, 1), head_strides=(2, 2))
    head, small_head = base.get_layer("head"), small.get_layer("head")
    assert head.output.shape[1:] == (25, 5, 28)
    assert small_head.output.shape[1:] == (13, 3, 28)
    assert small_head.kernel.shape == (1, 1, 12, 28)
    assert base.count_params() - small.count_params() == 8 * 12 * 28


# ------------------------------------------- the zoo's cost is the trained model's (cost.py)

@pytest.fixture(scope="module")
def tone_set(tmp_path_factory):
    """12 classes told apart by pitch: enough for train.train to move every weight."""
    from tiny_export import write_tone_set

    return write_tone_set(tmp_path_factory.mktemp("tones"), train_per_label=2, val_per_label=1)


def _briefly_trained(name: str, data, out) -> bytes:
    """The int8 flatbuffer of ``name`` trained by the default recipe (float, then QAT), cut to
    a few steps; learning rates raised so every weight moves away from its initial value."""
    from tinyspeech_tf.train import TrainConfig, train

    train(TrainConfig(model=name, data=str(data), out=str(out), epochs=4, qat_epochs=1,
                      batch_size=8, max_steps_per_epoch=3, calibration_examples=16,
                      learning_rate=0.1, qat_learning_rate=0.01), verbose=0)
    return (out / "model_int8.tflite").read_bytes()


def _shared_constants(tflite_bytes: bytes) -> int:
    """Constant tensors reading a buffer that another constant reads too (the converter
    stores identical constants once). All-zero buffers are left out: those are structural
    (the zero biases of the depthwise global pool), shared alike in every model of the
    architecture, trained or not."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(tflite_bytes), 0)
    sub = model.Subgraphs(0)
    buffers = [sub.Tensors(i).Buffer() for i in range(sub.TensorsLength())]
    constants = [b for b in buffers if model.Buffers(b).DataLength()
                 and model.Buffers(b).DataAsNumpy().any()]
    return len(constants) - len(set(constants))


@pytest.mark.parametrize("name", ["tinyspeech_m", "ds_cnn_m"])
def test_zoo_cost_is_the_trained_models(name, tone_set, tmp_path, capsys):
    """`tinyspeech zoo` (and explore and bench, through tinyspeech_tf.quantize.cost) reports for the
    untrained architecture the bytes, arena and ops of the model training ships."""
    from tinyspeech_tf.quantize import cost

    trained = _briefly_trained(name, tone_set, tmp_path / name)
    # Trained far enough that no two constants are equal, as after a full run; fewer steps
    # leave S vectors on identical int8 values, which would be stored once.
    assert _shared_constants(trained) == 0
    # No float work on the board: no requantization of the input (see tinyspeech_tf.quantize.cost).
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(quantize.op_set(trained))
    assert main(["zoo", "--json", "--models", name]) == 0
    row = json.loads(capsys.readouterr().out)[name]
    assert (row["tflite_bytes"], row["arena_bytes"], row["ops"]) == (
        len(trained), tflm.arena_bytes(trained), quantize.op_set(trained))
    from tinyspeech_tf import board_cost

    assert row["cmsis_nn_instructions"] == board_cost.estimate(trained)["instructions"]
    assert _shared_constants(cost.int8_flatbuffer(zoo.get(name), cost.per_channel(name))) == 0


def test_cli_zoo_readme_rewrites_only_its_block(tmp_path, capsys, monkeypatch):
    """--readme replaces the zoo block and nothing else; without markers it is a one-line
    error before anything is measured, and it refuses a partial table."""
    from tinyspeech_tf import zoo_report

    monkeypatch.setattr(zoo_report, "measure", lambda name: {
        "params": 1, "macs": 2, "tflite_bytes": 3, "arena_bytes": 4, "ops": ["CONV_2D"],
        "cmsis_nn_instructions": 5_000})
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- zoo:start -->\nold\n<!-- zoo:end -->\noutro\n")
    assert main(["zoo", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- zoo:start -->\n| model |") and "old" not in text
    assert text.endswith("do not edit between the markers.\n<!-- zoo:end -->\noutro\n")
    assert text.count("| tinyspeech_m | 1 |") == 1
    capsys.readouterr()
    readme.write_text("no markers\n")
    assert main(["zoo", "--readme", str(readme)]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs exactly one <!-- zoo:start -->" in err and "\n" not in err
    assert main(["zoo", "--readme", str(readme), "--models", "tiny_conv"]) == 2
    assert "drop --models" in capsys.readouterr().err


def test_cli_zoo_at_the_paper_resolution_writes_a_report(tmp_path, capsys):
    """At Honk's 98 x 40 MFCCs TinySpeech-M keeps its weights but computes and stores far more
    activations: the report quotes its command and the front-end it was measured at."""
    base = tmp_path / "base"
    honk = tmp_path / "honk"
    assert main(["zoo", "--models", "tinyspeech_m", "--report", str(base)]) == 0
    assert main(["zoo", "--models", "tinyspeech_m", "--frontend", "honk_40x98",
                 "--report", str(honk)]) == 0
    capsys.readouterr()
    small = json.loads(base.with_suffix(".json").read_text())["models"]["tinyspeech_m"]
    large = json.loads(honk.with_suffix(".json").read_text())
    assert large["frontend"] == "honk_40x98" and "--frontend honk_40x98" in large["command"]
    big = large["models"]["tinyspeech_m"]
    assert big["params"] == small["params"]
    assert big["macs"] > 4 * small["macs"] and big["arena_bytes"] > 2 * small["arena_bytes"]
    assert "honk_40x98" in honk.with_suffix(".md").read_text()


def test_cli_zoo_unknown_frontend_is_one_line(capsys):
    assert main(["zoo", "--frontend", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown front-end 'bogus'" in err and "\n" not in err


def test_tinyspeech_m_graph_is_the_plain_function_without_mean_or_add():
    """M fuses its residual (V * (1 + A*S), the 1 added at the condensed resolution),
    computes A*S + 1 as a 1x1 depthwise conv and pools with depthwise convs: in float the very
    function of the plain graph (same weights); in int8 no MEAN, no ADD, one element-wise op
    per condenser (the MUL by the expanded attention, at V's resolution), a smaller arena."""
    keras.utils.set_random_seed(5)
    plain = zoo.get("tinyspeech_m", fuse_residual=False, global_pool="mean", scale_op="mul")
    m = zoo.get("tinyspeech_m")
    m.set_weights(plain.get_weights())
    x = np.random.default_rng(2).normal(size=(8, 49, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x, verbose=0), plain.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert sum(isinstance(la, keras.layers.Add) for la in plain.layers) == 3
    assert not any(isinstance(la, keras.layers.Add) for la in m.layers)
    rep = quantize.random_representative(m.input_shape[1:], count=32, seed=1)
    m_int8 = quantize.convert_int8(m, rep, per_channel=False)
    plain_int8 = quantize.convert_int8(plain, rep, per_channel=False)
    assert {"MEAN", "ADD"} <= set(quantize.op_set(plain_int8))
    assert not {"MEAN", "ADD"} & set(quantize.op_set(m_int8))
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_content=m_int8)
    shapes = {t["index"]: tuple(t["shape"]) for t in interp.get_tensor_details()}
    elementwise = [(op["op_name"], shapes[op["outputs"][0]][1:3])
                   for op in interp._get_ops_details() if op["op_name"] in ("ADD", "MUL", "SUB")]
    assert elementwise == [("MUL", m.get_layer("stem").output_shape[1:3])] * 3
    assert tflm.arena_bytes(m_int8) < tflm.arena_bytes(plain_int8)
