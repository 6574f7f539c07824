"""Chapter 7: finding and attacking the position channels of a segmenter (ICCV 2021 Sec. 4.2,
Figs. 4-6).

A DeepLabv3 segmenter (:mod:`posinfo.models.segmenter`) is ranked channel by channel on one subset of the
data (:mod:`posinfo.probe.position_channels`) and attacked on another: the top-N channels of its last
stage are zeroed at inference and the mIoU, overall and on the left, centre and right regions
(:mod:`posinfo.metrics.dense`), is compared with zeroing N random channels (several draws).
The region attack zeroes the top-N left-specific, right-specific or overall channels; the paper
scores it on the left half, and the chapter on the right half too. With the generated scenes,
``seeds`` segmenters are trained, ranked and attacked independently (each on its own scenes), and
each finding is decided from the segmenters (an effect per segmenter and an interval over them):
the effects at a few percent of the channels are of the size of the differences between networks.

Data: in the ``default`` profile generated street scenes (:mod:`posinfo.data.streets`) with people and
cars (and, with ``n_poles``, thin poles and signs) anywhere (training, ranking, evaluation) and
scenes whose objects all sit on the left or all on the right (the region rankings); in the
``paper`` profile Cityscapes val, split in two by
index parity (even: ranking, odd: evaluation), its val-left / val-right being the ranking images
whose pedestrians all lie in one half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.book import plots
from posinfo.book.paper_tables import ICCV2021_CHANNELS, ICCV2021_FIG4, ICCV2021_FIG6
from posinfo.book.params import (PATH, ChapterSpec, Config, choice, integer, path, project_root,
                                 real)
from posinfo.book.results import Claim, decimal, holds_by_id, read_back, tested
from posinfo.book.verdicts import Rule, per_replicate, substitute
from posinfo.cache import cache_root, cached, fingerprint
from posinfo.data.datasets import (CITYSCAPES_CLASSES, cityscapes_tensors, dataset_root,
                                   grid_min_side, verify_dataset)
from posinfo.data.streets import STREETS_VERSION, street_classes, street_scenes
from posinfo.metrics.dense import IGNORE, REGIONS, class_map, confusion, miou
from posinfo.models import segmenter
from posinfo.models.segmenter import (
    DEEPLAB_FILE,
    OUTPUT_STRIDE,
    Segmenter,
    SegmenterTraining,
    cached_segmenter,
    load_weights_file,
    resnet50_deeplabv3,
)
from posinfo.probe import position_channels as pc

_SHARED = dict(dataset="streets", n_objects=[1, 4], n_poles=[0, 0], width=8, head_channels=32,
               batch_size=32, lr=5e-3, random_draws=20, weights_file=None,
               region_objects=["person"], cityscapes_split="val", n_examples=2, cache_dir=None)
SPEC = ChapterSpec(
    chapter="07_region_attacks",
    profiles={
        "smoke": _SHARED | dict(image_size=24, n_train=64, epochs=2, n_rank=8, n_eval=8,
                                fractions=[0.05, 0.25], seeds=2),
        "default": _SHARED | dict(image_size=48, n_train=3000, epochs=15, n_rank=200, n_eval=400,
                                  fractions=[0.05, 0.1, 0.25, 0.5], seeds=3),
        "paper": _SHARED | dict(dataset="cityscapes", image_size=1024, n_train=0, epochs=0,
                                n_rank=250, n_eval=250, fractions=[0.005, 0.05, 0.1, 0.25],
                                batch_size=4, seeds=1),
    },
    types={"dataset": choice(("streets", "cityscapes")), "n_objects": integer(0, 50, is_list=True),
           "n_poles": integer(0, 50, is_list=True),
           "width": integer(1, 256), "head_channels": integer(1, 4096),
           "batch_size": integer(1, 4096), "lr": real(1e-9, 10), "random_draws": integer(20, 10_000),
           "weights_file": path("a DeepLabv3-ResNet-50 Cityscapes state dict (the cityscapes "
                                f"dataset); relative to the book's folder; None: {DEEPLAB_FILE} "
                                "under data_root"),
           "region_objects": choice(CITYSCAPES_CLASSES, is_list=True),
           "cityscapes_split": choice(("train", "val")), "n_examples": integer(1, 64),
           "cache_dir": PATH, "image_size": integer(16, 2048), "n_train": integer(0),
           "epochs": integer(0, 10_000), "n_rank": integer(1), "n_eval": integer(1),
           "fractions": real(1e-6, 0.999, is_list=True), "seeds": integer(1, 100)},
)

@dataclass
class SegData:
    """The images of one run, ``[N, 3, H, W]`` in [0, 1], with class masks ``int64 [N, H, W]``
    (``IGNORE`` = not scored). ``train_*`` are empty when the weights come from a file."""

    class_names: list[str]
    train_images: Tensor
    train_masks: Tensor
    rank_images: Tensor
    left_images: Tensor
    right_images: Tensor
    eval_images: Tensor
    eval_masks: Tensor


# --- data -----------------------------------------------------------------------------------------


def scene_data(cfg: Config) -> SegData:
    """Training, ranking (any / left-only / right-only) and evaluation street scenes
    (``image_size x 2 image_size``), from disjoint seeds."""
    base = 70_000 + 10 * cfg.seed
    scenes = lambda n, k, region: street_scenes(n, cfg.image_size, base + k, region,  # noqa: E731
                                                tuple(cfg.n_objects), tuple(cfg.n_poles))
    train = scenes(cfg.n_train, 0, "any")
    rank = scenes(cfg.n_rank, 1, "any")[0]
    left, right = (scenes(cfg.n_rank, k, side)[0] for k, side in ((2, "left"), (3, "right")))
    return SegData(list(street_classes(tuple(cfg.n_poles))), *train, rank, left, right,
                   *scenes(cfg.n_eval, 4, "any"))


def one_sided(masks: Tensor, object_ids: list[int]) -> tuple[Tensor, Tensor]:
    """Which images ``[N]`` have pixels of ``object_ids`` only in the left half, or only in the
    right half, of masks ``[N, H, W]`` (images without such pixels are in neither)."""
    hit = torch.isin(masks, torch.tensor(object_ids))
    half = masks.shape[-1] // 2
    on_left, on_right = hit[..., :half].flatten(1).any(1), hit[..., half:].flatten(1).any(1)
    return on_left & ~on_right, on_right & ~on_left


def cityscapes_data(cfg: Config) -> SegData:
    """Cityscapes for the paper profile: even indices rank, odd indices evaluate; val-left and
    val-right are the ranking images whose ``region_objects`` lie all in one half."""
    names = list(CITYSCAPES_CLASSES)
    images, masks = cityscapes_tensors(cfg.data_root, cfg.cityscapes_split, cfg.image_size)
    rank, evaluation = slice(0, 2 * cfg.n_rank, 2), slice(1, 2 * cfg.n_eval, 2)
    left, right = one_sided(masks[rank], [names.index(o) for o in cfg.region_objects])
    if not left.any() or not right.any():
        raise ValueError(f"no ranking image has its {cfg.region_objects} only on the "
                         f"{'left' if not left.any() else 'right'}; raise n_rank")
    empty = torch.empty(0)
    return SegData(names, empty, empty.long(), images[rank], images[rank][left],
                   images[rank][right], images[evaluation], masks[evaluation])


def load_data(cfg: Config) -> SegData:
    """The run's :class:`SegData` (generated scenes or Cityscapes)."""
    return scene_data(cfg) if cfg.dataset == "streets" else cityscapes_data(cfg)


