import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from posinfo.book.params import resolve
from posinfo.chapters import ch04_padding_in_tasks as pit
from posinfo.data.datasets import DatasetNotFoundError
from posinfo.data.scenes import CLASS_NAMES, SyntheticScenes

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"


def config(tmp_path, profile="smoke", **knobs):
    return resolve(pit.SPEC, dict(profile=profile, seed=0, device="cpu", data_root=str(tmp_path),
                                  out_dir=str(tmp_path / "out")) | knobs)


@pytest.fixture
def data_root(tmp_path):
    """The fixtures laid out as every dataset of the paper profile (saliency sets copied from
    the PASCAL-S fixture into each dataset's own layout)."""
    root = tmp_path / "data"
    for name in ("VOCdevkit", "PASCAL-S", "DUTS-TR"):
        shutil.copytree(FIXTURES / name, root / name)
    for folder, images, masks in (("MSRA-B", "Imgs", "Masks"), ("ECSSD", "images", "ground_truth_mask"),
                                  ("DUT-OMRON", "DUT-OMRON-image", "pixelwiseGT-new-PNG")):
        shutil.copytree(FIXTURES / "PASCAL-S" / "Imgs", root / folder / images)
        shutil.copytree(FIXTURES / "PASCAL-S" / "Masks", root / folder / masks)
    return root


def test_validation_before_work(tmp_path, data_root):
    with pytest.raises(ValueError, match="at least 196 px"):
        pit.validate(config(tmp_path, image_size=128))
    with pytest.raises(ValueError, match="patterns H and G"):
        pit.validate(config(tmp_path, patterns=["H", "HS"]))
    with pytest.raises(ValueError, match="parameter 'arch' got 'resnet18'"):
        config(tmp_path, arch="resnet18")
    with pytest.raises(ValueError, match="vgg_width=1.0"):
        pit.validate(config(tmp_path, classification="imagenet"))
    with pytest.raises(DatasetNotFoundError, match="msra-b"):
        pit.validate(config(tmp_path, profile="paper", classification="synthetic"))
    pit.validate(config(tmp_path))
    # the fixtures are 20 x 16 px: fine on a grid of 14, too small for the paper's 28
    pit.validate(config(data_root, profile="paper", classification="synthetic", feature_size=14))
    with pytest.raises(ValueError, match=r"dataset 'msra-b': image file .*1\.jpg is 20 x 16 px; "
                                         "the book needs at least 28 px"):
        pit.validate(config(data_root, profile="paper", classification="synthetic"))


def test_voc_tensors_on_the_fixture():
    images, masks = pit.voc_tensors(FIXTURES, "train", 64)
    assert images.shape == (1, 3, 64, 64) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert masks.shape == (1, 64, 64) and masks.dtype == torch.int64
    values = set(masks.unique().tolist())
    assert 0 in values and values <= set(range(21)) | {255} and len(values - {0, 255}) >= 1


def test_paper_profile_data_on_the_fixtures(tmp_path, data_root):
    cfg = config(data_root, profile="paper", image_size=32, n_test=2)
    data = pit.task_data(cfg)
    sal, seg = data["saliency"], data["segmentation"]
    assert set(sal.tests) == set(pit.SALIENCY_TESTS) and sal.num_outputs == 1
    images, masks = sal.train(0)
    assert images.shape == (3, 3, 32, 32) and sal.n_train == 3
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    assert all(len(x) == 2 for x, _ in sal.tests.values())
    assert seg.num_outputs == 21 and list(seg.tests) == ["voc2012-val"]
    assert seg.train(3)[1].dtype == torch.int64


def test_both_tasks_see_the_same_scenes_of_the_chosen_classes(tmp_path):
    cfg = config(tmp_path)
    data = pit.task_data(cfg)
    images, masks = data["saliency"].train(0)
    same, classes = data["segmentation"].train(0)
    assert torch.equal(images, same) and torch.equal(masks, (classes > 0).float())
    assert data["segmentation"].num_outputs == len(cfg.scene_classes) + 1 == 4
    assert not torch.equal(data["saliency"].tests["scenes"][0][:1], images[:1])


