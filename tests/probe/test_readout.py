import pytest
import torch
from posinfo.data.targets import position_map, position_maps
from posinfo.metrics.position import score
from posinfo.probe.readout import PosENet, ReadoutTraining, fit_readout, least_squares_readout, predict


def planted(n=48, c=6, h=10, seed=0):
    """Features whose channel 0 is the H map plus noise: position is linearly readable."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, c, h, h, generator=g)
    f[:, 0] = 3 * position_map("H", h) + 0.1 * torch.randn(n, h, h, generator=g)
    return f


def test_posenet_shapes_and_layers():
    net = PosENet(5, n_layers=3, kernel_size=3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(5, 5), (5, 5), (5, 1)]
    y = net(torch.rand(2, 5, 12, 12), 24)
    assert y.shape == (2, 24, 24) and (0 < y).all() and (y < 1).all()
    assert PosENet(5, kernel_size=1)(torch.rand(1, 5, 6, 6), 6).shape == (1, 6, 6)
    with pytest.raises(ValueError):
        PosENet(5, n_layers=0)


def test_fit_reads_out_planted_position_and_is_deterministic():
    f = planted(n=96)
    gt = position_map("H", 20)
    protocol = ReadoutTraining(epochs=15)
    a = fit_readout(f, gt, protocol, seed=1)
    b = fit_readout(f, gt, protocol, seed=1)
    pa, pb = predict(a, f, 20), predict(b, f, 20)
    assert torch.equal(pa, pb)
    assert score(pa, gt).spc > 0.9


def test_fit_cannot_read_position_from_noise():
    g = torch.Generator().manual_seed(0)
    f, test = torch.randn(64, 4, 10, 10, generator=g), torch.randn(32, 4, 10, 10, generator=g)
    gt = position_map("H", 10)
    model = fit_readout(f, gt, ReadoutTraining(epochs=5))
    assert abs(score(predict(model, test, 10), gt).spc) < 0.2


def test_transform_runs_on_every_batch():
    f = planted()
    calls = []
    fit_readout(f, position_map("H", 10), ReadoutTraining(epochs=2, batch_size=16),
                transform=lambda b: calls.append(len(b)) or b)
    assert sum(calls[1:]) == 2 * len(f)  # the first call only sizes the readout


def test_least_squares_is_exact_on_a_linear_target():
    """If the target is exactly a 3x3 linear map of the features, least squares recovers it."""
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1, 3, 8, 8, generator=g).expand(20, -1, -1, -1).clone()
    w = torch.randn(1, 3, 3, 3, generator=g)
    target = torch.nn.functional.conv2d(f[:1], w)[0, 0] + 0.5  # [6, 6], the readout's own grid
    (lin,) = least_squares_readout(f, target[None], kernel_size=3, ridges=(1e-10,))
    assert torch.allclose(lin.conv(f[:1])[0, 0], target, atol=1e-3)
    assert lin.ridge == 1e-10 and lin.condition >= 1


def test_least_squares_bounds_the_sgd_fit_on_training_data():
    """Nearly unregularised, least squares fits the training images at least as well as SGD."""
    f = planted(n=64)
    gts = position_maps(["H", "G"], 10)
    lin = least_squares_readout(f, gts, ridges=(1e-8,))
    assert len(lin) == 2
    sgd = fit_readout(f, gts[0], ReadoutTraining(epochs=5))
    mse = lambda m: ((predict(m, f, 10) - gts[0]) ** 2).mean().item()  # noqa: E731
    assert mse(lin[0]) <= mse(sgd) + 1e-6


def test_least_squares_refuses_non_finite_features_naming_them():
    f = planted(n=8)
    f[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"least squares on resnet152 \(random\): the features hold NaN"):
        least_squares_readout(f, position_maps(["H"], 10), name="resnet152 (random)")


def test_held_out_images_are_every_fifth_or_the_last():
    from posinfo.probe.readout import held_out
    assert held_out(10).nonzero().flatten().tolist() == [4, 9]
    assert held_out(3).nonzero().flatten().tolist() == [2]
    with pytest.raises(ValueError, match="at least 2 images"):
        held_out(1)


def _equations(x, y):
    """NormalEquations of rows ``x`` [M, d-1] (a constant appended) and targets ``y`` [M, P]."""
    from posinfo.probe.readout import NormalEquations
    rows = torch.cat([x, torch.ones(len(x), 1)], 1)
    stats = NormalEquations.zeros(rows.shape[1], y.shape[1])
    stats.add(rows, y)
    return stats, rows


def test_normal_equations_solve_centred_ridge_without_penalising_the_intercept():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=g), torch.randn(50, 2, generator=g) + 3
    stats, rows = _equations(x, y)
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    lam = 0.5 * (xc**2).sum(0).mean()
    w = torch.linalg.solve(xc.T @ xc + lam * torch.eye(4, dtype=torch.float64), xc.T @ yc)
    got = stats.solve(0.5)
    assert torch.allclose(got[:-1], w, atol=1e-6)
    assert torch.allclose(got[-1], (y.mean(0) - x.mean(0) @ w.float()).double(), atol=1e-5)
    flat = stats.solve(1e9)  # all ridge: the prediction is the targets' mean, not zero
    assert torch.allclose(rows.double() @ flat, y.mean(0).double().expand(50, 2), atol=1e-4)


def test_condition_numbers_are_those_of_the_solved_systems():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 5, generator=g)
    x[:, 4] = x[:, 3]  # collinear: singular without a ridge
    stats, _ = _equations(x, torch.randn(30, 1, generator=g))
    scatter = stats.centred()[0]
    for ridge, cond in zip((1e-3, 1.0), stats.conditions([1e-3, 1.0])):
        shifted = scatter + ridge * scatter.diagonal().mean() * torch.eye(5, dtype=torch.float64)
        assert cond == pytest.approx(float(torch.linalg.cond(shifted)), rel=1e-6)
    assert stats.conditions([1e-3])[0] > 100 * stats.conditions([1.0])[0]


def test_ridge_is_small_for_readable_position_and_large_for_none():
    """Held-out images choose: planted position needs little ridge; position-blind features
    (a null control: noise, many channels, few images) need one at least as large as their
    variance, which shrinks the fit towards the mean map."""
    gts = position_maps(["H"], 10)
    (readable,) = least_squares_readout(planted(n=40), gts)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        (blind,) = least_squares_readout(torch.randn(10, 16, 10, 10, generator=g), gts)
        assert blind.ridge >= 1
    assert readable.ridge <= 1e-3


def test_constant_features_give_the_mean_map():
    """Features that do not vary (a dead layer) can only predict the targets' mean."""
    gts = position_maps(["H"], 7)
    (lin,) = least_squares_readout(torch.ones(6, 2, 7, 7), gts, kernel_size=1)
    pred = lin(torch.ones(1, 2, 7, 7), 7)
    assert torch.allclose(pred, gts.mean().expand(1, 7, 7), atol=1e-5) and lin.condition == 1


