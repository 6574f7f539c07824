"""The two scores of the ICLR 2020 study: Spearman correlation (SPC) and mean absolute error (MAE).

Both are computed per image between the predicted and the ground-truth map and then averaged.
A prediction that is constant over the image (the readout ignoring position, e.g. on an all-black
input) has no defined rank correlation; the paper prints it as .0. Here it is counted and
reported, and averaged as 0 only where the caller asks for the paper's convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from torch import Tensor

CONSTANT_TOL = 1e-6  # a map whose values span less than this is constant (float rounding aside)


@dataclass(frozen=True)
class Scores:
    """Scores of one readout on one test set.

    Attributes:
        spc: Mean Spearman correlation over the images whose prediction is not constant (NaN if
            every prediction is constant).
        spc_paper: The paper's convention: constant predictions count as correlation 0.
        mae: Mean absolute error, averaged over images.
        n_images: Number of test images.
        n_constant: Number of images whose prediction is constant (Spearman undefined).
    """

    spc: float
    spc_paper: float
    mae: float
    n_images: int
    n_constant: int


def spearman_per_image(pred: Tensor, target: Tensor) -> np.ndarray:
    """Spearman correlation of each predicted map with the target.

    Args:
        pred: Predictions of shape ``[N, H, W]``.
        target: The ground truth, ``[H, W]`` (shared) or ``[N, H, W]``.

    Returns:
        A float64 array of shape ``[N]``; NaN where the prediction (or target) is constant.
    """
    p = pred.detach().double().flatten(1).cpu().numpy()
    t = target.detach().double().expand_as(pred).flatten(1).cpu().numpy()
    out = np.full(len(p), np.nan)
    for i, (pi, ti) in enumerate(zip(p, t)):
        if np.ptp(pi) > CONSTANT_TOL and np.ptp(ti) > CONSTANT_TOL:
            out[i] = stats.spearmanr(pi, ti).statistic
    return out


def mae_per_image(pred: Tensor, target: Tensor) -> np.ndarray:
    """Mean absolute error of each map: ``[N, H, W]`` and ``[H, W]`` or ``[N, H, W]`` to ``[N]``."""
    return (pred.detach() - target.detach()).abs().flatten(1).mean(1).double().cpu().numpy()


def score(pred: Tensor, target: Tensor) -> Scores:
    """SPC and MAE of predictions ``[N, H, W]`` against a target ``[H, W]`` or ``[N, H, W]``."""
    rho = spearman_per_image(pred, target)
    constant = np.isnan(rho)
    return Scores(
        spc=float(np.mean(rho[~constant])) if (~constant).any() else float("nan"),
        spc_paper=float(np.mean(np.where(constant, 0.0, rho))),
        mae=float(mae_per_image(pred, target).mean()),
        n_images=len(rho),
        n_constant=int(constant.sum()),
    )
