"""The papers' real datasets, read from a user-supplied ``data_root`` (the ``paper`` profile).

Nothing is ever downloaded. Every loader first checks that its dataset is on disk in the expected
layout and otherwise raises :class:`DatasetNotFoundError` *before any work*, naming the dataset,
the exact path looked in, where to get it and the layout expected (see also ``data/README.md``).

- Saliency datasets (DUT-S, PASCAL-S, MSRA-B, ECSSD, DUT-OMRON) are flat folders of images with a
  parallel folder of binary masks; :func:`saliency_dataset` loads them as
  :class:`ImageFolderDataset`: images ``float32 [3, S, S]`` in ``[0, 1]`` (no ImageNet
  normalisation: the ICLR 2020 authors fed raw ``[0, 1]`` images), masks ``float32 [S, S]`` in
  ``{0, 1}``.
- PASCAL VOC 2012, CIFAR-10/100 and Cityscapes are loaded by torchvision's own classes
  (:func:`torchvision_dataset`, ``download=False``), after our own existence check.
- :func:`saliency_tensors`, :func:`voc_tensors`, :func:`cifar_tensors` and
  :func:`cityscapes_tensors` stack a dataset's
  images and targets at the size a chapter works at.
- :func:`verify_dataset` decodes every image and mask (target) of a saliency dataset, VOC 2012 or
  Cityscapes that a run reads, in a chapter's ``validate``, before any work.

Image files are read if their extension is one of ``IMAGE_EXTENSIONS`` (JPEG, PNG, BMP); other
image files in a folder (HEIC, WebP, TIFF, GIF, ...: by extension) are an error naming them, and
files that are not images (text, ``Thumbs.db``, ...) or hidden are skipped. 16-bit grey PNGs are
scaled to 8 bits (value / 257), not clipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps
from torch import Tensor
from torchvision.datasets import Cityscapes
from torchvision.transforms import v2
from torchvision.transforms.functional import pil_to_tensor
from tqdm.auto import tqdm

from posinfo.metrics.dense import IGNORE

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
# Image formats the book does not read, recognised by extension to name them in an error. A fixed
# list, not the system's MIME table, so that a folder is accepted or refused alike on every machine.
OTHER_IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".heic", ".heif", ".avif", ".webp", ".tif", ".tiff", ".gif", ".jfif", ".jxl", ".jp2", ".dng",
    ".raw", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".psd", ".svg", ".ico", ".pgm",
    ".ppm", ".pbm", ".pnm", ".tga", ".exr", ".hdr", ".xcf", ".pcx", ".jpe", ".jif")
MIN_SIDE = 8  # px: a smaller image (a 1 x 1 placeholder, say) carries no map to read
# PIL modes of 16-bit grey pixels (PNG bit depth 16; "I" is how older PIL versions open them).
SIXTEEN_BIT_MODES: tuple[str, ...] = ("I", "I;16", "I;16L", "I;16B", "I;16N")
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle")  # the 19 classes scored on Cityscapes, in train-id order


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is missing from ``data_root`` or incomplete.

    The message names the dataset, the exact path looked in, where to download the dataset and
    the layout expected under ``data_root``.

    Attributes:
        dataset: The dataset's name (a key of ``DATASETS``), or ``None`` for an anonymous folder.
        path: The path that was missing, empty or incomplete.
        problem: What is wrong with ``path``, in a few words.
    """

    def __init__(self, message: str, dataset: str | None = None, path: Path | None = None,
                 problem: str = "") -> None:
        super().__init__(message)
        self.dataset, self.path, self.problem = dataset, path, problem


@dataclass(frozen=True)
class DatasetInfo:
    """What the library knows about one real dataset.

    Attributes:
        name: The key in ``DATASETS``.
        description: One line: what it is and how big.
        url: The official page to download it from.
        licence: Its licence or terms of use, as best known.
        layout: The expected layout under ``data_root`` (shown in errors and ``data/README.md``).
        citation: Citation key of the paper that introduced it.
        folder: The dataset's top folder, relative to ``data_root``.
        required: Paths relative to ``folder`` that must exist and be non-empty.
        images: For saliency datasets, the image folder relative to ``folder``.
        masks: For saliency datasets, the mask folder relative to ``folder``.
    """

    name: str
    description: str
    url: str
    licence: str
    layout: str
    citation: str
    folder: str
    required: tuple[str, ...]
    images: str | None = None
    masks: str | None = None


_RESEARCH = "research use; see the dataset's page"


