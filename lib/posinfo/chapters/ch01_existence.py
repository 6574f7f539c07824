"""Chapter 1: does a CNN know where things are? (ICLR 2020, Table 1 and Fig. 4).

A readout (PosENet) is trained to output a fixed position map from (a) the raw image, (b) frozen
VGG16 features and (c) frozen ResNet features. If it can, on images whose content says nothing
about position, the encoder's features must carry absolute position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from IPython.display import Markdown

from posinfo.book import plots
from posinfo.book.paper_tables import iclr2020_table1
from posinfo.book.params import ChapterSpec, Config, path
from posinfo.book.results import Claim, read_back
from posinfo.data import targets
from posinfo.probe.probing import (PROBE_KNOBS, RAW, TEST_SETS, ProbeData, ReadoutRun,
                                   check_inputs_exist)

SPEC = ChapterSpec(
    chapter="01_existence",
    profiles={
        "smoke": dict(dataset="scenes", image_size=32, feature_size=8, n_train=24, n_test=6,
                      n_synthetic=2, patterns=list(targets.PATTERNS),
                      encoders=["vgg16_bn", "resnet18"],
                      weights="synthetic", vgg_width=0.125, input_norm="none", readout_epochs=3,
                      compare_random=True, least_squares=True, pretrain_size=32,
                      pretrain_images=64, pretrain_epochs=1, cache_dir=None, test_images=None),
        "default": dict(dataset="scenes", image_size=96, feature_size=12, n_train=320, n_test=100,
                        n_synthetic=20, patterns=list(targets.PATTERNS),
                        encoders=["vgg16_bn", "resnet18"], weights="synthetic", vgg_width=0.5,
                        input_norm="none", readout_epochs=15, compare_random=True,
                        least_squares=True, pretrain_size={"vgg16_bn": 32, "resnet18": 48},
                        pretrain_images=3000, pretrain_epochs=6, cache_dir=None, test_images=None),
        "paper": dict(dataset="duts+pascal-s", image_size=224, feature_size=28, n_train=2000,
                      n_test=None, n_synthetic=100, patterns=list(targets.PATTERNS),
                      encoders=["vgg16", "resnet152"], weights="imagenet", vgg_width=1.0,
                      input_norm="none", readout_epochs=15, compare_random=True,
                      least_squares=True, pretrain_size=32, pretrain_images=3000,
                      pretrain_epochs=6, cache_dir=None, test_images=None),
    },
    types=PROBE_KNOBS | {"test_images": path(
        "a folder of your own images (JPEG, PNG or BMP; any size; grey or colour) to test on "
        "in place of the profile's natural images; a relative path is taken from the book's folder")},
)


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete (see :func:`check_inputs_exist`), or
    whose findings cannot be tested: one VGG and one ResNet, all five patterns."""
    families = [[e for e in cfg.encoders if e.startswith(f)] for f in ("vgg", "resnet")]
    if any(len(f) != 1 for f in families):
        raise ValueError(f"chapter 1 compares one VGG with one ResNet; encoders={cfg.encoders}")
    if set(cfg.patterns) != set(targets.PATTERNS):
        raise ValueError(f"chapter 1's findings need all of {targets.PATTERNS}; patterns={cfg.patterns}")
    check_inputs_exist(cfg)


# --- the paper's findings, tested -----------------------------------------------------------------

STRONG = ("H", "V", "G")
STRIPES = ("HS", "VS")


def main_scores(table: pd.DataFrame, weights: str, metric: str = "spc_paper") -> pd.DataFrame:
    """SGD-readout scores of the raw image and the ``weights`` encoders as a wide table.

    Returns:
        Rows indexed by (encoder, pattern), one column per test set.
    """
    sel = table[(table.readout == "sgd") & (table.metric == metric)
                & table.weights.isin(["none", weights])]
    return sel.pivot_table(index=["encoder", "pattern"], columns="test_set", values="value")


def _fmt(values: pd.Series | pd.DataFrame) -> str:
    """Compact text of measured numbers: 'H/natural .74, ...'."""
    flat = values.stack() if isinstance(values, pd.DataFrame) else values
    return ", ".join(f"{'/'.join(map(str, k)) if isinstance(k, tuple) else k} {v:.3f}"
                     for k, v in flat.items())


