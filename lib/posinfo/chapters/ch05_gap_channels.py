"""Chapter 5: position survives global pooling, in the order of the channels (ICCV 2021 Table 1).

An object sits in one cell of an otherwise empty ``n x n`` grid (:mod:`posinfo.data.grid_inputs`).
GAPNet and PermuteNet (:mod:`posinfo.models.gap_networks`) learn either the cell (location
classification) or the object's class (image classification), for each padding and grid size.
Training follows the authors (Adam, betas (0.5, 0.999), batch 48, a fresh random cell for every
sample of every epoch) but picks the epoch with the best *validation* accuracy; the test accuracy
is the mean over several random placements of held-out objects.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from torch import Tensor, nn
from tqdm.auto import tqdm

from posinfo.book.paper_tables import iccv2021_table1
from posinfo.book.params import PATH, ChapterSpec, Config, choice, integer, real
from posinfo.book.results import Claim, read_back, tested
from posinfo.book.verdicts import Rule, interval, per_replicate
from posinfo.cache import Training, cache_root, fingerprint, train_cached
from posinfo.data import grid_inputs as grid
from posinfo.data.datasets import dataset_root
from posinfo.models.encoders import PADDINGS
from posinfo.models.gap_networks import NETWORKS, PermuteNet, build_network

CACHE_VERSION = 3  # 3: PermuteNet's evaluations leave its training permutations alone; curves
VAL_PERMUTATIONS = 1_000_000  # PermuteNet's validation permutations: seed + the network's seed
FLAT = 0.02  # a curve whose last third moves by under 2 points from the third before is flat
NAMES = {"gapnet": "GAPNet", "permutenet": "PermuteNet"}
COLOURS = {"gapnet": "tab:blue", "permutenet": "tab:orange"}  # of each network in the figures
PAPER_PADDINGS = ("zero", "reflect", "replicate")
CIFAR_SIZE = 32  # a CIFAR-10 image fills one cell of the grid at its own size
_SHARED = dict(networks=list(NETWORKS), batch_size=48, location_lr=1e-3, cache_dir=None)
SPEC = ChapterSpec(
    chapter="05_gap_channels",
    profiles={
        "smoke": _SHARED | dict(source="scenes", cell=8, grid_sizes=[3, 5, 7], width=0.0625,
                                paddings=list(PAPER_PADDINGS), image_paddings=["zero"],
                                n_train=96, n_val=48, n_test=48, test_placements=2,
                                location_epochs=1, image_epochs=1, image_lr=1e-2, replicates=2),
        "default": _SHARED | dict(source="scenes", cell=8, grid_sizes=[3, 5, 7], width=0.125,
                                  paddings=list(PAPER_PADDINGS), image_paddings=["zero"],
                                  n_train=1000, n_val=200, n_test=400, test_placements=3,
                                  location_epochs=6, image_epochs=20, image_lr=1e-2,
                                  replicates=3),
        "paper": _SHARED | dict(source="cifar10", cell=32, grid_sizes=[3, 5, 7], width=1.0,
                                paddings=list(PAPER_PADDINGS), image_paddings=list(PAPER_PADDINGS),
                                n_train=45000, n_val=5000, n_test=None, test_placements=5,
                                location_epochs=20, image_epochs=100, image_lr=1e-2,
                                replicates=3),
    },
    types={"networks": choice(NETWORKS, is_list=True), "batch_size": integer(1, 4096),
           "location_lr": real(1e-9, 10), "cache_dir": PATH, "source": choice(grid.SOURCES),
           "cell": integer(4, 256), "grid_sizes": choice(tuple(range(2, 16)), is_list=True),
           "width": real(1 / 64, 4), "paddings": choice(PADDINGS, is_list=True),
           "image_paddings": choice(PADDINGS, is_list=True), "n_train": integer(1),
           "n_val": integer(1), "n_test": integer(1, optional=True),
           "test_placements": integer(1, 1000), "location_epochs": integer(1, 10_000),
           "image_epochs": integer(1, 10_000), "image_lr": real(1e-9, 10),
           "replicates": integer(1, 100, help="an int in [1, 100]: independent replicates (each its "
                                 "own objects, placements and network trainings) that every claim "
                                 "is decided from")},
)


# --- validation -------------------------------------------------------------------------------


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete or cannot test its claims."""
    if not set(PAPER_PADDINGS) <= set(cfg.paddings) or not set(cfg.image_paddings) <= set(cfg.paddings):
        raise ValueError(f"paddings must include {list(PAPER_PADDINGS)} (claim G1) and every "
                         f"image padding; got paddings={cfg.paddings}, "
                         f"image_paddings={cfg.image_paddings}")
    if sorted(set(cfg.grid_sizes)) != list(cfg.grid_sizes) or len(cfg.grid_sizes) < 2:
        raise ValueError(f"grid_sizes must be at least two increasing sizes; got {cfg.grid_sizes}")
    if "zero" not in cfg.image_paddings:
        raise ValueError(f"image_paddings must include 'zero' (the look inside); got {cfg.image_paddings}")
    if set(cfg.networks) != set(NETWORKS):
        raise ValueError(f"the chapter compares both networks {list(NETWORKS)}; got {cfg.networks}")
    for mode in cfg.paddings:
        if not fits(mode, cfg.width, cfg.cell * cfg.grid_sizes[0]):
            raise ValueError(f"with padding {mode!r} a {cfg.grid_sizes[0]}x{cfg.grid_sizes[0]} grid "
                             f"of {cfg.cell} px cells leaves nothing for GAPNet's 3x3 head "
                             "(the maps shrink without padding); use larger cells or drop it")
    if cfg.source == "cifar10" and cfg.cell != CIFAR_SIZE:
        raise ValueError(f"CIFAR-10 images are {CIFAR_SIZE} px and fill one cell unscaled, as in the "
                         f"paper: cell must be {CIFAR_SIZE} with source='cifar10'; got cell={cfg.cell}")
    if cfg.source == "cifar10":
        dataset_root("cifar10", cfg.data_root)


