"""The runner's RAM by part: firmware/qemu/main_state.cc on QEMU (Cortex-M4) and
tinyspeech_tf.firmware_state, which ``make firmware-check`` runs on the shipped model.

The program prints sizeof(kws_runner_t) and every member's offset and size; the members must
tile the struct (gaps only for alignment), the parts must add up to what is printed, the
smoother must be the ring the export sized, and the runner's own state must fit 4,096 B.
Skips without arm-none-eabi-g++ / qemu-system-arm, except in CI (CI=true): fails there.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import require_tools
from tiny_export import make_export

from tinyspeech_tf import firmware_state as FS
from tinyspeech_tf.zoo import PRETRAINED_DIR

pytestmark = pytest.mark.firmware

ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm")
KWS_RUNNER_MEMBERS = ("magic", "built", "config", "frontend", "window", "window_frames",
                      "smoother", "frames", "until_invoke", "inferences", "has_time",
                      "last_time_ms", "input_scale", "input_zero_point", "scores", "resolver",
                      "interpreter", "input", "output", "resolver_storage",
                      "interpreter_storage")


def _define(text: str, name: str) -> int:
    return int(re.search(rf"#define {name} (\d+)", text).group(1))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def state(export_dir, tmp_path_factory) -> FS.RunnerState:
    require_tools(*ARM_TOOLS)
    return FS.measure(export_dir, tmp_path_factory.mktemp("state"))


def test_members_tile_the_struct(state) -> None:
    """Every member of kws_runner_t is listed (kws_runner.h's order), none overlaps, and the
    only bytes between or after them are alignment padding."""
    assert tuple(state.members) == KWS_RUNNER_MEMBERS
    assert state.tflm == "mock"
    end = 0
    for name, (offset, size) in state.members.items():
        assert size > 0, name
        assert end <= offset < end + 8, (name, end, offset)  # alignment is at most 8 here
        end = offset + size
    assert end <= state.total < end + 8
    assert 0 <= state.padding < 8 * len(state.members)


def test_parts_are_the_exported_model_s_sizes(state, export_dir) -> None:
    settings = (export_dir / "model_settings.h").read_text()
    labels = _define(settings, "TINYSPEECH_LABEL_COUNT")
    results = _define(settings, "TINYSPEECH_SMOOTHER_RESULTS")
    assert state.ring == (labels, results) == (12, 26)
    parts = state.parts()
    assert parts["window"] == _define(settings, "TINYSPEECH_INPUT_SIZE") + 4  # int8 + count
    # the smoother: its counters plus sums [classes], times [results] and the int8 scores
    # [results x classes] (KWS_RECOGNIZER_STATE_BYTES); the counters are 15 int32
    ring = 4 * labels + 4 * results + (labels * results + 3) // 4 * 4
    assert parts["smoother"] == 15 * 4 + ring
    frame = 2 * 480  # int16 samples of one frame; the FFT's floats are on the stack
    assert frame <= parts["frontend"] <= frame + 16
    tflm = sum(state.members[m][1] for m, _ in FS.TFLM_PARTS)
    assert sum(parts.values()) == state.own == state.total - tflm
    assert state.own <= FS.BUDGET_BYTES


def test_make_firmware_check_prints_the_shipped_model_within_budget(capsys) -> None:
    """What `make firmware-check` prints: the parts add up to the runner's own state, which
    fits 4,096 B; TFLM's objects are not shown as measured (built against the mock)."""
    require_tools(*ARM_TOOLS)
    assert FS.main([]) == 0
    out = capsys.readouterr().out
    sizes = {m.group(1).strip(): int(m.group(2).replace(",", ""))
             for m in re.finditer(r"^  (\S.*?)\s{2,}([\d,]+) B", out, re.M)}
    own = sizes.pop("runner state without TFLM objects")
    arena = sizes.pop("tensor arena (TINYSPEECH_ARENA_SIZE, 32-bit target)")
    with_arena = sizes.pop("runner state (with those TFLM objects) + tensor arena")
    assert len(sizes) == 4 and sum(sizes.values()) == own <= FS.BUDGET_BYTES, out
    # the 32-bit arena of the export: board_arena's bound for the shipped model plus the margin
    from tinyspeech_tf.board_arena import board_arena_bytes
    from tinyspeech_tf.export.bundle import DEFAULT_ARENA_MARGIN

    tflite = (PRETRAINED_DIR / "tinyspeech_m" / "model_int8.tflite").read_bytes()
    assert arena == -(-(board_arena_bytes(tflite)["arena"] + DEFAULT_ARENA_MARGIN) // 16) * 16
    assert with_arena == own + sum(FS.REPORTED_TFLM_BYTES.values()) + arena, out
    # The ring holds the shipped detector's window at its stride, both ends counted.
    detector = json.loads((PRETRAINED_DIR / "tinyspeech_m" / "detector.json").read_text())
    results = max(detector["window_ms"] // detector["stride_ms"] + 1, detector["min_count"])
    assert f"smoother (counters + result ring 12 x {results})" in out, out
    assert out.count("not measured here (built against the TFLM mock") == 2, out
    reported = sum(FS.REPORTED_TFLM_BYTES.values())
    assert "build reported" in out and f"{own + reported:,} B" in out, out


def test_report_with_real_tflm_shows_its_objects_and_no_reported_figures() -> None:
    members = {"frontend": (0, 2000), "window": (2000, 490), "window_frames": (2492, 4),
               "smoother": (2496, 156), "magic": (2652, 4), "resolver_storage": (2656, 400),
               "interpreter_storage": (3056, 1200)}
    state = FS.RunnerState(4256, members, (12, 3), "real", 12000)
    lines, fits = FS.report(state, "runs/x")
    text = "\n".join(lines)
    assert fits and state.own == 2656 and "2,656 B  (fits 4,096 B)" in text
    assert "12,000 B" in text and "16,256 B" in text  # the arena, and sizeof + arena
    assert "TFLM op resolver" in text and "400 B" in text and "1,200 B" in text
    assert "reported" not in text and "not measured" not in text
    over = FS.RunnerState(6256, {**members, "frontend": (0, 4000)}, (12, 3), "mock", 12000)
    lines, fits = FS.report(over, "runs/x")
    assert not fits and "EXCEEDS 4,096 B" in "\n".join(lines)


def test_bad_input_is_one_line_exit_2(tmp_path, capsys) -> None:
    def fails(argv: list[str], *fragments: str) -> None:
        assert FS.main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        for fragment in fragments:
            assert fragment in err, err

    require_tools(*ARM_TOOLS)
    fails(["--export", str(tmp_path)], "no model_settings.h")
    fails(["--tflm", str(tmp_path / "nope")], "--tflm", "no such directory")
    fails(["--run", str(tmp_path / "nope")], "nope")
    fails(["--tflm", str(tmp_path)], "--tflm", "does not build")  # no TFLM headers there
    plain = tmp_path / "README.md"
    plain.write_text("no markers\n")
    fails(["--export", str(tmp_path), "--readme", str(plain)], "runner-ram:start")
    assert plain.read_text() == "no markers\n"


def test_readme_gets_the_printed_figures_between_its_markers(export_dir, tmp_path,
                                                             capsys) -> None:
    """`make firmware-ram`: the report lines, as printed, replace the README's block; the
    text around it is kept, and a second run leaves the file as the first did."""
    require_tools(*ARM_TOOLS)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{FS.README_START}\nold\n{FS.README_END}\noutro\n")
    argv = ["--export", str(export_dir), "--readme", str(readme)]
    assert FS.main(argv) == 0
    printed = capsys.readouterr().out
    text = readme.read_text()
    assert text.startswith(f"intro\n{FS.README_START}\n```text\n") and "old" not in text
    assert text.endswith(f"{FS.README_END}\noutro\n")
    runner_lines = [line for line in printed.splitlines() if line.startswith("  ")]
    assert runner_lines and all(line in text.splitlines() for line in runner_lines)
    assert "Generated by `python -m tinyspeech_tf.firmware_state --export" in text
    assert FS.main(argv) == 0 and readme.read_text() == text
