"""The RAM of the firmware runner (``kws_runner_t``) by part, measured on a Cortex-M4.

Why: a board's budget is a few KB, and a size typed into a README drifts from the code the
moment a buffer changes. Here ``firmware/qemu/main_state.cc`` is built with arm-none-eabi-g++
for Cortex-M4 against an export's headers (the smoother ring and feature window follow the
model's labels and stride) and run under QEMU mps2-an386; it prints ``sizeof`` and the offset
of every member of ``kws_runner_t``, which this module groups into parts and checks against the
budget (``make firmware-check`` runs it on the shipped model).

TFLM's op resolver and interpreter live inside ``kws_runner_t`` too, but their size is TFLM's:
without a tflite-micro tree (``--tflm DIR``) the program is built against the test mock, and
their lines say "not measured here" rather than showing the mock's sizes.

    python -m tinyspeech_tf.firmware_state [--run RUN | --export DIR] [--tflm DIR ...]
        [--readme README.md]

``--readme`` also writes the figures between ``<!-- runner-ram:start -->`` and
``<!-- runner-ram:end -->`` of that file (``make firmware-ram`` does it for the README).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyspeech_tf.errors import UserError
from tinyspeech_tf.firmware_build import build_program, run_program
from tinyspeech_tf.frontend_c import COMMON_DIR, QEMU_DIR, REPO_ROOT, arm_toolchain_missing
from tinyspeech_tf.io import display_path, replace_marked, write_atomic

STATE_MAIN = QEMU_DIR / "main_state.cc"
MOCK_TFLM_DIR = REPO_ROOT / "tests" / "fixtures" / "tflm_mock"
README_START = "<!-- runner-ram:start -->"
README_END = "<!-- runner-ram:end -->"
# What a small Cortex-M leaves the runner besides its tensor arena and stack.
BUDGET_BYTES = 4096
# The TFLM objects of a real-TFLM Cortex-M4 build of this runner (tflite-micro with
# arm-none-eabi-g++), as that build reported them: not measured by this program, shown only
# to say whether the runner still fits with them when it was built against the mock.
REPORTED_TFLM_BYTES = {"resolver_storage": 372, "interpreter_storage": 208}

# kws_runner_t's members by part (firmware/common/kws_runner.h); members not named here are
# the runner's bookkeeping (config, counters, the latest scores, pointers).
PARTS = (
    ("frontend", "front-end (int16 samples of the frame being filled)", ("frontend",)),
    ("window", "int8 feature window", ("window", "window_frames")),
    ("smoother", "smoother (counters + result ring)", ("smoother",)),
)
TFLM_PARTS = (
    ("resolver_storage", "TFLM op resolver"),
    ("interpreter_storage", "TFLM MicroInterpreter"),
)


@dataclass(frozen=True)
class RunnerState:
    """What main_state.cc printed: ``sizeof(kws_runner_t)``, each member's (offset, bytes),
    the smoother ring (classes, results), whether TFLM was the real one or the mock, and the
    tensor arena the export's model_settings.h gives this 32-bit target."""

    total: int
    members: dict[str, tuple[int, int]]
    ring: tuple[int, int]
    tflm: str
    arena: int

    @property
    def padding(self) -> int:
        """Bytes between and after members (alignment): total minus the members' sizes."""
        return self.total - sum(size for _, size in self.members.values())

    def parts(self) -> dict[str, int]:
        """Bytes of the runner's own parts (everything but the TFLM objects), padding included
        in the bookkeeping, so they add up to :attr:`own`."""
        named = {key: sum(self.members[m][1] for m in members) for key, _, members in PARTS}
        grouped = {m for _, _, members in PARTS for m in members} | dict(TFLM_PARTS).keys()
        named["bookkeeping"] = sum(size for name, (_, size) in self.members.items()
                                   if name not in grouped) + self.padding
        return named

    @property
    def own(self) -> int:
        """The runner's own state: ``sizeof(kws_runner_t)`` without TFLM's objects."""
        return self.total - sum(self.members[m][1] for m, _ in TFLM_PARTS)


