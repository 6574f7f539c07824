"""A VGG16 encoder-decoder for dense prediction (saliency, segmentation), trained from scratch
with or without zero padding, and cached (ICLR 2020 Section 4.2).

The encoder is :class:`posinfo.models.encoders.MultiLevelEncoder` (torchvision's VGG16 layers, width
scalable, padding switchable). The decoder fuses the five tapped levels like a hypercolumn:
a 1x1 convolution per level, each result resized bilinearly to half the input size, summed,
then BatchNorm, ReLU and a 1x1 convolution to the outputs, resized bilinearly to the input. It
has no spatial kernel, so it adds no border of its own: whatever the network knows about the
border comes from the encoder's padding.

Without padding every 3x3 convolution shrinks its map by two pixels and VGG16's last level is
1x1 at 196 px; each level's map then covers the centre of the image its valid convolutions reach,
and resizing it to the input size stretches it over the whole frame. That is what any dense
network without padding must do to output a map of the input's size (the alternative, padding the
output back, would put back a border); the cost of the stretch is part of what removing padding
costs, and the chapter says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posinfo.cache import Training, fingerprint, supervised_epoch, train_cached
from posinfo.metrics.dense import IGNORE, class_map
from posinfo.models.encoders import MultiLevelEncoder, freeze, set_padding

TASKS: tuple[str, ...] = ("saliency", "segmentation")
CACHE_VERSION = 2  # 2: encoders of large inputs run channels-last (rounding differs)

# Training images ``[N, 3, S, S]`` and targets for one epoch (given the epoch's index):
# saliency masks ``float [N, S, S]`` in {0, 1}, or class maps ``int64 [N, S, S]``.
EpochData = Callable[[int], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DenseConfig:
    """How one dense network is trained (Adam, cosine decay over all steps, like
    :class:`posinfo.models.pretrain.PretrainConfig`); every field enters the cache key.

    Attributes:
        task: ``"saliency"`` (one output, binary cross-entropy) or ``"segmentation"``
            (``num_outputs`` classes, cross-entropy ignoring ``IGNORE``).
        num_outputs: Output channels (1 for saliency, the number of classes otherwise).
        data: A name for the training data (part of the cache key), e.g. ``"scenes"``.
    """

    task: str
    num_outputs: int
    data: str
    arch: str = "vgg16_bn"
    width: float = 1.0
    padding: str = "zero"
    image_size: int = 224
    n_train: int = 320
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3
    decoder_channels: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {list(TASKS)}")
        if self.task == "saliency" and self.num_outputs != 1:
            raise ValueError("a saliency network has one output")


class DenseNet(nn.Module):
    """Encoder and hypercolumn decoder: images ``[B, 3, S, S]`` to logits ``[B, K, S, S]``.

    Args:
        encoder: The multi-level VGG16 (its padding is the network's padding).
        num_outputs: ``K``, the output channels.
        decoder_channels: Channels of each level's 1x1 projection.
    """

    def __init__(self, encoder: MultiLevelEncoder, num_outputs: int, decoder_channels: int = 16) -> None:
        super().__init__()
        self.encoder = encoder
        self.lateral = nn.ModuleList(nn.Conv2d(c, decoder_channels, 1) for c in encoder.channels)
        self.head = nn.Sequential(nn.BatchNorm2d(decoder_channels), nn.ReLU(),
                                  nn.Conv2d(decoder_channels, num_outputs, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, S, S]`` in [0, 1] to logits ``[B, K, S, S]``.

        The levels are fused on a grid of half the input's side (VGG16's second level, with
        padding), and the logits resized to the input.
        """
        size, grid = x.shape[-2:], (x.shape[-2] // 2, x.shape[-1] // 2)
        fused = sum(F.interpolate(lat(f), size=grid, mode="bilinear", align_corners=False)
                    for lat, f in zip(self.lateral, self.encoder(x)))
        return F.interpolate(self.head(fused), size=size, mode="bilinear", align_corners=False)


def build_network(cfg: DenseConfig) -> DenseNet:
    """A freshly initialised network of ``cfg`` (seeded by ``cfg.seed``, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        encoder = set_padding(MultiLevelEncoder(cfg.arch, cfg.width), cfg.padding)
        return DenseNet(encoder, cfg.num_outputs, cfg.decoder_channels)


def task_loss(logits: Tensor, target: Tensor, task: str) -> Tensor:
    """Binary cross-entropy (saliency: ``[B, 1, S, S]`` against ``[B, S, S]``) or cross-entropy
    ignoring ``IGNORE`` (segmentation: ``[B, K, S, S]`` against ``int64 [B, S, S]``)."""
    if task == "saliency":
        return F.binary_cross_entropy_with_logits(logits[:, 0], target.float())
    return F.cross_entropy(logits, target.long(), ignore_index=IGNORE)


def _train_epoch(training: Training, cfg: DenseConfig, epoch_data: EpochData, epoch: int,
                 device: torch.device | str) -> None:
    """One pass over the epoch's images in a seeded random order; appends the mean loss to
    ``training.record["losses"]``."""
    images, target = epoch_data(epoch)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
    loss = lambda logits, y: task_loss(logits, y, cfg.task)  # noqa: E731
    training.record["losses"].append(supervised_epoch(training, images, target, loss, order,
                                                      cfg.batch_size, device))

def start_training(cfg: DenseConfig, device: torch.device | str = "cpu") -> Training:
    """A freshly initialised network with Adam and a cosine decay over all steps."""
    model = build_network(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-cfg.n_train // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    return Training(model, opt, sched, record={"config": asdict(cfg), "losses": [], "seconds": 0.0})


def dense_network(cfg: DenseConfig, epoch_data: EpochData, cache_dir: str | Path, *,
                  device: torch.device | str = "cpu", progress: bool = True) -> tuple[DenseNet, dict]:
    """The network of ``cfg`` from the cache, or trained now (resuming a partial run) and cached.

    The cache key is every field of ``cfg`` (``cfg.data`` names the training data) and
    ``CACHE_VERSION``.

    Args:
        cfg: The configuration.
        epoch_data: Gives the training images and targets of each epoch.
        cache_dir: Folder of the cache.
        device: Where training runs.
        progress: Show a progress bar over epochs.

    Returns:
        The network (eval mode, CPU) and its training record (losses per epoch, seconds).
    """
    key = fingerprint(CACHE_VERSION, *asdict(cfg).values())
    state = train_cached(
        Path(cache_dir) / f"dense-{cfg.task}-{cfg.padding}-{key}.pt",
        lambda: start_training(cfg, device),
        lambda training, epoch: _train_epoch(training, cfg, epoch_data, epoch, device),
        cfg.epochs, lambda training: {"model": training.model.state_dict(), "record": training.record},
        desc=f"{cfg.task}, {cfg.padding} padding", progress=progress)
    model = build_network(cfg)
    model.load_state_dict(state["model"])
    return model.eval(), state["record"]


@torch.no_grad()
def predict_dense(model: DenseNet, images: Tensor, task: str, *, batch_size: int = 32,
                  device: torch.device | str = "cpu") -> Tensor:
    """Predictions on ``images [N, 3, S, S]``: saliency maps ``float [N, S, S]`` in [0, 1], or
    class maps ``int64 [N, S, S]`` (the argmax), on the CPU."""
    model = model.to(device).eval()
    out = []
    for batch in images.split(batch_size):
        logits = model(batch.to(device))
        out.append((logits[:, 0].sigmoid() if task == "saliency" else class_map(logits)).cpu())
    return torch.cat(out)


def frozen_encoder(model: DenseNet) -> MultiLevelEncoder:
    """A frozen copy of the network's encoder (eval mode, no gradients), for the readout probes."""
    return freeze(copy.deepcopy(model.encoder).cpu())
