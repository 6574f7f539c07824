import json
from pathlib import Path

import pandas as pd
import pytest
from posinfo.book import smoke_reference as sr
from posinfo.book.results import Claim, write_claims, write_results
from posinfo.book.results import tested as judged
from posinfo.book.verdicts import Rule

RULE = Rule("lowest gain", "above", 0.3)


def _table(values: list[float]) -> pd.DataFrame:
    """A results table as ``read_results`` gives it (text), with a blank factor cell."""
    rows = {"pattern": ["H", "G", "G"], "stage": ["f1", "f1", ""], "value": values}
    return pd.DataFrame(rows).assign(profile="smoke", seed=0).astype(str).replace("nan", "")


def _tested(effects: list[float], id: str = "E1") -> Claim:
    """A claim judged by ``RULE`` on the per-replicate ``effects``."""
    return judged(id, "c", "p", f"lowest gain: {effects[0]:.3f}", RULE, effects, [0.0, 0.0])


def _claim(effects: list[float], id: str = "E1") -> dict:
    """The claim as claims.json records it."""
    return _tested(effects, id).as_dict()


def test_identical_results_and_a_last_digit_change_pass():
    ref = _table([0.5, -0.07083783, float("nan")])
    assert sr.compare_results(ref, ref) == []
    assert sr.compare_results(_table([0.5000001, -0.07083784, float("nan")]), ref) == []


def test_a_value_moved_beyond_the_tolerance_fails_naming_its_row():
    problems = sr.compare_results(_table([0.5, 0.03, float("nan")]), _table([0.5, 0.0, float("nan")]))
    assert len(problems) == 1 and "pattern=G, stage=f1" in problems[0] and "0.03" in problems[0]
    assert sr.compare_results(_table([0.5, 0.0, 1.0]), _table([0.5, 0.0, float("nan")])) != []


def test_the_tolerance_is_relative_for_large_values():
    assert sr.close(102.0, 100.0) and not sr.close(102.5, 100.0)
    assert sr.close(0.019, 0.0) and not sr.close(0.021, 0.0)


def test_a_least_squares_ridge_and_condition_may_move_one_step_of_their_grid():
    def table(ridge, condition):
        return pd.DataFrame({"metric": ["ridge", "condition", "spc"],
                             "value": [ridge, condition, 0.5]}).astype(str)
    ref = table(0.01, 3.2e5)
    assert sr.compare_results(table(0.1, 3.2e4), ref) == []  # the neighbouring ridge
    problems = sr.compare_results(table(1.0, 3.2e5), ref)  # two steps away
    assert len(problems) == 1 and "metric=ridge" in problems[0]
    assert sr.compare_results(table(0.01, 3.2e7), ref) != []
    assert sr.within_decade(float("nan"), float("nan")) and not sr.within_decade(1.0, float("nan"))


def test_a_missing_or_unexpected_row_or_column_fails():
    ref = _table([0.5, 0.0, 1.0])
    assert sr.compare_results(ref.iloc[:2], ref) == ["row (pattern=G, profile=smoke, seed=0) missing"]
    assert sr.compare_results(ref, ref.iloc[:2]) == ["row (pattern=G, profile=smoke, seed=0) unexpected"]
    assert "columns differ" in sr.compare_results(ref.drop(columns="stage"), ref)[0]


def test_repeated_keys_are_matched_in_order():
    ref = pd.DataFrame({"k": ["a", "a"], "value": ["1.0", "2.0"]})
    assert sr.compare_results(ref, ref) == []
    assert sr.compare_results(ref.iloc[::-1].reset_index(drop=True), ref) != []


def test_the_margin_is_read_back_from_the_rules_words():
    for rule in (RULE, Rule("x", "below", -0.05, why="half of .1"), Rule("y", "above", 1e-5)):
        assert sr.margin_of(rule.words()) == Rule("", rule.side, rule.margin)
    with pytest.raises(ValueError, match="no side and margin"):
        sr.margin_of("a rule in other words")


