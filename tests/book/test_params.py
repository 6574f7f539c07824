from pathlib import Path

import pytest
import torch
from posinfo.book.params import ChapterSpec, parameters_in, resolve, resolve_device

SPEC = ChapterSpec(
    chapter="99_test",
    profiles={"smoke": {"size": 8, "arch": "a", "names": ["x"]},
              "default": {"size": 32, "arch": "a", "names": ["x", "y"]},
              "paper": {"size": 224, "arch": "b", "names": ["y"]}},
    choices={"arch": ("a", "b"), "names": ("x", "y")},
)
COMMON = dict(profile="default", seed=3, device="cpu", data_root="/data", out_dir="/out")


def test_profile_supplies_knobs_and_explicit_values_win():
    cfg = resolve(SPEC, COMMON | {"size": None, "arch": None, "names": None})
    assert (cfg.size, cfg.arch, cfg.names) == (32, "a", ["x", "y"])
    cfg = resolve(SPEC, COMMON | {"size": 64, "arch": "b"})
    assert (cfg.size, cfg.arch, cfg.seed) == (64, "b", 3)
    assert cfg.results_dir == Path("/out/99_test") and cfg.device == torch.device("cpu")
    assert resolve(SPEC, COMMON | {"profile": "paper"}).size == 224


def test_unknown_profile_choice_and_name_fail_early():
    with pytest.raises(ValueError, match="unknown value 'fast' for parameter 'profile'"):
        resolve(SPEC, COMMON | {"profile": "fast"})
    with pytest.raises(ValueError, match="unknown value 'c' for parameter 'arch'"):
        resolve(SPEC, COMMON | {"arch": "c"})
    with pytest.raises(ValueError, match="unknown value 'z' for parameter 'names'"):
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
    with pytest.raises(ValueError, match="same knobs"):
        ChapterSpec("x", {"smoke": {"a": 1}, "default": {"b": 1}, "paper": {"a": 1}})
