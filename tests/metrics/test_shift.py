import pytest
import torch
from posinfo.metrics.shift import consistency, consistency_curve, random_shifts, sample_offsets, shift_images


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_offsets_cover_the_range_and_stay_in_it():
    off = sample_offsets(5000, 3, gen())
    assert off.shape == (5000, 2) and off.dtype == torch.int64
    assert off.min() == -3 and off.max() == 3
    assert set(off[:, 0].tolist()) == set(range(-3, 4))
    assert torch.equal(off, sample_offsets(5000, 3, gen()))  # same seed, same shifts
    assert sample_offsets(10, 0, gen()).abs().sum() == 0
    with pytest.raises(ValueError):
        sample_offsets(3, -1, gen())


def test_shift_moves_content_by_the_offset_and_fills_zeros():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    out = shift_images(x, torch.tensor([[0, 0], [1, -2]]))
    assert torch.equal(out[0], x[0])
    # pixel (i, j) of the shifted image is (i + 1, j - 2) of the original
    assert torch.equal(out[1, :, :5, 2:], x[1, :, 1:, :4])
    assert (out[1, :, 5, :] == 0).all() and (out[1, :, :, :2] == 0).all()


def test_shift_modes_and_bad_input():
    x = torch.rand(1, 3, 8, 8)
    out = shift_images(x, torch.tensor([[0, 2]]), pad_mode="circular")
    assert torch.allclose(out, torch.roll(x, shifts=-2, dims=-1))
    with pytest.raises(ValueError, match="pad_mode"):
        shift_images(x, torch.tensor([[0, 1]]), pad_mode="mirror")
    with pytest.raises(ValueError, match="offsets"):
        shift_images(x, torch.tensor([0, 1]))
    assert random_shifts(x, 3, gen()).shape == x.shape


class Constant(torch.nn.Module):
    """Ignores its input (and so every shift)."""

    def forward(self, x):
        return torch.tensor([0.0, 3.0, 1.0]).expand(len(x), 3)


class Random(torch.nn.Module):
    """Ignores its input and answers at random among 4 classes."""

    def __init__(self):
        super().__init__()
        self.gen = gen(1)

    def forward(self, x):
        return torch.rand(len(x), 4, generator=self.gen)


class MeanColour(torch.nn.Module):
    """The brightest channel of the whole image: unchanged by circular shifts."""

    def forward(self, x):
        return x.mean((2, 3))


def test_a_network_that_ignores_shifts_is_fully_consistent():
    images = torch.rand(50, 3, 16, 16)
    assert consistency(Constant(), images, 8, pairs=3) == 1.0
    assert consistency(MeanColour(), images, 8, pairs=3, pad_mode="circular") == 1.0
    assert consistency_curve(Constant(), images, [1, 4]) == {1: 1.0, 4: 1.0}


def test_a_random_network_is_near_chance():
    images = torch.rand(500, 3, 8, 8)
    value = consistency(Random(), images, 4, pairs=4)
    assert abs(value - 0.25) < 0.04  # 2000 pairs: standard error about 0.01


def test_a_position_reading_network_loses_consistency_with_the_shift():
    images = torch.zeros(200, 3, 16, 16)
    images[:, :, 6:10, 6:10] = 1.0  # a centred square; the net says which half holds more of it
    net = lambda x: torch.stack([x[..., :8].sum((1, 2, 3)), x[..., 8:].sum((1, 2, 3))], 1)  # noqa: E731
    assert consistency(net, images, 0) == 1.0
    assert consistency(net, images, 4, pairs=2) < 0.8
