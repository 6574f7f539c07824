import pytest
import torch
from posinfo.models import dense as dt
from torch import nn


def config(**kw):
    base = dict(task="saliency", num_outputs=1, data="test", width=0.0625, image_size=32,
                n_train=8, epochs=2, batch_size=4, decoder_channels=4)
    return dt.DenseConfig(**(base | kw))


def scenes(epoch, n=8, size=32, task="saliency"):
    g = torch.Generator().manual_seed(epoch)
    images = torch.rand(n, 3, size, size, generator=g)
    if task == "saliency":
        return images, (images.mean(1) > 0.5).float()
    return images, (images[:, 0] * 3).long().clamp(max=2)


def test_output_has_the_input_size_with_and_without_padding():
    for pad in ("zero", "none"):
        net = dt.build_network(config(padding=pad, image_size=196, num_outputs=3, task="segmentation"))
        assert net.eval()(torch.rand(1, 3, 196, 196)).shape == (1, 3, 196, 196)


def test_decoder_has_no_spatial_kernel():
    net = dt.build_network(config())
    decoder = [m for name, m in net.named_modules() if isinstance(m, nn.Conv2d)
               and not name.startswith("encoder")]
    assert decoder and all(m.kernel_size == (1, 1) and m.padding == (0, 0) for m in decoder)


def test_only_padding_lets_a_constant_image_give_a_varying_map():
    flat = torch.full((1, 3, 196, 196), 0.7)
    with torch.no_grad():
        unpadded = dt.build_network(config(padding="none", image_size=196)).eval()(flat)
        padded = dt.build_network(config(padding="zero", image_size=196)).eval().encoder(flat)
    assert torch.allclose(unpadded, unpadded[..., :1, :1].expand_as(unpadded), atol=1e-5)
    assert padded[0].std() > 1e-3  # the border shows in the first stage already


def test_task_loss_ignores_boundary_pixels():
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = 5.0
    target = torch.tensor([[[1, 1], [255, 255]]])
    all_right = dt.task_loss(logits, target, "segmentation")
    assert all_right < 0.02
    sal = dt.task_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 2, 2), "saliency")
    assert sal.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_config_checks_task():
    with pytest.raises(ValueError, match="unknown task"):
        config(task="depth")
    with pytest.raises(ValueError, match="one output"):
        config(num_outputs=2)


def test_training_is_deterministic_and_resumes(tmp_path):
    cfg = config()
    full, record = dt.dense_network(cfg, scenes, tmp_path / "a", progress=False)
    assert len(record["losses"]) == 2
    again, _ = dt.dense_network(cfg, scenes, tmp_path / "b", progress=False)
    for a, b in zip(full.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)

    def interrupted(epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return scenes(epoch)
    with pytest.raises(KeyboardInterrupt):
        dt.dense_network(cfg, interrupted, tmp_path / "c", progress=False)
    assert len(list((tmp_path / "c").glob("*.partial.pt"))) == 1
    resumed, rec = dt.dense_network(cfg, scenes, tmp_path / "c", progress=False)
    assert rec["losses"] == record["losses"]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_cached_network_is_reused(tmp_path):
    cfg = config(epochs=1)
    first, _ = dt.dense_network(cfg, scenes, tmp_path, progress=False)

    def no_data(epoch):
        raise AssertionError("a cached network must not be trained again")
    second, record = dt.dense_network(cfg, no_data, tmp_path, progress=False)
    assert len(record["losses"]) == 1
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert len(list(tmp_path.glob("dense-saliency-zero-*.pt"))) == 1


def test_predictions_and_frozen_encoder():
    images = torch.rand(3, 3, 32, 32)
    sal = dt.predict_dense(dt.build_network(config()), images, "saliency", batch_size=2)
    assert sal.shape == (3, 32, 32) and 0 <= sal.min() and sal.max() <= 1
    net = dt.build_network(config(task="segmentation", num_outputs=4))
    seg = dt.predict_dense(net, images, "segmentation")
    assert seg.dtype == torch.int64 and seg.max() < 4
    enc = dt.frozen_encoder(net)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert net.encoder.trunk[0].weight.requires_grad  # the network itself is untouched
