"""Dense-task scores: saliency (ICLR 2020 Table 5) and segmentation, whole-image or by region
(ICCV 2021 Fig. 3).

- Salient object detection: the maximum F-measure over binarisation thresholds with
  ``beta^2 = 0.3`` (the saliency literature's weighting of precision over recall), and the mean
  absolute error between the predicted map in ``[0, 1]`` and the binary mask.
- Semantic segmentation: the mean intersection over union of the classes, from one confusion
  matrix accumulated over the whole test set (pixels labelled ``ignore_index`` left out), averaged
  over the classes present in the ground truth or the prediction.
- Region mIoU follows the authors' protocol (PROTOCOLS.md, section B): every pixel outside the
  region is set to ``IGNORE`` in both the prediction and the ground truth, one confusion matrix
  is accumulated over the whole set, and the per-class IoUs are averaged over the classes that
  occur. Regions of an image ``W`` columns wide: ``left`` = columns ``< W/2``, ``right`` =
  ``>= W/2``, ``centre`` = ``W/4 <= column < 3W/4``, ``all`` = every column.

``IGNORE`` (255) is the one label for pixels that no loss and no score counts: VOC's object
boundaries, Cityscapes' void classes, pixels outside a scored region.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from posinfo.metrics.position import mae_per_image

IGNORE = 255  # the label of pixels left out of every loss and score
REGIONS: tuple[str, ...] = ("all", "left", "centre", "right")
BETA2 = 0.3
LEVELS = 256  # predictions are binarised at k / 255 for k = 1 .. 255, as with 8-bit maps


def f_beta(precision: Tensor, recall: Tensor, beta2: float = BETA2) -> Tensor:
    """``(1 + beta2) P R / (beta2 P + R)`` elementwise, 0 where ``P = R = 0``."""
    denom = beta2 * precision + recall
    return torch.where(denom > 0, (1 + beta2) * precision * recall / denom.clamp_min(1e-12),
                       torch.zeros_like(denom))


def precision_recall(pred: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Precision and recall of each image at every threshold ``k / 255``, ``k = 1 .. 255``.

    Args:
        pred: Saliency maps ``[N, H, W]`` in ``[0, 1]``.
        mask: Binary ground truth ``[N, H, W]`` (values 0 or 1).

    Returns:
        ``precision, recall``: each ``[N, 255]`` (float64). An image with no pixel predicted
        salient at a threshold has precision 0 there; one with an empty mask has recall 0.
    """
    levels = (pred.detach().double().clamp(0, 1) * (LEVELS - 1)).round().long().flatten(1)
    positive = mask.detach().flatten(1) > 0.5
    offsets = torch.arange(len(levels))[:, None] * LEVELS
    hist = lambda sel: torch.bincount(  # noqa: E731
        (levels + offsets)[sel], minlength=len(levels) * LEVELS)
    tp_hist, fp_hist = (hist(s).view(-1, LEVELS).double() for s in (positive, ~positive))
    tp = tp_hist.flip(1).cumsum(1).flip(1)[:, 1:]  # pixels at level >= k, k = 1 .. 255
    fp = fp_hist.flip(1).cumsum(1).flip(1)[:, 1:]
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), torch.zeros_like(tp))
    recall = tp / positive.sum(1, keepdim=True).double().clamp_min(1)
    return precision, recall


def max_f_measure(pred: Tensor, mask: Tensor, beta2: float = BETA2) -> float:
    """The maximum over thresholds of the F-measure of the mean precision and mean recall.

    Precision and recall are averaged over the images at each threshold, and the F-measure of
    the averages is maximised over the thresholds (the usual "max F" of saliency benchmarks).

    Args:
        pred: Saliency maps ``[N, H, W]`` in ``[0, 1]``.
        mask: Binary ground truth ``[N, H, W]``.
        beta2: The weight ``beta^2`` of precision.
    """
    precision, recall = precision_recall(pred, mask)
    return float(f_beta(precision.mean(0), recall.mean(0), beta2).max())


def saliency_mae(pred: Tensor, mask: Tensor) -> float:
    """Mean absolute error per image between maps ``[N, H, W]`` and masks, averaged."""
    return float(mae_per_image(pred.float(), mask.float()).mean())


def class_map(logits: Tensor) -> Tensor:
    """The arg-max class of every pixel: logits ``[B, K, H, W]`` to ``int64 [B, H, W]``.

    ``max`` over the class dimension gives the same indices as ``argmax`` (the first maximum on
    ties) and is several times faster on the CPU for a few classes.
    """
    return logits.max(1).indices


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int,
                     ignore_index: int = IGNORE) -> Tensor:
    """Pixel counts ``[num_classes, num_classes]`` (int64): rows the true class, columns the
    predicted one, over all pixels of ``pred`` and ``target`` (class indices, any equal shape)
    whose target is not ``ignore_index``."""
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    if ((t < 0) | (t >= num_classes) | (p < 0) | (p >= num_classes)).any():
        raise ValueError(f"class indices must lie in 0..{num_classes - 1} (or be {ignore_index})")
    return torch.bincount(t * num_classes + p, minlength=num_classes**2).view(num_classes, num_classes)


def iou_per_class(confusion: Tensor) -> np.ndarray:
    """Intersection over union of each class, ``[K]`` float64; NaN for a class that appears
    neither in the ground truth nor in the prediction."""
    c = confusion.double()
    inter = c.diagonal()
    union = c.sum(0) + c.sum(1) - inter
    nan = torch.full_like(inter, float("nan"))
    return torch.where(union > 0, inter / union.clamp_min(1), nan).numpy()


def mean_iou(confusion: Tensor) -> float:
    """Mean IoU over the classes that appear (NaN classes left out)."""
    return float(np.nanmean(iou_per_class(confusion)))


def pixel_accuracy(confusion: Tensor) -> float:
    """Share of the counted pixels whose class is predicted right."""
    return float(confusion.diagonal().sum() / confusion.sum().clamp_min(1))


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
    TP / (TP + FP + FN) (:func:`mean_iou`); NaN if no class occurs."""
    return mean_iou(matrix) if matrix.sum() > 0 else float("nan")


def region_mious(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """mIoU over each of ``REGIONS`` for predictions and targets ``[N, H, W]``."""
    return {r: miou(confusion(pred, target, num_classes, r)) for r in REGIONS}