def _mae_exceptions(mae: pd.DataFrame, encoders: tuple[str, ...]) -> str:
    """Where an encoder's readout has an MAE no lower than the raw-image readout (H, V, G)."""
    raw = mae.loc[RAW].loc[list(STRONG)]
    worse = [f"{e} {p}/{t} {mae.loc[(e, p), t]:.3f} vs raw {raw.loc[p, t]:.3f}"
             for e in encoders for p in STRONG for t in mae.columns
             if mae.loc[(e, p), t] >= raw.loc[p, t]]
    lowest = {e: mae.loc[e].loc[list(STRONG)].max().max() for e in encoders}
    return ("; ".join(worse) if worse else "lower everywhere") + "; highest encoder MAE: " + \
        ", ".join(f"{e} {v:.3f}" for e, v in lowest.items()) + f"; raw at least {raw.min().min():.3f}"


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings E1-E6 of ICLR 2020 Table 1, each computed from this run's ``table``."""
    spc, mae = main_scores(table, cfg.weights), main_scores(table, cfg.weights, "mae")
    vgg = next(e for e in cfg.encoders if e.startswith("vgg"))
    res = next(e for e in cfg.encoders if e.startswith("resnet"))
    raw = spc.loc[RAW]
    gain = {e: (spc.loc[e] - raw).loc[list(STRONG)] for e in (vgg, res)}
    nat = spc["natural"]
    stripes_lower = {e: nat.loc[e].loc[list(STRIPES)].max() < nat.loc[e].loc[list(STRONG)].min()
                     for e in (vgg, res)}
    mae_lower = {e: bool((mae.loc[e].loc[list(STRONG)] < mae.loc[RAW].loc[list(STRONG)]).all().all())
                 for e in (vgg, res)}
    return [
        Claim("E1", "The readout on the raw image finds almost no position: SPC below 0.2 for "
              "every pattern and input.", "at most .131 (V, natural images)",
              f"max {raw.max().max():.3f}", bool((raw < 0.2).all().all())),
        Claim("E2", f"{vgg} features give far more: SPC at least 0.3 above the raw-image readout "
              "for H, V and G on every input.", "gains of .59 to .93",
              f"min gain {gain[vgg].min().min():.3f}", bool((gain[vgg] >= 0.3).all().all())),
        Claim("E3", f"{res} features give far more: SPC at least 0.3 above the raw-image readout "
              "for H, V and G on every input.", "gains of .82 to 1.01 (ResNet-152)",
              f"min gain {gain[res].min().min():.3f}", bool((gain[res] >= 0.3).all().all())),
        Claim("E4", f"{res} features beat {vgg} features on H, V and G on natural images.",
              "ResNet .933/.951/.936 vs VGG .742/.816/.814",
              f"{res} {_fmt(nat.loc[res].loc[list(STRONG)])}; {vgg} {_fmt(nat.loc[vgg].loc[list(STRONG)])}",
              bool((nat.loc[res].loc[list(STRONG)] > nat.loc[vgg].loc[list(STRONG)]).all())),
        Claim("E5", "The stripe patterns are harder: for both encoders, SPC on HS and VS is below "
              "SPC on H, V and G on natural images.", "HS/VS .37-.53 vs H/V/G .74-.95",
              "; ".join(f"{e}: {_fmt(nat.loc[e])}" for e in (vgg, res)),
              bool(all(stripes_lower.values()))),
        Claim("E6", "MAE agrees: both encoder readouts have lower MAE than the raw-image readout "
              "on H, V and G, on every input.", "e.g. H natural: .149 (VGG), .084 (ResNet) vs .251",
              _mae_exceptions(mae, (vgg, res)), bool(all(mae_lower.values()))),
    ]


