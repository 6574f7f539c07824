import pytest
import torch
import torch.nn.functional as F
from antialiased_cnns.blurpool import BlurPool
from posinfo.models import augshift
from posinfo.models.augshift import NetSpec, TrainSpec


def test_mse_term_is_zero_for_identical_views():
    torch.manual_seed(0)
    logits, z, y = torch.randn(6, 5), torch.randn(6, 16), torch.randint(0, 5, (6,))
    loss, parts = augshift.augshift_loss(logits, logits, z, z, y, lam=10.0)
    assert parts["mse"] == 0.0
    assert torch.isclose(loss, 2 * F.cross_entropy(logits, y))


def test_loss_is_eq1():
    torch.manual_seed(1)
    l1, l2, z1, z2 = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 8), torch.randn(4, 8)
    y = torch.tensor([0, 1, 2, 0])
    loss, parts = augshift.augshift_loss(l1, l2, z1, z2, y, lam=0.5)
    expected = F.cross_entropy(l1, y) + F.cross_entropy(l2, y) + 0.5 * ((z1 - z2) ** 2).mean()
    assert torch.isclose(loss, expected) and parts["mse"] > 0


@pytest.mark.parametrize("arch", augshift.ARCHS)
@pytest.mark.parametrize("stem", augshift.STEMS)
def test_classifiers_build_narrow_and_run(arch, stem):
    model = augshift.build_classifier(NetSpec(arch, 7, width=0.125, stem=stem), seed=0).eval()
    x = torch.rand(2, 3, 64, 64)
    assert model(x).shape == (2, 7) and model.features(x).shape == (2, 64)
    blurs = [m for m in model.modules() if isinstance(m, BlurPool)]
    assert bool(blurs) == (arch == "blurpool")
    assert all(b.filt.shape[0] == b.channels for b in blurs)
    same = augshift.build_classifier(NetSpec(arch, 7, width=0.125, stem=stem), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 same.state_dict().values()))


def test_stems_are_the_same_change_for_both_architectures():
    for stem, first_stride in (("cifar", 1), ("small", 1), ("imagenet", 2)):
        for arch in augshift.ARCHS:
            net = augshift.build_classifier(NetSpec(arch, 10, 0.25, stem)).encoder
            assert net.conv1.stride == (first_stride, first_stride)
            assert isinstance(net.maxpool, torch.nn.Identity) == (stem == "cifar")


def test_bad_specs():
    with pytest.raises(ValueError):
        NetSpec("vgg16")
    with pytest.raises(ValueError):
        NetSpec(stem="tiny")
    with pytest.raises(ValueError):
        TrainSpec(method="mixup")
    with pytest.raises(ValueError):
        TrainSpec(lam=-1.0)


def tiny_data():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (16,), generator=gen)
    x = torch.rand(16, 3, 8, 8, generator=gen) * 0.2
    x[:, 0] += y[:, None, None] * 0.8  # class 1 is red: an easy task
    return x, y


@pytest.mark.parametrize("method", augshift.METHODS)
def test_training_learns_and_is_deterministic(method, tmp_path):
    x, y = tiny_data()
    net, spec = NetSpec("resnet18", 2, 0.125, "small"), TrainSpec(method, epochs=3, batch_size=8,
                                                                  lr=5e-3, train_shift=2)
    runs = []
    for folder in ("a", "b"):
        model, history = augshift.trained_classifier(net, spec, x, y, data_key="tiny", seed=3,
                                                     cache_dir=tmp_path / folder, progress=False)
        runs.append((model, history))
    assert runs[0][1] == runs[1][1]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0].state_dict().values(),
                                                 runs[1][0].state_dict().values()))
    history = runs[0][1]
    assert history[-1]["ce"] < history[0]["ce"]
    assert ("mse" in history[0]) == (method == "augshift")


def test_trained_classifier_is_cached(tmp_path):
    x, y = tiny_data()
    net, spec = NetSpec("resnet18", 2, 0.125, "small"), TrainSpec("augshift", epochs=1, batch_size=8)
    a, hist = augshift.trained_classifier(net, spec, x, y, data_key="tiny", cache_dir=tmp_path,
                                          progress=False)
    files = list((tmp_path / "augshift").glob("*.pt"))
    assert len(files) == 1
    b, hist_b = augshift.trained_classifier(net, spec, x, y, data_key="tiny", cache_dir=tmp_path,
                                            progress=False)
    assert hist == hist_b and not b.training
    assert torch.equal(a(x[:4]), b(x[:4]))
    other = augshift.cache_key(net, TrainSpec("augshift", lam=2.0, epochs=1, batch_size=8), "tiny", 0)
    assert other != files[0].stem
    assert 0.0 <= augshift.accuracy(b, x, y) <= 1.0
