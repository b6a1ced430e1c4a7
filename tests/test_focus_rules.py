"""Focused prompts and the rules in code: the right policy lines, the same prompt at train
and serve time, policy changes without retraining, no looping draft sent, fixed wordings."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from storetune.chat.prompt import policy_sections, render_system_prompt
from storetune.config import StoreConfig
from storetune.dataset.example import Example
from storetune.dataset.focus import (
    distinctive_words,
    focus_examples,
    kind_sections,
    sections_used,
    with_distractors,
)
from storetune.kinds import focus
from storetune.models.router import RouterModel, RouterPrediction
from storetune.serve.routing import Signals, Thresholds, TicketRouter, _hand_over, decide
from storetune.serve.rules import asks_for_person, degenerate, fill, handover_line

STORE = {
    "brand": {"name": "Pine & Peak", "voice": "warm", "website": "https://pine.example.com"},
    "policies": {
        "returns": {"window_days": 30, "refund_days": 5},
        "shipping": {
            "currency": "USD",
            "free_threshold": 75,
            "zones": [{"name": "US", "cost": 6.95, "days_min": 3, "days_max": 5}],
        },
        "loyalty": {"name": "Peak Points", "earn": "1 point per $1", "redeem": "200 points = $10"},
        "price_match": "We match identical items from authorized retailers within 14 days.",
        "cancellations": "Orders can be cancelled within 1 hour.",
        "contact": {"email": "help@pine.example.com", "phone": "+1 555 0100", "hours": "9-5"},
    },
}


def store(**changes) -> StoreConfig:
    raw = {**STORE, "policies": {**STORE["policies"], **changes}}
    return StoreConfig.model_validate(raw)


def test_focused_prompt_keeps_only_the_chosen_sections():
    cfg = store()
    full = render_system_prompt(cfg)
    shipping = render_system_prompt(cfg, sections=["shipping"])
    assert "Returns: within 30 days" in full and "Returns:" not in shipping
    assert "Shipping to US: $6.95, 3-5 business days." in shipping
    assert "Free standard shipping on orders over $75.00." in shipping
    assert "Loyalty" not in shipping and "Cancellations" not in shipping
    assert len(shipping) < len(full) / 1.5
    # the brand, the rules and the contact stay whatever the sections
    for line in ("Pine & Peak", "Never invent", "[ESCALATE]", "help@pine.example.com"):
        assert line in shipping
    assert "Policies:" not in render_system_prompt(cfg, sections=[])
    names = [name for name, _ in policy_sections(cfg.policies)]
    assert names[:2] == ["returns", "sale_items"] and "loyalty" in names


def test_a_policy_change_reaches_the_prompt_without_retraining():
    before = render_system_prompt(store(), sections=["returns"])
    after = render_system_prompt(
        store(returns={"window_days": 45, "refund_days": 5}), sections=["returns"]
    )
    assert "within 30 days" in before and "within 45 days" in after and "30 days" not in after


def test_replies_pull_in_the_sections_they_quote():
    cfg = store()
    distinctive = distinctive_words(cfg)
    reply = "No codes, but Peak Points earn 1 point per $1 and 200 points is $10 off."
    assert "loyalty" in sections_used(reply, distinctive)
    assert sections_used("Thanks, a teammate will follow up.", distinctive) == []
    examples = [
        Example(
            [
                {"role": "system", "content": "x"},
                {"role": "user", "content": "discount?"},
                {"role": "assistant", "content": reply},
            ],
            "support",
            "discount_price_match",
            "support",
        )
        for _ in range(3)
    ]
    table = kind_sections(examples, cfg)
    assert table["discount_price_match"][:2] == ["price_match", "loyalty"]


def test_training_prompt_for_a_kind_is_the_served_prompt():
    """A build renders each example with its kind's sections (+ distractors); serving
    renders the kinds the router reads with the same table: with no distractors and a
    sure reading, the two prompts are the same text."""
    from storetune.config import BuildConfig

    cfg = store()
    ex = Example(
        [
            {"role": "system", "content": render_system_prompt(cfg)},
            {"role": "user", "content": "how long to cancel?"},
            {"role": "assistant", "content": "Orders can be cancelled within 1 hour."},
        ],
        "support",
        "cancellation",
        "support",
        cards=[],
    )
    table = focus_examples([ex], cfg, BuildConfig(distractor_sections=0))
    reading = RouterPrediction("cancellation", 0.9, {"cancellation": 0.9, "returns": 0.1})
    router = RouterModel(
        ["cancellation", "returns"], np.zeros((2, 4)), np.zeros(2), {"kind_sections": table}
    )
    served = render_system_prompt(cfg, [], TicketRouter._sections(router, reading))
    assert ex.messages[0]["content"] == served
    assert "Cancellations:" in served and "Returns:" not in served
    full = BuildConfig(policies="full")
    assert focus_examples([ex], cfg, full) is None


def test_distractors_are_other_sections_and_seeded():
    available = ["returns", "shipping", "loyalty", "care"]
    a = with_distractors(["returns"], available, 2, random.Random(1))
    b = with_distractors(["returns"], available, 2, random.Random(1))
    assert a == b and a[0] == "returns" and len(set(a)) == 3


def test_unsure_router_readings_widen_the_focus():
    assert focus([("returns", 0.9), ("exchange", 0.05)]) == ["returns"]
    assert focus([("returns", 0.4), ("exchange", 0.35), ("shipping", 0.05)]) == [
        "returns",
        "exchange",
    ]
    assert focus([]) == []


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human agent",
        "can i speak with a real person please",
        "Connect me to an agent",
        "pls real human not a bot",
        "agent",
        "Representative please",
        "I'd like to speak to your manager about my return",
        "stop the automated replies, I need someone",
    ],
)
def test_explicit_requests_for_a_person_hand_over(text):
    assert asks_for_person(text)
    assert _hand_over(None, None, text) == "the customer asked for a person"


@pytest.mark.parametrize(
    "text",
    [
        "My sales agent said the tent has a footprint, is that right?",
        "The person at the counter recommended the Tamarack jacket",
        "Is the Human-Powered Headlamp in stock?",
        "How do I return an item?",
    ],
)
def test_mentions_of_people_are_not_requests(text):
    assert not asks_for_person(text)


def test_router_hands_over_above_its_threshold():
    router = RouterModel(
        ["returns", "human_request"], np.zeros((2, 4)), np.zeros(2), {"hand_over_threshold": 0.3}
    )
    sure = RouterPrediction("human_request", 0.6, {"human_request": 0.6, "returns": 0.4})
    unsure = RouterPrediction("returns", 0.8, {"returns": 0.8, "human_request": 0.2})
    assert "human_request" in _hand_over(router, sure, "hello")
    assert _hand_over(router, unsure, "hello") is None


def test_a_looping_or_empty_draft_is_never_sent():
    assert degenerate("I can't see orders. I can't see orders. I can't see orders.")
    assert degenerate("   ")
    assert degenerate("<NAME>, <NAME>,")  # sent by the demo: placeholders only
    assert degenerate("Hi there, Hi there,")  # and greetings only
    assert degenerate("Hello team!") and degenerate("—")
    assert degenerate("Hi there, yes: it ships today.") is None
    assert degenerate("Hi <NAME>, it ships today.") is None
    assert degenerate("ok ok ok ok ok ok ok ok ok ok ok ok ok ok ok ok ok")
    assert degenerate("Sure! MEsMEsMEsMEsMEsMEsMEsMEsMEs")  # a loop without spaces
    assert degenerate("Total: $75.00 -- free shipping -- 3-5 days.") is None
    assert degenerate("Returns are free within 30 days. Refunds take 5 days.") is None
    signals = Signals(False, -0.01, -0.1, "stop", degenerate="the draft repeats a sentence")
    decision = decide(signals, Thresholds())
    assert decision.confidence == "low"  # never sent in auto mode
    fine = decide(Signals(False, -0.01, -0.1, "stop"), Thresholds())
    assert fine.confidence == "high"


def test_templates_use_store_facts_only():
    cfg = StoreConfig.model_validate(
        {
            **STORE,
            "escalation": {
                "templates": {"legal_threat": "Our team at {brand} will reply from {email}."}
            },
        }
    )
    assert (
        handover_line(cfg, "legal_threat")
        == "Our team at Pine & Peak will reply from help@pine.example.com."
    )
    assert handover_line(cfg, "complaint") == fill(cfg.escalation.handover, cfg)
    with pytest.raises(Exception, match="unknown placeholder"):
        StoreConfig.model_validate({**STORE, "escalation": {"templates": {"x": "Call {manager}"}}})


def test_a_draft_answering_another_question_is_never_high():
    """The reply check's verdict is a reason, and it keeps an otherwise sure draft from
    being sent without a person."""
    off = "the draft reads as a 'shipping' answer, not one about returns (agreement 0.03 < 0.20)"
    decision = decide(Signals(False, -0.01, -0.1, "stop", off_topic=off), Thresholds())
    assert decision.confidence == "medium" and off in decision.reasons
    assert not decision.escalate


@pytest.mark.parametrize(
    ("texts", "ceiling"),
    [
        (["what jackets do you hvae below $150? cheers"], "150"),
        (["hi there - any boots for less than 250 bucks?"], "250"),
        (["tents up to 1,200 dollars", "and a stove under €80"], "80"),  # the latest wins
        (["a bag rated below 20 degrees, under 2 kg"], None),  # not money
        (["how much is the Tamarack jacket?"], None),
    ],
)
def test_the_customers_price_ceiling_is_read_from_their_words(texts, ceiling):
    from decimal import Decimal

    from storetune.serve.rules import budget

    assert budget(texts) == (Decimal(ceiling) if ceiling else None)


def test_a_suggestion_over_the_customers_budget_is_not_sent_unread():
    from storetune.serve.rules import over_budget

    ask = ["Which jackets do you have below $150?"]
    why = over_budget(ask, "The Stillwater 800-Fill Hoody is $199.00.")
    assert why and "199.00" in why and "150" in why
    assert over_budget(ask, "The Pika Storm Shell is $139.00.") is None
    assert over_budget(["any jackets?"], "The Stillwater Hoody is $199.00.") is None
    s = Signals(False, -0.01, -0.1, "stop", over_budget=why)
    decision = decide(s, Thresholds())
    assert decision.confidence == "medium" and why in decision.reasons


def test_a_draft_pasting_a_passage_heading_is_never_sent():
    from storetune.chat.card import PassageCard
    from storetune.serve.routing import _heads
    from storetune.serve.rules import pasted_markup

    card = PassageCard(title="Warranty", heading="Damage on arrival", text="Report within 7 days.")
    heads = _heads(SimpleNamespace(cards=[card]))
    draft = f"{card.render().splitlines()[0]} Thanks for the information."
    assert pasted_markup(draft, heads)
    assert pasted_markup("Report damage within 7 days of delivery.", heads) is None
    s = Signals(False, -0.01, -0.1, "stop", degenerate=pasted_markup(draft, heads))
    assert decide(s, Thresholds()).confidence == "low"


def test_generation_stops_where_a_draft_starts_to_loop():
    """A draft is cut at the first check (every REPEAT_CHECK_EVERY tokens) where its start
    already loops, and what is left is still never sent."""
    from storetune.serve.rules import REPEAT_CHECK_EVERY, repeating, repetition_cut

    text = "Sorry about that. I can't see orders. I can't see orders. I can't see orders."
    ids = list(range(len(text)))  # one token per character

    def decode(part: list[int]) -> str:
        return "".join(text[i] for i in part)

    cut = repetition_cut(decode, ids)
    assert cut is not None and cut % REPEAT_CHECK_EVERY == 0
    assert repeating(decode(ids[:cut])) == "the draft repeats a sentence"
    assert repeating(decode(ids[: cut - REPEAT_CHECK_EVERY])) is None
    assert degenerate(decode(ids[:cut]))  # the cut draft is still never sent
    assert cut < len(text)  # the third copy is never generated
    fine = "Returns are free within 30 days. Refunds take 5 business days."
    assert repetition_cut(lambda p: "".join(fine[i] for i in p), list(range(len(fine)))) is None
