from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from posinfo.book.params import resolve
from posinfo.chapters import ch07_region_attacks as ra
from posinfo.data.datasets import CITYSCAPES_CLASSES, cityscapes_tensors
from posinfo.data.streets import STREET_CLASSES, street_classes, street_scenes

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"


def _cfg(tmp_path, profile="smoke", **knobs):
    ns = dict(profile=profile, seed=0, device="cpu", data_root=str(FIXTURES),
              out_dir=str(tmp_path / "out"), cache_dir=str(tmp_path / "cache")) | knobs
    return resolve(ra.SPEC, ns)


def test_unknown_choices_fail_early(tmp_path):
    with pytest.raises(ValueError, match="dataset"):
        _cfg(tmp_path, dataset="scenes")
    with pytest.raises(ValueError, match="region_objects"):
        _cfg(tmp_path, region_objects=["pedestrian"])
    with pytest.raises(ValueError, match="random_draws"):
        ra.validate(_cfg(tmp_path, random_draws=3))
    for name in ("n_objects", "n_poles"):
        for bad in ([3, 1], [2]):
            with pytest.raises(ValueError, match=name):
                ra.validate(_cfg(tmp_path, **{name: bad}))


def test_cityscapes_class_names_match_torchvision():
    from torchvision.datasets import Cityscapes
    names = [c.name for c in sorted(Cityscapes.classes, key=lambda c: c.train_id)
             if 0 <= c.train_id < 255]
    assert tuple(names) == ra.CITYSCAPES_CLASSES


def test_paper_profile_needs_its_weights_file(tmp_path):
    cfg = _cfg(tmp_path, "paper", weights_file=str(tmp_path / "missing.pth"))
    assert ra.weights_path(_cfg(tmp_path, "paper", data_root=str(tmp_path))) == (
        tmp_path / "deeplabv3_resnet50_cityscapes.pth")  # by default under data_root
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ra.validate(cfg)
    with pytest.raises(Exception, match="cityscapes"):
        ra.validate(_cfg(tmp_path, "paper", data_root=str(tmp_path)))


def test_cityscapes_fixture_through_torchvision(tmp_path):
    cfg = _cfg(tmp_path, "paper", cityscapes_split="train", image_size=16, n_rank=1, n_eval=1,
               region_objects=["car"])
    names = list(CITYSCAPES_CLASSES)
    images, masks = cityscapes_tensors(cfg.data_root, cfg.cityscapes_split, cfg.image_size)
    assert images.shape == (2, 3, 16, 32) and 0 <= images.min() and images.max() <= 1
    assert set(masks[0].unique().tolist()) == {names.index(n) for n in ("road", "sky", "car")}
    left, right = ra.one_sided(masks, [names.index("car")])
    assert left.tolist() == [True, False] and right.tolist() == [False, True]
    with pytest.raises(ValueError, match="only on the right"):  # image 1 is for evaluation
        ra.cityscapes_data(cfg)


def test_one_sided_on_hand_made_masks():
    masks = torch.zeros(3, 2, 4, dtype=torch.long)
    masks[0, 0, 1] = 7  # left only
    masks[1, 1, 3] = 7  # right only
    masks[2, 0, 0] = masks[2, 0, 2] = 7  # both
    left, right = ra.one_sided(masks, [7])
    assert left.tolist() == [True, False, False] and right.tolist() == [False, True, False]


def test_street_data_splits_are_disjoint_and_the_sided_ones_one_sided(tmp_path):
    assert ra.scene_data(_cfg(tmp_path, n_train=1, n_rank=1, n_eval=1)).class_names == list(
        STREET_CLASSES[:6])  # without poles (the default), no pole or sign class
    cfg = _cfg(tmp_path, n_train=4, n_rank=3, n_eval=3, n_poles=[1, 2])
    data = ra.scene_data(cfg)
    assert data.class_names == list(STREET_CLASSES)
    size = cfg.image_size
    assert data.eval_images.shape == (3, 3, size, 2 * size)
    assert data.eval_masks.max() <= len(STREET_CLASSES) - 1
    assert data.left_images.shape == data.right_images.shape == (3, 3, size, 2 * size)
    splits = [data.train_images[:3], data.rank_images, data.left_images, data.right_images,
              data.eval_images]
    assert all(not torch.equal(a, b) for i, a in enumerate(splits) for b in splits[i + 1:])
    objects = [STREET_CLASSES.index(c) for c in ("person", "car", "pole", "sign")]
    for side, images in ((0, data.left_images), (1, data.right_images)):
        # the same scenes with their masks, drawn as scene_data draws them
        again, masks = street_scenes(3, size, 70_000 + 2 + side, ("left", "right")[side],
                                     tuple(cfg.n_objects), tuple(cfg.n_poles))
        assert torch.equal(images, again)
        with_objects = torch.isin(masks, torch.tensor(objects)).flatten(1).any(1)
        assert with_objects.any() and (ra.one_sided(masks, objects)[side] == with_objects).all()


