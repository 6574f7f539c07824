import pytest
import torch
from posinfo.models.segmenter import narrow_deeplabv3
from posinfo.probe import position_channels as pc
from torch import nn


def _planted_features(images: torch.Tensor) -> torch.Tensor:
    """Eight channels: channel 5 is the image's mean over its left half (position only), the
    others respond to content wherever it is (flip-invariant), some of them more strongly."""
    b = images.shape[0]
    content = images.mean(dim=(1, 2, 3))  # the same for an image and its flip
    maps = content.view(b, 1, 1, 1) * torch.arange(1, 9.0).view(1, 8, 1, 1) * torch.ones(b, 8, 4, 4)
    left = images[..., : images.shape[-1] // 2].mean(dim=(1, 2, 3))
    maps[:, 5] = left.view(b, 1, 1)
    return maps


def _one_sided(n: int, side: str) -> torch.Tensor:
    """Dark images with a bright square on one side."""
    x = torch.zeros(n, 3, 16, 16)
    cols = slice(1, 5) if side == "left" else slice(11, 15)
    x[..., 6:10, cols] = torch.rand(n, 1, 1, 1) + 0.5
    return x


def test_planted_position_channel_ranks_first():
    images = torch.cat([_one_sided(6, "left"), _one_sided(6, "right")])
    diffs = pc.flip_differences(_planted_features, images)
    assert diffs.shape == (12, 8)
    assert pc.rank_overall(diffs)[0] == 5
    # the strongest channel is not the position channel
    assert pc.rank_magnitude(pc.pooled(_planted_features, images))[0] == 7


def test_region_rankings_find_the_left_and_right_channel():
    ranks = pc.region_rankings(_planted_features, _one_sided(5, "left"), _one_sided(5, "right"))
    assert ranks["left"][0] == 5  # fires more when the object is on the left
    assert ranks["right"][-1] == 5  # and less when it is on the right


def test_mirrored_kernels_flip_every_conv_and_leave_the_original():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    before = [p.clone() for p in net.parameters()]
    mirrored = pc.mirror_kernels(net)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert torch.equal(mirrored[0].weight, net[0].weight.flip(-1))
    x = torch.rand(2, 3, 9, 9)  # stride 1, symmetric padding: the mirror of a flip is exact
    assert torch.allclose(mirrored(x.flip(-1)), net(x).flip(-1), atol=1e-5)


def test_kernel_flip_rankings_are_permutations():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
    ranks = pc.rankings(net, pc.mirror_kernels(net), torch.rand(4, 3, 8, 8))
    assert set(ranks) == set(pc.RANKINGS)
    for r in ranks.values():
        assert sorted(r.tolist()) == list(range(6))


def test_zeroing_changes_exactly_the_chosen_channels_and_is_undone():
    torch.manual_seed(0)
    model = narrow_deeplabv3(3, width=4, head_channels=8).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        intact_features, intact = model.features(x), model(x)
        alive = intact_features.flatten(2).abs().sum((0, 2)).nonzero().flatten()
        chosen = alive[[0, len(alive) // 2, -1]].tolist()  # channels that are not zero anyway
        with pc.zeroed_channels(model.last_stage, chosen):
            zeroed_features, attacked = model.features(x), model(x)
        after = model(x)
    changed = (zeroed_features != intact_features).flatten(2).any(-1).any(0)
    assert changed.nonzero().flatten().tolist() == chosen
    assert (zeroed_features[:, chosen] == 0).all()
    assert not torch.equal(attacked, intact)
    assert torch.equal(after, intact)
    assert not model.last_stage._forward_hooks
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_zeroing_hook_is_removed_after_an_error():
    stage = nn.Identity()
    with pytest.raises(RuntimeError):
        with pc.zeroed_channels(stage, [0]):
            raise RuntimeError("boom")
    assert not stage._forward_hooks


def test_random_channels_are_distinct_and_reproducible():
    a = pc.random_channels(50, 10, torch.Generator().manual_seed(1))
    b = pc.random_channels(50, 10, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and len(set(a.tolist())) == 10 and a.max() < 50
