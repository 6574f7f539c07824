"""Chapter 3: where position comes from: the border (ICLR 2020 Table 4, Fig. 6; Kayhan & van
Gemert 2020; Islam et al. 2021).

Four experiments on chapter 1's data and encoders: the raw-image readout given zero padding of
0, 1 or 2 pixels (and other borders); VGG16 with its padding removed or replaced (weights
unchanged); one convolution telling two corners apart with zero or circular padding; and the
readout's error as a function of a pixel's distance to the nearest border.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.book.paper_tables import iclr2020_table4
from posinfo.book.params import ChapterSpec, Config, choice, integer
from posinfo.book.results import Claim, read_back, tested
from posinfo.book.verdicts import Rule, per_replicate, substitute
from posinfo.cache import cache_root
from posinfo.data import targets
from posinfo.data.targets import distance_to_border
from posinfo.metrics.position import score
from posinfo.models.corner_net import train_corner_net
from posinfo.models.encoders import MIN_NOPAD_SIZE, build_encoder
from posinfo.models.pretrain import synthetic_encoder
from posinfo.probe.features import FeatureCache, image_on_grid
from posinfo.probe.probing import (PROBE_KNOBS, ProbeData, check_inputs_exist, load_data,
                                   pretrain_config)
from posinfo.probe.readout import ReadoutTraining, fit_readout, predict

BORDERS = ("zero", "reflect", "replicate", "circular")
_TORCH_MODE = {"zero": "zeros", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
_SHARED = dict(dataset="scenes", n_synthetic=1, weights="synthetic", input_norm="none",
               compare_random=False, least_squares=False, cache_dir=None,
               readout_paddings=[0, 1, 2], borders=list(BORDERS))
SPEC = ChapterSpec(
    chapter="03_padding",
    profiles={
        "smoke": _SHARED | dict(image_size=32, nopad_image_size=224, feature_size=8,
                                nopad_feature_size=8, n_train=16, n_test=4, patterns=["H", "G"],
                                encoders=["vgg16_bn"], vgg_width=0.125, readout_epochs=3,
                                kayhan_seeds=2, kayhan_steps=30, pretrain_size=32,
                                pretrain_images=64, pretrain_epochs=1, replicates=2),
        "default": _SHARED | dict(image_size=96, nopad_image_size=224, feature_size=12,
                                  nopad_feature_size=14, n_train=320, n_test=100,
                                  patterns=["H", "G", "HS"], encoders=["vgg16_bn"], vgg_width=0.5,
                                  readout_epochs=15, kayhan_seeds=5, kayhan_steps=200,
                                  pretrain_size={"vgg16_bn": 32}, pretrain_images=3000,
                                  pretrain_epochs=6, replicates=3),
        "paper": _SHARED | dict(dataset="duts+pascal-s", image_size=224, nopad_image_size=224,
                                feature_size=28, nopad_feature_size=28, n_train=2000, n_test=None,
                                patterns=["H", "G", "HS"], encoders=["vgg16"], weights="imagenet",
                                vgg_width=1.0, readout_epochs=15, kayhan_seeds=10,
                                kayhan_steps=300, pretrain_size=32, pretrain_images=3000,
                                pretrain_epochs=6, replicates=3),
    },
    types=PROBE_KNOBS | {"nopad_image_size": integer(16, 4096), "nopad_feature_size": integer(1, 512),
                         "readout_paddings": choice((0, 1, 2, 3), is_list=True),
                         "borders": choice(BORDERS, is_list=True), "kayhan_seeds": integer(1, 1000),
                         "kayhan_steps": integer(1, 100_000)},
)


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete."""
    if len(cfg.encoders) != 1 or not cfg.encoders[0].startswith("vgg"):
        raise ValueError(f"chapter 3 studies one VGG16; encoders={cfg.encoders}")
    if not {"H", "G"} <= set(cfg.patterns) or cfg.readout_paddings[:3] != [0, 1, 2]:
        raise ValueError("chapter 3's findings need patterns H and G and readout_paddings 0, 1, 2")
    if cfg.nopad_image_size < MIN_NOPAD_SIZE:
        raise ValueError(f"VGG16 without padding needs images of at least {MIN_NOPAD_SIZE} px; "
                         f"nopad_image_size={cfg.nopad_image_size}")
    check_inputs_exist(cfg, grid=max(cfg.feature_size, cfg.nopad_feature_size))  # both grids


