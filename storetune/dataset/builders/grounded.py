"""Retrieval-aware answers: grounded in the context given, or 'I don't have that'."""

from __future__ import annotations

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example


def build_grounded(ctx: BuildContext) -> list[Example]:
    return []  # filled in by the retrieval-aware builder work (issue 4)
