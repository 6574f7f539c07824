"""Chapter 1: does a CNN know where things are? (ICLR 2020, Table 1 and Fig. 4).

A readout (PosENet) is trained to output a fixed position map from (a) the raw image, (b) frozen
VGG16 features and (c) frozen ResNet features. If it can, on images whose content says nothing
about position, the encoder's features must carry absolute position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo import targets
from posinfo.datasets import saliency_dataset
from posinfo.encoders import ARCHITECTURES, build_encoder, imagenet_weights_file
from posinfo.features import FeatureCache
from posinfo.metrics import score
from posinfo.params import ChapterSpec, Config
from posinfo.pretrain import PretrainConfig, synthetic_encoder
from posinfo.readout import ReadoutTraining, fit_readout, least_squares_readout, predict
from posinfo.scenes import SyntheticScenes

TEST_SETS = ("natural",) + targets.SYNTHETIC_INPUTS
RAW = "posenet"  # the readout on the raw image, "PosENet alone" in the paper

SPEC = ChapterSpec(
    chapter="01_existence",
    profiles={
        "smoke": dict(dataset="scenes", image_size=32, feature_size=8, n_train=24, n_test=6,
                      n_synthetic=2, patterns=list(targets.PATTERNS),
                      encoders=["vgg16_bn", "resnet18"],
                      weights="synthetic", vgg_width=0.125, input_norm="none", readout_epochs=3,
                      compare_random=True, least_squares=True, pretrain_size=32,
                      pretrain_images=64, pretrain_epochs=1, cache_dir=None),
        "default": dict(dataset="scenes", image_size=96, feature_size=12, n_train=320, n_test=100,
                        n_synthetic=20, patterns=list(targets.PATTERNS),
                        encoders=["vgg16_bn", "resnet18"], weights="synthetic", vgg_width=0.5,
                        input_norm="none", readout_epochs=15, compare_random=True,
                        least_squares=True, pretrain_size={"vgg16_bn": 32, "resnet18": 48},
                        pretrain_images=3000, pretrain_epochs=6, cache_dir=None),
        "paper": dict(dataset="duts+pascal-s", image_size=224, feature_size=28, n_train=2000,
                      n_test=None, n_synthetic=100, patterns=list(targets.PATTERNS),
                      encoders=["vgg16", "resnet152"], weights="imagenet", vgg_width=1.0,
                      input_norm="none", readout_epochs=15, compare_random=True,
                      least_squares=True, pretrain_size=32, pretrain_images=3000,
                      pretrain_epochs=6, cache_dir=None),
    },
    choices={"dataset": ("scenes", "duts+pascal-s"), "patterns": targets.PATTERNS,
             "encoders": ARCHITECTURES, "weights": ("synthetic", "imagenet", "random"),
             "input_norm": ("none", "imagenet")},
)


@dataclass
class ProbeData:
    """Images of one run: ``train`` ``[N, 3, S, S]``, a test tensor per name of ``TEST_SETS``, and
    the object (saliency) masks ``[M, S, S]`` of the natural test images."""

    train: Tensor
    tests: dict[str, Tensor]
    natural_masks: Tensor


def load_data(cfg: Config, progress: bool = True) -> ProbeData:
    """The training images, the natural test images and the synthetic inputs of a run.

    The default profile draws both sets from the generated scenes (different seeds); the paper
    profile trains on DUT-S and tests on PASCAL-S, read from ``cfg.data_root``.
    """
    size = cfg.image_size
    if cfg.dataset == "scenes":
        train = SyntheticScenes(cfg.n_train, size, seed=20_000 + cfg.seed).tensors(progress)[0]
        natural, _, _, masks = SyntheticScenes(cfg.n_test, size, seed=30_000 + cfg.seed).tensors(progress)
    else:
        train = _stack(saliency_dataset("duts-train", cfg.data_root, size, limit=cfg.n_train))[0]
        natural, masks = _stack(saliency_dataset("pascal-s", cfg.data_root, size, limit=cfg.n_test))
    tests = {"natural": natural} | {
        kind: targets.synthetic_inputs(kind, cfg.n_synthetic, size, seed=cfg.seed)
        for kind in targets.SYNTHETIC_INPUTS}
    return ProbeData(train, tests, masks)


def _stack(dataset: torch.utils.data.Dataset) -> tuple[Tensor, Tensor]:
    """Images ``[N, 3, S, S]`` and masks ``[N, S, S]`` of a saliency dataset."""
    items = [dataset[i] for i in tqdm(range(len(dataset)), desc="images", leave=False)]
    return torch.stack([x for x, _ in items]), torch.stack([m for _, m in items])


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete (see :func:`check_inputs_exist`), or
    whose findings cannot be tested: one VGG and one ResNet, all five patterns."""
    families = [[e for e in cfg.encoders if e.startswith(f)] for f in ("vgg", "resnet")]
    if any(len(f) != 1 for f in families):
        raise ValueError(f"chapter 1 compares one VGG with one ResNet; encoders={cfg.encoders}")
    if set(cfg.patterns) != set(targets.PATTERNS):
        raise ValueError(f"chapter 1's findings need all of {targets.PATTERNS}; patterns={cfg.patterns}")
    check_inputs_exist(cfg)