def test_a_large_feature_mean_changes_nothing():
    """The rows are offset before their float32 products: adding 20 to every feature (a mean
    far above their spread) leaves the chosen ridges and the predictions as they were."""
    f = planted(n=40)
    gts = position_maps(["H", "G"], 10)
    plain, shifted = least_squares_readout(f, gts), least_squares_readout(f + 20, gts)
    assert [m.ridge for m in plain] == [m.ridge for m in shifted]
    for a, b in zip(plain, shifted):
        assert torch.allclose(predict(a, f, 10), predict(b, f + 20, 10), atol=1e-3)


def test_held_out_errors_are_the_residuals_of_each_fit():
    from posinfo.probe.readout import Patches, held_out_errors
    g = torch.Generator().manual_seed(3)
    f, y = torch.randn(6, 2, 5, 5, generator=g), torch.rand(9, 2, generator=g)  # 3x3 grid, 2 maps
    rows = Patches.of(f, 3, 0)
    w = torch.randn(4, 19, 2, generator=g, dtype=torch.float64)  # 4 fits, d = 2 * 9 + 1
    select = torch.tensor([True, False, False, True, False, True])
    errors = held_out_errors(f, y, rows, select, w, batch_size=2)
    x = rows(f[select]).double()
    direct = torch.stack([((x @ w[r] - y.double().repeat(3, 1)) ** 2).sum(0) for r in range(4)])
    assert errors.shape == (4, 2) and torch.allclose(errors, direct, rtol=1e-5)


