"""Order-status training examples come from fictional order cards, and no real order
value (number, email, tracking number in store.db) ever reaches a dataset."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace

import pytest

from storetune.chat.card import Card, OrderCard
from storetune.dataset.build import build_dataset
from storetune.dataset.builders.orders import CATEGORIES
from storetune.dataset.example import Example
from storetune.dataset.order_leaks import drop_real_order_values, real_order_values
from storetune.dataset.validate import load_model_tokenizer
from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import ingest_workspace
from storetune.kinds import kind_of
from storetune.serve.guard import Evidence, Guard
from storetune.workspace import Workspace


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    tiny = replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)
    root = tmp_path_factory.mktemp("orders-ds")
    generate_demo_store(root, seed=5, n_products=24, n_tickets=80)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    return ws, build_dataset(ws, model=tiny, progress=False)


def rows(report) -> list[tuple[dict, dict]]:
    """(example, meta) of every split, in meta.jsonl order."""
    meta = [json.loads(x) for x in (report.path / "meta.jsonl").read_text().splitlines()]
    lines = {
        s: (report.path / f"{s}.jsonl").read_text().splitlines() for s in ("train", "val", "test")
    }
    seen: Counter[str] = Counter()
    out = []
    for m in meta:
        out.append((json.loads(lines[m["split"]][seen[m["split"]]]), m))
        seen[m["split"]] += 1
    return out


def test_every_order_category_is_built_from_an_order_card(built):
    _, report = built
    orders = [(ex, m) for ex, m in rows(report) if m["task"] == "order"]
    assert Counter(m["category"] for _, m in orders).keys() == set(CATEGORIES)
    for ex, m in orders:
        system = ex["messages"][0]["content"]
        cards = [Card.from_dict(c) for c in m["cards"] or []]
        orders_shown = [c for c in cards if isinstance(c, OrderCard)]
        if m["category"] == "unverified":
            assert not orders_shown and "Order information:" not in system
            assert "order number" in ex["messages"][-1]["content"]
        else:
            (card,) = orders_shown
            assert card.render() in system  # the same renderer serving uses


def test_replies_pass_the_serving_guard(built):
    # what training teaches must be what serving lets through: every order fact in a
    # reply is on the card (or is the customer's own number)
    ws, report = built
    website = ws.config().brand.website
    for ex, m in rows(report):
        if m["task"] != "order":
            continue
        system, user, reply = (x["content"] for x in ex["messages"])
        cards = [Card.from_dict(c) for c in m["cards"] or []]
        evidence = Evidence.for_prompt(system, user, website, cards)
        result = Guard().check(reply.replace("[ESCALATE]", ""), evidence)
        assert result.ok, (m["category"], result.reasons())


def test_delivered_but_missing_hands_over_under_the_damaged_policy(built):
    ws, report = built
    days = ws.config().policies.damaged_items.report_within_days
    missing = [ex for ex, m in rows(report) if m["category"] == "delivered_missing"]
    assert missing
    for ex in missing:
        reply = ex["messages"][-1]["content"]
        assert reply.startswith("[ESCALATE]") and f"within {days} days" in reply
        assert f"within {days} days" in ex["messages"][0]["content"]  # the policy line is there
    assert kind_of("order", "delivered_missing") == "damaged_missing"
    assert kind_of("order", "shipped") == "order_status"


def test_no_real_order_value_reaches_any_dataset_file(built):
    ws, report = built
    real = real_order_values(ws.db_path)
    assert len(real["order_number"]) >= 20 and real["email"] and real["tracking_number"]
    text = "\n".join(p.read_text() for p in report.path.iterdir() if p.is_file())
    for email in real["email"]:
        assert email not in text.lower()
    for tracking in real["tracking_number"]:
        assert tracking not in text
    written = set(re.findall(r"(?:#|order\s+(?:#\s?)?)(\d{4,12})\b", text, re.I))
    assert len(written) > 20  # the fictional cards' numbers are there
    assert not written & real["order_number"]


def test_an_example_holding_a_real_value_is_dropped(built):
    ws, _ = built
    real = real_order_values(ws.db_path)
    tracking = sorted(real["tracking_number"])[0]
    email = sorted(real["email"])[0]
    number = sorted(real["order_number"])[0]

    def ex(reply: str) -> Example:
        return Example([{"role": "user", "content": "where?"}, {"role": "assistant", "content": reply}], "support", "order_status", "feedback")  # fmt: skip

    leaks = [
        ex(f"Your tracking number is {tracking}."),
        ex(f"We emailed {email.upper()} about it."),
        ex(f"Order #{number} shipped."),
    ]
    fine = ex("Order #12 shipped, tracking number 1Z999AA10000000001.")
    kept, dropped = drop_real_order_values([*leaks, fine], real)
    assert kept == [fine]
    assert dropped == {"examples": 3, "tracking_number": 1, "email": 1, "order_number": 1}


def test_build_report_counts_dropped_examples(built):
    _, report = built
    assert report.notes["real_order_values_dropped"] == 0
    assert report.by_builder["orders"]