# --- the network ------------------------------------------------------------------------------------


def training_config(cfg: Config, data: SegData) -> SegmenterTraining:
    """How the default profile's segmenter is trained; the data recipe enters the cache key."""
    recipe = ("streets", STREETS_VERSION, cfg.image_size, cfg.n_train, tuple(cfg.n_objects),
              *([tuple(cfg.n_poles)] if cfg.n_poles[1] else []), cfg.seed)
    return SegmenterTraining(len(data.class_names), cfg.width, cfg.head_channels, cfg.epochs,
                             cfg.batch_size, cfg.lr, cfg.seed, data_key=repr(recipe))


def load_segmenter(cfg: Config, data: SegData, progress: bool = True) -> tuple[Segmenter, dict]:
    """The trained narrow segmenter (cached), or DeepLabv3-ResNet-50 from :func:`weights_path`."""
    if cfg.dataset == "cityscapes":
        model = load_weights_file(resnet50_deeplabv3(len(data.class_names)), weights_path(cfg))
        return model.eval().to(cfg.device), {}
    model, record = cached_segmenter(training_config(cfg, data), data.train_images,
                                     data.train_masks, cache_root(cfg), progress)
    return model.to(cfg.device), record


def validate(cfg: Config) -> None:
    """Fail before any work: missing dataset or weights file, a Cityscapes image or label map
    that does not decode, is of another size than its pair or has fewer rows than the segmenter's
    output (``image_size / OUTPUT_STRIDE``), or knobs the claims cannot use."""
    if len(cfg.fractions) < 2 or not all(0 < f < 1 for f in cfg.fractions):
        raise ValueError(f"fractions must be at least two shares of the channels in (0, 1); "
                         f"got {cfg.fractions}")
    if cfg.dataset == "streets" and (cfg.n_train < 1 or cfg.epochs < 1):
        raise ValueError(f"the street scenes' segmenters need n_train >= 1 and epochs >= 1; got "
                         f"n_train={cfg.n_train}, epochs={cfg.epochs}")
    for name in ("n_objects", "n_poles"):
        value = getattr(cfg, name)
        if len(value) != 2 or not value[0] <= value[1]:
            raise ValueError(f"{name} is a range [least, most] per scene; got {value}")
    if cfg.seeds < 1 or (cfg.dataset == "cityscapes" and cfg.seeds != 1):
        raise ValueError(f"seeds (segmenters to train) must be at least 1, and 1 with the "
                         f"cityscapes weights file; got {cfg.seeds}")
    if cfg.dataset == "cityscapes":
        dataset_root("cityscapes", cfg.data_root)
        if not weights_path(cfg).is_file():
            load_weights_file(resnet50_deeplabv3(19), weights_path(cfg))  # the explanatory error
        # last, as it takes longest: every image and label map of the split, decoded; the
        # segmenter reads maps on a grid of image_size / OUTPUT_STRIDE rows
        verify_dataset("cityscapes", cfg.data_root, cfg.cityscapes_split,
                       min_side=grid_min_side(math.ceil(cfg.image_size / OUTPUT_STRIDE)))


