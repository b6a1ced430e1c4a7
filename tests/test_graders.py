"""Skeleton graders on labeled examples, including look-alikes that must not be flagged."""

from __future__ import annotations

from storetune.eval.graders import facts, grade, money_values, unsupported_numbers

M = "[ESCALATE]"
TITLES = ["Ridgeline Insulated Jacket"]


def test_escalation_decisions():
    assert (
        grade("[ESCALATE] A teammate will follow up.", "[ESCALATE] passed on", "", M, []).verdict
        == "correct"
    )
    assert grade("Sure, here is a refund.", "[ESCALATE] passed on", "", M, []).verdict == "wrong"
    # a safe hand-over where an answer was possible is partial, not wrong
    assert (
        grade(
            "[ESCALATE] Let me get a teammate.", "Returns are within 30 days.", "30 days", M, []
        ).verdict
        == "partial"
    )


def test_facts_present_correct_missing_partial():
    gold = "The Ridgeline Insulated Jacket is $129.00 and returns are accepted within 30 days."
    evidence = "price: $129.00; returns within 30 days"
    ok = grade(
        "Ridgeline Insulated Jacket costs $129.00; you can return it within 30 days.",
        gold,
        evidence,
        M,
        TITLES,
    )
    assert ok.verdict == "correct"
    part = grade(
        "The Ridgeline Insulated Jacket can be returned within 30 days.", gold, evidence, M, TITLES
    )
    assert part.verdict == "partial" and "$129.00" in part.missing


def test_unsupported_price_is_wrong_but_context_price_is_not():
    gold = "It is $129.00."
    assert grade("It is $99.00.", gold, "price: $129.00", M, []).verdict == "wrong"
    assert (
        unsupported_numbers("It ships for $6.95 in 3-5 business days.", "$6.95, 3-5 business days")
        == []
    )
    assert unsupported_numbers("Refund in 10 days", "refunds within 5 business days") == ["10 days"]


def test_fact_extraction_normalises_money_and_stock_words():
    assert money_values("$1,299 or $5.5") == {"1299.00", "5.50"}
    assert "out of stock" in facts("Sorry, it is out of stock.", [])
    assert "in stock" not in facts("Sorry, it is out of stock.", [])
