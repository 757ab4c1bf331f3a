"""Atomic file output shared by every stage that writes artifacts, the paths they show, and
the generated blocks they write into hand-written docs.

Why: an interrupted run, export or report must never leave half a file where firmware, a
resumed run or a reader would pick it up, so everything is written to a temporary file beside
the target and renamed over it (a rename is atomic on one file system).
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyspeech_tf.errors import UserError


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` via a temp file and a rename;
    parent folders are created, and the temp file is removed if anything fails."""
    replace_files({path: data})


def replace_files(files: dict[str | os.PathLike, bytes | str]) -> None:
    """Write several files as one set: every one to a temp file beside its target first
    (folders created), then all renamed in one go; if any write fails, every temp file is
    removed and no target has changed. Why: firmware built from a mix of two exports'
    headers (one new file, four old) fails in confusing ways, or not at all."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            staged.append((tmp, path))
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()


def write_report(path: str | os.PathLike, report: dict, markdown: str) -> None:
    """A generated report as ``path``.json (the figures) and ``path``.md (their table), each
    written atomically; ``path`` has no suffix."""
    import json

    path = Path(path)
    write_atomic(path.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    write_atomic(path.with_suffix(".md"), markdown)


def command_line(args) -> str:
    """The ``tinyspeech`` command that ``args`` were parsed from (reports quote it)."""
    import shlex

    return " ".join(["tinyspeech", *(shlex.quote(a) for a in getattr(args, "_argv", []))])


def display_path(path: str | os.PathLike) -> str:
    """A path for banners, reports and manifests: as given if relative, else relative to the
    working directory, else only its name, so no file records this machine's layout.

    Deliberately independent of where the package is installed (a site-packages install has no
    repository around it).
    """
    text = os.fspath(path)
    if not os.path.isabs(text):
        return Path(os.path.normpath(text)).as_posix()
    p = Path(text).resolve()
    cwd = Path.cwd().resolve()
    if cwd.parent != cwd and p.is_relative_to(cwd):  # never relative to "/"
        return p.relative_to(cwd).as_posix()
    return p.name


def replace_marked(text: str, start: str, end: str, block: str, hint: str) -> str:
    """``text`` with everything strictly between the markers ``start`` and ``end`` replaced
    by ``block``: how generated figures enter hand-written docs. ``hint`` ends the one-line
    error when the markers are not exactly one ``start`` followed by one ``end``."""
    first, last = text.find(start), text.find(end)
    if first < 0 or last < first or text.count(start) != 1 or text.count(end) != 1:
        raise UserError(f"README: needs exactly one {start} followed by one {end} {hint}")
    return f"{text[:first + len(start)]}\n{block.strip()}\n{text[last:]}"
