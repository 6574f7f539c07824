"""Chapter 2: what reads position out, and where it is stored (ICLR 2020 Tables 2-3, Figs. 5, 7).

Three ablations of the chapter-1 probe (readout depth, kernel size, which VGG16 stage it reads)
and the case study of Sec. 4.1: the content loss, the mean of |ground truth - prediction| over the
H, V and G readouts, measured against the object masks of the test scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.book import plots
from posinfo.book.paper_tables import iclr2020_table2, iclr2020_table3
from posinfo.book.params import ChapterSpec, Config, choice, integer
from posinfo.book.results import Claim, decimal, holds_by_id, read_back, tested
from posinfo.book.verdicts import Rule, per_replicate, substitute
from posinfo.cache import cache_root
from posinfo.data import targets
from posinfo.metrics.position import score
from posinfo.probe.features import FeatureCache, image_on_grid
from posinfo.probe.probing import (PROBE_KNOBS, RAW, ProbeData, RawImage, Source,
                                   check_inputs_exist, load_data, load_sources)
from posinfo.probe.readout import ReadoutTraining, fit_readout, predict

_SHARED = dict(dataset="scenes", n_synthetic=1, weights="synthetic", input_norm="none",
               compare_random=False, least_squares=False, cache_dir=None)
STAGES = ("f1", "f2", "f3", "f4", "f5", "all")  # VGG16's five tapped stages, or all of them
SPEC = ChapterSpec(
    chapter="02_ablations",
    profiles={
        "smoke": _SHARED | dict(image_size=32, feature_size=8, n_train=24, n_test=6,
                                patterns=["H", "G", "HS"], encoders=["vgg16_bn", "resnet18"],
                                vgg_width=0.125, readout_epochs=3, depths=[1, 2, 3],
                                kernels=[1, 3, 7], kernel_stage="f2", hidden_channels=16,
                                pretrain_size=32, pretrain_images=64, pretrain_epochs=1,
                                replicates=2),
        "default": _SHARED | dict(image_size=96, feature_size=12, n_train=320, n_test=100,
                                  patterns=["H", "G", "HS"], encoders=["vgg16_bn", "resnet18"],
                                  vgg_width=0.5, readout_epochs=15, depths=[1, 2, 3],
                                  kernels=[1, 3, 7], kernel_stage="f2", hidden_channels=64,
                                  pretrain_size={"vgg16_bn": 32, "resnet18": 48},
                                  pretrain_images=3000, pretrain_epochs=6, replicates=3),
        "paper": _SHARED | dict(dataset="duts+pascal-s", image_size=224, feature_size=28,
                                n_train=2000, n_test=None, patterns=["H", "G", "HS"],
                                encoders=["vgg16", "resnet152"], weights="imagenet",
                                vgg_width=1.0, readout_epochs=15, depths=[1, 2, 3],
                                kernels=[1, 3, 7], kernel_stage="all", hidden_channels=None,
                                pretrain_size=32,
                                pretrain_images=3000, pretrain_epochs=6, replicates=3),
    },
    types=PROBE_KNOBS | {"depths": choice((1, 2, 3, 4, 5), is_list=True),
                         "kernels": choice((1, 3, 5, 7, 9), is_list=True),
                         "kernel_stage": choice(STAGES, help=(
                             f"one of {list(STAGES)}: the VGG16 stage (or all) on which finding "
                             "A2 compares kernel sizes (one stage leaves room below the ceiling "
                             "that all stages together can reach on a small grid)")),
                         "hidden_channels": integer(1, 4096, optional=True)},
)
CONTENT_PATTERNS = ("H", "V", "G")


def validate(cfg: Config) -> None:
    """Fail before any work: what chapter 1 checks, plus what this chapter's findings need."""
    families = [[e for e in cfg.encoders if e.startswith(f)] for f in ("vgg", "resnet")]
    if any(len(f) != 1 for f in families):
        raise ValueError(f"chapter 2 uses one VGG and one ResNet; encoders={cfg.encoders}")
    need = {"H", "G", "HS"} - set(cfg.patterns)
    if need or not {1, 3} <= set(cfg.depths) or not {1, 7} <= set(cfg.kernels):
        raise ValueError("chapter 2's findings need patterns H, G, HS, depths 1 and 3, kernels 1 "
                         f"and 7; got {cfg.patterns}, {cfg.depths}, {cfg.kernels}")
    check_inputs_exist(cfg)