def check_inputs_exist(cfg: Config) -> None:
    """What every chapter built on these data and encoders checks first: the paper profile's
    datasets under ``data_root``, a ``pretrain_size`` for every synthetic encoder, and the
    ImageNet weight files (at width 1.0)."""
    if cfg.dataset != "scenes":
        from posinfo.datasets import dataset_root
        for name in ("duts-train", "pascal-s"):
            dataset_root(name, cfg.data_root)
    if cfg.weights == "synthetic":
        for arch in cfg.encoders:
            pretrain_config(cfg, arch)
    if cfg.weights == "imagenet":
        if cfg.vgg_width != 1.0:
            raise ValueError("ImageNet weights exist only for vgg_width=1.0")
        for arch in cfg.encoders:
            path, url = imagenet_weights_file(arch)
            if not path.is_file():
                raise FileNotFoundError(f"ImageNet weights for {arch} not found at {path}; "
                                        f"fetch {url} and save it there (see data/README.md)")


class RawImage(nn.Module):
    """The identity 'encoder': the readout then sees the raw image ("PosENet alone")."""

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
                          epochs=cfg.pretrain_epochs)


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


def cache_root(cfg: Config) -> Path:
    """The cache folder of a run: the ``cache_dir`` knob or the project's default."""
    from posinfo.params import default_cache_dir
    return default_cache_dir() if cfg.cache_dir is None else Path(cfg.cache_dir)


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
            for m in ("spc", "spc_paper", "mae", "n_constant", "n_images")]


def source_inputs(cfg: Config, source: Source, data: ProbeData, cache: FeatureCache
                  ) -> tuple[Tensor, dict[str, Tensor]]:
    """What the readout of ``source`` sees: cached features, or the raw images themselves."""
    if isinstance(source.module, RawImage):
        return data.train, data.tests
    feats = lambda x: cache(source.module, x, cfg.feature_size)  # noqa: E731
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
            fitted["least_squares"] = dict(zip(cfg.patterns, least_squares_readout(train, gts)))
        for kind, models in fitted.items():
            for (pattern, model), gt in zip(models.items(), gts):
                for test_set, x in tests.items():
                    pred = predict(model, x, size, device=cfg.device)
                    rows += _rows(source, kind, pattern, test_set, score(pred, gt))
                    gallery[(source.name, kind, pattern, test_set)] = pred[0]
                    if test_set == "natural":
                        examples[(source.name, kind, pattern)] = pred[0]
    return ReadoutRun(pd.DataFrame(rows), examples, gallery)


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


def check_claims(table: pd.DataFrame, cfg: Config) -> list:
    """The findings E1-E6 of ICLR 2020 Table 1, each computed from this run's ``table``."""
    from posinfo.results import Claim
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
    from posinfo.paper_numbers import iclr2020_table1
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


def training_summary(sources: list[Source]) -> pd.DataFrame:
    """How each synthetic encoder was trained: images, epochs, seconds, held-out accuracy."""
    rows = [{"encoder": s.encoder, "image_size": s.record["config"]["image_size"],
             "train_images": s.record["config"]["n_train"], "epochs": s.record["config"]["epochs"],
             "train_seconds": round(s.record["seconds"], 1),
             "val_accuracy": round(s.record["val_accuracy"], 3)}
            for s in sources if s.record]
    return pd.DataFrame(rows).set_index("encoder") if rows else pd.DataFrame()


def plot_examples(run: ReadoutRun, cfg: Config, data: ProbeData):
    """Predicted maps of the SGD readouts on the first natural test image (like Fig. 4)."""
    from posinfo import plots
    names = dict.fromkeys(k[0] for k in run.examples)
    rows = {"target": list(targets.position_maps(cfg.patterns, cfg.image_size))}
    rows |= {n: [run.examples[(n, "sgd", p)] for p in cfg.patterns] for n in names}
    return plots.map_grid(rows, cfg.patterns, image=data.tests["natural"][0])


def regression_summary(table: pd.DataFrame, claims: list, cfg: Config) -> dict:
    """Facts of a run that a regression would change, for nbval to compare.

    Reads back the files the run wrote, checks the contract's columns and keys, and returns the
    natural-image SPC of the SGD readouts (rounded to 2 decimals), the raw readout's count of
    constant maps on black images (all of them: no padding, no position) and the claims.
    """
    from posinfo.results import read_back
    results = read_back(cfg.results_dir, claims, {"pattern", "test_set", "metric"})
    nat = table[(table.readout == "sgd") & (table.test_set == "natural") & (table.metric == "spc_paper")]
    black = table[(table.encoder == RAW) & (table.test_set == "black") & (table.metric == "n_constant")]
    return {
        "rows": len(results),
        "natural_spc": nat.groupby("source", sort=False).value.mean().round(2).to_dict(),
        "raw_constant_on_black": int(black.value.sum()),
        "claims": {c.id: c.holds for c in claims},
    }


def verdict(claims: list, table: pd.DataFrame, cfg: Config):
    """A short verdict in words, written from this run's claims (Markdown)."""
    from IPython.display import Markdown
    held = [c.id for c in claims if c.holds]
    failed = [c for c in claims if not c.holds]
    text = (f"In this run ({cfg.profile} profile, seed {cfg.seed}) {len(held)} of {len(claims)} "
            f"findings tested here hold ({', '.join(held) or 'none'}).")
    for c in failed:
        text += f"\n\n- **{c.id} does not hold.** {c.claim} Paper: {c.paper}. Here: {c.ours}."
    return Markdown(text)
