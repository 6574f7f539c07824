"""A DeepLabv3 semantic segmenter with a ResNet backbone, built from torchvision's own classes.

Two sizes share one definition (torchvision's :class:`~torchvision.models.segmentation.DeepLabV3`
around an :class:`~torchvision.models._utils.IntermediateLayerGetter` of a torchvision ResNet):

- ``"resnet50"``: torchvision's ``deeplabv3_resnet50``, the paper's network (2048 channels after
  ``layer4``). Its weights are never downloaded: :func:`load_weights_file` reads them from a file
  the user provides.
- ``"narrow"``: the same design shrunk for a CPU: torchvision's Bottleneck ResNet with one block
  per stage and a base width of ``width`` (64 in ResNet-50), the same dilation of ``layer3`` and
  ``layer4`` (output stride 8), and torchvision's ASPP head with ``head_channels`` channels and
  atrous rates scaled down to the small feature maps. It is trained in the book on generated
  scenes (:func:`train_segmenter`) and cached.

Both take images ``float32 [B, 3, H, W]`` in ``[0, 1]`` (normalised with ImageNet's mean and std
inside the model) and return logits ``[B, K, H, W]``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet
from torchvision.models import segmentation as tv_seg
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import ASPP
from tqdm.auto import tqdm

from posinfo.atomic import torch_save
from posinfo.encoders import IMAGENET_MEAN, IMAGENET_STD
from posinfo.features import fingerprint

ARCHS: tuple[str, ...] = ("narrow", "resnet50")
CACHE_VERSION = 1


class Segmenter(nn.Module):
    """ImageNet normalisation followed by a torchvision DeepLabV3; returns the ``"out"`` logits.

    Attributes:
        net: The torchvision ``DeepLabV3``; ``net.backbone.layer4`` is the last stage whose
            channels the chapter ranks and zeroes.
    """

    def __init__(self, net: tv_seg.DeepLabV3) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def last_stage(self) -> nn.Module:
        """The backbone's last stage (``layer4``)."""
        return self.net.backbone.layer4

    @property
    def channels(self) -> int:
        """Number of channels of the last stage's output (2048 for ResNet-50)."""
        return self.net.classifier[0].convs[0][0].in_channels

    def features(self, x: Tensor) -> Tensor:
        """The last stage's map ``[B, C, h, w]`` of images ``[B, 3, H, W]`` in [0, 1]."""
        return self.net.backbone((x - self.mean) / self.std)["out"]

    def forward(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] to class logits ``[B, K, H, W]``."""
        return self.net((x - self.mean) / self.std)["out"]


def narrow_deeplabv3(num_classes: int, width: int = 8, head_channels: int = 32,
                     rates: tuple[int, int, int] = (2, 4, 6)) -> Segmenter:
    """DeepLabv3 on a ResNet-50-like backbone with one Bottleneck per stage at base ``width``.

    Args:
        num_classes: Output classes ``K``.
        width: Channels of the stem; the stages have ``width * (1, 2, 4, 8)`` inner channels and
            ``4x`` as many outputs, so ``layer4`` has ``32 * width`` channels.
        head_channels: Channels of the ASPP head (256 in the paper's network).
        rates: Atrous rates of the ASPP (12, 24, 36 in the paper's network, for far larger maps).

    Returns:
        The untrained segmenter (torchvision's initialisation; seed torch before calling).
    """
    net = tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 1, 1],
                           replace_stride_with_dilation=[False, True, True])
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for i, stride in enumerate((1, 2, 2, 2)):
        net.dilation = 1 if i < 2 else 2 ** (i - 1)
        setattr(net, f"layer{i + 1}", net._make_layer(tv_resnet.Bottleneck, width * 2 ** i, 1,
                                                      stride=stride if i < 2 else 1))
    backbone = IntermediateLayerGetter(net, return_layers={"layer4": "out"})
    head = nn.Sequential(ASPP(32 * width, list(rates), head_channels),
                         nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(head_channels), nn.ReLU(),
                         nn.Conv2d(head_channels, num_classes, 1))
    return Segmenter(tv_seg.DeepLabV3(backbone, head))


def resnet50_deeplabv3(num_classes: int) -> Segmenter:
    """torchvision's ``deeplabv3_resnet50`` with ``num_classes`` outputs, no weights loaded."""
    return Segmenter(tv_seg.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                               num_classes=num_classes, aux_loss=False))


def load_weights_file(model: Segmenter, path: str | Path) -> Segmenter:
    """Load a DeepLabv3-ResNet-50 checkpoint from a file the user provides.

    The file holds a state dict in torchvision's naming (``backbone.layer4...``,
    ``classifier.0.convs...``), either as it is or under a ``"model_state"``, ``"state_dict"`` or
    ``"model"`` key; an auxiliary head (``aux_classifier.*``) is ignored.

    Raises:
        FileNotFoundError: If ``path`` does not exist, saying what to put there.
        ValueError: If the file's keys or shapes do not match the network.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"DeepLabv3-ResNet-50 weights for Cityscapes not found at {path}. Nothing is "
            "downloaded: train the network on Cityscapes (19 classes) or obtain a checkpoint in "
            "torchvision's deeplabv3_resnet50 layout, and save its state dict at that path "
            "(the chapter's knob `weights_file`).")
    state = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model_state", "state_dict", "model"):
        state = state.get(key, state) if isinstance(state, dict) else state
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.removeprefix("module.").startswith("aux_classifier")}
    try:
        model.net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a DeepLabv3-ResNet-50 state dict in torchvision's "
                         f"layout with {model.net.classifier[-1].out_channels} classes: {err}") from err
    return model


# --- training on generated scenes ---------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterTraining:
    """How the narrow segmenter is trained (Adam, pixel-wise cross-entropy, one-cycle schedule).

    Attributes:
        num_classes: Output classes (for the street scenes, the six of ``STREET_CLASSES``).
        width: Base width of the backbone (see :func:`narrow_deeplabv3`).
        head_channels: Channels of the ASPP head.
        epochs: Passes over the training images.
        batch_size: Images per step.
        lr: The peak learning rate of the one-cycle schedule.
        seed: Seed of the initialisation and of the batch order.
        data_key: A fingerprint of the training images (their recipe), for the cache key.
    """

    num_classes: int
    width: int = 8
    head_channels: int = 32
    epochs: int = 10
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    data_key: str = ""


def _epoch(model: Segmenter, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
           images: Tensor, masks: Tensor, cfg: SegmenterTraining, epoch: int) -> float:
    """One shuffled pass over ``images [N, 3, H, W]`` and ``masks [N, H, W]``; the mean loss."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
    model.train()
    total = 0.0
    for idx in order.split(cfg.batch_size):
        loss = F.cross_entropy(model(images[idx]), masks[idx], ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
    return total / len(images)


def train_segmenter(cfg: SegmenterTraining, images: Tensor, masks: Tensor,
                    checkpoint: Path | None = None, progress: bool = True) -> tuple[Segmenter, dict]:
    """Train :func:`narrow_deeplabv3` on ``images [N, 3, H, W]`` and ``masks [N, H, W]`` (int64).

    The state after each epoch is saved atomically to ``checkpoint`` (if given), and a partial
    checkpoint found there is resumed. Runs on the CPU.

    Returns:
        The trained model (eval mode) and a record: config, losses per epoch, seconds.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = narrow_deeplabv3(cfg.num_classes, cfg.width, cfg.head_channels)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-len(images) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    record = {"config": asdict(cfg), "losses": [], "seconds": 0.0}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        for obj, key in ((model, "model"), (opt, "optimizer"), (sched, "scheduler")):
            obj.load_state_dict(state[key])
        record = state["record"]
    for epoch in tqdm(range(len(record["losses"]), cfg.epochs), desc="training the segmenter",
                      disable=not progress, leave=False):
        start = time.perf_counter()
        record["losses"].append(_epoch(model, opt, sched, images, masks, cfg, epoch))
        record["seconds"] += time.perf_counter() - start
        if checkpoint is not None:
            torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "record": record}, checkpoint)
    return model.eval(), record


def cached_segmenter(cfg: SegmenterTraining, images: Tensor, masks: Tensor, cache_dir: str | Path,
                     progress: bool = True) -> tuple[Segmenter, dict]:
    """The trained narrow segmenter from the cache, or trained now (resumably) and cached.

    The cache key is every field of ``cfg`` (``data_key`` stands for the training images).
    """
    key = fingerprint(CACHE_VERSION, *asdict(cfg).values())
    final = Path(cache_dir) / f"segmenter-{key}.pt"
    if not final.exists():
        partial = final.with_suffix(".partial.pt")
        model, record = train_segmenter(cfg, images, masks, partial, progress)
        torch_save({"model": model.state_dict(), "record": record}, final)
        partial.unlink(missing_ok=True)
    state = torch.load(final, map_location="cpu", weights_only=False)
    model = narrow_deeplabv3(cfg.num_classes, cfg.width, cfg.head_channels)
    model.load_state_dict(state["model"])
    return model.eval(), state["record"]


@torch.no_grad()
def predict(model: Segmenter, images: Tensor, batch_size: int = 32,
            device: torch.device | str = "cpu") -> Tensor:
    """Predicted classes ``int64 [N, H, W]`` of images ``[N, 3, H, W]`` (eval mode)."""
    model.eval().to(device)
    return torch.cat([model(x.to(device)).argmax(1).cpu() for x in images.split(batch_size)])