@dataclass
class Inputs:
    """What the readouts of one source see: training and natural test inputs ``[N, C, h, w]``,
    and the channel range of every encoder level (empty for the raw image)."""

    train: Tensor
    test: Tensor
    levels: list[tuple[int, int]]


def source_inputs(cfg: Config, source: Source, data: ProbeData,
                  cache: FeatureCache) -> Inputs:
    """Cached features of a source (shared with chapter 1's cache) or the raw images on the
    feature grid (:func:`~posinfo.probe.features.image_on_grid`)."""
    if isinstance(source.module, RawImage):
        grid = [image_on_grid(x, cfg.feature_size) for x in (data.train, data.tests["natural"])]
        return Inputs(*grid, [])
    edges = np.cumsum([0] + source.module.channels)
    feats = [cache(source.module, x, cfg.feature_size, name=source.name)
             for x in (data.train, data.tests["natural"])]
    return Inputs(*feats, list(zip(edges[:-1].tolist(), edges[1:].tolist())))


@dataclass(frozen=True)
class Readout:
    """One readout configuration: layers, kernel size, and which encoder level (``"all"`` or
    ``"f1"``..``"f5"``)."""

    layers: int = 1
    kernel: int = 3
    stage: str = "all"


def plan(cfg: Config, vgg: str) -> list[tuple[str, str, Readout]]:
    """Every (experiment, source, readout) of the chapter; duplicates are trained once."""
    raw = RAW
    runs = [("layers", s, Readout(layers=d)) for s in (raw, vgg) for d in cfg.depths]
    runs += [("kernel", s, Readout(kernel=k)) for s in (raw, vgg) for k in cfg.kernels]
    runs += [("kernel on one stage", vgg, Readout(kernel=k, stage=cfg.kernel_stage))
             for k in cfg.kernels]
    runs += [("stage", vgg, Readout(stage=f"f{i + 1}")) for i in range(5)]
    runs += [("stage", vgg, Readout())]
    return runs


def _select(inputs: Inputs, stage: str) -> tuple[Tensor, Tensor]:
    """The training and test inputs restricted to one encoder level (or all of them)."""
    if stage == "all":
        return inputs.train, inputs.test
    lo, hi = inputs.levels[int(stage[1:]) - 1]
    return inputs.train[:, lo:hi], inputs.test[:, lo:hi]


def predictions(cfg: Config, inputs: Inputs, readout: Readout, patterns: list[str]) -> dict[str, Tensor]:
    """Train one readout per pattern and predict the natural test images: ``[M, S, S]`` each."""
    train, test = _select(inputs, readout.stage)
    protocol = ReadoutTraining(n_layers=readout.layers, kernel_size=readout.kernel,
                               hidden_channels=cfg.hidden_channels, epochs=cfg.readout_epochs)
    out = {}
    for p in patterns:
        gt = targets.position_map(p, cfg.image_size)
        model = fit_readout(train, gt, protocol, seed=cfg.seed, device=cfg.device)
        out[p] = predict(model, test, cfg.image_size, device=cfg.device)
    return out


@dataclass
class AblationRun:
    """Scores of every ablation readout (tidy table) and the content-loss maps of each source."""

    table: pd.DataFrame   # experiment, source, layers, kernel, stage, pattern, metric, value
    content: dict[str, Tensor]  # source -> content loss [M, S, S] on the natural test images
    examples: dict[tuple[str, Readout, str], Tensor]  # -> predicted map [S, S] of test image 0
    natural_masks: Tensor  # the object masks [M, S, S] of the natural test images


