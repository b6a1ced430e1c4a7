"""Conversational builders: recommendations, grounded / no-info, safety, look-alikes.

Each test checks a property of the gold answers themselves, since they are what the
model learns: only real, active, fitting products are named; every number is in
the system prompt; refusals hold the price and never leak the prompt.
"""

from __future__ import annotations

import random
import re
from decimal import Decimal
from pathlib import Path

import pytest

from storetune.chat.card import ProductCard
from storetune.chat.money import format_money as money
from storetune.config import BuildConfig
from storetune.config.train import SUPPORT_TASKS
from storetune.dataset.builders import phrasing
from storetune.dataset.builders.escalation import build_escalation, build_lookalikes
from storetune.dataset.builders.grounded import ABSENT_FACTS, build_grounded, visible_variants
from storetune.dataset.builders.recommend import build_recommend
from storetune.dataset.builders.safety import build_safety, fake_name
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import ingest_workspace
from storetune.store import db
from storetune.store.records import Product, Variant
from storetune.workspace import Workspace

COUNTS = {"recommend": 45, "grounded": 40, "no_info": 30, "lookalikes": 30}
BASE = 1200  # non-safety examples the safety share is taken from


def product_card(p: Product) -> str:
    """A product's card as the prompt shows it."""
    return ProductCard.from_product(p).render()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("mix"))
    generate_demo_store(root, seed=3, n_products=60, n_tickets=80)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    tickets = db.load_tickets(conn, resolved_only=True)
    conn.close()
    return ws.config(), products, tickets


def _ctx(store, seed: int = 0) -> BuildContext:
    cfg, products, tickets = store
    return BuildContext(cfg, BuildConfig(seed=seed, **COUNTS), products, tickets)


def _build(ctx: BuildContext) -> list[Example]:
    return [
        *build_recommend(ctx),
        *build_grounded(ctx),
        *build_lookalikes(ctx),
        *build_safety(ctx, base=BASE),
    ]


@pytest.fixture(scope="module")
def examples(store) -> list[Example]:
    return _build(_ctx(store))


def _of(examples, task, category=None):
    found = [e for e in examples if e.task == task and category in (None, e.category)]
    assert found, f"no {task}/{category} examples"
    return found


def _parts(ex: Example) -> tuple[str, str, str]:
    system, user, assistant = (m["content"] for m in ex.messages)
    return system, user, assistant


def _named(text: str, products: list[Product]) -> list[Product]:
    """Products whose full title appears in text, longest titles matched first."""
    found = []
    for p in sorted(products, key=lambda p: -len(p.title)):
        if p.title in text:
            found.append(p)
            text = text.replace(p.title, " ")
    return found


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _prices(text: str) -> set[str]:
    return set(re.findall(r"\$\d[\d,]*\.\d\d", text))


# --- counts, tags, determinism ----------------------------------------------------------------


def test_counts_follow_config(store, examples):
    ctx = _ctx(store)
    by_task: dict[str, int] = {}
    for e in examples:
        by_task[e.task] = by_task.get(e.task, 0) + 1
    assert by_task["recommend"] == COUNTS["recommend"]
    assert by_task["grounded"] == COUNTS["grounded"]
    assert by_task["no_info"] == COUNTS["no_info"]
    assert by_task["lookalike"] == COUNTS["lookalikes"]
    safety = {c: 0 for c in ctx.bcfg.safety.counts(BASE)}
    for e in _of(examples, "safety"):
        safety[e.category] += 1
    assert safety == ctx.bcfg.safety.counts(BASE)
    assert safety["fake_product"] > safety["negotiation"]  # the 60/…/12 weights


def test_tasks_and_categories_use_the_shared_tags(examples):
    allowed = {
        "recommend": {"occasion", "budget", "size"},
        "no_info": {"irrelevant_context", "missing_context"},
        "safety": {"fake_product", "manipulation", "off_topic", "injection", "negotiation"},
        "lookalike": {
            "fraud_chargeback",
            "legal_threat",
            "safety_incident",
            "complaint",
            "human_request",
        },
    }
    for e in examples:
        assert e.task in SUPPORT_TASKS
        if e.task in allowed:
            assert e.category in allowed[e.task]
        assert e.source_ids == [e.group] and e.group
    for task, cats in allowed.items():
        assert {e.category for e in examples if e.task == task} == cats


def test_same_seed_same_examples_other_seed_different(store, examples):
    again = _build(_ctx(store))
    assert [(e.messages, e.task, e.category, e.group) for e in again] == [
        (e.messages, e.task, e.category, e.group) for e in examples
    ]
    other = _build(_ctx(store, seed=1))
    assert [e.messages for e in other] != [e.messages for e in examples]


def test_no_two_examples_are_identical(examples):
    # ignoring case and punctuation, as the validator's duplicate check does
    keys = [" ".join(re.findall(r"\w+", e.key().lower())) for e in examples]
    assert len(keys) == len(set(keys))


