import os

import pytest
import torch
from torch import nn

from posinfo import cache
from posinfo.cache import (Training, atomic_path, cached, fingerprint, load_entry,
                           remove_stale_temporaries, torch_save, train_cached, write_text)


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
    assert torch.load(tmp_path / "d.pt", weights_only=True)["k"] == 1


def test_fingerprint_tracks_values():
    a = torch.zeros(3)
    assert fingerprint(a, "x", 1) == fingerprint(torch.zeros(3), "x", 1)
    assert fingerprint(a) != fingerprint(torch.ones(3))
    assert fingerprint(nn.Linear(2, 2)) != fingerprint(nn.Linear(2, 2))  # two random inits


def test_a_corrupt_or_unsafe_entry_is_recomputed_with_a_warning(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match=r"c\.pt could not be read"):
        assert torch.equal(cached(path, lambda: torch.ones(2)), torch.ones(2))
    assert torch.equal(load_entry(path), torch.ones(2))  # rewritten, readable
    torch.save({"code": Unsafe()}, path)  # an object that would need unpickling
    with pytest.warns(UserWarning, match="could not be read") as caught:
        assert load_entry(path) is None
    assert not path.exists()
    (message,) = [str(w.message) for w in caught]
    assert f"cache entry {path} could not be read (UnpicklingError: Unsupported global: " in message
    assert "weights_only" not in message  # torch's advice to load it anyway is not for a cache


def test_the_cause_of_a_failed_load_is_short(tmp_path):
    torch_save(torch.zeros(100), tmp_path / "t.pt")
    (tmp_path / "t.pt").write_bytes((tmp_path / "t.pt").read_bytes()[:200])  # truncated
    with pytest.raises(Exception) as err:
        torch.load(tmp_path / "t.pt", weights_only=True)
    assert cache.short_cause(err.value) == (
        "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central "
        "directory")
    assert cache.short_cause(KeyError("101")) == "KeyError: '101'"
    assert cache.short_cause(ValueError()) == "ValueError"


class Unsafe:
    """A class torch.load(weights_only=True) refuses to build."""


class _Noisy(nn.Module):
    """A tiny network whose forward pass draws from its own generator, like PermuteNet."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.generator = torch.Generator().manual_seed(5)

    def forward(self, x):
        return self.fc(x + torch.rand(x.shape, generator=self.generator))


def _start() -> Training:
    torch.manual_seed(0)
    model = _Noisy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Training(model, opt, torch.optim.lr_scheduler.StepLR(opt, 1, 0.5),
                    torch.Generator().manual_seed(1), {"losses": []}, global_rng=True)


def _epoch(training: Training, epoch: int) -> None:
    x = torch.rand(8, 4, generator=training.generator)
    noise = torch.rand(8, 1)  # the global random state, restored on resume too
    loss = ((training.model(x) - noise) ** 2).mean()
    training.optimizer.zero_grad()
    loss.backward()
    training.optimizer.step()
    training.scheduler.step()
    training.record["losses"].append(loss.item())


def _finish(training: Training) -> dict:
    return {"model": training.model.state_dict(), "record": training.record}


def test_train_cached_trains_once_then_loads(tmp_path):
    entry = train_cached(tmp_path / "net.pt", _start, _epoch, 3, _finish, progress=False)
    assert len(entry["record"]["losses"]) == 3 and entry["record"]["seconds"] >= 0
    assert not (tmp_path / "net.partial.pt").exists()
    again = train_cached(tmp_path / "net.pt", lambda: pytest.fail("trained again"), _epoch, 3,
                         _finish, progress=False)
    assert again["record"] == entry["record"]


def test_an_interrupted_training_resumes_exactly(tmp_path):
    torch.manual_seed(3)
    straight = train_cached(tmp_path / "a.pt", _start, _epoch, 4, _finish, progress=False)
    calls = []

    def dies_in_third_epoch(training, epoch):
        calls.append(epoch)
        if len(calls) == 3:
            raise KeyboardInterrupt
        _epoch(training, epoch)

    torch.manual_seed(3)
    with pytest.raises(KeyboardInterrupt):
        train_cached(tmp_path / "b.pt", _start, dies_in_third_epoch, 4, _finish, progress=False)
    assert load_entry(tmp_path / "b.partial.pt")["epochs"] == 2
    torch.manual_seed(99)  # whatever the caller's random state, the run goes on as it was
    resumed = train_cached(tmp_path / "b.pt", _start, dies_in_third_epoch, 4, _finish,
                           progress=False)
    assert calls == [0, 1, 2, 2, 3]  # only the missing epochs ran again
    assert resumed["record"]["losses"] == straight["record"]["losses"]
    assert all(torch.equal(a, b) for a, b in zip(resumed["model"].values(),
                                                 straight["model"].values()))


def test_a_checkpoint_of_another_format_restarts_training(tmp_path):
    torch_save({"model": {}, "record": {"losses": [1.0]}}, tmp_path / "n.partial.pt")
    with pytest.warns(UserWarning, match="not a checkpoint of this version"):
        entry = train_cached(tmp_path / "n.pt", _start, _epoch, 2, _finish, progress=False)
    assert len(entry["record"]["losses"]) == 2


def test_stale_temporaries_are_removed_fresh_ones_and_other_files_kept(tmp_path):
    old, fresh = tmp_path / "sub" / ".x.pt.ab12cd_9.tmp", tmp_path / ".y.pt.def45678.tmp"
    other = tmp_path / ".another-program.tmp"  # not atomic_path's: kept however old
    old.parent.mkdir()
    for f in (old, fresh, other, tmp_path / "z.pt"):
        f.write_bytes(b"half")
    os.utime(old, (0, 0)), os.utime(other, (0, 0))
    with atomic_path(tmp_path / "w.pt") as tmp:  # the names remove_stale_temporaries knows
        assert cache._TEMPORARY.match(tmp.name)
    assert remove_stale_temporaries(tmp_path) == [old]
    assert not old.exists() and fresh.exists() and other.exists() and (tmp_path / "z.pt").exists()


def test_a_training_of_its_own_generators_leaves_the_global_state_alone(tmp_path):
    def start():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = nn.Linear(4, 1)
        return Training(model, torch.optim.SGD(model.parameters(), lr=0.1),
                        generator=torch.Generator().manual_seed(1), record={"losses": []})

    def epoch(training, i):
        if i == 1 and not resuming:
            raise KeyboardInterrupt
        training.model(torch.rand(2, 4, generator=training.generator)).sum().backward()
        training.optimizer.step()
        training.record["losses"].append(float(i))

    resuming = False
    torch.manual_seed(3)
    with pytest.raises(KeyboardInterrupt):
        train_cached(tmp_path / "n.pt", start, epoch, 2, _finish, progress=False)
    resuming = True
    torch.manual_seed(7)
    before = torch.get_rng_state()
    entry = train_cached(tmp_path / "n.pt", start, epoch, 2, _finish, progress=False)
    assert entry["record"]["losses"] == [0.0, 1.0]
    assert torch.equal(torch.get_rng_state(), before)  # not the interrupted run's state
