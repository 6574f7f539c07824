"""Chapter 4: padding in position-dependent tasks (ICLR 2020 Section 4.2, Tables 5 and 6).

The same VGG16 encoder-decoder (:mod:`posinfo.models.dense`) is trained from scratch, with and
without zero padding, for salient object detection and for semantic segmentation, and scored
with the F-measure and MAE (saliency) and the mIoU (segmentation). The two padded encoders and an
encoder trained for classification are then frozen and probed with chapter 1's readout for the
H, G and HS patterns on natural, black, white and noise inputs (Table 6), and with the exact
least-squares readout on all stages and on one deep stage, which decides the comparisons.

Beyond the paper, two position-dependent twins (:mod:`posinfo.data.position_tasks`) are trained on
the same scenes with the same network and budget: saliency of the most central object, and
segmentation into horizontal thirds. Their encoders are probed beside their position-free
partners' (claim T4: does a task that needs position leave more of it?).

In the default profile the two dense networks are trained on the very same generated scenes
(:mod:`posinfo.data.scenes`, objects of ``scene_classes`` only), with the same architecture, width,
resolution, optimiser and number of steps: only the labels differ (the objects' mask, their class
mask). The encoder trained for classification is the book's synthetic encoder (all ten classes,
the class of the largest object) at this chapter's width; one label per image carries far less
signal than a mask, so it gets more, smaller images (``classification_size``,
``classification_images``, ``classification_epochs``): with the dense networks' budget it stays at
chance, and a probe of an untrained encoder says nothing about what classification teaches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from torch import Tensor
from tqdm.auto import tqdm

from posinfo.book import plots
from posinfo.book.paper_tables import iclr2020_table5, iclr2020_table6
from posinfo.book.params import PATH, ChapterSpec, Config, Knob, choice, integer, real
from posinfo.book.results import Claim, decimal, holds_by_id, read_back, tested
from posinfo.book.verdicts import Rule, per_replicate, substitute
from posinfo.cache import cache_root
from posinfo.data import targets
from posinfo.data.datasets import (dataset_root, grid_min_side, saliency_tensors, verify_dataset,
                                   voc_tensors)
from posinfo.data.position_tasks import THIRDS, twin_targets
from posinfo.data.scenes import CLASS_NAMES, SyntheticScenes
from posinfo.data.targets import distance_to_border
from posinfo.metrics import dense as task_metrics
from posinfo.metrics.dense import IGNORE
from posinfo.metrics.position import score
from posinfo.models.dense import (
    DenseConfig,
    DenseNet,
    EpochData,
    dense_network,
    frozen_encoder,
    predict_dense,
)
from posinfo.models.encoders import MIN_NOPAD_SIZE, build_encoder, require_imagenet_weights
from posinfo.models.pretrain import PretrainConfig, synthetic_encoder
from posinfo.probe import probing
from posinfo.probe.features import FeatureCache, stage_channels
from posinfo.probe.probing import SCORES, TEST_SETS, Source, load_data, source_inputs
from posinfo.probe.readout import (ReadoutTraining, fit_best_readout, least_squares_readout,
                                   predict, readout_seeds)

TASK_PADDINGS = ("zero", "none")
PAPER_TASKS = ("saliency", "segmentation")
TRAINED_FOR = ("classification", *PAPER_TASKS)
# The dense tasks on generated scenes: (what is predicted, position-dependent labels or None).
# The twins (:mod:`posinfo.data.position_tasks`) label the same images by where objects are.
SCENE_TASKS = {"saliency": ("saliency", None), "segmentation": ("segmentation", None),
               "central saliency": ("saliency", "central"),
               "thirds segmentation": ("segmentation", "thirds")}
TWIN_OF = {"central saliency": "saliency", "thirds segmentation": "segmentation"}
# Probed beside them: the dense networks' common starting point (same seed, before training).
PROBED = (*TRAINED_FOR, "untrained", *TWIN_OF)
OBJECT_SCALE = (0.25, 0.5)  # the scenes' default object sizes, shared by the three tasks
SCENE_OBJECTS = (2, 3)  # objects per scene: several, so that "the most central one" means something
STAGES = ("f1", "f2", "f3", "f4", "f5")
SALIENCY_TESTS = ("ecssd", "pascal-s", "dut-omron")
VOC_CLASSES = 21
BORDER_FRACTION = 1 / 8  # the border band: pixels closer to the border than this share of the side

_THREE = ["disk", "triangle", "cross"]  # the default's segmentation classes (see the chapter)
_SHARED = dict(arch="vgg16_bn", patterns=["H", "G", "HS"], least_squares_all=True, cache_dir=None)
SPEC = ChapterSpec(
    chapter="04_padding_in_tasks",
    profiles={
        "smoke": _SHARED | dict(dataset="scenes", scene_classes=_THREE, image_size=196,
                                vgg_width=0.0625, n_train=16, n_test=6, epochs=1, batch_size=8,
                                lr=3e-3, decoder_channels=8, classification="synthetic",
                                classification_size=32, classification_images=64,
                                classification_epochs=1, probe_train=16, probe_test=4,
                                n_synthetic=2, feature_size=7, readout_epochs=3, twin_train=None, twin_test=None,
                                readout_seeds=2, probe_stage="f5", replicates=2),
        "default": _SHARED | dict(dataset="scenes", scene_classes=_THREE, image_size=196,
                                  vgg_width=0.125, n_train=600, n_test=100, epochs=5, batch_size=8,
                                  lr=3e-3, decoder_channels=16, classification="synthetic",
                                  classification_size=64, classification_images=5000,
                                  classification_epochs=8, probe_train=192, probe_test=64,
                                  n_synthetic=10, feature_size=14, readout_epochs=15,
                                  twin_train=None, twin_test=None, readout_seeds=3, probe_stage="f5",
                                  replicates=3),
        # scene_classes: the twins' scenes (and their partners'); with all ten shapes the
        # segmentation network learned no class in a trial (mIoU 8.5%), so three here too.
        "paper": _SHARED | dict(dataset="msra-b+voc2012", scene_classes=_THREE,
                                classification_size=64, classification_images=5000,
                                classification_epochs=8, image_size=224, vgg_width=1.0,
                                n_train=None, n_test=None, epochs=30, batch_size=16, lr=1e-4,
                                decoder_channels=64, classification="imagenet", probe_train=2000,
                                probe_test=None, n_synthetic=100, feature_size=28,
                                readout_epochs=15, twin_train=2000, twin_test=200,
                                readout_seeds=3, probe_stage="f5", replicates=3),
    },
    types={"arch": choice(("vgg16", "vgg16_bn")), "patterns": choice(targets.PATTERNS, is_list=True),
           "cache_dir": PATH, "dataset": choice(("scenes", "msra-b+voc2012")),
           "scene_classes": choice(CLASS_NAMES, is_list=True), "image_size": integer(16, 4096),
           "vgg_width": real(1 / 64, 4), "n_train": integer(1, optional=True),
           "n_test": integer(1, optional=True), "epochs": integer(1, 10_000),
           "batch_size": integer(1, 4096), "lr": real(1e-9, 10), "decoder_channels": integer(1, 4096),
           "classification": choice(("synthetic", "imagenet")),
           "classification_size": integer(16, 1024), "classification_images": integer(1),
           "classification_epochs": integer(1, 10_000), "probe_train": integer(2),
           "probe_test": integer(1, optional=True), "n_synthetic": integer(1),
           "feature_size": integer(1, 512), "readout_epochs": integer(1, 10_000),
           "twin_train": integer(1, optional=True, help=(
               "an int, at least 1, or None: generated scenes per epoch for the position-dependent "
               "twins and their partners when the dataset is not the generated scenes (on them: "
               "n_train)")),
           "twin_test": integer(1, optional=True, help=(
               "an int, at least 1, or None: their held-out scenes when the dataset is not the generated "
               "scenes (on them: n_test)")),
           "readout_seeds": integer(1, 20, help="an int in [1, 20]: SGD readouts trained per "
                                    "encoder and pattern; the one with the lowest training loss "
                                    "is kept"),
           "probe_stage": choice(STAGES),
           "least_squares_all": Knob("bool", help=(
               "True or False: also fit the least-squares readout on all stages together (VGG16: "
               "13,249 unknowns, minutes per fit on a CPU); the claims use the single stage")),
           "replicates": integer(1, 100, help="an int in [1, 100]: independent replicates (each its "
                                 "own scenes, network trainings and readout initialisations) that "
                                 "every claim is decided from")},
)


def validate(cfg: Config) -> None:
    """Fail before any work on a run that cannot complete or whose findings cannot be tested;
    the paper profile's files (:func:`dataset_reads`) are decoded, each image needing at least
    ``feature_size`` px on its shorter side (:func:`~posinfo.data.datasets.grid_min_side`)."""
    if cfg.image_size < MIN_NOPAD_SIZE:
        raise ValueError(f"VGG16 without padding needs images of at least {MIN_NOPAD_SIZE} px; "
                         f"image_size={cfg.image_size}")
    if not {"H", "G"} <= set(cfg.patterns):
        raise ValueError(f"claim T3 needs patterns H and G; patterns={cfg.patterns}")
    if cfg.dataset == "scenes" and (cfg.n_train is None or cfg.n_test is None):
        raise ValueError("the generated scenes need explicit n_train and n_test")
    if cfg.dataset != "scenes" and (cfg.twin_train is None or cfg.twin_test is None):
        raise ValueError(f"dataset={cfg.dataset!r}: the position-dependent twins train on "
                         "generated scenes and need twin_train and twin_test")
    if len(set(cfg.scene_classes)) != len(cfg.scene_classes) or not cfg.scene_classes:
        raise ValueError(f"scene_classes must be distinct and non-empty; "
                         f"scene_classes={cfg.scene_classes}")
    if cfg.classification == "synthetic" and not (cfg.classification_images
                                                  and cfg.classification_epochs):
        raise ValueError("the synthetic classification encoder needs classification_images "
                         "and classification_epochs")
    if cfg.dataset != "scenes":
        for name in ("msra-b", *SALIENCY_TESTS, "voc2012", "duts-train"):
            dataset_root(name, cfg.data_root)
    if cfg.classification == "imagenet":
        require_imagenet_weights(cfg.arch, cfg.vgg_width)
    if cfg.dataset != "scenes":  # last: decoding every file takes longest
        for name, split, limit in dataset_reads(cfg):
            verify_dataset(name, cfg.data_root, split, limit, grid_min_side(cfg.feature_size))


def _larger(a: int | None, b: int | None) -> int | None:
    """The larger of two limits, ``None`` (no limit) winning."""
    return None if a is None or b is None else max(a, b)


def dataset_reads(cfg: Config) -> list[tuple[str, str | None, int | None]]:
    """What the paper profile reads, as ``(dataset, split, limit)``: the tasks' training and test
    sets (:func:`task_data`) and the probe's DUT-S and PASCAL-S (:func:`probe_config`)."""
    tests = [(name, None, cfg.n_test) for name in SALIENCY_TESTS if name != "pascal-s"]
    return [("msra-b", None, cfg.n_train), *tests,
            ("pascal-s", None, _larger(cfg.n_test, cfg.probe_test)),
            ("voc2012", "train", cfg.n_train), ("voc2012", "val", cfg.n_test),
            ("duts-train", None, cfg.probe_train)]


