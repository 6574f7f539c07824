import numpy as np
import pytest
import torch
import torchvision

from posinfo.data import fake
from posinfo.data.datasets import (CITYSCAPES_CLASSES, DatasetNotFoundError, cifar_tensors,
                                   cityscapes_tensors, saliency_tensors, torchvision_dataset,
                                   verify_dataset)
from posinfo.models.encoders import load_imagenet_state
from posinfo.models.segmenter import load_weights_file, resnet50_deeplabv3


def test_saliency_files_are_read_and_checked_by_the_real_loader(tmp_path):
    fake.write_saliency("pascal-s", tmp_path, 3)
    verify_dataset("pascal-s", tmp_path)
    images, masks = saliency_tensors("pascal-s", tmp_path, 16)
    assert images.shape == (3, 3, 16, 16) and masks.shape == (3, 16, 16)
    assert set(masks.unique().tolist()) == {0.0, 1.0}  # a blob on background in every mask
    assert 0.05 < masks.mean() < 0.5


def test_voc_files_are_read_by_torchvision_with_classes_and_a_void_outline(tmp_path):
    fake.write_voc2012(tmp_path, 2)
    for split, n in (("train", 2), ("val", 2), ("trainval", 4)):
        assert len(torchvision_dataset("voc2012", tmp_path, split)) == n
    verify_dataset("voc2012", tmp_path, "val")
    image, mask = torchvision_dataset("voc2012", tmp_path, "train")[0]
    values = set(np.unique(np.asarray(mask)).tolist())
    assert mask.mode == "P" and image.size == mask.size
    assert 0 in values and 255 in values and values - {0, 255} <= set(range(1, 21))
    palette = mask.getpalette()
    assert palette[3:6] == [128, 0, 0] and palette[15 * 3:16 * 3] == [192, 128, 128]  # VOC's


def test_cifar_needs_the_md5_check_off_and_then_loads(tmp_path, monkeypatch):
    fake.write_cifar10(tmp_path, 4)
    with pytest.raises(DatasetNotFoundError, match="md5"):  # the real check refuses fake files
        torchvision_dataset("cifar10", tmp_path, "test")
    for cls in (torchvision.datasets.CIFAR10, torchvision.datasets.CIFAR100):
        monkeypatch.setattr(cls, "_check_integrity", cls._check_integrity)  # restored after
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        torchvision.datasets.cifar.check_integrity)
    fake.skip_cifar_md5()
    x, y = cifar_tensors("cifar10", tmp_path, "train", 32)
    assert x.shape == (20, 3, 32, 32) and 0 < x.std() and set(y.tolist()) <= set(range(10))


def test_cityscapes_scenes_have_people_on_one_side_for_the_region_rankings(tmp_path):
    fake.write_cityscapes(tmp_path, 4)
    verify_dataset("cityscapes", tmp_path, "val")
    images, masks = cityscapes_tensors(tmp_path, "val", 16)
    assert images.shape == (4, 3, 16, 32) and masks.shape == (4, 16, 32)
    person = CITYSCAPES_CLASSES.index("person")
    left, right = (masks[..., :16] == person), (masks[..., 16:] == person)
    assert left[0].any() and not right[0].any() and right[2].any() and not left[2].any()
    assert not (masks[1] == person).any()
    assert {CITYSCAPES_CLASSES.index(c) for c in ("road", "sky", "building")} <= set(masks.unique().tolist())
    assert len(list(tmp_path.glob("cityscapes/gtFine/val/*/*_gtFine_color.png"))) == 4


def test_weights_files_load_where_the_book_looks_for_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    state_before = torch.random.get_rng_state()
    path = fake.write_imagenet_weights("resnet18")
    assert torch.equal(torch.random.get_rng_state(), state_before)  # the caller's draws unchanged
    assert path.parent == tmp_path / "torch" / "hub" / "checkpoints"
    state = load_imagenet_state("resnet18")
    assert state.keys() == torchvision.models.resnet18().state_dict().keys()
    fake.write_deeplabv3(tmp_path / "deeplab.pth")
    model = load_weights_file(resnet50_deeplabv3(19), tmp_path / "deeplab.pth")
    assert sum(p.numel() for p in model.parameters()) > 30_000_000
