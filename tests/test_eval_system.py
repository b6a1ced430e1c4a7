"""The system figures and the intervals they carry."""

from __future__ import annotations

import pytest

from storetune.eval.stats import format_rate, rate_ci, wilson
from storetune.eval.system import Outcome, outcome_of, summarize_system


def test_wilson_matches_known_values():
    # worked by hand from Wilson's formula (z = 1.95996); 0/n and n/n have closed forms:
    # hi = z²/(n+z²) and lo = n/(n+z²)
    lo, hi = wilson(0, 40)
    assert lo == 0.0 and hi == pytest.approx(0.0876, abs=1e-4)
    lo, hi = wilson(15, 31)
    assert lo == pytest.approx(0.3197, abs=1e-3) and hi == pytest.approx(0.6516, abs=1e-3)
    lo, hi = wilson(31, 31)
    assert hi == 1.0 and lo == pytest.approx(0.8898, abs=1e-3)


def test_wilson_narrows_with_n_and_contains_the_rate():
    for k, n in [(3, 10), (30, 100), (300, 1000)]:
        lo, hi = wilson(k, n)
        assert lo < k / n < hi
    widths = [wilson(k, n)[1] - wilson(k, n)[0] for k, n in [(3, 10), (30, 100), (300, 1000)]]
    assert widths[0] > widths[1] > widths[2]


def test_wilson_rejects_impossible_counts_and_empty():
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(5, 4)
    assert rate_ci(0, 0) == {"rate": None, "k": 0, "n": 0, "ci": None}
    assert format_rate(rate_ci(0, 0)) == "–"
    assert format_rate(rate_ci(1, 4)) == "25.0% (5–70%)"


def test_outcome_rule_is_the_auto_review_mode():
    assert outcome_of("high", False) == "sent"
    assert outcome_of("medium", False) == "queued"
    assert outcome_of("low", False) == "queued"
    assert outcome_of("high", True) == "handed_over"
    with pytest.raises(ValueError):
        Outcome("dropped", "correct", False, True)


def test_system_summary_counts_what_a_store_cares_about():
    outcomes = [
        Outcome("sent", "correct", False, True),
        Outcome("sent", "correct", False, True),
        Outcome("sent", "wrong", False, True),  # wrong and sent: the one that hurts
        Outcome("queued", "wrong", False, True),  # wrong but a person sees it
        Outcome("handed_over", "correct", True, False),  # right hand-over
        Outcome("sent", "wrong", True, False),  # missed hand-over, sent
        Outcome("handed_over", "partial", False, True),  # over-escalation
        Outcome("queued", "correct", False, False),  # a safety refusal, queued
    ]
    s = summarize_system(outcomes)
    assert s["n"] == 8
    assert s["outcomes"] == {"sent": 4, "queued": 2, "handed_over": 2}
    assert s["automation"]["rate"] == pytest.approx(4 / 8)
    assert s["correct_among_sent"]["rate"] == pytest.approx(2 / 4)
    assert s["wrong_among_sent"]["rate"] == pytest.approx(2 / 4)
    assert s["wrong_and_sent"] == {**s["wrong_and_sent"], "k": 2, "n": 8}
    assert s["escalation_recall"]["k"] == 1 and s["escalation_recall"]["n"] == 2
    assert s["over_escalation"]["k"] == 1 and s["over_escalation"]["n"] == 5
    assert s["answerable_sent"]["k"] == 3
    for key in ("automation", "wrong_and_sent", "escalation_recall", "over_escalation"):
        lo, hi = s[key]["ci"]
        assert lo <= s[key]["rate"] <= hi
