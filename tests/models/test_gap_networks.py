import pytest
import torch
from posinfo.models.gap_networks import GAPNet, PermuteNet, apply_padding, build_network, output_size
from torch import nn

PADDINGS = ["zero", "reflect", "replicate", "circular", "none"]


def test_gapnet_pools_one_channel_per_class_and_has_no_linear_layer():
    net = build_network("gapnet", 9, width=0.125)
    x = torch.randn(2, 3, 48, 48)
    assert net(x).shape == (2, 9)
    assert not any(isinstance(m, nn.Linear) for m in net.modules())
    assert net.head.trunk[0].out_channels == 9 and net.pooled(x).shape == (2, 64)
    # the logits are the spatial mean of the head's map
    net.eval()
    assert torch.allclose(net(x), net.head(net.backbone(x)).mean((2, 3)))


def test_stem_is_7x7_stride_2_without_max_pool():
    net = build_network("gapnet", 4, width=0.125)
    conv1 = net.backbone.trunk[0]
    assert conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert output_size(net, 64) == (4, 4)  # 64 / 2 (stem) / 8 (three stride-2 stages)


def test_permutation_is_new_every_call_and_a_true_permutation():
    net = PermuteNet(5, width=0.125, seed=0)
    x = torch.randn(2, 3, 32, 32)
    perms = []
    for _ in range(4):
        net(x)
        perms.append(net.last_permutation.clone())
    for p in perms:  # in training, one permutation shared by the batch
        assert torch.equal(p.sort().values, torch.arange(64))
    assert all(not torch.equal(a, b) for i, a in enumerate(perms) for b in perms[i + 1:])
    net.eval()  # also at test time, then one per sample
    a = net(x)
    first = net.last_permutation.clone()
    assert first.shape == (2, 64) and torch.equal(first.sort(dim=1).values, torch.arange(64).expand(2, 64))
    assert not torch.equal(first[0], first[1])
    b = net(x)
    assert not torch.equal(first, net.last_permutation) and not torch.allclose(a, b)


def test_permutation_is_applied_to_the_pooled_channels():
    net = PermuteNet(3, width=0.125, seed=1).eval()
    x = torch.randn(2, 3, 32, 32)
    with net.seeded(7):
        out = net(x)
    z = net.pooled(x)
    assert torch.allclose(out, net.fc(z.gather(1, net.last_permutation)))
    net.train()
    out = net(x)
    assert torch.allclose(out, net.fc(net.pooled(x)[:, net.last_permutation]), atol=1e-6)


def test_seeded_evaluation_leaves_the_training_stream_alone():
    x = torch.randn(2, 3, 32, 32)
    plain, evaluated = PermuteNet(3, width=0.125, seed=4), PermuteNet(3, width=0.125, seed=4)
    plain.draw_permutation()
    evaluated.draw_permutation()
    with evaluated.seeded(9):
        evaluated.eval()(x)
        inside = evaluated.last_permutation.clone()
    with evaluated.seeded(9):
        evaluated(x)
        assert torch.equal(evaluated.last_permutation, inside)  # repeatable
    assert torch.equal(plain.draw_permutation(), evaluated.draw_permutation())  # stream untouched


@pytest.mark.parametrize("mode", PADDINGS)
def test_each_padding_mode_reaches_every_convolution(mode):
    net = build_network("gapnet", 4, padding=mode, width=0.0625)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    if mode == "none":
        assert all(m.padding == (0, 0) for m in convs)
        assert output_size(net, 256)[0] > 0 and output_size(net, 48) == (0, 0)
    else:
        torch_mode = {"zero": "zeros"}.get(mode, mode)
        assert all(m.padding_mode == torch_mode and m.padding != (0, 0) for m in convs)
        assert net(torch.randn(1, 3, 48, 48)).shape == (1, 4)


def test_padding_changes_the_output_only_through_the_border():
    x = torch.rand(1, 3, 48, 48)
    outs = {m: build_network("permutenet", 3, padding=m, width=0.0625, seed=0).eval().pooled(x)
            for m in ("zero", "reflect", "circular")}
    assert not torch.allclose(outs["zero"], outs["reflect"])
    assert not torch.allclose(outs["zero"], outs["circular"])


def test_builds_are_seeded_and_unknown_names_fail():
    a, b = build_network("gapnet", 4, width=0.125, seed=3), build_network("gapnet", 4, width=0.125, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="unknown network"):
        build_network("mlp", 4)
    with pytest.raises(ValueError, match="unknown padding"):
        apply_padding(GAPNet(4, 0.125), "mirror")
