"""Plot helpers shared by every stage: mplhep style, headless backend, atomic PNG writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and batch nodes have no display

import matplotlib.pyplot as plt
import mplhep

from offline.artifacts import atomic_path

plt.style.use(mplhep.style.CMS)


def new_figure(*args, **kwargs):
    """``plt.subplots`` in the project style."""
    return plt.subplots(*args, **kwargs)


def save_figure(fig, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Save a figure as PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
