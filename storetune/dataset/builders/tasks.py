"""Catalog tasks: classification, query rewriting, review extraction, descriptions."""

from __future__ import annotations

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example


def build_tasks(ctx: BuildContext) -> list[Example]:
    return []  # filled in by the catalog-task builder work (issue 4)
