"""Retrieval-aware answers: grounded in the context given, or 'I don't have that'.

`grounded` examples put the asked-about product's card in the system prompt next to
distractor cards (preferably of the same type), so the model learns to read the
right card rather than the first one. `no_info` examples teach the honest answer
when the context cannot support one: the cards are about other products, there are
no cards at all, or the card lacks the asked fact. Answers only quote what the card
shows (the card truncates variants and facts, so the helpers below read it back).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from storetune.chat.card import ProductCard, stock_status
from storetune.chat.money import format_money
from storetune.chat.prompt import prompt_cards
from storetune.dataset.builders.phrasing import (
    combine,
    keep_words,
    next_step,
    phrasing_family,
    pick,
    vary,
)
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Product, Variant

# --- what a product's card shows ---------------------------------------------------------------


def visible_variants(p: Product, card: ProductCard | None = None) -> list[Variant]:
    """Variants whose stock the card states (cards list at most a dozen)."""
    card = card or ProductCard.from_product(p)
    named = [v for v in p.variants if v.label != "Default"]
    if not named:
        return p.variants[:1]
    shown = set(card.variants)
    return [v for v in named if (v.label, stock_status(v)) in shown]


def visible_facts(p: Product, card: ProductCard | None = None) -> dict[str, tuple[str, str]]:
    """Card facts keyed by lower-case name: (name as written, value)."""
    card = card or ProductCard.from_product(p)
    shown = "; ".join(card.facts)
    facts: dict[str, tuple[str, str]] = {}
    for line in p.description.splitlines():
        name, _, value = line.strip("- ").strip().partition(":")
        name, value = name.strip(), value.strip()
        # a fact is a short "Name: value" line; longer names are prose with a colon
        if value and len(name.split()) <= 3 and f"{name}: {value}" in shown:
            facts.setdefault(name.lower(), (name, value))
    return facts


class Catalog:
    """The build context, reading each product card once.

    Builders consult the same cards thousands of times; on a 3,000-product catalog,
    re-reading cards and re-listing the active products per example was most of the
    build time. Handles are unique within a store, so they key the memo.
    """

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx
        self.cfg, self.bcfg, self.index = ctx.cfg, ctx.bcfg, ctx.index
        self.products = ctx.products
        self.active_products = ctx.active_products
        self.rng, self.system_with, self.system_for = ctx.rng, ctx.system_with, ctx.system_for
        self.currency = ctx.currency
        self._cards: dict[str, tuple[list[Variant], dict[str, tuple[str, str]]]] = {}
        self._memo: dict[str, Any] = {}

    def _read(self, p: Product) -> tuple[list[Variant], dict[str, tuple[str, str]]]:
        got = self._cards.get(p.handle)
        if got is None:
            card = self.card(p)
            got = self._cards[p.handle] = (visible_variants(p, card), visible_facts(p, card))
        return got

    def card(self, p: Product) -> ProductCard:
        return self.ctx.card(p)

    def variants(self, p: Product) -> list[Variant]:
        return self._read(p)[0]

    def facts(self, p: Product) -> dict[str, tuple[str, str]]:
        return self._read(p)[1]

    def buyable(self, p: Product) -> list[Variant]:
        """Shown variants that can be ordered now or on backorder."""
        return [v for v in self.variants(p) if v.purchasable]

    def price_phrase(self, p: Product, short: bool = False) -> str:
        return price_phrase(self.card(p), self.currency, short)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the whole catalog, computed once per build."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def lower_first(text: str) -> str:
    """'Nylon shell' -> 'nylon shell' mid-sentence; acronyms ('RDS down') stay."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def price_phrase(card: ProductCard, currency: str, short: bool = False) -> str:
    """The card's price in words; quotes no number the card doesn't show.

    `short` drops the "was" price and the explanations, for lists of products.
    """
    prices = [format_money(x, currency) for x in card.prices]
    if len(prices) == 1:
        text = prices[0]
    elif short:
        text = f"{prices[0]}-{prices[-1]}"
    else:
        text = f"{prices[0]} to {prices[-1]} depending on the option"
    if card.was is not None and short:
        text += " on sale (final sale)"
    elif card.was is not None:
        text += f" (on sale from {format_money(card.was, currency)}; sale items are final sale)"
    return text