def test_best_readout_is_chosen_by_training_loss():
    from posinfo.probe.readout import fit_best_readout, readout_seeds, training_loss
    assert readout_seeds(7, 3) == [7, 1007, 2007] and readout_seeds(0, 1) == [0]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, 6, 6, generator=gen)
    target = torch.linspace(0, 1, 8).expand(8, 8).contiguous()
    protocol = ReadoutTraining(epochs=2, batch_size=8)
    best, loss = fit_best_readout(x, target, protocol, seeds=[0, 1, 2])
    losses = [training_loss(fit_readout(x, target, protocol, seed=s), x, target) for s in (0, 1, 2)]
    assert loss == pytest.approx(min(losses)) and training_loss(best, x, target) == pytest.approx(loss)
    one, only = fit_best_readout(x, target, protocol, seeds=[1])
    assert only == pytest.approx(losses[1])
    with pytest.raises(ValueError, match="at least one seed"):
        fit_best_readout(x, target, protocol, seeds=[])


@pytest.mark.parametrize("grid, size", [((12, 12), (196, 196)), ((5, 7), (20, 33))])
def test_upsampled_mse_equals_the_loss_on_upsampled_maps(grid, size):
    import torch.nn.functional as F
    from posinfo.probe.readout import UpsampledMSE, upsampling_matrix
    gen = torch.Generator().manual_seed(1)
    y = torch.rand(4, *grid, generator=gen, requires_grad=True)
    target = torch.rand(*size, generator=gen)
    up = F.interpolate(y[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    rows, cols = upsampling_matrix(grid[0], size[0]), upsampling_matrix(grid[1], size[1])
    assert torch.allclose(rows.float() @ y.detach() @ cols.float().T, up.detach(), atol=1e-6)
    reference = F.mse_loss(up, target.expand_as(up))
    (expected,) = torch.autograd.grad(reference, y)
    loss = UpsampledMSE(target, grid)(y)
    (grad,) = torch.autograd.grad(loss, y)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert torch.allclose(grad, expected, rtol=1e-4, atol=1e-9)
    assert UpsampledMSE(target, grid)(y.detach() * 0 + 2).item() != pytest.approx(reference.item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_least_squares_on_the_gpu_matches_the_cpu():
    g = torch.Generator().manual_seed(3)
    f = torch.randn(12, 6, 8, 8, generator=g)
    f[:, 0] += torch.linspace(0, 1, 8)  # position planted in one channel
    gts = position_maps(["H", "G"], 8)
    cpu = least_squares_readout(f, gts)
    gpu = least_squares_readout(f, gts, device="cuda")
    for a, b in zip(cpu, gpu):
        assert b.conv.weight.device.type == "cpu" and a.ridge == b.ridge
        assert torch.allclose(a.conv.weight, b.conv.weight, atol=1e-4)


def test_the_refit_reads_every_image_held_out_ones_included(monkeypatch):
    from posinfo.probe import readout

    seen = []
    real = readout._refit
    monkeypatch.setattr(readout, "_refit", lambda stats, *a: seen.append(stats.gram[-1, -1].item())
                        or real(stats, *a))
    f = torch.randn(11, 4, 6, 6, generator=torch.Generator().manual_seed(5))
    least_squares_readout(f, position_maps(["H"], 6))  # a 3x3 kernel: 4 x 4 cells per image
    assert seen == [11 * 16]  # the constant column's sum counts the rows: all 11 images