def _rows(experiment: str, setting: str, pattern: str, scores) -> list[dict]:
    base = dict(experiment=experiment, setting=setting, pattern=pattern)
    return [base | {"metric": m, "value": float(getattr(scores, m))}
            for m in ("spc_paper", "mae", "n_constant")]


def raw_readouts(cfg: Config, data: ProbeData) -> pd.DataFrame:
    """The readout on the raw image (resized to the feature grid, as the paper's decoder resizes
    it) with zero padding of each size, and with each border at 1 cell."""
    settings = [(f"zero padding {p}", p, "zero") for p in cfg.readout_paddings]
    settings += [(f"{b} padding 1", 1, b) for b in cfg.borders if b != "zero"]
    rows = []
    train, test = (image_on_grid(x, cfg.feature_size) for x in (data.train, data.tests["natural"]))
    for name, pad, border in tqdm(settings, desc="raw-image readouts", leave=False):
        protocol = ReadoutTraining(padding=pad, padding_mode=_TORCH_MODE[border],
                                   epochs=cfg.readout_epochs)
        for p in cfg.patterns:
            gt = targets.position_map(p, cfg.image_size)
            model = fit_readout(train, gt, protocol, seed=cfg.seed, device=cfg.device)
            pred = predict(model, test, cfg.image_size, device=cfg.device)
            rows += _rows("raw readout", name, p, score(pred, gt))
    return pd.DataFrame(rows)


def large_image_config(cfg: Config) -> Config:
    """The run's configuration at the image size VGG16 without padding needs."""
    return dataclasses.replace(cfg, knobs={**cfg.knobs, "image_size": cfg.nopad_image_size,
                                           "feature_size": cfg.nopad_feature_size})


def encoder_paddings(cfg: Config, progress: bool = True, modes: Sequence[str] | None = None
                     ) -> tuple[pd.DataFrame, dict[str, Tensor]]:
    """VGG16 with the same weights and each padding (none included), read by one 3x3 readout.

    Unpadded maps shrink with depth; every level is still resized to the common grid, so each
    level's grid covers the central part of the image its valid convolutions reach.

    Args:
        modes: The paddings to read (default: zero, none and every border of ``cfg.borders``).

    Returns:
        The scores, and for each padding the absolute error ``[M, S, S]`` averaged over patterns
        (for the distance-to-border analysis).
    """
    big = large_image_config(cfg)
    data = load_data(big, progress=False)
    cache = FeatureCache(cache_root(cfg) / "features", device=cfg.device, keep_in_memory=False)
    rows, errors = [], {}
    modes = ["zero", "none"] + [b for b in cfg.borders if b != "zero"] if modes is None else modes
    for mode in tqdm(modes, desc="paddings", disable=not progress):
        encoder = _encoder(big, mode)
        name = f"{big.encoders[0]} ({mode} padding)"
        train, test = (cache(encoder, x, big.feature_size, name=name)
                       for x in (data.train, data.tests["natural"]))
        err = []
        for p in cfg.patterns:
            gt = targets.position_map(p, big.image_size)
            model = fit_readout(train, gt, ReadoutTraining(epochs=cfg.readout_epochs),
                                seed=cfg.seed, device=cfg.device)
            pred = predict(model, test, big.image_size, device=cfg.device)
            rows += _rows("vgg16 padding", mode, p, score(pred, gt))
            err.append((pred - gt).abs())
        errors[mode] = torch.stack(err).mean(0)
    return pd.DataFrame(rows), errors


def replicated(cfg: Config, data: ProbeData, progress: bool = True
               ) -> tuple[pd.DataFrame, dict[str, Tensor]]:
    """The raw-image readouts and the VGG16 paddings in each of the ``cfg.replicates``
    replicates (:meth:`~posinfo.book.params.Config.replicate`; replicate 0 reads ``data``, the
    others draw their own scenes, encoder and readout initialisations). Replicates after the
    first read VGG16 with zero padding and without only, the two that finding P2 compares.

    Returns:
        The scores of all replicates (column ``replicate``), and replicate 0's errors per padding.
    """
    tables, errors = [], {}
    for index in tqdm(range(cfg.replicates), desc="replicates", disable=not progress):
        rcfg = cfg.replicate(index)
        rdata = data if index == 0 else load_data(rcfg, progress=False)
        vgg, err = encoder_paddings(rcfg, progress, None if index == 0 else ["zero", "none"])
        errors = errors or err
        tables.append(pd.concat([raw_readouts(rcfg, rdata), vgg]).assign(replicate=index))
    return pd.concat(tables, ignore_index=True), errors


