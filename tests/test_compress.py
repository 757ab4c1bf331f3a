"""Clustering, TFLM look-up-table compression, magnitude pruning, and `tinyspeech compress`."""

import functools
import json

import numpy as np
import pytest
from conftest import fails_one_line
from tiny_export import make_run, write_tone_set

from tinyspeech_tf import quantize, tflm, zoo
from tinyspeech_tf._compat import keras
from tinyspeech_tf.cli import main
from tinyspeech_tf.quantize import lut as compress


@functools.cache
def converted(per_channel: bool) -> bytes:
    """TinySpeech-M with distinct (trained-like) weights, int8, per channel or per tensor."""
    keras.utils.set_random_seed(11)
    model = zoo.get("tinyspeech_m")
    rng = np.random.default_rng(5)
    model.set_weights([w + 0.05 * rng.standard_normal(w.shape) for w in model.get_weights()])
    rep = quantize.random_representative((49, 10, 1), count=16, seed=2)
    return quantize.convert_int8(model, rep, per_channel=per_channel)


def _inputs(n: int = 10) -> np.ndarray:
    return np.random.default_rng(3).integers(-128, 128, (n, 49, 10, 1)).astype(np.int8)


@pytest.mark.parametrize("per_channel", [False, True])
def test_cluster_limits_values_per_channel_and_keeps_zeros(per_channel):
    source = converted(per_channel)
    clustered, report = compress.cluster(source, 3)
    assert len(clustered) == len(source)
    assert len(report) == len(compress.weight_tensors(source))
    for t in compress.weight_tensors(clustered):
        assert compress.distinct_values(clustered, t["tensor"]) <= 8
    # Most learnt filters had more (a 3x3 per-channel stem has only 9 values per channel); the
    # global pool's two constant kernels hold one value each, and so do the 3 scales S (1x1
    # depthwise kernels, one weight per channel) when quantized per channel.
    scales = [r for r in report if r["shape"][:3] == [1, 1, 1]]
    others = [r for r in report if r not in scales]
    assert len(scales) == 3
    assert sum(r["distinct_before"] == 1 for r in others) == 2
    assert all(r["distinct_before"] == 1 for r in scales) == per_channel
    assert sum(r["distinct_before"] > 8 for r in others) >= len(others) - 2 - 2
    # Zeros survive clustering (pruned weights stay pruned) and the model still runs exactly.
    src, out = bytearray(source), bytearray(clustered)
    for t in compress.weight_tensors(source):
        zeros = compress._buffer_array(src, t) == 0
        assert np.all(compress._buffer_array(out, t)[zeros] == 0)
    x = _inputs()
    np.testing.assert_array_equal(tflm.run_tflm(clustered, x),
                                  tflm.run_tflite_reference(clustered, x))


@pytest.mark.parametrize("per_channel", [False, True])
def test_lut_compression_shrinks_and_decodes_to_its_source_in_tflm(per_channel):
    source = converted(per_channel)
    chosen_tensors = compress.worth_compressing(source, 4)
    head = max(compress.weight_tensors(source), key=lambda t: t["bytes"])
    assert head["tensor"] in chosen_tensors  # the 3x3x12x28 head conv, 3,024 B
    clustered, _ = compress.cluster(source, 4, chosen_tensors)
    compressed, chosen = compress.lut_compress(clustered, 4)
    assert [c["tensor"] for c in chosen] == chosen_tensors
    assert {c["mode"] for c in chosen} == {"per_channel" if per_channel else "per_tensor"}
    assert len(compressed) < len(clustered) - 1000
    x = _inputs()
    np.testing.assert_array_equal(tflm.run_tflm(compressed, x), tflm.run_tflm(clustered, x))
    # The decoded weights live in the arena: it grows by at least the largest one.
    assert tflm.arena_bytes(compressed) >= tflm.arena_bytes(clustered) + head["bytes"] // 2
    # I/O quantization is read from the flatbuffer, so it works for DECODE models too.
    assert quantize.io_quantization(compressed) == quantize.io_quantization(clustered)


def test_unclustered_filters_are_left_alone():
    """Learnt filters keep more than 16 values unless clustered, so only the global pool's
    constant kernels (one value each) are worth a lookup table as they are: the 25-frame one
    (700 B); the 5-coefficient one (140 B) saves less than its decoding costs."""
    source = converted(False)
    out, chosen = compress.lut_compress(source, 4)
    assert [c["shape"] for c in chosen] == [[1, 25, 1, 28]]
    assert len(out) < len(source)


