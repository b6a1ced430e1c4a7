"""Safety and edge cases: fake products, manipulation, off-topic, injection, haggling."""

from __future__ import annotations

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example


def build_safety(ctx: BuildContext, base: int) -> list[Example]:
    """`base` is the number of non-safety examples; the mix is a share of it."""
    return []  # filled in by the safety builder work (issue 4)