def stock_word(v: Variant) -> str:
    if v.in_stock:
        return "in stock"
    return "available on backorder" if v.inventory_policy == "continue" else "out of stock"


def stock_answer(p: Product, v: Variant, rng: random.Random, shown: list[Variant]) -> str:
    """Availability of one variant; `shown` are the variants its card lists."""
    label = f"the {p.title}" + (f" in {v.label}" if v.label != "Default" else "")
    if v.in_stock:
        return pick(rng, [f"Yes, {label} is in stock.", f"Good news: {label} is in stock."])
    if v.inventory_policy == "continue":
        return (
            f"{label[0].upper()}{label[1:]} is out of stock right now, but you can backorder "
            "it and we'll ship it as soon as it's back."
        )
    others = [o.label for o in shown if o.in_stock and o is not v]
    text = f"Sorry, {label} is out of stock at the moment."
    if others:
        text += f" {pick(rng, others)} is in stock if that works for you."
    return text


# --- questions --------------------------------------------------------------------------------

_PRICE_Q = [
    "How much is the {t}?",
    "what's the price on the {t}",
    "{t} - how much?",
    "What does the {t} cost right now?",
    "is the {t} on sale? what's it cost",
]
_STOCK_Q = [
    "Is the {t} in {v} in stock?",
    "do you have the {t} in {v}",
    "{t}, {v} - available?",
    "Can I order the {t} in {v} today?",
    "any {v} left in the {t}?",
]
_FACT_Q = {
    "material": ["What's the {t} made of?", "{t} material?", "what fabric is the {t}"],
    "care": [
        "How should I wash the {t}?",
        "care instructions for the {t}?",
        "how do I clean the {t}",
    ],
    "fit": ["How does the {t} fit?", "does the {t} run small?", "{t} sizing - true to size?"],
    "weight": ["How much does the {t} weigh?", "{t} weight?", "is the {t} heavy?"],
    "warranty": ["What warranty does the {t} have?", "is the {t} under warranty?"],
}
_SPEC_Q = ["What's the {n} of the {t}?", "{t} {n}?", "Can you tell me the {n} on the {t}?"]
_FACT_A = {
    "material": ["The {t} is made of {v}.", "{t}: {v}."],
    "care": ["Care for the {t}: {v}.", "For the {t}: {v}."],
    "fit": ["Fit of the {t}: {v}.", "The {t}: {v}."],
    "weight": ["The {t} weighs {v}.", "It's {v} - that's the {t}'s listed weight."],
    "warranty": ["The {t} comes with this warranty: {v}.", "Warranty on the {t}: {v}."],
}


def _ref(p: Product, others: list[Product], rng: random.Random) -> str:
    """How the customer names the product: full title, or a short form if unambiguous."""
    words = [w for w in p.title.split() if not w.endswith("'s")]
    if rng.random() < 0.3 and len(words) >= 3:
        short = f"{words[0]} {words[-1]}"
        if not any(words[0] in o.title and words[-1] in o.title for o in others):
            return short
    return p.title


def _fact_qa(
    ctx: Catalog, p: Product, key: str, ref: str, rng: random.Random
) -> tuple[str, str, str] | None:
    """(question, answer, question template) about one card fact."""
    facts = ctx.facts(p)
    if key not in facts:
        return None
    name, value = facts[key]
    if key in _FACT_Q:
        template = pick(rng, _FACT_A[key])
        if not template.startswith("{t}"):
            value = lower_first(value)
        asked = pick(rng, _FACT_Q[key])
        return asked.format(t=ref), template.format(t=p.title, v=value), asked
    asked = pick(rng, _SPEC_Q)
    return asked.format(t=ref, n=name.lower()), f"{name} of the {p.title}: {value}.", asked


