"""The build's guarantee that no real order reaches a dataset.

Order-status examples are built from fictional cards, and ticket text is scrubbed at
ingest, but an agent-approved reply to a verified customer (feedback) quotes a real
order, and a scrubber can miss a number. So before anything is written, every
example is searched for the store's real order numbers, order emails and tracking
numbers (store.db's orders, the same patterns as the guard: storetune.facts); an
example holding one is dropped and counted, never written.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from storetune.dataset.example import Example
from storetune.facts import find_entities
from storetune.store import db
from storetune.store import orders as order_store

KINDS = ("email", "tracking_number", "order_number")


def real_order_values(db_path: Path) -> dict[str, set[str]]:
    """The store's order values as storetune.facts normalizes them (no '#', upper-case
    ids, lower-case emails); empty when store.db has no orders."""
    conn = db.connect(db_path)
    try:
        raw = order_store.order_values(conn)
    finally:
        conn.close()
    return {
        "order_number": {n.lstrip("#").upper() for n in raw["order_number"]},
        "email": raw["email"],
        "tracking_number": {t.replace(" ", "").upper() for t in raw["tracking_number"]},
    }


def holds_real_values(ex: Example, real: dict[str, set[str]]) -> set[str]:
    """The kinds of real order value an example's text holds (system prompt included)."""
    found: set[str] = set()
    for m in ex.messages:
        text = m.get("content") or ""
        for e in find_entities(text, KINDS):
            if e.value in real.get(e.kind, ()):
                found.add(e.kind)
    return found


def drop_real_order_values(
    examples: list[Example], real: dict[str, set[str]]
) -> tuple[list[Example], dict[str, int]]:
    """Examples without any real order value, and how many were dropped per kind."""
    if not any(real.values()):
        return examples, {}
    kept, dropped = [], Counter()
    for ex in examples:
        kinds = holds_real_values(ex, real)
        if kinds:
            dropped.update(kinds)
            dropped["examples"] += 1
        else:
            kept.append(ex)
    return kept, dict(dropped)
