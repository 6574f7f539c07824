from pathlib import Path

import pandas as pd
import pytest
import torch

from posinfo import region_attacks as ra
from posinfo.params import resolve

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"


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


def test_cityscapes_class_names_match_torchvision():
    from torchvision.datasets import Cityscapes
    names = [c.name for c in sorted(Cityscapes.classes, key=lambda c: c.train_id)
             if 0 <= c.train_id < 255]
    assert tuple(names) == ra.CITYSCAPES_CLASSES


def test_paper_profile_needs_its_weights_file(tmp_path):
    cfg = _cfg(tmp_path, "paper", weights_file=str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ra.validate(cfg)
    with pytest.raises(Exception, match="cityscapes"):
        ra.validate(_cfg(tmp_path, "paper", data_root=str(tmp_path)))


def test_cityscapes_fixture_through_torchvision(tmp_path):
    cfg = _cfg(tmp_path, "paper", cityscapes_split="train", image_size=16, n_rank=1, n_eval=1,
               region_objects=["car"])
    names, items = ra._cityscapes_items(cfg)
    image, mask = items[0]
    assert image.shape == (3, 16, 32) and 0 <= image.min() and image.max() <= 1
    assert set(mask.unique().tolist()) == {names.index(n) for n in ("road", "sky", "car")}
    masks = torch.stack([m for _, m in items])
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


def test_street_data_has_the_layout_and_the_sides(tmp_path):
    cfg = _cfg(tmp_path, n_train=4, n_rank=2, n_eval=3)
    data = ra.scene_data(cfg)
    assert data.class_names == ["sky", "building", "road", "sidewalk", "person", "car"]
    size = cfg.image_size
    assert data.eval_images.shape == (3, 3, size, 2 * size) and data.eval_masks.max() <= 5
    assert data.left_images.shape == data.right_images.shape == (2, 3, size, 2 * size)
    assert not torch.equal(data.rank_images, data.eval_images[:2])


def test_claims_read_the_table():
    rows = [dict(experiment="baseline", ranking="none", n_channels=0, fraction=0.0, draw=0,
                 region=r, metric="miou", value=50.0) for r in ("all", "left", "centre", "right")]
    for n, f in ((5, 0.05), (25, 0.25)):
        for r in ("all", "left", "centre", "right"):
            for rk, v in (("overall", 40), ("kernel_flip_1", 45), ("kernel_flip_2", 50.5),
                          ("magnitude", 30)):
                rows.append(dict(experiment="attack", ranking=rk, n_channels=n, fraction=f,
                                 draw=0, region=r, metric="miou", value=v))
            rows += [dict(experiment="attack", ranking="random", n_channels=n, fraction=f, draw=d,
                          region=r, metric="miou", value=48 + d) for d in range(5)]
            for side, v in (("left", 30 if r == "left" else 45), ("right", 44)):
                rows.append(dict(experiment="region attack", ranking=side, n_channels=n,
                                 fraction=f, draw=0, region=r, metric="miou", value=v))
    claims = {c.id: c.holds for c in ra.check_claims(pd.DataFrame(rows), None)}
    # kernel_flip_2 (50.5) is not below the random mean (50)
    assert claims == {"R1": True, "R2": True, "R3": False, "R4": True}