def weights_path(cfg: Config) -> Path:
    """The Cityscapes DeepLabv3 weights: ``weights_file`` (a relative path taken from the book's
    top folder) or, when it is ``None``, ``DEEPLAB_FILE`` under ``data_root`` (data/README.md)."""
    if cfg.weights_file is None:
        return Path(cfg.data_root).expanduser() / DEEPLAB_FILE
    path = Path(cfg.weights_file).expanduser()
    return path if path.is_absolute() else project_root() / path


# --- ranking and attacking ----------------------------------------------------------------------------

ATTACK_RANKINGS: tuple[str, ...] = (*pc.RANKINGS, "magnitude")


def rank_channels(model: Segmenter, data: SegData, cfg: Config) -> dict[str, Tensor]:
    """Every ranking of the last stage's channels on the ranking images, cached on disk.

    Returns:
        ``overall``, ``kernel_flip_1``, ``kernel_flip_2``, ``magnitude`` (on ``rank_images``),
        ``left`` and ``right`` (on ``left_images`` / ``right_images``) to channel indices ``[C]``.
    """
    key = fingerprint(model, data.rank_images, data.left_images, data.right_images)

    def compute() -> dict[str, Tensor]:
        mirrored = pc.mirror_kernels(model).to(cfg.device)
        feats = lambda x: model.features(x.to(cfg.device))  # noqa: E731
        mirror = lambda x: mirrored.features(x.to(cfg.device))  # noqa: E731
        bs = cfg.batch_size
        out = pc.rankings(feats, mirror, data.rank_images, bs)
        out["magnitude"] = pc.rank_magnitude(pc.pooled(feats, data.rank_images, bs))
        out |= pc.region_rankings(feats, data.left_images, data.right_images, bs)
        return {name: order.cpu() for name, order in out.items()}

    return cached(cache_root(cfg) / f"rankings-{key}.pt", compute)


@torch.no_grad()
def scores(model: Segmenter, data: SegData, cfg: Config,
           attacks: Sequence[Tensor | None], progress: bool = False) -> list[dict[str, float]]:
    """mIoU (in %) over each region of ``REGIONS`` on the evaluation images, once for each attack:
    a set of last-stage channels set to zero (``None``: none).

    One backbone pass feeds every attack: each batch of ``cfg.batch_size`` images goes through the
    backbone once, and only the head runs again per attack (the same computation as zeroing the
    channels in a forward hook; memory stays that of one batch). Confusion matrices accumulate
    over the batches.
    """
    k = len(data.class_names)
    mats = [{r: torch.zeros(k, k, dtype=torch.long) for r in REGIONS} for _ in attacks]
    model.eval()
    batches = list(zip(data.eval_images.split(cfg.batch_size), data.eval_masks.split(cfg.batch_size)))
    for x, m in tqdm(batches, desc="attacks", disable=not progress, leave=False):
        features = model.features(x.to(cfg.device))
        for channels, mat in zip(attacks, mats):
            kept = features if channels is None else pc.zero_channels(features, channels)
            pred = class_map(model.logits_from_features(kept, tuple(x.shape[-2:]))).cpu()
            for r in REGIONS:
                mat[r] += confusion(pred, m, k, r)
    return [{r: 100 * miou(mat[r]) for r in REGIONS} for mat in mats]


def channel_counts(cfg: Config, channels: int) -> list[int]:
    """N for each of ``cfg.fractions`` of ``channels`` (at least 1)."""
    return [max(1, round(f * channels)) for f in cfg.fractions]


def _rows(experiment: str, ranking: str, n: int, channels: int, draw: int,
          scores: dict[str, float]) -> list[dict]:
    base = dict(experiment=experiment, ranking=ranking, n_channels=n,
                fraction=n / channels, draw=draw, metric="miou")
    return [base | dict(region=r, value=v) for r, v in scores.items()]


