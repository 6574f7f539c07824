"""AugShift (Islam, Kowal et al., ICCV 2021, Eq. 1) and the classifiers it is compared with.

Three ResNet-18 classifiers, built and trained the same way:
- ``resnet18``: torchvision's ResNet-18;
- ``blurpool``: the anti-aliased ResNet-18 of Zhang's ``antialiased-cnns`` package;
each trained either the standard way (cross-entropy on one random shift of every image) or with
AugShift: two random shifts ``x1, x2`` of every image through the same network, with
``loss = CE(y1) + CE(y2) + lambda * MSE(z1, z2)`` on the globally average-pooled features ``z``.

For small images the stem can be the usual CIFAR one (a 3x3 convolution of stride 1 and no
max-pool), and every width can be scaled down for CPU budgets; both changes are applied the same
way to every network. Trained networks are cached under a key of everything that affects them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import antialiased_cnns
import torch
import torch.nn.functional as F
import torchvision
from antialiased_cnns.blurpool import BlurPool
from torch import Tensor, nn

from posinfo.cache import Training, fingerprint, train_cached
from posinfo.metrics.shift import predict_classes, random_shifts

ARCHS: tuple[str, ...] = ("resnet18", "blurpool")
METHODS: tuple[str, ...] = ("standard", "augshift")
STEMS: tuple[str, ...] = ("imagenet", "small", "cifar")
# The four classifiers compared (ICCV 2021 Table 2): (architecture, training method).
MODELS: dict[str, tuple[str, str]] = {
    "baseline": ("resnet18", "standard"), "augshift": ("resnet18", "augshift"),
    "blurpool": ("blurpool", "standard"), "augshift+blurpool": ("blurpool", "augshift")}
CACHE_VERSION = 2  # 2: images enter channels-last (rounding differs)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def narrow(module: nn.Module, width: float) -> nn.Module:
    """Scale every channel count of a ResNet (convolutions, batch norms, blur filters and the
    classifier's input) by ``width``, in place; input images keep their 3 channels."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            cin = child.in_channels if child.in_channels == 3 else _scaled(child.in_channels, width)
            setattr(module, name, nn.Conv2d(cin, _scaled(child.out_channels, width),
                                            child.kernel_size, child.stride, child.padding,
                                            bias=child.bias is not None))
        elif isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.BatchNorm2d(_scaled(child.num_features, width)))
        elif isinstance(child, nn.Linear):
            setattr(module, name, nn.Linear(_scaled(child.in_features, width), child.out_features))
        elif isinstance(child, BlurPool):
            child.channels = _scaled(child.channels, width)
            child.filt = child.filt[:child.channels].clone()
        else:
            narrow(child, width)
    return module