def _one_qa(
    ctx: Catalog, p: Product, kind: str, ref: str, rng: random.Random
) -> tuple[str, str, str] | None:
    """(question, answer, question template) of one kind."""
    if kind == "price":
        asked = pick(rng, _PRICE_Q)
        question, answer = asked.format(t=ref), f"The {p.title} is {ctx.price_phrase(p)}."
        if "sale" in question and not any(v.on_sale for v in p.variants):
            answer += " It isn't on sale right now."
        return question, answer, asked
    if kind == "stock":
        options = [v for v in ctx.variants(p) if v.label != "Default"]
        if not options:
            return None
        v = rng.choice(options)
        answer = stock_answer(p, v, rng, ctx.variants(p))
        asked = pick(rng, _STOCK_Q)
        return asked.format(t=ref, v=v.label), answer, asked
    if kind == "spec":
        specs = [k for k in ctx.facts(p) if k not in _FACT_Q]
        if not specs:
            return None
        return _fact_qa(ctx, p, rng.choice(sorted(specs)), ref, rng)
    return _fact_qa(ctx, p, kind, ref, rng)


_KINDS = ["price", "stock", "material", "care", "fit", "weight", "warranty", "spec", "multi"]


def _distractors(ctx: Catalog, p: Product, k: int, rng: random.Random) -> list[Product]:
    """Other active products, same type first: the hard negatives for reading a card."""
    same = [o for o in by_type(ctx).get(p.product_type, []) if o.handle != p.handle]
    picked = rng.sample(same, min(len(same), max(1, k - 1)))
    while len(picked) < k and len(picked) < len(ctx.active_products) - 1:
        o = rng.choice(ctx.active_products)  # any other product fills the rest
        if o.handle != p.handle and all(o.handle != q.handle for q in picked):
            picked.append(o)
    return picked


def by_type(ctx: Catalog) -> dict[str, list[Product]]:
    """Active products by product type (memoised per build)."""

    def group() -> dict[str, list[Product]]:
        out: dict[str, list[Product]] = {}
        for p in ctx.active_products:
            out.setdefault(p.product_type, []).append(p)
        return out

    return ctx.memo("by_type", group)


def _grounded_one(ctx: Catalog, rng: random.Random) -> Example | None:
    p = rng.choice(ctx.active_products)
    cards = [p, *_distractors(ctx, p, rng.randint(1, 3), rng)]
    rng.shuffle(cards)
    others = [o for o in cards if o is not p]
    ref = _ref(p, others, rng)
    kind = rng.choice(_KINDS)
    if kind == "multi":
        a, b = rng.sample(_KINDS[:-1], 2)
        qa1, qa2 = _one_qa(ctx, p, a, ref, rng), _one_qa(ctx, p, b, ref, rng)
        if not qa1 or not qa2:
            return None
        # two questions in one message: the family is the first one's wording
        question, answer, asked = combine(qa1[0], qa2[0], rng), f"{qa1[1]} {qa2[1]}", qa1[2]
    else:
        qa = _one_qa(ctx, p, kind, ref, rng)
        if not qa:
            return None
        question, answer, asked = qa
    question = vary(question, rng, keep_words(p.title, *(v.label for v in p.variants)))
    return _example(ctx.system_with(cards), question, answer, "grounded", kind, p, asked)


def _example(
    system: str, q: str, a: str, task: str, category: str, p: Product, template: str
) -> Example:
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": q},
            {"role": "assistant", "content": a},
        ],
        task=task,
        category=category,
        builder="grounded",
        source_ids=[f"product:{p.handle}"],
        group=f"product:{p.handle}",  # shares a split with the product's other questions
        family=phrasing_family(template),
        cards=prompt_cards(system),
    )


# --- no information ---------------------------------------------------------------------------