def run(cfg: Config, data: ProbeData, sources: list[Source],
        progress: bool = True) -> AblationRun:
    """All readouts of the chapter in each of the ``cfg.replicates`` replicates
    (:meth:`~posinfo.book.params.Config.replicate`; replicate 0 reads ``data`` and ``sources``,
    the others draw their own scenes and train their own encoders, as chapter 1's do).

    Returns:
        The scores and content-loss statistics of every replicate (column ``replicate``), with
        replicate 0's content-loss maps and example predictions for the figures.
    """
    first = run_one(cfg, data, sources, progress)
    tables = [first.table.assign(replicate=0)]
    for index in tqdm(range(1, cfg.replicates), desc="replicates", disable=not progress):
        rcfg = cfg.replicate(index)
        rdata = load_data(rcfg, progress=False)
        tables.append(run_one(rcfg, rdata, load_sources(rcfg, progress=False), False)
                      .table.assign(replicate=index))
    return AblationRun(pd.concat(tables, ignore_index=True), first.content, first.examples,
                       first.natural_masks)


def studied_sources(sources: list[Source], cfg: Config) -> dict[str, Source]:
    """The raw image and each encoder with the run's weights, by encoder name (sources with
    other weights, such as ``compare_random``'s, are left out rather than let them replace the
    encoders the chapter studies)."""
    return {s.encoder: s for s in sources if s.weights in ("none", cfg.weights)}


def run_one(cfg: Config, data: ProbeData, sources: list[Source],
            progress: bool = True) -> AblationRun:
    """All readouts of one replicate, each configuration trained once and scored on natural
    images, and the content-loss statistics of A6 and A7 (rows of experiment ``content``).

    Features come from the same disk cache as chapter 1's (same encoder, images and grid: the
    same key), so after chapter 1 no encoder runs again.
    """
    by_name = studied_sources(sources, cfg)
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    cache = FeatureCache(cache_root(cfg) / "features", device=cfg.device, keep_in_memory=False)
    todo = plan(cfg, vgg)
    wanted = {(s, r) for _, s, r in todo} | {(s, Readout()) for s in by_name}
    preds: dict[tuple[str, Readout], dict[str, Tensor]] = {}
    for name in tqdm(list(by_name), desc="sources", disable=not progress):
        inputs = source_inputs(cfg, by_name[name], data, cache)
        for source, readout in sorted(wanted, key=str):
            if source == name:
                patterns = list(dict.fromkeys(list(cfg.patterns) + (list(CONTENT_PATTERNS)
                                              if readout == Readout() else [])))
                preds[(source, readout)] = predictions(cfg, inputs, readout, patterns)
    content = content_losses(cfg, preds)
    table = pd.concat([_score_rows(cfg, todo, preds),
                       content_rows(content, data.natural_masks, cfg.image_size)], ignore_index=True)
    return AblationRun(table, content,
                       {(s, r, p): m[0] for (s, r), maps in preds.items() for p, m in maps.items()},
                       data.natural_masks)


def _score_rows(cfg: Config, todo: list, preds: dict) -> pd.DataFrame:
    rows = []
    for experiment, source, readout in todo:
        for p in cfg.patterns:
            s = score(preds[(source, readout)][p], targets.position_map(p, cfg.image_size))
            base = dict(experiment=experiment, source=source, layers=readout.layers,
                        kernel=readout.kernel, stage=readout.stage, pattern=p)
            rows += [base | {"metric": m, "value": float(getattr(s, m))}
                     for m in ("spc_paper", "mae", "n_constant")]
    return pd.DataFrame(rows)


