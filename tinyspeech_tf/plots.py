"""Matplotlib on the file-only backend, figures saved atomically (shared by every plot)."""

from __future__ import annotations

import os
from pathlib import Path


def figure(size: tuple[float, float], cols: int = 1):
    """A figure and its axes on the Agg backend (no display on CI or headless machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, cols, figsize=size)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save atomically (temp file, then rename) and release the figure."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    # Per process: several workers (explore) may rewrite the same plot at once.
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
