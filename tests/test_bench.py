"""``tinyspeech bench``: interleaved latency, outputs, README block, composition, ratios, misses.

No training and no ../shared: an untrained TinySpeech-M run (tests/tiny_export.make_run), a
generated 12-class validation folder, and an untrained tiny_conv conversion standing in for
the MLPerf reference file, so every number has a known origin.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_one_line
from tiny_export import make_run

from tinyspeech_tf import bench
from tinyspeech_tf.errors import UserError

README = """# project

Intro text that must survive.

## Results

<!-- bench:start -->
old table that must go
<!-- bench:end -->

Text after the block that must survive.
"""


def _val_folder(root: Path) -> Path:
    from tinyspeech_tf.audio import write_wav
    from tinyspeech_tf.data import LABELS

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    for i, label in enumerate(LABELS):
        (root / label).mkdir(parents=True)
        for j in range(2):
            clip = 0.2 * np.sin(2 * np.pi * (200 + 150 * i + 40 * j) * t)
            write_wav(root / label / f"clip{j}.wav",
                      (clip + 0.01 * rng.standard_normal(16000)).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    """One bench run over tiny inputs; tiny_conv has no run (and no --train)."""
    from tinyspeech_tf import cli

    root = tmp_path_factory.mktemp("bench")
    make_run(root / "zoo", "tinyspeech_m")
    ref_run = make_run(root / "peer", "tiny_conv")
    peers = root / "peers"
    peers.mkdir()
    shutil.copy(ref_run / "model_int8.tflite", peers / "mlperf_tiny_kws_ref_int8.tflite")
    readme = root / "README.md"
    readme.write_text(README)
    out = root / "out"
    val = _val_folder(root / "val")
    # A variant run (weights shared across the condensers), LUT-compressed by the command.
    variant = make_run(root / "variants", "tinyspeech_m", share="block")
    variant = variant.rename(variant.with_name("m_block"))
    assert cli.main(["compress", str(variant), "--data", str(val)]) == 0
    argv = ["bench", "--models", "tinyspeech_m,tiny_conv",
            "--runs", str(root / "zoo" / "runs"), "--runs-root", str(root / "no_runs"),
            "--variants", str(variant.parent),
            "--data", str(val), "--peers", str(peers),
            "--out", str(out), "--readme", str(readme), "--rounds", "15", "--warmup", "2",
            "--no-frontend", "--no-probe"]
    rc = cli.main(argv)
    results = json.loads((out / "results.json").read_text())
    return {"rc": rc, "root": root, "out": out, "readme": readme, "peers": peers,
            "results": results, "by_name": {e["name"]: e for e in results["models"]},
            "m_tflite": root / "zoo" / "runs" / "tinyspeech_m" / "model_int8.tflite"}


# ----------------------------------------------------------------------------- latency loop

class FakeInterpreter:
    def __init__(self, name: str, log: list, delay: float):
        self.name, self.log, self.delay = name, log, delay
        self.inputs_set = 0
        self.invokes = 0

    def set_input(self, array, index):
        assert index == 0 and array.dtype == np.int8
        self.inputs_set += 1

    def invoke(self):
        assert self.inputs_set == self.invokes + 1, "input must be set before every invoke"
        self.invokes += 1
        self.log.append(self.name)
        end = time.perf_counter() + self.delay
        while time.perf_counter() < end:
            pass


def test_interleaved_latency_round_robin_equal_counts_and_medians():
    log: list[str] = []
    delays = {"fast": 0.0, "mid": 0.0005, "slow": 0.002}
    fakes = {n: FakeInterpreter(n, log, d) for n, d in delays.items()}
    inputs = {n: np.zeros((1, 4), np.int8) for n in fakes}
    rounds, warmup = 30, 3
    result = bench.interleaved_latency(fakes, inputs, rounds, warmup=warmup, seed=1)

    assert set(result) == set(fakes)
    for name, fake in fakes.items():
        assert fake.invokes == rounds + warmup
        assert result[name]["invokes"] == rounds
        assert result[name]["p90_us"] >= result[name]["median_us"] > 0
    # Round-robin: every consecutive group of 3 invokes is one invoke of each model.
    groups = [tuple(log[i:i + 3]) for i in range(0, len(log), 3)]
    assert all(sorted(g) == sorted(fakes) for g in groups)
    assert len(set(groups)) > 1, "the order within rounds should vary"
    # Medians follow the work each model does.
    assert result["fast"]["median_us"] < result["mid"]["median_us"] < result["slow"]["median_us"]
    assert 1800 < result["slow"]["median_us"] < 20000


def test_interleaved_latency_rejects_zero_rounds():
    with pytest.raises(UserError):
        bench.interleaved_latency({}, {}, rounds=0)


# ----------------------------------------------------------------------------- end to end

def test_bench_writes_json_markdown_png(benched):
    assert benched["rc"] == 0
    out = benched["out"]
    m = benched["by_name"]["tinyspeech_m"]
    assert m["status"] == "measured"
    assert m["source"].endswith("tinyspeech_m")
    assert 0.0 <= m["int8_accuracy"] <= 1.0
    assert m["tflite_bytes"] == benched["m_tflite"].stat().st_size
    assert m["arena_bytes"] > 0 and m["params"] > 0 and m["macs"] > 0
    # Both measured models were timed the same number of times.
    measured = [e for e in benched["results"]["models"] if e["status"] == "measured"]
    assert {e["name"] for e in measured} == {"tinyspeech_m", bench.REFERENCE, "m_block",
                                             "m_block+lut4"}
    assert {e["latency"]["invokes"] for e in measured} == {15}
    assert all(e["latency"]["median_us"] > 0 for e in measured)

    md = (out / "results.md").read_text()
    assert bench.HEADER in md
    assert "| tinyspeech_m | `" in md and "tinyspeech_m (paper)" in md
    assert "## tinyspeech_m composition" in md
    assert "Machine:" in md and "Front-end: not measured" in md
    png = (out / "accuracy_vs_size.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy_vs_size.png", "results.json", "results.md"], "temporary files left behind"


def test_variant_rows_say_what_they_are(benched):
    by_name = benched["by_name"]
    block, lut = by_name["m_block"], by_name["m_block+lut4"]
    assert block["kind"] == lut["kind"] == "variant"
    assert block["model_kwargs"] == {"share": "block"}
    assert block["params"] == 3964  # the shared model's own count, not M's 4,702
    assert lut["compression"]["bits"] == 4 and lut["compression"]["filters"] >= 1
    assert lut["tflite_bytes"] < block["tflite_bytes"]
    assert lut["arena_bytes"] > block["arena_bytes"]  # decoded weights live in the arena
    md = (benched["out"] / "results.md").read_text()
    assert "variant m_block: share=block" in md
    assert "TFLM LUT-compressed (4-bit indices" in md


def test_missing_run_without_train_is_reported(benched, capsys):
    by_name = benched["by_name"]
    tiny = by_name["tiny_conv"]
    assert tiny["status"] == "not run"
    assert "--train trains it" in tiny["reason"]
    assert any(s.endswith("tiny_conv") for s in tiny["searched"])
    assert "architecture" not in tiny  # --no-probe
    assert by_name["tinyspeech_x"]["status"] == "not run"
    assert "not selected" in by_name["tinyspeech_x"]["reason"]
    assert by_name["arm_micronet_m"]["status"] == "skipped"
    assert "not on this machine" in by_name["arm_micronet_m"]["reason"]
    md = (benched["out"] / "results.md").read_text()
    assert "| tiny_conv | not run: no finished run" in md


def test_bench_without_data_measures_shipped_models_and_skips_peers(tmp_path, monkeypatch):
    """A user's clone: no dataset and no peer models. Nothing is scored or trained; the shipped
    TinySpeech-M is found and sized, its accuracy at training shown, the peers listed as
    skipped with the reason."""
    from tinyspeech_tf import cli

    monkeypatch.setattr(bench.collect, "default_shared",
                        lambda *parts: str(tmp_path.joinpath("no_shared", *parts)))
    out = tmp_path / "out"
    assert cli.main(["bench", "--models", "tinyspeech_m", "--runs-root", str(tmp_path / "r"),
                     "--variants", str(tmp_path / "v"), "--out", str(out), "--no-readme",
                     "--rounds", "3", "--warmup", "1", "--no-frontend", "--no-probe"]) == 0
    results = json.loads((out / "results.json").read_text())
    by_name = {e["name"]: e for e in results["models"]}
    m = by_name["tinyspeech_m"]
    assert results["data"] is None and m["status"] == "measured"
    assert Path(m["source"]).as_posix().endswith("pretrained/tinyspeech_m")
    assert m["int8_accuracy"] is None and m["int8_accuracy_at_training"] > 0.8
    assert all(by_name[p.name]["status"] == "skipped" for p in bench.PEERS)
    md = (out / "results.md").read_text()
    assert f"({m['int8_accuracy_at_training']:.2%})" in md and "skipped: no file" in md


def test_ratios_against_reference(benched):
    by_name = benched["by_name"]
    ref, m = by_name[bench.REFERENCE], by_name["tinyspeech_m"]
    assert ref["ratios"] == {"bytes": 1.0, "arena": 1.0, "latency": 1.0, "instructions": 1.0}
    assert m["ratios"]["instructions"] == pytest.approx(
        m["cmsis_nn_instructions"] / ref["cmsis_nn_instructions"])
    assert m["ratios"]["bytes"] == pytest.approx(m["tflite_bytes"] / ref["tflite_bytes"])
    assert m["ratios"]["arena"] == pytest.approx(m["arena_bytes"] / ref["arena_bytes"])
    assert m["ratios"]["latency"] == pytest.approx(
        m["latency"]["median_us"] / ref["latency"]["median_us"])
    assert by_name["tiny_conv"]["ratios"] is None


def test_add_ratios_uses_the_named_reference():
    def row(name, size, arena, lat):
        return {"name": name, "status": "measured", "tflite_bytes": size, "arena_bytes": arena,
                "latency": {"median_us": lat}, "cmsis_nn_instructions": 2 * size}

    entries = [row("a", 100, 50, 10.0), row(bench.REFERENCE, 400, 200, 40.0),
               {"name": "gone", "status": "not run"}]
    bench.add_ratios(entries)
    assert entries[0]["ratios"] == {"bytes": 0.25, "arena": 0.25, "latency": 0.25,
                                    "instructions": 0.25}
    assert entries[1]["ratios"] == {"bytes": 1.0, "arena": 1.0, "latency": 1.0,
                                    "instructions": 1.0}
    assert entries[2]["ratios"] is None
    no_ref = [row("a", 100, 50, 10.0)]
    bench.add_ratios(no_ref)
    assert no_ref[0]["ratios"] is None


def test_readme_block_only_touches_text_between_markers(benched):
    text = benched["readme"].read_text()
    head, _, rest = README.partition(bench.README_START)
    _, _, tail = rest.partition(bench.README_END)
    assert text.startswith(head + bench.README_START + "\n")
    assert text.endswith(bench.README_END + tail)
    block = text[len(head + bench.README_START):-len(bench.README_END + tail)]
    assert "old table that must go" not in block
    assert bench.HEADER in block and "| tinyspeech_m |" in block
    assert "results.md" in block


def test_replace_block_is_idempotent_and_needs_markers():
    once = bench.replace_block(README, "| a |")
    assert bench.replace_block(once, "| a |") == once
    assert bench.replace_block(once, "| b |").count("| b |") == 1
    with pytest.raises(UserError):
        bench.replace_block("no markers here", "x")
    with pytest.raises(UserError):
        bench.replace_block(README + bench.README_START, "x")


def test_readme_without_markers_fails_before_measuring(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    started = time.perf_counter()
    fails_one_line(["bench", "--readme", str(readme), "--data", str(tmp_path)], capsys,
                   "bench:start", "--no-readme")
    assert time.perf_counter() - started < 5


def test_composition_adds_up_to_the_file(benched):
    from tensorflow.lite.tools import flatbuffer_utils

    data = benched["m_tflite"].read_bytes()
    comp = benched["results"]["composition"]["tinyspeech_m"]
    fb = comp["flatbuffer"]
    assert fb["total_bytes"] == len(data)
    assert sum(fb["bytes"].values()) == len(data)
    assert all(v >= 0 for v in fb["bytes"].values()) and fb["bytes"]["rest"] > 0

    # The same parts counted with TensorFlow's object API, independently of bench's parser.
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    tensors = model.subgraphs[0].tensors
    int8_buffers = {t.buffer for t in tensors if t.type == 9}  # TensorType.INT8
    weights = sum(model.buffers[b].data.size for b in int8_buffers
                  if model.buffers[b].data is not None)
    quant = sum(4 * len(t.quantization.scale) + 8 * len(t.quantization.zeroPoint)
                for t in tensors if t.quantization is not None
                and t.quantization.scale is not None)
    assert fb["bytes"]["weights"] == weights > 0
    assert fb["bytes"]["quantization"] == quant > 0
    assert fb["bytes"]["biases"] > 0 and fb["bytes"]["biases"] % 4 == 0

    arena = comp["arena"]
    assert arena["head"] + arena["tail"] == arena["total"] == \
        benched["by_name"]["tinyspeech_m"]["arena_bytes"]
    assert arena["parts"] and arena["tail_other"] >= 0
    peak = arena["activation_peak"]
    assert 0 < peak["peak_bytes"] <= peak["greedy_plan_bytes"]
    assert peak["peak_bytes"] == sum(t["bytes"] for t in peak["live"])


def test_greedy_plan_and_liveness_on_a_known_chain():
    # Three buffers: A (op 0-1) and B (op 1-2) overlap, C (op 2-3) only overlaps B.
    assert bench.greedy_plan([(100, 0, 1), (100, 1, 2), (100, 2, 3)]) == 224  # 112 + 112
    assert bench.greedy_plan([(64, 0, 0), (64, 1, 1)]) == 64  # disjoint lifetimes share


def test_variant_options_name_spec_options_pruning_and_compression():
    text = bench.variant_options({
        "spec": {"name": "explore_trial_15", "builder": "tinyspeech",
                 "kwargs": {"head_channels": 16, "embed_widths": [20]}},
        "prune": 0.5, "cluster_bits": 4,
        "compression": {"bits": 4, "filters": 2, "report": "r.json"}})
    assert text.startswith("architecture spec explore_trial_15 (builder tinyspeech")
    assert "embed_widths=[20]" in text and "head_channels=16" in text
    assert "magnitude pruning to 50% sparsity" in text
    assert "held on 16 learned values during QAT (--cluster-bits 4)" in text
    assert "2 filter(s) clustered to 16 values" in text
    assert bench.variant_options({"model_kwargs": {}}) == "zoo defaults"


def test_rows_without_a_run_are_sized_like_tinyspeech_zoo():
    """A zoo model without a run gets the size `tinyspeech zoo` reports
    (tinyspeech_tf.quantize.cost), that of a trained model of the architecture."""
    from tinyspeech_tf import tflm, zoo_report

    costs, tflite = bench.probe_architecture("tiny_conv")
    assert costs == zoo_report.measure("tiny_conv")
    assert (len(tflite), tflm.arena_bytes(tflite)) == (costs["tflite_bytes"],
                                                       costs["arena_bytes"])