def test_cluster_rejects_bits_that_cannot_compress():
    with pytest.raises(ValueError, match="bits must be 1..7"):
        compress.cluster(converted(False), 8)


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory):
    """TinySpeech-M trained on tones with 50% magnitude pruning and its big filters held on 16
    values during QAT (2 float + 2 QAT epochs)."""
    root = tmp_path_factory.mktemp("pruned")
    tones = write_tone_set(root / "tones", 4)
    run = root / "run"
    argv = ["train", "--model", "tinyspeech_m", "--data", str(tones), "--epochs", "2",
            "--qat-epochs", "2", "--prune", "0.5", "--cluster-bits", "4", "--out", str(run)]
    assert main(argv) == 0
    return run, tones


def test_pruning_zeros_survive_qat_into_the_int8_model(pruned_run):
    run, _ = pruned_run
    metrics = json.loads((run / "metrics.json").read_text())
    pruning = metrics["pruning"]
    assert pruning["target_sparsity"] == 0.5
    assert pruning["float_sparsity"] > 0.4
    # QAT fine-tuned with the masks re-applied: every pruned weight is still an int8 zero.
    stored = compress.zero_fraction((run / "model_int8.tflite").read_bytes())
    assert stored == pytest.approx(pruning["int8_sparsity"])
    assert stored >= pruning["float_sparsity"] - 0.01


def test_clustering_during_qat_leaves_at_most_16_values_in_the_chosen_filters(pruned_run):
    run, _ = pruned_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["clustering"] == {"bits": 4, "layers": ["head"]}  # the only filter worth it
    tflite = (run / "model_int8.tflite").read_bytes()
    head = max(compress.weight_tensors(tflite), key=lambda t: t["bytes"])
    assert head["shape"] == [28, 3, 3, 12]
    assert compress.distinct_values(tflite, head["tensor"]) <= 16
    others = [compress.distinct_values(tflite, t["tensor"])
              for t in compress.weight_tensors(tflite) if t["tensor"] != head["tensor"]]
    assert max(others) > 16  # the rest were left free


def test_compress_command_writes_checked_files(pruned_run, capsys):
    run, tones = pruned_run
    assert main(["compress", str(run), "--bits", "4", "--data", str(tones)]) == 0
    assert "TFLM outputs equal the clustered model's" in capsys.readouterr().out
    report = json.loads((run / "compression_lut4.json").read_text())
    assert report["compressed_equals_clustered_in_tflm"] is True
    assert report["bytes"]["compressed"] < report["bytes"]["source"]
    assert report["bytes"]["compressed"] == (run / "model_int8_lut4.tflite").stat().st_size
    # Clustered during QAT: clustering again changes nothing, so compression is lossless.
    assert (run / "model_int8_clustered4.tflite").read_bytes() == \
        (run / "model_int8.tflite").read_bytes()
    assert report["int8_accuracy"]["compressed"] == report["int8_accuracy"]["source"]
    assert report["zero_fraction"] > 0.4
    assert set(report["int8_accuracy"]) == {"source", "clustered", "compressed"}
    assert report["int8_accuracy"]["compressed"] == report["int8_accuracy"]["clustered"]


def test_compress_command_bad_input_is_one_line(tmp_path, capsys):
    fails_one_line(["compress", str(tmp_path / "nope")], capsys, "no model_int8.tflite")
    run = make_run(tmp_path)  # its config names a dataset that is not here
    fails_one_line(["compress", str(run)], capsys, "pass --data DATASET")
    fails_one_line(["compress", str(run), "--bits", "9"], capsys, "--bits 9: use 1..7")


def test_cluster_bits_needs_qat_and_a_sane_width(tmp_path, capsys):
    fails_one_line(["train", "--data", str(tmp_path), "--cluster-bits", "9"], capsys,
                   "--cluster-bits 9: use 1..7")
    fails_one_line(["train", "--data", str(tmp_path), "--cluster-bits", "4", "--qat-epochs",
                    "0"], capsys, "--qat-epochs")


def test_kmeans_keeps_zero_and_at_most_k_centroids():
    from tinyspeech_tf.quantize.clustering import _kmeans

    values = np.random.default_rng(0).standard_normal(500)
    centres = _kmeans(values, 8)
    assert len(centres) == 8 and 0.0 in centres
    assert list(_kmeans(np.array([0.5, 0.5, -1.0]), 8)) == [-1.0, 0.0, 0.5]
