"""`tinyspeech explore` (shared optuna study, constraints before training) and architecture specs.

Everything runs on a tiny generated tone set with one- or two-step training, so the whole file
takes a couple of minutes; the real exploration is `make explore`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, fails_one_line
from tiny_export import write_tone_set

from tinyspeech_tf import cli, explore, quantize, tflm, zoo
from tinyspeech_tf.errors import UserError

# Limits the search space often breaks (stride 1 in time, wide conv embeddings, four
# condensers): the feasibility check has work to do.
LIMITS = {"--max-params": 15000, "--max-bytes": 16384, "--max-arena": 16384}
TINY_BUDGET = ["--epochs", "1", "--qat-epochs", "0", "--max-steps-per-epoch", "2",
               "--batch-size", "8"]
M_KWARGS = {"stem_channels": 12, "stem_strides": [2, 2], "embed_widths": [8, 12, 10],
            "head_channels": 28, "use_batch_norm": False}


@pytest.fixture(scope="module")
def tone_set(tmp_path_factory) -> Path:
    """12 classes told apart by pitch: learnable in a few steps, no tools or downloads needed."""
    return write_tone_set(tmp_path_factory.mktemp("tones"), train_per_label=4)


def _argv(data: Path, out: Path, trials: int, limits: dict, *extra: str) -> list[str]:
    flags = [str(x) for item in limits.items() for x in item]
    return ["explore", "--data", str(data), "--out", str(out), "--trials", str(trials),
            *flags, *TINY_BUDGET, *extra]


def _load_study(out: Path, name: str = "tinyspeech"):
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{out}/study.db")


def _remeasure(spec_file: Path) -> dict:
    """Costs measured independently of explore.py: spec -> Keras -> int8 -> TFLM."""
    model = zoo.from_spec(spec_file)
    tflite = quantize.convert_int8(model, quantize.random_representative((49, 10, 1)),
                                   allowed_ops=None, per_channel=False)
    return {"params": model.count_params(), "tflite_bytes": len(tflite),
            "arena_bytes": tflm.arena_bytes(tflite), "ops": set(quantize.op_set(tflite))}


def _assert_within_limits(costs: dict, where: str) -> None:
    assert costs["params"] <= LIMITS["--max-params"], where
    assert costs["tflite_bytes"] <= LIMITS["--max-bytes"], where
    assert costs["arena_bytes"] <= LIMITS["--max-arena"], where
    assert set(costs["ops"]) <= quantize.TINYSPEECH_OPS, where


def test_two_workers_share_one_study(tone_set, tmp_path):
    """Two processes run the same command against one SQLite study: together they train the
    two requested architectures, and everything they report meets every limit."""
    out = tmp_path / "explore"
    cmd = [sys.executable, "-m", "tinyspeech_tf.cli",
           *_argv(tone_set, out, 2, LIMITS, "--tflm-ops", "--no-batchnorm")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    workers = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [w.communicate(timeout=170) for w in workers]
    for worker, (stdout, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
        assert any(line.startswith("trial ") for line in stdout.splitlines()), stdout

    import optuna

    study = _load_study(out)
    trained = explore.trained_trials(study)
    log = "\n".join(f"{t.number} {t.state.name} {t.user_attrs}" for t in study.get_trials())
    log += "".join(f"\nworker {w.pid}: {text}" for w, (text, _) in zip(workers, results,
                                                                       strict=True))
    assert len(trained) >= 2, log
    # Worker ids are host:pid; each process trained at least one of the architectures.
    assert {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trained} == {
        str(w.pid) for w in workers}, log
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.FAIL)), log
    for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,)):
        assert t.user_attrs["pruned_reason"]
        assert not (out / "trials" / str(t.number)).exists(), "pruned after training started"

    report = json.loads((out / "pareto.json").read_text())
    assert (out / "pareto.png").stat().st_size > 0
    assert report["trials"]["trained"] == len(trained)
    assert report["front"] and not report["violating_after_training"]
    evaluated = {r["trial"]: r for r in report["evaluated"]}
    assert set(evaluated) == {t.number for t in trained}
    for member in report["front"]:
        assert evaluated[member["trial"]] == member
        for key in ("trial", "accuracy", "tflite_bytes", "arena_bytes", "params", "macs"):
            assert key in member
    # The front is what it claims: no evaluated architecture dominates a member.
    for member in report["front"]:
        assert not any(explore.pareto._dominates(r, member) for r in evaluated.values())

    spec_files = sorted((out / "specs").glob("trial_*.json"))
    assert {p.name for p in spec_files} == {f"trial_{n}.json" for n in evaluated}
    for row in evaluated.values():
        assert not Path(row["spec"]).is_absolute() and not Path(row["run"]).is_absolute()
        spec_file, run = out / row["spec"], out / row["run"]
        _assert_within_limits(_remeasure(spec_file), spec_file.name)
        # What the trial shipped (its own int8 file), measured again, and what it reported.
        shipped = (run / "model_int8.tflite").read_bytes()
        assert len(shipped) == row["tflite_bytes"]
        assert tflm.arena_bytes(shipped) == row["arena_bytes"]
        _assert_within_limits(row, row["spec"])
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["spec"] == json.loads(spec_file.read_text())
        assert metrics["int8_tflm"]["accuracy"] == row["accuracy"]
    assert not list(out.rglob("*.tmp*"))


def test_infeasible_space_prunes_before_training(tone_set, tmp_path, capsys, monkeypatch):
    """An arena limit no TinySpeech meets: every sample is converted and measured, pruned with
    its reason, and nothing is trained; the worker gives up with a one-line error."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "tight"
    argv = _argv(tone_set, out, 1, {"--max-arena": 1024}, "--max-infeasible", "2")
    fails_one_line(argv, capsys, "2 sampled architectures in a row", "--max-arena 1,024")
    import optuna

    trials = _load_study(out).get_trials()
    assert len(trials) == 2
    for t in trials:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.user_attrs["pruned_reason"].startswith("arena_bytes ")
        assert t.user_attrs["arena_bytes"] > 1024 and t.user_attrs["tflite_bytes"] > 0
    assert not (out / "trials").exists() and not list(out.glob("specs/*"))
    report = json.loads((out / "pareto.json").read_text())
    assert report["trials"]["pruned"] == 2 and report["front"] == []

    # The study remembers its limits: a worker with other ones is refused before sampling.
    fails_one_line(_argv(tone_set, out, 1, {"--max-arena": 2048}), capsys, "other settings",
                   "constraints")
    assert len(_load_study(out).get_trials()) == 2


