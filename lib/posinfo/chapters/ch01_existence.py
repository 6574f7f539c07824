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
from posinfo.book.results import Claim, read_back, tested
from posinfo.book.verdicts import Rule, per_replicate
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
                      pretrain_images=64, pretrain_epochs=1, replicates=2, cache_dir=None, test_images=None),
        "default": dict(dataset="scenes", image_size=96, feature_size=12, n_train=320, n_test=100,
                        n_synthetic=20, patterns=list(targets.PATTERNS),
                        encoders=["vgg16_bn", "resnet18"], weights="synthetic", vgg_width=0.5,
                        input_norm="none", readout_epochs=15, compare_random=True,
                        least_squares=True, pretrain_size={"vgg16_bn": 32, "resnet18": 48},
                        pretrain_images=3000, pretrain_epochs=6, replicates=3, cache_dir=None, test_images=None),
        "paper": dict(dataset="duts+pascal-s", image_size=224, feature_size=28, n_train=2000,
                      n_test=None, n_synthetic=100, patterns=list(targets.PATTERNS),
                      encoders=["vgg16", "resnet152"], weights="imagenet", vgg_width=1.0,
                      input_norm="none", readout_epochs=15, compare_random=True,
                      least_squares=True, pretrain_size=32, pretrain_images=3000,
                      pretrain_epochs=6, replicates=3, cache_dir=None, test_images=None),
    },
    types=PROBE_KNOBS | {"test_images": path(
        "a folder of your own images (JPEG, PNG or BMP; grey, 16-bit grey or colour; at least "
        "feature_size px on the shorter side) to test on in place of the profile's natural "
        "images; a relative path is taken from the book's folder")},
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


def blind_mae(pattern: str, size: int) -> float:
    """MAE of a position-blind readout: the constant map at the target's mean value."""
    gt = targets.position_map(pattern, size)
    return float((gt - gt.mean()).abs().mean())


def null_table(table: pd.DataFrame, encoder: str, kind: str, size: int) -> pd.DataFrame:
    """The table with the scores of ``encoder``'s readouts replaced: by those of a position-blind
    (constant) map (``kind="blind"``: SPC 0, the constant map's MAE) or of the target itself
    (``kind="perfect"``: SPC 1, MAE 0). The controls of the claims are computed on it."""
    out = table.copy()
    rows = out.encoder == encoder
    if kind == "blind":
        out.loc[rows & (out.metric == "spc_paper"), "value"] = 0.0
        mae = rows & (out.metric == "mae")
        out.loc[mae, "value"] = [blind_mae(p, size) for p in out.loc[mae, "pattern"]]
    elif kind == "perfect":
        out.loc[rows & (out.metric == "spc_paper"), "value"] = 1.0
        out.loc[rows & (out.metric == "mae"), "value"] = 0.0
    else:
        raise ValueError(f"kind must be 'blind' or 'perfect', got {kind!r}")
    return out


def _families(cfg: Config) -> tuple[str, str]:
    return (next(e for e in cfg.encoders if e.startswith("vgg")),
            next(e for e in cfg.encoders if e.startswith("resnet")))


def _gain(table: pd.DataFrame, weights: str, encoder: str) -> float:
    """Lowest SPC gain of ``encoder`` over the raw image, over H, V, G and every input."""
    spc = main_scores(table, weights)
    return float((spc.loc[encoder] - spc.loc[RAW]).loc[list(STRONG)].min().min())


def _beats(table: pd.DataFrame, weights: str, better: str, worse: str) -> float:
    """Lowest natural-image SPC lead of ``better`` over ``worse`` on H, V and G."""
    nat = main_scores(table, weights)["natural"]
    return float((nat.loc[better] - nat.loc[worse]).loc[list(STRONG)].min())


def _stripe_gap(table: pd.DataFrame, weights: str, encoders: tuple[str, str]) -> float:
    """Lowest, over the encoders, natural-image SPC of H/V/G minus the highest of HS/VS."""
    nat = main_scores(table, weights)["natural"]
    return float(min(nat.loc[e].loc[list(STRONG)].min() - nat.loc[e].loc[list(STRIPES)].max()
                     for e in encoders))


def _mae_lead(table: pd.DataFrame, weights: str, encoders: tuple[str, str], size: int) -> float:
    """Lowest MAE lead of the encoders, over H/V/G and every input, over the better of the
    raw-image readout and a position-blind (constant) map: a readout worse than a constant map
    must not make an encoder look good."""
    mae = main_scores(table, weights, "mae")
    blind = pd.Series({p: blind_mae(p, size) for p in STRONG})
    floor = mae.loc[RAW].loc[list(STRONG)].clip(upper=blind, axis=0)
    return float(min((floor - mae.loc[e].loc[list(STRONG)]).min().min() for e in encoders))


