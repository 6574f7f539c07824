import math

import pytest
import torch

from posinfo.region_miou import IGNORE, confusion, miou, region_columns, region_mious


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
