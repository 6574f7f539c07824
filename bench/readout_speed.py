"""Benchmark: the readout on cached features against the paper's protocol.

The ICLR 2020 authors run the frozen encoder on every mini-batch of every epoch. Because the
encoder is frozen, its features can be computed once and reused; this script trains the same
readout (same data, seed and schedule) both ways, and prints the wall time of each, their ratio,
and the SPC of both readouts on held-out scenes, so any cost of the cache (half-precision storage)
shows up beside its gain.

    make bench                      # default: VGG16 (half width), 96 px, 320 images, 15 epochs
    .venv/bin/python bench/readout_speed.py --arch resnet18 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from posinfo.cache import write_text
from posinfo.data.scenes import SyntheticScenes
from posinfo.data.targets import position_map
from posinfo.metrics.position import score
from posinfo.models.encoders import build_encoder
from posinfo.probe.features import concat_levels, multilevel_features
from posinfo.probe.readout import ReadoutTraining, fit_readout, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vgg16")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--n-train", type=int, default=320)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--pattern", default="H")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("_build/bench/readout_speed.json"),
                        help="where to write the measurement as JSON (the book's benchmark page reads it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width = args.width if args.arch.startswith("vgg") else 1.0
    encoder = build_encoder(args.arch, "random", width=width)
    train = SyntheticScenes(args.n_train, args.size, seed=20_000).tensors()[0]
    test = SyntheticScenes(args.n_test, args.size, seed=30_000).tensors()[0]
    grid, gt = args.size // 8, position_map(args.pattern, args.size)
    protocol = ReadoutTraining(epochs=args.epochs)

    start = time.perf_counter()
    cached = multilevel_features(encoder, train, grid)
    readout = fit_readout(cached, gt, protocol, seed=0)
    t_cached = time.perf_counter() - start
    spc_cached = score(predict(readout, multilevel_features(encoder, test, grid), args.size), gt).spc

    start = time.perf_counter()
    online = fit_readout(train, gt, protocol, seed=0,
                         transform=lambda x: concat_levels(encoder(x), grid))
    t_online = time.perf_counter() - start
    with torch.no_grad():
        spc_online = score(predict(online, concat_levels(encoder(test), grid), args.size), gt).spc

    print(f"{args.arch} (width {width}, random weights), {args.size} px, {args.n_train} images, "
          f"{args.epochs} epochs, pattern {args.pattern}, {args.threads} threads")
    print(f"cached features (computed once): {t_cached:8.1f} s   SPC {spc_cached:.3f}")
    print(f"encoder every epoch (paper):     {t_online:8.1f} s   SPC {spc_online:.3f}")
    print(f"speed-up: {t_online / t_cached:.1f}x")
    setting = (f"{args.arch} (width {width}, random weights), {args.size} px, {args.n_train} images, {args.epochs} epochs, "
               f"pattern {args.pattern}, {args.threads} threads")
    rows = [dict(readout="cached features (computed once)", seconds=round(t_cached, 1), SPC=round(spc_cached, 3)),
            dict(readout="encoder every epoch (paper)", seconds=round(t_online, 1), SPC=round(spc_online, 3))]
    write_text(args.out, json.dumps(dict(setting=setting, rows=rows, speedup=t_online / t_cached), indent=2))


if __name__ == "__main__":
    main()
