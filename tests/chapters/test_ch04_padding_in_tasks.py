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


def test_scene_classes_are_relabelled_in_order(tmp_path):
    cfg = config(tmp_path, scene_classes=["cross", "disk"])
    ids = [CLASS_NAMES.index("cross"), CLASS_NAMES.index("disk")]
    _, _, raw, _ = SyntheticScenes(6, cfg.image_size, 3, object_scale=pit.OBJECT_SCALE,
                                   classes=ids).tensors()
    _, classes, saliency = pit.scenes(cfg, 6, 3)
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


def fake_table(f, mae, miou, spc, replicates=3, jitter=0.01):
    """Task scores and probe SPCs (trained for ``PROBED``) in each replicate, moved by
    ``jitter`` times (replicate - 1)."""
    tables = []
    for r in range(replicates):
        d = jitter * (r - 1)
        rows = [dict(experiment="task", task="saliency", padding=p, test_set="scenes", metric=m, value=v + d)
                for m, vals in (("f_measure", f), ("mae", mae)) for p, v in zip(pit.TASK_PADDINGS, vals)]
        rows += [dict(experiment="task", task="segmentation", padding=p, test_set="scenes", metric="miou",
                      value=v + d) for p, v in zip(pit.TASK_PADDINGS, miou)]
        rows += [dict(experiment="probe", trained_for=t, pattern=p, test_set=ts, metric=m, value=v + d)
                 for p in ("H", "G", "HS") for t, v in zip(pit.PROBED, spc)
                 for ts in ("natural", "black", "white", "noise") for m in ("spc_paper", "mae")]
        tables.append(pd.DataFrame(rows).assign(replicate=r))
    return pd.concat(tables, ignore_index=True)


def test_claims_hold_and_fail(tmp_path):
    cfg = config(tmp_path)
    good = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.95])
    claims = pit.check_claims(good, cfg)
    assert [c.holds for c in claims] == [True, True, True]
    assert all(c.control != "holds" and c.n == 3 for c in claims)
    bad = fake_table([0.8, 0.4], [0.4, 0.3], [0.1, 0.1], [0.9, 0.95, 0.8])
    assert [c.verdict for c in pit.check_claims(bad, cfg)] == ["fails", "inconclusive", "fails"]


def test_no_claim_holds_on_null_inputs(tmp_path):
    """Networks with and without padding that score alike, and four encoders that hold the same
    position: no finding holds."""
    table = fake_table([0.5, 0.5], [0.2, 0.2], [0.2, 0.2], [0.8, 0.8, 0.8, 0.8])
    assert not any(c.holds for c in pit.check_claims(table, config(tmp_path)))


def test_tables_beside_the_paper(tmp_path):
    table = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.95, 0.6])
    t5 = pit.table5(table)
    assert list(t5.index) == ["VGG", "VGG w/o padding"]
    assert t5.loc["VGG", ("paper", "ecssd", "f_measure")] == 0.78
    assert t5.loc["VGG w/o padding", ("ours", "scenes", "miou_%")] == pytest.approx(10.0)
    t6 = pit.table6(table, config(tmp_path))
    assert t6.shape == (12, 16)
    assert t6.loc[("H", "segmentation"), ("natural", "spc", "paper")] == 0.982
    assert t6.loc[("G", "untrained"), ("natural", "spc", "ours")] == 0.6
    assert pd.isna(t6.loc[("G", "untrained"), ("natural", "spc", "paper")])
    assert t6.loc[("H", "segmentation"), ("natural", "spc", "ours")] == 0.95


def test_border_examples():
    mask = torch.zeros(4, 16, 16)
    mask[1, :4, :4] = 1  # in the corner
    mask[2, :2, :] = 1  # along the top: most of the band
    mask[3, 7:9, 7:9] = 1  # in the middle
    assert pit.border_examples(mask, k=2) == [2, 1, 3] or pit.border_examples(mask, k=2)[:2] == [2, 1]


def test_examples_figure(tmp_path):
    cfg = config(tmp_path, n_test=4)
    tests = pit.scene_test(cfg)
    data = {t: pit.TaskData(None, 0, {"scenes": tests[t]}, 1 if t == "saliency" else 11) for t in tests}
    preds = {(t, p, "scenes"): tests[t][1] for t in tests for p in pit.TASK_PADDINGS}
    fig = pit.plot_examples(pit.TaskRun({}, {}, data, preds), k=1)
    assert len(fig.axes) == 2 * 8
    assert fig.axes[0].get_title() == "saliency: image"


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
    assert pit.PROBED[-1] == "untrained" and pit.PROBED[:3] == pit.TRAINED_FOR


def test_prose_numbers_follow_the_table(tmp_path):
    table = fake_table([0.8, 0.4], [0.1, 0.3], [0.3, 0.1], [0.7, 0.9, 0.95, 0.96])
    border = [dict(experiment="task", task="saliency", padding=p, test_set="scenes",
                   metric=f"mae_{r}", value=v)
              for p, r, v in (("zero", "border", 0.01), ("none", "border", 0.05),
                              ("zero", "interior", 0.02), ("none", "interior", 0.12))]
    table = pd.concat([table, pd.DataFrame(border)], ignore_index=True)
    claims = pit.check_claims(table, config(tmp_path))
    words = pit.prose_numbers(table, claims, {"val_accuracy": 0.923})
    assert [words[k] for k in ("t1", "t2", "t3")] == ["holds", "holds", "holds"]
    assert (words["f_zero"], words["f_none"], words["mae_none"]) == (".80", ".40", ".300")
    assert (words["miou_zero"], words["classifier_accuracy"]) == ("30", "92%")
    assert words["mae_interior_none"] == ".120" and words["where_cost"].startswith("the interior's error rose more")
    assert pit._where_cost(-0.1, -0.2).startswith("removing the padding did not raise")
    assert pit._where_cost(0.3, 0.1).startswith("the border band's error rose more")
    assert words["spc_G_untrained"] == ".96"
    assert words["training_effect"] == "every task lowered what the readout finds"
    words = pit.prose_numbers(table, claims, {})
    assert words["classifier_accuracy"] == "not measured"
