import pytest
import torch

from posinfo.chapters import augshift_imagenet
from posinfo.data.datasets import DatasetNotFoundError


def test_imagenet_launcher_checks(tmp_path, monkeypatch):
    with pytest.raises(SystemExit):
        augshift_imagenet.parse_args(["--data-root", str(tmp_path), "--model", "vgg"])
    with pytest.raises(SystemExit):
        augshift_imagenet.parse_args(["--data-root", str(tmp_path), "--model", "augshift",
                                      "--epochs", "0"])
    args = augshift_imagenet.parse_args(["--data-root", str(tmp_path), "--model", "augshift"])
    with pytest.raises(DatasetNotFoundError, match="train"):
        augshift_imagenet.check_environment(args)
    for split in ("train", "val"):
        (tmp_path / split / "n01440764").mkdir(parents=True)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        augshift_imagenet.check_environment(args)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(var, "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA"):
        augshift_imagenet.check_environment(args)


def _ddp_rank(rank: int, port: int, method: str, out: str) -> None:
    """One of two CPU processes: a tiny classifier in DDP (gloo), one training step on this
    rank's own batch, then the conv1 weights saved for the parent to compare."""
    import os

    from posinfo.models.augshift import NetSpec, TrainSpec, build_classifier
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(100 + rank)  # each rank sees different images, as with DistributedSampler
    net = build_classifier(NetSpec("resnet18", 10, 0.0625, "cifar"), seed=0)
    model = torch.nn.parallel.DistributedDataParallel(augshift_imagenet.WithFeatures(net))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = ((torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)), torch.randint(0, 10, (4,)))
    augshift_imagenet.train_step(model, batch, opt, TrainSpec(method, lam=1.0), torch.device("cpu"))
    torch.save(net.encoder.conv1.weight.detach(), f"{out}/conv1_{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("method", ["augshift", "standard"])
def test_ddp_keeps_the_ranks_weights_equal(tmp_path, method):
    """Two gloo processes on the CPU: after a step on different batches, both ranks hold the
    same weights (DDP averaged every gradient, AugShift's feature term included)."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_rank, args=(port, method, str(tmp_path)), nprocs=2, join=True)
    first, second = (torch.load(tmp_path / f"conv1_{r}.pt", weights_only=True) for r in (0, 1))
    start = build_net_weights()
    assert not torch.equal(first, start)  # the step changed the weights
    assert torch.allclose(first, second, atol=1e-6)


def build_net_weights() -> torch.Tensor:
    from posinfo.models.augshift import NetSpec, build_classifier
    return build_classifier(NetSpec("resnet18", 10, 0.0625, "cifar"), seed=0).encoder.conv1.weight.detach()


def test_every_forward_goes_through_the_wrapped_module():
    """DDP's documented contract: the loss must come from the wrapped module's forward (which
    prepares the gradient reduction and broadcasts the buffers). A stand-in for DDP records
    whether the classifier's features are ever computed outside its forward."""
    from posinfo.models.augshift import NetSpec, TrainSpec, build_classifier

    class Wrapper(torch.nn.Module):  # what DDP looks like from the training step
        def __init__(self, module):
            super().__init__()
            self.module, self.inside = module, False

        def forward(self, x):
            self.inside = True
            try:
                return self.module(x)
            finally:
                self.inside = False

    net = build_classifier(NetSpec("resnet18", 10, 0.0625, "cifar"), seed=0)
    model = Wrapper(augshift_imagenet.WithFeatures(net))
    outside = []
    features = net.features
    net.features = lambda x: (outside.append(not model.inside), features(x))[1]
    batch = ((torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)), torch.randint(0, 10, (2,)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for method in ("augshift", "standard"):
        augshift_imagenet.train_step(model, batch, opt, TrainSpec(method), torch.device("cpu"))
    assert outside == [False, False]  # one call per step, each inside the wrapper's forward
