"""Tests for posinfo.data.position_tasks: the position-dependent twins' labels."""

import pytest
import torch

from posinfo.data.position_tasks import (THIRDS, TWINS, central_object, central_saliency,
                                         third_of, thirds_classes, twin_targets)
from posinfo.data.scenes import SceneObject, SyntheticScenes


def _obj(x: float, y: float) -> SceneObject:
    return SceneObject(0, x, y, 0.3, 0.0)


def test_central_object_is_nearest_the_centre():
    assert central_object([_obj(0.1, 0.1), _obj(0.55, 0.45), _obj(0.9, 0.5)]) == 1
    assert central_object([_obj(0.5, 0.9), _obj(0.2, 0.5)]) == 1
    with pytest.raises(ValueError, match="no central object"):
        central_object([])


@pytest.mark.parametrize("x, third", [(0.0, 0), (0.3, 0), (0.34, 1), (0.66, 1), (0.67, 2), (1.0, 2)])
def test_third_of(x, third):
    assert third_of(_obj(x, 0.5)) == third


@pytest.fixture(scope="module")
def scenes():
    return SyntheticScenes(12, 48, seed=3, n_objects=(2, 3))


def test_instance_mask_matches_the_class_mask(scenes):
    for i in range(len(scenes)):
        instances, classes = scenes.instance_mask(i), scenes[i].class_mask
        assert torch.equal(instances > 0, classes > 0)
        assert int(instances.max()) <= len(scenes.objects(i))
    assert scenes.instance_masks().shape == (12, 48, 48)


def test_central_saliency_marks_only_the_central_object(scenes):
    masks = central_saliency(scenes)
    assert masks.shape == (12, 48, 48) and set(masks.unique().tolist()) <= {0.0, 1.0}
    for i in range(len(scenes)):
        k = central_object(scenes.objects(i)) + 1
        assert torch.equal(masks[i] > 0, scenes.instance_mask(i) == k)
    # Several objects: the central one is a strict part of all objects in some scene.
    everything = torch.stack([scenes[i].saliency for i in range(len(scenes))])
    assert (masks <= everything).all() and masks.sum() < everything.sum()


def test_thirds_classes_follow_the_object_centres(scenes):
    classes = thirds_classes(scenes)
    assert classes.dtype == torch.int64 and int(classes.max()) <= THIRDS
    for i in range(len(scenes)):
        instances = scenes.instance_mask(i)
        for k, obj in enumerate(scenes.objects(i)):
            visible = instances == k + 1
            if visible.any():
                assert (classes[i][visible] == third_of(obj) + 1).all()
        assert (classes[i][instances == 0] == 0).all()


def test_same_image_same_labels_whatever_the_shape():
    """The thirds labels do not depend on the shape: the same centres with other classes give
    the same labels where the objects overlap in the same way (here: one object)."""
    a = SyntheticScenes(4, 32, seed=1, classes=[0])
    b = SyntheticScenes(4, 32, seed=1, classes=[4])
    for i in range(4):
        assert third_of(a.objects(i)[0]) == third_of(b.objects(i)[0])


def test_twin_targets_dispatch(scenes):
    assert torch.equal(twin_targets(scenes, "central"), central_saliency(scenes))
    assert torch.equal(twin_targets(scenes, "thirds"), thirds_classes(scenes))
    assert set(TWINS) == {"central", "thirds"}
    with pytest.raises(ValueError, match="unknown position-dependent task"):
        twin_targets(scenes, "left")