# --- data -----------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """One task's training data, test sets ``{name: (images, targets)}`` and output count."""

    train: EpochData
    n_train: int
    tests: dict[str, tuple[Tensor, Tensor]]
    num_outputs: int


def scene_epoch_seed(cfg: Config, epoch: int) -> int:
    """The seed of the scenes of one training epoch, on :mod:`posinfo.models.pretrain`'s scheme; every
    dense task sees the same images in every epoch."""
    return 1_000_000 + 1000 * cfg.seed + epoch


def loss_kind(task: str) -> str:
    """``"saliency"`` or ``"segmentation"``: what a task (one of ``SCENE_TASKS``) predicts."""
    return SCENE_TASKS[task][0]


def scenes(cfg: Config, n: int, seed: int, task: str) -> tuple[Tensor, Tensor]:
    """``n`` scenes of ``scene_classes`` with ``SCENE_OBJECTS`` objects each: images ``[n, 3, S,
    S]`` and the labels of ``task`` (one of ``SCENE_TASKS``): saliency masks ``[n, S, S]`` (every
    object, or the most central one) or class maps ``int64 [n, S, S]`` (0 = background; ``k + 1``
    = the ``k``-th of ``scene_classes``, or the ``k``-th horizontal third)."""
    ids = [CLASS_NAMES.index(c) for c in cfg.scene_classes]
    drawn = SyntheticScenes(n, cfg.image_size, seed, n_objects=SCENE_OBJECTS,
                            object_scale=OBJECT_SCALE, classes=ids)
    images, _, classes, saliency = drawn.tensors()
    twin = SCENE_TASKS[task][1]
    if twin is not None:
        return images, twin_targets(drawn, twin)
    if task == "saliency":
        return images, saliency
    lookup = torch.zeros(len(CLASS_NAMES) + 1, dtype=torch.long)
    lookup[torch.tensor(ids) + 1] = torch.arange(1, len(ids) + 1)
    return images, lookup[classes]