def fits(padding: str, width: float, image_size: int) -> bool:
    """Whether GAPNet with this padding runs on ``image_size`` inputs (unpadded maps shrink)."""
    net = build_network("gapnet", 4, padding=padding, width=width).eval()
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, image_size, image_size))
    except RuntimeError:
        return False
    return True


# --- data -------------------------------------------------------------------------------------


@dataclass
class GridData:
    """The object pools of one run: training, validation (model selection) and test."""

    train: grid.ObjectPool
    val: grid.ObjectPool
    test: grid.ObjectPool


def load_pools(cfg: Config, progress: bool = True) -> GridData:
    """Three disjoint pools of objects: generated shapes, or CIFAR-10 (train split for training
    and validation, test split for test)."""
    if cfg.source == "scenes":
        sizes = (cfg.n_train, cfg.n_val, cfg.n_test)
        pools = [grid.scene_objects(k, cfg.cell, seed=1000 * cfg.seed + i, progress=progress)
                 for i, k in enumerate(sizes)]
        return GridData(*pools)
    train = grid.cifar_objects(cfg.data_root, "train", cfg.n_train + cfg.n_val, cfg.seed)
    head, tail = torch.arange(cfg.n_train), torch.arange(cfg.n_train, cfg.n_train + cfg.n_val)
    test = grid.cifar_objects(cfg.data_root, "test", cfg.n_test, cfg.seed)
    return GridData(train.take(head), train.take(tail), test)


# --- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One trained network: everything that changes its weights (the cache key)."""

    task: str
    network: str
    padding: str
    n: int
    width: float
    epochs: int
    lr: float
    batch_size: int
    seed: int


def settings(cfg: Config) -> list[Setting]:
    """Every network the run trains: each task, padding, grid size and network."""
    out = []
    for task, paddings in (("location", cfg.paddings), ("image", cfg.image_paddings)):
        epochs = cfg.location_epochs if task == "location" else cfg.image_epochs
        lr = cfg.location_lr if task == "location" else cfg.image_lr
        out += [Setting(task, net, pad, n, cfg.width, epochs, lr, cfg.batch_size, cfg.seed)
                for pad in paddings for n in cfg.grid_sizes for net in cfg.networks]
    return out


def _batches(pool: grid.ObjectPool, setting: Setting, cells: Tensor, order: Tensor):
    """Yield ``(inputs [B, 3, nS, nS], labels [B])`` for ``pool`` placed at ``cells``."""
    for start in range(0, len(order), setting.batch_size):
        idx = order[start: start + setting.batch_size]
        part = pool.take(idx)
        yield grid.place(part, cells[idx], setting.n), grid.targets(part, cells[idx], setting.task)


@torch.no_grad()
def accuracy(net: nn.Module, pool: grid.ObjectPool, cells: Tensor, setting: Setting,
             device: torch.device, seed: int = 0) -> float:
    """Share of ``pool`` placed at ``cells`` (``int64 [N]``) that ``net`` labels correctly.

    A PermuteNet draws this evaluation's permutations from ``seed`` and then goes on with its
    training stream as it was (:meth:`~posinfo.models.gap_networks.PermuteNet.seeded`)."""
    net.eval()
    hits = 0
    with net.seeded(seed) if isinstance(net, PermuteNet) else contextlib.nullcontext():
        for x, y in _batches(pool, setting, cells, torch.arange(len(pool))):
            hits += int((net(x.to(device)).argmax(1).cpu() == y).sum())
    return hits / len(pool)


