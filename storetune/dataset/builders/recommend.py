"""Recommendations under constraints (occasion, budget, size in stock)."""

from __future__ import annotations

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example


def build_recommend(ctx: BuildContext) -> list[Example]:
    return []  # filled in by the recommendation builder work (issue 4)