OFFSETS = (0, -2, 2, -1, 1) * 4  # the random draws around the base: 20, the first at the mean


def _attack_rows(run: int, base: float, overall: float, kf2: float, left_left: float) -> list[dict]:
    """One segmenter's table: 20 random draws at base, base - 2, base + 2, base - 1, base + 1,
    four times over (so the first draw, the controls' stand-in ranking, equals the others'
    mean), kernel_flip_1 at base - 5."""
    rows = [dict(experiment="baseline", ranking="none", n_channels=0, fraction=0.0, draw=0,
                 region=r, metric="miou", value=base) for r in ("all", "left", "centre", "right")]
    for n, f in ((5, 0.05), (25, 0.25)):
        for r in ("all", "left", "centre", "right"):
            for rk, v in (("overall", overall), ("kernel_flip_1", base - 5),
                          ("kernel_flip_2", kf2), ("magnitude", base - 20)):
                rows.append(dict(experiment="attack", ranking=rk, n_channels=n, fraction=f,
                                 draw=0, region=r, metric="miou", value=v))
            rows += [dict(experiment="attack", ranking="random", n_channels=n, fraction=f, draw=d,
                          region=r, metric="miou", value=base + OFFSETS[d]) for d in range(len(OFFSETS))]
            for side, v in (("left", left_left if r == "left" else base - 5), ("right", base - 6)):
                rows.append(dict(experiment="region attack", ranking=side, n_channels=n,
                                 fraction=f, draw=0, region=r, metric="miou", value=v))
    return [row | dict(run=run) for row in rows]


def test_claims_read_the_table():
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=50.5, left_left=30)
                         + _attack_rows(1, base=60, overall=50, kf2=60.5, left_left=40))
    claims = ra.check_claims(table, None)
    # kernel_flip_2 (base + 0.5) lies below 8 of the 20 random draws (percentile .4) in both
    assert {c.id: c.verdict for c in claims} == {"R1": "holds", "R2": "holds", "R3": "fails",
                                                 "R4": "holds"}
    assert [c.effect for c in claims][:3] == [1.0, 1.0, 0.4]
    assert claims[3].effect == 15.0  # left half 44 - 30, right half 45 - 44
    assert all(c.n == 2 and c.control != "holds" for c in claims)
    one = ra.check_claims(table[table.run == 0], None)  # one segmenter decides nothing
    assert {c.verdict for c in one} == {"inconclusive"} and {c.n for c in one} == {1}


def test_claims_compare_means_over_segmenters_and_count_them():
    # run 0: overall 10 below its random mean; run 1: 1 above it. Mean: 49.5 + 0.5 vs 55
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=45, left_left=30)
                         + _attack_rows(1, base=60, overall=61, kf2=55, left_left=56))
    claims = {c.id: c for c in ra.check_claims(table, None)}
    # per segmenter: R1 percentiles 1 and .3 (61 is below the four draws at 62, ties four), R4
    # differences of differences 15 and -1: too spread to decide; R3 1 and 1
    assert {k: c.verdict for k, c in claims.items()} == {
        "R1": "inconclusive", "R2": "inconclusive", "R3": "holds", "R4": "inconclusive"}
    assert claims["R1"].effect == 0.65 and claims["R1"].n == 2
    r1 = claims["R1"].ours
    assert "all N=5: 50.5 vs random 55.0" in r1 and "below in 1 of 2" in r1
    assert "left channels 43.0, right channels 49.0" in claims["R4"].ours  # (30+56)/2, (44+54)/2
    assert "left below right in 1 of 2" in claims["R4"].ours
    worse = table.assign(value=table.value.where(~((table.run == 1) & (table.ranking == "overall")),
                                                 75.0))
    assert not {c.id: c.holds for c in ra.check_claims(worse, None)}["R1"]  # (40+75)/2 > 55


