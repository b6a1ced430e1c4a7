"""Deterministic train/val/test split, stratified by task+category, grouped by source
and by phrasing family.

Examples sharing a group (one ticket's turns, or tickets whose opening message is
the same after normalisation) always land in the same split, so a duplicate never
sits on both sides of the train/test line.

An example with a phrasing family (the template its customer wording came from) is
grouped by its family, not by its source: the family decides, so a wording held out
for test never appears in training. A ticket's examples share the ticket's family.
Near duplicates still merge groups afterwards (dedup.group_duplicates), which can tie
two families together; both then go to the same side. Examples without a family
(real stores' tickets) keep their source groups.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict

from storetune.dataset.example import Example
from storetune.store.records import PHRASING_TAG

SPLITS = ("train", "val", "test")
# A category needs this many family groups before one is held out for test / val.
HOLD_OUT_TEST_FROM = 3
HOLD_OUT_VAL_FROM = 4


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def merge_duplicate_groups(examples: list[Example]) -> None:
    """Give examples with the same normalised first user message one group."""
    owner: dict[str, str] = {}
    for ex in examples:
        first = next(m["content"] for m in ex.messages if m["role"] == "user")
        key = ex.task + "|" + _norm(first)
        ex.group = owner.setdefault(key, ex.group)


def group_by_family(examples: list[Example]) -> None:
    """Regroup examples that have a phrasing family by that family (call before
    duplicate grouping, so duplicates can still tie families together)."""
    for ex in examples:
        if ex.family:
            ex.group = PHRASING_TAG + ex.family


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    examples: list[Example], shares: tuple[float, float, float], seed: int
) -> list[str]:
    """Split groups so every task, and every category within it, follows `shares`.

    Groups are walked task by task, category by category, in a seeded order; each
    group goes to the split furthest below its share of the task so far (counted in
    examples). A small category thus still feeds val/test when its task is large
    enough, instead of landing wholly in train. Groups holding phrasing families are
    pinned first (see `_pinned`): every category with enough families holds whole
    families out of training.
    """
    size: Counter[str] = Counter(ex.group for ex in examples)
    families: dict[str, set[str]] = defaultdict(set)
    # dicts as ordered sets: membership tests stay O(1) on 100k-example sets
    strata: dict[str, dict[str, dict[str, None]]] = defaultdict(lambda: defaultdict(dict))
    for ex in examples:
        strata[ex.task][ex.category].setdefault(ex.group, None)
        if ex.family:
            families[ex.group].add(ex.family)
    group_split: dict[str, str] = {}
    for task in sorted(strata):
        filled = dict.fromkeys(SPLITS, 0)
        for category in sorted(strata[task]):
            # a group seen in an earlier stratum keeps its split
            order = [
                g
                for g in sorted(strata[task][category], key=lambda g: _rank(seed, g))
                if g not in group_split
            ]
            pinned = _pinned(order, families, size, shares)
            for g in [*pinned, *(g for g in order if g not in pinned)]:
                split = pinned.get(g) or _most_behind(filled, shares, size[g])
                group_split[g] = split
                filled[split] += size[g]
    return [group_split[ex.group] for ex in examples]


def _pool(family: str) -> str:
    """A family's template pool: its id up to the last dot ('returns.late.2' ->
    'returns.late'); ids without a dot form one pool per category."""
    return family.rpartition(".")[0]


def _pinned(
    order: list[str],
    families: dict[str, set[str]],
    size: Counter[str],
    shares: tuple[float, ...],
) -> dict[str, str]:
    """Family groups of one category whose split is fixed before balancing.

    Each template pool with two or more family groups keeps its first one in train,
    so a held-out wording tests phrasing rather than a case training never showed.
    Then, with enough family groups, one is held out for test and one for val: the
    first in seeded order that fits the split's share of the category, else the
    smallest.
    """
    with_family = [g for g in order if families.get(g)]
    pools_of = {g: {_pool(f) for f in families[g]} for g in with_family}
    groups_per_pool = Counter(p for g in with_family for p in pools_of[g])
    pinned: dict[str, str] = {}
    anchored: set[str] = set()
    for g in with_family:
        if any(groups_per_pool[p] >= 2 and p not in anchored for p in pools_of[g]):
            pinned[g] = "train"
            anchored |= pools_of[g]
    free = [g for g in with_family if g not in pinned]
    total = sum(size[g] for g in order)
    for split, needed in (("test", HOLD_OUT_TEST_FROM), ("val", HOLD_OUT_VAL_FROM)):
        share = shares[SPLITS.index(split)]
        if share <= 0 or len(with_family) < needed or not free:
            continue
        target = max(1.0, share * total)
        g = next((g for g in free if size[g] <= target), min(free, key=lambda g: size[g]))
        pinned[g] = split
        free.remove(g)
    return pinned


def _most_behind(filled: dict[str, int], shares: tuple[float, ...], adding: int) -> str:
    total = sum(filled.values()) + adding
    deficit = {s: share * total - filled[s] for s, share in zip(SPLITS, shares, strict=True)}
    return max(SPLITS, key=lambda s: (deficit[s], -SPLITS.index(s)))


def phrasing_counts(examples: list[Example], splits: list[str]) -> dict[str, int]:
    """For the report: test examples whose phrasing family training never saw, those
    whose family it did see, those without a family, and the held-out families."""
    pairs = list(zip(examples, splits, strict=True))
    trained = {ex.family for ex, s in pairs if s == "train" and ex.family}
    test = [ex for ex, s in pairs if s == "test"]
    return {
        "test_unseen_phrasing": sum(bool(ex.family) and ex.family not in trained for ex in test),
        "test_seen_phrasing": sum(ex.family in trained for ex in test if ex.family),
        "test_without_phrasing_family": sum(not ex.family for ex in test),
        "phrasing_families_held_out": len({ex.family for ex in test if ex.family} - trained),
    }
