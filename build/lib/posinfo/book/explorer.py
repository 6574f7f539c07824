"""An explorer of chapter 1's readouts: choose the source (encoder), pattern, test input and
readout, and see the predicted map beside its target and its error.

In a live notebook :func:`explorer` is an ipywidgets control; the built HTML keeps no widget
state, so the chapter also shows :func:`error_gallery`, a static figure of the same maps.
"""

from __future__ import annotations

from collections.abc import Mapping

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure
from torch import Tensor

from posinfo.data import targets
from posinfo.metrics.position import score

# (source, readout, pattern, test input) -> predicted map [S, S] of the first test image
Gallery = Mapping[tuple[str, str, str, str], Tensor]


def _choices(gallery: Gallery, position: int) -> list[str]:
    """The values of one key position of the gallery, in first-seen order."""
    return list(dict.fromkeys(key[position] for key in gallery))


def _panel_row(axes, image: Tensor, target: Tensor, pred: Tensor) -> None:
    """One row of four panels: input ``[3, S, S]``, target, prediction and |error| ``[S, S]``."""
    s = score(pred[None], target)
    panels = [(image.permute(1, 2, 0).clamp(0, 1).numpy(), None, "input"),
              (target.numpy(), "viridis", "target"),
              (pred.numpy(), "viridis", f"prediction (SPC {s.spc_paper:.2f})"),
              ((pred - target).abs().numpy(), "magma", f"|error| (MAE {s.mae:.2f})")]
    for ax, (data, cmap, title) in zip(axes, panels):
        ax.imshow(data, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def prediction_figure(gallery: Gallery, inputs: Mapping[str, Tensor], source: str, readout: str,
                      pattern: str, test_input: str) -> Figure:
    """One readout's map on the first image of one test input, with its target and error.

    Args:
        gallery: Predicted maps, keyed as :data:`Gallery`.
        inputs: Test input name -> images ``[N, 3, S, S]`` (the first one is shown).
    """
    pred = gallery[(source, readout, pattern, test_input)]
    fig, axes = plt.subplots(1, 4, figsize=(7.2, 2.0))
    _panel_row(axes, inputs[test_input][0], targets.position_map(pattern, pred.shape[-1]), pred)
    fig.suptitle(f"{source}, {readout} readout, pattern {pattern}, {test_input} input", fontsize=9)
    fig.patch.set_facecolor("white")
    return fig


def error_gallery(gallery: Gallery, inputs: Mapping[str, Tensor], source: str, readout: str,
                  pattern: str) -> Figure:
    """The static view: one readout's map and error on every test input, a row each."""
    names = [t for t in _choices(gallery, 3) if (source, readout, pattern, t) in gallery]
    fig, axes = plt.subplots(len(names), 4, figsize=(7.2, 1.9 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        pred = gallery[(source, readout, pattern, name)]
        _panel_row(row, inputs[name][0], targets.position_map(pattern, pred.shape[-1]), pred)
        row[0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"{source}, {readout} readout, pattern {pattern}", fontsize=9)
    fig.patch.set_facecolor("white")
    return fig


def explorer(gallery: Gallery, inputs: Mapping[str, Tensor]):
    """Dropdowns for source, readout, pattern and test input, redrawing :func:`prediction_figure`.

    Returns:
        An ``ipywidgets.VBox`` (controls above the figure).
    """
    names = ("source", "readout", "pattern", "test_input")
    boxes = {n: widgets.Dropdown(options=_choices(gallery, i), description=n.replace("_", " "))
             for i, n in enumerate(names)}
    out = widgets.Output()

    def redraw(_: object = None) -> None:
        key = tuple(boxes[n].value for n in names)
        with out:
            out.clear_output(wait=True)
            if key in gallery:
                fig = prediction_figure(gallery, inputs, *key)
                display(fig)
                plt.close(fig)
            else:
                print("not run in this profile:", ", ".join(key))

    for box in boxes.values():
        box.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(boxes.values())[:2]), widgets.HBox(list(boxes.values())[2:]), out])
