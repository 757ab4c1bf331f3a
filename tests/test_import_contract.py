"""The import contract of `.importlinter` (checked by `make lint`) holds, and it can fail: a
deferred import inside a function that goes up the stages breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter")], cwd=root,
                          env=env, capture_output=True, text=True)


def test_every_top_level_module_has_a_stage():
    """A module the contract does not name would escape it."""
    text = (REPO / ".importlinter").read_text()
    for path in sorted((REPO / "tinyspeech_tf").iterdir()):
        name = path.stem if path.suffix == ".py" else path.name
        if name.startswith("__") or not (path.suffix == ".py" or (path / "__init__.py").exists()):
            continue
        assert f"tinyspeech_tf.{name}\n" in text or f"tinyspeech_tf.{name} " in text, name


def test_contract_holds_and_catches_a_deferred_upward_import(tmp_path):
    shutil.copytree(REPO / "tinyspeech_tf", tmp_path / "tinyspeech_tf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout[-2000:] + kept.stderr[-2000:]
    assert "1 kept, 0 broken" in kept.stdout
    # The zoo reaching up into training, deferred inside a function as the CLI's lazy imports
    # are: the contract must see it.
    with (tmp_path / "tinyspeech_tf" / "zoo" / "profile.py").open("a") as f:
        f.write("\n\ndef _violation():\n    from tinyspeech_tf.train import train\n\n"
                "    return train\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    assert "BROKEN" in broken.stdout and "tinyspeech_tf.zoo.profile -> tinyspeech_tf.train" \
        in broken.stdout, broken.stdout[-2000:]
