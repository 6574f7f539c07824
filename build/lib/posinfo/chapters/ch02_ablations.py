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
from posinfo.book.results import Claim, read_back
from posinfo.cache import cache_root
from posinfo.data import targets
from posinfo.metrics.position import score
from posinfo.probe.features import FeatureCache
from posinfo.probe.probing import PROBE_KNOBS, RAW, ProbeData, RawImage, Source, check_inputs_exist
from posinfo.probe.readout import ReadoutTraining, fit_readout, predict

_SHARED = dict(dataset="scenes", n_synthetic=1, weights="synthetic", input_norm="none",
               compare_random=False, least_squares=False, cache_dir=None)
SPEC = ChapterSpec(
    chapter="02_ablations",
    profiles={
        "smoke": _SHARED | dict(image_size=32, feature_size=8, n_train=24, n_test=6,
                                patterns=["H", "G", "HS"], encoders=["vgg16_bn", "resnet18"],
                                vgg_width=0.125, readout_epochs=3, depths=[1, 2, 3],
                                kernels=[1, 3, 7], hidden_channels=16, pretrain_size=32,
                                pretrain_images=64, pretrain_epochs=1),
        "default": _SHARED | dict(image_size=96, feature_size=12, n_train=320, n_test=100,
                                  patterns=["H", "G", "HS"], encoders=["vgg16_bn", "resnet18"],
                                  vgg_width=0.5, readout_epochs=15, depths=[1, 2, 3],
                                  kernels=[1, 3, 7], hidden_channels=64,
                                  pretrain_size={"vgg16_bn": 32, "resnet18": 48},
                                  pretrain_images=3000, pretrain_epochs=6),
        "paper": _SHARED | dict(dataset="duts+pascal-s", image_size=224, feature_size=28,
                                n_train=2000, n_test=None, patterns=["H", "G", "HS"],
                                encoders=["vgg16", "resnet152"], weights="imagenet",
                                vgg_width=1.0, readout_epochs=15, depths=[1, 2, 3],
                                kernels=[1, 3, 7], hidden_channels=None, pretrain_size=32,
                                pretrain_images=3000, pretrain_epochs=6),
    },
    types=PROBE_KNOBS | {"depths": choice((1, 2, 3, 4, 5), is_list=True),
                         "kernels": choice((1, 3, 5, 7, 9), is_list=True),
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
    """Cached features of a source (shared with chapter 1's cache) or the raw images."""
    if isinstance(source.module, RawImage):
        return Inputs(data.train, data.tests["natural"], [])
    edges = np.cumsum([0] + source.module.channels)
    feats = [cache(source.module, x, cfg.feature_size) for x in (data.train, data.tests["natural"])]
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
    """All readouts of the chapter, each configuration trained once and scored on natural images.

    Features come from the same disk cache as chapter 1's (same encoder, images and grid: the
    same key), so after chapter 1 no encoder runs again.
    """
    by_name = {s.encoder: s for s in sources}
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
    return AblationRun(_score_rows(cfg, todo, preds), content_losses(cfg, preds),
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


def spc_of(table: pd.DataFrame, experiment: str, source: str, pattern: str, **readout) -> float:
    """The natural-image SPC (paper's convention) of one readout of the run."""
    sel = table[(table.experiment == experiment) & (table.source == source)
                & (table.pattern == pattern) & (table.metric == "spc_paper")]
    for k, v in readout.items():
        sel = sel[sel[k] == v]
    return float(sel.value.item())


def check_claims(run: AblationRun, cfg: Config) -> list[Claim]:
    """The findings A1-A7 of ICLR 2020 Sec. 3.4-4.1, each computed from this run."""
    t, raw = run.table, RAW
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    res = next(e for e in cfg.encoders if e.startswith("resnet"))
    depth = {p: (spc_of(t, "layers", vgg, p, layers=1), spc_of(t, "layers", vgg, p, layers=max(cfg.depths)))
             for p in ("H", "G")}
    kern = {p: (spc_of(t, "kernel", vgg, p, kernel=1), spc_of(t, "kernel", vgg, p, kernel=7))
            for p in ("H", "G", "HS")}
    raw_all = t[(t.source == raw) & (t.metric == "spc_paper")].value
    stages = {p: [spc_of(t, "stage", vgg, p, stage=f"f{i}") for i in range(1, 6)] for p in ("H", "G")}
    every = {p: spc_of(t, "stage", vgg, p, stage="all") for p in ("H", "G")}
    rho = {p: stats.spearmanr(range(5), s).statistic for p, s in stages.items()}
    corner, centre = corners_and_centre(run.content[raw])
    obj = {e: objects_and_background(run.content[e], run.natural_masks) for e in (vgg, res)}
    fmt = lambda d: ", ".join(f"{p} {a:.3f} -> {b:.3f}" for p, (a, b) in d.items())  # noqa: E731
    return [
        Claim("A1", f"More readout layers help {vgg}: SPC with {max(cfg.depths)} layers above 1 layer "
              "for H and G.", "H .742 -> .830, G .814 -> .835", fmt(depth),
              bool(all(b > a for a, b in depth.values()))),
        Claim("A2", f"Larger kernels help {vgg}: SPC with 7x7 above 1x1 for H, G and HS.",
              "H .542 -> .828, G .724 -> .816, HS .317 -> .487", fmt(kern),
              bool(all(b > a for a, b in kern.values()))),
        Claim("A3", "The raw-image readout stays low whatever its depth or kernel: SPC below 0.2 "
              "everywhere.", "at most .126 (G, 3 layers)", f"max {raw_all.max():.3f}",
              bool((raw_all < 0.2).all())),
        Claim("A4", f"Deeper {vgg} stages hold more position: SPC of f5 at least 0.2 above f1 for H "
              "and G, and rising with depth (rank correlation of stage and SPC at least 0.8).",
              "H .101 -> .657, G .241 -> .693, monotone",
              "; ".join(f"{p}: " + ", ".join(f"{v:.3f}" for v in s) + f" (rho {rho[p]:.2f})"
                        for p, s in stages.items()),
              bool(all(s[4] - s[0] >= 0.2 and rho[p] >= 0.8 for p, s in stages.items()))),
        Claim("A5", "All stages together beat every single stage, for H and G.",
              "H .742 vs at most .657; G .814 vs at most .693",
              "; ".join(f"{p}: all {every[p]:.3f} vs best single {max(s):.3f}" for p, s in stages.items()),
              bool(all(every[p] > max(s) for p, s in stages.items()))),
        Claim("A6", "The raw-image readout's content loss is largest near the corners (mean over "
              "corner regions above the mean over the centre).", "Fig. 7: loss concentrated at the corners",
              f"corners {corner:.3f}, centre {centre:.3f}", bool(corner > centre)),
        Claim("A7", f"For {vgg} and {res} the content loss follows the content: higher inside "
              "object masks than on the background (at the same pixel locations).",
              "Fig. 7: loss follows the salient objects",
              "; ".join(f"{e}: inside {o['inside']:.3f}, background {o['background']:.3f}, "
                        f"matched difference {o['matched_difference']:+.3f}" for e, o in obj.items()),
              bool(all(o["matched_difference"] > 0 for o in obj.values()))),
    ]


def _ours(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    sel = table[(table.experiment == experiment) & table.metric.isin(["spc_paper", "mae"])].copy()
    sel["metric"] = sel.metric.replace({"spc_paper": "spc"})
    sel["source"] = sel.source.str.replace(r"^vgg16(_bn)?$", "vgg16", regex=True)
    return sel


def readout_table(table: pd.DataFrame) -> pd.DataFrame:
    """Readout depth and kernel size beside ICLR 2020 Table 2 (SPC and MAE, natural images)."""
    ours = pd.concat([_ours(table, "layers").assign(ablation="layers", value_=lambda d: d.layers),
                      _ours(table, "kernel").assign(ablation="kernel", value_=lambda d: d.kernel)])
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
            "claims": {c.id: c.holds for c in claims}}


def plot_readout_maps(run: AblationRun, cfg: Config, pattern: str = "G"):
    """Predicted maps of one test image for each readout depth and kernel size (like Fig. 5)."""
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    settings = ([(f"L={d}, k=3", Readout(layers=d)) for d in cfg.depths]
                + [(f"L=1, k={k}", Readout(kernel=k)) for k in cfg.kernels if k != 3])
    rows = {"target": [targets.position_map(pattern, cfg.image_size)] * len(settings)}
    rows |= {s: [run.examples[(s, r, pattern)] for _, r in settings] for s in (RAW, vgg)}
    return plots.map_grid(rows, [name for name, _ in settings])
