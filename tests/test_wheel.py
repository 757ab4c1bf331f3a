"""The package as a user installs it: a wheel in a fresh virtualenv outside the checkout.

An editable install hides files missing from the wheel and paths computed from ``__file__``
that point into the checkout; here ``tinyspeech zoo`` and a tiny train + ``export-tflite`` run
from the installed wheel in a folder of their own, and nothing is written into the install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from tiny_export import write_tone_set

REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding only our wheel; the heavy dependencies (TensorFlow, ...) come from
    the test's own environment through a path entry, never our checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp / "dist"), str(REPO)], check=True)
    wheels = list((tmp / "dist").glob("tinyspeech_tf-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheels[0])], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def _run(env_dir: Path, cwd: Path, *argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(env_dir / "bin" / "tinyspeech"), *argv], cwd=cwd, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_installed_wheel_runs_zoo_train_and_export(wheel_venv, tmp_path):
    python = wheel_venv / "bin" / "python"
    where = subprocess.run([str(python), "-c",
                            "import tinyspeech_tf; print(tinyspeech_tf.__file__)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    package = Path(where.strip()).parent
    assert package.is_relative_to(wheel_venv), f"imported {package}, not the wheel's copy"
    installed = _files(package)

    assert "tinyspeech_m" in _run(wheel_venv, tmp_path, "zoo", "--models", "tinyspeech_m")
    # The shipped models are package data of the wheel.
    assert "| tinyspeech_m |" in _run(wheel_venv, tmp_path, "pretrained")
    tones = write_tone_set(tmp_path / "tones", train_per_label=2)
    _run(wheel_venv, tmp_path, "train", "--data", str(tones), "--out", "run", "--epochs", "1",
         "--qat-epochs", "0", "--batch-size", "8", "--max-steps-per-epoch", "2")
    out = _run(wheel_venv, tmp_path, "export-tflite", "run", "--out", "export",
               "--golden-wav", str(next((tones / "val" / "yes").glob("*.wav"))))
    assert "export" in out
    for name in ("model_data.cc", "model_data.h", "model_settings.h", "op_resolver.h"):
        assert (tmp_path / "export" / name).is_file(), name
    # The shipped TinySpeech-M exports on a machine without its dataset (no ../shared here).
    assert not (tmp_path.parent / "shared").exists()
    out = _run(wheel_venv, tmp_path, "export-tflite", str(package / "pretrained" / "tinyspeech_m"),
               "--out", "shipped")
    assert "golden.wav of the run" in out and (tmp_path / "shipped" / "golden.h").is_file()
    assert _files(package) == installed, "the installed package was written into"
