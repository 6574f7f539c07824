import pytest
import torch
from posinfo.models.segmenter import (
    SegmenterTraining,
    cached_segmenter,
    load_weights_file,
    narrow_deeplabv3,
    predict,
    resnet50_deeplabv3,
)


def test_narrow_deeplabv3_shapes():
    model = narrow_deeplabv3(5, width=4, head_channels=8).eval()
    x = torch.rand(2, 3, 32, 32)
    assert model.channels == 128
    assert model.features(x).shape == (2, 128, 4, 4)  # output stride 8, like DeepLabv3
    assert model(x).shape == (2, 5, 32, 32)
    assert predict(model, x).shape == (2, 32, 32)


def test_paper_network_is_torchvision_deeplabv3_resnet50():
    model = resnet50_deeplabv3(19)
    assert model.channels == 2048
    assert model.net.backbone.layer4[0].conv2.dilation == (2, 2)


def test_training_is_cached_and_reproducible(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 16, 16, generator=g)
    masks = (images[:, 0] > 0.5).long()
    cfg = SegmenterTraining(2, width=4, head_channels=8, epochs=1, batch_size=4, data_key="t")
    a, record = cached_segmenter(cfg, images, masks, tmp_path, progress=False)
    assert len(record["losses"]) == 1 and len(list(tmp_path.glob("segmenter-*.pt"))) == 1
    assert not list(tmp_path.glob("*.partial.pt"))
    b, _ = cached_segmenter(cfg, images * 0, masks * 0, tmp_path, progress=False)  # from the cache
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_missing_weights_file_names_it(tmp_path):
    path = tmp_path / "deeplab.pth"
    with pytest.raises(FileNotFoundError, match="deeplab.pth") as err:
        load_weights_file(resnet50_deeplabv3(19), path)
    assert "Cityscapes" in str(err.value) and "weights_file" in str(err.value)


def test_weights_file_round_trip_and_wrong_file(tmp_path):
    source = resnet50_deeplabv3(19)
    torch.save({"model_state": source.net.state_dict()}, tmp_path / "ok.pth")
    loaded = load_weights_file(resnet50_deeplabv3(19), tmp_path / "ok.pth")
    key = "backbone.layer4.0.conv2.weight"
    assert torch.equal(loaded.net.state_dict()[key], source.net.state_dict()[key])
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a DeepLabv3-ResNet-50"):
        load_weights_file(resnet50_deeplabv3(19), tmp_path / "bad.pth")


class Payload:
    """Pickled by reference: loading it would need this class, i.e. code."""


def test_a_weights_file_holding_code_is_refused_without_advice_to_unpickle_it(tmp_path):
    torch.save({"model_state": Payload()}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match="cannot be read as a state dict of tensors") as err:
        load_weights_file(resnet50_deeplabv3(19), tmp_path / "code.pth")
    assert "weights_only" not in str(err.value) and "code.pth" in str(err.value)
