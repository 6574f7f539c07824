import importlib
import importlib.util
from pathlib import Path

import pytest
from posinfo.book.params import resolve

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("paper_check", ROOT / "tools" / "paper_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_chapter_is_checked_with_knobs_its_paper_profile_accepts(tmp_path):
    check = load()
    chapters = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(check.KNOBS) == chapters
    for chapter, knobs in check.KNOBS.items():
        module = importlib.import_module(f"posinfo.chapters.ch{chapter[:2]}_{chapter[3:]}")
        cfg = resolve(module.SPEC, knobs | dict(profile="paper", device="cpu", seed=0,
                                                data_root=str(tmp_path), out_dir=str(tmp_path)))
        assert cfg.profile == "paper"
        for name, value in knobs.items():  # changed as asked; the rest is the profile's
            assert getattr(cfg, name) == value


def test_bad_arguments_stop_before_any_work(tmp_path, capsys):
    check = load()
    with pytest.raises(SystemExit):
        check.main(["08_nothing"])
    assert "unknown chapters ['08_nothing']" in capsys.readouterr().err
    (tmp_path / "left-over").write_text("")
    with pytest.raises(SystemExit):
        check.main(["--work", str(tmp_path), "01_existence"])
    assert "is not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        check.main(["--work", str(tmp_path / "left-over"), "01_existence"])
    assert "is a file, not a folder" in capsys.readouterr().err