def beside_paper(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Our SGD-readout SPC and MAE next to ICLR 2020 Table 1, per pattern, encoder and input.

    Returns:
        Rows (pattern, encoder), columns (test_set, metric, paper|ours), values rounded to 3.
    """
    ours = table[(table.readout == "sgd") & table.weights.isin(["none", cfg.weights])
                 & table.metric.isin(["spc_paper", "mae"])].copy()
    ours["metric"] = ours.metric.replace({"spc_paper": "spc"})
    ours["encoder"] = ours.encoder.str.replace(r"^resnet\d+$", "resnet", regex=True).str.replace(
        r"^vgg16_bn$", "vgg16", regex=True)
    keys = ["pattern", "encoder", "test_set", "metric"]
    both = iclr2020_table1().merge(ours[keys + ["value"]], on=keys, suffixes=("_paper", "_ours"))
    wide = both.pivot_table(index=["pattern", "encoder"], columns=["test_set", "metric"],
                            values=["value_paper", "value_ours"])
    wide = wide.rename(columns={"value_paper": "paper", "value_ours": "ours"}, level=0)
    wide = wide.reorder_levels([1, 2, 0], axis=1).sort_index(axis=1)
    order = [(p, e) for p in cfg.patterns for e in (RAW, "vgg16", "resnet") if (p, e) in wide.index]
    cols = [(t, m, w) for t in TEST_SETS for m in ("spc", "mae") for w in ("paper", "ours")]
    return wide.loc[order, cols].round(3)


def undefined_spearman(table: pd.DataFrame) -> pd.DataFrame:
    """Where predictions were constant (Spearman undefined, printed as 0 like the paper).

    Returns:
        One row per (source, readout, pattern, test set) with at least one constant map:
        ``n_constant`` of ``n_images``.
    """
    keys = ["source", "readout", "pattern", "test_set"]
    wide = table[table.metric.isin(["n_constant", "n_images"])].pivot_table(
        index=keys, columns="metric", values="value", sort=False).astype(int)
    return wide[wide.n_constant > 0][["n_constant", "n_images"]]


def beyond_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Natural-image SPC of every source and readout (random weights, least squares included).

    Returns:
        Rows (source, readout), one column per pattern, rounded to 3.
    """
    sel = table[(table.test_set == "natural") & (table.metric == "spc_paper")]
    return sel.pivot_table(index=["source", "readout"], columns="pattern", values="value",
                           sort=False).round(3)


# --- presentation ---------------------------------------------------------------------------------


def test_set_note(data: ProbeData) -> Markdown:
    """What the natural test set of this run holds: how many images, from where, and (for files)
    their sizes on disk (Markdown)."""
    n = len(data.tests["natural"])
    text = f"**Natural test images:** {n} from {data.natural_source}"
    if data.natural_sizes:
        w, h = (sorted(s[i] for s in data.natural_sizes) for i in (0, 1))
        text += (f", {w[0]}-{w[-1]} px wide and {h[0]}-{h[-1]} px high on disk (median "
                 f"{w[n // 2]} x {h[n // 2]}), each resized to {data.train.shape[-1]} px square "
                 "as the training images are")
    return Markdown(text + ".")


def plot_examples(run: ReadoutRun, cfg: Config, data: ProbeData):
    """Predicted maps of the SGD readouts on the first natural test image (like Fig. 4)."""
    names = dict.fromkeys(k[0] for k in run.examples)
    rows = {"target": list(targets.position_maps(cfg.patterns, cfg.image_size))}
    rows |= {n: [run.examples[(n, "sgd", p)] for p in cfg.patterns] for n in names}
    return plots.map_grid(rows, cfg.patterns, image=data.tests["natural"][0])


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts of a run that a regression would change, for nbval to compare.

    Reads back the files the run wrote, checks the contract's columns and keys, and returns the
    natural-image SPC of the SGD readouts (rounded to 2 decimals), the raw readout's count of
    constant maps on black images (all of them: no padding, no position) and the claims.
    """
    results = read_back(cfg.results_dir, claims, {"pattern", "test_set", "metric"})
    nat = table[(table.readout == "sgd") & (table.test_set == "natural") & (table.metric == "spc_paper")]
    black = table[(table.encoder == RAW) & (table.test_set == "black") & (table.metric == "n_constant")]
    return {
        "rows": len(results),
        "natural_spc": nat.groupby("source", sort=False).value.mean().round(2).to_dict(),
        "raw_constant_on_black": int(black.value.sum()),
        "claims": {c.id: c.holds for c in claims},
    }
