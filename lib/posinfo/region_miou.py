"""Mean intersection over union, over the whole image or one vertical band of it (ICCV 2021 Fig. 3).

A region's score follows the authors' protocol (PROTOCOLS.md, section B): every pixel outside the
region is set to "ignore" in both the prediction and the ground truth, one confusion matrix is
accumulated over the whole set, and the per-class IoUs are averaged over the classes that occur
(a class absent from both prediction and ground truth has an undefined IoU and is left out).

Regions of an image ``W`` columns wide: ``left`` = columns ``< W/2``, ``right`` = ``>= W/2``,
``centre`` = ``W/4 <= column < 3W/4``, ``all`` = every column.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posinfo.task_metrics import confusion_matrix, mean_iou

REGIONS: tuple[str, ...] = ("all", "left", "centre", "right")
IGNORE = 255


def region_columns(region: str, width: int) -> Tensor:
    """Boolean ``[width]``: which columns belong to ``region`` (one of ``REGIONS``)."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {list(REGIONS)}")
    col = torch.arange(width)
    bounds = {"all": (0, width), "left": (0, width / 2), "centre": (width / 4, 3 * width / 4),
              "right": (width / 2, width)}[region]
    return (col >= bounds[0]) & (col < bounds[1])


def confusion(pred: Tensor, target: Tensor, num_classes: int, region: str = "all") -> Tensor:
    """Confusion matrix ``int64 [K, K]`` (rows: truth, columns: prediction) over ``region``.

    Args:
        pred: Predicted classes ``[N, H, W]``.
        target: True classes ``[N, H, W]``; ``IGNORE`` (255) marks pixels not scored.
        num_classes: ``K``.
        region: One of ``REGIONS``; pixels outside it are ignored.
    """
    outside = ~region_columns(region, target.shape[-1]).to(target.device)
    return confusion_matrix(pred, target.masked_fill(outside, IGNORE), num_classes, IGNORE).cpu()


def miou(matrix: Tensor) -> float:
    """Mean IoU of a confusion matrix ``[K, K]``: the mean over the classes that occur of
    TP / (TP + FP + FN) (:func:`posinfo.task_metrics.mean_iou`); NaN if no class occurs."""
    return mean_iou(matrix) if matrix.sum() > 0 else float("nan")


def region_mious(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """mIoU over each of ``REGIONS`` for predictions and targets ``[N, H, W]``."""
    return {r: miou(confusion(pred, target, num_classes, r)) for r in REGIONS}