def _encoder(cfg: Config, mode: str):
    """The chapter's VGG16 with the given padding (weights as trained)."""
    arch = cfg.encoders[0]
    if cfg.weights == "synthetic":
        return synthetic_encoder(pretrain_config(cfg, arch), cache_root(cfg),
                                 padding=mode, input_norm=cfg.input_norm, progress=False)[0]
    return build_encoder(arch, cfg.weights, padding=mode, width=cfg.vgg_width, seed=cfg.seed,
                         input_norm=cfg.input_norm)


def corner_experiment(cfg: Config) -> pd.DataFrame:
    """Kayhan & van Gemert's corner task, zero against circular padding, over several seeds."""
    rows = [dict(experiment="corner task", setting=mode, pattern="", metric="test_accuracy",
                 value=train_corner_net(_TORCH_MODE[mode], seed=cfg.seed * 100 + s,
                                        n_train=256, n_test=256, steps=cfg.kayhan_steps), run=s)
            for mode in ("zero", "circular") for s in range(cfg.kayhan_seeds)]
    return pd.DataFrame(rows)


def error_by_distance(errors: dict[str, Tensor], bins: int = 8) -> pd.DataFrame:
    """Mean readout error against the distance to the border, in ``bins`` equal bands.

    Returns:
        Rows: padding, band (its lower edge in pixels), mean error.
    """
    size = next(iter(errors.values())).shape[-1]
    dist = distance_to_border(size)
    edges = np.linspace(0, dist.max().item() + 1, bins + 1)
    band = torch.as_tensor(np.digitize(dist.numpy(), edges[1:-1]))
    rows = []
    for mode, err in errors.items():
        mean_map = err.mean(0)
        rows += [dict(experiment="error by distance", setting=mode, pattern="mean of patterns",
                      metric=f"error_d{int(edges[b])}",
                      value=mean_map[band == b].mean().item()) for b in range(bins)]
    return pd.DataFrame(rows)


def spc(table: pd.DataFrame, experiment: str, setting: str, pattern: str) -> float:
    """Natural-image SPC (paper's convention) of one readout (mean over the replicates in
    ``table``)."""
    sel = table[(table.experiment == experiment) & (table.setting == setting)
                & (table.pattern == pattern) & (table.metric == "spc_paper")]
    if sel.empty:
        raise KeyError(f"no SPC of {experiment}/{setting}/{pattern} in the run")
    return float(sel.value.mean())


def _rise(table: pd.DataFrame) -> float:
    """Smallest SPC step of the raw-image readout from zero padding 0 to 1 and 1 to 2 (H, G)."""
    steps = [spc(table, "raw readout", f"zero padding {k + 1}", p)
             - spc(table, "raw readout", f"zero padding {k}", p) for p in ("H", "G") for k in (0, 1)]
    return min(steps)


def _loss(table: pd.DataFrame) -> float:
    """Smallest SPC loss of VGG16 without padding against zero padding (H, G)."""
    return min(spc(table, "vgg16 padding", "zero", p) - spc(table, "vgg16 padding", "none", p)
               for p in ("H", "G"))


def _as(table: pd.DataFrame, experiment: str, setting: str, like: str) -> pd.DataFrame:
    """The table with the rows of ``setting`` replaced by those of ``like`` (the control's null:
    the two compared settings made the same)."""
    return substitute(table, "setting", setting, like, where=table.experiment == experiment)


