"""Every chapter's ``paper`` profile as a workload of the scale model (:mod:`posinfo.book.scale`).

For each chapter, :data:`PROJECTIONS` builds a :class:`~posinfo.book.scale.Projection` from what
its code does at the paper's sizes: how many images go through which network, forward only or
forward and backward, for how many epochs and replicates; which features and networks it caches on
disk (features in float16, as :mod:`posinfo.probe.features` stores them); what it holds in host
memory at its worst moment; and the least-squares readouts' ``d x d`` float64 systems (about
``3 d^2 x 8`` bytes at the peak, ``d = channels x kernel^2 + 1``). Every network is measured on
the meta device at the chapter's full resolution (:func:`~posinfo.book.scale.measure`).

Library modules may not import a chapter module (``tests/test_layout.py``), so the profiles' knobs
the model reads are copied in :data:`PAPER_KNOBS`, and the few constants of a chapter it needs
beside them; ``tests/book/test_workloads.py`` checks every copy against the chapter modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from posinfo.book.scale import (GB, SUSTAINED_CONV_FLOPS, Footprint, Projection, Step,
                                inference_gpu_bytes, measure, training_gpu_bytes)
from posinfo.data.position_tasks import THIRDS
from posinfo.data.targets import SYNTHETIC_INPUTS
from posinfo.metrics.dense import REGIONS
from posinfo.models import augshift, gap_networks, segmenter
from posinfo.models.corner_net import CornerNet
from posinfo.models.dense import DenseConfig
from posinfo.models.dense import build_network as build_dense
from posinfo.models.encoders import MultiLevelEncoder, set_padding
from posinfo.probe.features import concat_levels
from posinfo.probe.position_channels import RANKINGS
from posinfo.probe.readout import HOLDOUT_EVERY, RESIDENT_BYTES, RIDGES, PosENet, ReadoutTraining

# The paper profiles' knobs the model reads (copies of each chapter's SPEC.profiles["paper"]).
_PROBE = dict(dataset="duts+pascal-s", image_size=224, feature_size=28, n_train=2000, n_test=None,
              encoders=["vgg16", "resnet152"], weights="imagenet", readout_epochs=15, replicates=3)
PAPER_KNOBS: dict[str, dict[str, Any]] = {
    "01_existence": _PROBE | dict(n_synthetic=100, patterns=["H", "V", "G", "HS", "VS"],
                                  compare_random=True, least_squares=True),
    "02_ablations": _PROBE | dict(n_synthetic=1, patterns=["H", "G", "HS"], compare_random=False,
                                  least_squares=False, depths=[1, 2, 3], kernels=[1, 3, 7],
                                  kernel_stage="all", hidden_channels=None),
    "03_padding": {k: v for k, v in _PROBE.items() if k != "encoders"} | dict(
        encoders=["vgg16"], nopad_image_size=224, nopad_feature_size=28, n_synthetic=1,
        patterns=["H", "G", "HS"], readout_paddings=[0, 1, 2],
        borders=["zero", "reflect", "replicate", "circular"], kayhan_seeds=10, kayhan_steps=300),
    "04_padding_in_tasks": dict(dataset="msra-b+voc2012", arch="vgg16_bn", image_size=224,
                                vgg_width=1.0, n_train=None, n_test=None, epochs=30, batch_size=16,
                                decoder_channels=64, classification="imagenet", probe_train=2000,
                                probe_test=None, n_synthetic=100, feature_size=28,
                                patterns=["H", "G", "HS"], readout_epochs=15, twin_train=2000,
                                twin_test=200, readout_seeds=3, probe_stage="f5",
                                least_squares_all=True, replicates=3,
                                scene_classes=["disk", "triangle", "cross"]),
    "05_gap_channels": dict(source="cifar10", cell=32, grid_sizes=[3, 5, 7], width=1.0,
                            networks=["gapnet", "permutenet"],
                            paddings=["zero", "reflect", "replicate"],
                            image_paddings=["zero", "reflect", "replicate"], n_train=45000,
                            n_val=5000, n_test=None, test_placements=5, location_epochs=20,
                            image_epochs=100, batch_size=48, replicates=3),
    "06_augshift": dict(dataset="cifar10", image_size=32, stem="cifar", n_train=None, n_test=None,
                        width=1.0, epochs=60, batch_size=128, seeds=3, lam=1.0, combine=True,
                        curve_shifts=[1, 2, 4, 8, 12, 16], cons_shift=8, pairs=5,
                        sweep_lams=[0.0, 0.1, 1.0, 10.0]),
    "07_region_attacks": dict(dataset="cityscapes", image_size=1024, n_train=0, epochs=0,
                              n_rank=250, n_eval=250, fractions=[0.005, 0.05, 0.1, 0.25],
                              random_draws=20, batch_size=4, seeds=1),
}
# Images of each split the paper profiles read (posinfo.data.datasets describes each dataset).
DATASET_IMAGES: dict[str, int] = {
    "duts-train": 10553, "pascal-s": 850, "msra-b": 5000, "ecssd": 1000, "dut-omron": 5168,
    "voc2012-train": 1464, "voc2012-val": 1449, "cifar10-train": 50000, "cifar10-test": 10000,
    "cityscapes-val": 500, "imagenet-train": 1_281_167, "imagenet-val": 50000}
# Constants of the chapter modules the model needs (checked against them by the tests).
CONTENT_PATTERNS = ("H", "V", "G")  # chapter 2: the default readout also learns these
SALIENCY_TESTS = ("ecssd", "pascal-s", "dut-omron")  # chapter 4's saliency test sets
TASK_PADDINGS = ("zero", "none")  # chapter 4's paddings of the paper's two tasks
VOC_CLASSES = 21
ANALYSIS_BATCH = 256  # chapter 5's look inside: test objects per forward pass
PAPER_MODELS = ("baseline", "augshift", "blurpool")  # chapter 6
ATTACK_RANKINGS = len(RANKINGS) + 1  # chapter 7: the rankings and the magnitude control
FEATURE_BATCH = 32  # FeatureCache's images per forward pass, and least squares' per chunk
PREDICT_BATCH = 64  # posinfo.probe.readout.predict
DENSE_PREDICT_BATCH = 32  # posinfo.models.dense.predict_dense
SHARED_CACHE = "an earlier chapter's"


def _count(dataset: str, limit: int | None) -> int:
    """Images read from a split: all of them, or the first ``limit``."""
    total = DATASET_IMAGES[dataset]
    return total if limit is None else min(limit, total)


def image_bytes(n: int, height: int, width: int | None = None, *, channels: int = 3,
                itemsize: int = 4) -> float:
    """Bytes of ``n`` images ``[channels, height, width]`` (float32 by default)."""
    return float(n * channels * height * (width or height) * itemsize)


def labelled_bytes(n: int, size: int, label_itemsize: int) -> float:
    """Bytes of ``n`` float32 images of ``size`` px with a one-channel label map each (float32
    masks: 4 bytes a pixel; int64 class maps: 8)."""
    return image_bytes(n, size) + image_bytes(n, size, channels=1, itemsize=label_itemsize)


def feature_bytes(n: int, channels: int, grid: int) -> float:
    """Bytes of cached features ``[n, channels, grid, grid]`` in float16."""
    return float(n * channels * grid * grid * 2)


def batches(n: int, batch: int) -> int:
    """Batches of at most ``batch`` that ``n`` images make."""
    return -(-n // batch)


def scaled(step: Step, times: int, what: str | None = None) -> Step:
    """``step`` done ``times`` over: its FLOPs, disk and jobs multiplied, its peaks the same."""
    return dataclasses.replace(step, what=what or step.what, conv_flops=times * step.conv_flops,
                               fp32_flops=times * step.fp32_flops, fp64_flops=times * step.fp64_flops,
                               disk_bytes=times * step.disk_bytes, jobs=times * step.jobs,
                               batches=times * step.batches, job_share=step.job_share / times)


# --- the networks, measured -----------------------------------------------------------------------


def _on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """A network built on the meta device (no memory, no initialisation), the global random state
    untouched."""
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        return build()


@lru_cache(maxsize=None)
def encoder_channels(arch: str) -> tuple[int, ...]:
    """Channels of each tapped level of a multi-level encoder."""
    return tuple(_on_meta(lambda: MultiLevelEncoder(arch)).channels)


@lru_cache(maxsize=None)
def encoder_footprint(arch: str, size: int, grid: int, padding: str = "zero") -> Footprint:
    """A frozen encoder on ``size`` px images, its levels resized to ``grid`` and concatenated,
    as :class:`~posinfo.probe.features.FeatureCache` computes them (forward passes only)."""
    model = _on_meta(lambda: set_padding(MultiLevelEncoder(arch), padding))
    return measure(model, (3, size, size), call=lambda m, x: concat_levels(m(x), grid))


@lru_cache(maxsize=None)
def readout_footprint(channels: int, grid: int, layers: int = 1, kernel: int = 3, padding: int = 0,
                      hidden: int | None = None) -> Footprint:
    """PosENet on features ``[channels, grid, grid]``, trained (its maps on its own grid)."""
    model = _on_meta(lambda: PosENet(channels, layers, kernel, padding, hidden))
    return measure(model, (channels, grid, grid), call=lambda m, x: m.grid_maps(x), train=True)


@lru_cache(maxsize=None)
def dense_footprint(arch: str, outputs: int, padding: str, size: int, decoder: int) -> Footprint:
    """Chapter 4's encoder-decoder with ``outputs`` channels and the given padding, trained."""
    cfg = DenseConfig("saliency" if outputs == 1 else "segmentation", outputs, "scale", arch,
                      padding=padding, image_size=size, decoder_channels=decoder)
    return measure(_on_meta(lambda: build_dense(cfg)), (3, size, size), train=True)