def _saliency(name: str, description: str, url: str, citation: str, folder: str, images: str,
              masks: str, count: str, source: str) -> DatasetInfo:
    """A saliency dataset: ``{folder}/{images}/*.jpg`` with masks ``{folder}/{masks}/*.png``."""
    layout = (f"{folder}/\n"
              f"  {images}/   {count} images (*.jpg)\n"
              f"  {masks}/   {count} masks (*.png, 0 = background, 255 = salient), same file "
              f"stem as their image\n"
              f"  ({source})")
    return DatasetInfo(name, description, url, _RESEARCH, layout, citation, folder,
                       (images, masks), images, masks)


def _cifar(name: str, folder: str, files: tuple[str, ...], citation: str) -> DatasetInfo:
    """CIFAR-10 or CIFAR-100 in torchvision's layout (the official "python version")."""
    n = name.removeprefix("cifar")
    archive = "cifar-10-python.tar.gz" if name == "cifar10" else "cifar-100-python.tar.gz"
    layout = (f"{folder}/\n" + "\n".join(f"  {f}" for f in files)
              + f"\n  ({archive}, the python version, unpacked as it is)")
    return DatasetInfo(
        name, f"CIFAR-{n}: 60,000 colour images of 32 x 32 px in {n} classes "
              "(50,000 train, 10,000 test); the official python version",
        "https://www.cs.toronto.edu/~kriz/cifar.html", _RESEARCH, layout, citation, folder, files)


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    _saliency("duts-train", "DUT-S training set (DUTS-TR): 10,553 images with pixel-wise saliency "
              "masks", "http://saliencydetection.net/duts/", "wang2017duts", "DUTS-TR",
              "DUTS-TR-Image", "DUTS-TR-Mask", "10,553", "DUTS-TR.zip unpacked as it is"),
    _saliency("pascal-s", "PASCAL-S: 850 images of PASCAL VOC 2010 val with salient-object masks",
              "https://cbs.ic.gatech.edu/salobj/", "li2014pascals", "PASCAL-S", "Imgs", "Masks",
              "850", "the release's PASCAL-S images and salient-object masks, copied here"),
    _saliency("msra-b", "MSRA-B: 5,000 images with pixel-wise salient-object masks",
              "https://jianghz.me/drfi/", "liu2011msra", "MSRA-B", "Imgs", "Masks", "5,000",
              "the images and pixel-wise masks, copied here"),
    _saliency("ecssd", "ECSSD (Extended Complex Scene Saliency Dataset): 1,000 images with masks",
              "https://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/dataset.html",
              "yan2013ecssd", "ECSSD", "images", "ground_truth_mask", "1,000",
              "images.zip and ground_truth_mask.zip unpacked into ECSSD/"),
    _saliency("dut-omron", "DUT-OMRON: 5,168 images with pixel-wise saliency masks",
              "http://saliencydetection.net/dut-omron/", "yang2013dutomron", "DUT-OMRON",
              "DUT-OMRON-image", "pixelwiseGT-new-PNG", "5,168",
              "DUT-OMRON-image.zip and pixelwiseGT-new-PNG.zip unpacked into DUT-OMRON/"),
    DatasetInfo(
        "voc2012", "PASCAL VOC 2012 segmentation: 1,464 train and 1,449 val images with 21-class "
        "masks", "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        "images from Flickr under Flickr's terms of use; annotations: see the dataset's page",
        "VOCdevkit/VOC2012/\n"
        "  JPEGImages/{id}.jpg\n"
        "  SegmentationClass/{id}.png   (palette PNG: class index, 255 = boundary)\n"
        "  ImageSets/Segmentation/{train,val,trainval}.txt   (one id per line)",
        "everingham2010voc", "VOCdevkit/VOC2012",
        ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")),
    _cifar("cifar10", "cifar-10-batches-py",
           tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
           "krizhevsky2009cifar"),
    _cifar("cifar100", "cifar-100-python", ("train", "test", "meta"), "krizhevsky2009cifar"),
    DatasetInfo(
        "cityscapes", "Cityscapes, fine annotations: 2,975 train, 500 val and 1,525 test street "
        "scenes of 2048 x 1024 px from 50 cities", "https://www.cityscapes-dataset.com/",
        "Cityscapes licence: non-commercial research use, registration required; see the "
        "dataset's page",
        "cityscapes/\n"
        "  leftImg8bit/{train,val,test}/{city}/{city}_{seq}_{frame}_leftImg8bit.png\n"
        "  gtFine/{train,val,test}/{city}/{city}_{seq}_{frame}_gtFine_{labelIds,instanceIds,"
        "color}.png\n"
        "  gtFine/{train,val,test}/{city}/{city}_{seq}_{frame}_gtFine_polygons.json\n"
        "  (from leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip)",
        "cordts2016cityscapes", "cityscapes", ("leftImg8bit", "gtFine")),
)}
SALIENCY: tuple[str, ...] = tuple(n for n, d in DATASETS.items() if d.images is not None)
TORCHVISION: tuple[str, ...] = ("voc2012", "cifar10", "cifar100", "cityscapes")


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``.

    Raises:
        ValueError: If ``name`` is not a key of ``DATASETS`` (the message lists the known names).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def _not_found(info: DatasetInfo, path: Path, problem: str,
               data_root: Path) -> DatasetNotFoundError:
    """The error for ``info`` missing or incomplete at ``path`` (returned, not raised).

    Args:
        info: The dataset.
        path: The exact path that was looked in.
        problem: What is wrong, e.g. ``"the folder does not exist"``.
        data_root: The ``data_root`` the layout is relative to.
    """
    layout = "\n".join("    " + line for line in info.layout.splitlines())
    message = (
        f"dataset {info.name!r} ({info.description}) not found: {problem}.\n"
        f"  Looked in: {path}\n"
        f"  Download it from: {info.url} (terms: {info.licence}); nothing is downloaded "
        f"automatically.\n"
        f"  Expected layout under data_root = {data_root}:\n{layout}\n"
        f"  See data/README.md, or pass another data_root.")
    return DatasetNotFoundError(message, info.name, path, problem)


