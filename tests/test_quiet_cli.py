"""The installed command prints its own output first: TensorFlow's native log lines (absl,
oneDNN, CUDA probing, the converter) are hidden unless --verbose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINYSPEECH = Path(sys.executable).with_name("tinyspeech")


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "TINYSPEECH_VERBOSE")}
    return subprocess.run([str(TINYSPEECH), *argv], cwd=cwd, env=env, capture_output=True,
                          text=True)


def test_first_line_is_the_commands_own(tmp_path):
    done = _run("zoo", "--models", "tinyspeech_m", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # nothing from the C++ side
    assert done.stdout.splitlines()[0].startswith("| model | params |")


def test_user_errors_stay_one_line_and_verbose_shows_native_logs(tmp_path):
    done = _run("evaluate", "missing.tflite", "--data", "x", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tinyspeech evaluate: error: missing.tflite: no such model file"]
    verbose = _run("--verbose", "zoo", "--models", "tiny_conv", cwd=tmp_path)
    assert verbose.returncode == 0
    assert "fully_quantize" in verbose.stderr  # the converter's own line, muted by default
