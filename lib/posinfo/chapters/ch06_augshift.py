"""Chapter 6: AugShift, translation invariance from the channel-wise view (ICCV 2021 Table 2).

The baseline ResNet-18, ResNet-18 trained with AugShift and the anti-aliased (BlurPool)
ResNet-18, trained the same way over several seeds; top-1 accuracy and Zhang's shift consistency;
beyond the paper, consistency against the size of the shift, a sweep of AugShift's weight lambda,
and AugShift on BlurPool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.book.paper_tables import iccv2021_table2
from posinfo.book.params import FLAG, PATH, ChapterSpec, Config, choice, integer, real
from posinfo.book.results import Claim, holds_by_id, read_back, tested, verdict_note
from posinfo.book.verdicts import Rule, substitute
from posinfo.cache import cache_root
from posinfo.data.datasets import cifar_tensors, torchvision_dataset
from posinfo.data.scenes import NUM_CLASSES, SyntheticScenes
from posinfo.metrics.shift import consistency_curve
from posinfo.models import augshift
from posinfo.models.augshift import MODELS, NetSpec, TrainSpec

DATASETS: tuple[str, ...] = ("scenes", "cifar10", "cifar100", "imagenet")
PAPER_MODELS = ("baseline", "augshift", "blurpool")
_SHARED = dict(dataset="scenes", scene_background="flat", object_scale=[0.5, 0.8], image_size=32,
               stem="cifar", filter_size=4, batch_size=64,
               lr=5e-3, train_shift=4, lam=1.0, cons_shift=8, combine=True, cache_dir=None)
SPEC = ChapterSpec(
    chapter="06_augshift",
    profiles={
        "smoke": _SHARED | dict(n_train=32, n_test=16, width=0.125, epochs=1, seeds=2,
                                curve_shifts=[8], pairs=1, sweep_lams=[0.0, 1.0]),
        "default": _SHARED | dict(n_train=6000, n_test=500, width=0.125, epochs=6, seeds=3,
                                  curve_shifts=[2, 4, 8, 12], pairs=2,
                                  sweep_lams=[0.0, 1.0, 10.0]),
        "paper": _SHARED | dict(dataset="cifar10", n_train=None, n_test=None, width=1.0,
                                epochs=60, batch_size=128, seeds=3,
                                curve_shifts=[1, 2, 4, 8, 12, 16], pairs=5,
                                sweep_lams=[0.0, 0.1, 1.0, 10.0]),
    },
    types={"dataset": choice(DATASETS), "scene_background": choice(("texture", "flat", "black")),
           "object_scale": real(0.05, 1.0, is_list=True), "image_size": integer(8, 1024),
           "stem": choice(augshift.STEMS), "filter_size": choice((1, 2, 3, 4, 5, 6, 7)),
           "batch_size": integer(1, 4096), "lr": real(1e-9, 10), "train_shift": integer(0, 256),
           "lam": real(0, 1e6), "cons_shift": integer(1, 256), "combine": FLAG, "cache_dir": PATH,
           "n_train": integer(1, optional=True), "n_test": integer(1, optional=True),
           "width": real(1 / 64, 4), "epochs": integer(1, 10_000), "seeds": integer(1, 100),
           "curve_shifts": integer(0, 256, is_list=True), "pairs": integer(1, 100),
           "sweep_lams": real(0, 1e6, is_list=True)},
)
IMAGENET_COMMAND = (f"torchrun --nproc_per_node=<GPUs> -m {__package__}.augshift_imagenet "
                    "--data-root <folder with train/ and val/> --model <baseline|augshift|blurpool>")


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete (ImageNet runs outside the notebook)."""
    if cfg.dataset == "imagenet":
        raise ValueError("ImageNet is trained outside the notebook, on several GPUs, with torch's "
                         f"distributed launcher: {IMAGENET_COMMAND}")
    if cfg.seeds < 1 or cfg.pairs < 1 or cfg.epochs < 1 or any(s < 0 for s in cfg.curve_shifts):
        raise ValueError("seeds, pairs and epochs must be >= 1 and curve_shifts >= 0")
    if cfg.dataset == "scenes" and (cfg.n_train is None or cfg.n_test is None):
        raise ValueError("the generated scenes need explicit n_train and n_test")
    if len(cfg.object_scale) != 2 or cfg.object_scale[0] > cfg.object_scale[1]:
        raise ValueError(f"object_scale is a range [smallest, largest]; got {cfg.object_scale}")
    if max(cfg.curve_shifts + [cfg.cons_shift, cfg.train_shift]) >= cfg.image_size:
        raise ValueError(f"shifts must be smaller than image_size={cfg.image_size}")
    if cfg.dataset != "scenes":
        torchvision_dataset(cfg.dataset, cfg.data_root, "test")  # DatasetNotFoundError if missing