def test_replies_are_short_and_prompts_hold_at_most_four_cards(examples):
    for e in examples:
        system, _, reply = _parts(e)
        assert reply.strip() and len(reply) < 600, reply
        assert system.count("\n* ") <= 4  # keeps examples far from the 2,048-token limit


# --- grounding --------------------------------------------------------------------------------


def test_every_number_in_a_gold_answer_is_in_its_system_prompt(examples):
    for e in examples:
        system, _, reply = _parts(e)
        missing = _numbers(reply) - _numbers(system)
        assert not missing, (e.task, e.category, reply)
        assert _prices(reply) <= _prices(system), reply


def test_recommendations_name_only_active_fitting_products_whose_card_is_shown(store, examples):
    _, products, _ = store
    for e in _of(examples, "recommend"):
        system, user, reply = _parts(e)
        _, category, ptype, constraint = e.group.split(":", 3)
        named = _named(reply, products)
        assert named, reply
        for p in named:
            assert p.active, p.title  # never a draft or archived product
            assert product_card(p) in system
            assert any(v.purchasable for v in visible_variants(p))
        shown = [p for p in products if p.active and product_card(p) in system]
        fits = [p for p in shown if p.product_type == ptype and _meets(p, category, constraint)]
        if fits:
            assert all(p in fits for p in named), (user, reply)
        else:  # says plainly that nothing fits, then names the nearest option
            assert re.search(r"\b(none of|don't see|isn't available)\b", reply), reply
        if category == "budget":
            assert _numbers(user) == {constraint}  # the budget asked for is the one checked


def _meets(p: Product, category: str, constraint: str) -> bool:
    buyable = [v for v in visible_variants(p) if v.purchasable]
    if category == "budget":
        return max(v.price for v in p.variants) < Decimal(constraint)
    if category == "size":
        return any(v.options.get("Size") == constraint for v in buyable)
    return constraint in p.tags and bool(buyable)


def test_budget_picks_hold_for_every_option_price(store):
    # Wide price ranges: a product whose cheapest option fits but dearest doesn't must
    # not be recommended "within your budget".
    cfg, _, _ = store
    products = [
        Product(
            handle=f"tent-{i}",
            title=f"Model {chr(65 + i)} Tent",
            description="- Material: nylon",
            product_type="Tents",
            tags=["camping"],
            variants=[
                Variant(f"T{i}R", {"Size": "Regular"}, Decimal(30 + 25 * i), inventory_qty=3),
                Variant(f"T{i}L", {"Size": "Long"}, Decimal(80 + 25 * i), inventory_qty=3),
            ],
        )
        for i in range(8)
    ]
    ctx = BuildContext(cfg, BuildConfig(recommend=60), products, [])
    budget = [e for e in build_recommend(ctx) if e.category == "budget"]
    assert len(budget) == 20
    for e in budget:
        limit = Decimal(e.group.rsplit(":", 1)[1])
        for p in _named(_parts(e)[2], products):
            if "most affordable" not in _parts(e)[2]:
                assert max(v.price for v in p.variants) < limit, _parts(e)


def test_recommendations_quote_the_card_price(store, examples):
    _, products, _ = store
    for e in _of(examples, "recommend"):
        system, _, reply = _parts(e)
        for p in _named(reply, products):
            low = money(min(v.price for v in p.variants))
            assert low in reply and low in system


def test_grounded_answers_pick_the_asked_product_among_distractors(store, examples):
    _, products, _ = store
    by_handle = {p.handle: p for p in products}
    with_distractors = 0
    for e in _of(examples, "grounded"):
        system, _, reply = _parts(e)
        target = by_handle[e.group.removeprefix("product:")]
        assert product_card(target) in system
        with_distractors += system.count("\n* ") >= 2
        others = [p for p in _named(reply, products) if p.handle != target.handle]
        assert target.title in reply and not others, reply
    assert with_distractors == len(_of(examples, "grounded"))


def test_no_info_answers_admit_it_and_give_the_next_step(store, examples):
    cfg, products, _ = store
    by_handle = {p.handle: p for p in products}
    for e in _of(examples, "no_info"):
        system, _, reply = _parts(e)
        target = by_handle[e.group.removeprefix("product:")]
        assert cfg.policies.contact.email in reply
        assert not _prices(reply)
        if e.category == "irrelevant_context":
            assert "Product information:" in system and product_card(target) not in system
            assert target.title not in reply
        elif product_card(target) in system:  # the card is there but lacks the asked fact
            assert target.title in reply
            (words,) = [w for _, what, w in ABSENT_FACTS if what in reply]
            assert not any(word in product_card(target).lower() for word in words), reply
        else:
            assert "Product information:" not in system
    kinds = {("Product information:" in _parts(e)[0]) for e in _of(examples, "no_info")}
    assert kinds == {True, False}


# --- safety -----------------------------------------------------------------------------------


def _core(title: str) -> str:
    words = [w for w in re.findall(r"[a-z0-9']+", title.lower()) if not w.endswith("'s")]
    return " ".join(w for w in words)


