import json
import os

import pandas as pd
import pytest
from posinfo.book.results import CLAIM_FIELDS, Claim, claims_table, write_claims, write_results


def _claim(cid: str, holds: bool | str, claim: str = "c", paper: str = "p", ours: str = "o",
           control: str = "fails") -> Claim:
    """A claim with the given verdict (True: holds, False: fails, or the verdict itself)."""
    verdict = holds if isinstance(holds, str) else ("holds" if holds else "fails")
    return Claim(cid, claim, paper, ours, verdict, "effect: rule", 0.5, (0.4, 0.6), 3, control)


def test_claim_verdicts_are_three_valued_and_holds_is_derived():
    with pytest.raises(ValueError, match="verdict must be one of"):
        _claim("X", "true")
    with pytest.raises(ValueError, match="control must be one of"):
        _claim("X", True, control=True)
    with pytest.raises(ValueError, match="n must be at least 1"):
        Claim("X", "c", "p", "o", "holds", "r", 0.5, (0.4, 0.6), 0, "fails")
    assert _claim("X", True).holds and not _claim("X", "inconclusive").holds
    assert not _claim("X", False).holds


def test_tested_decides_from_replicates_and_judges_the_control():
    from posinfo.book.results import tested
    from posinfo.book.verdicts import Rule
    rule = Rule("gain", "above", 0.3, "the paper's words")
    claim = tested("E2", "c", "p", "o", rule, [0.5, 0.55, 0.6], [0.0, 0.01, -0.01])
    assert (claim.verdict, claim.control, claim.n, claim.holds) == ("holds", "fails", 3, True)
    assert claim.interval[0] > 0.3 and claim.effect == 0.55 and claim.replicates_needed is None
    assert "0.3" in claim.rule and "the paper's words" in claim.rule
    unsure = tested("E2", "c", "p", "o", rule, [0.2, 0.5, 0.35], [0.0, 0.0, 0.0])
    assert unsure.verdict == "inconclusive" and unsure.replicates_needed > 3


def test_write_results_and_claims(tmp_path):
    table = pd.DataFrame({"pattern": ["H"], "metric": ["spc"], "value": [0.5]})
    path = write_results(table, tmp_path / "ch", profile="smoke", seed=2)
    back = pd.read_csv(path)
    assert list(back.columns) == ["pattern", "metric", "value", "profile", "seed"]
    assert back.loc[0, "seed"] == 2
    claims = [_claim("E1", True), _claim("E2", False)]
    data = json.loads(write_claims(claims, tmp_path / "ch").read_text())
    assert [d["id"] for d in data] == ["E1", "E2"] and data[1]["holds"] is False
    assert set(data[0]) == set(CLAIM_FIELDS) and data[0]["interval"] == [0.4, 0.6]
    assert data[1]["verdict"] == "fails" and data[0]["control"] == "fails" and data[0]["n"] == 3
    assert list(claims_table(claims).index) == ["E1", "E2"]
    with pytest.raises(ValueError, match="duplicate"):
        write_claims([claims[0], claims[0]], tmp_path)


def test_read_back_checks_the_contract(tmp_path):
    from posinfo.book.results import read_back
    claims = [_claim("E1", True)]
    write_results(pd.DataFrame({"pattern": ["H"], "value": [1.0]}), tmp_path, profile="smoke", seed=0)
    write_claims(claims, tmp_path)
    assert len(read_back(tmp_path, claims, {"pattern"})) == 1
    with pytest.raises(AssertionError, match="lacks columns"):
        read_back(tmp_path, claims, {"pattern", "test_set"})
    with pytest.raises(AssertionError, match="claims of this run"):
        read_back(tmp_path, [_claim("E2", True)], {"pattern"})


def test_prose_helpers(monkeypatch):
    import myst_nb
    from posinfo.book.results import decimal, glue_prose, holds_by_id
    assert decimal(0.4567) == ".46" and decimal(-0.04) == "-.04" and decimal(9.5) == "9.50"
    assert decimal(0.0123, 3) == ".012"
    words = holds_by_id([_claim("T2", True), _claim("R4", False), _claim("R1", "inconclusive")])
    assert words["t2"] == "holds" and words["r4"] == "does not hold"
    assert words["r1"].startswith("is inconclusive (3 replicates cannot decide it")
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
    write_claims([_claim("E1", True)], folder)
    manifest = check_manifest(folder)
    assert (manifest["profile"], manifest["seed"]) == ("default", 4)
    assert set(manifest["files"]) == {"results.csv", "claims.json"} and manifest["threads"] >= 1
    assert manifest["code"]  # a commit, or "unknown" outside git
    assert manifest["machine"] == f"CPU: {os.cpu_count()} cores" or manifest["machine"].startswith("GPU: ")
    assert list(read_claims(tmp_path).seed) == [4]
    # a second run stopped after its results.csv: the folder now mixes two runs
    write_results(pd.DataFrame({"metric": ["m"], "value": [2.0]}), folder, profile="default", seed=5)
    with pytest.raises(ValueError, match=r"\['results.csv'\] do not match"):
        read_claims(tmp_path)
    (folder / "manifest.json").write_text('{"files": {}}')
    with pytest.raises(ValueError, match="is not a manifest"):
        check_manifest(folder)


def test_verdict_note_counts_three_verdicts_and_flags_a_control_that_holds():
    from types import SimpleNamespace

    from posinfo.book.results import verdict_note
    cfg = SimpleNamespace(profile="default", seed=0)
    claims = [_claim("E1", True), _claim("E2", False), _claim("E3", "inconclusive", control="holds")]
    text = verdict_note(claims, cfg).data
    assert "1 holds (E1), 1 fails (E2) and 1 is inconclusive (E3)" in text
    assert "**E2 does not hold.**" in text and "90% interval [0.4, 0.6], n = 3" in text
    assert "Defect: the control of E3 holds" in text
    assert "Defect" not in verdict_note(claims[:2], cfg).data
