"""Grid inputs of the ICCV 2021 location task: one small image in one cell of an empty canvas.

A canvas of ``n x n`` cells, each ``cell x cell`` pixels, is empty (all zeros) except for one
cell that holds an object. The location label is the cell's row-major index
(``row * n + column``); the image label is the object's class. Two sources of objects:

- ``"scenes"`` (the book's default): one shape of :mod:`posinfo.data.scenes` rendered alone with
  :func:`posinfo.data.scenes.render_object` and pasted through its coverage mask onto black, so the
  canvas is black around the shape and zero everywhere else (inputs in ``[0, 1]``).
- ``"cifar10"`` (the paper): a CIFAR-10 image through torchvision's dataset class. The authors
  normalise each image with the dataset's mean and standard deviation and only then fill the rest
  of the canvas with zeros, so their background is the dataset's mean colour; this module does
  the same (:data:`CIFAR10_MEAN`, :data:`CIFAR10_STD`), and the CIFAR image fills its whole cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms as T
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.data.datasets import torchvision_dataset
from posinfo.data.scenes import NUM_CLASSES, render_object

SOURCES: tuple[str, ...] = ("scenes", "cifar10")
TASKS: tuple[str, ...] = ("location", "image")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class ObjectPool(NamedTuple):
    """Objects ready to be pasted into a grid cell.

    Attributes:
        images: ``float32 [N, 3, S, S]``, each object's fill over its whole patch (normalised
            for CIFAR); what reaches the canvas is ``images * masks``.
        masks: ``float32 [N, S, S]`` in ``[0, 1]``, how much of each pixel the object covers
            (all ones for CIFAR images, which fill their cell).
        labels: ``int64 [N]``, each object's class.
    """

    images: Tensor
    masks: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: Tensor) -> ObjectPool:
        """The objects at ``index`` (``int64 [M]``), as a new pool of ``M``."""
        return ObjectPool(self.images[index], self.masks[index], self.labels[index])


def scene_objects(count: int, cell: int, seed: int, *, fill: float = 0.8,
                  progress: bool = False) -> ObjectPool:
    """``count`` shapes of the generated scenes, each centred in a ``cell x cell`` patch.

    Object ``i`` (class, rotation, colour, texture) comes from ``np.random.default_rng((seed,
    i))``, so pools with different seeds are disjoint draws and a pool is reproducible.
    """
    images, masks, labels = [], [], []
    for i in tqdm(range(count), desc="rendering objects", disable=not progress, leave=False):
        rng = np.random.default_rng((seed, i))
        label = int(rng.integers(NUM_CLASSES))
        rgb, mask = render_object(label, cell, rng, fill=fill)
        images.append(rgb)
        masks.append(mask)
        labels.append(label)
    return ObjectPool(torch.stack(images), torch.stack(masks), torch.tensor(labels))


def cifar_objects(data_root: str | Path, split: str, count: int | None, seed: int) -> ObjectPool:
    """CIFAR-10 images read by torchvision, normalised with the dataset's mean and std.

    Args:
        data_root: Folder holding ``cifar-10-batches-py/`` (see ``posinfo.data.datasets``).
        split: ``"train"`` or ``"test"``.
        count: How many images, drawn without replacement by ``seed``; ``None`` takes them all.
        seed: Seed of the draw.

    Raises:
        DatasetNotFoundError: If CIFAR-10 is not under ``data_root`` (says what to download).
    """
    transform = T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    dataset = torchvision_dataset("cifar10", data_root, split, transform=transform)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    chosen = order if count is None else order[:count]
    images = torch.stack([dataset[int(i)][0] for i in chosen])
    labels = torch.tensor([int(dataset.targets[int(i)]) for i in chosen])
    return ObjectPool(images, torch.ones(images.shape[0], *images.shape[2:]), labels)


def random_cells(count: int, n: int, generator: torch.Generator) -> Tensor:
    """``count`` cells drawn uniformly from an ``n x n`` grid: ``int64 [count]``, row-major."""
    return torch.randint(0, n * n, (count,), generator=generator)


def place(pool: ObjectPool, cells: Tensor, n: int) -> Tensor:
    """Paste object ``i`` of ``pool`` into cell ``cells[i]`` of an empty ``n x n`` canvas.

    Args:
        pool: ``N`` objects of side ``S``.
        cells: ``int64 [N]``, row-major cell indices in ``[0, n * n)``.
        n: Cells per side.

    Returns:
        ``float32 [N, 3, n * S, n * S]``: zero everywhere except the object's cell.
    """
    if cells.shape != (len(pool),) or bool(((cells < 0) | (cells >= n * n)).any()):
        raise ValueError(f"need one cell in [0, {n * n}) per object; got shape {tuple(cells.shape)}")
    size = pool.images.shape[-1]
    canvas = torch.zeros(len(pool), 3, n * size, n * size)
    rows, cols = (cells // n) * size, (cells % n) * size
    for i in range(len(pool)):
        canvas[i, :, rows[i]: rows[i] + size, cols[i]: cols[i] + size] = pool.images[i] * pool.masks[i]
    return canvas


def targets(pool: ObjectPool, cells: Tensor, task: str) -> Tensor:
    """The label of each input: its cell (``"location"``) or its object's class (``"image"``)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    return cells.clone() if task == "location" else pool.labels.clone()


def num_classes(task: str, n: int) -> int:
    """Number of outputs: ``n * n`` cells for location, ten classes for the image task."""
    return n * n if task == "location" else 10
