"""``tinyspeech bench-frontend``: front-end parity and speed, Python vs C features, oracle
accuracy."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from tinyspeech_tf import frontend_bench
from tinyspeech_tf.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--build-dir", metavar="DIR",
                        help="where to build the C (default: a temporary directory)")


def run(args: argparse.Namespace) -> int:
    from tinyspeech_tf.frontend_c import shared_dir

    shared = shared_dir()
    val_dir = shared.joinpath(*frontend_bench.VAL_SUBDIR)
    if not val_dir.is_dir():
        raise UserError(f"../shared data not found ({val_dir}); "
                        "the bench needs the shared validation clips beside the repository")
    if args.build_dir:
        result = frontend_bench.measure(shared, Path(args.build_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="tinyspeech-frontend-") as tmp:
            result = frontend_bench.measure(shared, Path(tmp))
    print(frontend_bench.format_report(result))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = f"{path}.tmp{os.getpid()}"
        Path(tmp_path).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_path, path)
    return 0
