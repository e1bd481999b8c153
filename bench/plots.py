"""Latency distributions as small PNGs: one cumulative-distribution plot per benchmark."""

from __future__ import annotations

import re
from pathlib import Path


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].lower()).strip("-")


def plot_series(series: list[tuple[str, str, dict[str, list[float]]]], folder: Path) -> list[Path]:
    """Write one PNG per (title, unit, {side: samples}); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for title, unit, sides in series:
        fig, ax = plt.subplots(figsize=(5.6, 3.0), dpi=80)
        for label, samples in sides.items():
            ordered = sorted(samples)
            n = len(ordered)
            if not n:
                continue
            ax.step(ordered, [(i + 1) / n for i in range(n)], where="post", label=f"{label} (n={n})")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        ax.set_ylabel("fraction ≤ x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = folder / f"{_slug(title)}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
