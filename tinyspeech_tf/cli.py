"""The ``tinyspeech`` console script.

Each sub-command lives in its own module of :mod:`tinyspeech_tf.apps` exposing
``add_arguments(parser)`` and ``run(args) -> int``; the library's heavy modules (TensorFlow)
load only when a command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from tinyspeech_tf.errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "zoo": ("tinyspeech_tf.apps.zoo", "table of zoo models: params, MACs, ops, bytes, arena"),
    "bench-frontend": (
        "tinyspeech_tf.apps.bench_frontend",
        "front-end parity and speed: Python vs C features, oracle accuracy",
    ),
    "train": ("tinyspeech_tf.apps.train", "train a zoo model, convert to int8, evaluate in TFLM"),
    "pretrained": ("tinyspeech_tf.apps.pretrained",
                   "the trained models shipped with the package (zoo weights, int8, cards)"),
    "evaluate": ("tinyspeech_tf.apps.evaluate",
                 "int8 accuracy of a .tflite model in TFLM on a dataset"),
    "ablate-fmode": ("tinyspeech_tf.apps.ablate_fmode",
                     "train both selective-attention modes and report which wins"),
    "seeds": ("tinyspeech_tf.apps.seeds",
              "train architectures by one recipe over several seeds; compare their means"),
    "synthetic": ("tinyspeech_tf.apps.synthetic",
                  "synthetic-only, real-only and synthetic+real training, scored on real speech"),
    "recipe": ("tinyspeech_tf.apps.recipe",
               "measure changes to the real-data recipe one at a time over several seeds"),
    "dataset": ("tinyspeech_tf.apps.dataset", "make the offline synthetic set; inspect datasets"),
    "export-tflite": ("tinyspeech_tf.apps.export_tflite",
                      "a trained run -> model_data.cc, model_settings.h, op_resolver.h, golden.h"),
    "stream": ("tinyspeech_tf.apps.stream",
               "detect keywords in a long wav as the board does; score against a label track"),
    "stream-make": ("tinyspeech_tf.apps.stream_make",
                    "build a long test stream from held-out clips over noise, with its track"),
    "stream-tune": ("tinyspeech_tf.apps.stream_tune",
                    "choose the detector on one stream, test it on another, per stride"),
    "bench": ("tinyspeech_tf.apps.bench",
              "zoo vs peer int8 models: accuracy, size, arena, interleaved TFLM latency"),
    "bench-scale": ("tinyspeech_tf.apps.bench_scale",
                    "one training epoch at 10K/40K/105K clips: peak memory, clips/s, first batch"),
    "compress": ("tinyspeech_tf.apps.compress",
                 "cluster a run's int8 weights and TFLM LUT-compress them; score and check"),
    "explore": ("tinyspeech_tf.apps.explore",
                "search TinySpeech architectures under params/bytes/arena/op limits (optuna)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyspeech", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's native log lines (absl, oneDNN, CUDA, "
                             "converter), hidden by default")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are declared by the module itself; import is cheap for argparse-only code.
        importlib.import_module(module).add_arguments(p)
    return parser


def _mute_native_stderr() -> None:
    """Send the process's file descriptor 2 to /dev/null and Python's ``sys.stderr`` to a copy
    of it: TensorFlow's C++ side (absl, oneDNN, CUDA probing, the converter) writes to fd 2
    at import and at first use, TF_CPP_MIN_LOG_LEVEL does not silence all of it, and a
    command's own output must come first. Our errors, warnings and tracebacks still show."""
    try:
        sys.stderr.flush()
        copy = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    sys.stderr = os.fdopen(copy, "w", buffering=1, encoding=sys.stderr.encoding,
                           errors="backslashreplace")
    os.dup2(null, 2)
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    console = argv is None  # the installed `tinyspeech` script, not a caller in Python
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._argv = [a for a in argv if a != "--verbose"]  # reports quote the command
    if args.verbose:
        os.environ["TINYSPEECH_VERBOSE"] = "1"
    elif console:
        _mute_native_stderr()
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UserError as err:
        print(f"tinyspeech {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        # Files and folders the user named (an output in a read-only folder, a parent that is
        # a file, a folder where a file belongs, ...): one place turns them into one line.
        print(f"tinyspeech {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "out", None) or f"runs/{getattr(args, 'model', None) or 'MODEL'}"
        hint = (f"; continue with `tinyspeech train --resume --out {out}`"
                if args.command == "train" else "")
        print(f"tinyspeech {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


_OS_HINTS = {
    errno.EACCES: "permission denied; choose a path you can write, or fix its permissions",
    errno.EPERM: "operation not permitted; choose another path",
    errno.EROFS: "read-only file system; choose a writable path",
    errno.EISDIR: "is a folder where a file is expected; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; give another path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENOSPC: "no space left on the device; free some or choose another disk",
    errno.EEXIST: "already exists; remove it or choose another path",
}


def os_error_line(err: OSError) -> str:
    """What went wrong with which path, and what to do, in one line."""
    hint = _OS_HINTS.get(err.errno, (err.strerror or str(err)).lower())
    if err.errno == errno.EEXIST and err.filename and os.path.isfile(err.filename):
        hint = "is a file, not a folder; give another path"
    if err.filename is None:
        return hint
    where = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    return f"{where}: {hint}"


if __name__ == "__main__":
    sys.exit(main())
