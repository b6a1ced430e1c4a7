"""One Card type: built from store records, rendered for the prompt, read by guard and eval,
in the store's currency (a EUR store's prompt shows € everywhere)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from storetune.chat.card import Card, ProductCard, cards_from_dicts, parse_cards
from storetune.chat.money import format_money
from storetune.chat.prompt import prompt_cards, render_system_prompt
from storetune.config import BuildConfig, StoreConfig
from storetune.dataset.builders.escalation import build_lookalikes
from storetune.dataset.builders.grounded import build_grounded
from storetune.dataset.builders.product_qa import build_product_qa
from storetune.dataset.builders.recommend import build_recommend
from storetune.dataset.builders.safety import build_safety
from storetune.dataset.context import BuildContext
from storetune.demo.store_gen import demo_config
from storetune.eval.records import Case
from storetune.retrieval.catalog import KeywordIndex
from storetune.retrieval.index import Retrieval
from storetune.serve.guard import Evidence, Guard
from storetune.store.records import Product, Variant

JACKET = Product(
    handle="talus-storm",
    title="Women's Talus Storm Rain Jacket",
    description="- Material: 2.5-layer nylon\n- Fit: Runs small\nA light shell for wet hikes.",
    product_type="Jackets",
    variants=[
        Variant("TS-S", {"Size": "S"}, Decimal("149.00"), Decimal("189.00"), inventory_qty=2),
        Variant("TS-M", {"Size": "M"}, Decimal("159.00"), inventory_qty=0),
        Variant("TS-L", {"Size": "L"}, Decimal("1159.00"), None, 0, "continue"),
    ],
)
STOVE = Product(
    handle="ember-stove",
    title="Ember Canister Stove",
    description="- Weight: 83 g",
    product_type="Stoves",
    variants=[Variant("ES", {"Title": "Default Title"}, Decimal("49.95"), inventory_qty=9)],
)


def test_a_product_card_renders_what_the_prompt_always_showed():
    card = ProductCard.from_product(JACKET)
    assert card.render() == (
        "* Women's Talus Storm Rain Jacket (Jackets)\n"
        "  price: $149.00-$1,159.00 (on sale, was $189.00; final sale)\n"
        "  variants: S: in stock; M: out of stock; L: out of stock, backorder available\n"
        "  Material: 2.5-layer nylon; Fit: Runs small"
    )
    assert ProductCard.from_product(STOVE).render().splitlines()[1:] == [
        "  price: $49.95",
        "  stock: in stock",
        "  Weight: 83 g",
    ]
    # what hybrid retrieval puts in a prompt is the same card
    assert Retrieval("rain jacket", [JACKET]).context == card.render()


SHELL = Product(
    handle="tundra-shell",
    title="Tundra Shell",
    description="Meet the Tundra Shell: a shell our crew wore all winter.\n- Weight: 318 g",
    product_type="Jackets",
    variants=[
        Variant(f"T-{s}-{c}", {"Size": s, "Color": c}, Decimal("199.00"), inventory_qty=q)
        for c in ("Slate", "Ember Red")
        for s, q in (("S", 3), ("M", 0 if c == "Ember Red" else 2), ("L", 1), ("XL", 4), ("XXL", 5))
        for q in [q]
    ]
    + [
        Variant(
            "T-3XL-Slate", {"Size": "3XL", "Color": "Slate"}, Decimal("199.00"), None, 0, "continue"
        )
    ],
)


def test_a_grid_of_variants_is_shown_whole_and_compactly():
    """Every size in every colour: the options once and the stock's exceptions, all of the
    variants (more than the dozen one-by-one cards show) and in fewer tokens."""
    full = Product(**{**SHELL.__dict__, "variants": SHELL.variants[:-1]})  # 5 x 2 grid
    card = ProductCard.from_product(full)
    assert card.render().splitlines()[2:] == [
        "  options: Size (S, M, L, XL, XXL); Color (Slate, Ember Red)",
        "  stock: all in stock except M / Ember Red: out of stock",
        "  Weight: 318 g",  # the description's prose with a colon is not a fact
    ]
    assert len(card.stock()) == 10 and ("M / Ember Red", "out of stock") in card.stock()
    one_by_one = ProductCard.from_product(full, max_variants=12)
    one_by_one.options = []
    assert len(card.render()) < len(one_by_one.render())
    back = parse_cards(card.render())[0]
    assert sorted(back.stock()) == sorted(card.stock()) and back.options == card.options
    assert Card.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    # a 3XL only in Slate breaks the grid: one by one, the first dozen
    ragged = ProductCard.from_product(SHELL)
    assert not ragged.options and len(ragged.stock()) == 11
    assert "variants: S / Slate: in stock; " in ragged.render()
    # mostly out of stock has no short form either
    sold = Product(
        **{
            **full.__dict__,
            "variants": [
                Variant(v.sku, v.options, v.price, inventory_qty=0 if i else 1)
                for i, v in enumerate(full.variants)
            ],
        }
    )
    assert (
        "  stock: all out of stock except S / Slate: in stock"
        in ProductCard.from_product(sold).render()
    )


def test_cards_travel_as_json_and_read_back_from_text():
    cards = [ProductCard.from_product(JACKET), ProductCard.from_product(STOVE)]
    through_json = cards_from_dicts(json.loads(json.dumps([c.to_dict() for c in cards])))
    assert through_json == cards
    assert cards_from_dicts(None) is None
    # an old dataset's prompt text gives the same facts (not the handle, which it never showed)
    parsed = parse_cards("Product information:\n" + "\n".join(c.render() for c in cards))
    assert [c.render() for c in parsed] == [c.render() for c in cards]
    assert parsed[0].stock() == [
        ("S", "in stock"),
        ("M", "out of stock"),
        ("L", "out of stock, backorder available"),
    ]
    with pytest.raises(ValueError, match="unknown card kind"):
        Card.from_dict({"kind": "recipe", "title": "x"})


def test_the_prompt_and_an_eval_case_carry_their_cards():
    cfg = StoreConfig.model_validate(demo_config(0))
    cards = [ProductCard.from_product(STOVE)]
    system = render_system_prompt(cfg, cards)
    assert prompt_cards(system) == cards and cards[0].render() in system
    assert (
        prompt_cards(render_system_prompt(cfg, ProductCard.from_product(STOVE).render())) is None
    )  # text only
    assert prompt_cards(render_system_prompt(cfg, [])) == []
    turns = [{"role": "system", "content": str(system)}, {"role": "user", "content": "hi"}]
    # a case from a dataset that recorded its cards reads them, not the prompt text
    recorded = [ProductCard("Something Else", "Stoves", [Decimal("1.00")])]
    assert Case(turns, "ok", "support", "x", cards=recorded).context_cards == recorded
    assert [c.title for c in Case(turns, "ok", "support", "x").context_cards] == [STOVE.title]


def test_builder_examples_record_the_cards_of_their_prompt():
    cfg = StoreConfig.model_validate(demo_config(0))
    ctx = BuildContext(cfg, BuildConfig(product_qa=6, grounded=4), [JACKET, STOVE], [])
    examples = build_product_qa(ctx) + build_grounded(ctx)
    assert examples
    for ex in examples:
        assert ex.cards is not None
        system = ex.messages[0]["content"]
        assert "\n".join(c.render() for c in ex.cards) in system


# ---- a EUR store -----------------------------------------------------------------------------


def _euro(value):
    """The demo store's config in euros: its own free-text policy lines say € too."""
    if isinstance(value, str):
        return value.replace("$", "€")
    if isinstance(value, dict):
        return {k: _euro(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_euro(v) for v in value]
    return value


@pytest.fixture(scope="module")
def eur() -> StoreConfig:
    data = _euro(demo_config(0))
    data["policies"]["shipping"]["currency"] = "EUR"
    return StoreConfig.model_validate(data)


def test_a_eur_stores_prompt_shows_euros_everywhere(eur):
    system = render_system_prompt(eur, [ProductCard.from_product(p) for p in (JACKET, STOVE)])
    assert "$" not in system
    assert "€149.00-€1,159.00 (on sale, was €189.00; final sale)" in system
    assert "price: €49.95" in system
    assert f"Free standard shipping on orders over {format_money(75, 'EUR')}." in system
    # the keyword index hands cards to the renderer, so eval's extra files get € too
    retrieved = KeywordIndex([JACKET, STOVE]).context("how much is the ember stove?")
    assert "price: €49.95" in render_system_prompt(eur, retrieved)


def test_a_eur_stores_training_answers_quote_euros(eur):
    bcfg = BuildConfig(product_qa=30, grounded=30, no_info=5, recommend=10, lookalikes=10)
    ctx = BuildContext(eur, bcfg, [JACKET, STOVE], [])
    examples = (
        build_product_qa(ctx)
        + build_grounded(ctx)
        + build_recommend(ctx)
        + build_lookalikes(ctx)
        + build_safety(ctx, base=200)
    )
    assert len(examples) > 50
    said = [m["content"] for ex in examples for m in ex.messages if m["role"] != "user"]
    assert not [s for s in said if "$" in s]
    assert any("€149.00" in s for s in said if not s.startswith("You are"))


def test_the_guard_checks_euro_prices_against_the_card(eur):
    card = ProductCard.from_product(JACKET)
    system = render_system_prompt(eur, [card])
    guard = Guard([JACKET.title], ["Jackets"])
    evidence = Evidence.for_prompt(system, "How much is the Talus jacket?", eur.brand.website)
    assert evidence.cards == [card]  # from the prompt object, not its text
    ok = guard.check("The Talus Storm jacket is €149.00 in S.", evidence)
    assert ok.ok, ok.blocked
    bad = guard.check("The Talus Storm jacket is €139.00 in S.", evidence)
    assert [(f.kind, f.text) for f in bad.blocked] == [("price", "€139.00")]


def test_every_prompt_of_a_store_shares_one_head_before_what_is_chosen():
    """Layout 2: the lines that never change per ticket come first, so an engine computes
    them once; the chosen policy lines, passages, order and products follow."""
    from storetune.chat.card import OrderCard
    from storetune.chat.prompt import PROMPT_LAYOUT, layout_warning, prompt_layout_of

    cfg = StoreConfig.model_validate(demo_config(0))
    order = OrderCard(
        title="Order #1001", number="#1001", placed="2025-03-01", status="shipped", currency="USD"
    )
    prompts = [
        render_system_prompt(cfg, [ProductCard.from_product(JACKET)], ["returns"]),
        render_system_prompt(cfg, [ProductCard.from_product(STOVE), order], ["shipping"]),
        render_system_prompt(cfg, None, ["loyalty", "care"]),
    ]
    heads = {p.split("Policies:")[0] for p in prompts}
    assert len(heads) == 1
    head = heads.pop()
    assert head.rstrip().splitlines()[-1].startswith("Contact: ")
    assert "Order information:" in prompts[1] and "Order information:" not in prompts[0]
    assert all(prompt_layout_of(p) == PROMPT_LAYOUT for p in prompts)
    old = prompts[0].replace(prompts[0].splitlines()[1], "Only state facts found in the policies.")
    assert prompt_layout_of(old) == 1
    from storetune.chat.prompt import _RULES_2

    two = prompts[0].replace(prompts[0].splitlines()[1], _RULES_2)
    assert prompt_layout_of(two) == 2
    warned = layout_warning({"name": "support", "version": 2, "prompt_layout": 2})
    assert "layout 2" in warned and "stock written compactly" in warned
    assert prompt_layout_of("Classify the product.") is None
    # a support version trained before the layout was recorded is warned about
    assert "layout 1" in layout_warning({"name": "support", "version": 1, "tasks": ["support"]})
    assert layout_warning({"tasks": ["support"], "prompt_layout": PROMPT_LAYOUT}) is None
    assert layout_warning({"tasks": ["classify"]}) is None