@dataclass
class Data:
    """Training and test images ``float [N, 3, S, S]`` in ``[0, 1]`` and labels ``int64 [N]``."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    key: str


def load_data(cfg: Config) -> Data:
    """The run's data: generated scenes (seeded by ``cfg.seed``) or CIFAR-10/100."""
    key = f"{cfg.dataset}-{cfg.image_size}-{cfg.n_train}-{cfg.n_test}-seed{cfg.seed}"
    if cfg.dataset == "scenes":
        key += f"-{cfg.scene_background}-{cfg.object_scale}"
        (tx, ty, _, _), (vx, vy, _, _) = (
            SyntheticScenes(n, size=cfg.image_size, seed=2 * cfg.seed + k,
                            background=cfg.scene_background,
                            object_scale=tuple(cfg.object_scale)).tensors()
            for k, n in enumerate((cfg.n_train, cfg.n_test)))
        return Data(tx, ty, vx, vy, NUM_CLASSES, key)
    tx, ty = cifar_tensors(cfg.dataset, cfg.data_root, "train", cfg.image_size, cfg.n_train)
    vx, vy = cifar_tensors(cfg.dataset, cfg.data_root, "test", cfg.image_size, cfg.n_test)
    return Data(tx, ty, vx, vy, 100 if cfg.dataset == "cifar100" else 10, key)


def specs(cfg: Config, model: str, lam: float, num_classes: int) -> tuple[NetSpec, TrainSpec]:
    """The architecture and training of ``model`` (a key of ``MODELS``) in this run."""
    arch, method = MODELS[model]
    net = NetSpec(arch, num_classes, cfg.width, cfg.stem, cfg.filter_size)
    train = TrainSpec(method, lam if method == "augshift" else 0.0, cfg.epochs, cfg.batch_size,
                      cfg.lr, train_shift=cfg.train_shift)
    return net, train


def evaluate(cfg: Config, data: Data, model: str, lam: float, run: int,
             shifts: Sequence[int]) -> list[dict]:
    """Train (or load) one classifier and measure its accuracy and consistency at ``shifts``."""
    net, train = specs(cfg, model, lam, data.num_classes)
    clf, history = augshift.trained_classifier(
        net, train, data.train_x, data.train_y, data_key=data.key, seed=1000 * cfg.seed + run,
        cache_dir=cache_root(cfg), device=cfg.device, progress=False)
    base = dict(model=model, lam=train.lam, run=run)
    rows = [base | dict(metric="top1", shift=0, value=100 * augshift.accuracy(
        clf, data.test_x, data.test_y, device=cfg.device))]
    cons = consistency_curve(clf, data.test_x, shifts, pairs=cfg.pairs, seed=cfg.seed,
                             device=cfg.device)
    rows += [base | dict(metric="consistency", shift=s, value=100 * c) for s, c in cons.items()]
    return rows + [base | dict(metric="final_train_ce", shift=0, value=history[-1]["ce"])]


