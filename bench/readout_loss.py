"""Benchmark: the readout's loss on the target grid against the same loss without upsampling.

PosENet's output (e.g. 12 x 12 on the default profile's grid) is upsampled bilinearly to the
ground truth (196 x 196) and compared pixel by pixel at every step. Upsampling is linear, so the
same loss and gradient follow from three small matrices (:class:`posinfo.probe.readout.UpsampledMSE`).
This script times a training step both ways at the default and the paper profile's sizes, and
prints the largest difference of the losses and of the gradients (rounding only).

    make bench
    .venv/bin/python bench/readout_loss.py --threads 1 --steps 50
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from posinfo.probe.readout import PosENet, UpsampledMSE

CASES = {"default (184 channels, 14 -> 12 -> 196 px)": (184, 14, 196),
         "paper (1472 channels, 28 -> 26 -> 224 px)": (1472, 28, 224)}


def _step(model: PosENet, x: torch.Tensor, loss_of) -> tuple[float, torch.Tensor]:
    """One forward and backward pass: the loss and the first layer's weight gradient."""
    model.zero_grad()
    loss = loss_of(model.grid_maps(x))
    loss.backward()
    return float(loss.detach()), model.body[0].weight.grad.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, (channels, grid, size) in CASES.items():
        torch.manual_seed(0)
        model, x, target = PosENet(channels), torch.randn(args.batch, channels, grid, grid), torch.rand(size, size)
        upsampled = lambda y: F.mse_loss(  # noqa: E731
            F.interpolate(y[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0],
            target.expand(len(y), -1, -1))
        quadratic = UpsampledMSE(target, (grid - 2, grid - 2))
        times = {}
        for label, loss_of in (("upsampled", upsampled), ("without upsampling", quadratic)):
            start = time.perf_counter()
            for _ in range(args.steps):
                loss, grad = _step(model, x, loss_of)
            times[label] = (time.perf_counter() - start) / args.steps, loss, grad
        (t0, l0, g0), (t1, l1, g1) = times.values()
        print(f"{name}, batch {args.batch}, {args.threads} thread(s): {1000 * t0:.1f} ms -> "
              f"{1000 * t1:.1f} ms per step ({t0 / t1:.1f}x); loss difference {abs(l0 - l1):.1e}, "
              f"largest gradient difference {float((g0 - g1).abs().max() / g0.abs().max()):.1e} (relative)")


if __name__ == "__main__":
    main()
