"""Figures shared by the chapters (matplotlib / seaborn), readable on light and dark pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor


def map_grid(maps: Mapping[str, Sequence[Tensor]], columns: Sequence[str], *,
             image: Tensor | None = None, cell: float = 1.4) -> Figure:
    """A grid of position maps: one row per entry of ``maps``, one column per label of ``columns``.

    Args:
        maps: Row label to maps ``[H, W]`` (values in [0, 1]), one per column.
        columns: Column titles (e.g. the patterns).
        image: Optional input image ``[3, H, W]`` shown as a first column.
        cell: Size of one panel in inches.

    Returns:
        The figure.
    """
    extra = 0 if image is None else 1
    fig, axes = plt.subplots(len(maps), len(columns) + extra, squeeze=False,
                             figsize=(cell * (len(columns) + extra), cell * len(maps)))
    for r, (label, row) in enumerate(maps.items()):
        if image is not None:
            axes[r, 0].imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        for c, m in enumerate(row):
            axes[r, c + extra].imshow(m.numpy(), cmap="viridis", vmin=0, vmax=1)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    for c, title in enumerate((["input"] if extra else []) + list(columns)):
        axes[0, c].set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.patch.set_facecolor("white")
    return fig


def image_panels(fig: Figure) -> Figure:
    """Finish a figure of image panels: no ticks on any panel, a white background (readable on
    dark pages too), and a tight layout."""
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig
