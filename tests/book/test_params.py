import os
import re
from pathlib import Path

import pytest
import torch
from posinfo.book.params import (FLAG, PATH, ChapterSpec, Knob, check_writable, choice, integer,
                                 parameters_in, real, resolve, resolve_device)

SPEC = ChapterSpec(
    chapter="99_test",
    profiles={"smoke": {"size": 8, "arch": "a", "names": ["x"]},
              "default": {"size": 32, "arch": "a", "names": ["x", "y"]},
              "paper": {"size": 224, "arch": "b", "names": ["y"]}},
    types={"size": integer(1, 1024), "arch": choice(("a", "b")), "names": choice(("x", "y"), is_list=True)},
)
COMMON = dict(profile="default", seed=3, device="cpu", data_root="/data", out_dir="/out")


@pytest.fixture(autouse=True)
def _outputs_in_tmp(tmp_path, monkeypatch):
    """resolve creates and test-writes the results folder: keep it in the test's folder."""
    monkeypatch.setitem(COMMON, "out_dir", str(tmp_path / "out"))


def test_profile_supplies_knobs_and_explicit_values_win():
    cfg = resolve(SPEC, COMMON | {"size": None, "arch": None, "names": None})
    assert (cfg.size, cfg.arch, cfg.names) == (32, "a", ["x", "y"])
    cfg = resolve(SPEC, COMMON | {"size": 64, "arch": "b"})
    assert (cfg.size, cfg.arch, cfg.seed) == (64, "b", 3)
    assert cfg.results_dir == Path(COMMON["out_dir"]) / "99_test" and cfg.device == torch.device("cpu")
    assert cfg.results_dir.is_dir()
    assert resolve(SPEC, COMMON | {"profile": "paper"}).size == 224


def test_unknown_profile_choice_and_name_fail_early():
    with pytest.raises(ValueError, match="unknown value 'fast' for parameter 'profile'"):
        resolve(SPEC, COMMON | {"profile": "fast"})
    with pytest.raises(ValueError, match=r"parameter 'arch' got 'c'; it takes one of \['a', 'b'\]"):
        resolve(SPEC, COMMON | {"arch": "c"})
    with pytest.raises(ValueError, match=r"parameter 'names' got \['x', 'z'\] \('z' does not fit\)"):
        resolve(SPEC, COMMON | {"names": ["x", "z"]})
    with pytest.raises(ValueError, match=r"does not declare parameter\(s\) \['sizee'\]"):
        resolve(SPEC, COMMON | {"sizee": 3})
    with pytest.raises(ValueError, match="must set"):
        resolve(SPEC, {"profile": "default"})


def test_namespace_filtering_ignores_modules_functions_and_ipython_names():
    import math
    ns = {"math": math, "f": lambda: 1, "In": [], "Out": {}, "_i1": "", "get_ipython": print,
          "size": 3}
    assert parameters_in(ns) == {"size": 3}


def test_relative_paths_resolve_under_book_root(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")
    cfg = resolve(SPEC, COMMON | {"out_dir": "_build/x", "data_root": "data"})
    assert cfg.out_dir == tmp_path / "_build" / "x" and cfg.data_root == tmp_path / "data"


def test_device_and_spec_validation():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="paper profile is sized for a GPU.*device='cpu'"):
            resolve_device("auto", "paper")  # no silent fallback to the CPU
        assert resolve_device("cpu", "paper") == torch.device("cpu")
    with pytest.raises(ValueError, match="same knobs"):
        ChapterSpec("x", {"smoke": {"a": 1}, "default": {"b": 1}, "paper": {"a": 1}})
    with pytest.raises(ValueError, match="without a declared type"):
        ChapterSpec("x", {p: {"a": 1} for p in ("smoke", "default", "paper")})
    with pytest.raises(ValueError, match="parameter 'a' got 0"):  # a profile outside its own range
        ChapterSpec("x", {p: {"a": 0} for p in ("smoke", "default", "paper")}, {"a": integer(1)})


@pytest.mark.parametrize("name, value, message", [
    ("seed", "abc", "parameter 'seed' got 'abc'"), ("seed", 1.5, "parameter 'seed' got 1.5"),
    ("seed", True, "parameter 'seed' got True"), ("size", 0, "parameter 'size' got 0"),
    ("size", 2.0, "parameter 'size' got 2.0"), ("size", "big", "parameter 'size' got 'big'"),
    ("names", [], r"parameter 'names' got \[\]"), ("out_dir", 5, "parameter 'out_dir' got 5")])