def content_losses(cfg: Config, preds: dict) -> dict[str, Tensor]:
    """Eq. 4 of the paper: per pixel, the mean over H, V and G of |ground truth - prediction|.

    Returns:
        For each source, a tensor ``[M, S, S]`` over the natural test images.
    """
    gts = {p: targets.position_map(p, cfg.image_size) for p in CONTENT_PATTERNS}
    return {source: torch.stack([(gts[p] - maps[p]).abs() for p in CONTENT_PATTERNS]).mean(0)
            for (source, readout), maps in preds.items() if readout == Readout()}


def corners_and_centre(loss: Tensor) -> tuple[float, float]:
    """Mean content loss over the four corner squares (side S/4) and over the centre square
    (side S/2), from maps ``[M, S, S]``."""
    s = loss.shape[-1]
    q = s // 4
    corners = torch.cat([loss[:, :q, :q], loss[:, :q, -q:], loss[:, -q:, :q], loss[:, -q:, -q:]], 1)
    return corners.mean().item(), loss[:, q: s - q, q: s - q].mean().item()


def objects_and_background(loss: Tensor, masks: Tensor) -> dict[str, float]:
    """Content loss inside the object masks against the background, two ways.

    ``pooled``: over all pixels. ``matched``: per pixel location, the mean loss when an object
    covers it minus the mean when it is background, averaged over locations seen both ways, so
    that where objects tend to lie (away from the border) cannot explain the difference.

    Args:
        loss: ``[M, S, S]``.
        masks: ``[M, S, S]`` in {0, 1}.
    """
    m = masks.bool()
    inside, outside = (loss * m).sum(0) / m.sum(0), (loss * ~m).sum(0) / (~m).sum(0)
    both = (m.sum(0) > 0) & ((~m).sum(0) > 0)
    return {"inside": loss[m].mean().item(), "background": loss[~m].mean().item(),
            "matched_difference": (inside - outside)[both].mean().item()}


BLIND = "position-blind map"  # the constant map at each target's mean: the controls' null


def blind_content_loss(size: int, n: int = 1) -> Tensor:
    """The content loss (Eq. 4) of a position-blind readout, the constant map at each target's
    mean: ``[n, S, S]``, the same for every image."""
    gts = [targets.position_map(p, size) for p in CONTENT_PATTERNS]
    return torch.stack([(gt - gt.mean()).abs() for gt in gts]).mean(0).expand(n, size, size)


def content_rows(content: dict[str, Tensor], masks: Tensor, size: int) -> pd.DataFrame:
    """Rows of experiment ``content``: per source (and for the position-blind map) the mean loss
    over the corners and the centre (A6) and inside against outside the objects (A7)."""
    rows = []
    for source, loss in [*content.items(), (BLIND, blind_content_loss(size, len(masks)))]:
        corner, centre = corners_and_centre(loss)
        stats_ = {"corners": corner, "centre": centre} | objects_and_background(loss, masks)
        rows += [dict(experiment="content", source=source, pattern="H,V,G", metric=k, value=v)
                 for k, v in stats_.items()]
    return pd.DataFrame(rows)


def spc_of(table: pd.DataFrame, experiment: str, source: str, pattern: str, **readout) -> float:
    """The natural-image SPC (paper's convention) of one readout of the run (the mean over the
    replicates in ``table``)."""
    sel = table[(table.experiment == experiment) & (table.source == source)
                & (table.pattern == pattern) & (table.metric == "spc_paper")]
    for k, v in readout.items():
        sel = sel[sel[k] == v]
    if sel.empty:
        raise KeyError(f"no SPC of {experiment}/{source}/{pattern}/{readout} in the run")
    return float(sel.value.mean())


def content_stat(table: pd.DataFrame, source: str, metric: str) -> float:
    """One content-loss statistic of a source (mean over the replicates in ``table``)."""
    sel = table[(table.experiment == "content") & (table.source == source) & (table.metric == metric)]
    return float(sel.value.mean())