def _corner_accuracies(table: pd.DataFrame, mode: str) -> list[float]:
    sel = table[(table.experiment == "corner task") & (table.setting == mode)]
    return sel.sort_values("run").value.tolist()


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings P1-P4, each decided from the replicates of this run: P1 and P2 over the
    ``replicate`` column, P3 and P4 over the corner task's seeds (column ``run``)."""
    readouts = table[table.experiment != "corner task"]
    p1, p2 = per_replicate(readouts, _rise), per_replicate(readouts, _loss)
    flat = _as(_as(readouts, "raw readout", "zero padding 1", "zero padding 0"), "raw readout",
               "zero padding 2", "zero padding 0")
    zero, circular = _corner_accuracies(table, "zero"), _corner_accuracies(table, "circular")
    raw = {p: [spc(readouts, "raw readout", f"zero padding {k}", p) for k in (0, 1, 2)] for p in ("H", "G")}
    vgg = {p: (spc(readouts, "vgg16 padding", "zero", p), spc(readouts, "vgg16 padding", "none", p))
           for p in ("H", "G")}
    acc = lambda v: f"mean {np.mean(v):.3f} (min {min(v):.3f}, max {max(v):.3f}) over {len(v)} seeds"  # noqa: E731
    return [
        tested("P1", "Padding gives the raw-image readout position (\"the padding near the border "
               "delivers position information\"): SPC rises from padding 0 to 1 to 2 for H and G.",
               "H .012 -> .274 -> .397; G -.001 -> .205 -> .380 (Table 4)",
               "means: " + "; ".join(f"{p} " + " -> ".join(f"{v:.3f}" for v in s) for p, s in raw.items()),
               Rule("smallest SPC step of the raw-image readout, padding 0 -> 1 and 1 -> 2 (H, G)",
                    "above", 0.0, "the paper's smallest step is .12, so any rise"), p1,
               per_replicate(flat, _rise)),
        tested("P2", "VGG16 without padding loses much of its position (\"the VGG16 model without "
               "zero-padding achieves much lower performance\"): SPC at least 0.2 below VGG16 "
               "with padding for H and G.", "H .742 -> .381; G .814 -> .359 (Table 4)",
               "means: " + "; ".join(f"{p} {a:.3f} -> {b:.3f}" for p, (a, b) in vgg.items()),
               Rule("smallest SPC loss of VGG16 without padding against zero padding (H, G)",
                    "above", 0.2, "'much': the paper's losses are .36 and .46"), p2,
               per_replicate(_as(readouts, "vgg16 padding", "none", "zero"), _loss)),
        tested("P3", "One 5x5 convolution with zero padding tells the two corners apart: test "
               "accuracy at least 95%.", "100% (Kayhan & van Gemert, Fig. 1)", acc(zero),
               Rule("test accuracy of the zero-padded corner network, per seed", "above", 0.95,
                    "'tells apart': near-perfect, as the paper's 100%"), zero, circular),
        tested("P4", "With circular padding on a uniform background it cannot: test accuracy at "
               "most 60%.", "chance, as translation on a torus predicts", acc(circular),
               Rule("test accuracy of the circular-padded corner network, per seed", "below", 0.60,
                    "chance is 50%"), circular, zero),
    ]


def padding_table(table: pd.DataFrame) -> pd.DataFrame:
    """SPC and MAE of every readout and padding (natural images, mean over the replicates) beside
    ICLR 2020 Table 4 (blank where the paper has no such row or pattern).

    Returns:
        Rows (experiment, setting), columns (pattern, metric, paper|ours), rounded to 3.
    """
    sel = table[table.experiment.isin(["raw readout", "vgg16 padding"])
                & table.metric.isin(["spc_paper", "mae"])].copy()
    sel["metric"] = sel.metric.replace({"spc_paper": "spc"})
    keys = ["experiment", "setting", "pattern", "metric"]
    ours = sel.groupby(keys, sort=False).value.mean().rename("ours").reset_index()
    paper = iclr2020_table4().melt(id_vars=keys[:3], var_name="metric", value_name="paper")
    both = ours.merge(paper, on=keys, how="left")
    wide = both.pivot_table(index=keys[:2], columns=["pattern", "metric"], values=["paper", "ours"],
                            sort=False, dropna=False)
    wide = wide.reorder_levels([1, 2, 0], axis=1)
    cols = [(p, m, w) for p in dict.fromkeys(ours.pattern) for m in ("spc", "mae")
            for w in ("paper", "ours")]
    rows = list(dict.fromkeys(zip(ours.experiment, ours.setting)))
    return wide.reindex(index=pd.MultiIndex.from_tuples(rows, names=keys[:2]),
                        columns=pd.MultiIndex.from_tuples(cols)).round(3)


def plot_error_by_distance(table: pd.DataFrame):
    """The readout's error against the distance to the nearest border, for each VGG16 padding."""
    sel = table[table.experiment == "error by distance"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for mode, group in sel.groupby("setting", sort=False):
        d = group.metric.str.removeprefix("error_d").astype(int)
        ax.plot(d, group.value, "o-", label=mode)
    ax.set_xlabel("distance to the nearest border (px, band start)")
    ax.set_ylabel("mean |target - prediction|")
    ax.legend(title="VGG16 padding", fontsize=8)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: files written, claims, rounded scores."""
    results = read_back(cfg.results_dir, claims, {"experiment", "setting", "metric"})
    corner = table[table.experiment == "corner task"].groupby("setting").value.mean().round(2)
    return {"rows": len(results), "corner_accuracy": corner.to_dict(),
            "claims": {c.id: c.verdict for c in claims}}