def test_the_twins_see_the_same_scenes_with_labels_by_position(tmp_path):
    cfg = config(tmp_path)
    central, thirds = (pit.scene_task_data(cfg, t) for t in pit.TWIN_OF)
    images, everything = pit.scene_task_data(cfg, "saliency").train(1)
    same, centre = central.train(1)
    again, by_third = thirds.train(1)
    assert torch.equal(images, same) and torch.equal(images, again)
    assert (centre <= everything).all() and centre.sum() < everything.sum()
    assert torch.equal(by_third > 0, everything > 0) and int(by_third.max()) <= 3
    assert (central.num_outputs, thirds.num_outputs) == (1, 4)
    configs = {pit.dense_config(cfg, t, "zero", pit.scene_task_data(cfg, t)) for t in pit.SCENE_TASKS}
    assert len(configs) == 4  # every labelling has its own cached network
    assert pit.twin_jobs(cfg) == {t: t for t in pit.TWIN_OF}
    assert [pit.partner(cfg, t) for t in pit.TWIN_OF] == list(pit.PAPER_TASKS)


def test_off_the_scenes_the_twins_bring_their_own_partners(tmp_path, data_root):
    cfg = config(data_root, profile="paper", image_size=32)
    assert pit.twin_jobs(cfg) == {"central saliency": "central saliency",
                                  "thirds segmentation": "thirds segmentation",
                                  "saliency (scenes)": "saliency",
                                  "segmentation (scenes)": "segmentation"}
    tcfg = pit.twin_config(cfg)
    assert (tcfg.dataset, tcfg.n_train, tcfg.n_test) == ("scenes", cfg.twin_train, cfg.twin_test)
    with pytest.raises(ValueError, match="twin_train and twin_test"):
        pit.validate(config(data_root, dataset="msra-b+voc2012"))  # the smoke profile has none


def test_scene_classes_are_relabelled_in_order(tmp_path):
    cfg = config(tmp_path, scene_classes=["cross", "disk"])
    ids = [CLASS_NAMES.index("cross"), CLASS_NAMES.index("disk")]
    _, _, raw, _ = SyntheticScenes(6, cfg.image_size, 3, n_objects=pit.SCENE_OBJECTS,
                                   object_scale=pit.OBJECT_SCALE, classes=ids).tensors()
    _, classes = pit.scenes(cfg, 6, 3, "segmentation")
    _, saliency = pit.scenes(cfg, 6, 3, "saliency")
    expected = torch.zeros_like(raw)
    expected[raw == ids[0] + 1] = 1
    expected[raw == ids[1] + 1] = 2
    assert set(raw.unique().tolist()) <= {0, ids[0] + 1, ids[1] + 1}
    assert torch.equal(classes, expected) and classes.max() == 2
    assert torch.equal(saliency, (raw > 0).float())


def test_the_classification_encoder_has_its_own_budget(tmp_path):
    cfg = config(tmp_path)
    clf = pit.classification_config(cfg)
    assert (clf.image_size, clf.n_train, clf.epochs) == (cfg.classification_size,
                                                        cfg.classification_images,
                                                        cfg.classification_epochs)
    with pytest.raises(ValueError, match="classification_images"):
        pit.validate(config(tmp_path, classification_images=0))


def test_networks_trained_on_other_scene_classes_are_not_reused(tmp_path):
    three, two = config(tmp_path), config(tmp_path, scene_classes=["disk", "cross"])
    data = pit.task_data(three)["saliency"]
    assert pit.dense_config(three, "saliency", "zero", data) != pit.dense_config(two, "saliency",
                                                                               "zero", data)
    with pytest.raises(ValueError, match="distinct"):
        pit.validate(config(tmp_path, scene_classes=["disk", "disk"]))