def test_no_claim_holds_on_null_inputs():
    """Rankings no better than the random draws, and region rankings that hurt both halves
    alike: no finding holds."""
    rows = []
    for run, base in ((0, 50), (1, 60), (2, 55)):
        rows += _attack_rows(run, base=base, overall=base, kf2=base, left_left=base - 6)
    table = pd.DataFrame(rows)
    kf1 = table.ranking == "kernel_flip_1"
    table.loc[kf1, "value"] += 5  # from base - 5 to base: no better than random
    table.loc[table.ranking == "left", "value"] = table.loc[table.ranking == "right", "value"].values
    assert not any(c.holds for c in ra.check_claims(table, None))


def test_drops_are_from_each_segmenters_own_baseline():
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=45, left_left=30)
                         + _attack_rows(1, base=60, overall=59, kf2=55, left_left=56))
    drops = ra._drops(table, "attack", "overall", "all")
    assert drops["drop"].tolist() == [5.5, 5.5] and drops.lo.tolist() == [1.0, 1.0]
    rnd = ra._drops(table, "attack", "random", "all")
    assert rnd["drop"].tolist() == [0.0, 0.0] and rnd.hi.tolist() == [2.0, 2.0]


def test_each_segmenter_has_its_own_seed_and_scenes(tmp_path):
    cfg = _cfg(tmp_path, n_train=2, n_rank=2, n_eval=2, seed=1)
    assert [ra.replicate(cfg, k).seed for k in range(3)] == [1000, 1001, 1002]
    first, second = (ra.scene_data(ra.replicate(cfg, k)) for k in range(2))
    assert not torch.equal(first.eval_images, second.eval_images)
    with pytest.raises(ValueError, match="seeds"):
        ra.validate(_cfg(tmp_path, seeds=0))
    with pytest.raises(ValueError, match="seeds"):  # one weights file, one network
        ra.validate(_cfg(tmp_path, "paper", seeds=2))


def test_training_summary_has_a_row_per_segmenter(tmp_path):
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=45, left_left=30)
                         + _attack_rows(1, base=60, overall=59, kf2=55, left_left=56))
    runs = ra.Runs(table, [{}, {}], None, None, {}, None)
    summary = ra.training_summary(runs, _cfg(tmp_path, seed=2))
    assert summary.index.tolist() == [2000, 2001]
    assert summary["baseline mIoU left"].tolist() == [50.0, 60.0]


def test_drops_leave_out_the_segmenters_baselines():
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=45, left_left=30)
                         + _attack_rows(1, base=60, overall=50, kf2=55, left_left=56))
    rows = table[table.ranking.isin(["overall", "random"])]
    drops = ra.with_drops(table, rows)
    assert (drops[drops.ranking == "overall"]["drop"] == 10).all()
    assert sorted(drops[drops.ranking == "random"]["drop"].unique()) == [-2, -1, 0, 1, 2]
    wide = ra.attack_table(table)
    assert wide.loc[(5, "overall"), ("mean", "all")] == 45.0
    assert wide.loc[(5, "overall"), ("sd of drop", "all")] == 0.0


def test_prose_numbers_follow_the_table():
    table = pd.DataFrame(_attack_rows(0, base=50, overall=40, kf2=45, left_left=30)
                         + _attack_rows(1, base=60, overall=61, kf2=55, left_left=56))
    claims = ra.check_claims(table, None)
    words = ra.prose_numbers(table, claims, SimpleNamespace(seed=3))
    assert words["run_seed"] == "3"
    assert words["r3"] == "holds" and words["r1"].startswith("is inconclusive (2 replicates")
    assert words["baseline"] == "55.0" and words["n5"] == "5" and words["channels"] == "100"
    assert words["shares"] == "5% and 25%" and words["segmenters"] == "2"
    assert words["drops_overall"] == "4.50 and 4.50"  # (10 - 1) / 2 below each own baseline
    assert words["drops_random"] == ".00 and .00" and words["random_range_n5"] == "4.00"
    assert words["overall_below_random_n5"] == "1 of 2"
    assert words["percentiles_n5"] == "1.00 and .30" and words["random_draws"] == "20"
    assert words["did_n5"] == "15.00 and -1.00"
    # magnitude (20 below) is not less than overall (4.5) at either share
    assert words["magnitude_vs_overall"] == "less than the flip-ranked ones at 0 of 2 shares"
    # left half: left-specific drops 20 and 4 (mean 12), right-specific 6 and 6
    assert words["left_on_left"] == "12.00 and 12.00" and words["right_on_left"] == "6.00 and 6.00"
    assert words["own_first_on_left"] == "2 of 2" and words["left_first_n5"] == "1 of 2"
    assert words["pairs_n5"] == "20.00/6.00, 4.00/6.00"
    assert words["left_gap_n5"] == "6.00"  # mean 12 against mean 6
    # right half: left-specific 5, right-specific 6 below each baseline
    assert words["own_first_on_right"] == "2 of 2"