def parse_output(text: str) -> RunnerState:
    """Parse main_state.cc's output; ValueError (with the text) when a line is missing."""
    total = re.search(r"^sizeof kws_runner_t (\d+)$", text, re.M)
    ring = re.search(r"^smoother_ring (\d+) (\d+)$", text, re.M)
    tflm = re.search(r"^tflm (real|mock)$", text, re.M)
    arena = re.search(r"^arena_size (\d+)$", text, re.M)
    members = {m.group(1): (int(m.group(2)), int(m.group(3)))
               for m in re.finditer(r"^member (\w+) (\d+) (\d+)$", text, re.M)}
    if total is None or ring is None or tflm is None or arena is None or not members:
        raise ValueError(f"unexpected main_state output:\n{text}")
    return RunnerState(int(total.group(1)), members, (int(ring.group(1)), int(ring.group(2))),
                       tflm.group(1), int(arena.group(1)))


def measure(export_dir: Path, build_dir: Path, tflm_dirs: tuple[Path, ...] = ()) -> RunnerState:
    """Build main_state.cc for Cortex-M4 against ``export_dir``'s headers and TFLM (the
    ``tflm_dirs`` include trees, or the mock without them) and run it on QEMU."""
    elf = build_program([STATE_MAIN], [Path(export_dir), COMMON_DIR], build_dir / "state.elf",
                        "qemu", system_dirs=tflm_dirs or (MOCK_TFLM_DIR,))
    rc, out = run_program(elf, "qemu", timeout=60)
    if rc != 0:
        raise RuntimeError(f"main_state exit code {rc} on QEMU:\n{out[-2000:]}")
    return parse_output(out)


def export_model(run: str, out_dir: Path) -> Path:
    """The firmware headers of ``run`` (no copies into the firmware projects)."""
    from tinyspeech_tf.export.bundle import export

    export(run, out_dir, command=f"python -m tinyspeech_tf.firmware_state --run {run}")
    return out_dir


def report(state: RunnerState, source: str) -> tuple[list[str], bool]:
    """Lines to print and whether the runner's own state fits :data:`BUDGET_BYTES`."""
    classes, results = state.ring
    parts = state.parts()
    fits = state.own <= BUDGET_BYTES
    width = 56
    label = {key: what for key, what, _ in PARTS}
    label["smoother"] = f"smoother (counters + result ring {classes} x {results})"
    label["bookkeeping"] = "runner bookkeeping (config, counters, pointers, padding)"
    lines = [f"kws_runner_t on Cortex-M4 (arm-none-eabi-g++ -mcpu=cortex-m4, sizeof on QEMU "
             f"mps2-an386) for {source}:"]
    lines += [f"  {label[key]:<{width}} {size:>6,} B" for key, size in parts.items()]
    lines.append(f"  {'runner state without TFLM objects':<{width}} {state.own:>6,} B  "
                 f"({'fits' if fits else 'EXCEEDS'} {BUDGET_BYTES:,} B)")
    arena_line = f"  {'tensor arena (TINYSPEECH_ARENA_SIZE, 32-bit target)':<{width}} " \
                 f"{state.arena:>6,} B"
    if state.tflm == "real":
        for member, what in TFLM_PARTS:
            lines.append(f"  {what:<{width}} {state.members[member][1]:>6,} B")
        lines.append(f"  {'sizeof(kws_runner_t)':<{width}} {state.total:>6,} B")
        lines += [arena_line, f"  {'runner state + tensor arena':<{width}} "
                              f"{state.total + state.arena:>6,} B"]
        return lines, fits
    for _, what in TFLM_PARTS:
        lines.append(f"  {what:<{width}} not measured here (built against the TFLM mock; "
                     "--tflm DIR measures it)")
    with_tflm = state.own + sum(REPORTED_TFLM_BYTES.values())
    known = ", ".join(f"{what} {REPORTED_TFLM_BYTES[m]} B" for m, what in TFLM_PARTS)
    lines.append(f"  with the TFLM objects a real-TFLM Cortex-M4 build reported ({known}; not "
                 f"measured here): {with_tflm:,} B, "
                 f"{'within' if with_tflm <= BUDGET_BYTES else 'over'} {BUDGET_BYTES:,} B")
    lines += [arena_line, f"  {'runner state (with those TFLM objects) + tensor arena':<{width}} "
                          f"{with_tflm + state.arena:>6,} B"]
    return lines, fits


