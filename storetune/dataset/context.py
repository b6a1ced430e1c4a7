"""What every builder gets: the store, its catalog and tickets, and prompt renderers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from storetune.config import BuildConfig, StoreConfig
from storetune.dataset.prompt import render_system_prompt
from storetune.retrieval.catalog import KeywordIndex, product_card
from storetune.store.records import Product, Ticket


@dataclass
class BuildContext:
    cfg: StoreConfig
    bcfg: BuildConfig
    products: list[Product]  # every product, including drafts and archived ones
    tickets: list[Ticket]  # resolved tickets, after max_tickets
    index: KeywordIndex = field(init=False)

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

    def rng(self, builder: str) -> random.Random:
        """One independent, seeded stream per builder: adding a builder changes no other."""
        return random.Random(f"{self.bcfg.seed}:{builder}")

    def system_for(self, text: str) -> str:
        """Support system prompt with the catalog cards a message retrieves."""
        return render_system_prompt(self.cfg, self.index.context(text, self.bcfg.context_products))

    def system_with(self, products: list[Product]) -> str:
        """Support system prompt with exactly these products as context (may be empty)."""
        context = "\n".join(product_card(p) for p in products) or None
        return render_system_prompt(self.cfg, context)