def run_attacks(model: Segmenter, data: SegData, ranks: dict[str, Tensor], cfg: Config,
                progress: bool = True) -> pd.DataFrame:
    """Zero the top-N channels of each ranking, and N random channels (``random_draws`` draws),
    for every N of :func:`channel_counts`; score every region.

    Returns:
        Tidy rows: experiment (baseline | attack | region attack), ranking, n_channels, fraction,
        draw, region, metric (miou, in %), value.
    """
    c = model.channels
    gen = torch.Generator().manual_seed(cfg.seed)
    plan: list[tuple[str, str, int, int, Tensor | None]] = [("baseline", "none", 0, 0, None)]
    for n in channel_counts(cfg, c):
        plan += [("attack", name, n, 0, ranks[name][:n]) for name in ATTACK_RANKINGS]
        plan += [("attack", "random", n, d, pc.random_channels(c, n, gen))
                 for d in range(cfg.random_draws)]
        plan += [("region attack", side, n, 0, ranks[side][:n]) for side in ("left", "right")]
    results = scores(model, data, cfg, [p[-1] for p in plan], progress)
    rows = [row for (experiment, ranking, n, draw, _), result in zip(plan, results)
            for row in _rows(experiment, ranking, n, c, draw, result)]
    return pd.DataFrame(rows)


@dataclass
class Runs:
    """Every segmenter of a run: the attack table of all of them (column ``run``), their training
    records, and the first one's data, network and rankings (for the example figure)."""

    table: pd.DataFrame
    records: list[dict]
    data: SegData
    model: Segmenter
    ranks: dict[str, Tensor]
    config: Config


def replicate(cfg: Config, run: int) -> Config:
    """The ``run``-th segmenter's configuration: seed ``1000 seed + run``, hence its own
    initialisation, batch order, training, ranking and evaluation scenes and random draws."""
    return replace(cfg, seed=1000 * cfg.seed + run)


def run_all(cfg: Config, progress: bool = True) -> Runs:
    """Train (or load), rank and attack each of the ``seeds`` segmenters (see :func:`run_attacks`
    for the table's columns; ``run`` numbers the segmenters)."""
    tables, records, first = [], [], None
    for run in tqdm(range(cfg.seeds), desc="segmenters", disable=not progress):
        rcfg = replicate(cfg, run)
        data = load_data(rcfg)
        model, record = load_segmenter(rcfg, data, progress)
        ranks = rank_channels(model, data, rcfg)
        tables.append(run_attacks(model, data, ranks, rcfg, progress).assign(run=run))
        records.append(record)
        if first is None:  # kept for the example figure; the others are let go
            first = (data, model, ranks, rcfg)
    return Runs(pd.concat(tables, ignore_index=True), records, *first)


# --- the findings -------------------------------------------------------------------------------------


def miou_at(table: pd.DataFrame, ranking: str, n: int, region: str = "all") -> pd.Series:
    """The mIoU(s) of ``ranking`` with ``n`` channels zeroed on ``region`` (one per run and draw)."""
    sel = table[(table.ranking == ranking) & (table.n_channels == n) & (table.region == region)]
    return sel.value


def per_run(table: pd.DataFrame, ranking: str, n: int, region: str = "all") -> pd.Series:
    """:func:`miou_at` averaged over the draws of each segmenter, indexed by ``run``."""
    sel = table[(table.ranking == ranking) & (table.n_channels == n) & (table.region == region)]
    return sel.groupby("run").value.mean()