def _lead(table: pd.DataFrame, experiment: str, source: str, patterns: Sequence[str],
          better: dict[str, Any], worse: dict[str, Any]) -> float:
    """Lowest SPC lead, over ``patterns``, of the readout ``better`` over the readout ``worse``."""
    return min(spc_of(table, experiment, source, p, **better) - spc_of(table, experiment, source, p, **worse)
               for p in patterns)


def _stage_lead(table: pd.DataFrame, vgg: str, top: str) -> float:
    """Lowest, over H and G, SPC of stage ``top`` minus the best single stage below it
    (``top="all"``) or minus stage f1 (``top="f5"``)."""
    def lead(p: str) -> float:
        singles = [spc_of(table, "stage", vgg, p, stage=f"f{i}") for i in range(1, 6)]
        other = max(singles) if top == "all" else singles[0]
        return spc_of(table, "stage", vgg, p, stage=top) - other
    return min(lead(p) for p in ("H", "G"))


def _corner_excess(table: pd.DataFrame, source: str) -> float:
    """How much more ``source``'s corner/centre loss ratio is than the position-blind map's."""
    ratio = lambda s: content_stat(table, s, "corners") / content_stat(table, s, "centre")  # noqa: E731
    return ratio(source) - ratio(BLIND)


def _with_source(table: pd.DataFrame, source: str, like: str) -> pd.DataFrame:
    """The table with ``source``'s content statistics replaced by those of ``like``."""
    return substitute(table, "source", source, like, where=table.experiment == "content")


def _raw_perfect(table: pd.DataFrame) -> pd.DataFrame:
    """The table with every raw-image readout scoring as the target itself (SPC 1)."""
    out = table.copy()
    out.loc[(out.source == RAW) & (out.metric == "spc_paper"), "value"] = 1.0
    return out