def run_all(cfg: Config, data: Data) -> pd.DataFrame:
    """Every training of the chapter, as a tidy table (``experiment, model, lam, run, metric,
    shift, value``; accuracies and consistencies in %)."""
    shifts = sorted(set(cfg.curve_shifts) | {cfg.cons_shift})
    jobs = [("main", m, cfg.lam, r, shifts) for m in PAPER_MODELS for r in range(cfg.seeds)]
    if cfg.combine:  # beyond the paper and tested by no claim: the first seed only
        jobs.append(("main", "augshift+blurpool", cfg.lam, 0, shifts))
    jobs += [("lambda sweep", "augshift", lam, 0, [cfg.cons_shift]) for lam in cfg.sweep_lams]
    rows = []
    for experiment, model, lam, run, s in tqdm(jobs, desc="classifiers"):
        rows += [r | {"experiment": experiment} for r in evaluate(cfg, data, model, lam, run, s)]
    return pd.DataFrame(rows)[["experiment", "model", "lam", "run", "metric", "shift", "value"]]


def _main(table: pd.DataFrame, metric: str, shift: int) -> pd.DataFrame:
    sel = table[(table.experiment == "main") & (table.metric == metric) & (table["shift"] == shift)]
    return sel.pivot_table(index="run", columns="model", values="value", sort=False)


