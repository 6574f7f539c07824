"""Benchmark: training steps in channels-last against the default (NCHW) memory layout.

The book's encoders take images of at least ``CHANNELS_LAST_MIN_SIDE`` px in channels-last
layout (:func:`posinfo.models.encoders.preferred_layout`), and chapter 6's ResNets always. This
script times one forward and backward step of each network the book trains, both ways, on the
same weights and batch, and prints the time per step, the ratio and the largest difference of
the outputs (rounding only), so the threshold can be checked on any machine.

    make bench
    .venv/bin/python bench/layout_speed.py --threads 1 --steps 10
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from posinfo.cache import write_text
from posinfo.models.augshift import NetSpec, build_classifier
from posinfo.models.encoders import MultiLevelEncoder


def _cases() -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]]:
    """Name -> (a network returning one tensor, a batch), as the chapters train them."""
    torch.manual_seed(0)
    # The VGG trunks and the ResNet's layers themselves, without the encoders' own layout switch.
    half, eighth = (MultiLevelEncoder("vgg16_bn", w).trunk for w in (0.5, 0.125))
    resnet = build_classifier(NetSpec("resnet18", 10, 0.125, "cifar"))
    return {
        "vgg16_bn x0.5, 32 px (chapter 1 pretraining)": (half, torch.rand(64, 3, 32, 32)),
        "vgg16_bn x0.125, 64 px (chapter 4 classifier)": (eighth, torch.rand(64, 3, 64, 64)),
        "vgg16_bn x0.125, 196 px (chapter 4 dense nets)": (eighth, torch.rand(8, 3, 196, 196)),
        "resnet18 x0.125, 32 px (chapter 6)": (nn.Sequential(resnet.encoder, resnet.head),
                                               torch.rand(64, 3, 32, 32)),
    }


def _time(step: Callable[[], torch.Tensor], steps: int) -> float:
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("_build/bench/layout_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {}
    for name, (net, x) in _cases().items():
        fast = x.contiguous(memory_format=torch.channels_last)

        def step(batch: torch.Tensor) -> torch.Tensor:
            out = net(batch)
            out.float().sum().backward()
            return out.detach()

        plain_s, last_s = _time(lambda: step(x), args.steps), _time(lambda: step(fast), args.steps)
        diff = float((step(x) - step(fast)).abs().max())
        report[name] = dict(nchw_ms=round(1000 * plain_s, 1), channels_last_ms=round(1000 * last_s, 1),
                            speedup=round(plain_s / last_s, 2), max_abs_difference=diff)
        print(f"{name}: NCHW {1000 * plain_s:.0f} ms, channels-last {1000 * last_s:.0f} ms "
              f"per step ({plain_s / last_s:.2f}x); outputs differ by {diff:.1e}")
    write_text(args.out, json.dumps(dict(threads=args.threads, cases=report), indent=2) + "\n")


if __name__ == "__main__":
    main()
