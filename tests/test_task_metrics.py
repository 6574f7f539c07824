import math

import numpy as np
import pytest
import torch

from posinfo import task_metrics as tm


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
