import math

import pytest
import torch
from posinfo.data.targets import (NOISE_CORRELATION, NOISE_MEAN, NOISE_SD, PATTERNS,
                                  gaussian_noise, position_map, position_maps, synthetic_inputs)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("size", [7, 28, 96, 256])
def test_maps_span_zero_to_one(pattern, size):
    m = position_map(pattern, size)
    assert m.shape == (size, size) and m.dtype == torch.float32
    assert m.min().item() == 0.0 and m.max().item() == 1.0


def test_horizontal_and_vertical_gradients():
    h, v = position_map("H", 64), position_map("V", 64)
    assert torch.allclose(h, v.T)
    assert (h[:, 1:] > h[:, :-1]).all()  # increases left to right
    assert torch.allclose(h[0], h[-1])  # constant down each column
    assert h[0, 0] == 0 and h[0, -1] == 1


def test_gaussian_matches_protocol_at_reference_size():
    g = position_map("G", 256)
    assert g[0, 0] == 0 and g[127:129, 127:129].min() > 0.999
    # the middle of an edge sits near 0.38 (PROTOCOLS.md)
    assert abs(g[0, 128].item() - 0.38) < 0.02
    assert torch.allclose(g, g.flip(0)) and torch.allclose(g, g.T)


def test_stripes_have_two_and_a_half_periods():
    hs = position_map("HS", 256)
    col = hs[:, 0]
    expected = 0.5 * (1 + torch.cos(2 * math.pi * 2.5 * (torch.arange(256) + 0.5) / 256))
    assert torch.allclose(col, (expected - expected.min()) / (expected.max() - expected.min()), atol=1e-5)
    assert torch.allclose(hs[:, 0], hs[:, -1])  # varies along y only
    assert torch.allclose(position_map("VS", 256), hs.T)


def test_resized_maps_match_the_formula_at_the_small_size():
    from posinfo.data.targets import _reference_map
    for pattern in PATTERNS:
        direct = _reference_map(pattern, 32).float()
        direct = (direct - direct.min()) / (direct.max() - direct.min())
        assert (position_map(pattern, 32) - direct).abs().max() < 0.05, pattern


def test_stack_and_errors():
    assert position_maps(["H", "G"], 16).shape == (2, 16, 16)
    with pytest.raises(ValueError, match="unknown pattern"):
        position_map("X", 16)
    with pytest.raises(ValueError, match="at least 2"):
        position_map("H", 1)


def test_synthetic_inputs():
    assert synthetic_inputs("black", 2, 8).eq(0).all()
    assert synthetic_inputs("white", 2, 8).eq(1).all()
    noise = synthetic_inputs("noise", 3, 8, seed=1)
    assert noise.shape == (3, 3, 8, 8) and 0 <= noise.min() and noise.max() <= 1
    assert torch.equal(noise, synthetic_inputs("noise", 3, 8, seed=1))
    assert not torch.equal(noise, synthetic_inputs("noise", 3, 8, seed=2))
    with pytest.raises(ValueError, match="unknown synthetic input"):
        synthetic_inputs("grey", 1, 8)


def test_noise_has_the_authors_statistics():
    """Per-channel mean .10 and sd .09, channels correlated .87 (PROTOCOLS.md, A), after clipping:
    not uniform noise, whose mean is .5."""
    x = gaussian_noise(8, 64, seed=0).transpose(0, 1).flatten(1)  # [3, pixels]
    assert torch.allclose(x.mean(1), torch.full((3,), NOISE_MEAN), atol=0.003)
    assert torch.allclose(x.std(1), torch.full((3,), NOISE_SD), atol=0.003)
    corr = torch.corrcoef(x)
    assert (corr[~torch.eye(3, dtype=torch.bool)] - NOISE_CORRELATION).abs().max() < 0.01
    assert x.min() >= 0 and x.max() <= 1