def with_drops(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` of ``table`` with a column ``drop``: how far each row's mIoU lies below its own
    segmenter's intact mIoU on the row's region (so spreads leave out the differences between
    the segmenters' baselines)."""
    base = table[table.ranking == "none"].set_index(["run", "region"]).value
    own = base.loc[pd.MultiIndex.from_arrays([rows.run, rows.region])].to_numpy()
    return rows.assign(drop=own - rows.value.to_numpy())


def nearest_count(table: pd.DataFrame, fraction: float) -> int:
    """The N of the run whose share of the channels is closest to ``fraction``."""
    counts = table[table.experiment == "attack"][["n_channels", "fraction"]].drop_duplicates()
    return int(counts.loc[(counts.fraction - fraction).abs().idxmin(), "n_channels"])


def _versus_random(table: pd.DataFrame, ranking: str, counts: list[int],
                   regions: tuple[str, ...]) -> str:
    """``ranking``'s top-N against N random channels, in words, for every N and region: the means
    over segmenters (and draws), the spread of the random draws' drops (each from its own
    segmenter's baseline), in how many segmenters the ranking was below its own random mean, and
    its percentile among each segmenter's draws (:func:`_percentile`)."""
    text = []
    for region in regions:
        for n in counts:
            top, rnd = per_run(table, ranking, n, region), per_run(table, "random", n, region)
            draws = table[(table.ranking == "random") & (table.n_channels == n)
                          & (table.region == region)]
            where = per_replicate(table, lambda t: _percentile(t, ranking, n, region), column="run")
            text.append(f"{region} N={n}: {top.mean():.1f} vs random {rnd.mean():.1f} (drops' sd "
                        f"{with_drops(table, draws)['drop'].std():.2f}; below in "
                        f"{int((top < rnd).sum())} of {len(top)}; percentile "
                        + ", ".join(f"{v:.2f}" for v in where) + ")")
    return "; ".join(text)


def _percentile(table: pd.DataFrame, ranking: str, n: int, region: str) -> float:
    """Where ``ranking``'s top-N falls among the N-channel random draws of one segmenter's rows:
    the share of draws whose mIoU on ``region`` stays above the ranked attack's (ties count
    half). 1 when the ranking hurts more than every draw; about .5 for a ranking no better than
    a random one."""
    top = miou_at(table, ranking, n, region).mean()
    draws = miou_at(table, "random", n, region).to_numpy()
    if len(draws) == 0:
        raise ValueError(f"no random draws of {n} channels on {region} to rank {ranking} among")
    return float(((draws > top) + 0.5 * (draws == top)).mean())


def _rank_score(table: pd.DataFrame, ranking: str, counts: list[int],
                regions: tuple[str, ...]) -> float:
    """Lowest :func:`_percentile` of ``ranking`` over the counts and regions (one segmenter)."""
    return min(_percentile(table, ranking, n, r) for r in regions for n in counts)


def _random_as(table: pd.DataFrame, rankings: Sequence[str]) -> pd.DataFrame:
    """The control's null: each of ``rankings`` replaced by the first random draw (a random
    ranking), compared with the other draws."""
    rand = table[table.ranking == "random"]
    rest = table[~table.ranking.isin([*rankings, "random"])]
    fake = [rand[rand.draw == 0].assign(ranking=r) for r in rankings]
    return pd.concat([rest, rand[rand.draw > 0], *fake], ignore_index=True)


def _region_gap(table: pd.DataFrame, n: int, half: str) -> float:
    """mIoU on ``half`` with the other half's top-N region channels zeroed minus with its own
    (one segmenter's rows, points): positive when a half's own channels hurt it more."""
    other = "right" if half == "left" else "left"
    return float(miou_at(table, other, n, half).mean() - miou_at(table, half, n, half).mean())


def _region_did(table: pd.DataFrame, n: int) -> float:
    """The region attack as a difference of differences over both halves (one segmenter's rows,
    points): the left half's gap between the right- and left-specific attacks plus the right
    half's gap between the left- and right-specific ones. A channel set that hurts both halves
    alike (or the whole image) adds nothing; positive when each half's channels hit their half."""
    return _region_gap(table, n, "left") + _region_gap(table, n, "right")


def _by_segmenter(table: pd.DataFrame, effect) -> list[float]:
    return per_replicate(table, effect, column="run")


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings R1-R4 of ICCV 2021 Sec. 4.2, each decided from the segmenters of this run
    (column ``run``; each its own training, ranking, scenes and random draws), with controls in
    which a random draw stands in for the ranking (R1-R3) or the two region rankings are the
    same (R4)."""
    counts = [nearest_count(table, 0.05), nearest_count(table, 0.25)]
    base = miou_at(table, "none", 0).mean()
    t1 = _versus_random(table, "overall", counts, ("all",))
    t2 = _versus_random(table, "overall", counts, ("left", "centre", "right"))
    kf = [_versus_random(table, k, counts, ("all",)) for k in ("kernel_flip_1", "kernel_flip_2")]
    n5 = counts[0]
    left, right = (per_run(table, side, n5, "left") for side in ("left", "right"))
    regions = ("left", "centre", "right")
    r1 = lambda t: _rank_score(t, "overall", counts, ("all",))  # noqa: E731
    r2 = lambda t: _rank_score(t, "overall", counts, regions)  # noqa: E731
    r3 = lambda t: min(_rank_score(t, k, counts, ("all",))  # noqa: E731
                       for k in ("kernel_flip_1", "kernel_flip_2"))
    r4 = lambda t: _region_did(t, n5)  # noqa: E731
    same = substitute(table, "ranking", "left", "right")
    draws = int(table[table.ranking == "random"].groupby("run").draw.nunique().min())
    below = f"percentile of the ranked top-N among the segmenter's {draws} random draws"
    median = "'more severely than ... random channels': beyond the median random draw"
    return [
        tested("R1", "Zeroing the top-N overall position channels lowers mIoU more than zeroing N "
               "random channels (\"impairs the network's recognition ability more severely "
               "compared to the removal of the same number of random channels\"), for N at about "
               "5% and 25% of the channels.",
               "74.0 -> 71.9 vs 73.4 (N=100 of 2048); 64.7 vs 70.5 (N=500) (Fig. 4a)",
               f"baseline {base:.1f}; {t1}",
               Rule(f"lowest {below}, N at 5% and 25%, whole image", "above", 0.5, median),
               _by_segmenter(table, r1), _by_segmenter(_random_as(table, ["overall"]), r1)),
        tested("R2", "The same holds on each of the left, centre and right regions.",
               "position channels below random in every region (Fig. 4b-d)", t2,
               Rule(f"lowest {below}, N at 5% and 25%, each of left, centre and right", "above",
                    0.5, median),
               _by_segmenter(table, r2), _by_segmenter(_random_as(table, ["overall"]), r2)),
        tested("R3", "The kernel-flip rankings also beat random channels (\"removing these neurons "
               "degrades the performance more severely than removing random ones\"): the ranking "
               "is not an artifact of asymmetric kernels.", "Kernel-Flip* and ** below random (Fig. 4)",
               f"Kernel-Flip*: {kf[0]}; Kernel-Flip**: {kf[1]}",
               Rule(f"lowest {below}, both kernel-flip rankings, N at 5% and 25%", "above", 0.5,
                    median),
               _by_segmenter(table, r3),
               _by_segmenter(_random_as(table, ["kernel_flip_1", "kernel_flip_2"]), r3)),
        tested("R4", "The region attack works (removing the left-specific channels \"impairs the "
               "network's recognition ability more severely compared to the corresponding removal "
               "of ... right-specific channels\"): each half's own top-N region channels cost it "
               "more than the other half's do, over both halves together (a difference of "
               "differences; N at about 5%).",
               "left below right at every N; drops 0.6 vs 0.08 at N=10 (Fig. 6)",
               f"left half, N={n5}: left channels {left.mean():.1f}, right channels "
               f"{right.mean():.1f} (baseline {miou_at(table, 'none', 0, 'left').mean():.1f}; "
               f"left below right in {int((left < right).sum())} of {len(left)}); per segmenter, "
               "left half's gap " + ", ".join(f"{v:.2f}" for v in _by_segmenter(
                   table, lambda t: _region_gap(t, n5, "left")))
               + "; right half's gap " + ", ".join(f"{v:.2f}" for v in _by_segmenter(
                   table, lambda t: _region_gap(t, n5, "right")))
               + "; their sum " + ", ".join(f"{v:.2f}" for v in _by_segmenter(table, r4)),
               Rule(f"difference of differences over both halves (points, N={n5}): the left "
                    "half's mIoU with the right-specific top-N zeroed minus with the "
                    "left-specific, plus the right half's with the left-specific zeroed minus "
                    "with the right-specific", "above", 0.0),
               _by_segmenter(table, r4), _by_segmenter(same, r4)),
    ]


def prose_numbers(table: pd.DataFrame, claims: list, cfg: Config) -> dict[str, str]:
    """The numbers and verdicts the chapter's "Reading the numbers" quotes, from this run, as glue
    variables (see ``posinfo.book.results.glue_prose``). Drops are in mIoU points from each segmenter's
    own baseline, averaged over the segmenters, listed over the run's shares of the channels."""
    attack = table[table.experiment == "attack"]
    counts = sorted(attack.n_channels.unique())
    n5, spread = nearest_count(table, 0.05), lambda v: decimal(v.max() - v.min())  # noqa: E731
    shares = [f"{100 * f:.0f}%" for f in attack.drop_duplicates("n_channels").sort_values(
        "n_channels").fraction]
    out = holds_by_id(claims)
    out |= {"baseline": f"{miou_at(table, 'none', 0).mean():.1f}", "n5": str(n5),
            "channels": str(round(n5 / attack[attack.n_channels == n5].fraction.iloc[0])),
            "shares": _listed(shares), "segmenters": str(table.run.nunique()),
            "run_seed": str(cfg.seed)}
    out |= {f"drops_{r}": _listed([decimal(v) for v in _drops(table, "attack", r, "all")["drop"]])
            for r in (*ATTACK_RANKINGS, "random")}
    top, rnd = per_run(table, "overall", n5), per_run(table, "random", n5)
    draws = with_drops(table, attack[(attack.ranking == "random") & (attack.n_channels == n5)])
    out |= {"overall_below_random_n5": f"{int((top < rnd).sum())} of {len(top)}",
            "random_range_n5": spread(draws[draws.region == "all"]["drop"]),
            "random_sd_left_n5": decimal(draws[draws.region == "left"]["drop"].std())}
    weaker = sum(_drops(table, "attack", "magnitude", "all")["drop"]
                 < _drops(table, "attack", "overall", "all")["drop"])
    out["magnitude_vs_overall"] = f"less than the flip-ranked ones at {weaker} of {len(counts)} shares"
    for key, n in (("n5", n5), ("n25", nearest_count(table, 0.25))):
        where = per_replicate(table, lambda t, n=n: _percentile(t, "overall", n, "all"), column="run")
        out[f"percentiles_{key}"] = _listed([decimal(v) for v in where])
    out["random_draws"] = str(int(table[table.ranking == "random"].groupby("run").draw.nunique().min()))
    did = per_replicate(table, lambda t: _region_did(t, n5), column="run")
    out["did_n5"] = _listed([decimal(v) for v in did])
    return out | _region_prose(table, n5)


def _region_prose(table: pd.DataFrame, n5: int) -> dict[str, str]:
    """The region attack in numbers: drops of each half's mIoU under the left- and right-specific
    rankings, at every share and, at about 5%, per segmenter."""
    out = {}
    for half in ("left", "right"):
        d = {side: _drops(table, "region attack", side, half)["drop"] for side in ("left", "right")}
        own, other = d[half], d["right" if half == "left" else "left"]
        out |= {f"{side}_on_{half}": _listed([decimal(v) for v in d[side]]) for side in d}
        out[f"own_first_on_{half}"] = f"{int((own > other).sum())} of {len(own)}"
    rows = table[(table.experiment == "region attack") & (table.n_channels == n5)
                 & (table.region == "left")]
    drops = with_drops(table, rows).pivot_table(index="run", columns="ranking", values="drop")
    out["left_first_n5"] = f"{int((drops.left > drops.right).sum())} of {len(drops)}"
    out["pairs_n5"] = ", ".join(f"{decimal(a)}/{decimal(b)}" for a, b in zip(drops.left, drops.right))
    out["left_gap_n5"] = decimal(drops.left.mean() - drops.right.mean())
    return out


def _listed(items: list[str]) -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --- tables and figures ---------------------------------------------------------------------------------


def attack_table(table: pd.DataFrame) -> pd.DataFrame:
    """mIoU of every ranking per N and region: the mean over the segmenters (and, for random,
    their draws) and the sd of the drops, each from its own segmenter's baseline; with the
    paper's Sec. 4.2.2 numbers at N = 100 and 500 of 2048 beside the nearest shares."""
    sel = with_drops(table, table[table.experiment == "attack"])
    groups = sel.groupby(["n_channels", "ranking", "region"])
    wide = pd.concat({"mean": groups.value.mean(), "sd of drop": groups["drop"].std()}, axis=1)
    wide = wide.unstack("region")[[(s, r) for s in ("mean", "sd of drop") for r in REGIONS]]
    wide = wide.dropna(axis=1, how="all").round(1)
    paper = {(n, r): v for n, r, v in ICCV2021_FIG4["points"]}
    shares = {n: n / ICCV2021_CHANNELS for n in (100, 500)}
    counts = sel[["n_channels", "fraction"]].drop_duplicates().set_index("n_channels").fraction
    near = {min(counts.index, key=lambda k: abs(counts[k] - s)): n for n, s in shares.items()}
    wide[("paper", "all")] = [paper.get((near.get(n), r), np.nan) for n, r in wide.index]
    return wide


def _drops(table: pd.DataFrame, experiment: str, ranking: str, region: str) -> pd.DataFrame:
    """Per N: fraction (%), and the mean, least and largest drop of mIoU on ``region`` from each
    segmenter's own baseline (over segmenters and draws)."""
    sel = with_drops(table, table[(table.experiment == experiment) & (table.ranking == ranking)
                                  & (table.region == region)])
    g = sel.groupby("n_channels").agg(fraction=("fraction", "first"), drop=("drop", "mean"),
                                      lo=("drop", "min"), hi=("drop", "max"))
    return pd.DataFrame({"percent": 100 * g.fraction, "drop": g["drop"], "lo": g.lo, "hi": g.hi})


_STYLE = {"overall": ("C3", "o-", "top-N position (Eq. 2)"),
          "kernel_flip_1": ("C1", "s--", "Kernel-Flip*"), "kernel_flip_2": ("C4", "^--", "Kernel-Flip**"),
          "magnitude": ("C7", "x:", "strongest channels (|z|)"), "random": ("C0", "d-", "N random"),
          "left": ("C2", "o-", "top-N left-specific"), "right": ("C5", "s-", "top-N right-specific")}


def _curve(ax, d: pd.DataFrame, ranking: str) -> None:
    colour, style, label = _STYLE[ranking]
    ax.plot(d.percent, d["drop"], style, color=colour, label=label, ms=4)
    if ranking == "random":
        ax.fill_between(d.percent, d.lo, d.hi, color=colour, alpha=0.2, lw=0)


def plot_attacks(table: pd.DataFrame):
    """Like Fig. 4 (top row): mIoU drop against the share of channels zeroed, per region; the
    paper's reported points (overall mIoU, N = 100 and 500 of 2048) as stars."""
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, region in zip(axes, REGIONS):
        for ranking in ("overall", "kernel_flip_1", "kernel_flip_2", "magnitude", "random"):
            _curve(ax, _drops(table, "attack", ranking, region), ranking)
        ax.set_title(f"{region} (baseline {miou_at(table, 'none', 0, region).mean():.1f})", fontsize=9)
        ax.set_xlabel("channels zeroed (%)")
    for n, ranking, value in ICCV2021_FIG4["points"]:
        axes[0].plot(100 * n / ICCV2021_CHANNELS, ICCV2021_FIG4["baseline"] - value, "*", ms=11,
                     color=_STYLE[ranking][0], mec="k", label=f"paper, {ranking}" if n == 100 else None)
    axes[0].set_ylabel("mIoU drop from baseline (points)")
    axes[0].legend(fontsize=7)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def plot_region_attack(table: pd.DataFrame):
    """Like Fig. 6: left-half mIoU drop for left-specific, right-specific, overall and random
    channels, the paper's drops at N = 10 of 2048 as stars; and, beyond the paper, the same on the
    right half (where the right-specific channels should hurt most)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, half in zip(axes, ("left", "right")):
        for experiment, ranking in (("region attack", "left"), ("region attack", "right"),
                                    ("attack", "overall"), ("attack", "random")):
            _curve(ax, _drops(table, experiment, ranking, half), ranking)
        ax.set_xlabel("channels zeroed (%)")
        ax.set_title(f"scored on the {half} half", fontsize=9)
    for n, ranking, drop in ICCV2021_FIG6:
        axes[0].plot(100 * n / ICCV2021_CHANNELS, drop, "*", ms=11, color=_STYLE[ranking][0],
                     mec="k", label=f"paper, {ranking}")
    axes[0].set_ylabel("mIoU drop (points)")
    axes[0].legend(fontsize=7)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def example_predictions(model: Segmenter, data: SegData, ranks: dict[str, Tensor], cfg: Config
                        ) -> dict[str, Tensor]:
    """Predictions ``[n_examples, H, W]`` on the first evaluation images: intact, top-N overall
    channels zeroed and N random channels zeroed, N the count nearest 25% of the channels."""
    c = model.channels
    n = min(channel_counts(cfg, c), key=lambda k: abs(k / c - 0.25))
    x = data.eval_images[: cfg.n_examples]
    rnd = pc.random_channels(c, n, torch.Generator().manual_seed(cfg.seed))
    out = {"prediction": segmenter.predict(model, x, device=cfg.device)}
    for name, channels in ((f"top-{n} position zeroed", ranks["overall"][:n]),
                           (f"{n} random zeroed", rnd)):
        with pc.zeroed_channels(model.last_stage, channels):
            out[name] = segmenter.predict(model, x, device=cfg.device)
    return out


def plot_examples(data: SegData, preds: dict[str, Tensor]):
    """Like Fig. 5: input, ground truth and the predictions of :func:`example_predictions`."""
    k = len(data.class_names)
    cols = {"ground truth": data.eval_masks[: len(next(iter(preds.values())))]} | preds
    n = len(cols["ground truth"])
    fig, axes = plt.subplots(n, len(cols) + 1, figsize=(2.2 * (len(cols) + 1), 2.2 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(data.eval_images[i].permute(1, 2, 0).numpy())
        for j, (name, maps) in enumerate(cols.items(), 1):
            shown = np.ma.masked_equal(maps[i].numpy(), IGNORE)
            axes[i, j].imshow(shown, cmap="tab20", vmin=0, vmax=max(k - 1, 1), interpolation="nearest")
            axes[0, j].set_title(name, fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    width = data.eval_images.shape[-1]
    for ax in axes.flat:
        ax.axvline(width / 2 - 0.5, color="w", ls=":", lw=0.8)  # the left / right boundary
    return plots.image_panels(fig)


def training_summary(runs: Runs, cfg: Config) -> pd.DataFrame:
    """How each segmenter was trained and how well it segments intact (mIoU in % per region)."""
    rows = []
    for run, record in enumerate(runs.records):
        row = {r: round(per_run(runs.table, "none", 0, r)[run], 1) for r in REGIONS}
        row = {f"baseline mIoU {r}": v for r, v in row.items()}
        if record:
            row = {"train_images": cfg.n_train, "epochs": record["config"]["epochs"],
                   "final_loss": round(record["losses"][-1], 3),
                   "train_seconds": round(record["seconds"], 1)} | row
        rows.append({"seed": replicate(cfg, run).seed} | row)
    return pd.DataFrame(rows).set_index("seed")


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: files written, channel counts, claims."""
    results = read_back(cfg.results_dir, claims, {"experiment", "ranking", "region", "metric",
                                                   "run"})
    counts = sorted(int(n) for n in table.n_channels.unique() if n > 0)
    return {"rows": len(results), "channel_counts": counts,
            "segmenters": int(table.run.nunique()),
            "random_draws": int(table[table.ranking == "random"].draw.nunique()),
            "claims": [c.id for c in claims]}