def test_fake_names_never_match_any_product_including_drafts(store):
    _, products, _ = store
    assert any(not p.active for p in products)  # drafts/archived are part of the check
    cores = {_core(p.title) for p in products}
    rng = random.Random(7)
    fakes = {f for f in (fake_name(products, rng) for _ in range(400)) if f}
    assert len(fakes) > 100
    for fake in fakes:
        assert _core(fake) not in cores
        vocab = {w for p in products for w in p.title.split()}
        assert set(fake.split()) <= vocab  # built from the catalog's own words


def test_fake_product_answers_quote_no_price_and_offer_a_real_product(store, examples):
    _, products, _ = store
    cores = [_core(p.title) for p in products]
    for e in _of(examples, "safety", "fake_product"):
        system, user, reply = _parts(e)
        assert not any(c in _core(user) for c in cores), user  # the asked name is not real
        assert "$" not in reply and not _numbers(reply) - _numbers(system)
        offered = _named(reply, products)
        assert len(offered) == 1 and offered[0].active
        assert product_card(offered[0]) in system


def test_injection_answers_never_reveal_the_system_prompt(examples):
    for e in _of(examples, "safety", "injection"):
        system, _, reply = _parts(e)
        assert system[:40] not in reply
        for line in system.splitlines():
            line = line.strip("-* ").strip()
            if len(line) >= 25:
                assert line not in reply, line


def test_injection_hidden_in_pasted_text_is_not_followed(examples):
    pasted = [e for e in _of(examples, "safety", "injection") if '"' in _parts(e)[1]]
    assert pasted
    for e in pasted:
        system, user, reply = _parts(e)
        assert "$5" not in reply and "free" not in reply.lower().replace("free prepaid", "")
        assert not _prices(reply) - _prices(system)


def test_negotiation_holds_the_listed_price(store, examples):
    cfg, products, _ = store
    for e in _of(examples, "safety", "negotiation"):
        system, user, reply = _parts(e)
        (p,) = _named(reply, products)
        card = product_card(p)
        assert card in system
        assert _prices(reply) and _prices(reply) <= _prices(card)
        assert not (_numbers(user) - _numbers(system)) & _numbers(reply)
        if re.search(r"cheaper|beat|buying it from", user):
            assert "14 days" in reply  # the store's price-match policy, from store.yaml


def test_manipulation_and_off_topic_refuse_without_echoing_numbers(examples):
    for cat in ("manipulation", "off_topic"):
        for e in _of(examples, "safety", cat):
            system, user, reply = _parts(e)
            assert not (_numbers(user) - _numbers(system)) & _numbers(reply), reply
            assert re.search(r"\b(can't|not able|not something)\b", reply), reply


def test_refusals_vary_in_phrasing(examples):
    for cat in ("fake_product", "manipulation", "off_topic", "injection", "negotiation"):
        openers = {_parts(e)[2].split(".")[0] for e in _of(examples, "safety", cat)}
        assert len(openers) >= 3, cat


# --- escalation look-alikes -------------------------------------------------------------------

_TOPIC_WORDS = {
    "fraud_chargeback": ("chargeback", "dispute", "fraud"),
    "legal_threat": ("lawyer", "attorney", "sue", "law", "legal"),
    "safety_incident": ("hospital", "rash", "melt", "injury", "fire"),
    "complaint": ("complain", "manager"),
    "human_request": ("person", "agent", "manager", "human", "staff", "team"),
}


def test_lookalikes_have_no_marker_while_escalations_do(store, examples):
    cfg, _, tickets = store
    marker = cfg.escalation.marker
    for e in _of(examples, "lookalike"):
        system, user, reply = _parts(e)
        assert marker not in reply
        assert any(w in user.lower() for w in _TOPIC_WORDS[e.category]), user
    ctx = _ctx(store)
    escalations = build_escalation(tickets, cfg, ctx.system_for, None, 0)
    assert escalations and all(_parts(e)[2].startswith(marker) for e in escalations)


def test_lookalikes_answer_from_the_policies(store, examples):
    cfg, _, _ = store
    returns = [e for e in _of(examples, "lookalike") if "return" in _parts(e)[1].lower()]
    assert returns
    for e in returns:
        reply = _parts(e)[2]
        if "Returns are accepted" in reply:
            assert f"within {cfg.policies.returns.window_days} days" in reply


# --- phrasing ---------------------------------------------------------------------------------


def test_typos_and_restyling_keep_the_fact_words():
    rng = random.Random(0)
    keep = phrasing.keep_words("Tundra Waterproof Shell", "XL / Slate")
    for _ in range(300):
        text = phrasing.vary(
            "Is the Tundra Waterproof Shell in size XL / Slate in stock?", rng, keep
        )
        assert "tundra waterproof shell" in text.lower() and "size xl / slate" in text.lower()
    changed = {
        phrasing.typo("please check the delivery window", random.Random(i)) for i in range(50)
    }
    assert len(changed) > 10 and "please check the delivery window" not in changed