def _reinit(model: nn.Module) -> None:
    """torchvision's ResNet initialisation, for layers :func:`narrow` or the stem replaced."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class NetSpec:
    """The architecture of one classifier.

    Attributes:
        arch: ``"resnet18"`` (torchvision) or ``"blurpool"`` (antialiased-cnns).
        num_classes: Number of classes.
        width: Channel multiplier (1.0 is ResNet-18's 64..512 channels).
        stem: ``"imagenet"`` (the 7x7 stride-2 convolution and the network's own pooling),
            ``"small"`` (a 3x3 stride-1 convolution and the network's own pooling: max-pool for
            ResNet-18, max-pool then blur-pool for BlurPool) or ``"cifar"`` (a 3x3 stride-1
            convolution, no pooling); the same change for both architectures.
        filter_size: BlurPool's blur filter size (ignored by ``resnet18``).
    """

    arch: str = "resnet18"
    num_classes: int = 10
    width: float = 1.0
    stem: str = "cifar"
    filter_size: int = 4

    def __post_init__(self) -> None:
        if self.arch not in ARCHS or self.stem not in STEMS or not 0 < self.width <= 4:
            raise ValueError(f"need arch in {ARCHS}, stem in {STEMS} and 0 < width <= 4; got {self}")


class Classifier(nn.Module):
    """A ResNet split into its encoder (up to global average pooling) and its linear head."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.head = resnet.fc
        resnet.fc = nn.Identity()
        self.encoder = resnet

    def features(self, x: Tensor) -> Tensor:
        """Globally pooled features ``z``: ``[B, 3, H, W] -> [B, D]``.

        The images enter in channels-last memory layout: on one CPU thread that trains these
        narrow ResNets about 25% faster at 32 px (measured); the values agree up to rounding.
        """
        return self.encoder(x.contiguous(memory_format=torch.channels_last))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits: ``[B, 3, H, W] -> [B, K]``."""
        return self.head(self.features(x))


def build_classifier(spec: NetSpec, seed: int = 0) -> Classifier:
    """A freshly initialised classifier of ``spec``, the same weights for the same seed."""
    torch.manual_seed(seed)
    if spec.arch == "resnet18":
        net = torchvision.models.resnet18(weights=None, num_classes=spec.num_classes)
    else:
        net = antialiased_cnns.resnet18(pretrained=False, filter_size=spec.filter_size,
                                        num_classes=spec.num_classes)
    if spec.stem != "imagenet":
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    if spec.stem == "cifar":
        net.maxpool = nn.Identity()
    narrow(net, spec.width)
    _reinit(net)
    return Classifier(net)


def augshift_loss(logits1: Tensor, logits2: Tensor, z1: Tensor, z2: Tensor, labels: Tensor,
                  lam: float) -> tuple[Tensor, dict[str, float]]:
    """Eq. 1 of the paper: ``CE(y1) + CE(y2) + lam * MSE(z1, z2)``.

    Args:
        logits1, logits2: ``[B, K]`` logits of the two views.
        z1, z2: ``[B, D]`` globally pooled features of the two views.
        labels: ``int64 [B]``.
        lam: Weight of the feature-matching term.

    Returns:
        The scalar loss and its parts (``ce``: the two cross-entropies summed, ``mse``).
    """
    ce = F.cross_entropy(logits1, labels) + F.cross_entropy(logits2, labels)
    mse = F.mse_loss(z1, z2)
    return ce + lam * mse, {"ce": ce.item(), "mse": mse.item()}


@dataclass(frozen=True)
class TrainSpec:
    """How a classifier is trained (the same for every network of a comparison).

    Attributes:
        method: ``"standard"`` (one random shift per image) or ``"augshift"`` (two).
        lam: AugShift's weight of the MSE term (ignored by ``"standard"``).
        epochs, batch_size, lr, weight_decay: AdamW with a cosine schedule to zero.
        train_shift: Largest random shift of a training view, in pixels (zero-filled border).
        flip: Also flip a training view horizontally with probability 1/2.
    """

    method: str = "standard"
    lam: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    train_shift: int = 4
    flip: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS or self.lam < 0 or self.epochs < 1:
            raise ValueError(f"need method in {METHODS}, lam >= 0 and epochs >= 1; got {self}")


def _view(x: Tensor, spec: TrainSpec, gen: torch.Generator) -> Tensor:
    """One random training view of a batch ``[B, 3, H, W]``: a shift and maybe a flip."""
    x = random_shifts(x, spec.train_shift, gen)
    if spec.flip:
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def _step_loss(model: Classifier, x: Tensor, y: Tensor, spec: TrainSpec,
               gen: torch.Generator, device: torch.device) -> tuple[Tensor, dict[str, float]]:
    """The loss of one batch under ``spec.method``."""
    if spec.method == "standard":
        logits = model(_view(x, spec, gen).to(device))
        loss = F.cross_entropy(logits, y.to(device))
        return loss, {"ce": loss.item()}
    z1, z2 = (model.features(_view(x, spec, gen).to(device)) for _ in range(2))
    return augshift_loss(model.head(z1), model.head(z2), z1, z2, y.to(device), spec.lam)


def start_training(model: Classifier, spec: TrainSpec, n_images: int, seed: int,
                   device: torch.device | str) -> Training:
    """``model`` on ``device`` with AdamW, a cosine schedule over all steps on ``n_images``
    images, and the generator of batch orders and views (seeded by ``seed``)."""
    model.to(torch.device(device)).train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    steps = spec.epochs * math.ceil(n_images / spec.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    return Training(model, opt, sched, gen, record={"history": []})


def _epoch(training: Training, images: Tensor, labels: Tensor, spec: TrainSpec,
           device: torch.device | str) -> None:
    """One shuffled pass over ``images [N, 3, H, W]`` and ``labels int64 [N]``; appends the mean
    ``ce`` (and, for AugShift, ``mse``) over its batches to ``training.record["history"]``."""
    model, opt, gen = training.model.train(), training.optimizer, training.generator
    order, parts = torch.randperm(len(images), generator=gen), []
    for i in range(0, len(images), spec.batch_size):
        idx = order[i:i + spec.batch_size]
        loss, part = _step_loss(model, images[idx], labels[idx], spec, gen, torch.device(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        training.scheduler.step()
        parts.append(part)
    training.record["history"].append({k: sum(p[k] for p in parts) / len(parts) for k in parts[0]})


def cache_key(net: NetSpec, spec: TrainSpec, data_key: str, seed: int) -> str:
    """A short hash of everything that determines a trained network."""
    return fingerprint(CACHE_VERSION, asdict(net), asdict(spec), data_key, seed)


def trained_classifier(net: NetSpec, spec: TrainSpec, images: Tensor, labels: Tensor, *,
                       data_key: str, cache_dir: str | Path, seed: int = 0,
                       device: torch.device | str = "cpu",
                       progress: bool = True) -> tuple[Classifier, list[dict[str, float]]]:
    """The classifier of ``net`` trained by ``spec`` on ``images [N, 3, H, W]`` and ``labels
    int64 [N]`` (the data named ``data_key``): from ``cache_dir`` if it was trained before, else
    trained now (resuming a partial run) and cached.

    Returns:
        The model in eval mode on ``device``, and its training history: one record per epoch,
        the mean ``ce`` (and, for AugShift, ``mse``) over its batches.
    """
    model = build_classifier(net, seed)
    entry = train_cached(
        Path(cache_dir) / "augshift" / f"{cache_key(net, spec, data_key, seed)}.pt",
        lambda: start_training(model, spec, len(images), seed, device),
        lambda training, epoch: _epoch(training, images, labels, spec, device), spec.epochs,
        lambda training: {"model": {k: v.cpu() for k, v in training.model.state_dict().items()},
                          "history": training.record["history"], "net": asdict(net),
                          "train": asdict(spec), "data": data_key},
        desc=f"training ({spec.method})", progress=progress)
    model.load_state_dict(entry["model"])
    return model.to(device).eval(), entry["history"]


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256,
             device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` on unshifted ``images [N, 3, H, W]``."""
    return float((predict_classes(model, images, batch_size, device) == labels).float().mean())