def scene_epochs(cfg: Config, task: str) -> EpochData:
    """Fresh scenes for every epoch, with the labels of ``task`` (see :func:`scenes`)."""
    return lambda epoch: scenes(cfg, cfg.n_train, scene_epoch_seed(cfg, epoch), task)


def scene_task_data(cfg: Config, task: str) -> TaskData:
    """One scene task's data: fresh scenes per epoch and the held-out scenes."""
    outputs = 1 if loss_kind(task) == "saliency" else (
        THIRDS if SCENE_TASKS[task][1] == "thirds" else len(cfg.scene_classes)) + 1
    return TaskData(scene_epochs(cfg, task), cfg.n_train,
                    {"scenes": scenes(cfg, cfg.n_test, 40_000 + cfg.seed, task)}, outputs)


def task_data(cfg: Config) -> dict[str, TaskData]:
    """Both tasks' data: generated scenes, or MSRA-B / ECSSD, PASCAL-S, DUT-OMRON and VOC 2012."""
    if cfg.dataset == "scenes":
        return {task: scene_task_data(cfg, task) for task in PAPER_TASKS}
    sal_train = saliency_tensors("msra-b", cfg.data_root, cfg.image_size, cfg.n_train)
    voc_train = voc_tensors(cfg.data_root, "train", cfg.image_size, cfg.n_train)
    return {
        "saliency": TaskData(lambda epoch: sal_train, len(sal_train[0]),
                             {n: saliency_tensors(n, cfg.data_root, cfg.image_size, cfg.n_test)
                              for n in SALIENCY_TESTS}, 1),
        "segmentation": TaskData(lambda epoch: voc_train, len(voc_train[0]),
                                 {"voc2012-val": voc_tensors(cfg.data_root, "val", cfg.image_size,
                                                             cfg.n_test)}, VOC_CLASSES),
    }


# --- the networks ---------------------------------------------------------------------------------


def dense_config(cfg: Config, task: str, padding: str, data: TaskData) -> DenseConfig:
    """How the chapter trains the ``task`` network (one of ``SCENE_TASKS``) with ``padding``; the
    scenes' classes, object count and labelling are part of the data's name, so networks trained
    on other scenes or labels are never reused."""
    name = cfg.dataset
    if cfg.dataset == "scenes":
        name = f"scenes:{','.join(cfg.scene_classes)}:objects={SCENE_OBJECTS[0]}-{SCENE_OBJECTS[1]}"
        name += f":{SCENE_TASKS[task][1]}" if SCENE_TASKS[task][1] else ""
    return DenseConfig(task=loss_kind(task), num_outputs=data.num_outputs, data=name, arch=cfg.arch,
                       width=cfg.vgg_width, padding=padding, image_size=cfg.image_size,
                       n_train=data.n_train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       lr=cfg.lr, decoder_channels=cfg.decoder_channels, seed=cfg.seed)


def classification_config(cfg: Config) -> PretrainConfig:
    """The book's synthetic classification encoder at this chapter's architecture and width, with
    the dense networks' object sizes, trained on ``classification_images`` fresh scenes of
    ``classification_size`` px per epoch (chapter 1's batch size and learning rate)."""
    return PretrainConfig(arch=cfg.arch, width=cfg.vgg_width, image_size=cfg.classification_size,
                          object_scale=OBJECT_SCALE, n_train=cfg.classification_images,
                          n_val=cfg.n_test, epochs=cfg.classification_epochs, seed=cfg.seed)


