"""Recommendations from behaviour: "customers who bought X also bought Y".

Order lines are matched to catalog products by SKU (title when a line has none), and
two products count as bought together once per order holding both (cancelled orders
left out). A suggestion must be active, published and have a variant in stock: the signal
never revives a product the store stopped selling or can't ship. A verified
customer's own past purchases seed the same count, so a reply can say "often bought
with the tent you ordered". Only product handles leave this module, never an order.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Sequence

from storetune.store import db
from storetune.store import orders as order_store
from storetune.store.records import Product


def _handle_of(conn: sqlite3.Connection) -> dict[str, str]:
    """SKU (and "title:<lower title>") -> product handle."""
    out: dict[str, str] = {}
    for handle, sku in conn.execute("SELECT product_handle, sku FROM variants WHERE sku != ''"):
        out.setdefault(sku, handle)
    for handle, title in conn.execute("SELECT handle, title FROM products"):
        out.setdefault(f"title:{title.lower()}", handle)
    return out


class AlsoBought:
    """Co-purchase counts between catalog products, read once from store.db."""

    def __init__(self, pairs: dict[str, Counter[str]]) -> None:
        self.pairs = pairs

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> AlsoBought:
        handle_of = _handle_of(conn)
        pairs: dict[str, Counter[str]] = defaultdict(Counter)
        for keys in order_store.purchases(conn).values():
            handles = sorted({handle_of[k] for k in keys if k in handle_of})
            for a in handles:
                for b in handles:
                    if a != b:
                        pairs[a][b] += 1
        return cls(dict(pairs))

    def ranked(self, handles: Sequence[str], exclude: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(suggested handle, the handle it is often bought with), most co-purchased first."""
        skip = set(handles) | set(exclude)
        score: Counter[str] = Counter()
        because: dict[str, str] = {}
        for h in handles:
            for other, n in self.pairs.get(h, Counter()).most_common():
                if other not in skip:
                    score[other] += n
                    because.setdefault(other, h)
        return [(h, because[h]) for h, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]

    def suggest(
        self,
        conn: sqlite3.Connection,
        handles: Sequence[str],
        k: int = 1,
        exclude: Sequence[str] = (),
    ) -> list[tuple[Product, Product]]:
        """Up to k (suggested product, product it goes with), both current rows; only
        active products with a variant in stock."""
        ranked = self.ranked(handles, exclude)[: 4 * k + 4]
        wanted = list(dict.fromkeys([h for pair in ranked for h in pair]))
        current = {p.handle: p for p in db.load_products(conn, True, handles=wanted)}
        out = []
        for h, base in ranked:
            p, b = current.get(h), current.get(base)
            if p is not None and b is not None and any(v.in_stock for v in p.variants):
                out.append((p, b))
            if len(out) == k:
                break
        return out


def bought_handles(conn: sqlite3.Connection, email: str) -> list[str]:
    """Catalog handles a customer bought, newest first (for a verified customer only)."""
    handle_of = _handle_of(conn)
    keys = order_store.bought_by(conn, email)
    return list(dict.fromkeys(handle_of[k] for k in keys if k in handle_of))