def test_border_scores_by_hand():
    mask = torch.zeros(1, 16, 16)
    pred = torch.zeros(1, 16, 16)
    pred[0, 0, :] = 1.0  # wrong on the top row, which lies in the border band (2 px at 16)
    s = pit.saliency_scores(pred, mask)
    band = pit.border_band(16)
    assert band.sum() == 16 * 16 - 12 * 12
    assert s["mae_interior"] == 0 and s["mae_border"] == pytest.approx(16 / band.sum().item())
    target = torch.ones(1, 16, 16, dtype=torch.int64)
    target[0, 8, 8] = 255
    seg = target.clone()
    seg[0, 8, 8] = 0
    seg[0, 0, 0] = 2
    scores = pit.segmentation_scores(seg, target, 3)
    assert scores["error_interior"] == 0 and scores["error_border"] == pytest.approx(1 / 112)
    assert scores["miou"] == pytest.approx(254 / 255 / 2)  # class 1: 254 of 255 valid pixels; class 2: IoU 0


def fake_table(f, mae, miou, spc, replicates=3, jitter=0.01, readouts=None):
    """Task scores and probe SPCs (trained for ``PROBED``; the same with every readout unless
    ``readouts`` maps a (readout, stage) to other values) in each replicate, moved by ``jitter``
    times (replicate - 1)."""
    tables = []
    for r in range(replicates):
        d = jitter * (r - 1)
        rows = [dict(experiment="task", task="saliency", padding=p, test_set="scenes", metric=m, value=v + d)
                for m, vals in (("f_measure", f), ("mae", mae)) for p, v in zip(pit.TASK_PADDINGS, vals)]
        rows += [dict(experiment="task", task="segmentation", padding=p, test_set="scenes", metric="miou",
                      value=v + d) for p, v in zip(pit.TASK_PADDINGS, miou)]
        rows += [dict(experiment="twin task", task=t, padding="zero", test_set="scenes", metric=m,
                      value=v + d) for t, m, v in (("central saliency", "f_measure", 0.5),
                                                   ("central saliency", "mae", 0.1),
                                                   ("thirds segmentation", "miou", 0.25))]
        for readout, stage in pit.PROBE_READOUTS:
            values = (readouts or {}).get((readout, stage), spc)
            rows += [dict(experiment="probe", trained_for=t, readout=readout, stage=stage, pattern=p,
                          test_set=ts, metric=m, value=v + d)
                     for p in ("H", "G", "HS") for t, v in zip(pit.PROBED, values)
                     for ts in ("natural", "black", "white", "noise") for m in ("spc_paper", "mae")]
        tables.append(pd.DataFrame(rows).assign(replicate=r))
    return pd.concat(tables, ignore_index=True)


# PROBED: classification, saliency, segmentation, untrained, central saliency, thirds segmentation
def test_claims_hold_and_fail(tmp_path):
    cfg = config(tmp_path)
    good = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.9, 0.6, 0.97, 0.99])
    claims = pit.check_claims(good, cfg)
    assert [c.id for c in claims] == ["T1", "T2", "T3", "T4"]
    assert [c.holds for c in claims] == [True, True, True, True]
    assert all(c.control != "holds" and c.n == 3 for c in claims)
    bad = fake_table([0.8, 0.4], [0.4, 0.3], [0.1, 0.1], [0.9, 0.95, 0.8, 0.9, 0.9, 0.99])
    assert [c.verdict for c in pit.check_claims(bad, cfg)] == ["fails", "inconclusive", "fails",
                                                                "fails"]


def test_t3_and_t4_are_decided_on_the_least_squares_readout_of_one_stage(tmp_path):
    """Table 6's readout (SGD, all stages) says the dense encoders hold less, the deciding one
    (least squares on probe_stage) that they hold more: the claims follow the deciding one."""
    cfg = config(tmp_path)
    table = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.9, 0.5, 0.5, 0.9, 0.4, 0.4],
                       readouts={("least_squares", "stage"): [0.7, 0.9, 0.9, 0.9, 0.99, 0.99]})
    t3, t4 = pit.check_claims(table, cfg)[2:]
    assert (t3.verdict, t4.verdict) == ("holds", "holds")
    assert t4.effect == pytest.approx(0.09)
    assert "least squares readout on f5" in t3.rule and "least squares readout on f5" in t4.rule


