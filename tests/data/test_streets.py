import pytest
import torch
from posinfo.cache import fingerprint
from posinfo.data.streets import STREET_CLASSES, street_classes, street_scene, street_scenes

SKY, BUILDING, ROAD, SIDEWALK, PERSON, CAR, POLE, SIGN = range(len(STREET_CLASSES))


def test_shapes_ranges_and_determinism():
    images, masks = street_scenes(6, 32, seed=3)
    assert images.shape == (6, 3, 32, 64) and images.dtype == torch.float32
    assert masks.shape == (6, 32, 64) and masks.dtype == torch.int64
    assert 0 <= images.min() and images.max() <= 1
    again = street_scenes(6, 32, seed=3)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    assert not torch.equal(images, street_scenes(6, 32, seed=4)[0])


def test_the_layout_is_sky_above_buildings_above_the_ground():
    _, masks = street_scenes(20, 48, seed=0, n_objects=(0, 0))
    assert (masks[:, 0] == SKY).float().mean() > 0.9  # the top row is sky
    assert set(masks[:, -1].unique().tolist()) <= {ROAD, SIDEWALK}  # the bottom row is ground
    rows = torch.arange(48).view(1, 48, 1).expand_as(masks)
    mean_row = [rows[masks == k].float().mean() for k in (SKY, BUILDING, ROAD)]
    assert mean_row[0] < mean_row[1] < mean_row[2]
    centre, sides = masks[:, -1, 40:56], torch.cat([masks[:, -8, :4], masks[:, -8, -4:]], 1)
    assert (centre == ROAD).float().mean() > 0.9 and (sides == SIDEWALK).float().mean() > 0.5


def test_one_sided_scenes_keep_their_objects_in_their_half():
    for region, half in (("left", slice(32, None)), ("right", slice(None, 32))):
        _, masks = street_scenes(20, 32, seed=1, region=region, n_poles=(1, 2))
        assert (masks[..., half] >= PERSON).sum() == 0
        assert all((masks == k).any() for k in (PERSON, CAR, POLE, SIGN))


def test_without_poles_the_scenes_are_those_drawn_before_poles_existed():
    # fingerprints of the scenes drawn by the code before poles were added (commit 5bb2d78):
    # the default's segmenters and their caches stay valid
    assert fingerprint(*street_scenes(5, 32, seed=6)) == "6595bcdb5275f545"
    assert fingerprint(*street_scenes(4, 32, 6, region="left", n_objects=(0, 6))) == "456244f3075ac594"
    assert street_classes() == STREET_CLASSES[:POLE] and street_classes((0, 1)) == STREET_CLASSES


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a bool row."""
    padded = torch.cat([torch.tensor([False]), row, torch.tensor([False])]).int()
    edges = padded.diff().nonzero().squeeze(1)
    return (edges[1::2] - edges[::2]).tolist()


def test_poles_are_thin_stand_on_the_sidewalk_beyond_the_kerb_and_carry_the_signs():
    _, masks = street_scenes(40, 48, seed=2, n_objects=(0, 0), n_poles=(1, 3))
    _, layout = street_scenes(40, 48, seed=2, n_objects=(0, 0))
    pole = masks == POLE
    assert pole.flatten(1).any(1).all() and (masks == SIGN).any()
    assert max(n for image in pole for row in image for n in _runs(row)) <= 3  # at most 3 px wide
    rows = torch.arange(48).view(1, 48, 1).expand_as(masks)
    feet = [(layout[i][pole[i] & (rows[i] == rows[i][pole[i]].max())]) for i in range(40)]
    assert (torch.cat(feet) == SIDEWALK).float().mean() > 0.9  # nearer poles may hide farther feet
    signs = 0
    for i in range(40):  # a sign sits on a pole's top: the pole ends within the sign's rows
        sign = masks[i] == SIGN
        if not sign.any():
            continue
        signs += 1
        cols = sign.any(0)
        below = pole[i][:, cols].any(1).nonzero().squeeze(1)  # pole rows under the sign
        sign_rows = sign.any(1).nonzero().squeeze(1)
        assert below.numel() and sign_rows.min() - 1 <= below.min() <= sign_rows.max() + 1
    assert signs > 10


def test_people_stand_on_sidewalks_and_cars_on_the_road():
    # the layout is drawn before the objects, so the same seed without objects shows what lies
    # under each of them
    _, masks = street_scenes(40, 48, seed=2)
    _, layout = street_scenes(40, 48, seed=2, n_objects=(0, 0))
    assert (masks == PERSON).any() and (masks == CAR).any()
    assert torch.equal(masks[masks < PERSON], layout[masks < PERSON])
    assert (layout[masks == PERSON] == SIDEWALK).all()
    assert (layout[masks == CAR] == ROAD).float().mean() > 0.85  # roofs may rise past the kerb
    with pytest.raises(ValueError, match="region"):
        street_scene(0, 0, 16, region="centre")
