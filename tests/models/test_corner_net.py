import torch
from posinfo.models.corner_net import CornerNet, corner_patches, train_corner_net


def test_corner_patches():
    x, y = corner_patches(6, canvas=16, patch=4, background=0.5, seed=1)
    assert x.shape == (6, 3, 16, 16) and y.tolist() == [0, 1, 0, 1, 0, 1]
    tl, br = x[0], x[1]
    assert (tl[:, 4:, :] == 0.5).all() and (tl[:, :, 4:] == 0.5).all()  # only the top-left patch
    assert (br[:, :12, :] == 0.5).all() and (br[:, :, :12] == 0.5).all()
    assert not (tl[:, :4, :4] == 0.5).all()
    assert torch.equal(x, corner_patches(6, canvas=16, patch=4, background=0.5, seed=1)[0])


def test_circular_padding_cannot_tell_the_corners_apart():
    """On a torus the bottom-right placement is a shift of the top-left one, and the conv + ReLU +
    global max pool is exactly invariant to it: identical logits for both corners."""
    x, _ = corner_patches(2, canvas=16, patch=4, seed=0)
    same = x[:1].clone()
    moved = torch.roll(same, shifts=(12, 12), dims=(2, 3))  # top-left patch to bottom-right
    assert torch.equal(moved[:, :, 12:, 12:], same[:, :, :4, :4])
    torch.manual_seed(0)
    circular, zero = CornerNet("circular"), CornerNet("zeros")
    zero.load_state_dict(circular.state_dict())
    assert torch.allclose(circular(same), circular(moved), atol=1e-6)
    assert not torch.allclose(zero(same), zero(moved), atol=1e-4)


def test_trained_networks_follow_the_border():
    assert train_corner_net("zeros", seed=0, n_train=128, n_test=128, steps=100) >= 0.95
    assert abs(train_corner_net("circular", seed=0, n_train=128, n_test=128, steps=100) - 0.5) < 0.1