def test_t4_needs_both_twins(tmp_path):
    cfg = config(tmp_path)
    one = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.8, 0.8, 0.6, 0.95, 0.8])
    t4 = pit.check_claims(one, cfg)[3]
    assert t4.verdict == "fails" and t4.effect == pytest.approx(0.0, abs=1e-9)
    both = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.8, 0.8, 0.6, 0.95, 0.9])
    assert pit.check_claims(both, cfg)[3].effect == pytest.approx(0.1)


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Networks with and without padding that score alike, and encoders that hold the same
    position: no finding holds."""
    table = fake_table([0.5, 0.5], [0.2, 0.2], [0.2, 0.2], [0.8] * 6)
    assert not any(c.holds for c in pit.check_claims(table, config(tmp_path)))


def test_tables_beside_the_paper(tmp_path):
    table = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.95, 0.6, 0.9, 0.9])
    t5 = pit.table5(table)
    assert list(t5.index) == ["VGG", "VGG w/o padding"]
    assert t5.loc["VGG", ("paper", "ecssd", "f_measure")] == 0.78
    assert t5.loc["VGG w/o padding", ("ours", "scenes", "miou_%")] == pytest.approx(10.0)
    t6 = pit.table6(table, config(tmp_path))
    assert t6.shape == (12, 16)  # the paper's three encoders and the untrained start, three patterns
    assert t6.loc[("G", "untrained"), ("natural", "spc", "ours")] == 0.6
    assert pd.isna(t6.loc[("G", "untrained"), ("natural", "spc", "paper")])
    assert t6.loc[("H", "segmentation"), ("natural", "spc", "paper")] == 0.982
    assert t6.loc[("H", "segmentation"), ("natural", "spc", "ours")] == 0.95
    probes = pit.probe_table(table, config(tmp_path))
    assert list(probes.columns) == [("sgd", "all"), ("least_squares", "all"), ("least_squares", "f5")]
    assert probes.loc[("G", "untrained"), ("sgd", "all")] == 0.6
    assert probes.loc[("HS", "thirds segmentation"), ("least_squares", "f5")] == 0.9


def test_border_examples():
    mask = torch.zeros(4, 16, 16)
    mask[1, :4, :4] = 1  # in the corner
    mask[2, :2, :] = 1  # along the top: most of the band
    mask[3, 7:9, 7:9] = 1  # in the middle
    assert pit.border_examples(mask, k=2) == [2, 1, 3] or pit.border_examples(mask, k=2)[:2] == [2, 1]


def test_examples_figures(tmp_path):
    cfg = config(tmp_path, n_test=4)
    data = {t: pit.scene_task_data(cfg, t) for t in pit.SCENE_TASKS}
    preds = {(t, p, "scenes"): data[t].tests["scenes"][1] for t in data for p in pit.TASK_PADDINGS}
    run = pit.TaskRun({}, {}, data, preds)
    fig = pit.plot_examples(run, k=1)
    assert len(fig.axes) == 2 * 8
    assert fig.axes[0].get_title() == "saliency: image"
    twins = pit.plot_twins(run, cfg, k=2)
    assert len(twins.axes) == 2 * 7 and twins.axes[2].get_title() == "central saliency"
    assert len(pit.plot_twins(run, cfg, k=9).axes) == 4 * 7  # no more rows than test scenes


def test_probe_fits_least_squares_on_all_stages_only_when_asked(tmp_path):
    assert pit.probe_readouts(config(tmp_path)) == pit.PROBE_READOUTS
    kept = pit.probe_readouts(config(tmp_path, least_squares_all=False))
    assert ("least_squares", "all") not in kept and pit.DECIDING in kept and ("sgd", "all") in kept


def test_where_padding_matters_reports_the_changes():
    rows = [dict(experiment="task", task="saliency", padding=p, test_set="scenes", metric=m, value=v)
            for p, vals in (("zero", (0.1, 0.05)), ("none", (0.4, 0.06)))
            for m, v in zip(("mae_border", "mae_interior"), vals)]
    text = pit.where_padding_matters(pd.DataFrame(rows)).data
    assert "+0.300 in the border band (0.100 -> 0.400)" in text and "+0.010 in the interior" in text


def test_the_untrained_probe_is_where_the_dense_networks_start(tmp_path):
    from posinfo.models.dense import build_network
    from posinfo.models.encoders import build_encoder
    cfg = config(tmp_path)
    data = pit.task_data(cfg)
    start = build_network(pit.dense_config(cfg, "saliency", "zero", data["saliency"])).encoder
    untrained = build_encoder(cfg.arch, "random", width=cfg.vgg_width, seed=cfg.seed)
    ours, theirs = start.state_dict(), untrained.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert pit.PROBED[3] == "untrained" and pit.PROBED[:3] == pit.TRAINED_FOR


def test_prose_numbers_follow_the_table(tmp_path):
    cfg = config(tmp_path)
    table = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.95, 0.96, 0.99, 0.97])
    border = [dict(experiment="task", task="saliency", padding=p, test_set="scenes",
                   metric=f"mae_{r}", value=v)
              for p, r, v in (("zero", "border", 0.01), ("none", "border", 0.05),
                              ("zero", "interior", 0.02), ("none", "interior", 0.12))]
    table = pd.concat([table, pd.DataFrame(border)], ignore_index=True)
    claims = pit.check_claims(table, cfg)
    words = pit.prose_numbers(table, claims, {"val_accuracy": 0.923}, cfg)
    assert [words[k] for k in ("t1", "t2", "t3")] == ["holds", "holds", "holds"]
    assert (words["f_zero"], words["f_none"], words["mae_none"]) == (".80", ".40", ".300")
    assert (words["miou_zero"], words["classifier_accuracy"]) == ("30", "92%")
    assert words["mae_interior_none"] == ".120" and words["where_cost"].startswith("the interior's error rose more")
    assert pit._where_cost(-0.1, -0.2).startswith("removing the padding did not raise")
    assert pit._where_cost(0.3, 0.1).startswith("the border band's error rose more")
    assert words["spc_G_untrained"] == ".96" and words["ls_HS_central_saliency"] == ".99"
    assert (words["lead_central_saliency"], words["lead_thirds_segmentation"]) == ("+0.090", "+0.020")
    assert words["training_effect"] == "every task lowered what the readout finds"
    assert words["t4"] == "does not hold"  # the thirds twin leads by .02 only
    assert words["twin_reading"].startswith("So in this run the need for position did not")
    assert (words["f_central"], words["f_central_partner"]) == (".50", ".80")
    assert (words["miou_thirds"], words["miou_thirds_partner"]) == ("25", "30")
    twins = pit.twin_table(table, cfg)
    assert list(twins.index) == [("central saliency", "saliency"), ("central saliency", "central saliency"),
                                 ("thirds segmentation", "segmentation"),
                                 ("thirds segmentation", "thirds segmentation")]
    words = pit.prose_numbers(table, claims, {}, cfg)
    assert words["classifier_accuracy"] == "not measured"


def test_validation_decodes_voc_and_every_saliency_set_before_work(data_root):
    cfg = config(data_root, profile="paper", classification="synthetic", feature_size=14)
    assert [(n, s) for n, s, _ in pit.dataset_reads(cfg)] == [
        ("msra-b", None), ("ecssd", None), ("dut-omron", None), ("pascal-s", None),
        ("voc2012", "train"), ("voc2012", "val"), ("duts-train", None)]
    mask = data_root / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000039.png"
    mask.write_bytes(mask.read_bytes()[:100])  # val's mask, truncated
    with pytest.raises(ValueError, match=r"dataset 'voc2012': malformed image file .*2007_000039\.png"):
        pit.validate(cfg)
    shutil.copy(FIXTURES / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000039.png", mask)
    image = data_root / "DUT-OMRON" / "DUT-OMRON-image" / "2.jpg"
    image.write_bytes(image.read_bytes()[:150])
    with pytest.raises(ValueError, match=f"dataset 'dut-omron': malformed image file {image}"):
        pit.validate(cfg)
    pit.validate(config(data_root, profile="paper", classification="synthetic", feature_size=14,
                        n_test=1, probe_test=1))  # 2.jpg is the third: not read