def _absolute(path: str | Path) -> Path:
    """``path`` with ``~`` expanded, made absolute."""
    return Path(path).expanduser().absolute()


def _is_empty(path: Path) -> bool:
    """Whether a file has no bytes, or a folder has no entry other than hidden ones."""
    if path.is_file():
        return path.stat().st_size == 0
    return not any(not p.name.startswith(".") for p in path.iterdir())


def _require(name: str, data_root: Path, paths: list[Path]) -> None:
    """Raise :class:`DatasetNotFoundError` if one of ``paths`` is missing or empty."""
    for path in paths:
        if not path.exists() or _is_empty(path):
            state = "is missing" if not path.exists() else "is empty"
            raise _not_found(DATASETS[name], path, f"{path.name!r} {state} (incomplete dataset?)",
                            data_root)


def dataset_root(name: str, data_root: str | Path) -> Path:
    """Check that dataset ``name`` is in ``data_root`` and return its top folder.

    Args:
        name: A key of ``DATASETS``.
        data_root: The folder holding the datasets (see ``data/README.md``).

    Returns:
        ``{data_root}/{DATASETS[name].folder}`` as an absolute path.

    Raises:
        ValueError: If ``name`` is unknown.
        DatasetNotFoundError: If the folder or one of its required parts is missing or empty.
    """
    info = dataset_info(name)
    data_root = _absolute(data_root)
    root = data_root / info.folder
    if not data_root.is_dir():
        raise _not_found(info, root, f"data_root {data_root} does not exist", data_root)
    if not root.is_dir():
        raise _not_found(info, root, "the dataset folder does not exist", data_root)
    _require(name, data_root, [root / part for part in info.required])
    return root


# --- saliency datasets: a folder of images and a folder of masks --------------------------------


def grid_min_side(grid: int) -> int:
    """The shortest side, in pixels, of an image (and mask) a run reads maps from on a grid of
    ``grid`` cells along the shorter side (a probe's ``feature_size``, a segmenter's output rows).

    The rule: at least one pixel of the file per cell of the grid, and never below ``MIN_SIDE``.
    A shorter side of fewer pixels than the grid has cells cannot carry a map at that grid: every
    image is resized to the run's size, and some cells would then hold nothing of their own, only
    what the resize interpolates between neighbouring pixels.
    """
    return max(MIN_SIDE, grid)


def _is_image_name(path: Path) -> bool:
    """Whether ``path``'s extension names an image format (read by the book or not)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS + OTHER_IMAGE_EXTENSIONS


def _image_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` (by extension, hidden files skipped), sorted by name.

    Raises:
        ValueError: Naming them, if the folder holds image files the book does not read (HEIC,
            WebP, TIFF, ...): they would otherwise be left out without a word.
    """
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    unread = [p.name for p in files
              if _is_image_name(p) and p.suffix.lower() not in IMAGE_EXTENSIONS]
    if unread:
        shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        raise ValueError(f"{folder} holds {len(unread)} image file(s) the book does not read: "
                         f"{shown}. It reads {', '.join(IMAGE_EXTENSIONS)} files only: convert "
                         "them (to PNG or JPEG) or move them out of the folder")
    return [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]


