"""Shared fixtures: the read-only ``../shared`` data and tool requirements.

Tests that need ``../shared`` skip with a clear reason when it is absent; tests that need a
compiler or QEMU skip when it is missing, except in CI (``CI=true``) where a missing tool is a
failure, so CI can never go green by silently skipping the firmware checks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_tools(*tools: str) -> None:
    """Skip (locally) or fail (in CI) unless every tool is on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    if not missing:
        return
    msg = f"required tool(s) not on PATH: {', '.join(missing)} (install them, see .ci/run)"
    if in_ci():
        pytest.fail(f"CI=true and {msg}")
    pytest.skip(msg)


def require_shared(*parts: str) -> Path:
    """Path under ../shared, or skip the test saying which file is missing."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared data not available: {path.relative_to(REPO_ROOT.parent)} "
                    "is missing (it lives beside the repository checkout)")
    return path


def fails_one_line(argv: list[str], capsys, *fragments: str) -> str:
    """Run the CLI expecting a user error: exit code 2, one stderr line naming the fragments."""
    from tinyspeech_tf import cli

    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require_shared()
