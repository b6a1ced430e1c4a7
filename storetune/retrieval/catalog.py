"""A keyword lookup over product titles, giving the cards of the products a message names.

Facts come from retrieval, style from fine-tuning: the same card
(`storetune.chat.card.ProductCard`) is put in the system prompt when building
training data, evaluating and serving, so the model learns to read prices and stock
from context rather than memorise them. The
hybrid (keyword + embedding) index of the serving issue replaces `KeywordIndex`.
"""

from __future__ import annotations

import re
from collections import defaultdict

from storetune.chat.card import ProductCard
from storetune.store.records import Product

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "and", "for", "with", "of", "in", "to", "my", "is", "it", "on"}


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

    def context(self, text: str, k: int = 2) -> list[ProductCard] | None:
        """The cards of the products a message names, for `render_system_prompt`."""
        hits = self.search(text, k)
        return [ProductCard.from_product(p) for p in hits] if hits else None