def classification_encoder(cfg: Config, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The frozen encoder trained for classification: the book's synthetic one, or ImageNet's."""
    if cfg.classification == "imagenet":
        return build_encoder(cfg.arch, "imagenet", width=cfg.vgg_width), {}
    return synthetic_encoder(classification_config(cfg), cache_root(cfg),
                             device=cfg.device, progress=progress)


@dataclass
class TaskRun:
    """The trained networks, their records, the data and the predictions on every test set."""

    networks: dict[tuple[str, str], DenseNet]
    records: dict[tuple[str, str], dict]
    data: dict[str, TaskData]
    predictions: dict[tuple[str, str, str], Tensor]  # (task, padding, test set) -> [N, S, S]


def twin_config(cfg: Config) -> Config:
    """The run on the scenes the twins train on: ``cfg`` itself when the profile trains on
    generated scenes, else scenes of ``twin_train`` / ``twin_test`` images at ``image_size``."""
    if cfg.dataset == "scenes":
        return cfg
    return dataclasses.replace(cfg, knobs={**cfg.knobs, "dataset": "scenes",
                                           "n_train": cfg.twin_train, "n_test": cfg.twin_test})


def partner(cfg: Config, twin: str) -> str:
    """The probed name of a twin's position-free partner: the paper's task itself when the profile
    trains on generated scenes, else the same task trained on the twin's scenes."""
    return TWIN_OF[twin] if cfg.dataset == "scenes" else f"{TWIN_OF[twin]} (scenes)"


def twin_jobs(cfg: Config) -> dict[str, str]:
    """Every network the twin comparison adds (zero padding): probed name -> scene task."""
    jobs = {twin: twin for twin in TWIN_OF}
    if cfg.dataset != "scenes":
        jobs |= {partner(cfg, twin): TWIN_OF[twin] for twin in TWIN_OF}
    return jobs


def _train(cfg: Config, run: TaskRun, name: str, task: str, pad: str, progress: bool) -> None:
    """Train (or load) the network ``name`` (scene task ``task``) and predict its test sets."""
    data = run.data[name]
    net, record = dense_network(dense_config(cfg, task, pad, data), data.train,
                                cache_root(cfg) / "dense", device=cfg.device, progress=progress)
    run.networks[(name, pad)], run.records[(name, pad)] = net, record
    for test_set, (images, _) in data.tests.items():
        run.predictions[(name, pad, test_set)] = predict_dense(net, images, loss_kind(task),
                                                               device=cfg.device)


def train_networks(cfg: Config, progress: bool = True) -> TaskRun:
    """Train (or load from the cache) the paper's two tasks with and without padding, and the
    position-dependent twins (and, off the scenes, their partners) with zero padding; predict
    every test set."""
    run = TaskRun({}, {}, task_data(cfg), {})
    tcfg = twin_config(cfg)
    run.data |= {name: scene_task_data(tcfg, task) for name, task in twin_jobs(cfg).items()}
    jobs = [(cfg, t, t, pad) for t in PAPER_TASKS for pad in TASK_PADDINGS]
    jobs += [(tcfg, name, task, "zero") for name, task in twin_jobs(cfg).items()]
    for jcfg, name, task, pad in tqdm(jobs, desc="networks", disable=not progress):
        _train(jcfg, run, name, task, pad, progress)
    return run


# --- scores ---------------------------------------------------------------------------------------


def border_band(size: int) -> Tensor:
    """``bool [size, size]``: the pixels closer to the border than ``BORDER_FRACTION * size``."""
    return distance_to_border(size) < round(BORDER_FRACTION * size)


def saliency_scores(pred: Tensor, mask: Tensor) -> dict[str, float]:
    """F-measure and MAE of maps ``[N, S, S]``, and the MAE inside and outside the border band."""
    band = border_band(pred.shape[-1])
    err = (pred - mask).abs()
    return {"f_measure": task_metrics.max_f_measure(pred, mask),
            "mae": task_metrics.saliency_mae(pred, mask),
            "mae_border": float(err[:, band].mean()), "mae_interior": float(err[:, ~band].mean())}


def segmentation_scores(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, float]:
    """mIoU and pixel accuracy of class maps ``[N, S, S]``, and the pixel error rate inside and
    outside the border band (ignored pixels left out)."""
    band = border_band(pred.shape[-1])
    wrong, valid = (pred != target).float(), (target != IGNORE).float()
    conf = task_metrics.confusion_matrix(pred, target, num_classes, IGNORE)
    rate = lambda sel: float(  # noqa: E731
        (wrong * valid)[:, sel].sum() / valid[:, sel].sum().clamp_min(1))
    return {"miou": task_metrics.mean_iou(conf), "pixel_accuracy": task_metrics.pixel_accuracy(conf),
            "error_border": rate(band), "error_interior": rate(~band)}


def task_table(run: TaskRun) -> pd.DataFrame:
    """Tidy scores: experiment ("task" for the paper's tasks, "twin task" for the twin
    comparison's networks), task, padding, test_set, metric, value."""
    rows = []
    for (task, pad, name), pred in run.predictions.items():
        data = run.data[task]
        target = data.tests[name][1]
        scores = (saliency_scores(pred, target) if data.num_outputs == 1
                  else segmentation_scores(pred, target, data.num_outputs))
        experiment = "task" if task in PAPER_TASKS else "twin task"
        rows += [dict(experiment=experiment, task=task, padding=pad, test_set=name, metric=m,
                      value=v) for m, v in scores.items()]
    return pd.DataFrame(rows)


def training_summary(run: TaskRun, classification_record: dict) -> pd.DataFrame:
    """Each network's training: epochs, seconds, first and last epoch's loss."""
    rows = [dict(task=t, padding=p, epochs=len(r["losses"]), train_seconds=round(r["seconds"], 1),
                 first_loss=round(r["losses"][0], 3), last_loss=round(r["losses"][-1], 3))
            for (t, p), r in run.records.items()]
    if classification_record:
        r = classification_record
        rows.append(dict(task="classification", padding="zero", epochs=len(r["losses"]),
                         train_seconds=round(r["seconds"], 1), first_loss=round(r["losses"][0], 3),
                         last_loss=round(r["losses"][-1], 3),
                         val_accuracy=round(r["val_accuracy"], 3)))
    return pd.DataFrame(rows).set_index(["task", "padding"])


# --- Table 6: probing the frozen encoders -------------------------------------------------------


def probe_config(cfg: Config) -> Config:
    """Chapter 1's probe protocol at this chapter's size: DUT-S / PASCAL-S or the scenes."""
    knobs = {**cfg.knobs, "dataset": "scenes" if cfg.dataset == "scenes" else "duts+pascal-s",
             "n_train": cfg.probe_train, "n_test": cfg.probe_test, "least_squares": False}
    return dataclasses.replace(cfg, knobs=knobs)


# The readouts of the probe: (readout, stage). The paper's (SGD on all stages, best of
# ``readout_seeds``) is Table 6's; least squares cannot underfit, and ``probe_stage`` ("stage")
# is a single deep stage, away from the ceiling all stages together reach.
PROBE_READOUTS = (("sgd", "all"), ("least_squares", "all"), ("least_squares", "stage"))
DECIDING = ("least_squares", "stage")  # the readout T3 and T4 are decided on


def probed_encoders(cfg: Config, run: TaskRun, classifier: torch.nn.Module
                    ) -> dict[str, torch.nn.Module]:
    """Every frozen encoder the probe reads, by name: the classifier, the paper's two padded
    dense encoders, their common untrained start (same seed) and the twin comparison's."""
    dense = lambda name: frozen_encoder(run.networks[(name, "zero")])  # noqa: E731
    return {"classification": classifier, **{t: dense(t) for t in PAPER_TASKS},
            "untrained": build_encoder(cfg.arch, "random", width=cfg.vgg_width, seed=cfg.seed),
            **{name: dense(name) for name in twin_jobs(cfg)}}


def probe_readouts(cfg: Config) -> tuple[tuple[str, str], ...]:
    """The readouts of ``PROBE_READOUTS`` this run fits: least squares on all stages only when
    ``least_squares_all`` (VGG16's five stages make d = 13,249 unknowns, minutes per fit on a
    CPU; the deciding single stage has 4,609)."""
    return tuple(r for r in PROBE_READOUTS if cfg.least_squares_all or r != ("least_squares", "all"))


def fit_probes(cfg: Config, train: Tensor, gts: Tensor, channels: list[int]
               ) -> dict[tuple[str, str], tuple[slice, list[torch.nn.Module]]]:
    """Every readout of :func:`probe_readouts` on training features ``[N, C, h, w]`` for the maps
    ``gts`` ``[P, S, S]``: ``{(readout, stage): (channels read, one model per pattern)}``."""
    seeds = readout_seeds(cfg.seed, cfg.readout_seeds)
    protocol = ReadoutTraining(epochs=cfg.readout_epochs)
    out = {}
    for readout, stage in probe_readouts(cfg):
        sel = stage_channels(channels, cfg.probe_stage if stage == "stage" else stage)
        x = train[:, sel]
        out[(readout, stage)] = (sel, [fit_best_readout(x, gt, protocol, seeds=seeds,
                                                        device=cfg.device)[0] for gt in gts]
                                 if readout == "sgd"
                                 else least_squares_readout(x, gts, device=cfg.device))
    return out


def probe_encoders(cfg: Config, run: TaskRun, classifier: torch.nn.Module,
                   progress: bool = True) -> pd.DataFrame:
    """Chapter 1's readout on the frozen padded encoders (Table 6), and beyond the paper the
    untrained start, the twins and the readouts of :func:`probe_readouts`. Each encoder's
    features are computed once and read by every readout.

    Returns:
        Tidy rows: experiment "probe", trained_for, readout, stage, pattern, test_set, metric,
        value (stage "stage" is ``probe_stage``).
    """
    pcfg = probe_config(cfg)
    data = load_data(pcfg, progress=False)
    cache = FeatureCache(cache_root(cfg) / "features", device=cfg.device, keep_in_memory=False)
    gts = targets.position_maps(cfg.patterns, cfg.image_size)
    rows = []
    encoders = probed_encoders(cfg, run, classifier)
    for name, module in tqdm(encoders.items(), desc="probed encoders", disable=not progress):
        train, tests = source_inputs(pcfg, Source(cfg.arch, name, module), data, cache)
        for (readout, stage), (sel, models) in fit_probes(cfg, train, gts, module.channels).items():
            for pattern, model, gt in zip(cfg.patterns, models, gts):
                for test_set, x in tests.items():
                    s = score(predict(model, x[:, sel], cfg.image_size, device=cfg.device), gt)
                    rows += [dict(experiment="probe", trained_for=name, readout=readout,
                                  stage=stage, pattern=pattern, test_set=test_set, metric=m,
                                  value=float(getattr(s, m))) for m in SCORES]
                if readout == "least_squares":  # the fit itself: its ridge and conditioning
                    rows += [dict(experiment="probe", trained_for=name, readout=readout,
                                  stage=stage, pattern=pattern, test_set="training", metric=m,
                                  value=float(getattr(model, m))) for m in ("ridge", "condition")]
    return pd.DataFrame(rows)


def run_replicates(cfg: Config, progress: bool = True) -> tuple[pd.DataFrame, TaskRun, dict]:
    """Every replicate of the chapter (:meth:`~posinfo.book.params.Config.replicate`: its own
    scenes, four dense networks, classifier, untrained start and probe readouts).

    Returns:
        The scores of all replicates (tidy, column ``replicate``), and replicate 0's networks
        and classifier record (for the figures and the training summary).
    """
    tables, first = [], None
    for index in tqdm(range(cfg.replicates), desc="replicates", disable=not progress):
        rcfg = cfg.replicate(index)
        run = train_networks(rcfg, progress)
        classifier, record = classification_encoder(rcfg, progress)
        probes = probe_encoders(rcfg, run, classifier, progress)
        tables.append(pd.concat([task_table(run), probes], ignore_index=True).assign(replicate=index))
        first = first or (run, record)
    return pd.concat(tables, ignore_index=True), *first


# --- the paper's numbers and ours -------------------------------------------------------------------

_LABELS = {"zero": "VGG", "none": "VGG w/o padding"}


def table5(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5 beside ours: rows VGG / VGG w/o padding; columns (who, test set, metric): the
    paper's F-measure and MAE on ECSSD, PASCAL-S, DUT-OMRON and mIoU (%) on VOC, then ours."""
    paper = iclr2020_table5()
    ours = table[(table.experiment == "task") & table.metric.isin(["f_measure", "mae", "miou"])].copy()
    ours.loc[ours.metric == "miou", "value"] *= 100
    ours["metric"] = ours.metric.replace({"miou": "miou_%"})
    both = pd.concat([paper.assign(who="paper"), ours.assign(who="ours")])
    both["model"] = both.padding.map(_LABELS)
    wide = both.pivot_table(index="model", columns=["who", "test_set", "metric"], values="value",
                            sort=False)
    return wide.loc[list(_LABELS.values())].round(3)


def table6(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Table 6 beside ours: rows (pattern, trained for), columns (test set, metric, paper|ours)."""
    ours = _paper_readout(table)
    ours = ours[ours.metric.isin(["spc_paper", "mae"])].copy()
    ours["metric"] = ours.metric.replace({"spc_paper": "spc"})
    keys = ["pattern", "trained_for", "test_set", "metric"]
    both = iclr2020_table6().merge(ours[keys + ["value"]], on=keys, how="right",
                                   suffixes=("_paper", "_ours"))
    wide = both.pivot_table(index=["pattern", "trained_for"], columns=["test_set", "metric"],
                            values=["value_paper", "value_ours"], dropna=False)
    wide = wide.rename(columns={"value_paper": "paper", "value_ours": "ours"}, level=0)
    wide = wide.reorder_levels([1, 2, 0], axis=1)
    cols = [(t, m, w) for t in TEST_SETS for m in ("spc", "mae") for w in ("paper", "ours")]
    rows = [(p, t) for p in cfg.patterns for t in (*TRAINED_FOR, "untrained")]
    return wide.reindex(index=rows, columns=cols).round(3)


def _paper_readout(table: pd.DataFrame) -> pd.DataFrame:
    """The probe rows of Table 6's readout: SGD on all stages."""
    return table[(table.experiment == "probe") & (table.readout == "sgd") & (table.stage == "all")]


def probe_table(table: pd.DataFrame, cfg: Config, test_set: str = "natural") -> pd.DataFrame:
    """SPC (the paper's convention) of every probed encoder on one input, by readout: rows
    (pattern, trained for), columns (readout, stage), means over the replicates."""
    sel = table[(table.experiment == "probe") & (table.test_set == test_set)
                & (table.metric == "spc_paper")].copy()
    sel["stage"] = sel.stage.replace({"stage": cfg.probe_stage})
    wide = sel.pivot_table(index=["pattern", "trained_for"], columns=["readout", "stage"],
                           values="value", sort=False)
    rows = [(p, t) for p in cfg.patterns for t in sel.trained_for.unique()]
    return wide.reindex(index=rows).round(3)


def twin_table(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """How well each twin and its position-free partner (zero padding, held-out scenes) learned
    their tasks: rows (pair, network), columns the task's scores, means over the replicates."""
    sel = table[table.experiment.isin(["task", "twin task"]) & (table.padding == "zero")
                & (table.test_set == "scenes")]
    rows = []
    for twin in TWIN_OF:
        for name in (partner(cfg, twin), twin):
            mean = sel[sel.task == name].groupby("metric").value.mean()
            rows.append(dict(pair=twin, network=name, **mean.to_dict()))
    columns = ["f_measure", "mae", "miou", "pixel_accuracy"]
    out = pd.DataFrame(rows).set_index(["pair", "network"])
    return out.reindex(columns=[c for c in columns if c in out.columns]).round(3)


def constant_maps(table: pd.DataFrame) -> pd.DataFrame:
    """How many of each probed encoder's predicted maps are constant (saturated), per input, with
    Table 6's readout (the sigmoid SGD readout; a linear one does not saturate): rows
    trained_for, columns test sets, "k of n" summed over patterns and replicates."""
    return probing.constant_maps(_paper_readout(table), by=["trained_for"])


def border_table(table: pd.DataFrame) -> pd.DataFrame:
    """Error in the border band against the interior, per task and padding."""
    sel = table[(table.experiment == "task") & table.metric.str.contains("border|interior")]
    return sel.pivot_table(index=["task", "padding", "test_set"], columns="metric", values="value",
                           sort=False).round(3)


def where_padding_matters(table: pd.DataFrame) -> Markdown:
    """In words, from this run's numbers: how much removing the padding changes the error in the
    border band and in the interior, for each task and test set (Markdown)."""
    lines = []
    for (task, test_set), group in table[table.experiment == "task"].groupby(["task", "test_set"]):
        name = "saliency MAE" if task == "saliency" else "pixel error rate"
        metric = "mae" if task == "saliency" else "error"
        v = group.pivot_table(index="metric", columns="padding", values="value")
        change = {r: v.loc[f"{metric}_{r}", "none"] - v.loc[f"{metric}_{r}", "zero"]
                  for r in ("border", "interior")}
        lines.append(f"- {task} ({test_set}): without padding the {name} changes by "
                     f"{change['border']:+.3f} in the border band ({v.loc[f'{metric}_border', 'zero']:.3f}"
                     f" -> {v.loc[f'{metric}_border', 'none']:.3f}) and by {change['interior']:+.3f} "
                     f"in the interior ({v.loc[f'{metric}_interior', 'zero']:.3f} -> "
                     f"{v.loc[f'{metric}_interior', 'none']:.3f}).")
    return Markdown("\n".join(lines))


# --- claims -------------------------------------------------------------------------------------------


def _task_metric(table: pd.DataFrame, task: str, metric: str) -> pd.DataFrame:
    """``[test_set x padding]`` values of one task's metric."""
    sel = table[(table.experiment == "task") & (table.task == task) & (table.metric == metric)]
    return sel.pivot_table(index="test_set", columns="padding", values="value")


def _probe_spc(table: pd.DataFrame, readout: tuple[str, str] = DECIDING) -> pd.DataFrame:
    """Natural-image readout SPC (paper's convention) of one ``(readout, stage)``: ``[pattern x
    trained_for]``."""
    sel = table[(table.experiment == "probe") & (table.test_set == "natural")
                & (table.metric == "spc_paper") & (table.readout == readout[0])
                & (table.stage == readout[1])]
    return sel.pivot_table(index="pattern", columns="trained_for", values="value")


def _padding_lead(table: pd.DataFrame, task: str) -> float:
    """Lowest lead of zero padding over none on every test set: F-measure and MAE for saliency
    (whichever lead is smaller), mIoU for segmentation."""
    if task == "segmentation":
        miou = _task_metric(table, "segmentation", "miou")
        return float((miou["zero"] - miou["none"]).min())
    fm, mae = _task_metric(table, "saliency", "f_measure"), _task_metric(table, "saliency", "mae")
    return float(min((fm["zero"] - fm["none"]).min(), (mae["none"] - mae["zero"]).min()))


def _dense_lead(table: pd.DataFrame) -> float:
    """Lowest natural-image SPC lead of the saliency and segmentation encoders over the
    classification encoder (H, G)."""
    spc = _probe_spc(table).loc[["H", "G"]]
    return float(min((spc[t] - spc["classification"]).min() for t in TRAINED_FOR[1:]))


def _twin_lead(table: pd.DataFrame, cfg: Config) -> float:
    """Lower of the two twins' natural-image SPC leads over their position-free partners, each
    the mean over the run's patterns (deciding readout)."""
    spc = _probe_spc(table)
    return float(min((spc[twin] - spc[partner(cfg, twin)]).mean() for twin in TWIN_OF))


def _as_partners(table: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The table with each twin's encoder probing as its position-free partner."""
    for twin in TWIN_OF:
        table = substitute(table, "trained_for", twin, partner(cfg, twin),
                           where=table.experiment == "probe")
    return table


def _as_padding(table: pd.DataFrame, padding: str, like: str) -> pd.DataFrame:
    """The table with the task scores of ``padding`` replaced by those of ``like``."""
    return substitute(table, "padding", padding, like, where=table.experiment == "task")


def _as_classifier(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the saliency and segmentation encoders probing as the classifier."""
    for task in TRAINED_FOR[1:]:
        table = substitute(table, "trained_for", task, "classification",
                           where=table.experiment == "probe")
    return table


def check_claims(table: pd.DataFrame, cfg: Config) -> list[Claim]:
    """The findings T1-T4, each decided from the replicates of this run's ``table`` (column
    ``replicate``), with controls in which the compared networks are made the same."""
    fm, mae = _task_metric(table, "saliency", "f_measure"), _task_metric(table, "saliency", "mae")
    miou = _task_metric(table, "segmentation", "miou")
    spc = _probe_spc(table).loc[["H", "G"]]
    reading = f"{DECIDING[0].replace('_', ' ')} readout on {cfg.probe_stage}"
    pair = lambda df: "; ".join(  # noqa: E731
        f"{t}: {df.loc[t, 'zero']:.3f} vs {df.loc[t, 'none']:.3f}" for t in df.index)
    lead = {t: per_replicate(table, lambda d, t=t: _padding_lead(d, t)) for t in ("saliency", "segmentation")}
    flat = _as_padding(table, "zero", "none")
    t3 = per_replicate(table, _dense_lead)
    return [
        tested("T1", "With zero padding, saliency is better (\"VGG without padding achieves much "
               "worse results on both of the metrics\"): higher F-measure and lower MAE than the "
               "same network without padding, on every test set.",
               "F .78/.66/.63 vs .36/.32/.25, MAE .17/.21/.18 vs .48 "
               "(ECSSD/PASCAL-S/DUT-OMRON, Table 5a)",
               f"means: F-measure {pair(fm)}; MAE {pair(mae)} (with vs without padding)",
               Rule("lowest lead of zero padding over none in F-measure and in MAE, every test set",
                    "above", 0.0), lead["saliency"],
               per_replicate(flat, lambda d: _padding_lead(d, "saliency"))),
        tested("T2", "With zero padding, segmentation is better (\"the model with zero padding "
               "significantly outperforms the model with no padding\"): higher mIoU than without "
               "padding.",
               "mIoU 23.1% vs 12.3% (VOC 2012 val, Table 5b)",
               f"means: mIoU {pair(miou * 100)} (%, with vs without padding)",
               Rule("lowest mIoU lead of zero padding over none, every test set", "above", 0.0),
               lead["segmentation"], per_replicate(flat, lambda d: _padding_lead(d, "segmentation"))),
        tested("T3", "The encoders trained for saliency and for segmentation hold more position than "
               "the one trained for classification (\"outperform VGG by a large margin\"): higher "
               "readout SPC for H and G on natural images.",
               "H .969 (SOD), .982 (SS) vs .742; G .948, .971 vs .814 (Table 6; the paper's "
               "readout, all stages)",
               "means: " + "; ".join(f"{p}: " + ", ".join(f"{t} {spc.loc[p, t]:.3f}" for t in TRAINED_FOR)
                                     for p in spc.index),
               Rule(f"lowest natural-image SPC lead of the saliency and segmentation encoders over "
                    f"the classification encoder (H, G; {reading})", "above", 0.05,
                    "'a large margin': a third of the paper's smallest lead, .13"), t3,
               per_replicate(_as_classifier(table), _dense_lead)),
        _t4_claim(table, cfg),
    ]


def _t4_claim(table: pd.DataFrame, cfg: Config) -> Claim:
    """T4: the position-dependent twins hold more position than their position-free partners
    (deciding readout), with each partner in place of its twin as the control."""
    twins = _probe_spc(table)
    reading = f"{DECIDING[0].replace('_', ' ')} readout on {cfg.probe_stage}"
    t4 = per_replicate(table, lambda d: _twin_lead(d, cfg))
    claim = ("A task that needs position leaves more of it in its encoder (the paper's reason for "
             "Table 6: these are \"position-dependent tasks\", so models trained on them \"can "
             "learn more position information\"): on the same scenes, with the same network and "
             "budget, the encoder of the twin whose labels depend on where objects are holds "
             "more position than the encoder of the position-free task.")
    ours = "means: " + "; ".join(
        f"{twin} vs {partner(cfg, twin)}: " + ", ".join(
            f"{p} {twins.loc[p, twin]:.3f} vs {twins.loc[p, partner(cfg, twin)]:.3f}"
            for p in twins.index) for twin in TWIN_OF)
    rule = Rule(f"lower over the two twins of the natural-image SPC lead over the position-free "
                f"partner, mean over {', '.join(cfg.patterns)} ({reading})", "above", 0.05,
                "the margin T3 asks of the paper's 'large margin', since this is the reason "
                "offered for it")
    return tested("T4", claim, "not tested in the paper (its dense tasks differ from "
                  "classification in more than the need for position)", ours, rule, t4,
                  per_replicate(_as_partners(table, cfg), lambda d: _twin_lead(d, cfg)))


def prose_numbers(table: pd.DataFrame, claims: list, classification_record: dict,
                  cfg: Config) -> dict[str, str]:
    """The numbers and verdicts the chapter's "Reading the numbers" quotes, from this run (on the
    first test set of each task), as glue variables (see ``posinfo.book.results.glue_prose``)."""
    fm, mae = _task_metric(table, "saliency", "f_measure"), _task_metric(table, "saliency", "mae")
    miou = _task_metric(table, "segmentation", "miou")
    out = holds_by_id(claims)
    out |= {f"{name}_{pad}": decimal(frame.iloc[0][pad], digits) for name, frame, digits in
            (("f", fm, 2), ("mae", mae, 3)) for pad in ("zero", "none")}
    out |= {f"miou_{pad}": f"{100 * miou.iloc[0][pad]:.0f}" for pad in ("zero", "none")}
    out["classifier_accuracy"] = (f"{classification_record['val_accuracy']:.0%}"
                                  if classification_record else "not measured")
    out |= _border_prose(table, fm.index[0]) | _probe_prose(table, cfg) | _twin_prose(table, cfg)
    out["twin_reading"] = _TWIN_READING[next(c.verdict for c in claims if c.id == "T4")]
    return out


_TWIN_READING = {
    "holds": "So in this run the twins' need for position left more of it in their encoders than "
             "their partners' tasks did, on the same images and budget",
    "fails": "So in this run the need for position did not leave measurably more position in "
             "the encoders",
    "inconclusive": "The replicates of this run cannot yet tell whether the need for position "
                    "leaves more of it in the encoders",
}


def _twin_prose(table: pd.DataFrame, cfg: Config) -> dict[str, str]:
    """How well each twin and its partner learned their tasks (held-out scenes, means)."""
    scores = twin_table(table, cfg)
    central, thirds = TWIN_OF
    return {"f_central": decimal(scores.loc[(central, central), "f_measure"]),
            "f_central_partner": decimal(scores.loc[(central, partner(cfg, central)), "f_measure"]),
            "miou_thirds": f"{100 * scores.loc[(thirds, thirds), 'miou']:.0f}",
            "miou_thirds_partner": f"{100 * scores.loc[(thirds, partner(cfg, thirds)), 'miou']:.0f}"}


def _border_prose(table: pd.DataFrame, test_set: str) -> dict[str, str]:
    """Saliency MAE in the border band and the interior, with and without padding, in words."""
    sel = table[(table.experiment == "task") & (table.task == "saliency") & (table.test_set == test_set)]
    v = sel.groupby(["metric", "padding"]).value.mean()
    out = {f"mae_{r}_{pad}": decimal(v[f"mae_{r}", pad], 3)
           for r in ("border", "interior") for pad in ("zero", "none")}
    rise = {r: v[f"mae_{r}", "none"] - v[f"mae_{r}", "zero"] for r in ("border", "interior")}
    out["where_cost"] = _where_cost(rise["border"], rise["interior"])
    return out


def _where_cost(border: float, interior: float) -> str:
    """Where removing the padding raised the saliency MAE (``border``, ``interior``: the rises),
    in words that follow the signs."""
    if border <= 0 and interior <= 0:
        return "removing the padding did not raise the error in either region"
    if interior > border:
        return ("the interior's error rose more than the border band's, so the cost is not "
                "confined to the border (consistent with the unpadded network's stretched maps "
                "putting every stage's content in the wrong place, not only near the edge)")
    return "the border band's error rose more than the interior's, so most of the cost sits near the edge"


def _key(name: str) -> str:
    """A probed encoder's name as part of a glue key ("central saliency" -> "central_saliency")."""
    return name.replace(" ", "_").replace("(", "").replace(")", "")


def _probe_prose(table: pd.DataFrame, cfg: Config) -> dict[str, str]:
    """Natural-image SPC of H and G per encoder with Table 6's readout (``spc_*``) and the
    deciding one (``ls_*``; every pattern and encoder), whether every task lowered what Table 6's
    readout finds, and each twin's mean lead over its partner."""
    paper, ls = _probe_spc(table, ("sgd", "all")), _probe_spc(table)
    out = {f"spc_{p}_{_key(t)}": decimal(paper.loc[p, t]) for p in ("H", "G") for t in paper.columns}
    out |= {f"ls_{p}_{_key(t)}": decimal(ls.loc[p, t]) for p in ls.index for t in ls.columns}
    lowered = all(paper.loc[p, t] < paper.loc[p, "untrained"] for p in ("H", "G") for t in TRAINED_FOR)
    out["training_effect"] = ("every task lowered what the readout finds" if lowered else
                              "not every task lowered what the readout finds")
    out |= {f"lead_{_key(twin)}": f"{(ls[twin] - ls[partner(cfg, twin)]).mean():+.3f}"
            for twin in TWIN_OF}
    return out


# --- figures and summary ----------------------------------------------------------------------------


def border_examples(mask: Tensor, k: int = 2) -> list[int]:
    """Indices of ``k`` test images whose objects cover the most of the border band, then the
    image whose objects cover the least of it (an object in the middle)."""
    cover = (mask > 0)[:, border_band(mask.shape[-1])].float().mean(1)
    order = cover.argsort(descending=True).tolist()
    return order[:k] + order[-1:]


def _example_panels(run: TaskRun, task: str, test_set: str, k: int) -> list[list]:
    """For ``k`` border images and one central image of a test set: the image, the truth and
    the predictions with and without padding (``[S, S, 3]`` arrays and ``[S, S]`` maps)."""
    images, truth = run.data[task].tests[test_set]
    objects = (truth > 0) & (truth != IGNORE)
    return [[images[i].permute(1, 2, 0).numpy(), truth[i].where(truth[i] != IGNORE, 0)]
            + [run.predictions[(task, pad, test_set)][i] for pad in TASK_PADDINGS]
            for i in border_examples(objects.float(), k)]


def plot_examples(run: TaskRun, k: int = 2) -> plt.Figure:
    """Both tasks' networks with and without padding on the first test set of each task: per
    row, an image whose objects cover much of the border band (the last row: the least)."""
    rows = [sum(parts, []) for parts in zip(*(_example_panels(run, t, next(iter(run.data[t].tests)), k)
                                              for t in ("saliency", "segmentation")))]
    cols = [f"{t}: {c}" if c == "image" else c for t in ("saliency", "segmentation")
            for c in ("image", "truth", "with padding", "without padding")]
    classes = run.data["segmentation"].num_outputs - 1
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.4 * len(cols), 1.5 * len(rows)),
                             squeeze=False)
    for r, panels in enumerate(rows):
        for c, panel in enumerate(panels):
            style = ({} if c % 4 == 0 else dict(cmap="gray", vmin=0, vmax=1) if c < 4
                     else dict(cmap="tab20", vmin=0, vmax=classes))
            axes[r, c].imshow(np.asarray(panel), interpolation="nearest", **style)
    for c, title in enumerate(cols):
        axes[0, c].set_title(title, fontsize=7)
    return plots.image_panels(fig)


def plot_twins(run: TaskRun, cfg: Config, k: int = 3) -> plt.Figure:
    """The first ``k`` held-out scenes of the twins (all of them when there are fewer): per row
    the image, then for each pair the twin's truth, the twin's prediction and the position-free
    partner's prediction."""
    cols = ["image"]
    for twin in TWIN_OF:
        cols += [f"{twin}: truth", twin, partner(cfg, twin)]
    images = next(iter(run.data[next(iter(TWIN_OF))].tests.values()))[0]
    k = min(k, len(images))
    fig, axes = plt.subplots(k, len(cols), figsize=(1.4 * len(cols), 1.5 * k), squeeze=False)
    for r in range(k):
        axes[r, 0].imshow(images[r].permute(1, 2, 0).numpy())
        for i, twin in enumerate(TWIN_OF):
            test_set, (_, truth) = next(iter(run.data[twin].tests.items()))
            maps = [truth[r], run.predictions[(twin, "zero", test_set)][r],
                    run.predictions[(partner(cfg, twin), "zero", test_set)][r]]
            top = max(1, run.data[twin].num_outputs - 1)
            for j, m in enumerate(maps):
                style = (dict(cmap="gray", vmin=0, vmax=1) if top == 1   # tab10: class k in colour k
                         else dict(cmap="tab10", vmin=-0.5, vmax=9.5))
                axes[r, 1 + 3 * i + j].imshow(np.asarray(m), interpolation="nearest", **style)
    for c, title in enumerate(cols):
        axes[0, c].set_title(title, fontsize=7)
    return plots.image_panels(fig)


def regression_summary(table: pd.DataFrame, claims: Sequence[Claim], cfg: Config
                       ) -> dict[str, Any]:
    """Facts a regression would change, for nbval: rows written, test sizes, claim ids."""
    results = read_back(cfg.results_dir, claims, {"experiment", "metric"})
    tasks = table[table.experiment == "task"]
    probes = table[table.experiment == "probe"]
    return {"rows": len(results), "task_scores": len(tasks), "probe_scores": len(probes),
            "trained_for": sorted(probes.trained_for.unique()),
            "replicates": int(table.replicate.nunique()), "claims": [c.id for c in claims]}
