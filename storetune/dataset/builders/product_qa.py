"""Product questions answered from the catalog card in the system prompt.

Phrasing varies widely on purpose (short, long, typos, indirect): a small model
memorises wording, so every fact is asked for in many ways.
"""

from __future__ import annotations

import random

from storetune.chat.card import stock_status
from storetune.chat.prompt import prompt_cards
from storetune.dataset.builders.phrasing import phrasing_family
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Product

_PRICE_Q = [
    "How much is the {t}?",
    "price of {t}?",
    "what does the {t} cost",
    "Hi, how much for the {t}? thanks",
    "is the {t} on sale right now? how much is it",
    "hw much is {t}",
    "I'm looking at the {t} - what's the price?",
]
_STOCK_Q = [
    "Is the {t} in {v} in stock?",
    "do you have {t} {v}?",
    "{t} in {v} available?",
    "Any {v} left of the {t}?",
    "I need the {t} in {v}, can I order it now?",
    "{t} {v} - in stock??",
]
_FACT_Q = {
    "material": [
        "What is the {t} made of?",
        "{t} material?",
        "what fabric is the {t}",
        "Tell me about the materials in the {t}.",
    ],
    "care": [
        "How do I wash the {t}?",
        "care instructions for {t}?",
        "can the {t} go in the washing machine",
        "how to clean {t}",
    ],
    "fit": [
        "How does the {t} fit?",
        "does the {t} run small?",
        "{t} sizing - true to size?",
        "Should I size up in the {t}?",
    ],
    "weight": ["How much does the {t} weigh?", "{t} weight?", "is the {t} heavy?"],
}


def _fact(p: Product, key: str) -> str | None:
    for line in p.description.splitlines():
        name, _, value = line.strip("- ").partition(":")
        if value and name.strip().lower().startswith(key):
            return value.strip()
    return None


def _price_answer(p: Product, money) -> str:
    prices = sorted({v.price for v in p.variants})
    text = (
        f"The {p.title} is {money(prices[0])}"
        if len(prices) == 1
        else (f"The {p.title} is {money(prices[0])} to {money(prices[-1])} depending on the option")
    )
    sale = [v for v in p.variants if v.on_sale]
    if sale:
        was = max(v.compare_at_price for v in sale)
        text += f", on sale from {money(was)}. Please note sale items are final sale"
    return text + "."


def _stock_answer(p: Product, label: str, stock: str) -> str:
    if stock == "in stock":
        return f"Yes, the {p.title} in {label} is in stock and ready to ship."
    if "backorder" in stock:
        return f"The {p.title} in {label} is out of stock right now, but you can backorder it and we'll ship it as soon as it's back."
    return f"Sorry, the {p.title} in {label} is out of stock at the moment."


def _one(p: Product, rng: random.Random, money) -> tuple[str, str, str, str] | None:
    """(kind, question, answer, the question template) for one product."""
    kind = rng.choice(["price", "price", "stock", "stock", "material", "care", "fit", "weight"])
    if kind == "price" and p.variants:
        template = rng.choice(_PRICE_Q)
        return kind, template.format(t=p.title), _price_answer(p, money), template
    if kind == "stock":
        options = [v for v in p.variants if v.label != "Default"]
        if not options:
            return None
        v = rng.choice(options)
        template = rng.choice(_STOCK_Q)
        return (
            kind,
            template.format(t=p.title, v=v.label),
            _stock_answer(p, v.label, stock_status(v)),
            template,
        )
    fact = _fact(p, kind) if kind in _FACT_Q else None
    if not fact:
        return None
    template = rng.choice(_FACT_Q[kind])
    return (
        kind,
        template.format(t=p.title),
        f"{kind.capitalize()} of the {p.title}: {fact}",
        template,
    )


def build_product_qa(ctx: BuildContext) -> list[Example]:
    """`product_qa` examples (count: build.product_qa), each with the product's card."""
    n = ctx.bcfg.product_qa
    rng = random.Random(ctx.bcfg.seed)
    active = ctx.active_products
    out: list[Example] = []
    attempts = 0
    while active and len(out) < n and attempts < n * 10:
        attempts += 1
        p = rng.choice(active)
        qa = _one(p, rng, ctx.money)
        if qa is None:
            continue
        kind, question, answer, template = qa
        if rng.random() < 0.3:
            question = question.lower().rstrip("?") + rng.choice(["", "?", " pls", " thx"])
        system = ctx.system_with([p])
        out.append(
            Example(
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ],
                task="product_qa",
                category=kind,
                builder="product_qa",
                source_ids=[f"product:{p.handle}"],
                group=f"product:{p.handle}",  # all questions on a product share a split
                family=phrasing_family(template),
                cards=prompt_cards(system),
            )
        )
    return out