def test_types_and_ranges_fail_before_work_naming_the_knob(name, value, message):
    with pytest.raises(ValueError, match=message):
        resolve(SPEC, COMMON | {name: value})


def test_knob_types():
    integer(1, 3).check("k", 2)
    real(0, 1).check("k", 1)  # an int is a float too
    FLAG.check("k", False)
    PATH.check("k", None)
    integer(8, by_name=True).check("k", {"vgg": 32, "resnet": 48})
    for knob, bad in [(integer(1, 3), 4), (integer(1), True), (real(0, 1), "x"), (FLAG, "no"),
                      (FLAG, 1), (PATH, 5), (integer(8, by_name=True), {"vgg": 4}),
                      (integer(8, by_name=True), {}), (real(0, 1, is_list=True), "0.5"),
                      (choice(("a",), is_list=True), ["a", "b"]), (choice((1, 3)), 2)]:
        with pytest.raises(ValueError, match="parameter 'k'"):
            knob.check("k", bad)
    assert integer(1, 3).describe() == "an int in [1, 3]"
    assert choice(("a", "b"), is_list=True).describe() == "a non-empty list, each one of ['a', 'b']"
    with pytest.raises(ValueError, match="unknown knob type"):
        Knob("complex")


@pytest.mark.parametrize("knob", [integer(1, 3), real(0.5), choice(("a", "b")), FLAG, PATH,
                                  integer(0, 9, is_list=True), choice((1, 3), is_list=True)])
def test_wrong_values_are_refused(knob):
    for kind, value in knob.wrong_values().items():
        with pytest.raises(ValueError):
            knob.check("k", value)


def test_unwritable_or_full_output_folders_fail_before_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match=r"parameter 'out_dir': cannot write to .*file/99_test"):
        resolve(SPEC, COMMON | {"out_dir": str(tmp_path / "file")})  # a file where a folder must be
    with pytest.raises(OSError, match=r"parameter 'out_dir': no space left in"):
        check_writable(tmp_path, "out_dir", min_free_mb=1e12)
    spec = ChapterSpec("99_test", {p: {"cache_dir": None} for p in ("smoke", "default", "paper")},
                       {"cache_dir": PATH})
    with pytest.raises(OSError, match="parameter 'cache_dir'"):
        resolve(spec, COMMON | {"cache_dir": str(tmp_path / "file" / "c")})


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import errno
    import os

    from posinfo.cache import write_text

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"no space left on the device to write .*results\.csv"):
        write_text(tmp_path / "results.csv", "x")


@pytest.mark.parametrize("free, error, message", [
    (1024, OSError, r"no space left on the device to write .*entry\.pt$"),
    (10 * 1024**3, RuntimeError, r"could not write .*entry\.pt: .*unexpected pos 704 vs 598")])
def test_a_failed_torch_save_names_the_file_and_a_full_disk(tmp_path, monkeypatch, free, error,
                                                             message):
    """torch reports a full disk as a bare RuntimeError; the book names the file, and says
    "no space left" when the disk is (nearly) full."""
    import shutil

    import torch
    from posinfo import cache

    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    monkeypatch.setattr(torch, "save", fail)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12 - free, free))
    with pytest.raises(error, match=message):
        cache.torch_save({"x": torch.zeros(1)}, tmp_path / "entry.pt")
    assert not list(tmp_path.iterdir())  # no temporary left behind


def test_a_run_removes_the_partial_writes_a_killed_run_left_in_its_results():
    results = Path(COMMON["out_dir"]) / SPEC.chapter
    stale = results / ".results.csv.k3y_9abc.tmp"  # atomic_path's name, a killed run's
    young = results / ".claims.json.x7q2mn0d.tmp"  # another run writing right now
    other = results / ".editor-swap.tmp"  # not atomic_path's: kept however old
    results.mkdir(parents=True)
    for f in (stale, young, other, results / "results.csv"):
        f.write_text("half")
    os.utime(stale, (0, 0)), os.utime(other, (0, 0))
    with pytest.warns(UserWarning, match=re.escape(f"removed {stale.resolve()}, a partial write")):
        resolve(SPEC, COMMON)
    assert sorted(p.name for p in results.iterdir()) == sorted(
        [young.name, other.name, "results.csv"])
