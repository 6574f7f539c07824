import math

import numpy as np
import pytest
import torch
from posinfo.data.targets import position_map
from posinfo.metrics.position import mae_per_image, score, spearman_per_image
from scipy import stats


def test_perfect_and_reversed_predictions():
    gt = position_map("G", 16)
    s = score(torch.stack([gt, 1 - gt]), gt)
    assert s.n_images == 2 and s.n_constant == 0
    assert s.spc == pytest.approx(0.0, abs=1e-9)  # +1 and -1 average to 0
    assert spearman_per_image(gt[None], gt)[0] == pytest.approx(1.0)


def test_matches_scipy_with_ties():
    gt = position_map("H", 12)  # many ties: constant columns
    pred = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0))
    ours = spearman_per_image(pred, gt)
    ref = [stats.spearmanr(p.flatten().numpy(), gt.flatten().numpy()).statistic for p in pred]
    assert np.allclose(ours, ref)


def test_constant_prediction_is_undefined_and_counted():
    gt = position_map("H", 8)
    pred = torch.stack([torch.full((8, 8), 0.5), gt])
    s = score(pred, gt)
    assert s.n_constant == 1
    assert s.spc == pytest.approx(1.0)  # the mean over defined images only
    assert s.spc_paper == pytest.approx(0.5)  # the paper's convention: undefined counts as 0
    all_constant = score(torch.full((2, 8, 8), 0.3), gt)
    assert math.isnan(all_constant.spc) and all_constant.spc_paper == 0.0


def test_mae():
    gt = torch.zeros(4, 4)
    pred = torch.stack([torch.ones(4, 4), torch.full((4, 4), 0.25)])
    assert np.allclose(mae_per_image(pred, gt), [1.0, 0.25])
    assert score(pred, gt).mae == pytest.approx(0.625)
    assert np.allclose(mae_per_image(pred, pred), 0.0)
