"""Curves of training history (losses, D outputs, in-training scores) as PNG plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ganlab.io import atomic_path


def save_curves(
    history: pd.DataFrame,
    labels: Mapping[str, str],
    path: str | Path,
    title: str,
    ylabel: str,
    x: str = "step",
) -> None:
    """Line plot of history columns (column -> legend label) against column `x`, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for column, label in labels.items():
        axes.plot(history[x], history[column], label=label, linewidth=1.2, marker=".")
    axes.set_xlabel(x)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
