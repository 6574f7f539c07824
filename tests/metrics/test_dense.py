
import math

import numpy as np
import pytest
import torch

from posinfo.metrics import dense as tm
from posinfo.metrics.dense import IGNORE, confusion, miou, region_columns, region_mious


def test_f_beta_by_hand():
    p, r = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.5, 0.5, 0.0])
    # (1.3 * 1 * .5) / (.3 * 1 + .5) = .8125; equal P and R give P; P = R = 0 gives 0
    assert tm.f_beta(p, r).tolist() == pytest.approx([0.8125, 0.5, 0.0])


def test_max_f_measure_perfect_and_binary_cases():
    mask = torch.tensor([[[1, 1, 1, 1, 0, 0, 0, 0]]]).float()
    assert tm.max_f_measure(mask.clone(), mask) == pytest.approx(1.0)
    # two of four salient pixels found, no false positive: P = 1, R = .5 -> F = .8125
    half = torch.tensor([[[1, 1, 0, 0, 0, 0, 0, 0]]]).float()
    assert tm.max_f_measure(half, mask) == pytest.approx(0.8125)
    # two hits and two false alarms: P = R = .5
    mixed = torch.tensor([[[1, 1, 0, 0, 1, 1, 0, 0]]]).float()
    assert tm.max_f_measure(mixed, mask) == pytest.approx(0.5)


def test_max_f_measure_picks_the_best_threshold():
    mask = torch.tensor([[[1, 1, 0, 0]]]).float()
    pred = torch.tensor([[[0.9, 0.6, 0.3, 0.0]]])
    # thresholds above .3 and up to .6 give P = R = 1; a constant map gives P = .5, R = 1
    assert tm.max_f_measure(pred, mask) == pytest.approx(1.0)
    flat = torch.full((1, 1, 4), 0.5)
    assert tm.max_f_measure(flat, mask) == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1))


def test_precision_recall_means_over_images():
    mask = torch.tensor([[[1, 0]], [[1, 0]]]).float()
    pred = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # the second image finds nothing
    precision, recall = tm.precision_recall(pred, mask)
    assert precision.shape == (2, 255)
    assert precision[:, -1].tolist() == [1.0, 0.0] and recall[:, -1].tolist() == [1.0, 0.0]
    assert tm.max_f_measure(pred, mask) == pytest.approx(0.5)


def test_saliency_mae():
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert tm.saliency_mae(torch.full((1, 2, 2), 0.5), mask) == pytest.approx(0.5)
    assert tm.saliency_mae(mask, mask) == 0.0


def test_confusion_matrix_and_miou_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 1, 2]])
    conf = tm.confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 2 / (2 + 3 - 2) = 2/3; class 2: 1 / (2 + 1 - 1) = 1/2
    assert tm.iou_per_class(conf) == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert tm.mean_iou(conf) == pytest.approx(0.5)
    assert tm.pixel_accuracy(conf) == pytest.approx(4 / 6)


def test_miou_leaves_out_absent_classes():
    target = torch.tensor([0, 0, 1])
    conf = tm.confusion_matrix(target.clone(), target, 4)
    iou = tm.iou_per_class(conf)
    assert iou[:2].tolist() == [1.0, 1.0] and np.isnan(iou[2:]).all()
    assert tm.mean_iou(conf) == 1.0


def test_confusion_matrix_rejects_bad_classes():
    with pytest.raises(ValueError, match="class indices"):
        tm.confusion_matrix(torch.tensor([5]), torch.tensor([0]), 3)


def test_region_columns_follow_the_protocol():
    assert region_columns("left", 8).tolist() == [True] * 4 + [False] * 4
    assert region_columns("right", 8).tolist() == [False] * 4 + [True] * 4
    assert region_columns("centre", 8).tolist() == [False] * 2 + [True] * 4 + [False] * 2
    assert region_columns("all", 8).all()
    with pytest.raises(ValueError, match="unknown region"):
        region_columns("top", 8)


def _hand_case():
    # one image 1 x 8; classes 0, 1, 2
    target = torch.tensor([[[0, 0, 1, 1, 1, 2, 2, IGNORE]]])
    pred = torch.tensor([[[0, 1, 1, 1, 0, 2, 0, 2]]])
    return pred, target


def test_miou_on_hand_checked_masks():
    pred, target = _hand_case()
    # all (last pixel ignored): class 0: TP 1, FP 2 (cols 4, 6), FN 1 -> 1/4
    # class 1: TP 2, FP 1, FN 1 -> 2/4; class 2: TP 1, FP 0, FN 1 -> 1/2
    scores = region_mious(pred, target, 3)
    assert scores["all"] == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    # left (cols 0-3): class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2 absent
    assert scores["left"] == pytest.approx((0.5 + 2 / 3) / 2)
    # right (cols 4-7, last ignored): class 0: FP 2 -> 0; class 1: FN 1 -> 0; class 2: 1/2
    assert scores["right"] == pytest.approx(0.5 / 3)
    # centre (cols 2-5): class 0: FP 1 -> 0; class 1: TP 2, FN 1 -> 2/3; class 2: TP 1 -> 1
    assert scores["centre"] == pytest.approx((0 + 2 / 3 + 1) / 3)


def test_one_confusion_matrix_over_the_set():
    pred, target = _hand_case()
    both = confusion(torch.cat([pred, pred]), torch.cat([target, target]), 3)
    assert torch.equal(both, 2 * confusion(pred, target, 3))
    assert confusion(pred, target, 3).sum() == 7  # the ignored pixel is not counted


def test_classes_never_seen_are_left_out_and_empty_is_nan():
    m = torch.zeros(4, 4, dtype=torch.long)
    m[0, 0], m[1, 1] = 5, 3
    assert miou(m) == 1.0
    assert math.isnan(miou(torch.zeros(3, 3, dtype=torch.long)))
