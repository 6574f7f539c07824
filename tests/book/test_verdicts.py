import math

import pandas as pd
import pytest
from posinfo.book.verdicts import (Rule, decide, interval, judge, per_replicate, replicates_needed,
                                   substitute)
from scipy import stats


def test_interval_is_scipys_t_interval_and_zero_width_without_spread():
    mean, low, high = interval([1.0, 2.0, 4.0])
    ref = stats.t.interval(0.9, 2, loc=7 / 3, scale=stats.sem([1.0, 2.0, 4.0]))
    assert mean == pytest.approx(7 / 3) and (low, high) == pytest.approx(ref)
    assert interval([0.3]) == (0.3, 0.3, 0.3) and interval([0.2, 0.2]) == (0.2, 0.2, 0.2)
    for bad in ([], [1.0, math.nan], [math.inf]):
        with pytest.raises(ValueError, match="finite"):
            interval(bad)


@pytest.mark.parametrize("side, low, high, verdict", [
    ("above", 0.31, 0.5, "holds"), ("above", 0.1, 0.29, "fails"), ("above", 0.2, 0.4, "inconclusive"),
    ("above", 0.3, 0.3, "inconclusive"),  # touching the margin decides nothing
    ("below", 0.1, 0.29, "holds"), ("below", 0.31, 0.5, "fails"), ("below", 0.2, 0.4, "inconclusive")])
def test_decide_is_three_valued_on_both_sides(side, low, high, verdict):
    assert decide(low, high, Rule("e", side, 0.3)) == verdict


def test_judge_and_the_rule_in_words():
    rule = Rule("lowest gain", "above", 0.3, "the paper says 'far more'")
    result = judge([0.5, 0.6, 0.7], rule)
    assert (result.verdict, result.n) == ("holds", 3) and result.effect == pytest.approx(0.6)
    assert judge([0.5, 0.2, 0.7], rule).verdict == "inconclusive"
    words = rule.words()
    assert "lowest gain" in words and "90% interval" in words and "above 0.3" in words
    assert "fails if wholly below" in words and "far more" in words
    with pytest.raises(ValueError, match="side"):
        Rule("e", "over", 0.0)


def test_a_null_effect_never_holds():
    """The controls' case: effects that do not differ from the margin, or lie on its far side."""
    rule = Rule("e", "above", 0.0)
    assert judge([0.0, 0.0, 0.0], rule).verdict == "inconclusive"
    assert judge([-0.1, 0.05, -0.02], rule).verdict != "holds"


def test_replicates_needed_shrinks_the_interval_past_the_margin():
    rule = Rule("e", "above", 0.0)
    effects = [0.1, -0.02, 0.09]
    assert judge(effects, rule).verdict == "inconclusive"
    n = replicates_needed(effects, rule)
    sd = pd.Series(effects).std()
    assert n > 3 and stats.t.ppf(0.95, n - 1) * sd / math.sqrt(n) < pd.Series(effects).mean()
    assert stats.t.ppf(0.95, n - 2) * sd / math.sqrt(n - 1) >= pd.Series(effects).mean()
    assert replicates_needed([0.2, 0.2], rule) is None  # no spread: nothing to estimate


def test_per_replicate_splits_by_the_column():
    table = pd.DataFrame({"replicate": [1, 0, 1, 0], "value": [3.0, 1.0, 5.0, 2.0]})
    assert per_replicate(table, lambda t: t.value.sum()) == [3.0, 8.0]
    with pytest.raises(ValueError, match="no column 'run'"):
        per_replicate(table, len, column="run")


def test_one_replicate_is_never_decided_and_rounding_noise_never_decides():
    rule = Rule("e", "above", 0.0)
    assert judge([5.0], rule).verdict == "inconclusive" and judge([5.0], rule).n == 1
    noise = [6e-11, 2.2e-10, 1.1e-10]  # a difference that is zero in exact arithmetic
    assert judge(noise, rule).verdict == "inconclusive"
    assert judge([1e-3, 2e-3, 1.5e-3], rule).verdict == "holds"  # a real, small effect still counts


def test_substitute_makes_the_compared_conditions_the_same():
    table = pd.DataFrame(dict(part=["a", "a", "b", "b"], padding=["zero", "none", "zero", "none"],
                              value=[1.0, 2.0, 3.0, 4.0]))
    null = substitute(table, "padding", "none", "zero", where=table.part == "a")
    assert sorted(null[null.part == "a"].value) == [1.0, 1.0]
    assert sorted(null[null.part == "b"].value) == [3.0, 4.0]  # outside ``where``: untouched
    assert sorted(substitute(table, "padding", "zero", "none").value) == [2.0, 2.0, 4.0, 4.0]
