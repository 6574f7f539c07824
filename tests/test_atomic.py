import pytest
import torch

from posinfo.atomic import atomic_path, cached, torch_save, write_text


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "x.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_write_and_cached(tmp_path):
    write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    calls = []
    compute = lambda: calls.append(1) or torch.arange(3)  # noqa: E731
    first = cached(tmp_path / "c.pt", compute)
    second = cached(tmp_path / "c.pt", compute)
    assert torch.equal(first, second) and len(calls) == 1
    torch_save({"k": 1}, tmp_path / "d.pt")
    assert torch.load(tmp_path / "d.pt")["k"] == 1