def readme_block(lines: list[str], command: str) -> str:
    """The report as a text block for a README, saying how it was made."""
    return "\n".join(["```text", *lines, "```", "",
                      f"Generated by `{command}`; do not edit between the markers."])


def main(argv: list[str] | None = None) -> int:
    """Print the runner's RAM by part; exit 1 if its own state exceeds the budget, 2 on bad
    input or a missing toolchain."""
    from tinyspeech_tf.zoo import PRETRAINED_DIR

    parser = argparse.ArgumentParser(prog="python -m tinyspeech_tf.firmware_state",
                                     description=main.__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", default=None, help="run to export and measure (default: the "
                       "shipped TinySpeech-M)")
    which.add_argument("--export", default=None, metavar="DIR",
                       help="an existing `tinyspeech export-tflite` output to measure")
    parser.add_argument("--tflm", action="append", default=[], metavar="DIR",
                        help="a tflite-micro include tree (repeat for its third-party "
                             "headers, e.g. flatbuffers/include) to measure TFLM's objects")
    parser.add_argument("--readme", default=None, metavar="PATH",
                        help="also write the figures between the runner-ram markers of PATH")
    args = parser.parse_args(argv)
    try:
        missing = arm_toolchain_missing()
        if missing:
            raise UserError(f"cannot measure on Cortex-M4: {missing} not on PATH")
        tflm = tuple(Path(d) for d in args.tflm)
        for d in tflm:
            if not d.is_dir():
                raise UserError(f"--tflm {d}: no such directory")
        readme_text = None
        if args.readme is not None:
            try:
                readme_text = Path(args.readme).read_text(encoding="utf-8")
            except OSError as err:
                raise UserError(f"--readme {args.readme}: cannot read it ({err.strerror})") \
                    from None
            # Checked before the build, not after it.
            replace_marked(readme_text, README_START, README_END, "",
                           f"in {args.readme}; add them or drop --readme")
        if args.export is not None and not (Path(args.export) / "model_settings.h").is_file():
            raise UserError(f"--export {args.export}: no model_settings.h there (the output "
                            "directory of `tinyspeech export-tflite`)")
        with tempfile.TemporaryDirectory() as tmp:
            if args.export is not None:
                export_dir, source = Path(args.export), display_path(args.export)
            else:
                run = args.run or display_path(PRETRAINED_DIR / "tinyspeech_m")
                export_dir, source = export_model(run, Path(tmp) / "export"), run
            try:
                state = measure(export_dir, Path(tmp), tflm)
            except RuntimeError as err:
                if not tflm:
                    raise
                first = next((line for line in str(err).splitlines() if "error" in line),
                             str(err).splitlines()[0])
                raise UserError(f"--tflm {' '.join(map(str, tflm))}: main_state.cc does not "
                                f"build against it ({first.strip()})") from None
    except UserError as err:
        print(f"python -m tinyspeech_tf.firmware_state: error: {err}", file=sys.stderr)
        return 2
    lines, fits = report(state, source)
    print("\n".join(lines))
    if readme_text is not None:
        command = "python -m tinyspeech_tf.firmware_state " + " ".join(argv or sys.argv[1:])
        write_atomic(args.readme, replace_marked(readme_text, README_START, README_END,
                                                 readme_block(lines, command.strip()), ""))
        print(f"wrote the runner's RAM into {display_path(args.readme)}")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
