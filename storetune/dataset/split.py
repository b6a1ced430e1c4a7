"""Deterministic train/val/test split, stratified by task+category, grouped by source.

Examples sharing a group (one ticket's turns, or tickets whose opening message is
the same after normalisation) always land in the same split, so a duplicate never
sits on both sides of the train/test line.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from storetune.dataset.example import Example

SPLITS = ("train", "val", "test")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def merge_duplicate_groups(examples: list[Example]) -> None:
    """Give examples with the same normalised first user message one group."""
    owner: dict[str, str] = {}
    for ex in examples:
        first = next(m["content"] for m in ex.messages if m["role"] == "user")
        key = ex.task + "|" + _norm(first)
        ex.group = owner.setdefault(key, ex.group)


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    examples: list[Example], shares: tuple[float, float, float], seed: int
) -> list[str]:
    # dicts as ordered sets: membership tests stay O(1) on 100k-example sets
    strata: dict[str, dict[str, None]] = defaultdict(dict)
    for ex in examples:
        strata[f"{ex.task}/{ex.category}"].setdefault(ex.group, None)
    group_split: dict[str, str] = {}
    for key in sorted(strata):
        groups = sorted(strata[key], key=lambda g: _rank(seed, g))
        n = len(groups)
        n_test = round(n * shares[2]) if n >= 3 else 0
        n_val = round(n * shares[1]) if n >= 3 else 0
        for i, g in enumerate(groups):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            group_split.setdefault(g, split)  # a group seen in an earlier stratum keeps its split
    return [group_split[ex.group] for ex in examples]