def summary(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Mean and standard deviation over seeds of top-1 and ``Cons.cons_shift`` per model."""
    out = {}
    for name, metric, shift in (("top1", "top1", 0), (f"cons{cfg.cons_shift}", "consistency",
                                                      cfg.cons_shift)):
        per_run = _main(table, metric, shift)
        out[f"{name}_mean"], out[f"{name}_sd"] = per_run.mean(), per_run.std(ddof=1)
    return pd.DataFrame(out).rename_axis("model")


def beside_paper(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Our top-1 and consistency (mean ± sd over seeds) next to the paper's Table 2."""
    s, c = summary(table, cfg), f"cons{cfg.cons_shift}"
    both = lambda m, d: f"{m:.1f} ± {d:.1f}" if d == d else f"{m:.1f} (one seed)"  # noqa: E731
    ours = pd.DataFrame({
        f"ours top1 ({cfg.dataset})": [both(m, d) for m, d in zip(s.top1_mean, s.top1_sd)],
        f"ours Cons.{cfg.cons_shift}": [both(m, d) for m, d in zip(s[f"{c}_mean"], s[f"{c}_sd"])]},
        index=s.index)
    paper = iccv2021_table2().drop(columns="imagenet_cons16").add_prefix("paper ")
    return ours.join(paper, how="left")


def chance(cfg: Config) -> float:
    """Top-1 (%) of a classifier that learned nothing: 100 over the dataset's classes."""
    return 100.0 / {"cifar100": 100, "imagenet": 1000}.get(cfg.dataset, 10)


def _paired(table: pd.DataFrame, metric: str, shift: int, model: str, other: str) -> list[float]:
    """Per seed, ``model``'s metric minus ``other``'s (the two trained on the same seed)."""
    per_run = _main(table, metric, shift)
    return (per_run[model] - per_run[other]).sort_index().tolist()


def _as_model(table: pd.DataFrame, model: str, like: str | float) -> pd.DataFrame:
    """The table with ``model``'s main-experiment rows replaced by ``like``'s (a model name), or
    with its top-1 set to ``like`` (a number)."""
    if isinstance(like, str):
        return substitute(table, "model", model, like, where=table.experiment == "main")
    out = table.copy()
    out.loc[(out.experiment == "main") & (out.model == model) & (out.metric == "top1"), "value"] = like
    return out


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """S1-S3, each decided from the per-seed differences of this run (the models of one seed
    share their initialisation seed and data: a paired design), with controls on null tables."""
    s, c, k = summary(table, cfg), f"cons{cfg.cons_shift}", cfg.cons_shift
    cons, top1 = s[f"{c}_mean"], s.top1_mean
    fmt = lambda m: f"{m} {cons[m]:.1f} ± {s[f'{c}_sd'][m]:.1f}"  # noqa: E731
    n = f"mean ± sd over {cfg.seeds} seeds"
    s1 = _paired(table, "consistency", k, "augshift", "baseline")
    s2 = _paired(table, "top1", 0, "augshift", "baseline")
    s3, blur_lead = _table2_order(table, k), _paired(table, "consistency", k, "blurpool", "baseline")
    diffs = lambda v: ", ".join(f"{x:+.1f}" for x in v)  # noqa: E731
    return [
        tested("S1", f"AugShift is more shift-consistent (Cons.{k}) than the baseline (\"improves "
               "the translation invariance of a CNN's output\").",
               "CIFAR-10 94.8 vs 90.8; CIFAR-100 85.6 vs 70.1; ImageNet 90.2 vs 89.5 (Cons.8, Table 2)",
               f"{fmt('augshift')} vs {fmt('baseline')} ({n}); per-seed differences {diffs(s1)}",
               Rule(f"Cons.{k} of AugShift minus the baseline's, paired by seed (points)", "above",
                    0.0, "the paper's gains are 0.7 to 15.5 points, so any gain"), s1,
               _paired(_as_model(table, "augshift", "baseline"), "consistency", k, "augshift",
                       "baseline")),
        tested("S2", "AugShift keeps accuracy (\"competitive Top-1 accuracy ... compared to the "
               "baseline\"): its top-1 is at most 1.5 points below the baseline's.",
               "CIFAR-10 92.1 vs 93.1; CIFAR-100 72.6 vs 72.6; ImageNet 70.1 vs 69.7 (Table 2)",
               f"augshift {top1['augshift']:.1f} ± {s.top1_sd['augshift']:.1f} vs baseline "
               f"{top1['baseline']:.1f} ± {s.top1_sd['baseline']:.1f} ({n}); per-seed differences "
               f"{diffs(s2)}",
               Rule("top-1 of AugShift minus the baseline's, paired by seed (points)", "above", -1.5,
                    "non-inferiority: the paper's largest loss is 1.0 point"), s2,
               _paired(_as_model(table, "augshift", chance(cfg)), "top1", 0, "augshift", "baseline")),
        tested("S3", "On small images AugShift is more shift-consistent than BlurPool, which is "
               "itself more consistent than the plain network (\"our approach admits greater shift "
               "consistency than the BlurPool on the CIFAR datasets\", read with Table 2's order: "
               "baseline < BlurPool < AugShift).",
               "CIFAR-10 90.8 < 92.5 < 94.8; CIFAR-100 70.1 < 78.2 < 85.6 (Cons.8, Table 2)",
               f"{fmt('augshift')} vs {fmt('blurpool')} vs {fmt('baseline')} ({n}); per seed "
               f"AugShift minus BlurPool {diffs(_paired(table, 'consistency', k, 'augshift', 'blurpool'))}, "
               f"BlurPool minus the baseline {diffs(blur_lead)}",
               Rule(f"the smaller of AugShift's Cons.{k} lead over BlurPool and BlurPool's over the "
                    "baseline, paired by seed (points)", "above", 0.0,
                    "'greater': the paper's leads are 2.3 and 7.4 (AugShift over BlurPool) and 1.7 "
                    "and 8.1 (BlurPool over the baseline); without the second, a plain network "
                    "would pass wherever BlurPool falls behind it"), s3,
               _table2_order(_as_model(table, "augshift", "baseline"), k)),
    ]


def _table2_order(table: pd.DataFrame, shift: int) -> list[float]:
    """Per seed, ``min(Cons(AugShift) - Cons(BlurPool), Cons(BlurPool) - Cons(baseline))``:
    positive exactly where the seed's three networks are in Table 2's order."""
    over_blur = _paired(table, "consistency", shift, "augshift", "blurpool")
    blur_lead = _paired(table, "consistency", shift, "blurpool", "baseline")
    return [min(a, b) for a, b in zip(over_blur, blur_lead)]


def prose_numbers(table: pd.DataFrame, claims: list[Claim], cfg: Config) -> dict[str, str]:
    """The numbers and verdicts the chapter's "Reading the numbers" quotes, from this run, as glue
    variables (see ``posinfo.book.results.glue_prose``); accuracies and consistencies in %."""
    s, c = summary(table, cfg), f"cons{cfg.cons_shift}"
    cons = _main(table, "consistency", cfg.cons_shift)
    top1 = _main(table, "top1", 0)
    gain, top1_gap = cons["augshift"] - cons["baseline"], top1["augshift"] - top1["baseline"]
    signed = lambda v: ", ".join(f"{x:+.1f}" for x in v)  # noqa: E731
    out = holds_by_id(claims)
    out |= {f"{m}_{name}": f"{s.loc[m, f'{k}_mean']:.1f}" for m in PAPER_MODELS
            for name, k in (("top1", "top1"), ("cons", c))}
    out |= {"epochs": str(cfg.epochs), "steps": f"{training_steps(cfg):,}"}
    out |= {"cons_wins": f"{int((gain > 0).sum())} of {len(gain)}", "cons_gains": signed(gain),
            "cons_gain_mean": f"{gain.mean():.1f}", "top1_gaps": signed(top1_gap),
            "top1_sd_range": f"{s.top1_sd.min():.0f}-{s.top1_sd.max():.0f}",
            "combination_top1": _combination_words(first_seed(table, cfg)),
            "blurpool_pace": _blurpool_pace(s.loc["blurpool", "top1_mean"] - s.loc["baseline", "top1_mean"],
                                            float(s.top1_sd.max()))}
    return out | _sweep_prose(table, cfg)


def _combination_words(first: pd.DataFrame) -> str:
    """The combination's top-1 beside BlurPool's on the same (first) seed, in words."""
    if "augshift+blurpool" not in first.index:
        return "not trained in this run"
    return (f"{first.top1['augshift+blurpool']:.1f}% against {first.top1['blurpool']:.1f}% for "
            "BlurPool alone on that seed")


def training_steps(cfg: Config) -> int:
    """Optimiser steps of one standard training: epochs times batches per epoch (CIFAR's
    training split has 50,000 images when ``n_train`` is ``None``)."""
    return cfg.epochs * -(-(cfg.n_train or 50_000) // cfg.batch_size)


def _blurpool_pace(gap: float, spread: float) -> str:
    """BlurPool's mean top-1 against the plain network's, in words: about equal when the gap
    (points) is within the largest standard deviation over seeds, ``spread``."""
    if abs(gap) <= spread:
        return (f"BlurPool's top-1 is within the spread between seeds of the plain network's at "
                f"this budget ({gap:+.1f} points)")
    side = "below" if gap < 0 else "above"
    return f"BlurPool's top-1 is {abs(gap):.1f} points {side} the plain network's at this budget"


def _sweep_prose(table: pd.DataFrame, cfg: Config) -> dict[str, str]:
    """AugShift without its feature term (lambda = 0) against ``cfg.lam``, in words."""
    sweep = sweep_table(table)
    if 0.0 not in sweep.index or cfg.lam not in sweep.index or cfg.lam == 0.0:
        return {"sweep_finding": "the sweep did not include lambda = 0 and this run's lambda"}
    a, b = sweep.loc[0.0], sweep.loc[cfg.lam]
    word = lambda m: "more" if a[m] > b[m] else "less" if a[m] < b[m] else "as"  # noqa: E731
    return {"sweep_finding": f"measured against lambda = {cfg.lam:g}, AugShift without its feature "
                             f"term (lambda = 0: two shifted views and two cross-entropies) was "
                             f"{word('top1')} accurate ({a.top1:.1f} against {b.top1:.1f}) and "
                             f"{word('consistency')} consistent ({a.consistency:.1f} against "
                             f"{b.consistency:.1f})"}


def curve_table(table: pd.DataFrame) -> pd.DataFrame:
    """Consistency (%) against the largest shift, mean over seeds: models as columns."""
    sel = table[(table.experiment == "main") & (table.metric == "consistency")]
    curve = sel.pivot_table(index="shift", columns="model", values="value", sort=False).round(1)
    return curve.rename(columns={"augshift+blurpool": "augshift+blurpool (first seed only)"})


def sweep_table(table: pd.DataFrame) -> pd.DataFrame:
    """AugShift's top-1 and consistency (%) for each lambda (first seed)."""
    sel = table[(table.experiment == "lambda sweep") & table.metric.isin(["top1", "consistency"])]
    return sel.pivot_table(index="lam", columns="metric", values="value").round(1)


def plot(table: pd.DataFrame, cfg: Config):
    """Left: consistency against the shift size per model (mean and range over seeds); right:
    AugShift's top-1 and consistency against lambda."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    sel = table[(table.experiment == "main") & (table.metric == "consistency")]
    sns.lineplot(sel, x="shift", y="value", hue="model", marker="o", errorbar=("pi", 100), ax=left)
    left.set(xlabel="largest shift s (px)", ylabel="Cons.s (%)", title="consistency vs shift")
    sweep = table[(table.experiment == "lambda sweep") & table.metric.isin(["top1", "consistency"])]
    sweep = sweep.assign(lam_axis=sweep.lam.clip(lower=min([v for v in cfg.sweep_lams if v > 0],
                                                            default=1.0) / 10))
    sns.lineplot(sweep, x="lam_axis", y="value", hue="metric", marker="o", ax=right)
    right.set(xscale="log", xlabel="lambda (lambda = 0 drawn at the left end)", ylabel="%",
              title=f"AugShift lambda sweep (Cons.{cfg.cons_shift}, top-1)")
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: files written, rows per experiment, claims."""
    results = read_back(cfg.results_dir, claims, {"experiment", "model", "lam", "run", "metric",
                                                  "shift"})
    return {"rows": len(results),
            "trainings": int((results.metric == "top1").sum()),
            "models": sorted(results.model.unique()),
            "claims": sorted(c.id for c in claims)}


def verdict(claims: list[Claim], table: pd.DataFrame, cfg: Config):
    """A short verdict in words, written from this run's claims and the combination (Markdown)."""
    text = verdict_note(claims, cfg).data
    first = first_seed(table, cfg)
    if "augshift+blurpool" in first.index:
        c, top1 = first[f"cons{cfg.cons_shift}"], first.top1
        best = max(c["augshift"], c["blurpool"])
        text += (f"\n\nAugShift on BlurPool (first seed, against the same seed's networks): "
                 f"Cons.{cfg.cons_shift} {c['augshift+blurpool']:.1f} against {c['augshift']:.1f} "
                 f"(AugShift) and {c['blurpool']:.1f} (BlurPool): the two "
                 f"{'combine' if c['augshift+blurpool'] >= best else 'do not add up'} in this "
                 f"run (top-1 {top1['augshift+blurpool']:.1f} against {top1['augshift']:.1f} and "
                 f"{top1['blurpool']:.1f}). One seed cannot separate these from the spread "
                 "between seeds.")
    return Markdown(text)


def first_seed(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Top-1 and ``Cons.cons_shift`` (%) of every model on the first seed (run 0), the one seed
    the combination is trained on: models as rows."""
    return pd.DataFrame({"top1": _main(table, "top1", 0).loc[0],
                         f"cons{cfg.cons_shift}": _main(table, "consistency", cfg.cons_shift).loc[0]})
