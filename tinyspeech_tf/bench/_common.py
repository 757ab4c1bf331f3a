"""Small helpers every part of ``tinyspeech bench`` shares: progress lines and number text."""

from __future__ import annotations

import os


def rel(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory (as results quote it), else as given."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def log(message: str) -> None:
    """A progress line, flushed: a bench runs for up to hours and is watched in a log."""
    print(f"[bench] {message}", flush=True)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def fmt_millions(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}M"
