import json

import pandas as pd
import pytest
from posinfo.book.results import Claim, claims_table, write_claims, write_results


def test_claim_holds_must_be_a_bool():
    with pytest.raises(TypeError):
        Claim("X", "c", "p", "o", holds=1)  # numpy bools and ints are not typed-in booleans
    Claim("X", "c", "p", "o", holds=True)


def test_write_results_and_claims(tmp_path):
    table = pd.DataFrame({"pattern": ["H"], "metric": ["spc"], "value": [0.5]})
    path = write_results(table, tmp_path / "ch", profile="smoke", seed=2)
    back = pd.read_csv(path)
    assert list(back.columns) == ["pattern", "metric", "value", "profile", "seed"]
    assert back.loc[0, "seed"] == 2
    claims = [Claim("E1", "c", "p", "o", True), Claim("E2", "c", "p", "o", False)]
    data = json.loads(write_claims(claims, tmp_path / "ch").read_text())
    assert [d["id"] for d in data] == ["E1", "E2"] and data[1]["holds"] is False
    assert list(claims_table(claims).index) == ["E1", "E2"]
    with pytest.raises(ValueError, match="duplicate"):
        write_claims([claims[0], claims[0]], tmp_path)


def test_read_back_checks_the_contract(tmp_path):
    from posinfo.book.results import read_back
    claims = [Claim("E1", "c", "p", "o", True)]
    write_results(pd.DataFrame({"pattern": ["H"], "value": [1.0]}), tmp_path, profile="smoke", seed=0)
    write_claims(claims, tmp_path)
    assert len(read_back(tmp_path, claims, {"pattern"})) == 1
    with pytest.raises(AssertionError, match="lacks columns"):
        read_back(tmp_path, claims, {"pattern", "test_set"})
    with pytest.raises(AssertionError, match="claims of this run"):
        read_back(tmp_path, [Claim("E2", "c", "p", "o", True)], {"pattern"})


def test_prose_helpers(monkeypatch):
    import myst_nb
    from posinfo.book.results import decimal, glue_prose, holds_by_id, holds_text
    assert decimal(0.4567) == ".46" and decimal(-0.04) == "-.04" and decimal(9.5) == "9.50"
    assert decimal(0.0123, 3) == ".012" and holds_text(False) == "does not hold"
    assert holds_by_id([Claim("T2", "c", "p", "o", True), Claim("R4", "c", "p", "o", False)]) == {
        "t2": "holds", "r4": "does not hold"}
    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.append((name, value, display)))
    glue_prose({"a": ".5", "b": "holds"})
    assert glued == [("a", ".5", False), ("b", "holds", False)]
    with pytest.raises(TypeError, match="'c'"):
        glue_prose({"c": 0.5})


def test_manifest_seals_one_run_and_refuses_a_mixed_folder(tmp_path):
    from posinfo.book.report import read_claims
    from posinfo.book.results import check_manifest
    folder = tmp_path / "01_x"
    write_results(pd.DataFrame({"metric": ["m"], "value": [1.0]}), folder, profile="default", seed=4)
    with pytest.raises(ValueError, match="no manifest.json"):
        check_manifest(folder)
    write_claims([Claim("E1", "c", "p", "o", True)], folder)
    manifest = check_manifest(folder)
    assert (manifest["profile"], manifest["seed"]) == ("default", 4)
    assert set(manifest["files"]) == {"results.csv", "claims.json"} and manifest["threads"] >= 1
    assert manifest["code"]  # a commit, or "unknown" outside git
    assert list(read_claims(tmp_path).seed) == [4]
    # a second run stopped after its results.csv: the folder now mixes two runs
    write_results(pd.DataFrame({"metric": ["m"], "value": [2.0]}), folder, profile="default", seed=5)
    with pytest.raises(ValueError, match=r"\['results.csv'\] do not match"):
        read_claims(tmp_path)
    (folder / "manifest.json").write_text('{"files": {}}')
    with pytest.raises(ValueError, match="is not a manifest"):
        check_manifest(folder)