@lru_cache(maxsize=None)
def gap_footprint(network: str, classes: int, size: int, width: float) -> Footprint:
    """Chapter 5's GAPNet or PermuteNet on ``size`` px canvases, trained."""
    model = _on_meta(lambda: gap_networks.build_network(network, classes, width=width))
    return measure(model, (3, size, size), train=True)


@lru_cache(maxsize=None)
def classifier_footprint(arch: str, stem: str, size: int, width: float = 1.0,
                         classes: int = 10) -> Footprint:
    """Chapter 6's ResNet-18 or BlurPool ResNet-18 on ``size`` px images, trained."""
    spec = augshift.NetSpec(arch, classes, width, stem)
    return measure(_on_meta(lambda: augshift.build_classifier(spec)), (3, size, size), train=True)


@lru_cache(maxsize=None)
def deeplab_feature_shape(height: int) -> tuple[int, int, int]:
    """The last-stage map ``[C, h, w]`` of chapter 7's DeepLabv3-ResNet-50 for ``height x 2
    height`` images (output stride 8)."""
    channels = _on_meta(lambda: segmenter.resnet50_deeplabv3(19)).channels
    return channels, -(-height // segmenter.OUTPUT_STRIDE), -(-2 * height // segmenter.OUTPUT_STRIDE)


@lru_cache(maxsize=None)
def deeplab_footprints(height: int, classes: int = 19) -> tuple[Footprint, Footprint]:
    """Chapter 7's DeepLabv3-ResNet-50 on ``height x 2 height`` images: its backbone (images to
    last-stage features) and its head (features to class logits at the image's size)."""
    model, size = _on_meta(lambda: segmenter.resnet50_deeplabv3(classes)), (height, 2 * height)
    backbone = measure(model, (3, *size), call=lambda m, x: m.features(x))
    head = measure(model, deeplab_feature_shape(height),
                   call=lambda m, f: m.logits_from_features(f, size))
    return backbone, head


# --- shared pieces of work ------------------------------------------------------------------------


def features_step(what: str, fp: Footprint, images: int, channels: int, grid: int, size: int,
                  ram: float, jobs: int, note: str = "") -> Step:
    """Features of ``images`` through one frozen encoder, computed on the GPU in batches of
    ``FEATURE_BATCH`` and cached on disk in float16."""
    return Step(what, conv_flops=images * fp.flops,
                gpu_bytes=inference_gpu_bytes(fp, FEATURE_BATCH, image_bytes(1, size)),
                ram_bytes=ram, disk_bytes=feature_bytes(images, channels, grid), jobs=jobs,
                batches=batches(images, FEATURE_BATCH), note=note)


def readout_flops(fp: Footprint, train: int, epochs: int, predicted: int) -> float:
    """FLOPs of one SGD readout: ``epochs`` passes over ``train`` feature maps, then predictions
    on ``predicted`` maps."""
    return epochs * train * fp.train_flops + predicted * fp.flops


def readout_batches(train: int, epochs: int, predicted: int) -> int:
    """Batches of one SGD readout: its training epochs and its predictions."""
    return epochs * batches(train, ReadoutTraining().batch_size) + batches(predicted, PREDICT_BATCH)


def readout_gpu(fp: Footprint, channels: int, grid: int, train: int) -> float:
    """GPU bytes of training one readout (SGD with momentum): its batch and the features, moved
    to the GPU whole when they take at most ``RESIDENT_BYTES`` in float32, else batch by batch."""
    batch = ReadoutTraining().batch_size
    resident = 2 * feature_bytes(train, channels, grid)  # in float32: twice the cache's float16
    inputs = resident if resident <= RESIDENT_BYTES else 2 * feature_bytes(batch, channels, grid)
    return training_gpu_bytes(fp, batch, 0, optimizer_states=1) + inputs


def least_squares_step(what: str, images: int, channels: int, grid: int, targets: int,
                       ram: float, kernel: int = 3) -> Step:
    """One least-squares readout fit (:func:`~posinfo.probe.readout.least_squares_readout`):
    float32 Gram matrices of every image's ``(grid - kernel + 1)^2`` patches, held-out errors, one
    Cholesky factorisation per ridge tried and per ridge chosen, one eigendecomposition, on the
    GPU. Peak: ``3 d^2`` float64 while solving, or the statistics, a float32 product, its float64
    copy and a chunk of rows while accumulating."""
    d, cells = channels * kernel**2 + 1, (grid - kernel + 1) ** 2
    rows = FEATURE_BATCH * cells * d * 4
    held, solves = images // HOLDOUT_EVERY, len(RIDGES) + min(targets, len(RIDGES))
    fp32 = 2.0 * images * cells * d**2 + 2.0 * held * cells * d * len(RIDGES) * targets
    fp64 = solves * (d**3 / 3 + 2.0 * d**2 * targets) + 4 / 3 * d**3
    gpu = max(24.0 * d**2, 20.0 * d**2 + rows)
    return Step(what, fp32_flops=fp32, fp64_flops=fp64, gpu_bytes=gpu, ram_bytes=ram,
                batches=batches(images + 2 * held, FEATURE_BATCH),
                note=f"d = {d:,} unknowns, {images:,} images of {cells} patches")


def switch_peak(per_image: Sequence[float], train: int, total: int) -> float:
    """Host bytes at the worst change of source in a probe run: the previous source's features of
    all ``total`` images are still held while the next one's ``train`` features are computed (their
    batches and their concatenation, twice their size)."""
    previous = [0.0, *per_image[:-1]]
    return max(p * total + 2 * c * train for p, c in zip(previous, per_image))


def probe_images(train: int, natural: int, synthetic: int, size: int) -> float:
    """Host bytes of a probe run's images: training, natural test images with their masks, and
    the synthetic inputs, float32."""
    return image_bytes(train + natural + synthetic, size) + image_bytes(natural, size, channels=1)


# --- chapter 1 -----------------------------------------------------------------------------------


def _existence_sources(k: dict[str, Any]) -> list[tuple[str, str]]:
    """(encoder, weights) of chapter 1's encoder sources: ImageNet, then random weights."""
    kinds = [k["weights"]] + (["random"] if k["compare_random"] else [])
    return [(arch, w) for w in kinds for arch in k["encoders"]]


def existence(k: dict[str, Any] = PAPER_KNOBS["01_existence"]) -> Projection:
    """Chapter 1: features of every source, SGD readouts per source and pattern in every
    replicate, least squares in replicate 0."""
    train, grid = k["n_train"], k["feature_size"]
    tests = _count("pascal-s", k["n_test"]) + k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    sources = _existence_sources(k)
    channels = {a: sum(encoder_channels(a)) for a in k["encoders"]}
    images = probe_images(train, tests - k["n_synthetic"] * len(SYNTHETIC_INPUTS),
                          k["n_synthetic"] * len(SYNTHETIC_INPUTS), k["image_size"])
    held = images + max(feature_bytes(1, c, grid) for c in channels.values()) * (train + tests)
    return Projection("01_existence", (
        _existence_features(k, sources, channels, images),
        _existence_readouts(k, sources, channels, held),
        *_existence_least_squares(k, sources, channels, held)),
        notes=(f"{k['replicates']} replicates: the ImageNet encoders' features of the training and "
               "PASCAL-S images are the same in every replicate and come from the disk cache "
               "after the first.",))


def _existence_features(k: dict[str, Any], sources: list[tuple[str, str]],
                        channels: dict[str, int], images: float) -> Step:
    """Chapter 1's features: every source on the training and test images in replicate 0; the
    ImageNet encoders again on each later replicate's own synthetic inputs (the rest is cached)."""
    size, grid, train = k["image_size"], k["feature_size"], k["n_train"]
    synthetic = k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    first = train + _count("pascal-s", k["n_test"]) + synthetic
    counts = [first + synthetic * (k["replicates"] - 1 if w == k["weights"] else 0) for _, w in sources]
    ram = images + switch_peak([feature_bytes(1, channels[a], grid) for a, _ in sources], train, first)
    feats = [features_step("features", encoder_footprint(a, size, grid), n, channels[a], grid, size,
                           ram, 1) for (a, _), n in zip(sources, counts)]
    return _sum_steps(f"features of {len(sources)} encoders ({', '.join(k['encoders'])}; "
                      f"{' and '.join(dict.fromkeys(w for _, w in sources))} weights) at {size} px",
                      feats, note=f"{counts[0]:,} images per encoder with {k['weights']} weights "
                                  f"(the later replicates' synthetic inputs included), {counts[-1]:,} "
                                  "per other one (replicate 0 only)")


def _existence_readouts(k: dict[str, Any], sources: list[tuple[str, str]],
                        channels: dict[str, int], ram: float) -> Step:
    """Chapter 1's SGD readouts: every source and pattern in replicate 0, the raw image and the
    ImageNet encoders in the other replicates."""
    grid, train, epochs = k["feature_size"], k["n_train"], k["readout_epochs"]
    tests = _count("pascal-s", k["n_test"]) + k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    first = [3] + [channels[a] for a, _ in sources]
    later = [3] + [channels[a] for a, w in sources if w == k["weights"]]
    every = first + later * (k["replicates"] - 1)
    flops = sum(readout_flops(readout_footprint(c, grid), train, epochs, tests) for c in every)
    gpu = max(readout_gpu(readout_footprint(c, grid), c, grid, train) for c in first)
    return Step(f"{len(every) * len(k['patterns'])} SGD readouts", conv_flops=len(k["patterns"]) * flops,
                gpu_bytes=gpu, ram_bytes=ram, jobs=len(every),
                batches=len(every) * len(k["patterns"]) * readout_batches(train, epochs, tests),
                note=f"{epochs} epochs of {train:,} feature maps each, then {tests:,} predictions")


def _existence_least_squares(k: dict[str, Any], sources: list[tuple[str, str]],
                             channels: dict[str, int], ram: float) -> list[Step]:
    """Chapter 1's least-squares readouts (replicate 0): one fit per source serves every pattern."""
    if not k["least_squares"]:
        return []
    grid, train, patterns = k["feature_size"], k["n_train"], len(k["patterns"])
    fits = [least_squares_step(f"least squares on {a} ({w})", train, channels[a], grid, patterns, ram)
            for a, w in sources]
    raw = least_squares_step("least squares on the raw image", train, 3, grid, patterns, ram)
    return [_sum_steps(f"least squares on {len(fits)} encoders and the raw image", [raw, *fits],
                       note=max(fits, key=lambda s: s.gpu_bytes).note)]


def _sum_steps(what: str, steps: Sequence[Step], note: str = "") -> Step:
    """Steps done one after another, as one: their FLOPs, disk and jobs added, their peaks the
    largest of theirs."""
    total = lambda attr: sum(getattr(s, attr) for s in steps)  # noqa: E731
    hours = total("gpu_hours")
    share = max(s.largest_job_hours for s in steps) / hours if hours else 0.0
    return Step(what, total("conv_flops"), total("fp32_flops"), total("fp64_flops"),
                max(s.gpu_bytes for s in steps), max(s.ram_bytes for s in steps),
                total("disk_bytes"), int(total("jobs")), int(total("batches")), share, note)


# --- chapter 2 -----------------------------------------------------------------------------------


def ablation_readouts(k: dict[str, Any]) -> list[tuple[str, str, int, int, int, int]]:
    """Every readout one replicate of chapter 2 trains, each once: ``(source, stage, channels,
    layers, kernel, patterns)`` (chapter 2's ``plan``, plus the default readout of every source,
    which also learns ``CONTENT_PATTERNS``)."""
    vgg, resnet = (next(e for e in k["encoders"] if e.startswith(f)) for f in ("vgg", "resnet"))
    levels = encoder_channels(vgg)
    stage = lambda s: sum(levels) if s == "all" else levels[int(s[1:]) - 1]  # noqa: E731
    runs = {(s, d, 3, "all") for s in ("raw", vgg) for d in k["depths"]}
    runs |= {(s, 1, kk, "all") for s in ("raw", vgg) for kk in k["kernels"]}
    runs |= {(vgg, 1, kk, k["kernel_stage"]) for kk in k["kernels"]}
    runs |= {(vgg, 1, 3, f"f{i + 1}") for i in range(len(levels))} | {(resnet, 1, 3, "all")}
    default = len(set(k["patterns"]) | set(CONTENT_PATTERNS))
    channels = {"raw": lambda s: 3, vgg: stage, resnet: lambda s: sum(encoder_channels(resnet))}
    return sorted((src, st, channels[src](st), d, kk, default if (d, kk, st) == (1, 3, "all")
                   else len(k["patterns"])) for src, d, kk, st in runs)


def ablations(k: dict[str, Any] = PAPER_KNOBS["02_ablations"]) -> Projection:
    """Chapter 2: the ablation readouts on chapter 1's cached features, in every replicate."""
    size, grid, epochs, train = k["image_size"], k["feature_size"], k["readout_epochs"], k["n_train"]
    natural, reps = _count("pascal-s", k["n_test"]), k["replicates"]
    runs = ablation_readouts(k)
    fps = [readout_footprint(c, grid, d, kk, hidden=_hidden(k, c)) for _, _, c, d, kk, _ in runs]
    flops = sum(p * readout_flops(fp, train, epochs, natural) for fp, (*_, p) in zip(fps, runs))
    per_image = [feature_bytes(1, sum(encoder_channels(e)), grid) for e in k["encoders"]]
    images = probe_images(train, natural, k["n_synthetic"] * len(SYNTHETIC_INPUTS), size)
    ram, disk = images + sum(per_image) * (train + natural), sum(per_image) * (train + natural)
    step = Step(f"{len(runs)} ablation readouts x {reps} replicates", conv_flops=reps * flops,
                gpu_bytes=max(readout_gpu(fp, c, grid, train) for fp, (_, _, c, *_) in zip(fps, runs)),
                ram_bytes=ram, jobs=reps * len(runs),
                batches=reps * sum(p for *_, p in runs) * readout_batches(train, epochs, natural),
                note=f"{epochs} epochs of {train:,} feature maps, then {natural} predictions, per "
                     "pattern; hidden layers as wide as their input")
    cached = Step("chapter 1's features of VGG16 and ResNet-152 (read from the cache)",
                  ram_bytes=ram, disk_bytes=disk, note="training and PASCAL-S images")
    return Projection("02_ablations", (step, cached), shared_disk_bytes=disk, notes=(
        "Features are chapter 1's, read from the shared disk cache (make orders chapter 2 after "
        "chapter 1); run alone, the chapter computes them first.",))


def _hidden(k: dict[str, Any], channels: int) -> int | None:
    """The readout's hidden width: the knob's, at most the input's (``None``: the input's)."""
    return None if k["hidden_channels"] is None else min(k["hidden_channels"], channels)


# --- chapter 3 -----------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def corner_footprint(canvas: int = 32) -> Footprint:
    """Kayhan & van Gemert's one-convolution corner network on ``canvas`` px images, trained."""
    return measure(_on_meta(CornerNet), (3, canvas, canvas), train=True)


def padding(k: dict[str, Any] = PAPER_KNOBS["03_padding"]) -> Projection:
    """Chapter 3: VGG16 with each padding (features and one readout per pattern), the raw-image
    readouts with each padding of the readout, and the corner task."""
    size, grid = k["nopad_image_size"], k["nopad_feature_size"]
    train, natural, vgg = k["n_train"], _count("pascal-s", k["n_test"]), k["encoders"][0]
    channels, images = sum(encoder_channels(vgg)), k["n_train"] + _count("pascal-s", k["n_test"])
    modes = ["zero", "none"] + [b for b in k["borders"] if b != "zero"]
    held = 2 * probe_images(train, natural, k["n_synthetic"] * len(SYNTHETIC_INPUTS), size)
    ram = held + switch_peak([feature_bytes(1, channels, grid)] * len(modes), train, images)
    feats = [features_step(f"features of {vgg} with {m} padding", encoder_footprint(vgg, size, grid, m),
                           images, channels, grid, size, ram, 1) for m in modes[1:]]
    shared = feature_bytes(images, channels, grid)
    return Projection("03_padding", (
        _sum_steps(f"features of {vgg} with {len(feats)} more paddings at {size} px", feats,
                   note=f"{images:,} images each (training and PASCAL-S), replicate 0"),
        Step(f"chapter 1's features of {vgg} with zero padding (read from the cache)", ram_bytes=ram,
             disk_bytes=shared),
        _padding_readouts(k, modes, channels, held + shared)),
        shared_disk_bytes=shared, notes=(
            f"Replicates after the first read {vgg} with zero padding and without only, from the "
            "cache (same images and weights); the images are held twice (the notebook's and the "
            "padding experiment's own copy).", corner_note(k)))


def _padding_readouts(k: dict[str, Any], modes: list[str], channels: int, ram: float) -> Step:
    """Chapter 3's readouts: one per padding of VGG16 and pattern (every padding in replicate 0,
    zero and none after), and the raw-image readouts with each padding of the readout."""
    grid, train, epochs, reps = k["nopad_feature_size"], k["n_train"], k["readout_epochs"], k["replicates"]
    natural, patterns = _count("pascal-s", k["n_test"]), len(k["patterns"])
    encoders = len(modes) + 2 * (reps - 1)
    vgg = readout_footprint(channels, grid)
    raw_pads = list(k["readout_paddings"]) + [1] * (len(k["borders"]) - 1)
    raw = sum(readout_flops(readout_footprint(3, k["feature_size"], padding=p), train, epochs, natural)
              for p in raw_pads)
    readouts = encoders + len(raw_pads) * reps
    return Step(f"{readouts * patterns} readouts",
                conv_flops=patterns * (encoders * readout_flops(vgg, train, epochs, natural) + reps * raw),
                gpu_bytes=readout_gpu(vgg, channels, grid, train), ram_bytes=ram, jobs=readouts,
                batches=patterns * readouts * readout_batches(train, epochs, natural),
                note=f"{encoders} VGG16 paddings and {len(raw_pads)} raw-image settings x {reps} "
                     f"replicates, {patterns} patterns each")


def corner_note(k: dict[str, Any], n: int = 256) -> str:
    """The corner task in words: zero and circular padding, ``kayhan_seeds`` networks each, full
    batches of ``n`` images (chapter 3's ``corner_experiment``), on the CPU."""
    fp, nets = corner_footprint(), 2 * k["kayhan_seeds"]
    flops = nets * (k["kayhan_steps"] * n * fp.train_flops + n * fp.flops)
    return (f"The corner task ({nets} one-convolution networks, {k['kayhan_steps']} full-batch steps "
            f"each: {flops / 1e12:.1f} TFLOP in all) runs on the CPU (train_corner_net takes no "
            "device), and is not in the GPU hours.")


# --- chapter 4 -----------------------------------------------------------------------------------


def twin_outputs(k: dict[str, Any]) -> dict[str, int]:
    """Chapter 4's networks on generated scenes (the twins and, off the scenes, their partners):
    name -> output channels."""
    classes = len(k["scene_classes"]) + 1
    out = {"central saliency": 1, "thirds segmentation": THIRDS + 1}
    if k["dataset"] != "scenes":
        out |= {"saliency (scenes)": 1, "segmentation (scenes)": classes}
    return out


def _task_counts(k: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """The paper's two tasks on real data: name -> (output channels, training images, test
    images)."""
    return {"saliency": (1, _count("msra-b", k["n_train"]),
                         sum(_count(t, k["n_test"]) for t in SALIENCY_TESTS)),
            "segmentation": (VOC_CLASSES, _count("voc2012-train", k["n_train"]),
                             _count("voc2012-val", k["n_test"]))}


def dense_step(what: str, k: dict[str, Any], jobs: list[tuple[int, str, int, int]],
               ram: float) -> Step:
    """Dense networks trained and tested once per replicate: ``jobs`` of (outputs, padding,
    training images, test images); Adam, batches of ``batch_size``, ``epochs`` epochs."""
    size, reps = k["image_size"], k["replicates"]
    fps = [dense_footprint(k["arch"], o, pad, size, k["decoder_channels"]) for o, pad, _, _ in jobs]
    flops = [k["epochs"] * train * fp.train_flops + test * fp.flops
             for fp, (_, _, train, test) in zip(fps, jobs)]
    gpu = max(training_gpu_bytes(fp, k["batch_size"], int(image_bytes(1, size)), 2) for fp in fps)
    params = max(fp.param_bytes for fp in fps)
    steps = sum(k["epochs"] * batches(train, k["batch_size"]) + batches(test, DENSE_PREDICT_BATCH)
                for _, _, train, test in jobs)
    return Step(what, conv_flops=reps * sum(flops), gpu_bytes=gpu, ram_bytes=ram, jobs=reps * len(jobs),
                batches=reps * steps, job_share=max(flops) / (reps * sum(flops)),
                disk_bytes=reps * len(jobs) * params + 4 * params,
                note=f"{k['epochs']} epochs, batch {k['batch_size']}; each network cached (and "
                     "checkpointed every epoch with its Adam state)")


def _task_ram(k: dict[str, Any]) -> float:
    """Host bytes of one replicate's tasks as chapter 4 holds them: the real datasets (float32
    images and saliency masks, int64 class maps), the scenes' test sets, and every network's
    predictions on its test sets (float32 maps, int64 class maps)."""
    size, counts = k["image_size"], _task_counts(k)
    (_, sal_train, sal_test), (_, voc_train, voc_test) = counts["saliency"], counts["segmentation"]
    data = labelled_bytes(sal_train + sal_test, size, 4) + labelled_bytes(voc_train + voc_test, size, 8)
    scenes = len(twin_outputs(k)) * labelled_bytes(k["twin_test"], size, 8)
    preds = len(TASK_PADDINGS) * (image_bytes(sal_test, size, channels=1)
                                  + image_bytes(voc_test, size, channels=1, itemsize=8))
    return data + scenes + preds


def padding_in_tasks(k: dict[str, Any] = PAPER_KNOBS["04_padding_in_tasks"]) -> Projection:
    """Chapter 4: per replicate, the paper's two tasks with and without padding, the networks on
    generated scenes, and the probe of eight frozen encoders (features, SGD and least squares)."""
    size, reps = k["image_size"], k["replicates"]
    kept = 2 * _task_ram(k)  # this replicate's tasks, and replicate 0's kept for the figures
    probe = _probe_steps(k, kept)
    real = [(o, pad, n, t) for o, n, t in _task_counts(k).values() for pad in TASK_PADDINGS]
    scenes = [(o, "zero", k["twin_train"], k["twin_test"]) for o in twin_outputs(k).values()]
    epoch = 2 * labelled_bytes(k["twin_train"], size, 8)  # one epoch's scenes, drawn then stacked
    return Projection("04_padding_in_tasks", (
        dense_step(f"{len(real)} networks on MSRA-B and VOC 2012 x {reps} replicates", k, real, kept),
        dense_step(f"{len(scenes)} networks on generated scenes x {reps} replicates", k, scenes,
                   kept + epoch),
        *probe), notes=(
        f"The generated scenes are drawn anew on the CPU for every epoch: {k['twin_train']:,} "
        f"scenes x {k['epochs']} epochs x {len(scenes)} networks x {reps} replicates; CPU time, "
        "not counted in the GPU hours.",
        "Replicate 0's networks, datasets and predictions stay in memory for the figures while "
        "the later replicates run, each of which loads the datasets again.",
        "The feature cache keeps every probed encoder's features of every replicate (the dense "
        "encoders and the untrained start differ per replicate); nothing removes them. Jobs of one "
        f"replicate each that emptied the cache's features/ folder after their probe would need "
        f"about {probe[0].disk_bytes / reps / GB:.0f} GB each."))


def _probe_steps(k: dict[str, Any], kept: float) -> list[Step]:
    """Chapter 4's probe, over all replicates: features of every probed encoder, its SGD readouts
    (the best of ``readout_seeds``) and its least-squares readouts."""
    size, grid, reps, arch = k["image_size"], k["feature_size"], k["replicates"], k["arch"]
    # the classifier, the paper's two tasks, their untrained start, the networks on the scenes
    levels, encoders = encoder_channels(arch), 4 + len(twin_outputs(k))
    channels, train = sum(levels), k["probe_train"]
    tests = _count("pascal-s", k["probe_test"]) + k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    synthetic = k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    images = encoders * (train + tests) + (reps - 1) * ((encoders - 1) * (train + tests) + synthetic)
    ram = kept + probe_images(train, tests - synthetic, synthetic, size) + switch_peak(
        [feature_bytes(1, channels, grid)] * encoders, train, train + tests)
    fp = encoder_footprint(arch, size, grid)
    feats = features_step(f"features of {encoders} probed encoders x {reps} replicates", fp, images,
                          channels, grid, size, ram, encoders * reps,
                          note=f"{train + tests:,} images per encoder (DUT-S, PASCAL-S, synthetic); "
                               "the ImageNet classifier's once, then each replicate's synthetic inputs")
    return [feats, scaled(_probe_readouts(k, channels, levels, ram), encoders * reps,
                          f"probe readouts on {encoders} encoders x {reps} replicates")]


def _probe_readouts(k: dict[str, Any], channels: int, levels: Sequence[int], ram: float) -> Step:
    """Chapter 4's readouts of one probed encoder: SGD on all levels (``readout_seeds`` fits per
    pattern, each scored on its training maps), least squares on all levels (if asked) and on
    ``probe_stage``, every readout predicting every test set."""
    grid, train, epochs = k["feature_size"], k["probe_train"], k["readout_epochs"]
    patterns = len(k["patterns"])
    tests = _count("pascal-s", k["probe_test"]) + k["n_synthetic"] * len(SYNTHETIC_INPUTS)
    stage = levels[int(k["probe_stage"][1:]) - 1]
    sgd = readout_footprint(channels, grid)
    fits = [least_squares_step("least squares on all levels", train, channels, grid, patterns, ram)
            ] if k["least_squares_all"] else []
    fits.append(least_squares_step(f"least squares on {k['probe_stage']}", train, stage, grid,
                                   patterns, ram))
    predictions = patterns * tests * (sgd.flops * (1 + len(fits)))
    sgd_step = Step("SGD readouts", conv_flops=k["readout_seeds"] * patterns * readout_flops(
        sgd, train, epochs, train) + predictions, gpu_bytes=readout_gpu(sgd, channels, grid, train),
        ram_bytes=ram, batches=k["readout_seeds"] * patterns * readout_batches(train, epochs, train)
        + patterns * (1 + len(fits)) * batches(tests, PREDICT_BATCH))
    return _sum_steps("probe readouts of one encoder", [sgd_step, *fits], note=fits[0].note)


# --- chapter 5 -----------------------------------------------------------------------------------


def gap_networks_step(k: dict[str, Any], task: str, resident: float, ram: float) -> Step:
    """Every network of one task of chapter 5 over all replicates: each padding, grid size and
    network, trained for the task's epochs (each epoch scored on the validation objects) and
    tested on ``test_placements`` placements of every test object; Adam, batches of
    ``batch_size``. ``resident``: GPU bytes of the networks kept on the GPU meanwhile."""
    paddings, epochs = ((k["paddings"], k["location_epochs"]) if task == "location"
                        else (k["image_paddings"], k["image_epochs"]))
    tests = k["test_placements"] * _count("cifar10-test", k["n_test"])
    fps = [(n, gap_footprint(net, n * n if task == "location" else 10, k["cell"] * n, k["width"]))
           for n in k["grid_sizes"] for net in k["networks"]]
    job = [epochs * (k["n_train"] * fp.train_flops + k["n_val"] * fp.flops) + tests * fp.flops
           for _, fp in fps]
    gpu = max(training_gpu_bytes(fp, k["batch_size"], int(image_bytes(1, k["cell"] * n)), 2)
              for n, fp in fps)
    nets, reps = len(paddings) * len(fps), k["replicates"]
    bs = k["batch_size"]
    steps = epochs * (batches(k["n_train"], bs) + batches(k["n_val"], bs)) + batches(tests, bs)
    return Step(f"{task} task: {nets} networks x {reps} replicates",
                conv_flops=reps * len(paddings) * sum(job), gpu_bytes=gpu + resident, ram_bytes=ram,
                jobs=reps * nets, batches=reps * nets * steps,
                job_share=max(job) / (reps * len(paddings) * sum(job)),
                disk_bytes=reps * nets * max(fp.param_bytes for _, fp in fps),
                note=f"{epochs} epochs of {k['n_train']:,} objects on {k['grid_sizes']} grids of "
                     f"{k['cell']}-px cells, {k['n_val']:,} validation objects per epoch")


def gap_channels(k: dict[str, Any] = PAPER_KNOBS["05_gap_channels"]) -> Projection:
    """Chapter 5: GAPNet and PermuteNet for location and for the image's class at every padding
    and grid size, in every replicate, and the look inside GAPNet (replicate 0)."""
    cell, n, test = k["cell"], max(k["grid_sizes"]), _count("cifar10-test", k["n_test"])
    pool = _count("cifar10-train", k["n_train"] + k["n_val"])
    ram = 3 * labelled_bytes(pool, cell, 4) + 2 * image_bytes(test, cell)  # loaded, then split
    nets = len(k["paddings"] + k["image_paddings"]) * len(k["grid_sizes"]) * len(k["networks"])
    fp = gap_footprint("gapnet", 10, cell * n, k["width"])
    resident = (nets + 1) * fp.param_bytes  # replicate 0's networks and an untrained one, on the GPU
    passes = 3 * n * n * test
    inside = Step(f"look inside GAPNet: 3 variants x {n * n} cells", conv_flops=passes * fp.flops,
                  gpu_bytes=resident + inference_gpu_bytes(fp, ANALYSIS_BATCH, int(image_bytes(1, cell * n))),
                  ram_bytes=ram, batches=3 * n * n * batches(test, ANALYSIS_BATCH),
                  note=f"every test object in every cell of the {n} x {n} grid")
    return Projection("05_gap_channels", (gap_networks_step(k, "location", resident, ram),
                                          gap_networks_step(k, "image", resident, ram), inside),
                      notes=("Each network is its own cached job, checkpointed after every epoch "
                             "(train_cached resumes it), so the run splits into jobs of at most one "
                             "network each.",
                             f"Replicate 0's {nets} networks stay on the GPU for the look inside.",
                             "Every batch's canvases are composed on the CPU (grid.place), which the "
                             "GPU waits for; not counted."))


# --- chapter 6 -----------------------------------------------------------------------------------


def augshift_trainings(k: dict[str, Any]) -> list[tuple[str, int]]:
    """Every classifier chapter 6 trains, as (architecture, views per image): the paper's three
    models for every seed, AugShift on BlurPool (if ``combine``), and the lambda sweep (seed 0;
    its run at ``lam`` is the main AugShift run's, cached)."""
    runs = [augshift.MODELS[m] for m in PAPER_MODELS for _ in range(k["seeds"])]
    runs += [augshift.MODELS["augshift+blurpool"]] if k["combine"] else []
    runs += [augshift.MODELS["augshift"] for lam in k["sweep_lams"] if lam != k["lam"]]
    return [(arch, 2 if method == "augshift" else 1) for arch, method in runs]


def augshift_chapter(k: dict[str, Any] = PAPER_KNOBS["06_augshift"]) -> Projection:
    """Chapter 6: the classifiers on CIFAR-10 (AugShift's two views per image doubling its
    passes), their top-1 and their shift consistency."""
    size, train = k["image_size"], _count("cifar10-train", k["n_train"])
    test, runs = _count("cifar10-test", k["n_test"]), augshift_trainings(k)
    fps = [classifier_footprint(arch, k["stem"], size, k["width"]) for arch, _ in runs]
    flops = [k["epochs"] * train * views * fp.train_flops for fp, (_, views) in zip(fps, runs)]
    ram = 2 * image_bytes(train + test, size) + 3 * image_bytes(test, size)
    gpu = max(training_gpu_bytes(fp, k["batch_size"] * views, int(image_bytes(1, size)), 2)
              for fp, (_, views) in zip(fps, runs))
    params = max(fp.param_bytes for fp in fps)
    training = Step(f"{len(runs)} classifiers trained ({sum(v == 2 for _, v in runs)} with AugShift)",
                    conv_flops=sum(flops), gpu_bytes=gpu, ram_bytes=ram, jobs=len(runs),
                    batches=k["epochs"] * batches(train, k["batch_size"]) * sum(v for _, v in runs),
                    job_share=max(flops) / sum(flops), disk_bytes=(len(runs) + 4) * params,
                    note=f"{k['epochs']} epochs of {train:,} images, batch {k['batch_size']} (two views "
                         "per image with AugShift, both kept for one backward pass); AdamW")
    return Projection("06_augshift", (training, _augshift_evaluation(k, ram)), notes=(
        "Every batch's random shifts and flips are drawn on the CPU before it goes to the GPU; not "
        "counted.", augshift_imagenet_note()))


def _augshift_evaluation(k: dict[str, Any], ram: float) -> Step:
    """Top-1 and consistency of every classifier: the main runs at every shift of the curve,
    ``pairs`` pairs of shifted copies per image; the sweep at ``cons_shift`` only."""
    size, test = k["image_size"], _count("cifar10-test", k["n_test"])
    shifts = len(set(k["curve_shifts"]) | {k["cons_shift"]})
    main = len(PAPER_MODELS) * k["seeds"] + int(k["combine"])
    passes = test * (main * (1 + shifts * k["pairs"] * 2) + len(k["sweep_lams"]) * (1 + k["pairs"] * 2))
    fp = max((classifier_footprint(a, k["stem"], size, k["width"]) for a in augshift.ARCHS),
             key=lambda f: f.flops)
    return Step(f"top-1 and consistency of {main + len(k['sweep_lams'])} classifiers",
                conv_flops=passes * fp.flops, ram_bytes=ram, batches=batches(passes, 256),
                gpu_bytes=inference_gpu_bytes(fp, 256, int(image_bytes(1, size))),
                note=f"{passes:,} forward passes (at the larger network's FLOPs)")


def augshift_imagenet_note(epochs: int = 90) -> str:
    """What one run of the distributed ImageNet AugShift script (``augshift_imagenet``, beside
    the chapter modules) would take (not part of the paper profile, which trains on CIFAR-10)."""
    fp = classifier_footprint("resnet18", "imagenet", 224, 1.0, 1000)
    hours = {v: epochs * DATASET_IMAGES["imagenet-train"] * v * fp.train_flops / SUSTAINED_CONV_FLOPS
             / 3600 for v in (1, 2)}
    return (f"ImageNet is not in the paper profile: the torchrun script augshift_imagenet trains one "
            f"model per launch ({epochs} epochs; about {hours[1]:.0f} GPU hours for a standard "
            f"ResNet-18 and {hours[2]:.0f} for AugShift's two views at "
            f"{SUSTAINED_CONV_FLOPS / 1e12:.0f} TFLOP/s). It saves no "
            "checkpoint, so a run cannot be split into jobs of a few hours; its loader decodes and "
            "augments two crops of every image even for the standard models.")


# --- chapter 7 -----------------------------------------------------------------------------------


def region_attacks(k: dict[str, Any] = PAPER_KNOBS["07_region_attacks"]) -> Projection:
    """Chapter 7: DeepLabv3-ResNet-50 (inference only) ranks the channels on the ranking images
    and is attacked on the evaluation images, every attack from one backbone pass per batch."""
    height, batch = k["image_size"], k["batch_size"]
    backbone, _ = deeplab_footprints(height)
    attacks = 1 + len(k["fractions"]) * (ATTACK_RANKINGS + k["random_draws"] + 2)
    ranking = (2 * len(RANKINGS) + 1 + 2) * k["n_rank"]  # one-sided images: at most all of them
    val = DATASET_IMAGES["cityscapes-val"]
    ram = (image_bytes(val, height, 2 * height)
           + image_bytes(val, height, 2 * height, channels=1, itemsize=8))
    picture = int(image_bytes(1, height, 2 * height))
    rank = Step(f"channel rankings: {ranking:,} backbone passes", conv_flops=ranking * backbone.flops,
                gpu_bytes=backbone.param_bytes + inference_gpu_bytes(backbone, batch, picture),
                ram_bytes=ram, batches=batches(ranking, batch),
                note="the network and its mirrored copy; each one-sided image twice")
    return Projection("07_region_attacks", (rank, _attack_step(k, attacks, ram)), notes=(
        f"Every attack's class maps go back to the CPU, where the confusion matrices of the "
        f"{len(REGIONS)} regions are counted: {attacks * k['n_eval']:,} maps of {2 * height * height:,} "
        "pixels, CPU time not in the GPU hours.",
        f"cityscapes_tensors decodes all {val} validation images at full size into one tensor "
        "(and the masks, int64, into another), held for the whole run.",
        "The DeepLabv3 weights are not downloaded: a Cityscapes checkpoint must be supplied."))


def _attack_step(k: dict[str, Any], attacks: int, ram: float) -> Step:
    """Chapter 7's attacks: per batch of evaluation images one backbone pass, then the head once
    per attack on the kept last-stage map (zeroed channels on a copy), class maps at full size."""
    height, batch = k["image_size"], k["batch_size"]
    backbone, head = deeplab_footprints(height)
    c, h, w = deeplab_feature_shape(height)
    features, picture = 4 * c * h * w, int(image_bytes(1, height, 2 * height))
    per_image = picture + 2 * features + head.eval_bytes + 8 * height * 2 * height  # int64 classes
    return Step(f"{attacks} attacks on {k['n_eval']} images",
                conv_flops=k["n_eval"] * (backbone.flops + attacks * head.flops),
                gpu_bytes=backbone.param_bytes + batch * per_image, ram_bytes=ram,
                batches=(1 + attacks) * batches(k["n_eval"], batch),
                note=f"one backbone pass per image, the head once per attack; batches of {batch} "
                     f"at {height} x {2 * height} px")


# --- every chapter --------------------------------------------------------------------------------

PROJECTIONS: dict[str, Callable[[], Projection]] = {
    "01_existence": existence, "02_ablations": ablations, "03_padding": padding,
    "04_padding_in_tasks": padding_in_tasks, "05_gap_channels": gap_channels,
    "06_augshift": augshift_chapter, "07_region_attacks": region_attacks}


def paper_scale(chapters: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``paper_scale.json``: each chapter's entry (:meth:`~posinfo.book.scale.Projection.to_json`),
    by chapter name; all chapters unless ``chapters`` names some."""
    names = list(PROJECTIONS) if chapters is None else list(chapters)
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"no scale model for {unknown}; known: {list(PROJECTIONS)}")
    return {name: PROJECTIONS[name]().to_json() for name in names}
