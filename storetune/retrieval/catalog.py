"""Catalog facts as compact text cards, and a keyword lookup over product titles.

Facts come from retrieval, style from fine-tuning: the same card is put in the
system prompt when building training data, evaluating and serving, so the model
learns to read prices and stock from context rather than memorise them. The
hybrid (keyword + embedding) index of the serving issue replaces `KeywordIndex`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

from storetune.store.records import Product, Variant

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "and", "for", "with", "of", "in", "to", "my", "is", "it", "on"}


def money(value: Decimal | float) -> str:
    return f"${Decimal(value):,.2f}"


def _stock(v: Variant) -> str:
    if v.in_stock:
        return "in stock"
    return (
        "out of stock, backorder available" if v.inventory_policy == "continue" else "out of stock"
    )


def price_line(p: Product) -> str:
    prices = sorted({v.price for v in p.variants})
    if not prices:
        return "price: not listed"
    sale = [v for v in p.variants if v.on_sale]
    text = money(prices[0]) if len(prices) == 1 else f"{money(prices[0])}-{money(prices[-1])}"
    if sale:
        text += f" (on sale, was {money(max(v.compare_at_price for v in sale))}; final sale)"
    return f"price: {text}"


def product_card(p: Product, max_variants: int = 12) -> str:
    """Facts a reply may quote about one product, one line each."""
    lines = [f"* {p.title} ({p.product_type or 'product'})", f"  {price_line(p)}"]
    variants = [v for v in p.variants if v.label != "Default"][:max_variants]
    if variants:
        lines.append("  variants: " + "; ".join(f"{v.label}: {_stock(v)}" for v in variants))
    elif p.variants:
        lines.append(f"  stock: {_stock(p.variants[0])}")
    facts = [ln.strip("- ").strip() for ln in p.description.splitlines() if ":" in ln]
    if facts:
        lines.append("  " + "; ".join(facts[:6]))
    return "\n".join(lines)


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


class KeywordIndex:
    """Find active products whose title words appear in a message."""

    def __init__(self, products: list[Product]) -> None:
        self.products = [p for p in products if p.active]
        self._by_word: dict[str, set[int]] = defaultdict(set)
        for i, p in enumerate(self.products):
            for w in set(words(p.title)):
                self._by_word[w].add(i)

    def search(self, text: str, k: int = 2) -> list[Product]:
        found = set(words(text))
        scores: dict[int, float] = defaultdict(float)
        for w in sorted(found):  # float sums in a fixed order: same cards in every process
            hits = self._by_word.get(w, ())
            for i in hits:
                scores[i] += 1.0 / len(hits)  # rare title words count more
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        exact = [i for i in ranked if self.products[i].title.lower() in text.lower()]
        chosen = exact + [i for i in ranked if i not in exact and scores[i] >= 1.0]
        return [self.products[i] for i in chosen[:k]]

    def context(self, text: str, k: int = 2) -> str | None:
        hits = self.search(text, k)
        return "\n".join(product_card(p) for p in hits) if hits else None
