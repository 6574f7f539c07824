"""Chapter 6 on ImageNet, for those with the data and several GPUs, through torch's launcher::

    torchrun --nproc_per_node=8 -m posinfo.chapters.augshift_imagenet --data-root /data/imagenet \\
        --model augshift --out results/augshift_imagenet.json

``--data-root`` holds ``train/`` and ``val/`` in torchvision's ``ImageFolder`` layout (one folder
per class). Each process trains on its share of the data (``DistributedSampler``, one GPU each);
rank 0 then measures top-1 and Cons.8/Cons.16 on the validation set and writes them as JSON.
The networks are full-width ResNet-18s with the ImageNet stem; shifts are zero-filled.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
from torch import Tensor, nn
from torchvision.datasets import ImageFolder

from posinfo.data.datasets import DatasetNotFoundError
from posinfo.metrics.shift import consistency
from posinfo.models.augshift import (MODELS, Classifier, NetSpec, TrainSpec, augshift_loss,
                                    build_classifier)

_LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module's docstring)."""
    p = argparse.ArgumentParser(prog="python -m posinfo.chapters.augshift_imagenet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--lam", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--batch-size", type=int, default=256, help="per GPU")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("augshift_imagenet.json"))
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0 or args.lam < 0:
        p.error("--epochs and --batch-size must be >= 1, --lr > 0 and --lam >= 0")
    return args


def check_environment(args: argparse.Namespace) -> None:
    """Clear errors, before any work, for missing data, a missing launcher or missing GPUs."""
    for split in ("train", "val"):
        folder = args.data_root / split
        if not folder.is_dir() or not any(folder.iterdir()):
            raise DatasetNotFoundError(
                f"ImageNet {split} images not found in {folder}: put the ILSVRC-2012 {split} set "
                f"there in ImageFolder layout (one sub-folder per class)", "imagenet", folder)
    missing = [v for v in _LAUNCHER_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(f"{missing} not set: start this module with torchrun, e.g. "
                           "torchrun --nproc_per_node=<GPUs> -m posinfo.chapters.augshift_imagenet ...")
    if not torch.cuda.is_available():
        raise RuntimeError("the ImageNet run needs CUDA GPUs (one per process)")


def _loaders(args: argparse.Namespace):
    """Distributed training loader (two random crops per image) and the validation set."""
    aug = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToImage(),
                     T.ToDtype(torch.float32, scale=True)])
    train = ImageFolder(args.data_root / "train", transform=lambda im: (aug(im), aug(im)))
    val = ImageFolder(args.data_root / "val", transform=T.Compose(
        [T.Resize(256), T.CenterCrop(224), T.ToImage(), T.ToDtype(torch.float32, scale=True)]))
    sampler = torch.utils.data.distributed.DistributedSampler(train, seed=args.seed)
    loader = torch.utils.data.DataLoader(train, args.batch_size, sampler=sampler,
                                         num_workers=args.workers, pin_memory=True, drop_last=True)
    return loader, sampler, val


class WithFeatures(nn.Module):
    """A classifier whose forward returns its logits and pooled features, so that everything the
    AugShift loss uses passes through one call of the module DistributedDataParallel wraps (a
    call to ``model.module.features`` would bypass DDP, and the ranks' gradients would never be
    averaged)."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``[B, 3, H, W]`` to logits ``[B, K]`` and pooled features ``[B, D]``."""
        z = self.classifier.features(x)
        return self.classifier.head(z), z


def train_step(model: nn.Module, batch: tuple, opt: torch.optim.Optimizer, spec: TrainSpec,
               device: torch.device) -> float:
    """One step of DDP training on ``((x1, x2), y)``, two random crops ``[B, 3, H, W]`` of each
    image and the labels ``[B]``; ``model`` is DDP around :class:`WithFeatures`. AugShift's two
    views go through one forward call (one batch of ``2B``), so DDP syncs every gradient; its
    BatchNorm layers therefore normalise the two views together, where the CIFAR path of
    :mod:`posinfo.models.augshift` runs them as two batches.

    Returns:
        The loss.
    """
    (x1, x2), y = batch
    x1, x2, y = x1.to(device), x2.to(device), y.to(device)
    if spec.method == "standard":
        loss = F.cross_entropy(model(x1)[0], y)
    else:
        logits, z = model(torch.cat([x1, x2]))
        (l1, l2), (z1, z2) = logits.chunk(2), z.chunk(2)
        loss, _ = augshift_loss(l1, l2, z1, z2, y, spec.lam)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def _epoch(model, loader, opt, spec: TrainSpec, device: torch.device) -> None:
    """One epoch of DDP training; each item holds two random crops of one image."""
    for batch in loader:
        train_step(model, batch, opt, spec, device)


def _evaluate(model, val, args: argparse.Namespace, device: torch.device) -> dict:
    """Top-1 and Cons.8/Cons.16 (in %) over the validation set, batch by batch."""
    loader = torch.utils.data.DataLoader(val, 256, num_workers=args.workers)
    totals = {"top1": 0.0, "cons8": 0.0, "cons16": 0.0}
    with torch.no_grad():
        for k, (x, y) in enumerate(loader):
            x = x.to(device)
            totals["top1"] += float((model(x).argmax(1).cpu() == y).sum())
            for s in (8, 16):
                totals[f"cons{s}"] += len(x) * consistency(model, x, s, seed=k, device=device)
    return {"model": args.model, "lam": args.lam,
            **{k: 100 * v / len(val) for k, v in totals.items()}}


def main(argv: Sequence[str] | None = None) -> None:
    """Train one classifier on ImageNet with DDP and write its top-1 and consistency (rank 0)."""
    args = parse_args(argv)
    check_environment(args)
    torch.distributed.init_process_group("nccl")
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    arch, method = MODELS[args.model]
    net = build_classifier(NetSpec(arch, 1000, 1.0, "imagenet"), seed=args.seed).to(device)
    model = torch.nn.parallel.DistributedDataParallel(WithFeatures(net), device_ids=[device.index])
    spec = TrainSpec(method, args.lam, args.epochs, args.batch_size, args.lr)
    loader, sampler, val = _loaders(args)
    opt = torch.optim.SGD(model.parameters(), args.lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        _epoch(model, loader, opt, spec, device)
        sched.step()
    if torch.distributed.get_rank() == 0:
        args.out.write_text(json.dumps(_evaluate(net.eval(), val, args, device), indent=2))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