def test_seeds_average_each_architecture_over_training_seeds(tone_set, tmp_path, capsys):
    """--seeds 2: the queued architecture is trained with seeds 0 and 1 and scored by the mean."""
    tiny = tmp_path / "tiny.json"
    tiny.write_text(json.dumps({"builder": "tinyspeech", "kwargs": {
        "stem_channels": 4, "embed_widths": [4], "head_channels": 8, "use_batch_norm": False}}))
    out = tmp_path / "seeds"
    assert cli.main(_argv(tone_set, out, 1, LIMITS, "--no-batchnorm", "--seeds", "2",
                          "--start-from", str(tiny))) == 0
    capsys.readouterr()
    (trial,) = explore.trained_trials(_load_study(out))
    runs = [json.loads((out / "trials" / "0" / f"seed_{s}" / "metrics.json").read_text())
            for s in (0, 1)]
    assert [r["seed"] for r in (json.loads((out / "trials" / "0" / f"seed_{s}" /
                                             "config.json").read_text()) for s in (0, 1))] \
        == [0, 1]
    accuracies = [r["int8_tflm"]["accuracy"] for r in runs]
    assert trial.user_attrs["seed_accuracies"] == accuracies
    assert trial.value == pytest.approx(sum(accuracies) / 2)
    assert trial.user_attrs["tflite_bytes"] == max(r["tflite_bytes"] for r in runs)
    assert _load_study(out).user_attrs["settings"]["budget"]["seeds"] == 2
    report = json.loads((out / "pareto.json").read_text())
    assert report["evaluated"][0]["seed_accuracies"] == accuracies
    fails_one_line(_argv(tone_set, out, 1, LIMITS, "--seeds", "0"), capsys,
                   "--seeds at least 1")