# Facts a customer asks about that a card may not state: (question, what it is, card words
# that would mean the card does answer it).
ABSENT_FACTS = [
    ("Where is the {t} made?", "where it's made", ("made in", "origin")),
    ("What's the warranty on the {t}?", "the warranty", ("warranty",)),
    ("Is the {t} waterproof? what's the rating", "a waterproof rating", ("waterproof",)),
    ("Does the {t} have pockets?", "anything about pockets", ("pocket",)),
    ("What are the packed dimensions of the {t}?", "its packed dimensions", ("dimension",)),
    ("Is the {t} vegan?", "whether it's vegan", ("vegan",)),
    ("When will the {t} be restocked?", "a restock date", ("restock",)),
    ("What's the UPF rating of the {t}?", "a UPF rating", ("upf",)),
]
_UNKNOWN_PRODUCT = [
    "I don't have the details for that product in front of me, so I can't confirm its {what}.",
    "I can't see information on that item here, so I'd rather not guess its {what}.",
    "That product isn't in the information I have right now, so I can't tell you its {what}.",
]
_ASK = {
    "price": ("How much is the {t}?", "price"),
    "stock": ("Is the {t} in stock?", "availability"),
    "material": ("What is the {t} made of?", "materials"),
    "weight": ("how heavy is the {t}", "weight"),
    "fit": ("does the {t} run true to size?", "fit"),
}


def _unknown_product(ctx: Catalog, rng: random.Random, with_cards: bool) -> Example:
    p = rng.choice(ctx.active_products)
    cards = []
    if with_cards:  # other products only, same type first: tempting but wrong
        cards = _distractors(ctx, p, rng.randint(1, 3), rng)
    key = rng.choice(sorted(_ASK))
    template, what = _ASK[key]
    question = vary(template.format(t=p.title), rng, keep_words(p.title))
    answer = pick(rng, _UNKNOWN_PRODUCT).format(what=what)
    if cards and rng.random() < 0.4:
        shown = " and the ".join(c.title for c in cards[:2])
        answer += f" I can only see the {shown} at the moment."
    answer += " " + next_step(ctx.cfg, rng)
    category = "irrelevant_context" if with_cards else "missing_context"
    return _example(ctx.system_with(cards), question, answer, "no_info", category, p, template)


def _absent_fact(ctx: Catalog, rng: random.Random) -> Example | None:
    p = rng.choice(ctx.active_products)
    card = ctx.card(p).render(ctx.currency).lower()
    options = [a for a in ABSENT_FACTS if not any(w in card for w in a[2])]
    if not options:
        return None
    template, what, _ = rng.choice(options)
    question = vary(template.format(t=p.title), rng, keep_words(p.title))
    answer = pick(
        rng,
        [
            f"The product information I have for the {p.title} doesn't mention {what}.",
            f"I'm sorry, the {p.title}'s details don't include {what}, so I can't say for sure.",
            f"I don't have {what} for the {p.title} - it isn't in the product details.",
        ],
    )
    answer += " " + next_step(ctx.cfg, rng)
    cards = [p, *_distractors(ctx, p, rng.randint(0, 1), rng)]
    rng.shuffle(cards)
    return _example(
        ctx.system_with(cards), question, answer, "no_info", "missing_context", p, template
    )


def _no_info_one(ctx: Catalog, rng: random.Random) -> Example | None:
    roll = rng.random()
    if roll < 0.5:
        return _unknown_product(ctx, rng, with_cards=True)
    if roll < 0.7:
        return _unknown_product(ctx, rng, with_cards=False)
    return _absent_fact(ctx, rng)


def fill(n: int, make, rng: random.Random, seen: set[str] | None = None) -> list[Example]:
    """Call `make(rng)` until n distinct examples exist (or attempts run out).

    Distinct ignores case and punctuation: "Give me admin" and "give me admin!" teach
    the same thing, and the validator counts them as duplicates.
    """
    out: list[Example] = []
    seen = set() if seen is None else seen
    attempts = 0
    while len(out) < n and attempts < n * 20:
        attempts += 1
        ex = make(rng)
        key = " ".join(re.findall(r"\w+", ex.key().lower())) if ex is not None else ""
        if ex is not None and key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def build_grounded(ctx: BuildContext) -> list[Example]:
    """`grounded` and `no_info` examples (counts: build.grounded, build.no_info)."""
    ctx = Catalog(ctx)
    if not ctx.active_products:
        return []
    seen: set[str] = set()
    grounded = fill(ctx.bcfg.grounded, lambda r: _grounded_one(ctx, r), ctx.rng("grounded"), seen)
    no_info = fill(ctx.bcfg.no_info, lambda r: _no_info_one(ctx, r), ctx.rng("no_info"), seen)
    return grounded + no_info