def _train_epoch(net: nn.Module, opt: torch.optim.Optimizer, data: GridData, setting: Setting,
                 generator: torch.Generator, device: torch.device) -> float:
    """One pass over the training objects, each at a fresh random cell; returns the mean loss."""
    net.train()
    cells = grid.random_cells(len(data.train), setting.n, generator)
    order = torch.randperm(len(data.train), generator=generator)
    losses = []
    for x, y in _batches(data.train, setting, cells, order):
        loss = F.cross_entropy(net(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def start_training(setting: Setting, device: torch.device) -> Training:
    """A freshly initialised network of ``setting`` with the authors' Adam (betas 0.5, 0.999) and
    the generator of cells and batch orders (both seeded by ``setting.seed``)."""
    torch.manual_seed(setting.seed)
    net = build_network(setting.network, grid.num_classes(setting.task, setting.n),
                        padding=setting.padding, width=setting.width, seed=setting.seed).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=setting.lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(setting.seed)
    return Training(net, opt, generator=generator,
                    record={"val_accuracy": [], "loss": [], "best_epoch": 0, "state": None})


def _epoch_with_selection(training: Training, data: GridData, setting: Setting,
                          device: torch.device) -> None:
    """Train one epoch, then keep its weights in ``record["state"]`` if its validation accuracy
    is the best so far (``record["best_epoch"]`` is 1-based)."""
    record = training.record
    record["loss"].append(_train_epoch(training.model, training.optimizer, data, setting,
                                       training.generator, device))
    val_cells = grid.random_cells(len(data.val), setting.n, torch.Generator().manual_seed(setting.seed + 1))
    record["val_accuracy"].append(accuracy(training.model, data.val, val_cells, setting, device,
                                           seed=VAL_PERMUTATIONS + setting.seed))
    if record["val_accuracy"][-1] > max(record["val_accuracy"][:-1], default=-1.0):
        record["best_epoch"] = len(record["val_accuracy"])
        record["state"] = copy.deepcopy({k: v.cpu() for k, v in training.model.state_dict().items()})


def trained(setting: Setting, data: GridData, cfg: Config, progress: bool = False
            ) -> tuple[nn.Module, dict]:
    """The network of ``setting`` at its best validation epoch: from the cache, or trained now
    (resuming a partial run) and cached.

    The key holds the setting and what defines the data (source, cell, pool sizes, seed).

    Returns:
        The network (eval mode, on ``cfg.device``) and its record: ``"val_accuracy"`` and
        ``"loss"`` per epoch, ``"best_epoch"`` (1-based), ``"state"`` (the selected weights).
    """
    key = fingerprint(CACHE_VERSION, *asdict(setting).values(), cfg.source, cfg.cell,
                      cfg.n_train, cfg.n_val, str(cfg.n_test))
    record = train_cached(
        cache_root(cfg) / "gap_channels" / f"{setting.network}-{setting.task}-{key}.pt",
        lambda: start_training(setting, cfg.device),
        lambda training, epoch: _epoch_with_selection(training, data, setting, cfg.device),
        setting.epochs, lambda training: training.record,
        desc=f"{setting.network}, {setting.task}", progress=progress)
    net = build_network(setting.network, grid.num_classes(setting.task, setting.n),
                        padding=setting.padding, width=setting.width, seed=setting.seed)
    net.load_state_dict(record["state"])
    return net.to(cfg.device).eval(), record


def test_accuracy(net: nn.Module, setting: Setting, data: GridData, cfg: Config) -> list[float]:
    """Test accuracy for each of ``cfg.test_placements`` random placements of the test objects
    (a PermuteNet's permutations seeded like the placements, apart from the validation's)."""
    out = []
    for p in range(cfg.test_placements):
        cells = grid.random_cells(len(data.test), setting.n,
                                  torch.Generator().manual_seed(10_000 * cfg.seed + p))
        out.append(accuracy(net, data.test, cells, setting, cfg.device, seed=10_000 * cfg.seed + p))
    return out


def curve_rows(base: dict[str, Any], record: dict[str, Any]) -> list[dict[str, Any]]:
    """One network's learning curve as tidy rows: ``base`` plus ``epoch`` (1-based) and the metric
    ``val_curve`` (validation accuracy after that epoch) or ``loss_curve`` (mean training loss)."""
    return [base | dict(metric=metric, epoch=epoch, value=float(value))
            for metric, key in (("val_curve", "val_accuracy"), ("loss_curve", "loss"))
            for epoch, value in enumerate(record[key], start=1)]


def run_all(cfg: Config, data: GridData, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Train (or load) and test every setting.

    Returns:
        The tidy table (task, padding, grid, network, metric, value) and the trained networks by
        setting.
    """
    rows, nets = [], {}
    for s in tqdm(settings(cfg), desc="networks", disable=not progress):
        net, record = trained(s, data, cfg)
        acc = test_accuracy(net, s, data, cfg)
        base = dict(task=s.task, padding=s.padding, grid=s.n, network=s.network)
        rows += [base | dict(metric="test_accuracy", value=float(np.mean(acc))),
                 base | dict(metric="test_accuracy_sd", value=float(np.std(acc))),
                 base | dict(metric="val_accuracy", value=max(record["val_accuracy"])),
                 base | dict(metric="best_epoch", value=float(record["best_epoch"]))]
        rows += curve_rows(base, record)
        nets[s] = net
    return pd.DataFrame(rows), nets


def run_replicates(cfg: Config, data: GridData, progress: bool = True
                   ) -> tuple[pd.DataFrame, dict]:
    """:func:`run_all` in each of the ``cfg.replicates`` replicates of the run
    (:meth:`~posinfo.book.params.Config.replicate`; replicate 0 uses ``data``, the others draw
    their own object pools, placements and initialisations).

    Returns:
        The tables of all replicates (column ``replicate``) and replicate 0's networks.
    """
    table, nets = run_all(cfg, data, progress)
    tables = [table.assign(replicate=0)]
    for index in tqdm(range(1, cfg.replicates), desc="replicates", disable=not progress):
        rcfg = cfg.replicate(index)
        tables.append(run_all(rcfg, load_pools(rcfg, progress=False), False)[0].assign(replicate=index))
    return pd.concat(tables, ignore_index=True), nets


# --- a look inside GAPNet ---------------------------------------------------------------------


# Test objects per forward pass of the look inside. At the paper's 7 x 7 grid of 32-px cells
# (224-px inputs) a full-width GAPNet holds a few GB of activations for 256 images; the whole
# CIFAR test set at once would need about 96 GB.
ANALYSIS_BATCH = 256


@torch.no_grad()
def pooled_in_cell(net: nn.Module, data: GridData, k: int, n: int, device: torch.device,
                   batch_size: int = ANALYSIS_BATCH) -> Tensor:
    """The pooled backbone vectors ``float32 [N, C]`` (on the CPU) of every test object placed
    in cell ``k`` of an ``n x n`` grid, ``batch_size`` objects per forward pass."""
    out = []
    for idx in torch.arange(len(data.test)).split(batch_size):
        cells = torch.full((len(idx),), k, dtype=torch.int64)
        out.append(net.pooled(grid.place(data.test.take(idx), cells, n).to(device)).cpu())
    return torch.cat(out)


@dataclass
class CellStatistics:
    """What one pass over the grid gives of a network's pooled channels.

    Attributes:
        means: ``float32 [C, n * n]``: channel ``c``'s mean GAP value when the object is in cell
            ``k``.
        selectivity: ``float32 [C]``: the share of each channel's variance over (object, cell)
            that the cell explains.
    """

    means: Tensor
    selectivity: Tensor


@torch.no_grad()
def cell_statistics(net: nn.Module, data: GridData, n: int, device: torch.device) -> CellStatistics:
    """Per-cell means and selectivity of the pooled channels, from one pass of every test object
    through every cell of an ``n x n`` grid.

    Selectivity of channel ``c``: the variance of its per-cell means divided by its total
    variance over all test objects in all cells (a correlation ratio, 0 = blind to the cell,
    1 = the cell alone). The total is the mean within-cell variance plus the variance of the
    means, so only one cell's pooled vectors (``N C`` floats) are held at a time.
    """
    net.eval()
    means, within = [], []
    for k in range(n * n):
        z = pooled_in_cell(net, data, k, n, device).double()  # [N, C]
        means.append(z.mean(0))
        within.append(z.var(0, unbiased=False))
    m = torch.stack(means)  # [n*n, C]
    between = m.var(0, unbiased=False)
    total = torch.stack(within).mean(0) + between
    return CellStatistics(m.T.float(), (between / total.clamp_min(1e-12)).float())


def inside_setting(cfg: Config, task: str) -> Setting:
    """The GAPNet the look inside studies: zero padding, the largest grid, the given task."""
    return next(s for s in settings(cfg) if s.task == task and s.network == "gapnet"
                and s.padding == "zero" and s.n == max(cfg.grid_sizes))


def look_inside(cfg: Config, data: GridData, nets: dict
                ) -> tuple[pd.DataFrame, dict[str, CellStatistics]]:
    """Cell selectivity of GAPNet's pooled channels: trained for location, trained for the
    object's class, and untrained (same architecture, initial weights).

    Returns:
        Rows (task, padding, grid, network, metric, value) with the median and the share of
        channels above 0.5, and each variant's :class:`CellStatistics` by name.
    """
    loc, img = inside_setting(cfg, "location"), inside_setting(cfg, "image")
    untrained = build_network("gapnet", 10, padding="zero", width=cfg.width, seed=cfg.seed)
    variants = {"location": nets[loc], "image": nets[img], "untrained": untrained.to(cfg.device)}
    stats = {name: cell_statistics(net, data, loc.n, cfg.device) for name, net in variants.items()}
    rows = []
    for name, st in stats.items():
        s = st.selectivity
        base = dict(task=f"inside: {name}", padding="zero", grid=loc.n, network="gapnet")
        rows += [base | dict(metric="median_selectivity", value=float(s.median())),
                 base | dict(metric="share_selective", value=float((s > 0.5).float().mean()))]
    return pd.DataFrame(rows), stats


# --- tables, figures, claims ------------------------------------------------------------------


def accuracy_table(table: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (%) beside the paper's Table 1: rows padding x network, columns task x grid
    x (ours, paper)."""
    ours = table[table.metric == "test_accuracy"].assign(source="ours")
    paper = iccv2021_table1().assign(source="paper")
    both = pd.concat([ours, paper[paper.grid.isin(ours.grid.unique())]], ignore_index=True)
    both = both[both.padding.isin(ours.padding.unique())]
    wide = both.pivot_table(index=["padding", "network"], columns=["task", "grid", "source"],
                            values="value", sort=False)
    return (100 * wide).round(1).reindex(columns=["location", "image"], level=0)


def _acc(table: pd.DataFrame, task: str, padding: str, network: str) -> pd.Series:
    """Mean test accuracy by grid size of one task, padding and network (mean over the
    replicates in ``table``)."""
    sel = table[(table.metric == "test_accuracy") & (table.task == task)
                & (table.padding == padding) & (table.network == network)]
    return sel.groupby("grid").value.mean().sort_index()


def _pct(series: pd.Series) -> str:
    return ", ".join(f"{n}x{n} {100 * v:.1f}%" for n, v in series.items())


IMAGE_CLASSES = 10  # the image task's classes (ten shapes, or CIFAR-10)


def _location_floor(table: pd.DataFrame, network: str) -> float:
    """Lowest location accuracy of ``network`` over the grid sizes and the paper's paddings."""
    return min(_acc(table, "location", p, network).min() for p in PAPER_PADDINGS)


def _fall(table: pd.DataFrame) -> float:
    """How PermuteNet falls behind GAPNet on location as the grid grows: the smallest growth of
    GAPNet's lead from one grid size to the next, or PermuteNet's margin below 50% at the largest
    grid if that is smaller, over the paper's paddings. (A network at chance falls with the grid
    too, so the fall is measured against GAPNet, not alone.)"""
    def fall(p: str) -> float:
        perm = _acc(table, "location", p, "permutenet")
        lead = _acc(table, "location", p, "gapnet") - perm
        return min(float(np.diff(lead.values).min()), 0.5 - float(perm.iloc[-1]))
    return min(fall(p) for p in PAPER_PADDINGS)


def _image_gap_room(table: pd.DataFrame, paddings: Sequence[str]) -> float:
    """Smallest room, over paddings and grid sizes, by which the image-task gap between GAPNet
    and PermuteNet stays under both 20 points and the location-task gap."""
    room = []
    for p in paddings:
        img = (_acc(table, "image", p, "gapnet") - _acc(table, "image", p, "permutenet")).abs()
        loc = (_acc(table, "location", p, "gapnet") - _acc(table, "location", p, "permutenet")).abs()
        room.append(min((0.20 - img).min(), (loc - img).min()))
    return float(min(room))


def _replaced(table: pd.DataFrame, task: str, network: str, value: Any) -> pd.DataFrame:
    """The table with ``network``'s test accuracies on ``task`` replaced: by a constant, or by
    another network's (``value`` a network name)."""
    out = table.copy()
    rows = (out.task == task) & (out.network == network) & (out.metric == "test_accuracy")
    if isinstance(value, str):
        other = table[(table.task == task) & (table.network == value) & (table.metric == "test_accuracy")]
        key = ["replicate", "padding", "grid"]
        out.loc[rows, "value"] = out.loc[rows, key].merge(other[key + ["value"]], on=key,
                                                          how="left").value.to_numpy()
    else:
        out.loc[rows, "value"] = value if np.isscalar(value) else value(out.loc[rows])
    return out


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings G1-G3, each decided from the replicates of this run's ``table`` (column
    ``replicate``), with controls on null tables: a location-blind GAPNet (chance, 1/n^2), a
    PermuteNet that keeps position (GAPNet's accuracies), a PermuteNet that learns no class
    (chance, 1/10)."""
    gap = {p: _acc(table, "location", p, "gapnet") for p in PAPER_PADDINGS}
    perm = {p: _acc(table, "location", p, "permutenet") for p in PAPER_PADDINGS}
    diff_loc = {p: (gap[p] - perm[p]).abs() for p in cfg.image_paddings}
    diff_img = {p: (_acc(table, "image", p, "gapnet") - _acc(table, "image", p, "permutenet")).abs()
                for p in cfg.image_paddings}
    g1 = per_replicate(table, lambda t: _location_floor(t, "gapnet"))
    g2 = per_replicate(table, _fall)
    room = lambda t: _image_gap_room(t, cfg.image_paddings)  # noqa: E731
    g3 = per_replicate(table, room)
    blind = _replaced(table, "location", "gapnet", lambda rows: 1.0 / rows.grid.astype(float) ** 2)
    return [
        tested("G1", "GAPNet classifies the location almost perfectly (\"100% accuracy for all "
               "tested grid sizes\"): at least 99% for every grid size and for zero, reflect and "
               "replicate padding.", "100% for 3x3, 5x5, 7x7 and "
               "all three paddings (Table 1)",
               "means: " + "; ".join(f"{p}: {_pct(s)}" for p, s in gap.items()),
               Rule("lowest GAPNet location accuracy over grid sizes and paddings", "above", 0.99,
                    "'almost perfectly': the paper's are all 100%"), g1,
               per_replicate(blind, lambda t: _location_floor(t, "gapnet"))),
        tested("G2", "PermuteNet cannot keep up, and falls behind as the grid grows (\"significantly "
               "degrades ... as the grid size increases\"): GAPNet's lead in location accuracy "
               "grows from 3x3 to 5x5 to 7x7, and PermuteNet is below 50% at 7x7.",
               "zero 78.8 -> 37.8 -> 21.4; reflect 78.3 -> 36.3 -> 23.2; replicate 78.3 -> 40.1 -> "
               "23.6 (Table 1)", "means: " + "; ".join(f"{p}: {_pct(s)}" for p, s in perm.items()),
               Rule("smallest growth of GAPNet's location lead over PermuteNet from one grid size "
                    "to the next, or PermuteNet's margin below 50% at the largest grid if smaller, "
                    "over paddings", "above", 0.0), g2,
               per_replicate(_replaced(table, "location", "permutenet", "gapnet"), _fall)),
        tested("G3", "For image classification the two networks stay close (\"PermuteNet can "
               "achieve classification performance close to GAPNet\"): at every grid size the "
               "gap between GAPNet and PermuteNet is small (at most 20 points) and smaller than "
               "for location classification.", "image gaps 9.0-17.2 points against location gaps "
               "21.2-78.6 points (Table 1)",
               "means: " + "; ".join(f"{p}: " + ", ".join(f"{n}x{n} {100 * diff_img[p][n]:.1f} vs "
                                                         f"{100 * diff_loc[p][n]:.1f} points"
                                                         for n in diff_loc[p].index) for p in diff_loc),
               Rule("smallest room by which the image gap stays under 20 points and under the "
                    "location gap, over paddings and grid sizes", "above", 0.0,
                    "'small': the paper's image gaps are at most 17.2 points"), g3,
               per_replicate(_replaced(table, "image", "permutenet", 1.0 / IMAGE_CLASSES), room)),
    ]


def plot_accuracy(table: pd.DataFrame):
    """Test accuracy against grid size: one panel per task, a line per network and padding (means
    over the replicates), and the paper's numbers as open markers."""
    ours = table[table.metric == "test_accuracy"]
    paper = iccv2021_table1()
    styles = {"zero": "-", "reflect": "--", "replicate": ":", "circular": "-.", "none": (0, (1, 3))}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, task in zip(axes, grid.TASKS):
        for (net, pad), g in ours[ours.task == task].groupby(["network", "padding"], sort=False):
            mean = g.groupby("grid").value.mean()  # one point per grid: the mean over replicates
            ax.plot(mean.index, 100 * mean, ls=styles[pad], marker="o", color=COLOURS[net],
                    label=f"{net}, {pad}")
        ref = paper[paper.task == task].groupby(["network", "grid"]).value.mean().reset_index()
        for net, g in ref.groupby("network"):
            ax.plot(g.grid, 100 * g.value, "s", mfc="none", color=COLOURS[net], alpha=0.6,
                    label=f"{net}, paper (mean of paddings)")
        ax.set(title=f"{task} classification", xlabel="grid size n (n x n cells)",
               xticks=sorted(ours.grid.unique()))
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def plot_inside(stats: dict[str, CellStatistics], top: int = 6) -> plt.Figure:
    """Left: the ``top`` most cell-selective pooled channels of the location GAPNet, each as its
    mean response over the ``n x n`` grid. Right: selectivity of all channels, per variant
    (``stats`` as :func:`look_inside` returns them)."""
    sel = {name: st.selectivity for name, st in stats.items()}
    resp = stats["location"].means  # [C, n * n]
    n = math.isqrt(resp.shape[1])
    best = sel["location"].argsort(descending=True)[:top]
    fig = plt.figure(figsize=(10, 3))
    for i, c in enumerate(best.tolist()):
        ax = fig.add_subplot(2, top // 2 + 2, i + 1 + (i // (top // 2)) * 2)
        ax.imshow(resp[c].reshape(n, n).numpy(), cmap="viridis")
        ax.set_title(f"ch {c}: {sel['location'][c]:.2f}", fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
    ax = fig.add_subplot(1, top // 2 + 2, (top // 2 + 1, top // 2 + 2))
    ax.boxplot([v.numpy() for v in sel.values()])
    ax.set_xticks(range(1, len(sel) + 1), list(sel))
    ax.set(ylabel="share of variance explained by the cell", title="pooled channels")
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def late_gain(curve: Sequence[float]) -> float:
    """How much a validation curve still rose at the end of training: its mean over the last third
    of the epochs minus its mean over the third before (about 0 for a flat curve; NaN with fewer
    than 3 epochs). Means over thirds, not the last epoch alone, so that one noisy validation
    score does not decide it."""
    k = len(curve) // 3
    if k == 0:
        return float("nan")
    return float(np.mean(curve[-k:]) - np.mean(curve[-2 * k:-k]))


def curve_state(gains: Sequence[float]) -> tuple[float, float, float, str]:
    """The mean late gain of curves from independent replicates, its 90% t interval, and what it
    says: ``"flat"`` if the interval lies wholly within ``(-FLAT, FLAT)``, else ``"rising"`` or
    ``"falling"`` if wholly above or below 0, else ``"unclear"``. Fewer than two replicates, or
    NaN gains (curves under 3 epochs), are ``"unclear"``."""
    if len(gains) < 2 or not np.isfinite(gains).all():
        return float("nan"), float("nan"), float("nan"), "unclear"
    mean, low, high = interval(gains)
    state = ("flat" if -FLAT < low and high < FLAT else "rising" if low > 0 else
             "falling" if high < 0 else "unclear")
    return mean, low, high, state


def _late_gains(table: pd.DataFrame) -> pd.DataFrame:
    """The late gain of every learning curve in ``table``: columns task, network, padding, grid,
    replicate, gain."""
    curves = table[table.metric == "val_curve"].sort_values("epoch")
    return (curves.groupby(["task", "network", "padding", "grid", "replicate"])
            .value.apply(lambda v: late_gain(v.to_numpy())).rename("gain").reset_index())


def convergence_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per task, network, padding and grid: the mean late gain of the validation curves over the
    replicates and its 90% interval (points), and whether the curves are flat, rising or unclear
    (:func:`curve_state`)."""
    rows = {key: curve_state(g.gain.to_numpy()) for key, g in
            _late_gains(table).groupby(["task", "network", "padding", "grid"])}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["late_gain", "low", "high", "state"])
    out.index = pd.MultiIndex.from_tuples(out.index, names=["task", "network", "padding", "grid"])
    out[["late_gain", "low", "high"]] = (100 * out[["late_gain", "low", "high"]]).round(1)
    return out


def plot_curves(table: pd.DataFrame, padding: str = "zero") -> plt.Figure:
    """Validation accuracy after each epoch, with ``padding``: a row per task, a column per grid
    size, a line per network (mean over replicates, the band their range)."""
    curves = table[(table.metric == "val_curve") & (table.padding == padding)]
    grids = sorted(curves.grid.unique())
    fig, axes = plt.subplots(2, len(grids), figsize=(3 * len(grids), 4.6), sharey=True, squeeze=False)
    for row, task in zip(axes, grid.TASKS):
        for ax, n in zip(row, grids):
            for net, g in curves[(curves.task == task) & (curves.grid == n)].groupby("network"):
                by = 100 * g.groupby("epoch").value.agg(["mean", "min", "max"])
                ax.plot(by.index, by["mean"], color=COLOURS[net], label=NAMES[net])
                ax.fill_between(by.index, by["min"], by["max"], color=COLOURS[net], alpha=0.2)
            ax.set_title(f"{task}, {n}x{n}", fontsize=9)
            ax.set_xlabel("epoch")
        row[0].set_ylabel("validation accuracy (%)")
    axes[0][0].legend(fontsize=7)
    fig.patch.set_facecolor("white")
    fig.tight_layout()
    return fig


def image_gap_note(table: pd.DataFrame, cfg: Config) -> Markdown:
    """How close the two networks stay on the image task, beside the paper, and whether their
    validation curves had levelled off when training stopped (Markdown, from this run's numbers)."""
    ours = _image_task(table[(table.task == "image") & (table.metric == "test_accuracy")])
    paper = _image_task(iccv2021_table1().query("task == 'image'"))
    span = lambda v, unit: f"{v.min():.1f}{unit} to {v.max():.1f}{unit}"  # noqa: E731
    gains = _late_gains(table[table.task == "image"])
    return Markdown(
        f"Image task: the gap between GAPNet and PermuteNet is {span(ours.gap, '')} points here, against "
        f"{span(paper.gap, '')} in the paper; PermuteNet reaches {span(ours.permutenet, '%')} "
        f"(paper {span(paper.permutenet, '%')}). "
        + _convergence_words(gains, cfg.image_epochs, pooled_channels(cfg)))


def _convergence_words(gains: pd.DataFrame, epochs: int, channels: int) -> str:
    """Whether each network's curves had levelled off (``gains``: rows of :func:`_late_gains`;
    averaged over settings within each replicate, decided over the replicates), in words, and
    what limits an order-free classifier."""
    if epochs < 3:
        return (f"With {epochs} epoch(s) the learning curves are too short to tell whether the "
                "networks had levelled off. ")
    text, states = [], {}
    for net in NETWORKS:
        per_replicate = gains[gains.network == net].groupby("replicate").gain.mean().to_numpy()
        mean, low, high, states[net] = curve_state(per_replicate)
        text.append(f"{NAMES[net]}'s validation accuracy changed by {100 * mean:+.1f} points "
                    f"[{100 * low:+.1f}, {100 * high:+.1f}] over the last third of its {epochs} "
                    f"epochs ({states[net]}; mean over settings, 90% interval over "
                    f"{len(per_replicate)} replicates)")
    if states["permutenet"] == "rising":
        who = "Both networks were" if states["gapnet"] == "rising" else "PermuteNet was"
        verdict = (f"{who} still learning when training stopped, so this gap is that of this "
                   "schedule, not of the converged networks the paper compares; a longer run need "
                   "not close it. ")
    elif set(states.values()) == {"flat"}:
        verdict = "Both networks had levelled off, so this is the gap of trained networks. "
    else:
        verdict = ("Whether both networks had levelled off is not clear from these curves, so this "
                   "gap may be that of this schedule rather than of converged networks. ")
    return ("; ".join(text) + ". " + verdict
            + f"PermuteNet's classifier only sees order-free summaries of the {channels} pooled "
            "channels, so it must learn to spread the class over many channels, which is slow "
            "(the paper trains 512 channels for 100 epochs at a learning rate of 0.01).")


def _image_task(acc: pd.DataFrame) -> pd.DataFrame:
    """Image-task accuracies (rows padding, network, grid, value in [0, 1]) as points per
    (padding, grid): columns ``gapnet``, ``permutenet`` and their absolute difference ``gap``."""
    wide = 100 * acc.pivot_table(index=["padding", "grid"], columns="network", values="value")
    return wide.assign(gap=(wide.gapnet - wide.permutenet).abs())


def pooled_channels(cfg: Config) -> int:
    """Number of pooled channels of the run's backbone (``512 * width``)."""
    return max(1, round(64 * cfg.width)) * 8


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: files written, trainings, the claims tested.

    Whether a claim holds is left out: the smoke profile's networks are barely trained, so their
    accuracies sit near chance and may differ between CPUs in the last digit.
    """
    results = read_back(cfg.results_dir, claims, {"task", "padding", "grid", "network", "metric"})
    trained = results[(results.metric == "test_accuracy") & ~results.task.str.startswith("inside")]
    files = sorted(p.name for p in cfg.results_dir.iterdir() if not p.name.startswith("."))
    return {"rows": len(results), "trainings": len(trained), "files": files,
            "claims": [c.id for c in claims]}
