"""The book's "synthetic" encoders: VGG16 and ResNet trained on the generated scenes.

No pretrained weights can be downloaded in the default profile, so the book trains its own
encoders once, on the classification task of :mod:`posinfo.data.scenes` (which of ten shapes is in the
image), and caches them: every chapter then reads position out of the same networks. The head is
global average pooling and one linear layer (VGG's 4096-wide fully connected layers would dominate
the cost and play no part in the probes, which read the convolutional features only).
Training is checkpointed after every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posinfo.cache import Training, fingerprint, supervised_epoch, train_cached
from posinfo.data.scenes import NUM_CLASSES, SyntheticScenes
from posinfo.models.encoders import MultiLevelEncoder, freeze, set_padding

# Bump when the scenes or the training code change what a configuration produces.
CACHE_VERSION = 2  # 2: encoders of large inputs run channels-last (rounding differs)


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


def _train_epoch(training: Training, cfg: PretrainConfig, epoch: int, device: torch.device | str) -> None:
    """One pass over ``cfg.n_train`` scenes drawn afresh for this epoch; appends the mean loss to
    ``training.record["losses"]``."""
    images, labels = _scene_tensors(cfg, cfg.n_train, seed=1_000_000 + 1000 * cfg.seed + epoch)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
    training.record["losses"].append(supervised_epoch(training, images, labels, F.cross_entropy,
                                                      order, cfg.batch_size, device))

def start_training(cfg: PretrainConfig, device: torch.device | str = "cpu") -> Training:
    """A freshly initialised classifier (seeded by ``cfg.seed``, global RNG untouched) with Adam
    and a cosine learning-rate decay over all steps."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        encoder = set_padding(MultiLevelEncoder(cfg.arch, cfg.width), cfg.padding)
        model = SceneClassifier(encoder).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-cfg.n_train // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    return Training(model, opt, sched, record={"config": asdict(cfg), "losses": [], "seconds": 0.0})


def train_scene_classifier(cfg: PretrainConfig, path: str | Path, device: torch.device | str = "cpu",
                           progress: bool = True) -> dict:
    """Train a classifier on the scenes and cache it at ``path`` (resuming a partial run).

    Every epoch sees ``cfg.n_train`` new scenes (the generator is cheap, so the network never
    sees the same scene twice); Adam with a cosine learning-rate decay over all steps.

    Returns:
        The cache entry: the encoder's weights (``"encoder"``) and a record of its training
        (``"record"``: configuration, losses, seconds, held-out accuracy).
    """
    def finish(training: Training) -> dict:
        val_images, val_labels = _scene_tensors(cfg, cfg.n_val, seed=2_000_000 + cfg.seed)
        training.record["val_accuracy"] = accuracy(training.model, val_images, val_labels, device)
        return {"encoder": training.model.encoder.state_dict(), "record": training.record}

    return train_cached(path, lambda: start_training(cfg, device),
                        lambda training, epoch: _train_epoch(training, cfg, epoch, device),
                        cfg.epochs, finish, desc=f"training {cfg.arch}", progress=progress)


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
    state = train_scene_classifier(cfg, Path(cache_dir) / f"encoder-{cfg.arch}-{key}.pt", device,
                                   progress)
    encoder = set_padding(MultiLevelEncoder(cfg.arch, cfg.width, input_norm), cfg.padding)
    encoder.load_state_dict(state["encoder"])
    return freeze(set_padding(encoder, padding)), state["record"]
