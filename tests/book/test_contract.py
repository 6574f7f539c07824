"""Every chapter module keeps the one contract of posinfo.book.contract, and every notebook uses
its own module through it."""

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from papermill.translators import PythonTranslator

from posinfo.book.contract import contract_functions, contract_violations, module_name
from posinfo.book.params import COMMON, PROFILES, resolve

BOOK = Path(__file__).resolve().parents[2] / "book"
NOTEBOOKS = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_seven_chapters():
    assert len(NOTEBOOKS) == 7


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_chapter_module_keeps_the_contract(stem, tmp_path):
    module = importlib.import_module(module_name(stem))
    assert contract_violations(module) == []
    assert module.SPEC.chapter == stem
    for profile in PROFILES:  # every profile sets the same knobs; the smoke one runs as it is
        cfg = resolve(module.SPEC, dict(profile=profile, seed=0, device="cpu", data_root=str(tmp_path),
                                        out_dir=str(tmp_path / "out")))
        assert set(cfg.knobs) == set(module.SPEC.knobs)
    module.validate(resolve(module.SPEC, dict(profile="smoke", seed=0, device="cpu",
                                              data_root=str(tmp_path), out_dir=str(tmp_path))))


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_goes_through_its_module(stem):
    cells = json.loads((BOOK / f"{stem}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    alias = next(line.split(" as ")[-1].strip() for line in code.splitlines()
                 if line.startswith(f"from posinfo.chapters import ch{stem}"))
    for call in (f"resolve({alias}.SPEC, globals())", f"{alias}.validate(cfg)",
                 f"{alias}.check_claims(", f"{alias}.regression_summary("):
        assert call in code, f"{stem}.ipynb does not call {call}"
    imported = {line.split()[3] for line in code.splitlines() if line.startswith("from posinfo.chapters import")}
    assert imported == {f"ch{stem}"}, f"{stem}.ipynb imports another chapter's module"


def test_violations_are_reported(tmp_path):
    def validate(cfg):
        pass

    def check_claims(table, cfg, extra=None):
        return []

    def regression_summary(table, cfg, *, claims):
        return {}

    fake = SimpleNamespace(__name__="posinfo.chapters.ch09_fake", SPEC=None, validate=validate,
                           check_claims=check_claims, regression_summary=regression_summary)
    problems = contract_violations(fake)
    assert "SPEC is not a ChapterSpec" in problems
    assert any(p.startswith("check_claims") for p in problems)
    assert any(p.startswith("regression_summary") for p in problems)
    assert contract_functions() == {"validate": ["cfg"], "check_claims": ["results", "cfg"],
                                    "regression_summary": ["results", "claims", "cfg"]}
    with pytest.raises(ValueError, match="NN_<name>"):
        module_name("existence")


def test_a_misnamed_spec_and_mismatched_results_types_are_reported():
    real = importlib.import_module(module_name("01_existence"))

    def regression_summary(run: int, claims: list, cfg: int) -> dict:
        return {}

    def check_claims(table, cfg):
        return []

    fake = SimpleNamespace(__name__="posinfo.chapters.ch09_fake", SPEC=real.SPEC, validate=real.validate,
                           check_claims=real.check_claims, regression_summary=real.regression_summary)
    assert contract_violations(fake) == ["SPEC.chapter '01_existence' does not name this module"]
    fake.__name__ = real.__name__
    fake.regression_summary = regression_summary
    assert contract_violations(fake)[0].startswith("check_claims takes")
    fake.check_claims = check_claims
    assert "has no type" in contract_violations(fake)[0]


KNOBS = [(stem, name) for stem in NOTEBOOKS
         for name in importlib.import_module(module_name(stem)).SPEC.knobs]


@pytest.mark.parametrize("stem, name", KNOBS)
def test_every_knob_refuses_a_wrong_type_a_value_out_of_range_and_an_empty_list(stem, name, tmp_path):
    spec = importlib.import_module(module_name(stem)).SPEC
    common = dict(profile="smoke", seed=0, device="cpu", data_root=str(tmp_path), out_dir=str(tmp_path))
    wrong = spec.types[name].wrong_values()
    assert "wrong type" in wrong
    for kind, value in wrong.items():
        with pytest.raises(ValueError, match=f"parameter '{name}' got"):
            resolve(spec, common | {name: value})


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_parameters_cell_explains_every_knob(stem):
    """`papermill --help-notebook` lists every parameter with the type and range it takes."""
    spec = importlib.import_module(module_name(stem)).SPEC
    cells = json.loads((BOOK / f"{stem}.ipynb").read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    params = {p.name: p for p in PythonTranslator.inspect(nbformat.from_dict(cell | {"source": "".join(cell["source"])}))}
    assert set(params) == set(COMMON) | set(spec.knobs)
    for name in spec.knobs:
        assert params[name].default == "None"
        assert params[name].help == spec.types[name].describe(), name
    assert all(params[name].help for name in COMMON)


@pytest.mark.parametrize("stem, name, value", [
    ("01_existence", "n_train", 0), ("04_padding_in_tasks", "n_train", 0), ("06_augshift", "n_train", 0),
    ("04_padding_in_tasks", "epochs", 1.5), ("06_augshift", "epochs", 1.5), ("07_region_attacks", "epochs", 1.5),
    ("07_region_attacks", "image_size", -5), ("04_padding_in_tasks", "lr", "fast"),
    ("05_gap_channels", "batch_size", 0), ("01_existence", "vgg_width", -1), ("01_existence", "feature_size", 0),
    ("01_existence", "cache_dir", 5), ("01_existence", "compare_random", "no"), ("01_existence", "seed", "abc"),
    ("01_existence", "seed", 1.5), ("01_existence", "seed", 2**64), ("06_augshift", "curve_shifts", []),
    ("06_augshift", "sweep_lams", []), ("07_region_attacks", "region_objects", []),
    ("02_ablations", "kernels", [1, 4]), ("03_padding", "readout_paddings", [0, 5])])
def test_the_bad_inputs_found_by_a_new_user_fail_before_work(stem, name, value, tmp_path):
    spec = importlib.import_module(module_name(stem)).SPEC
    common = dict(profile="default", seed=0, device="cpu", data_root=str(tmp_path), out_dir=str(tmp_path))
    with pytest.raises(ValueError, match=f"parameter '{name}' got"):
        resolve(spec, common | {name: value})


@pytest.mark.parametrize("stem, knobs, message", [
    ("07_region_attacks", {"n_train": 0}, "need n_train >= 1"),
    ("06_augshift", {"profile": "paper", "dataset": "scenes"}, "explicit n_train and n_test"),
    ("06_augshift", {"object_scale": [0.8, 0.5]}, "object_scale is a range"),
    ("01_existence", {"n_train": 1}, "least_squares=True holds out training images"),
    ("02_ablations", {"n_train": 1, "least_squares": True}, "needs n_train >= 2")])
def test_cross_knob_checks_in_validate(stem, knobs, message, tmp_path):
    module = importlib.import_module(module_name(stem))
    cfg = resolve(module.SPEC, dict(profile="default", seed=0, device="cpu", data_root=str(tmp_path),
                                    out_dir=str(tmp_path)) | knobs)
    with pytest.raises(ValueError, match=message):
        module.validate(cfg)