def test_pareto_front_dominance():
    rows = [{"trial": 0, "accuracy": 0.8, "tflite_bytes": 10, "arena_bytes": 10},
            {"trial": 1, "accuracy": 0.7, "tflite_bytes": 12, "arena_bytes": 10},  # dominated
            {"trial": 2, "accuracy": 0.6, "tflite_bytes": 8, "arena_bytes": 12},
            {"trial": 3, "accuracy": 0.9, "tflite_bytes": 20, "arena_bytes": 20},
            {"trial": 4, "accuracy": 0.8, "tflite_bytes": 10, "arena_bytes": 10}]  # tie with 0
    assert [r["trial"] for r in explore.pareto_front(rows)] == [2, 0, 4, 3]


def test_spec_round_trip(tmp_path):
    """A spec file builds exactly the network its builder call would."""
    spec = {"builder": "tinyspeech", "kwargs": M_KWARGS, "name": "m_from_spec"}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(spec))
    built = zoo.from_spec(path)
    reference = zoo.get("tinyspeech_m", input_shape=(49, 10, 1), num_classes=12)
    assert built.name == "m_from_spec"
    assert built.count_params() == reference.count_params() == 4702
    assert [w.shape for w in built.weights] == [w.shape for w in reference.weights]
    assert zoo.load_spec(path)[0] == {**spec, "kwargs": M_KWARGS}
    # Zoo names work as builders, and the dict form as well as the file.
    assert zoo.from_spec({"builder": "tinyspeech_m", "kwargs": {}},
                         num_classes=5).output_shape == (None, 5)


@pytest.mark.parametrize("content, fragment", [
    ('{"builder": "resnet", "kwargs": {}}', "unknown builder 'resnet'"),
    ('{"builder": "tinyspeech", "kwargs": {"widths": [8]}}', "no argument(s) widths"),
    ('{"builder": "tinyspeech", "kwargs": {"embedding": "fft"}}', "rejects its kwargs"),
    ('{"builder": "tinyspeech", "kwargs": {"num_classes": 3}}', "set by the data"),
    ('{"builder": "tinyspeech", "kwargs": [], "name": "x"}', "kwargs must be a JSON object"),
    ('{"builder": "tinyspeech", "layers": 3}', "unknown spec key(s) layers"),
    ('{"builder": "tinyspeech",', "not valid JSON"),
    (None, "no such spec file"),
])
def test_bad_spec_is_one_line_naming_the_file(content, fragment, tmp_path, capsys):
    path = tmp_path / "bad_spec.json"
    if content is not None:
        path.write_text(content)
    fails_one_line(["train", "--spec", str(path), "--data", str(tmp_path)], capsys,
                   "bad_spec.json", fragment)


