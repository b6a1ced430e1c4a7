"""What every builder gets: the store, its catalog and tickets, and prompt renderers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from storetune.chat.card import ProductCard
from storetune.chat.money import format_money, store_currency
from storetune.chat.prompt import SystemPrompt, render_system_prompt
from storetune.config import BuildConfig, StoreConfig
from storetune.retrieval.catalog import KeywordIndex
from storetune.store.knowledge import Passage
from storetune.store.records import Product, Ticket


@dataclass
class BuildContext:
    cfg: StoreConfig
    bcfg: BuildConfig
    products: list[Product]  # every product, including drafts and archived ones
    tickets: list[Ticket]  # resolved tickets, after max_tickets
    passages: list[Passage] = field(default_factory=list)  # help-center chunks
    index: KeywordIndex = field(init=False)
    _cards: dict[str, ProductCard] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.index = KeywordIndex(self.products)

    @property
    def active_products(self) -> list[Product]:
        return [
            p for p in self.products if p.active and p.variants and "placeholder" not in p.flags
        ]

    @property
    def marker(self) -> str:
        return self.cfg.escalation.marker

    @property
    def currency(self) -> str:
        return store_currency(self.cfg)

    def money(self, value: Decimal | float) -> str:
        """An amount as the store's prompt writes it (store.yaml shipping.currency)."""
        return format_money(value, self.currency)

    def rng(self, builder: str) -> random.Random:
        """One independent, seeded stream per builder: adding a builder changes no other."""
        return random.Random(f"{self.bcfg.seed}:{builder}")

    def card(self, p: Product) -> ProductCard:
        """The product's card, built once per build (handles are unique in a store)."""
        card = self._cards.get(p.handle)
        if card is None:
            card = self._cards[p.handle] = ProductCard.from_product(p)
        return card

    def system_for(self, text: str) -> SystemPrompt:
        """Support system prompt with the catalog cards a message retrieves."""
        return self.system_with(self.index.search(text, self.bcfg.context_products))

    def system_with(self, products: list[Product]) -> SystemPrompt:
        """Support system prompt with exactly these products as context (may be empty)."""
        return render_system_prompt(self.cfg, [self.card(p) for p in products])
