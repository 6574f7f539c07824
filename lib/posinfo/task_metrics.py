"""Scores of the two position-dependent tasks of ICLR 2020 Section 4.2 (Table 5).

- Salient object detection: the maximum F-measure over binarisation thresholds with
  ``beta^2 = 0.3`` (the saliency literature's weighting of precision over recall), and the mean
  absolute error between the predicted map in ``[0, 1]`` and the binary mask.
- Semantic segmentation: the mean intersection over union of the classes, from one confusion
  matrix accumulated over the whole test set (pixels labelled ``ignore_index`` left out), averaged
  over the classes present in the ground truth or the prediction.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from posinfo.metrics import mae_per_image

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


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int,
                     ignore_index: int = 255) -> Tensor:
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
