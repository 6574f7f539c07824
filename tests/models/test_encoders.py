import pytest
import torch
from posinfo.models.encoders import (
    ARCHITECTURES,
    CHANNELS_LAST_MIN_SIDE,
    PADDINGS,
    MultiLevelEncoder,
    build_encoder,
    imagenet_weights_file,
    preferred_layout,
    set_padding,
)


def test_vgg16_taps_and_channels():
    enc = build_encoder("vgg16", width=0.25)
    feats = enc(torch.rand(2, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128, 128]
    assert [f.shape[-1] for f in feats] == [64, 32, 16, 8, 4]  # before each max-pool
    assert all((f >= 0).all() for f in feats)  # taps are ReLU outputs
    assert sum(MultiLevelEncoder("vgg16").channels) == 1472  # as in the paper


def test_resnet_taps():
    enc = build_encoder("resnet18")
    assert [f.shape[1:] for f in enc(torch.rand(1, 3, 64, 64))] == [
        (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert sum(MultiLevelEncoder("resnet152").channels) == 3840  # as in the paper


def test_random_weights_are_seeded_and_frozen():
    a, b = build_encoder("resnet18", seed=1), build_encoder("resnet18", seed=1)
    c = build_encoder("resnet18", seed=2)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(a(x)[-1], b(x)[-1]) and not torch.equal(a(x)[-1], c(x)[-1])
    assert not a.training and not any(p.requires_grad for p in a.parameters())


def test_no_padding_shrinks_maps_and_crops_resnet_shortcuts():
    x = torch.rand(1, 3, 224, 224)
    vgg = build_encoder("vgg16", width=0.125, padding="none")
    assert [f.shape[-1] for f in vgg(x)] == [220, 106, 47, 17, 2]
    res = build_encoder("resnet18", padding="none")
    sizes = [f.shape[-1] for f in res(torch.rand(1, 3, 448, 448))]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] < 112
    with pytest.raises(ValueError, match="cannot get it back"):
        set_padding(vgg, "zero")


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_keep_sizes_and_change_borders(mode):
    x = torch.rand(1, 3, 32, 32)
    zero, other = build_encoder("vgg16", width=0.125), build_encoder("vgg16", width=0.125, padding=mode)
    fz, fo = zero(x)[0], other(x)[0]
    assert fz.shape == fo.shape
    # relu1_2 follows two 3x3 convolutions: the border reaches two pixels in
    assert torch.allclose(fz[..., 2:-2, 2:-2], fo[..., 2:-2, 2:-2], atol=1e-6)
    assert not torch.allclose(fz, fo)  # border differs


def test_circular_padding_is_exactly_shift_equivariant_on_a_torus():
    enc = build_encoder("vgg16", width=0.125, padding="circular")
    x = torch.rand(1, 3, 64, 64)
    shifted = enc(torch.roll(x, (16, 32), (2, 3)))
    for level, (a, b) in enumerate(zip(shifted, enc(x))):
        s = 2**level
        assert torch.allclose(a, torch.roll(b, (16 // s, 32 // s), (2, 3)), atol=1e-5)


def test_zero_padding_is_not_shift_equivariant():
    enc = build_encoder("vgg16", width=0.125)
    x = torch.rand(1, 3, 64, 64)
    a, b = enc(torch.roll(x, (16, 32), (2, 3)))[1], torch.roll(enc(x)[1], (8, 16), (2, 3))
    assert not torch.allclose(a, b, atol=1e-3)


def test_imagenet_weights_load_from_local_file_or_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"fetch https://.*vgg16.*save it as"):
        build_encoder("vgg16", "imagenet")
    import torchvision
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None)
    path, _ = imagenet_weights_file("vgg16")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    enc = build_encoder("vgg16", "imagenet")
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(enc(x)[-1], reference.features[:30](x), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown arch"):
        MultiLevelEncoder("alexnet")
    with pytest.raises(ValueError, match="unknown padding"):
        build_encoder("resnet18", padding="mirror")
    with pytest.raises(ValueError, match="fixed width"):
        MultiLevelEncoder("resnet18", width=0.5)
    with pytest.raises(ValueError, match="width 1.0"):
        build_encoder("vgg16", "imagenet", width=0.5)
    with pytest.raises(ValueError, match="unknown weights"):
        build_encoder("vgg16", "synthetic")
    assert set(PADDINGS) == {"zero", "none", "reflect", "replicate", "circular"}
    assert "resnet152" in ARCHITECTURES


def test_large_inputs_run_channels_last_with_the_same_values():
    small, large = torch.rand(2, 3, 32, 32), torch.rand(2, 3, CHANNELS_LAST_MIN_SIDE, 80)
    assert preferred_layout(small) is small
    assert preferred_layout(large).is_contiguous(memory_format=torch.channels_last)
    assert not large.is_contiguous(memory_format=torch.channels_last)
    enc = build_encoder("vgg16_bn", "random", width=0.125, seed=0)
    with torch.no_grad():
        fast = enc(large)
        plain = [enc.trunk[: tap + 1](large) for tap in enc.taps]  # the layers without the switch
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, rtol=1e-4, atol=1e-5)