def _spread(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def check_claims(run: AblationRun, cfg: Config) -> list[Claim]:
    """The findings A1-A7 of ICLR 2020 Sec. 3.4-4.1, each decided from the replicates of this
    run (column ``replicate`` of ``run.table``), with its control on a null version."""
    t, raw = run.table, RAW
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    res = next(e for e in cfg.encoders if e.startswith("resnet"))
    deep, k7 = dict(layers=max(cfg.depths)), dict(kernel=7)
    a1 = lambda t, b=deep: _lead(t, "layers", vgg, ("H", "G"), b, dict(layers=1))  # noqa: E731
    a2 = lambda t, b=k7: _lead(t, "kernel on one stage", vgg, ("H", "G", "HS"), b,  # noqa: E731
                               dict(kernel=1))
    raw_max = lambda t: t[(t.source == raw) & (t.metric == "spc_paper")].value.max()  # noqa: E731
    a7 = lambda t: min(content_stat(t, e, "matched_difference") for e in (vgg, res))  # noqa: E731
    eff = {k: per_replicate(t, f) for k, f in (("A1", a1), ("A2", a2), ("A3", raw_max), ("A7", a7))}
    eff["A4"] = per_replicate(t, lambda t: _stage_lead(t, vgg, "f5"))
    eff["A5"] = per_replicate(t, lambda t: _stage_lead(t, vgg, "all"))
    eff["A6"] = per_replicate(t, lambda t: _corner_excess(t, raw))
    stages = {p: [spc_of(t, "stage", vgg, p, stage=f"f{i}") for i in range(1, 6)] for p in ("H", "G")}
    rho = {p: stats.spearmanr(range(5), s).statistic for p, s in stages.items()}
    return [
        tested("A1", f"More readout layers help {vgg} (\"Applying more layers in the PosENet can "
               "improve the readout of position information\"): SPC with "
               f"{max(cfg.depths)} layers above 1 layer for H and G.", "H .742 -> .830, G .814 -> .835",
               f"lowest gain per replicate: {_spread(eff['A1'])}",
               Rule(f"lowest SPC gain of {max(cfg.depths)} readout layers over 1 (H, G)", "above",
                    0.0, "the paper's smallest gain is .02, so any gain"), eff["A1"],
               per_replicate(t, lambda t: a1(t, dict(layers=1)))),
        tested("A2", f"Larger kernels help {vgg} (\"the larger kernel sizes are likely to capture "
               "more position information\"): SPC with 7x7 above 1x1 for H, G and HS, read on "
               f"{_stage_name(cfg.kernel_stage)}"
               + ("." if cfg.kernel_stage == "all" else " (away from the ceiling that all stages "
                  "can reach on a small grid; see the text)."),
               "H .542 -> .828, G .724 -> .816, HS .317 -> .487 (all stages, 28-cell grid)",
               f"lowest gain per replicate: {_spread(eff['A2'])}; all stages: "
               + ", ".join(f"{p} {spc_of(t, 'kernel', vgg, p, kernel=1):.3f} -> "
                           f"{spc_of(t, 'kernel', vgg, p, kernel=7):.3f}" for p in ("H", "G", "HS")),
               Rule(f"lowest SPC gain of the 7x7 readout over the 1x1 on {_stage_name(cfg.kernel_stage)}"
                    " (H, G, HS)", "above", 0.05, "half the paper's smallest gain, .09"), eff["A2"],
               per_replicate(t, lambda t: a2(t, dict(kernel=1)))),
        tested("A3", "The raw-image readout stays low whatever its depth or kernel: SPC below 0.2 "
               "everywhere.", "at most .126 (G, 3 layers)", f"highest per replicate: {_spread(eff['A3'])}",
               Rule("highest raw-image SPC over depths, kernels and patterns", "below", 0.2,
                    "as E1: the paper's highest is .126"), eff["A3"],
               per_replicate(_raw_perfect(t), raw_max)),
        tested("A4", f"Deeper {vgg} stages hold more position (\"the deeper feature contains more "
               "position information\"): SPC of f5 at least 0.2 above f1 for H and G.",
               "H .101 -> .657, G .241 -> .693, monotone",
               "mean SPC f1..f5: " + "; ".join(f"{p}: " + ", ".join(f"{v:.3f}" for v in s)
                                               + f" (rank correlation with depth {rho[p]:.2f})"
                                               for p, s in stages.items()),
               Rule("lowest SPC gain of stage f5 over f1 (H, G)", "above", 0.2,
                    "the paper's gains are .45 and .56"), eff["A4"],
               per_replicate(t, lambda t: _stage_lead(_with_stage(t, "f5", "f1"), vgg, "f5"))),
        tested("A5", "All stages together beat every single stage, for H and G.",
               "H .742 vs at most .657; G .814 vs at most .693",
               f"lowest lead per replicate: {_spread(eff['A5'])}",
               Rule("lowest SPC lead of all stages over the best single stage (H, G)", "above",
                    0.0, "the paper's leads are .09 and .12, so any lead"), eff["A5"],
               per_replicate(t, lambda t: _stage_lead(_with_stage(t, "all", "f5"), vgg, "all"))),
        tested("A6", "The raw-image readout's content loss is largest near the corners (\"the "
               "heatmaps of PosENet have larger content loss around the corners\"), more so than "
               "for a position-blind readout (corner/centre loss ratio above the blind map's).",
               "Fig. 7: loss concentrated at the corners",
               f"corner/centre ratio {content_stat(t, raw, 'corners') / content_stat(t, raw, 'centre'):.3f}"
               f" against {content_stat(t, BLIND, 'corners') / content_stat(t, BLIND, 'centre'):.3f} for "
               "the blind map (means)", Rule("raw-image corner/centre loss ratio minus the "
                                            "position-blind map's", "above", 0.0), eff["A6"],
               per_replicate(_with_source(t, raw, BLIND), lambda t: _corner_excess(t, raw))),
        tested("A7", f"For {vgg} and {res} the content loss follows the content (\"the loss maps of "
               "VGG and ResNet correlate more with the semantic content\"): higher inside object "
               "masks than on the background (at the same pixel locations).",
               "Fig. 7: loss follows the salient objects",
               "; ".join(f"{e}: inside {content_stat(t, e, 'inside'):.3f}, background "
                         f"{content_stat(t, e, 'background'):.3f}, matched difference "
                         f"{content_stat(t, e, 'matched_difference'):+.3f}" for e in (vgg, res)),
               Rule("lowest matched inside-minus-background loss over the two encoders", "above",
                    0.0), eff["A7"],
               per_replicate(_with_source(_with_source(t, vgg, BLIND), res, BLIND), a7)),
    ]


def prose_numbers(run: AblationRun, claims: Sequence[Claim], cfg: Config) -> dict[str, str]:
    """The numbers the chapter's "Reading the numbers" quotes about the kernel ablation, from this
    run, as glue variables (see ``posinfo.book.results.glue_prose``): the 1x1 and 7x7 SPC of each
    pattern with all stages (``kernel_all``) and on ``kernel_stage`` (``kernel_stage_scores``),
    and A2's verdict (``a2``)."""
    vgg, t = next(e for e in cfg.encoders if e.startswith("vgg")), run.table
    words = lambda experiment, **where: ", ".join(  # noqa: E731
        f"{p} {decimal(spc_of(t, experiment, vgg, p, kernel=1, **where), 3)} -> "
        f"{decimal(spc_of(t, experiment, vgg, p, kernel=7, **where), 3)}" for p in cfg.patterns)
    stage = ({"kernel_stage_scores": "the same (A2 reads all stages)"} if cfg.kernel_stage == "all"
             else {"kernel_stage_scores": words("kernel on one stage")})
    return {"kernel_all": words("kernel"), "kernel_stage": _stage_name(cfg.kernel_stage),
            "a2": holds_by_id(claims)["a2"]} | stage


def _with_stage(table: pd.DataFrame, stage: str, like: str) -> pd.DataFrame:
    """The table with the stage readout ``stage`` scoring as the readout of stage ``like``."""
    return substitute(table, "stage", stage, like, where=table.experiment == "stage")


def _stage_name(stage: str) -> str:
    return "all stages" if stage == "all" else f"stage {stage} alone"


def _ours(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    sel = table[(table.experiment == experiment) & table.metric.isin(["spc_paper", "mae"])].copy()
    sel["metric"] = sel.metric.replace({"spc_paper": "spc"})
    sel["source"] = sel.source.str.replace(r"^vgg16(_bn)?$", "vgg16", regex=True)
    return sel


def readout_table(table: pd.DataFrame) -> pd.DataFrame:
    """Readout depth and kernel size beside ICLR 2020 Table 2 (SPC and MAE, natural images)."""
    one = _ours(table, "kernel on one stage")
    one = one[one.stage != "all"]  # all stages: the same readouts as the kernel rows
    one = one.assign(ablation=[f"kernel, {_stage_name(s)}" for s in one.stage], value_=one.kernel)
    ours = pd.concat([_ours(table, "layers").assign(ablation="layers", value_=lambda d: d.layers),
                      _ours(table, "kernel").assign(ablation="kernel", value_=lambda d: d.kernel),
                      one])
    ours = ours.rename(columns={"value": "ours", "value_": "setting"})
    paper = iclr2020_table2().rename(columns={"value": "setting"}).melt(
        id_vars=["pattern", "source", "ablation", "setting"], var_name="metric", value_name="paper")
    both = ours.merge(paper, on=["pattern", "source", "ablation", "setting", "metric"], how="left")
    wide = both.pivot_table(index=["ablation", "setting", "source"], columns=["pattern", "metric"],
                            values=["paper", "ours"], sort=False)
    return wide.reorder_levels([1, 2, 0], axis=1).sort_index(axis=1).round(3)


def stage_table(table: pd.DataFrame) -> pd.DataFrame:
    """The VGG16 readout on each stage beside ICLR 2020 Table 3 (natural images)."""
    ours = _ours(table, "stage").rename(columns={"value": "ours"})
    paper = iclr2020_table3().melt(id_vars=["pattern", "stage"], var_name="metric", value_name="paper")
    both = ours.merge(paper, on=["pattern", "stage", "metric"], how="left")
    wide = both.pivot_table(index="stage", columns=["pattern", "metric"], values=["paper", "ours"],
                            sort=False)
    return wide.reorder_levels([1, 2, 0], axis=1).sort_index(axis=1).round(3)


def plot_content_loss(run: AblationRun, data: ProbeData):
    """Content-loss maps (Fig. 7): one test image and its mask, then each source's loss on it and
    averaged over all test images."""
    names = list(run.content)
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(2.2 * (len(names) + 1), 4.4))
    axes[0, 0].imshow(data.tests["natural"][0].permute(1, 2, 0).numpy())
    axes[1, 0].imshow(data.natural_masks[0].numpy(), cmap="gray")
    axes[0, 0].set_title("image", fontsize=9)
    axes[1, 0].set_title("object mask", fontsize=9)
    for j, name in enumerate(names, start=1):
        axes[0, j].imshow(run.content[name][0].numpy(), cmap="magma", vmin=0, vmax=0.5)
        axes[1, j].imshow(run.content[name].mean(0).numpy(), cmap="magma", vmin=0, vmax=0.5)
        axes[0, j].set_title(f"{name}\n(this image)", fontsize=9)
        axes[1, j].set_title(f"{name}\n(mean of all)", fontsize=9)
    return plots.image_panels(fig)


def plot_stages(table: pd.DataFrame, cfg: Config):
    """SPC of the VGG16 readout against the stage it reads, ours and the paper's (Table 3)."""
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    paper = iclr2020_table3()
    fig, ax = plt.subplots(figsize=(4.5, 3))
    stages = [f"f{i}" for i in range(1, 6)]
    for p, color in (("H", "tab:blue"), ("G", "tab:orange")):
        ax.plot(stages, [spc_of(table, "stage", vgg, p, stage=s) for s in stages], "o-", color=color,
                label=f"{p}, ours")
        ax.plot(stages, [paper[(paper.pattern == p) & (paper.stage == s)].spc.item() for s in stages],
                "s--", color=color, alpha=0.6, label=f"{p}, paper")
    ax.set_xlabel("VGG16 stage read")
    ax.set_ylabel("SPC (natural images)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def regression_summary(run: AblationRun, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: files written, readouts trained, claims.

    Mean SPCs are left out: the smoke profile's lie so close to a rounding boundary (0.2456 for
    the kernel sweep) that the last digit differed between two runs on the same machine.
    """
    results = read_back(cfg.results_dir, claims, {"experiment", "pattern", "metric"})
    spc = run.table[run.table.metric == "spc_paper"]
    return {"rows": len(results), "readouts": int(spc.groupby(["source", "layers", "kernel",
                                                               "stage"]).ngroups),
            "claims": {c.id: c.verdict for c in claims}}


def plot_readout_maps(run: AblationRun, cfg: Config, pattern: str = "G"):
    """Predicted maps of one test image for each readout depth and kernel size (like Fig. 5)."""
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    settings = ([(f"L={d}, k=3", Readout(layers=d)) for d in cfg.depths]
                + [(f"L=1, k={k}", Readout(kernel=k)) for k in cfg.kernels if k != 3])
    rows = {"target": [targets.position_map(pattern, cfg.image_size)] * len(settings)}
    rows |= {s: [run.examples[(s, r, pattern)] for _, r in settings] for s in (RAW, vgg)}
    return plots.map_grid(rows, [name for name, _ in settings])
