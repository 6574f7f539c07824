import pytest
import torch

from posinfo.models import pretrain
from posinfo.models.encoders import MultiLevelEncoder
from posinfo.models.pretrain import PretrainConfig, SceneClassifier, synthetic_encoder, train_scene_classifier

TINY = PretrainConfig(arch="vgg16_bn", width=0.125, image_size=32, n_train=32, n_val=16, epochs=2,
                      batch_size=16)


def test_classifier_head():
    model = SceneClassifier(MultiLevelEncoder("resnet18"))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_training_is_deterministic_and_records_itself(tmp_path):
    a = train_scene_classifier(TINY, tmp_path / "a.pt", progress=False)
    b = train_scene_classifier(TINY, tmp_path / "b.pt", progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a["encoder"].values(), b["encoder"].values()))
    rec = a["record"]
    assert len(rec["losses"]) == 2 and 0 <= rec["val_accuracy"] <= 1
    assert rec["config"]["arch"] == "vgg16_bn" and rec["losses"] == b["record"]["losses"]


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    real, calls = pretrain._train_epoch, []

    def dies_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain, "_train_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_scene_classifier(TINY, tmp_path / "enc.pt", progress=False)
    partial = torch.load(tmp_path / "enc.partial.pt", weights_only=True)
    assert len(partial["training"]["record"]["losses"]) == 1
    resumed = train_scene_classifier(TINY, tmp_path / "enc.pt", progress=False)
    assert len(calls) == 3  # only the missing epoch ran again
    monkeypatch.setattr(pretrain, "_train_epoch", real)
    straight = train_scene_classifier(TINY, tmp_path / "straight.pt", progress=False)
    assert resumed["record"]["losses"] == straight["record"]["losses"]
    for x, y in zip(resumed["encoder"].values(), straight["encoder"].values()):
        assert torch.equal(x, y)


def test_synthetic_encoder_is_cached_and_frozen(tmp_path):
    enc, rec = synthetic_encoder(TINY, tmp_path, progress=False)
    files = list(tmp_path.glob("encoder-vgg16_bn-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.partial.pt"))
    again, rec2 = synthetic_encoder(TINY, tmp_path, progress=False)  # from the cache
    assert rec2 == rec
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(enc(x)[-1], again(x)[-1])
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    none, _ = synthetic_encoder(TINY, tmp_path, padding="circular", progress=False)
    assert none.padding == "circular"
