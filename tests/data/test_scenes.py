"""Tests of the generated scenes: determinism, formats, masks, regions, resolution independence,
absence of absolute-position cues, single objects and argument checks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from posinfo.data.scenes import (
    BACKGROUNDS,
    CLASS_NAMES,
    NUM_CLASSES,
    REGIONS,
    Scene,
    SceneObject,
    SyntheticScenes,
    _coverage,
    render_object,
)
from torch.utils.data import default_collate


def _equal(a: Scene, b: Scene) -> bool:
    return (a.label == b.label and torch.equal(a.image, b.image)
            and torch.equal(a.class_mask, b.class_mask) and torch.equal(a.saliency, b.saliency))


def test_constants():
    assert len(CLASS_NAMES) == NUM_CLASSES == 10 and len(set(CLASS_NAMES)) == 10
    assert REGIONS == ("any", "left", "centre", "right")
    assert set(BACKGROUNDS) == {"texture", "flat", "black"}


def test_deterministic_per_seed_and_index():
    scenes = SyntheticScenes(5, 32, seed=3, n_objects=(1, 3))
    assert _equal(scenes[2], scenes[2])
    assert _equal(scenes[2], SyntheticScenes(50, 32, seed=3, n_objects=(1, 3))[2])  # not on n
    assert _equal(scenes[-1], scenes[4])
    state = np.random.get_state()
    np.random.seed(123)
    torch.manual_seed(123)
    again = scenes[2]
    np.random.set_state(state)
    assert _equal(again, scenes[2])  # the global random state plays no part
    assert not torch.equal(scenes[2].image, scenes[3].image)
    other_seed = SyntheticScenes(5, 32, seed=4, n_objects=(1, 3))
    assert not torch.equal(scenes[2].image, other_seed[2].image)


@pytest.mark.parametrize("background", BACKGROUNDS)
@pytest.mark.parametrize("size", [8, 33])
def test_formats(size, background):
    for scene in SyntheticScenes(6, size, seed=1, n_objects=(1, 3), background=background):
        assert isinstance(scene, Scene) and isinstance(scene.label, int)
        assert scene.image.shape == (3, size, size) and scene.image.dtype == torch.float32
        assert scene.class_mask.shape == (size, size) and scene.class_mask.dtype == torch.int64
        assert scene.saliency.shape == (size, size) and scene.saliency.dtype == torch.float32
        assert 0 <= scene.image.min() and scene.image.max() <= 1
        assert 0 <= scene.label < NUM_CLASSES
        assert 0 <= scene.class_mask.min() and scene.class_mask.max() <= NUM_CLASSES


def test_iteration_stops_and_index_errors():
    scenes = SyntheticScenes(3, 16)
    assert len(scenes) == 3 and len(list(scenes)) == 3
    for index in (3, -4):
        with pytest.raises(IndexError):
            scenes[index]
    assert len(SyntheticScenes(0, 16)) == 0


def test_masks_agree_with_each_other_and_the_objects():
    scenes = SyntheticScenes(40, 48, seed=2, n_objects=(1, 4))
    for i, scene in enumerate(scenes):
        assert torch.equal(scene.saliency, (scene.class_mask > 0).float())
        objects = scenes.objects(i)
        assert objects[0].class_id == scene.label
        assert [o.diameter for o in objects] == sorted((o.diameter for o in objects), reverse=True)
        assert set(scene.class_mask.unique().tolist()) <= {0} | {o.class_id + 1 for o in objects}
        assert 1 <= len(objects) <= 4
    for scene in SyntheticScenes(40, 32, seed=5):
        assert set(scene.class_mask.unique().tolist()) == {0, scene.label + 1}


def test_later_objects_lie_on_top():
    scenes = SyntheticScenes(30, 48, seed=6, n_objects=(3, 3), object_scale=(0.3, 0.7))
    overlaps = 0
    for i, scene in enumerate(scenes):
        objects = scenes.objects(i)
        drawn = [torch.zeros(48, 48, dtype=torch.bool) for _ in objects]
        for k, obj in enumerate(objects):
            rows, cols, alpha = _coverage(obj, 48)
            drawn[k][rows, cols] = torch.from_numpy(alpha >= 0.5)
        assert (scene.class_mask[drawn[2]] == objects[2].class_id + 1).all()  # the last, on top
        hidden = drawn[0] & ~drawn[1] & ~drawn[2]
        assert (scene.class_mask[hidden] == objects[0].class_id + 1).all()
        assert torch.equal(scene.saliency.bool(), drawn[0] | drawn[1] | drawn[2])
        overlaps += int((drawn[0] & drawn[2]).any() and objects[0].class_id != objects[2].class_id)
    assert overlaps >= 5  # the test did look at overlapping objects


def test_classes_restrict_the_labels_and_all_classes_appear():
    labels = SyntheticScenes(60, 16, seed=1, classes=[2, 7]).tensors()[1]
    assert set(labels.tolist()) == {2, 7}
    labels = SyntheticScenes(300, 8, seed=1).tensors()[1]
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    assert counts.min() >= 15  # uniform: 30 expected each


@pytest.mark.parametrize("region, low, high", [("left", 0.0, 0.5), ("right", 0.5, 1.0),
                                               ("centre", 0.25, 0.75)])
def test_regions(region, low, high):
    scenes = SyntheticScenes(50, 48, seed=7, n_objects=(1, 3), region=region)
    xs = np.array([o.x for i in range(50) for o in scenes.objects(i)])
    assert (low <= xs).all() and (xs <= high).all()
    assert xs.max() - xs.min() > 0.6 * (high - low - 0.2)  # spread over the region, not stuck
    grid = (torch.arange(48) + 0.5) / 48
    single = SyntheticScenes(50, 48, seed=7, region=region)
    for scene in single:
        centroid = float((scene.saliency.sum(0) * grid).sum() / scene.saliency.sum())
        assert low - 0.02 <= centroid <= high + 0.02


def test_region_any_covers_the_frame():
    scenes = SyntheticScenes(200, 8, seed=8)
    xs = np.array([scenes.objects(i)[0].x for i in range(200)])
    assert (xs < 0.3).any() and (xs > 0.7).any() and ((0.4 < xs) & (xs < 0.6)).any()


def test_resolution_independence():
    small, large = SyntheticScenes(20, 48, seed=9, n_objects=(1, 3)), SyntheticScenes(
        20, 96, seed=9, n_objects=(1, 3))
    for i in range(20):
        assert small.objects(i) == large.objects(i)
        a, b = small[i], large[i]
        assert a.label == b.label
        assert set(a.class_mask.unique().tolist()) == set(b.class_mask.unique().tolist())
        for c in a.class_mask.unique().tolist():
            down = F.avg_pool2d((b.class_mask == c).float()[None], 2)[0] >= 0.5
            iou = ((a.class_mask == c) & down).sum() / ((a.class_mask == c) | down).sum()
            assert iou > 0.8, (i, c, iou)


def _contrasts(maps: torch.Tensor) -> tuple[float, float, float]:
    """Left minus right, top minus bottom and centre minus border means of a [H, W] map."""
    h, q = maps.shape[0] // 2, maps.shape[0] // 4
    inner = torch.zeros_like(maps, dtype=torch.bool)
    inner[q:-q, q:-q] = True
    return (float(maps[:, :h].mean() - maps[:, h:].mean()),
            float(maps[:h].mean() - maps[h:].mean()),
            float(maps[inner].mean() - maps[~inner].mean()))


@pytest.mark.parametrize("kwargs", [{}, {"n_objects": (1, 4), "object_scale": (0.2, 0.7)},
                                    {"background": "flat"}])
def test_mean_image_is_flat(kwargs):
    images = SyntheticScenes(200, 32, seed=10, **kwargs).tensors()[0]
    mean = images.mean(0)
    assert abs(float(mean.mean()) - 0.5) < 0.03
    for channel in mean:
        assert max(abs(d) for d in _contrasts(channel)) < 0.02
    # Objects do cluster towards the centre, so this is not vacuous: their colours average out.
    saliency = SyntheticScenes(200, 32, seed=10, **kwargs).tensors()[3].mean(0)
    assert _contrasts(saliency)[2] > 0.05


def test_backgrounds():
    flat = SyntheticScenes(10, 32, seed=11, background="flat")
    black = SyntheticScenes(10, 32, seed=11, background="black")
    textured = SyntheticScenes(10, 32, seed=11)
    for i in range(10):
        assert flat.objects(i) == black.objects(i) == textured.objects(i)
        near = F.max_pool2d(flat[i].saliency[None, None], 3, 1, 1)[0, 0] > 0
        background = flat[i].image[:, ~near]
        assert (background == background[:, :1]).all()
        assert (black[i].image[:, ~near] == 0).all()
        assert black[i].image[:, flat[i].saliency > 0].amax(0).min() > 0  # objects visible on black
        assert textured[i].image[:, ~near].std(1).mean() > 0.005


def test_tensors_stack_the_items():
    scenes = SyntheticScenes(4, 16, seed=12, n_objects=(1, 2))
    images, labels, masks, saliency = scenes.tensors(progress=True)
    assert images.shape == (4, 3, 16, 16) and labels.shape == (4,) and labels.dtype == torch.int64
    assert masks.shape == saliency.shape == (4, 16, 16) and masks.dtype == torch.int64
    for i in range(4):
        assert _equal(scenes[i], Scene(images[i], int(labels[i]), masks[i], saliency[i]))
    batch = default_collate([scenes[0], scenes[1]])
    assert batch.image.shape == (2, 3, 16, 16) and batch.label.tolist() == labels[:2].tolist()
    empty = SyntheticScenes(0, 16).tensors()
    assert empty[0].shape == (0, 3, 16, 16)


@pytest.mark.parametrize("class_id", range(NUM_CLASSES))
def test_render_object(class_id):
    rng = np.random.default_rng(class_id)
    grid = torch.arange(64) + 0.5
    masks, rgbs = [], []
    for _ in range(4):
        rgb, mask = render_object(class_id, 64, rng)
        assert rgb.shape == (3, 64, 64) and rgb.dtype == torch.float32
        assert mask.shape == (64, 64) and mask.dtype == torch.float32
        assert 0 <= rgb.min() and rgb.max() <= 1 and 0 <= mask.min() and mask.max() <= 1
        assert 0.15 < float(mask.mean()) < 0.55  # fills most of the patch, not all of it
        centroid = [float((mask.sum(d) * grid).sum() / mask.sum()) for d in (0, 1)]
        assert np.allclose(centroid, 32, atol=0.6)  # the shape's centroid is the object's centre
        assert (mask[:3] == 0).all() and (mask[:, -3:] == 0).all()  # inside the patch
        assert np.linalg.norm(rgb[:, mask >= 1].mean(1).numpy()) > 0.3  # visible on black
        masks.append(mask)
        rgbs.append(rgb)
    assert not torch.equal(rgbs[0], rgbs[1])  # random fill
    if CLASS_NAMES[class_id] not in ("disk", "ring"):
        assert not torch.equal(masks[0], masks[1])  # random rotation


def test_render_object_is_deterministic_and_classes_differ():
    a = render_object(4, 32, np.random.default_rng(0))
    b = render_object(4, 32, np.random.default_rng(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    areas = [float(render_object(c, 64, np.random.default_rng(0))[1].sum()) for c in range(10)]
    assert len({round(a, 1) for a in areas}) == NUM_CLASSES
    small = render_object(0, 32, np.random.default_rng(0), fill=0.5)[1]
    assert abs(float(small.sum()) - np.pi * 8 ** 2) < 4


def test_scene_objects_are_named_tuples():
    obj = SyntheticScenes(1, 16, object_scale=(0.3, 0.3)).objects(0)[0]
    assert isinstance(obj, SceneObject) and obj.diameter == pytest.approx(0.3)
    assert 0.3 * 0.4 <= obj.y <= 1 - 0.3 * 0.4 and 0 <= obj.angle < 2 * np.pi


@pytest.mark.parametrize("kwargs", [
    {"n": -1}, {"n": 2.5}, {"size": 7}, {"size": 16.5}, {"seed": -1},
    {"n_objects": (0, 1)}, {"n_objects": (2, 1)}, {"n_objects": (1,)}, {"n_objects": (1, 1.5)},
    {"object_scale": (0.0, 0.5)}, {"object_scale": (0.5, 0.25)}, {"object_scale": (0.5, 1.5)},
    {"object_scale": (0.5,)}, {"region": "top"}, {"region": "center"}, {"background": "noise"},
    {"classes": []}, {"classes": [10]}, {"classes": [-1]}, {"classes": [1.5]},
])
def test_invalid_arguments(kwargs):
    args = {"n": 4, "size": 16, **kwargs}
    with pytest.raises(ValueError):
        SyntheticScenes(args.pop("n"), args.pop("size"), **args)


@pytest.mark.parametrize("kwargs", [{"class_id": 10}, {"class_id": -1}, {"size": 3},
                                    {"fill": 0.0}, {"fill": 1.5}])
def test_render_object_invalid_arguments(kwargs):
    args = {"class_id": 0, "size": 16, **kwargs}
    with pytest.raises(ValueError):
        render_object(args.pop("class_id"), args.pop("size"), np.random.default_rng(0), **args)
