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
