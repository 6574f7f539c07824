"""The book's "synthetic" encoders: VGG16 and ResNet trained on the generated scenes.

No pretrained weights can be downloaded in the default profile, so the book trains its own
encoders once, on the classification task of :mod:`posinfo.scenes` (which of ten shapes is in the
image), and caches them: every chapter then reads position out of the same networks. The head is
global average pooling and one linear layer (VGG's 4096-wide fully connected layers would dominate
the cost and play no part in the probes, which read the convolutional features only).
Training is checkpointed after every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo.atomic import torch_save
from posinfo.encoders import MultiLevelEncoder, freeze, set_padding
from posinfo.features import fingerprint
from posinfo.scenes import NUM_CLASSES, SyntheticScenes


# Bump when the scenes or the training code change what a configuration produces.
CACHE_VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    """How a synthetic encoder is trained (Adam, cross-entropy, batches of fresh scenes)."""

    arch: str
    width: float = 1.0
    padding: str = "zero"
    image_size: int = 32
    object_scale: tuple[float, float] = (0.5, 0.9)
    n_train: int = 4000
    n_val: int = 500
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0


class SceneClassifier(nn.Module):
    """An encoder with a global-average-pooling and linear head over its last level."""

    def __init__(self, encoder: MultiLevelEncoder, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.channels[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` to class logits ``[B, num_classes]``."""
        return self.head(self.encoder(x)[-1].mean(dim=(2, 3)))


def _scene_tensors(cfg: PretrainConfig, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Images ``[n, 3, S, S]`` and labels ``[n]`` of the classification task."""
    images, labels, _, _ = SyntheticScenes(n, cfg.image_size, seed,
                                           object_scale=cfg.object_scale).tensors()
    return images, labels


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, device: torch.device | str = "cpu",
             batch_size: int = 128) -> float:
    """Top-1 accuracy of a classifier on ``images [N, 3, H, W]`` with ``labels [N]``."""
    model.eval()
    hits = sum((model(x.to(device)).argmax(1).cpu() == y).sum().item()
               for x, y in zip(images.split(batch_size), labels.split(batch_size)))
    return hits / len(labels)


def _train_epoch(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, cfg: PretrainConfig,
                 epoch: int, device: torch.device | str) -> float:
    """One pass over ``cfg.n_train`` scenes drawn afresh for this epoch; returns the mean loss."""
    images, labels = _scene_tensors(cfg, cfg.n_train, seed=1_000_000 + 1000 * cfg.seed + epoch)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
    model.train()
    total = 0.0
    for idx in order.split(cfg.batch_size):
        loss = F.cross_entropy(model(images[idx].to(device)), labels[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
    return total / len(images)


def train_scene_classifier(cfg: PretrainConfig, checkpoint: Path | None = None,
                           device: torch.device | str = "cpu", progress: bool = True
                           ) -> tuple[SceneClassifier, dict]:
    """Train a classifier on the scenes, resuming from ``checkpoint`` if a partial one exists.

    Every epoch sees ``cfg.n_train`` new scenes (the generator is cheap, so the network never
    sees the same scene twice); Adam with a cosine learning-rate decay over all steps.

    Args:
        cfg: The training configuration.
        checkpoint: Where the state after each epoch is saved atomically (``None``: nowhere).
        device: Where training runs.
        progress: Show a progress bar over epochs.

    Returns:
        The trained classifier and a record of its training (losses, validation accuracy, time).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        encoder = set_padding(MultiLevelEncoder(cfg.arch, cfg.width), cfg.padding)
        model = SceneClassifier(encoder).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-cfg.n_train // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    record = {"config": asdict(cfg), "losses": [], "seconds": 0.0}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        record = state["record"]
    bar = tqdm(range(len(record["losses"]), cfg.epochs), desc=f"training {cfg.arch}",
               disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        record["losses"].append(_train_epoch(model, opt, sched, cfg, epoch, device))
        record["seconds"] += time.perf_counter() - start
        if checkpoint is not None:
            torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "record": record}, checkpoint)
    val_images, val_labels = _scene_tensors(cfg, cfg.n_val, seed=2_000_000 + cfg.seed)
    record["val_accuracy"] = accuracy(model, val_images, val_labels, device)
    return model.eval(), record


def synthetic_encoder(cfg: PretrainConfig, cache_dir: str | Path, *, padding: str = "zero",
                      input_norm: str = "none", device: torch.device | str = "cpu",
                      progress: bool = True) -> tuple[MultiLevelEncoder, dict]:
    """The book's encoder trained on the scenes, from the cache or trained now and cached.

    Args:
        cfg: How it is (or was) trained; every field enters the cache key.
        cache_dir: Folder of the cache (shared by every chapter).
        padding: The padding the frozen encoder is used with (trained with ``cfg.padding``).
        input_norm: Input normalisation of the frozen encoder.
        device: Where training runs.
        progress: Show a progress bar.

    Returns:
        The frozen encoder (eval mode, CPU) and its training record.
    """
    key = fingerprint(CACHE_VERSION, *asdict(cfg).values())
    final = Path(cache_dir) / f"encoder-{cfg.arch}-{key}.pt"
    if not final.exists():
        partial = final.with_suffix(".partial.pt")
        model, record = train_scene_classifier(cfg, partial, device, progress)
        torch_save({"encoder": model.encoder.state_dict(), "record": record}, final)
        partial.unlink(missing_ok=True)
    state = torch.load(final, map_location="cpu", weights_only=False)
    encoder = set_padding(MultiLevelEncoder(cfg.arch, cfg.width, input_norm), cfg.padding)
    encoder.load_state_dict(state["encoder"])
    return freeze(set_padding(encoder, padding)), state["record"]
