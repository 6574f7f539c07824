"""Probing frozen encoders for position: the machinery chapters 1-4 share.

A probe run reads out position maps (:mod:`posinfo.data.targets`) from *sources*: the raw image
("PosENet alone" in the paper) or an encoder's multi-level features, with the book's synthetic,
ImageNet or random weights. Features of a source are computed once per run and cached on disk
(:class:`posinfo.probe.features.FeatureCache`), then shared by every readout that reads them.

- :func:`load_data`: training images, natural test images and the synthetic inputs.
- :func:`check_inputs_exist`: the datasets (every file decoded), pre-training sizes and weight
  files a run needs, checked before any work.
- :func:`load_sources`: the raw image and every encoder of the run.
- :func:`run_readouts`: one SGD (and least-squares) readout per source and pattern, scored on
  every test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo.book.params import FLAG, PATH, Config, Knob, choice, integer, real, under_root
from posinfo.cache import cache_root
from posinfo.data import targets
from posinfo.data.datasets import (DatasetNotFoundError, ImageFolderDataset, dataset_root,
                                   grid_min_side, image_folder_tensors, saliency_tensors,
                                   verify_dataset)
from posinfo.data.scenes import SyntheticScenes
from posinfo.metrics.position import score
from posinfo.models.encoders import (ARCHITECTURES, INPUT_NORMS, build_encoder,
                                     require_imagenet_weights)
from posinfo.models.pretrain import PretrainConfig, synthetic_encoder
from posinfo.probe.features import FeatureCache, image_on_grid
from posinfo.probe.readout import (LinearReadout, ReadoutTraining, fit_readout, least_squares_readout,
                                   predict)

TEST_SETS = ("natural",) + targets.SYNTHETIC_INPUTS
# The knobs of a probe run (chapters 1-3 take all of them), with their types and ranges.
PROBE_KNOBS: dict[str, Knob] = {
    "dataset": choice(("scenes", "duts+pascal-s")), "image_size": integer(16, 4096),
    "feature_size": integer(1, 512), "n_train": integer(1), "n_test": integer(1, optional=True),
    "n_synthetic": integer(1), "patterns": choice(targets.PATTERNS, is_list=True),
    "encoders": choice(ARCHITECTURES, is_list=True),
    "weights": choice(("synthetic", "imagenet", "random")), "vgg_width": real(1 / 64, 4),
    "input_norm": choice(INPUT_NORMS), "readout_epochs": integer(1, 10_000),
    "compare_random": FLAG, "least_squares": FLAG, "pretrain_size": integer(16, 1024, by_name=True),
    "pretrain_images": integer(1), "pretrain_epochs": integer(1, 10_000), "cache_dir": PATH,
    "replicates": integer(1, 100, help="an int in [1, 100]: independent replicates (each its own "
                          "data draw, encoder training and readout initialisation) that every "
                          "claim is decided from")}
RAW = "posenet"  # the readout on the raw image, "PosENet alone" in the paper
# What every readout is scored by on every test set (:func:`posinfo.metrics.position.score`).
SCORES = ("spc", "spc_paper", "mae", "n_constant", "n_images")


@dataclass
class ProbeData:
    """Images of one run: ``train`` ``[N, 3, S, S]``, a test tensor per name of ``TEST_SETS``, and
    the object (saliency) masks ``[M, S, S]`` of the natural test images (none, ``[0, S, S]``,
    for a reader's own images). ``natural_source`` says where the natural test images came from,
    and ``natural_sizes`` holds their sizes on disk (width, height) when they came from files."""

    train: Tensor
    tests: dict[str, Tensor]
    natural_masks: Tensor
    natural_source: str = ""
    natural_sizes: list[tuple[int, int]] = field(default_factory=list)


def load_data(cfg: Config, progress: bool = True) -> ProbeData:
    """The training images, the natural test images and the synthetic inputs of a run.

    The default profile draws both sets from the generated scenes (different seeds); the paper
    profile trains on DUT-S and tests on PASCAL-S, read from ``cfg.data_root``. A run whose
    chapter takes the knob ``test_images`` and sets it tests on every image of that folder
    instead (the readouts are trained as the profile trains them). Images smaller than the feature
    grid are refused (:func:`~posinfo.data.datasets.grid_min_side`), as in
    :func:`check_inputs_exist`.
    """
    size, min_side = cfg.image_size, grid_min_side(cfg.feature_size)
    sizes: list[tuple[int, int]] = []
    if cfg.dataset == "scenes":
        train = SyntheticScenes(cfg.n_train, size, seed=20_000 + cfg.seed).tensors(progress)[0]
        natural, _, _, masks = SyntheticScenes(cfg.n_test, size, seed=30_000 + cfg.seed).tensors(progress)
        source = "generated scenes"
    else:
        train = saliency_tensors("duts-train", cfg.data_root, size, cfg.n_train, min_side)[0]
        natural, masks, source = None, None, "PASCAL-S"
    if (folder := own_test_images(cfg)) is not None:
        natural, sizes = image_folder_tensors(folder, size, min_side)
        masks, source = torch.zeros(0, size, size), str(folder)
    elif natural is None:
        natural, masks = saliency_tensors("pascal-s", cfg.data_root, size, cfg.n_test, min_side)
    tests = {"natural": natural} | {
        kind: targets.synthetic_inputs(kind, cfg.n_synthetic, size, seed=cfg.seed)
        for kind in targets.SYNTHETIC_INPUTS}
    return ProbeData(train, tests, masks, source, sizes)


def own_test_images(cfg: Config) -> Path | None:
    """The folder of the reader's own test images (knob ``test_images``, a relative path taken
    from the book's folder), or ``None`` when the run uses the profile's test set."""
    folder = cfg.knobs.get("test_images")
    return None if folder is None else under_root(folder)


def check_inputs_exist(cfg: Config, grid: int | None = None) -> None:
    """What every chapter built on these data and encoders checks first: the paper profile's
    datasets under ``data_root``, a ``pretrain_size`` for every synthetic encoder, the ImageNet
    weight files (at width 1.0), then, last as it takes longest, every image and mask the run
    reads, decoded (the reader's own test images, or DUT-S and PASCAL-S: see
    :func:`~posinfo.data.datasets.verify_dataset`).

    Args:
        cfg: The run's configuration.
        grid: The finest feature grid the run reads maps on (``cfg.feature_size`` if ``None``):
            every image needs at least that many pixels on its shorter side
            (:func:`~posinfo.data.datasets.grid_min_side`).
    """
    if cfg.least_squares and cfg.n_train < 2:
        raise ValueError(f"least_squares=True holds out training images to choose its ridge and "
                         f"needs n_train >= 2; got n_train={cfg.n_train}")
    own = own_test_images(cfg)
    datasets = [] if cfg.dataset == "scenes" else [("duts-train", cfg.n_train)]
    if datasets and own is None:
        datasets.append(("pascal-s", cfg.n_test))  # the profile's natural test images
    for name, _ in datasets:
        dataset_root(name, cfg.data_root)
    if cfg.weights == "synthetic":
        for arch in cfg.encoders:
            pretrain_config(cfg, arch)
    if cfg.weights == "imagenet":
        for arch in cfg.encoders:
            require_imagenet_weights(arch, cfg.vgg_width)
    min_side = grid_min_side(cfg.feature_size if grid is None else grid)
    for name, limit in datasets:
        verify_dataset(name, cfg.data_root, limit=limit, min_side=min_side)
    if own is not None:
        check_own_images(own, cfg.image_size, min_side)


def check_own_images(folder: Path, size: int, min_side: int) -> None:
    """Decode every image of the reader's folder (knob ``test_images``); every error names the
    knob, and the file where one is at fault.

    Raises:
        ValueError: If ``folder`` is a file; if a file is unreadable, truncated or smaller than
            ``min_side`` px; if the folder holds image files of a format the book does not read.
        DatasetNotFoundError: If the folder does not exist or holds no image.
    """
    if folder.is_file():
        raise ValueError(f"test_images must be a folder of images; {folder} is a file")
    try:
        ImageFolderDataset(folder, size, upright=True, min_side=min_side)
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(f"test_images: {err}", None, err.path, err.problem) from err
    except ValueError as err:
        raise ValueError(f"test_images: {err}") from err


class RawImage(nn.Module):
    """The identity 'encoder': the readout then sees the raw image ("PosENet alone"), resized to
    the feature grid as the paper's decoder resizes it (:func:`source_inputs`)."""

    def forward(self, x: Tensor) -> list[Tensor]:
        """Images ``[B, 3, H, W]`` to ``[x]``."""
        return [x]


@dataclass
class Source:
    """Something the readout reads from: an encoder with given weights, or the raw image."""

    encoder: str
    weights: str
    module: nn.Module
    record: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.encoder if self.weights in ("none", "") else f"{self.encoder} ({self.weights})"


def pretrain_config(cfg: Config, arch: str) -> PretrainConfig:
    """How the synthetic encoder ``arch`` of this profile is trained (shared by all chapters).

    ``cfg.pretrain_size`` is one image size for every encoder, or a size per architecture.
    """
    size = cfg.pretrain_size
    if isinstance(size, dict):
        if arch not in size:
            raise ValueError(f"pretrain_size gives no image size for {arch}: {size}")
        size = size[arch]
    return PretrainConfig(arch=arch, width=cfg.vgg_width if arch.startswith("vgg") else 1.0,
                          image_size=int(size), n_train=cfg.pretrain_images,
                          epochs=cfg.pretrain_epochs, seed=cfg.seed)


def load_sources(cfg: Config, progress: bool = True) -> list[Source]:
    """The raw image, each encoder with the profile's weights and, if asked, random weights."""
    sources = [Source(RAW, "none", RawImage())]
    kinds = [cfg.weights] + (["random"] if cfg.compare_random and cfg.weights != "random" else [])
    for weights in kinds:
        for arch in cfg.encoders:
            width = cfg.vgg_width if arch.startswith("vgg") else 1.0
            if weights == "synthetic":
                module, record = synthetic_encoder(pretrain_config(cfg, arch), cache_root(cfg),
                                                   input_norm=cfg.input_norm, device=cfg.device,
                                                   progress=progress)
            else:
                module, record = build_encoder(arch, weights, width=width, seed=cfg.seed,
                                               input_norm=cfg.input_norm), {}
            sources.append(Source(arch, weights, module, record))
    return sources


@dataclass
class ReadoutRun:
    """Everything one run of the chapter measured."""

    table: pd.DataFrame          # tidy: source, encoder, weights, readout, pattern, test_set, metric, value
    examples: dict[tuple[str, str, str], Tensor]  # (source, readout, pattern) -> map [S, S] on natural image 0
    # (source, readout, pattern, test_set) -> map [S, S] on the first image of that test set
    gallery: dict[tuple[str, str, str, str], Tensor] = field(default_factory=dict)


def _rows(source: Source, readout: str, pattern: str, test_set: str, scores) -> list[dict]:
    base = dict(source=source.name, encoder=source.encoder, weights=source.weights,
                readout=readout, pattern=pattern, test_set=test_set)
    return [base | {"metric": m, "value": float(getattr(scores, m))}
            for m in SCORES]


def least_squares_rows(source: Source, models: dict[str, LinearReadout]) -> list[dict]:
    """Rows of each least-squares readout's chosen ``ridge`` and ``condition`` number (test set
    "training": they describe the fit, not a test)."""
    base = dict(source=source.name, encoder=source.encoder, weights=source.weights,
                readout="least_squares", test_set="training")
    return [base | {"pattern": p, "metric": m, "value": float(getattr(model, m))}
            for p, model in models.items() for m in ("ridge", "condition")]


def source_inputs(cfg: Config, source: Source, data: ProbeData, cache: FeatureCache
                  ) -> tuple[Tensor, dict[str, Tensor]]:
    """What the readout of ``source`` sees: cached features, or the raw images resized to the
    feature grid (:func:`~posinfo.probe.features.image_on_grid`)."""
    if isinstance(source.module, RawImage):
        grid = lambda x: image_on_grid(x, cfg.feature_size)  # noqa: E731
        return grid(data.train), {name: grid(x) for name, x in data.tests.items()}
    feats = lambda x: cache(source.module, x, cfg.feature_size, name=source.name)  # noqa: E731
    return feats(data.train), {name: feats(x) for name, x in data.tests.items()}


def run_readouts(cfg: Config, data: ProbeData, sources: list[Source], progress: bool = True
                 ) -> ReadoutRun:
    """Train one readout per source and pattern, and score it on every test set.

    Features of each source are computed once (and cached on disk) and then shared by the SGD
    readouts of all patterns and by the least-squares readout (one Gram matrix per source serves
    every pattern). Only the current source's features are held in memory.
    """
    size = cfg.image_size
    gts = targets.position_maps(cfg.patterns, size)
    cache = FeatureCache(cache_root(cfg) / "features", device=cfg.device, keep_in_memory=False)
    protocol = ReadoutTraining(epochs=cfg.readout_epochs)
    rows, examples, gallery = [], {}, {}
    for source in tqdm(sources, desc="sources", disable=not progress):
        train, tests = source_inputs(cfg, source, data, cache)
        readouts = {p: fit_readout(train, gt, protocol, seed=cfg.seed, device=cfg.device)
                    for p, gt in zip(cfg.patterns, gts)}
        fitted = {"sgd": readouts}
        if cfg.least_squares:
            fitted["least_squares"] = dict(zip(cfg.patterns, least_squares_readout(
                train, gts, name=source.name, device=cfg.device)))
            rows += least_squares_rows(source, fitted["least_squares"])
        for kind, models in fitted.items():
            for (pattern, model), gt in zip(models.items(), gts):
                for test_set, x in tests.items():
                    pred = predict(model, x, size, device=cfg.device)
                    rows += _rows(source, kind, pattern, test_set, score(pred, gt))
                    gallery[(source.name, kind, pattern, test_set)] = pred[0]
                    if test_set == "natural":
                        examples[(source.name, kind, pattern)] = pred[0]
    return ReadoutRun(pd.DataFrame(rows), examples, gallery)


def run_replicates(cfg: Config, data: ProbeData, sources: list[Source], progress: bool = True
                   ) -> ReadoutRun:
    """:func:`run_readouts` on each of the ``cfg.replicates`` replicates of the run
    (:meth:`~posinfo.book.params.Config.replicate`): replicate 0 reads ``data`` and ``sources``;
    each other one draws its own images, trains its own synthetic encoders (or draws its own
    random weights) and initialises its own readouts. The comparisons beyond the paper that no
    claim rests on (``compare_random``, ``least_squares``) run in replicate 0 only. Only one
    replicate's sources are held at a time. In the ``paper`` profile the images (the first
    ``n_train`` of DUT-S, all of PASCAL-S) and the ImageNet weights are the same in every
    replicate, so there the replicates vary the readouts' initialisation (and batch order) only.

    Returns:
        The tables of all replicates (column ``replicate``), with replicate 0's example maps.
    """
    first = run_readouts(cfg, data, sources, progress)
    tables = [first.table.assign(replicate=0)]
    for index in tqdm(range(1, cfg.replicates), desc="replicates", disable=not progress):
        rcfg = cfg.replicate(index)
        rcfg = replace(rcfg, knobs={**rcfg.knobs, "compare_random": False, "least_squares": False})
        run = run_readouts(rcfg, load_data(rcfg, progress=False), load_sources(rcfg, progress=False),
                           progress=False)
        tables.append(run.table.assign(replicate=index))
    return ReadoutRun(pd.concat(tables, ignore_index=True), first.examples, first.gallery)


def constant_maps(table: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """How many predicted maps are constant, per input: a readout saturated (or blind) on that
    input outputs the same value everywhere, and its Spearman correlation is undefined (scored 0,
    as the paper prints it).

    Args:
        table: Tidy rows with metrics ``n_constant`` and ``n_images`` and a ``test_set`` column.
        by: The columns a row of the result stands for (default: source and readout).

    Returns:
        Rows ``by``, one column per test set: "k of n" maps, summed over patterns and replicates.
    """
    by = ["source", "readout"] if by is None else by
    sums = table[table.metric.isin(["n_constant", "n_images"])].pivot_table(
        index=[*by, "test_set"], columns="metric", values="value", aggfunc="sum", sort=False)
    sums = sums.reindex(columns=["n_constant", "n_images"]).fillna(0)
    text = sums.apply(lambda r: f"{int(r.n_constant)} of {int(r.n_images)}", axis=1)
    rows = list(dict.fromkeys(key[:-1] for key in sums.index))
    return text.unstack("test_set").reindex(
        index=pd.MultiIndex.from_tuples(rows, names=by) if len(by) > 1 else [r[0] for r in rows],
        columns=[t for t in TEST_SETS if t in set(table.test_set)])


def training_summary(sources: list[Source]) -> pd.DataFrame:
    """How each synthetic encoder was trained: images, epochs, seconds, held-out accuracy."""
    rows = [{"encoder": s.encoder, "image_size": s.record["config"]["image_size"],
             "train_images": s.record["config"]["n_train"], "epochs": s.record["config"]["epochs"],
             "train_seconds": round(s.record["seconds"], 1),
             "val_accuracy": round(s.record["val_accuracy"], 3)}
            for s in sources if s.record]
    return pd.DataFrame(rows).set_index("encoder") if rows else pd.DataFrame()