def _depth_problem(img: Image.Image) -> str:
    """What keeps the decoded ``img``'s pixel values from being read as 8 or 16 bits ("" if
    nothing): floating-point pixels, or integer grey values beyond 16 bits."""
    if img.mode == "F":
        return ("has floating-point pixels (PIL mode 'F') of no fixed range; save it as an 8- or "
                "16-bit image")
    if img.mode == "I":
        low, high = img.getextrema()
        if low < 0 or high > 65535:
            return (f"has grey values in [{low}, {high}], beyond 16 bits; save it as an 8- or "
                    "16-bit image")
    return ""


def _verify(path: Path, upright: bool = False, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """Decode ``path`` fully and return its (width, height), as shown if ``upright`` (EXIF
    orientation applied), else as stored. Nothing decoded is kept.

    Raises:
        ValueError: Naming ``path``, if PIL cannot decode all of it (a truncated file too), its
            pixels are floating-point or beyond 16 bits, or its shorter side is below ``min_side``
            pixels.
    """
    try:
        with Image.open(path) as img:
            img.load()  # decodes every pixel: a truncated file fails here, not in verify()
            size = ImageOps.exif_transpose(img).size if upright else img.size
            problem = _depth_problem(img)
    except Exception as err:  # PIL raises many types (OSError, SyntaxError, struct.error, ...)
        raise ValueError(f"malformed image file {path}: {type(err).__name__}: {err}") from err
    if problem:
        raise ValueError(f"image file {path} {problem}")
    if min(size) < min_side:
        why = "" if min_side <= MIN_SIDE else (
            f" here: this run reads maps on a grid of {min_side} cells along the shorter side, "
            "and fewer pixels than cells cannot carry a map at that grid")
        raise ValueError(f"image file {path} is {size[0]} x {size[1]} px; the book needs at "
                         f"least {min_side} px on each side{why}")
    return size


def _verify_pair(image: Path, mask: Path, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """Decode ``image`` and its ``mask`` fully (:func:`_verify`) and return the image's
    (width, height).

    Raises:
        ValueError: Naming the file, if one is malformed or too small, or the mask is of another
            size than its image.
    """
    size = _verify(image, min_side=min_side)
    if (mask_size := _verify(mask)) != size:
        raise ValueError(f"mask {mask} is {mask_size} px but its image {image} is {size} px "
                         "(width, height)")
    return size


def _eight_bit(img: Image.Image) -> Image.Image:
    """``img`` with 16-bit grey pixels (``SIXTEEN_BIT_MODES``) scaled to 8 bits, value / 257
    rounded (65535 -> 255; PIL's own ``convert`` clips them: a 0.61 grey would become white);
    any other image as it is."""
    if img.mode not in SIXTEEN_BIT_MODES:
        return img
    values = np.asarray(img).astype(np.float64)
    return Image.fromarray(np.round(values / 257).clip(0, 255).astype(np.uint8), "L")


def _open(path: Path, mode: str, size: int, upright: bool = False) -> Image.Image:
    """``path`` (turned upright by its EXIF orientation if ``upright``) converted to PIL ``mode``
    (16-bit grey scaled to 8 bits first) and bilinearly resized to ``size x size``."""
    try:
        with Image.open(path) as img:
            img = _eight_bit(ImageOps.exif_transpose(img) if upright else img)
            return img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
    except Exception as err:
        raise ValueError(f"cannot read image file {path}: {type(err).__name__}: {err}") from err


def _folder_error(path: Path, problem: str) -> DatasetNotFoundError:
    """The error for a folder of :class:`ImageFolderDataset` (no dataset known)."""
    return DatasetNotFoundError(f"{problem}: {path}", None, path, problem)


class ImageFolderDataset(torch.utils.data.Dataset):
    """A flat folder of images (jpg/jpeg/png/bmp), optionally with a parallel folder of masks
    matched by file stem.

    Files are taken in name order (hidden files and files that are not images skipped); image
    files of another format (HEIC, WebP, TIFF, GIF, ...) are an error naming them. Every kept
    image and mask is decoded in full when the dataset is built, so a malformed or truncated
    file, an image smaller than ``min_side`` px, or a mask of another size than its image fails
    before any work; nothing decoded is kept. 16-bit grey files are scaled to 8 bits, not
    clipped. With ``upright`` (a folder of photographs, no masks), images are turned upright by
    their EXIF orientation; dataset images are taken as stored, like their masks.

    Args:
        image_dir: The folder of images.
        size: Side of the square images returned.
        mask_dir: The folder of masks, or ``None``. Each image needs a mask with the same stem.
        limit: Keep only the first ``limit`` images (in name order); ``None`` keeps all.
        upright: Turn images upright by their EXIF orientation (only without masks, which carry
            no orientation of their own).
        min_side: The shortest side an image may have, in pixels (see :func:`grid_min_side`).

    Raises:
        DatasetNotFoundError: If a folder is missing, holds no image, or an image has no mask.
        ValueError: Naming the file, if a file is not a readable image, is too small, or is a
            mask of another size than its image; naming them, if the folder holds image files of
            a format the book does not read; if a folder is a file; or if ``size``/``limit`` is
            not positive.
    """

    def __init__(self, image_dir: str | Path, size: int, mask_dir: str | Path | None = None,
                 limit: int | None = None, upright: bool = False,
                 min_side: int = MIN_SIDE) -> None:
        if size < 1 or (limit is not None and limit < 1):
            raise ValueError(f"size and limit must be positive, got size={size}, limit={limit}")
        if upright and mask_dir is not None:
            raise ValueError("upright applies to a folder of images without masks")
        self.size, self.upright = size, upright
        self.image_dir = _absolute(image_dir)
        self.mask_dir = None if mask_dir is None else _absolute(mask_dir)
        self.images: list[Path] = self._list(self.image_dir)[:limit]
        self.masks: list[Path] | None = None
        if self.mask_dir is not None:
            self.masks = self._match_masks(self.mask_dir)
            self.sizes = [_verify_pair(image, mask, min_side)
                          for image, mask in zip(self.images, self.masks)]
        else:  # (width, height) of each image
            self.sizes = [_verify(path, upright, min_side) for path in self.images]

    def _list(self, folder: Path) -> list[Path]:
        """The sorted image files of ``folder``; raises if it is missing, a file, holds none, or
        holds image files the book does not read."""
        if folder.is_file():
            raise ValueError(f"{folder} is a file; a folder of images is needed")
        if not folder.is_dir():
            raise _folder_error(folder, "the folder does not exist")
        files = _image_files(folder)
        if not files:
            raise _folder_error(folder, f"no image file ({', '.join(IMAGE_EXTENSIONS)}) in "
                                        "the folder")
        return files

    def _match_masks(self, mask_dir: Path) -> list[Path]:
        """The mask of each image, matched by file stem; raises if one is missing or ambiguous."""
        by_stem: dict[str, Path] = {}
        for mask in self._list(mask_dir):
            if mask.stem in by_stem:
                raise ValueError(f"two masks share the stem {mask.stem!r}: {by_stem[mask.stem]} "
                                 f"and {mask}")
            by_stem[mask.stem] = mask
        missing = [p for p in self.images if p.stem not in by_stem]
        if missing:
            raise _folder_error(mask_dir, f"{len(missing)} of {len(self.images)} images have no "
                                f"mask with the same stem, the first being {missing[0].name}")
        return [by_stem[p.stem] for p in self.images]

    def __len__(self) -> int:
        """The number of images."""
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor | None]:
        """Image ``i`` and its mask.

        Returns:
            ``(image, mask)``: ``image`` is ``float32 [3, size, size]`` in ``[0, 1]``, RGB (grey,
            16-bit grey, palette and RGBA files converted, alpha dropped), bilinearly resized, not
            normalised;
            ``mask`` is ``float32 [size, size]`` in ``{0, 1}`` (grey level >= 0.5 after the
            bilinear resize), or ``None`` without a mask folder.
        """
        image = pil_to_tensor(_open(self.images[i], "RGB", self.size, self.upright)).float() / 255.0
        if self.masks is None:
            return image, None
        grey = pil_to_tensor(_open(self.masks[i], "L", self.size))[0].float() / 255.0
        return image, (grey >= 0.5).float()


def saliency_dataset(name: str, data_root: str | Path, size: int, limit: int | None = None,
                     min_side: int = MIN_SIDE) -> ImageFolderDataset:
    """A saliency dataset (images and binary masks) from ``data_root``.

    Args:
        name: One of ``SALIENCY``: ``"duts-train"``, ``"pascal-s"``, ``"msra-b"``, ``"ecssd"``,
            ``"dut-omron"``.
        data_root: The folder holding the datasets, laid out as ``DATASETS[name].layout``.
        size: Side of the square images and masks returned.
        limit: Keep only the first ``limit`` images in name order; ``None`` keeps all.
        min_side: The shortest side an image may have, in pixels (see :func:`grid_min_side`).

    Returns:
        An :class:`ImageFolderDataset` (every file decoded when it is built) whose items are
        ``(float32 [3, size, size] in [0, 1], float32 [size, size] in {0, 1})``.

    Raises:
        ValueError: If ``name`` is not a saliency dataset, or (naming it) a file is not a readable
            image, is too small or is a mask of another size than its image.
        DatasetNotFoundError: If the dataset is missing or incomplete.
    """
    info = dataset_info(name)
    if info.images is None or info.masks is None:
        raise ValueError(f"{name!r} is not a saliency dataset ({list(SALIENCY)}); "
                         "use torchvision_dataset")
    root = dataset_root(name, data_root)
    try:
        return ImageFolderDataset(root / info.images, size, root / info.masks, limit,
                                  min_side=min_side)
    except DatasetNotFoundError as err:  # e.g. a missing mask: add where to get the dataset
        raise _not_found(info, err.path, err.problem, _absolute(data_root)) from err


# --- datasets read by torchvision ---------------------------------------------------------------


def _check_split(name: str, split: str, allowed: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` if ``split`` is not one of ``allowed``."""
    if split not in allowed:
        raise ValueError(f"{name}: unknown split {split!r}; choose one of {list(allowed)}")


def _voc2012(root: Path, data_root: Path, split: str, **kwargs: Any) -> torch.utils.data.Dataset:
    """VOC 2012 segmentation; ``root`` is ``{data_root}/VOCdevkit/VOC2012``."""
    _check_split("voc2012", split, ("train", "val", "trainval"))
    _require("voc2012", data_root, [root / "ImageSets" / "Segmentation" / f"{split}.txt"])
    dataset = torchvision.datasets.VOCSegmentation(data_root, year="2012", image_set=split,
                                                   download=False, **kwargs)
    _require("voc2012", data_root, [Path(p) for p in dataset.images + dataset.masks])
    return dataset


def _cifar_dataset(name: str) -> Callable[..., torch.utils.data.Dataset]:
    """The loader of ``"cifar10"`` or ``"cifar100"`` (torchvision checks the files' md5 sums)."""
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100

    def load(root: Path, data_root: Path, split: str, **kwargs: Any) -> torch.utils.data.Dataset:
        _check_split(name, split, ("train", "test"))
        return cls(data_root, train=split == "train", download=False, **kwargs)

    return load


def _cityscapes(root: Path, data_root: Path, split: str,
                **kwargs: Any) -> torch.utils.data.Dataset:
    """Cityscapes; ``root`` is ``{data_root}/cityscapes``. Files are sorted by name (torchvision
    lists them in the file system's order)."""
    gt = "gtFine" if kwargs.get("mode", "fine") == "fine" else "gtCoarse"
    _check_split("cityscapes", split, ("train", "val", "test") if gt == "gtFine"
                 else ("train", "train_extra", "val"))
    _require("cityscapes", data_root, [root / "leftImg8bit" / split, root / gt / split])
    dataset = torchvision.datasets.Cityscapes(root, split=split, **kwargs)
    order = sorted(range(len(dataset.images)), key=dataset.images.__getitem__)
    dataset.images = [dataset.images[i] for i in order]
    dataset.targets = [dataset.targets[i] for i in order]
    _require("cityscapes", data_root, [Path(p) for t in dataset.targets for p in t])
    return dataset


_LOADERS: dict[str, Callable[..., torch.utils.data.Dataset]] = {
    "voc2012": _voc2012, "cifar10": _cifar_dataset("cifar10"),
    "cifar100": _cifar_dataset("cifar100"), "cityscapes": _cityscapes}


def torchvision_dataset(name: str, data_root: str | Path, split: str,
                        **kwargs: Any) -> torch.utils.data.Dataset:
    """A dataset read by torchvision's own class, after our own existence check.

    Items are whatever torchvision returns (PIL images unless ``transform`` is given):
    ``voc2012``: ``(RGB image, palette mask of class indices, 255 = boundary)``;
    ``cifar10``/``cifar100``: ``(RGB 32 x 32 image, int label)``; ``cityscapes``:
    ``(RGB image, target)`` with the target chosen by ``target_type``.

    Args:
        name: One of ``TORCHVISION``: ``"voc2012"``, ``"cifar10"``, ``"cifar100"``,
            ``"cityscapes"``.
        data_root: The folder holding the datasets, laid out as ``DATASETS[name].layout``.
        split: ``"train"``/``"val"``/``"trainval"`` (VOC), ``"train"``/``"test"`` (CIFAR),
            ``"train"``/``"val"``/``"test"`` (Cityscapes, fine mode).
        **kwargs: Passed to the torchvision class (e.g. ``transform``, ``target_type``).

    Raises:
        ValueError: If ``name`` or ``split`` is unknown.
        DatasetNotFoundError: If the dataset is missing, incomplete (a listed file missing), or
            rejected by torchvision (e.g. CIFAR files failing torchvision's md5 check).
    """
    info = dataset_info(name)
    if name not in _LOADERS:
        raise ValueError(f"{name!r} is not read through torchvision ({list(TORCHVISION)}); "
                         "use saliency_dataset")
    root, data_root = dataset_root(name, data_root), _absolute(data_root)
    try:
        return _LOADERS[name](root, data_root, split, **kwargs)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise _not_found(info, root, f"torchvision rejected the files ({err}); they are "
                        "incomplete, corrupted or not the official release (torchvision checks "
                        "their md5 sums)", data_root) from err


# --- every file a run reads, decoded before any work ---------------------------------------------


def _voc_files(data_root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) of every VOC 2012 ``split`` item, in the order :func:`voc_tensors` reads
    them (torchvision's: the split file's)."""
    dataset = torchvision_dataset("voc2012", data_root, split)
    return [(Path(image), Path(mask)) for image, mask in zip(dataset.images, dataset.masks)]


def _cityscapes_files(data_root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, label-id map) of every Cityscapes ``split`` item, in the order
    :func:`cityscapes_tensors` reads them (by name)."""
    dataset = torchvision_dataset("cityscapes", data_root, split, target_type="semantic")
    return [(Path(image), Path(target[0]))
            for image, target in zip(dataset.images, dataset.targets)]


_PAIRED: dict[str, Callable[[Path, str], list[tuple[Path, Path]]]] = {
    "voc2012": _voc_files, "cityscapes": _cityscapes_files}


def _check_verify_request(name: str, split: str | None, limit: int | None) -> None:
    """Raise a ``ValueError`` if :func:`verify_dataset` cannot verify ``name`` with these
    arguments."""
    dataset_info(name)
    if name not in SALIENCY and name not in _PAIRED:
        raise ValueError(f"{name!r} has no image files to verify (CIFAR's binary files are checked "
                         f"by torchvision's md5 sums); verify_dataset takes "
                         f"{list(SALIENCY) + list(_PAIRED)}")
    if (split is None) != (name in SALIENCY):
        raise ValueError(f"{name!r}: split={split!r}; a saliency dataset takes no split, VOC 2012 "
                         "and Cityscapes need one")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive or None, got {limit}")


def verify_dataset(name: str, data_root: str | Path, split: str | None = None,
                   limit: int | None = None, min_side: int = MIN_SIDE) -> list[tuple[int, int]]:
    """Decode every image and mask of dataset ``name`` that a run reads, and return the images'
    (width, height): what a chapter's ``validate`` calls, so that a bad file fails before any work.

    Each file is decoded in full (:func:`_verify`: a truncated file fails too), one at a time, and
    nothing decoded is kept. A run therefore decodes its files twice, here and when it loads
    them: at the paper's scale (DUT-S: 10,553 images and as many masks; Cityscapes val: 500
    images of 2048 x 1024 px) this check takes a minute or two.

    Args:
        name: A saliency dataset (``SALIENCY``), ``"voc2012"`` or ``"cityscapes"`` (its images and
            ``labelIds`` maps). CIFAR's binary files are checked by torchvision when loaded.
        data_root: The folder holding the datasets, laid out as ``DATASETS[name].layout``.
        split: VOC 2012's or Cityscapes' split; ``None`` for a saliency dataset.
        limit: Only the first ``limit`` items, in the order the loaders read them; ``None``: all.
        min_side: The shortest side an image may have, in pixels (see :func:`grid_min_side`).

    Raises:
        ValueError: If ``name``, ``split`` or ``limit`` does not fit; naming the dataset and the
            file, if a file is malformed, truncated, too small, or a mask of another size than its
            image.
        DatasetNotFoundError: If the dataset is missing or incomplete.
    """
    _check_verify_request(name, split, limit)
    try:
        if split is None:
            # built, it has decoded every file; its image size is unused (nothing is resized)
            return saliency_dataset(name, data_root, min_side, limit, min_side).sizes
        pairs = _PAIRED[name](_absolute(data_root), split)[:limit]
        return [_verify_pair(image, mask, min_side) for image, mask in pairs]
    except ValueError as err:  # a DatasetNotFoundError is no ValueError: it passes as it is
        raise ValueError(f"dataset {name!r}: {err}") from err


# --- datasets as tensors at a chapter's size ---------------------------------------------------


def saliency_tensors(name: str, data_root: str | Path, size: int, limit: int | None = None,
                     min_side: int = MIN_SIDE) -> tuple[Tensor, Tensor]:
    """Images ``float32 [N, 3, S, S]`` and masks ``float32 [N, S, S]`` of a saliency dataset
    under ``data_root`` (see :func:`saliency_dataset`)."""
    dataset = saliency_dataset(name, data_root, size, limit=limit, min_side=min_side)
    items = [dataset[i] for i in tqdm(range(len(dataset)), desc=name, leave=False)]
    return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])


def image_folder_tensors(folder: str | Path, size: int,
                         min_side: int = MIN_SIDE) -> tuple[Tensor, list[tuple[int, int]]]:
    """Every image of a folder (JPEG, PNG or BMP, any size of at least ``min_side`` px, grey
    (8 or 16 bits) or colour), upright by its EXIF orientation, as RGB resized to ``size x size``.

    Returns:
        Images ``float32 [N, 3, S, S]`` in [0, 1], and each file's (width, height).

    Raises:
        DatasetNotFoundError: If the folder is missing or holds no image.
        ValueError: Naming the file, if one is unreadable, truncated or too small; naming them, if
            the folder holds image files of another format (HEIC, WebP, TIFF, ...); if
            ``folder`` is a file.
    """
    dataset = ImageFolderDataset(folder, size, upright=True, min_side=min_side)
    items = [dataset[i][0] for i in tqdm(range(len(dataset)), desc="images", leave=False)]
    return torch.stack(items), dataset.sizes


def voc_tensors(data_root: str | Path, split: str, size: int,
                limit: int | None = None) -> tuple[Tensor, Tensor]:
    """PASCAL VOC 2012 segmentation through torchvision's class, resized to ``size x size``.

    Returns:
        Images ``float32 [N, 3, S, S]`` in [0, 1] (bilinear) and class maps ``int64 [N, S, S]``
        (nearest neighbour; ``IGNORE`` marks object boundaries, left out of loss and scores).
    """
    dataset = torchvision_dataset("voc2012", data_root, split)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    images, masks = [], []
    for i in tqdm(range(n), desc=f"VOC {split}", leave=False):
        image, mask = dataset[i]
        image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255)
        mask = mask.resize((size, size), Image.Resampling.NEAREST)
        masks.append(torch.from_numpy(np.asarray(mask).astype(np.int64)))
    return torch.stack(images), torch.stack(masks)


def cifar_tensors(name: str, data_root: str | Path, split: str, size: int,
                  limit: int | None = None) -> tuple[Tensor, Tensor]:
    """CIFAR-10 or CIFAR-100 (``name``) through torchvision, resized to ``size`` px.

    Returns:
        The first ``limit`` images (all if ``None``), ``float32 [N, 3, S, S]`` in [0, 1], and
        their labels ``int64 [N]``.
    """
    ds = torchvision_dataset(name, data_root, split,
                             transform=v2.Compose([v2.Resize(size), v2.ToImage(),
                                                   v2.ToDtype(torch.float32, scale=True)]))
    n = len(ds) if limit is None else min(limit, len(ds))
    items = [ds[i] for i in tqdm(range(n), desc=f"{name} {split}", leave=False)]
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def cityscapes_tensors(data_root: str | Path, split: str, height: int) -> tuple[Tensor, Tensor]:
    """Cityscapes ``split`` through torchvision, resized to ``height x 2 height``.

    Returns:
        Images ``float32 [N, 3, H, 2H]`` in [0, 1] and masks ``int64 [N, H, 2H]`` of the 19 train
        ids of ``CITYSCAPES_CLASSES`` (``IGNORE`` for every other class), each decoded into its
        place in the two tensors, so the split is held once (Cityscapes val at 1024 px: about
        21 GB; a list stacked at the end would hold it twice).
    """
    lut = torch.full((256,), IGNORE, dtype=torch.long)
    for c in Cityscapes.classes:
        if 0 <= c.id < 256 and 0 <= c.train_id < IGNORE:
            lut[c.id] = c.train_id
    size = (height, 2 * height)
    image_tf = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True),
                           v2.ToDtype(torch.float32, scale=True)])
    mask_tf = v2.Compose([v2.PILToTensor(), v2.Resize(size, v2.InterpolationMode.NEAREST)])
    ds = torchvision_dataset("cityscapes", data_root, split, target_type="semantic")
    images = torch.empty(len(ds), 3, *size)
    masks = torch.empty(len(ds), *size, dtype=torch.long)
    for i in tqdm(range(len(ds)), desc="Cityscapes", leave=False):
        image, target = ds[i]
        images[i], masks[i] = image_tf(image), lut[mask_tf(target)[0].long()]
    return images, masks
