"""Deterministic train/val/test split, stratified by task+category, grouped by source.

Examples sharing a group (one ticket's turns, or tickets whose opening message is
the same after normalisation) always land in the same split, so a duplicate never
sits on both sides of the train/test line.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict

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
    """Split groups so every task, and every category within it, follows `shares`.

    Groups are walked task by task, category by category, in a seeded order; each
    group goes to the split furthest below its share of the task so far (counted in
    examples). A small category thus still feeds val/test when its task is large
    enough, instead of landing wholly in train.
    """
    size: Counter[str] = Counter(ex.group for ex in examples)
    # dicts as ordered sets: membership tests stay O(1) on 100k-example sets
    strata: dict[str, dict[str, dict[str, None]]] = defaultdict(lambda: defaultdict(dict))
    for ex in examples:
        strata[ex.task][ex.category].setdefault(ex.group, None)
    group_split: dict[str, str] = {}
    for task in sorted(strata):
        filled = dict.fromkeys(SPLITS, 0)
        for category in sorted(strata[task]):
            for g in sorted(strata[task][category], key=lambda g: _rank(seed, g)):
                if g in group_split:  # a group seen in an earlier stratum keeps its split
                    continue
                split = _most_behind(filled, shares, size[g])
                group_split[g] = split
                filled[split] += size[g]
    return [group_split[ex.group] for ex in examples]


def _most_behind(filled: dict[str, int], shares: tuple[float, ...], adding: int) -> str:
    total = sum(filled.values()) + adding
    deficit = {s: share * total - filled[s] for s, share in zip(SPLITS, shares, strict=True)}
    return max(SPLITS, key=lambda s: (deficit[s], -SPLITS.index(s)))
