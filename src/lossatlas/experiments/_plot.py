"""Figure helpers shared by the experiment kinds (matplotlib is imported on first use)."""

from __future__ import annotations

from pathlib import Path

from ..data import atomic_path
from ._kind import Figure

LABEL_COLORS = {"global_minimum": "tab:green", "minimum": "tab:olive", "degenerate_minimum": "tab:cyan",
                "strict_saddle": "tab:red", "non_strict_saddle": "tab:orange", "undetermined": "tab:gray",
                "not_critical": "black", "error": "magenta"}


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, figdir: Path, name: str, caption: str, has_data: bool = True) -> Figure:
    """Write a figure atomically as ``figdir/name.png``, close it, and return its :class:`Figure`."""
    plt = pyplot()
    path = Path(figdir) / f"{name}.png"
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Figure(name, path, caption, has_data)


def no_data(ax, reason: str) -> None:
    """Mark axes that have nothing to draw, with the reason."""
    ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def width_key(w):
    """Sort key of stored widths: numbers by value, then strings."""
    try:
        return (0, int(w))
    except (TypeError, ValueError):
        return (1, str(w))