def _spread(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings E1-E6 of ICLR 2020 Table 1, each decided from the replicates of this run's
    ``table`` (column ``replicate``), with its control computed on a null table."""
    vgg, res = _families(cfg)
    w, size = cfg.weights, cfg.image_size
    blind = {e: null_table(table, e, "blind", size) for e in (vgg, res)}
    both_blind = null_table(blind[vgg], res, "blind", size)
    raw_max = lambda t: main_scores(t, w).loc[RAW].max().max()  # noqa: E731
    e1 = per_replicate(table, raw_max)
    gains = {e: per_replicate(table, lambda t, e=e: _gain(t, w, e)) for e in (vgg, res)}
    e4 = per_replicate(table, lambda t: _beats(t, w, res, vgg))
    e5 = per_replicate(table, lambda t: _stripe_gap(t, w, (vgg, res)))
    e6 = per_replicate(table, lambda t: _mae_lead(t, w, (vgg, res), size))
    far = Rule("lowest SPC gain over the raw image (H, V, G; every input)", "above", 0.3,
               "'far more': the paper's gains are .59 to 1.01")
    return [
        tested("E1", "The readout on the raw image finds almost no position (\"very difficult to "
               "extract position information from the input image alone\"): SPC below 0.2 for "
               "every pattern and input.", "at most .131 (V, natural images)",
               f"highest per replicate: {_spread(e1)}",
               Rule("highest raw-image SPC over patterns and inputs", "below", 0.2,
                    "'almost no position': the paper's highest is .131"), e1,
               per_replicate(null_table(table, RAW, "perfect", size), raw_max)),
        tested("E2", f"{vgg} features give far more (\"only when coupled with a deep encoder "
               "network\"): SPC at least 0.3 above the raw-image readout for H, V and G on every "
               "input.", "gains of .59 to .93",
               f"lowest gain per replicate: {_spread(gains[vgg])}", far, gains[vgg],
               per_replicate(blind[vgg], lambda t: _gain(t, w, vgg))),
        tested("E3", f"{res} features give far more: SPC at least 0.3 above the raw-image readout "
               "for H, V and G on every input.", "gains of .82 to 1.01 (ResNet-152)",
               f"lowest gain per replicate: {_spread(gains[res])}", far, gains[res],
               per_replicate(blind[res], lambda t: _gain(t, w, res))),
        tested("E4", f"{res} features beat {vgg} features on H, V and G on natural images (\"the "
               "ResNet based models achieve higher performance than the VGG16 based models\").",
               "ResNet .933/.951/.936 vs VGG .742/.816/.814",
               f"lowest lead per replicate: {_spread(e4)}",
               Rule(f"lowest natural-image SPC lead of {res} over {vgg} (H, V, G)", "above", 0.05,
                    "half the paper's smallest lead, .12"), e4,
               per_replicate(blind[res], lambda t: _beats(t, w, res, vgg))),
        tested("E5", "The stripe patterns are harder (\"low performance on the repeated patterns (HS "
               "and VS)\"): for both encoders, SPC on HS and VS is below SPC on H, V and G on "
               "natural images.", "HS/VS .37-.53 vs H/V/G .74-.95",
               f"lowest gap per replicate: {_spread(e5)}",
               Rule("lowest SPC of H/V/G minus highest of HS/VS, natural images, both encoders",
                    "above", 0.1, "half the paper's smallest gap, .21"), e5,
               per_replicate(both_blind, lambda t: _stripe_gap(t, w, (vgg, res)))),
        tested("E6", "MAE agrees: both encoder readouts have lower MAE than the raw-image readout "
               "(and than a position-blind constant map) on H, V and G, on every input.",
               "e.g. H natural: .149 (VGG), .084 (ResNet) vs .251",
               f"lowest MAE lead per replicate: {_spread(e6)}",
               Rule("lowest MAE lead of the encoders over the better of the raw-image readout "
                    "and a constant map (H, V, G; every input)", "above", 0.02,
                    "a fifth of the paper's smallest lead, about .1"), e6,
               per_replicate(both_blind, lambda t: _mae_lead(t, w, (vgg, res), size))),
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


def beyond_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Natural-image SPC of every source and readout (random weights, least squares included).

    Returns:
        Rows (source, readout), one column per pattern, rounded to 3.
    """
    sel = table[(table.test_set == "natural") & (table.metric == "spc_paper")]
    return sel.pivot_table(index=["source", "readout"], columns="pattern", values="value",
                           sort=False).round(3)


def least_squares_fits(table: pd.DataFrame) -> pd.DataFrame:
    """How each least-squares readout was fitted: the ridge chosen on held-out training images
    (relative to the features' mean variance) and the condition number of the system solved.

    Returns:
        Rows source, columns (ridge | condition, pattern), as text ("1e-04", "3.2e+05").
    """
    sel = table[(table.readout == "least_squares") & (table.test_set == "training")]
    wide = sel.pivot_table(index="source", columns=["metric", "pattern"], values="value",
                           sort=False)
    wide = wide.reindex(columns=["ridge", "condition"], level=0)
    fmt = {"ridge": "{:.0e}", "condition": "{:.1e}"}
    return wide.apply(lambda col: col.map(fmt[col.name[0]].format))


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
        "claims": {c.id: c.verdict for c in claims},
    }