def test_train_spec_trains_and_resumes(tone_set, tmp_path, capsys):
    """`train --spec` trains a spec'd architecture one step; the spec lives in the run's
    config, so `--resume` (without --spec) continues it."""
    spec = {"builder": "tinyspeech", "name": "tiny_spec", "per_channel": False,
            "kwargs": {"stem_channels": 4, "embed_widths": [4], "head_channels": 8}}
    spec_file = tmp_path / "tiny.json"
    spec_file.write_text(json.dumps(spec))
    out = tmp_path / "run"
    common = ["--data", str(tone_set), "--out", str(out), "--qat-epochs", "0",
              "--max-steps-per-epoch", "1", "--batch-size", "8"]
    assert cli.main(["train", "--spec", str(spec_file), "--epochs", "1", *common]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["model"] == config["model"] == "tiny_spec"
    assert metrics["spec"] == config["spec"] == spec
    assert metrics["params"] == zoo.from_spec(spec).count_params()
    assert "per-tensor" in metrics["quantization"]
    assert "F = residual" in (out / "MODEL_CARD.md").read_text()

    assert cli.main(["train", "--resume", "--epochs", "2", *common]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert resumed["epochs"] == 2 and state["epoch"] == 2
    assert resumed["spec"] == spec and resumed["params"] == metrics["params"]
    assert resumed["architecture"] == zoo.architecture("tinyspeech", **spec["kwargs"])
    capsys.readouterr()
    fails_one_line(["train", "--spec", str(spec_file), "--model-arg", "f_mode=multiply",
                    "--data", str(tone_set)], capsys, "--model-arg and --spec")


def test_start_from_tinyspeech_m_rebuilds_it_exactly():
    import optuna

    constraints = explore.Constraints(tflm_ops=True, batch_norm=False)
    params = explore.start_params("tinyspeech_m", constraints)
    spec = explore.sample_spec(optuna.trial.FixedTrial(params), constraints)
    rebuilt, m = zoo.from_spec(spec), zoo.get("tinyspeech_m")
    assert rebuilt.count_params() == m.count_params()
    assert [type(la).__name__ for la in rebuilt.layers] == [type(la).__name__ for la in m.layers]
    assert [la.get_config().get("filters") for la in rebuilt.layers] == \
        [la.get_config().get("filters") for la in m.layers]


def test_start_from_is_queued_once_per_study(tmp_path):
    import optuna

    constraints = explore.Constraints(batch_norm=False)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", direction="maximize")
    for _ in range(2):  # two workers starting from the same design
        study.enqueue_trial(explore.start_params("tinyspeech_m", constraints),
                            skip_if_exists=True)
    assert len(study.get_trials()) == 1


def test_f_mode_is_residual_without_batch_norm():
    """The multiply form is only searched where batch norm can hold the signal up."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    no_bn = explore.Constraints(batch_norm=False)
    modes = {explore.sample_spec(study.ask(), no_bn)["kwargs"]["f_mode"] for _ in range(30)}
    assert modes == {"residual"}
    both = [explore.sample_spec(study.ask(), explore.Constraints())["kwargs"]
            for _ in range(60)]
    assert {k["f_mode"] for k in both if k["use_batch_norm"]} == {"residual", "multiply"}
    assert {k["f_mode"] for k in both if not k["use_batch_norm"]} == {"residual"}


def test_stem_kernel_head_kernel_and_stride_are_searched():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    specs = [explore.sample_spec(study.ask(), explore.Constraints(batch_norm=False))
             for _ in range(30)]
    assert {tuple(s["kwargs"]["stem_kernel"]) for s in specs} == {(3, 3), (5, 3), (10, 4)}
    spec = next(s for s in specs if s["kwargs"]["stem_kernel"] == [10, 4])
    assert zoo.from_spec(spec).get_layer("stem").kernel_size == (10, 4)
    assert {tuple(s["kwargs"]["head_kernel"]) for s in specs} == {(3, 3), (1, 1)}
    assert {tuple(s["kwargs"]["head_strides"]) for s in specs} == {(1, 1), (2, 2)}
    spec = next(s for s in specs if s["kwargs"]["head_strides"] == [2, 2])
    head = zoo.from_spec(spec).get_layer("head")
    assert head.strides == (2, 2)


def _old_space_study(storage: str, settings: dict, folder: Path):
    """A study recorded before the stem kernel and head options were searched: M, one pruned,
    one failed."""
    import optuna

    constraints = explore.Constraints(batch_norm=False)
    study = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    study.set_user_attr("settings", settings)
    for number, (kwargs, state, value) in enumerate([
            (M_KWARGS, "COMPLETE", 0.77), ({**M_KWARGS, "stem_channels": 16}, "PRUNED", None)]):
        path = folder / f"old_{number}.json"
        path.write_text(json.dumps({"builder": "tinyspeech", "kwargs": kwargs}))
        fixed = optuna.trial.FixedTrial(explore.start_params(str(path), constraints),
                                        number=number)
        spec = explore.sample_spec(fixed, constraints)
        params, dists = dict(fixed.params), dict(fixed.distributions)
        for key in ("stem_kernel", "head_kernel", "head_strides"):  # not in the old space
            del spec["kwargs"][key], params[key], dists[key]
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState[state], value=value, params=params,
            distributions=dists, user_attrs={"spec": spec, "tflite_bytes": 14048}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                              user_attrs={"error": "killed"}))
    return study


def test_warm_start_copies_an_older_space_with_numbers_kept(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path}/s.db"
    settings = {"budget": {"epochs": 60}}
    old = _old_space_study(storage, settings, tmp_path)
    new = explore.open_study(storage, "new", 0, settings)
    constraints = explore.Constraints(batch_norm=False)
    assert explore.warm_start(new, old, constraints) == 3
    copied = new.get_trials()
    assert [(t.number, t.state.name, t.value) for t in copied] == \
        [(0, "COMPLETE", 0.77), (1, "PRUNED", None), (2, "FAIL", None)]
    assert copied[0].params == explore.start_params("tinyspeech_m", constraints)
    assert copied[0].params["head_kernel"] == "3x3" and copied[1].params["stem_channels"] == 16
    assert copied[0].params["stem_kernel"] == "3x3"
    assert copied[0].user_attrs["tflite_bytes"] == 14048
    assert explore.warm_start(new, old, constraints) == 0  # a second worker copies nothing
    other = explore.open_study(storage, "other", 0, {"budget": {"epochs": 20}})
    with pytest.raises(UserError, match="other constraints or budget"):
        explore.warm_start(other, old, constraints)
    used = optuna.load_study(study_name="other", storage=storage)
    used.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    used.set_user_attr("settings", settings)
    with pytest.raises(UserError, match="already has trials"):
        explore.warm_start(used, old, constraints)


def test_warm_start_from_a_missing_study_is_one_line(tone_set, tmp_path, capsys):
    fails_one_line(_argv(tone_set, tmp_path / "out", 1, LIMITS, "--study", "b",
                         "--warm-start", "nosuch"), capsys, "no study 'nosuch' in the storage")


@pytest.mark.parametrize("start,fragment", [
    ("tinyspeech_x", "tinyspeech_x: 6 condensers is outside the search space"),
    ("multiply.json", "f_mode multiply without batch norm"),
    ("k7x3.json", "stem_kernel 7x3 is outside the search space"),
    ("ds_cnn", "not a TinySpeech network"),
    ("no_such.json", "no such spec file"),
])
def test_bad_start_from_is_one_line(start, fragment, tmp_path, capsys):
    (tmp_path / "multiply.json").write_text(json.dumps(
        {"builder": "tinyspeech_m", "kwargs": {"f_mode": "multiply"}}))
    (tmp_path / "k7x3.json").write_text(json.dumps(
        {"builder": "tinyspeech_m", "kwargs": {"stem_kernel": [7, 3]}}))
    start = str(tmp_path / start) if start.endswith(".json") else start
    fails_one_line(["explore", "--data", str(tmp_path), "--start-from", start,
                    "--no-batchnorm", "--out", str(tmp_path / "out")], capsys, fragment)


def test_feasibility_check_measures_like_tinyspeech_zoo():
    """explore prunes on the measurement `tinyspeech zoo` reports (tinyspeech_tf.quantize.cost): the
    search's M is measured at the zoo's M bytes and arena, i.e. those of a trained M."""
    import optuna

    from tinyspeech_tf.quantize import cost

    constraints = explore.Constraints(tflm_ops=True, batch_norm=False)
    spec = explore.sample_spec(optuna.trial.FixedTrial(
        explore.start_params("tinyspeech_m", constraints)), constraints)
    costs, reason = explore.measure(spec, constraints, qat=True)
    zoo_costs, _ = cost.measure_zoo("tinyspeech_m")
    assert reason is None
    assert costs == {key: zoo_costs[key] for key in costs}