def test_identical_claims_and_a_last_digit_change_pass():
    ref = [_claim([0.6, 0.7, 0.8])]
    assert sr.compare_claims(ref, ref) == []
    assert sr.compare_claims([_claim([0.6001, 0.7, 0.8])], ref) == []


def test_a_verdict_changed_far_from_its_margin_fails():
    ref = _claim([0.6, 0.7, 0.8])  # holds, its interval far above 0.3
    changed = dict(ref, verdict="fails", holds=False)
    problems = sr.compare_claims([changed], [ref])
    assert problems == [f"claim E1: verdict 'fails', reference 'holds' (interval {ref['interval']} "
                        "is not within the tolerance of the margin)"]


def test_a_verdict_near_its_margin_may_flip_to_a_neighbour_only():
    ref = _claim([0.31, 0.32, 0.33])  # holds: its interval's low end is 0.013 above the margin
    assert ref["verdict"] == "holds" and ref["interval"][0] - 0.3 < sr.ABS_TOL
    flipped = _claim([0.30, 0.32, 0.33])
    assert flipped["verdict"] == "inconclusive" and sr.compare_claims([flipped], [ref]) == []
    assert sr.compare_claims([dict(ref, verdict="fails", holds=False)], [ref]) != []


def test_a_reference_verdict_its_own_interval_cannot_give_fails():
    ref = _claim([0.6, 0.7, 0.8])  # holds, far above the margin
    assert sr.compare_claims([ref], [dict(ref, verdict="inconclusive", holds=False)]) != []


def test_a_single_replicate_is_never_decided():
    assert sr.reachable_verdicts(0.5, 0.5, 1, RULE) == {"inconclusive"}
    assert sr.reachable_verdicts(0.305, 0.305, 2, RULE) == {"holds", "inconclusive", "fails"}


def test_moved_numbers_missing_or_extra_claims_and_changed_controls_fail():
    ref = _claim([0.6, 0.7, 0.8])
    moved = _claim([0.6, 0.7, 0.8]) | {"effect": 0.75, "ours": "lowest gain: 0.650"}
    assert [p.split(" ")[2] for p in sr.compare_claims([moved], [ref])] == ["effect", "ours"]
    assert sr.compare_claims([], [ref]) == ["claim E1 missing"]
    assert sr.compare_claims([ref, _claim([0.1, 0.2], "E2")], [ref]) == ["claim E2 unexpected"]
    assert sr.compare_claims([ref | {"control": "holds"}], [ref]) == [
        "claim E1: control 'holds', reference 'fails'"]
    assert sr.compare_claims([ref | {"holds": False}], [ref]) != []


def _run(folder: Path, values: list[float], effects: list[float]) -> None:
    write_results(pd.DataFrame({"pattern": ["H", "G"], "value": values}), folder,
                  profile="smoke", seed=0)
    write_claims([_tested(effects)], folder)


def test_compare_chapter_reads_both_folders_and_names_the_chapter_and_file(tmp_path):
    _run(sr.reference_dir("01_a", tmp_path), [0.5, 0.1], [0.6, 0.7, 0.8])
    _run(sr.run_dir("01_a", tmp_path), [0.5, 0.2], [0.6, 0.7, 0.8])
    assert sr.compare_chapter("01_a", tmp_path) == [
        "01_a results.csv row (pattern=G, profile=smoke, seed=0): value 0.2, reference 0.1"]
    (sr.run_dir("01_a", tmp_path) / "claims.json").unlink()
    with pytest.raises(FileNotFoundError, match="claims.json"):
        sr.compare_chapter("01_a", tmp_path)


def test_the_stored_references_are_those_of_every_chapter_and_their_claims_are_decided():
    root = Path(__file__).resolve().parents[2]
    chapters = sorted(p.stem for p in (root / "book").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in (root / "book" / "smoke_reference").iterdir()) == chapters
    for chapter in chapters:
        claims = json.loads((sr.reference_dir(chapter, root) / "claims.json").read_text())
        assert all(sr.margin_of(c["rule"]) for c in claims)
        assert set(sr.read_results(sr.reference_dir(chapter, root)).profile) == {"smoke"}