def test_one_backbone_pass_scores_like_a_zeroing_hook(tmp_path):
    """Every attack scored from one backbone pass per batch equals the full network run with the
    channels zeroed by a forward hook."""
    from posinfo.metrics.dense import REGIONS, confusion, miou
    from posinfo.models.segmenter import narrow_deeplabv3
    from posinfo.probe import position_channels as pc
    cfg = _cfg(tmp_path, batch_size=3)
    data = ra.load_data(cfg)
    torch.manual_seed(0)
    model = narrow_deeplabv3(len(data.class_names), width=4, head_channels=8).eval()
    attacks = [None, torch.tensor([0, 5, 7]), torch.arange(0, model.channels, 2)]
    fast = ra.scores(model, data, cfg, attacks)
    k = len(data.class_names)
    for channels, got in zip(attacks, fast):
        with torch.no_grad(), pc.zeroed_channels(model.last_stage, [] if channels is None else channels):
            pred = model(data.eval_images).argmax(1)
        assert got == {r: 100 * miou(confusion(pred, data.eval_masks, k, r)) for r in REGIONS}
    x, half = data.eval_images[:2], attacks[2]
    with torch.no_grad(), pc.zeroed_channels(model.last_stage, half):
        hooked = model(x)
    with torch.no_grad():
        direct = model.logits_from_features(pc.zero_channels(model.features(x), half), tuple(x.shape[-2:]))
        assert not torch.equal(direct, model(x))  # the attack changes the logits
    assert torch.equal(direct, hooked)


def test_paper_profile_decodes_cityscapes_before_work(tmp_path):
    import shutil
    shutil.copytree(FIXTURES / "cityscapes", tmp_path / "data" / "cityscapes")
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"only its existence is checked before work")
    cfg = _cfg(tmp_path, "paper", data_root=str(tmp_path / "data"), weights_file=str(weights),
               cityscapes_split="train", image_size=64)  # a grid of 64 / 8 = 8 rows
    ra.validate(cfg)
    with pytest.raises(ValueError, match=r"leftImg8bit\.png is 32 x 16 px; the book needs at least "
                                         "128 px on each side"):
        ra.validate(_cfg(tmp_path, "paper", data_root=str(tmp_path / "data"),
                         weights_file=str(weights), cityscapes_split="train"))  # 1024 / 8 rows
    labels = (tmp_path / "data" / "cityscapes" / "gtFine" / "train" / "aachen"
              / "aachen_000000_000019_gtFine_labelIds.png")
    labels.write_bytes(labels.read_bytes()[:90])
    with pytest.raises(ValueError, match=f"dataset 'cityscapes': malformed image file {labels}"):
        ra.validate(cfg)


def test_the_segmenters_recipe_names_poles_only_where_there_are_poles(tmp_path):
    """Without poles the recipe is the one before poles existed, so the default's cached
    segmenters stay valid; each pole range trains its own."""
    def key(**knobs):
        cfg = _cfg(tmp_path, "default", **knobs)
        data = SimpleNamespace(class_names=list(street_classes(tuple(cfg.n_poles))))
        return ra.training_config(cfg, data)

    assert key().data_key == repr(("streets", 2, 48, 3000, (1, 4), 0))
    assert key().num_classes == 6 and key(n_poles=[1, 2]).num_classes == 8
    assert len({key(n_poles=p).data_key for p in ([0, 0], [1, 2], [1, 3], [0, 3])}) == 4
