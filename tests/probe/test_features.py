import pytest
import torch
from posinfo.models.encoders import build_encoder
from posinfo.probe.features import FeatureCache, concat_levels, image_on_grid, multilevel_features


def test_concat_levels_resizes_and_stacks():
    levels = [torch.rand(2, 4, 16, 16), torch.rand(2, 8, 4, 4)]
    out = concat_levels(levels, 8)
    assert out.shape == (2, 12, 8, 8)


def test_multilevel_features_match_a_direct_forward_pass():
    enc = build_encoder("vgg16", width=0.125)
    x = torch.rand(5, 3, 32, 32)
    feats = multilevel_features(enc, x, 4, batch_size=2, dtype=torch.float32)
    assert feats.shape == (5, 8 + 16 + 32 + 64 + 64, 4, 4)
    assert torch.allclose(feats, concat_levels(enc(x), 4), atol=1e-5)
    last = multilevel_features(enc, x, 4, levels=[4])
    assert last.shape == (5, 64, 4, 4) and last.dtype == torch.float16


def test_cache_computes_once_and_reuses_from_disk(tmp_path, monkeypatch):
    enc = build_encoder("vgg16", width=0.125)
    x = torch.rand(3, 3, 32, 32)
    calls = []
    import posinfo.probe.features as features
    real = features.multilevel_features
    monkeypatch.setattr(features, "multilevel_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = FeatureCache(tmp_path)(enc, x, 4)
    again = FeatureCache(tmp_path)(enc, x, 4)  # a new run: read from disk
    assert torch.equal(first, again) and len(calls) == 1
    assert len(list(tmp_path.glob("features-*.pt"))) == 1
    FeatureCache(tmp_path)(enc, x + 0.1, 4)  # other images: a new entry
    assert len(calls) == 2
    memory = FeatureCache(None)
    memory(enc, x, 4)
    memory(enc, x, 4)
    assert len(calls) == 3


def test_image_on_grid_resizes_like_the_papers_decoder():
    """The raw image reaches the readout on the feature grid, corners kept (align_corners=True)."""
    images = torch.rand(2, 3, 96, 96)
    grid = image_on_grid(images, 12)
    assert grid.shape == (2, 3, 12, 12) and grid.dtype == torch.float32
    assert torch.allclose(grid[..., 0, 0], images[..., 0, 0])
    assert torch.allclose(grid[..., -1, -1], images[..., -1, -1])


class _Scaled(torch.nn.Module):
    """An 'encoder' whose one level is the images times ``scale``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return [x * self.scale]


def test_features_too_large_for_float16_are_stored_as_bfloat16():
    x = torch.rand(4, 3, 8, 8) + 0.5
    small = multilevel_features(_Scaled(1.0), x, 4, batch_size=2)
    assert small.dtype == torch.float16
    with pytest.warns(UserWarning, match="exceed the float16 range"):
        large = multilevel_features(_Scaled(1e6), x, 4, batch_size=2, name="big")
    assert large.dtype == torch.bfloat16 and torch.isfinite(large.float()).all()
    assert torch.allclose(large.float(), concat_levels([x * 1e6], 4), rtol=1e-2)


def test_non_finite_features_are_an_error_naming_the_encoder():
    x = torch.rand(4, 3, 8, 8)
    x[3] = float("nan")
    with pytest.raises(ValueError, match=r"resnet152 \(random\) gives NaN or inf features on images 2..3"):
        multilevel_features(_Scaled(1.0), x, 4, batch_size=2, name="resnet152 (random)")


def test_cached_features_with_inf_are_recomputed_with_a_warning(tmp_path):
    """An entry written before the finiteness check (float16 that overflowed) is not served."""
    enc, x = _Scaled(1.0), torch.rand(2, 3, 8, 8)
    good = FeatureCache(tmp_path)(enc, x, 4)
    (entry,) = tmp_path.glob("features-*.pt")
    torch.save(torch.full_like(good, float("inf")), entry)
    with pytest.warns(UserWarning, match="hold NaN or inf; recomputing"):
        again = FeatureCache(tmp_path)(enc, x, 4, name="resnet152 (random)")
    assert torch.equal(again, good)


def test_stage_channels():
    from posinfo.probe.features import stage_channels
    channels = [8, 16, 32]
    assert stage_channels(channels, "all") == slice(None)
    assert stage_channels(channels, "f1") == slice(0, 8)
    assert stage_channels(channels, "f3") == slice(24, 56)
    for bad in ("f0", "f4", "g1", "f"):
        with pytest.raises(ValueError, match="stage must be"):
            stage_channels(channels, bad)
