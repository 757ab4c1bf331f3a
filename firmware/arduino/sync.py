#!/usr/bin/env python3
"""Make the Arduino sketch folder self-contained: copy the shared firmware sources into it.

Why: the Arduino builder compiles only the files inside the sketch folder (no include paths to
firmware/common), and older builders (arduino-cli < 0.35, Arduino IDE < 2.3) compile .c, .cpp
and .S but not .cc. So:

  * firmware/common/{kws_frontend,recognize_commands}.{h,c}, kws_frontend_tables.h and
    kws_runner.h are copied as they are, kws_runner.cc as kws_runner.cpp;
  * the exported model_data.cc (which `tinyspeech export-tflite` copies into the sketch folder,
    or which --model-dir points at) becomes model_data.cpp, and a model_data.cc in the sketch
    folder is removed: newer builders compile .cc too and would define the model twice;
  * with --model-dir, the exported headers are copied from there as well.

Every copy starts with a line saying where it came from; edit the original, then run this
again. Run it after every `make export-tflite` (a stale model_data.cpp is caught at boot: the
runner compares the model's hash with model_settings.h and refuses to start).

Standard library only, so it runs without the project's virtualenv:
    python3 firmware/arduino/sync.py [--model-dir build/tinyspeech_m] [--sketch-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMON_DIR = HERE.parent / "common"
DEFAULT_SKETCH = HERE / "TinySpeechM"
# (source name in firmware/common, name in the sketch folder)
COMMON_FILES = (
    ("kws_frontend.h", "kws_frontend.h"),
    ("kws_frontend.c", "kws_frontend.c"),
    ("kws_frontend_tables.h", "kws_frontend_tables.h"),
    ("recognize_commands.h", "recognize_commands.h"),
    ("recognize_commands.c", "recognize_commands.c"),
    ("kws_runner.h", "kws_runner.h"),
    ("kws_runner.cc", "kws_runner.cpp"),
)
MODEL_HEADERS = ("model_data.h", "model_settings.h", "op_resolver.h", "golden.h")
MODEL_SOURCE = ("model_data.cc", "model_data.cpp")


def _copy(src: Path, dst: Path, origin: str) -> None:
    text = src.read_text()
    banner = f"/* COPIED by firmware/arduino/sync.py from {origin}; edit the original. */\n"
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.write_text(banner + text)
    tmp.replace(dst)


def sync(sketch: Path, model_dir: Path | None = None) -> list[str]:
    """Copy everything; returns the names written. Raises SystemExit with a message when the
    model files are missing."""
    if not (sketch / f"{sketch.name}.ino").is_file():
        raise SystemExit(f"{sketch} is not a sketch folder (no {sketch.name}.ino)")
    written = []
    for src_name, dst_name in COMMON_FILES:
        _copy(COMMON_DIR / src_name, sketch / dst_name, f"firmware/common/{src_name}")
        written.append(dst_name)

    source = model_dir if model_dir is not None else sketch
    missing = [n for n in (*MODEL_HEADERS, MODEL_SOURCE[0]) if not (source / n).is_file()]
    if model_dir is None and missing == [MODEL_SOURCE[0]] and (sketch / MODEL_SOURCE[1]).is_file():
        return written  # already converted, and no new export since
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing in {source}: run `make export-tflite` "
                         "(tinyspeech export-tflite RUN) first, or pass --model-dir build/<run>")
    if model_dir is not None:
        for name in MODEL_HEADERS:
            _copy(model_dir / name, sketch / name, f"the export's {name}")
            written.append(name)
    _copy(source / MODEL_SOURCE[0], sketch / MODEL_SOURCE[1],
          f"the export's {MODEL_SOURCE[0]} (renamed for older Arduino builders)")
    written.append(MODEL_SOURCE[1])
    stale = sketch / MODEL_SOURCE[0]
    if stale.exists():
        stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sketch-dir", type=Path, default=DEFAULT_SKETCH,
                        help="sketch folder to fill (default: firmware/arduino/TinySpeechM)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="export directory (build/<run>) to take the model files from; "
                             "default: the files the exporter copied into the sketch folder")
    args = parser.parse_args(argv)
    written = sync(args.sketch_dir, args.model_dir)
    print(f"{args.sketch_dir}: wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
