"""Fake datasets and weights in the real on-disk formats, for checking the ``paper`` profile
end to end where the papers' data cannot be had (CI, a laptop without the downloads).

Every writer lays its files out exactly as ``posinfo.data.datasets.DATASETS[name].layout`` (and
``data/README.md``) describe, so the real loaders read them: random-texture JPEGs, masks holding
one blob, CIFAR's python batches, Cityscapes' ``labelIds`` maps and torchvision's ImageNet state
dicts of randomly initialised networks. Nothing here is a result; the numbers a run makes on
these files only show that the code path runs.

Two things stay different from the real files, by necessity: torchvision checks CIFAR's files
against their published md5 sums (:func:`skip_cifar_md5` turns that off in one process), and the
weights are random.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.datasets import Cityscapes

from posinfo.cache import torch_save
from posinfo.data.datasets import DATASETS, SALIENCY
from posinfo.models.encoders import imagenet_weights_file

_CITY = "frankfurt"  # one city folder per split, as the real release has several


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random RGB texture ``uint8 [height, width, 3]``: coarse noise upsampled, plus grain."""
    coarse = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), np.int16)
    return np.clip(big + rng.integers(-20, 21, big.shape), 0, 255).astype(np.uint8)


def _blob(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A bool ``[height, width]`` ellipse at a random place, half the frame across."""
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
    return ((yy - cy) / (height / 4)) ** 2 + ((xx - cx) / (width / 4)) ** 2 <= 1


def write_saliency(name: str, data_root: str | Path, n: int, size: tuple[int, int] = (48, 40),
                   seed: int = 0) -> Path:
    """``n`` images (``*.jpg``, ``size`` = width x height) and binary masks (``*.png``, 0/255)
    of the saliency dataset ``name`` in its layout under ``data_root``; returns its folder."""
    info, rng = DATASETS[name], np.random.default_rng(seed)
    folder = Path(data_root) / info.folder
    for sub in (info.images, info.masks):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        stem = f"{name}_{i:04d}"
        Image.fromarray(_texture(rng, size[1], size[0])).save(folder / info.images / f"{stem}.jpg")
        mask = _blob(rng, size[1], size[0]).astype(np.uint8) * 255
        Image.fromarray(mask).save(folder / info.masks / f"{stem}.png")
    return folder


def write_voc2012(data_root: str | Path, n: int, size: tuple[int, int] = (48, 40),
                  seed: int = 0) -> Path:
    """VOC 2012 segmentation with ``n`` images per split (``train``, ``val``; ``trainval`` both):
    JPEGs and palette PNGs of one object of a random class on background, with a 255 boundary."""
    rng = np.random.default_rng(seed)
    root = Path(data_root) / DATASETS["voc2012"].folder
    sets = root / "ImageSets" / "Segmentation"
    for sub in ("JPEGImages", "SegmentationClass"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sets.mkdir(parents=True, exist_ok=True)
    palette = [v for i in range(256) for v in _voc_colour(i)]
    ids = {split: [f"2012_{split}_{i:04d}" for i in range(n)] for split in ("train", "val")}
    for split, names in ids.items():
        for stem in names:
            Image.fromarray(_texture(rng, size[1], size[0])).save(root / "JPEGImages" / f"{stem}.jpg")
            inside = _blob(rng, size[1], size[0])
            ring = _blob_ring(inside)
            mask = np.where(inside, rng.integers(1, 21), 0).astype(np.uint8)
            mask[ring] = 255
            png = Image.fromarray(mask, mode="P")
            png.putpalette(palette)
            png.save(root / "SegmentationClass" / f"{stem}.png")
        (sets / f"{split}.txt").write_text("\n".join(names) + "\n")
    (sets / "trainval.txt").write_text("\n".join(ids["train"] + ids["val"]) + "\n")
    return root


def _voc_colour(index: int) -> tuple[int, int, int]:
    """VOC's palette colour of class ``index``: its bits, three at a time, spread from the top
    bit of red, green and blue down (0 black, 1 dark red, 255 the outline's cream)."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * shift + channel)) & 1) << (7 - shift)
    return tuple(rgb)


def _blob_ring(inside: np.ndarray) -> np.ndarray:
    """The one-pixel outer boundary ``bool [H, W]`` of a region (VOC's 255 "void" outline)."""
    grown = inside.copy()
    grown[1:] |= inside[:-1]
    grown[:-1] |= inside[1:]
    grown[:, 1:] |= inside[:, :-1]
    grown[:, :-1] |= inside[:, 1:]
    return grown & ~inside


def write_cifar10(data_root: str | Path, n: int, seed: int = 0) -> Path:
    """CIFAR-10's python version with ``n`` random 32 x 32 images in each of the five training
    batches and the test batch (labels cycle through the ten classes)."""
    rng = np.random.default_rng(seed)
    folder = Path(data_root) / DATASETS["cifar10"].folder
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = np.stack([_texture(rng, 32, 32) for _ in range(n)])  # [n, 32, 32, 3]
        batch = {"batch_label": name, "data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
                 "labels": [(k + i) % 10 for i in range(n)],
                 "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return folder


def skip_cifar_md5() -> None:
    """Make torchvision accept CIFAR files whose md5 sums are not the official ones, in this
    process only (fake CIFAR cannot match them)."""
    for cls in (torchvision.datasets.CIFAR10, torchvision.datasets.CIFAR100):
        cls._check_integrity = lambda self: True  # type: ignore[method-assign]
    torchvision.datasets.cifar.check_integrity = lambda path, md5=None: True


def write_cityscapes(data_root: str | Path, n: int, split: str = "val",
                     size: tuple[int, int] = (128, 64), seed: int = 0) -> Path:
    """``n`` Cityscapes scenes of ``split`` (``size`` = width x height, 2:1 as the real ones):
    ``leftImg8bit`` PNGs and ``gtFine`` ``labelIds`` and ``color`` maps (plus all-zero
    ``instanceIds`` maps and polygon files without objects) of sky over buildings over road,
    with one person on the left in every fourth image and one on the right in every fourth
    image from the third on."""
    rng, ids = np.random.default_rng(seed), {c.name: c.id for c in Cityscapes.classes}
    colours = np.zeros((256, 3), np.uint8)
    for c in Cityscapes.classes:
        if 0 <= c.id < 256:
            colours[c.id] = c.color
    root = Path(data_root) / DATASETS["cityscapes"].folder
    images, labels = root / "leftImg8bit" / split / _CITY, root / "gtFine" / split / _CITY
    for folder in (images, labels):
        folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for i in range(n):
        stem = f"{_CITY}_{i:06d}_000019"
        label = np.full((h, w), ids["road"], np.uint8)
        label[: h // 3], label[h // 3: h // 2] = ids["sky"], ids["building"]
        if i % 4 in (0, 2):  # a person in the left or the right half
            x0 = w // 8 if i % 4 == 0 else w - w // 4
            label[h // 2: h - h // 8, x0: x0 + w // 16] = ids["person"]
        Image.fromarray(_texture(rng, h, w)).save(images / f"{stem}_leftImg8bit.png")
        Image.fromarray(label).save(labels / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(colours[label]).save(labels / f"{stem}_gtFine_color.png")
        Image.fromarray(np.zeros((h, w), np.uint16)).save(labels / f"{stem}_gtFine_instanceIds.png")
        (labels / f"{stem}_gtFine_polygons.json").write_text(
            json.dumps({"imgHeight": h, "imgWidth": w, "objects": []}))
    return root


def write_imagenet_weights(arch: str) -> Path:
    """A randomly initialised torchvision ``arch`` saved where torchvision keeps its ImageNet
    weights (``imagenet_weights_file``, under ``TORCH_HOME``), under the official file name."""
    path, _ = imagenet_weights_file(arch)
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(0)
        torch_save(getattr(torchvision.models, arch)(weights=None).state_dict(), path)
    return path


def write_deeplabv3(path: str | Path, num_classes: int = 19) -> Path:
    """A randomly initialised torchvision DeepLabv3-ResNet-50 state dict with ``num_classes``
    outputs at ``path`` (chapter 7's weights file)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    torch_save(net.state_dict(), Path(path))
    return Path(path)


def write_all_saliency(data_root: str | Path, n: int, size: tuple[int, int] = (48, 40)) -> None:
    """Every saliency dataset (``SALIENCY``) with ``n`` images each, from distinct seeds."""
    for k, name in enumerate(SALIENCY):
        write_saliency(name, data_root, n, size, seed=k)
