import importlib
import json
from types import SimpleNamespace

import pytest
from posinfo.book import scale, workloads
from posinfo.book.contract import module_name
from posinfo.data.datasets import DATASETS


def chapter(stem: str):
    return importlib.import_module(module_name(stem))


@pytest.mark.parametrize("stem", list(workloads.PAPER_KNOBS))
def test_the_copied_knobs_are_the_chapters_paper_profile(stem):
    paper = chapter(stem).SPEC.profiles["paper"]
    copied = workloads.PAPER_KNOBS[stem]
    assert {k: paper[k] for k in copied} == copied


def test_the_copied_constants_are_the_chapters():
    assert workloads.CONTENT_PATTERNS == chapter("02_ablations").CONTENT_PATTERNS
    tasks = chapter("04_padding_in_tasks")
    assert (workloads.SALIENCY_TESTS, workloads.TASK_PADDINGS, workloads.VOC_CLASSES) == (
        tasks.SALIENCY_TESTS, tasks.TASK_PADDINGS, tasks.VOC_CLASSES)
    assert workloads.ANALYSIS_BATCH == chapter("05_gap_channels").ANALYSIS_BATCH
    assert workloads.PAPER_MODELS == chapter("06_augshift").PAPER_MODELS
    assert workloads.ATTACK_RANKINGS == len(chapter("07_region_attacks").ATTACK_RANKINGS)
    paper = SimpleNamespace(**tasks.SPEC.profiles["paper"])
    assert set(workloads.twin_outputs(workloads.PAPER_KNOBS["04_padding_in_tasks"])) == set(
        tasks.twin_jobs(paper))


@pytest.mark.parametrize("name, split", [("pascal-s", "pascal-s"), ("msra-b", "msra-b"),
                                         ("ecssd", "ecssd"), ("dut-omron", "dut-omron"),
                                         ("duts-train", "duts-train"), ("voc2012", "voc2012-train"),
                                         ("voc2012", "voc2012-val"), ("cityscapes", "cityscapes-val"),
                                         ("cifar10", "cifar10-train"), ("cifar10", "cifar10-test")])
def test_the_dataset_sizes_are_those_the_datasets_describe(name, split):
    assert f"{workloads.DATASET_IMAGES[split]:,}" in DATASETS[name].description


def test_the_measured_encoders_match_their_published_flops():
    # torchvision: VGG16 15.47 GMACs (the classifier's 0.12 left out), ResNet-152 11.51 GMACs
    assert workloads.encoder_footprint("vgg16", 224, 28).flops == pytest.approx(2 * 15.35e9, rel=0.01)
    assert workloads.encoder_footprint("resnet152", 224, 28).flops == pytest.approx(2 * 11.51e9, rel=0.01)


def test_least_squares_peaks_at_three_d_by_d_float64_matrices():
    step = workloads.least_squares_step("x", 2000, 3840, 28, targets=5, ram=0.0)
    d = 3840 * 9 + 1
    assert step.gpu_bytes == 3 * d * d * 8
    assert "34,561" in step.note
    # the Gram matrices: 2 FLOPs per product, 676 patches per image, every image
    assert step.fp32_flops >= 2 * 2000 * 676 * d * d


def test_chapter_2_trains_each_readout_once():
    runs = workloads.ablation_readouts(workloads.PAPER_KNOBS["02_ablations"])
    # raw and VGG16: 3 depths and 3 kernels sharing the default; VGG16's 5 stages; ResNet-152's default
    assert len(runs) == len(set(runs)) == 2 * 5 + 5 + 1
    # the default readout (one 3x3 layer on all levels) of every source also learns H, V, G
    assert [r for r in runs if r[-1] == 4] == [("raw", "all", 3, 1, 3, 4),
                                               ("resnet152", "all", 3840, 1, 3, 4),
                                               ("vgg16", "all", 1472, 1, 3, 4)]
    assert [r[2] for r in runs if r[1].startswith("f")] == [64, 128, 256, 512, 512]


def test_chapter_3_caches_the_features_of_every_padding():
    k = workloads.PAPER_KNOBS["03_padding"]
    projection = workloads.padding(k)
    one = (2000 + 850) * 1472 * 28 * 28 * 2
    assert projection.figures()["disk_gb"] * scale.GB == pytest.approx((len(k["borders"]) + 1) * one)
    assert projection.shared_disk_bytes == one


def test_chapter_6_trains_the_lambda_sweep_but_its_cached_run():
    runs = workloads.augshift_trainings(workloads.PAPER_KNOBS["06_augshift"])
    assert len(runs) == 3 * 3 + 1 + 3 and sum(views == 2 for _, views in runs) == 3 + 1 + 3


def test_more_epochs_cost_more_hours_and_can_miss_the_target():
    k = workloads.PAPER_KNOBS["06_augshift"]
    short, long = (workloads.augshift_chapter(k | dict(epochs=e)) for e in (6, 600))
    assert long.steps[0].gpu_hours == pytest.approx(100 * short.steps[0].gpu_hours)
    assert short.fits()["gpu_hours"] and not long.fits()["gpu_hours"]


@pytest.fixture(scope="module")
def entries():
    return workloads.paper_scale()


def test_the_json_has_the_four_figures_for_every_chapter(entries):
    assert list(entries) == list(workloads.PAPER_KNOBS)
    json.dumps(entries)
    for entry in entries.values():
        assert all(isinstance(entry[k], float) and entry[k] >= 0 for k in scale.FIGURES)
        assert entry["fits_targets"] == all(entry["fits"].values())
        assert set(entry["assumptions"]) == set(scale.FIGURES)


def test_the_region_attacks_are_scored_from_one_backbone_pass(entries):
    attack = entries["07_region_attacks"]["steps"][1]
    assert attack["what"].startswith("105 attacks")
    backbone, head = workloads.deeplab_footprints(1024)
    assert head.flops < backbone.flops  # the head alone runs per attack


def test_unknown_chapters_are_refused():
    with pytest.raises(ValueError, match="no scale model"):
        workloads.paper_scale(["08_nothing"])
