"""The grader entry point routes each task to its grader and knows the store's products."""

from __future__ import annotations

import json

from evalkit import case

from storetune.chat.card import parse_cards
from storetune.eval.graders import Grader, grade
from storetune.eval.records import Case, StoreFacts


def test_cards_are_parsed_from_the_system_prompt():
    c = case("hi", "hello")
    (card,) = parse_cards(c.system)
    assert card.title == "Ridgeline Insulated Jacket"
    assert card.variants == [("M / Black", "in stock"), ("L / Black", "out of stock")]


def test_each_task_goes_to_its_grader():
    support = grade(case("Price of the Ridgeline?", "It's $129.00."), "It's $129.00.")
    assert support.verdict == "correct" and support.task_metrics == {}
    cls = Case(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "A > B",
        "classify",
        "t",
    )
    assert grade(cls, "A > B").task_metrics["pred_class"] == "A > B"
    qr = Case(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        json.dumps({"size": "M"}),
        "query_rewrite",
        "t",
    )
    assert grade(qr, '{"size": "M"}').task_metrics["json_valid"] is True


def test_catalog_products_outside_the_context_are_known():
    store = StoreFacts(catalog=("Ridgeline Insulated Jacket", "Summit Down Parka"))
    c = case("Anything warmer?", "The Ridgeline Insulated Jacket ($129.00) is insulated.")
    g = Grader(store, [c]).grade(c, "The Summit Down Parka is warmer.")
    assert g.verdict == "wrong"
    assert any("Summit Down Parka (not in the context)" in h for h in g.hallucinations)


def test_store_website_and_contact_are_allowed():
    store = StoreFacts(allowed=("https://www.pinepeak.example.com",))
    c = case("Where do I start a return?", "Start it on our Returns page.", card=False)
    g = Grader(store, [c]).grade(c, "Start it at https://www.pinepeak.example.com/returns.")
    assert not g.hallucinations
