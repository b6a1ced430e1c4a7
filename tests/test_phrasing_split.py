"""Held-out phrasing: the split keeps whole phrasing families out of training, and the
demo's test split holds enough support-task examples worded as training never saw."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from storetune.config.train import SUPPORT_TASKS
from storetune.dataset.build import build_dataset
from storetune.dataset.builders.phrasing import phrasing_family
from storetune.dataset.dedup import group_duplicates
from storetune.dataset.example import Example
from storetune.dataset.split import assign_splits, group_by_family, phrasing_counts
from storetune.dataset.validate import load_model_tokenizer
from storetune.demo.pipeline import DemoBudget, apply_budget
from storetune.demo.store_gen import generate_demo_store
from storetune.eval.cases import load_test_cases, stratified
from storetune.ingest import ingest_workspace
from storetune.store.records import family_from_tags
from storetune.workspace import Workspace


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    # the tiny test tokenizer makes examples ~3x longer than a real model's: room
    return replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _families_by_split(meta: list[dict], task: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m in meta:
        if m["task"] == task and m["family"]:
            out[m["split"]].add(m["family"])
    return out


# --- the split, on hand-made examples ---------------------------------------------------------


def _worded(category: str, family: str, n: int, start: int = 0) -> list[Example]:
    return [
        Example(
            [{"role": "user", "content": f"{family} message {start + i}"}],
            "support",
            category,
            "b",
            group=f"ticket:{family}:{start + i}",
            family=family,
        )
        for i in range(n)
    ]


def _stratum_set() -> list[Example]:
    examples: list[Example] = []
    for i in range(6):
        examples += _worded("returns", f"returns.normal.{i}", 3)
    for i in range(2):
        examples += _worded("returns", f"returns.late.{i}", 2)
    for i in range(3):
        examples += _worded("loyalty", f"loyalty.ask.{i}", 2)
    for i in range(2):
        examples += _worded("rare", f"rare.ask.{i}", 2)
    return examples


@pytest.mark.parametrize("seed", range(8))
def test_families_stay_whole_and_every_category_holds_some_out(seed):
    examples = _stratum_set()
    group_by_family(examples)
    splits = assign_splits(examples, (0.8, 0.1, 0.1), seed)
    split_of: dict[str, str] = {}
    for ex, s in zip(examples, splits, strict=True):
        assert split_of.setdefault(ex.family, s) == s, ex.family
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for family, s in split_of.items():
        by_category[family.split(".")[0]][s] += 1
    # 8 families: one held out for test and one for val
    assert by_category["returns"]["test"] >= 1 and by_category["returns"]["val"] >= 1
    # 3 families: one for test; 2 families: none held out, and never all of them
    assert by_category["loyalty"]["test"] >= 1 and by_category["loyalty"]["train"] >= 1
    assert by_category["rare"]["train"] >= 1
    # every template pool with two or more families keeps one in training
    pools = {f.rpartition(".")[0] for f in split_of}
    for pool in pools:
        assert any(f.startswith(pool + ".") and s == "train" for f, s in split_of.items()), pool


def test_a_family_decides_over_the_source_group_and_duplicates_tie_families():
    # two tickets of one family, and a near-copy whose first message repeats another
    # family's: all of one family together, and the duplicate with its twin
    a = _worded("returns", "returns.normal.0", 2)
    b = _worded("returns", "returns.normal.1", 1)
    twin = Example(
        [{"role": "user", "content": a[0].messages[0]["content"]}],
        "support",
        "returns",
        "b",
        group="ticket:other",
        family="returns.late.0",
    )
    examples = a + b + [twin] + _worded("returns", "returns.late.1", 10)
    group_by_family(examples)
    group_duplicates(examples)  # as the build does: same first message, near copies
    for seed in range(8):
        splits = assign_splits(examples, (0.5, 0.2, 0.3), seed)
        assert splits[0] == splits[1] == splits[3]


def test_no_test_share_holds_nothing_out_for_test():
    examples = _stratum_set()
    group_by_family(examples)
    assert "test" not in assign_splits(examples, (0.9, 0.1, 0.0), seed=0)


def test_split_with_families_is_deterministic_and_seeded():
    examples = _stratum_set()
    group_by_family(examples)
    a = assign_splits(examples, (0.6, 0.1, 0.3), seed=0)
    assert a == assign_splits(examples, (0.6, 0.1, 0.3), seed=0)
    assert any(assign_splits(examples, (0.6, 0.1, 0.3), seed=s) != a for s in range(1, 4))


def test_phrasing_counts_for_the_report():
    def ex(family: str) -> Example:
        return Example([{"role": "user", "content": "q"}], "support", "c", "b", family=family)

    examples = [ex("a"), ex("a"), ex("b"), ex("b"), ex(""), ex("c")]
    splits = ["train", "test", "test", "test", "test", "val"]
    assert phrasing_counts(examples, splits) == {
        "test_unseen_phrasing": 2,
        "test_seen_phrasing": 1,
        "test_without_phrasing_family": 1,
        "phrasing_families_held_out": 1,
    }


def test_same_wording_in_two_builders_is_one_family():
    assert phrasing_family("How much is the {t}?") == phrasing_family("how much is the {f}")
    assert phrasing_family("How much is the {t}?") != phrasing_family("{t} - how much?")
    assert family_from_tags(["returns", "phrasing:returns.late.1", "vip"]) == "returns.late.1"
    assert family_from_tags(["returns"]) == ""


# --- a built dataset ---------------------------------------------------------------------------


def _build(root: Path, tiny) -> tuple[Workspace, object]:
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    return ws, build_dataset(ws, model=tiny, progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("phrasing")
    generate_demo_store(root, seed=2, n_products=40, n_tickets=300)
    return _build(root, tiny)


def test_no_held_out_family_appears_in_training_in_any_task(small):
    _, report = small
    meta = _read(report.path / "meta.jsonl")
    support_style = [m for m in meta if m["task"] in SUPPORT_TASKS]
    assert support_style and all(m["family"] for m in support_style)
    for task in SUPPORT_TASKS:
        fam = _families_by_split(meta, task)
        assert not (fam["test"] | fam["val"]) & fam["train"], task
    trained = {m["family"] for m in meta if m["split"] == "train" and m["family"]}
    test = [m for m in meta if m["split"] == "test"]
    assert all(m["family"] not in trained for m in test)
    assert report.notes["test_unseen_phrasing"] == sum(bool(m["family"]) for m in test) > 0
    assert report.notes["test_seen_phrasing"] == 0
    assert report.notes["test_without_phrasing_family"] == sum(not m["family"] for m in test)
    assert "test unseen phrasing" in (report.path / "report.md").read_text()
    assert json.loads((report.path / "report.json").read_text())["notes"]["test_unseen_phrasing"]


def test_ticket_examples_carry_their_tickets_phrasing_family(small):
    ws, report = small
    meta = _read(report.path / "meta.jsonl")
    tickets = [m for m in meta if m["builder"] in ("support", "escalation")]
    assert tickets
    # the family names the ticket's intent pool: "<intent>.<pool>.<index>"
    for m in tickets:
        if m["builder"] == "support":
            assert m["family"].split(".")[0] == m["category"], m
        assert m["family"].count(".") == 2


def test_demo_budget_tests_150_support_examples_in_unseen_wordings(tmp_path, tiny):
    budget = DemoBudget()
    start = time.time()
    generate_demo_store(tmp_path, seed=0, n_products=budget.products, n_tickets=budget.tickets)
    ws = Workspace(tmp_path)
    apply_budget(ws, budget, None)
    _, report = _build(tmp_path, tiny)
    took = time.time() - start
    meta = _read(report.path / "meta.jsonl")
    counts = Counter((m["split"]) for m in meta if m["task"] in SUPPORT_TASKS)
    trained = {m["family"] for m in meta if m["split"] == "train" and m["family"]}
    test = [m for m in meta if m["split"] == "test" and m["task"] in SUPPORT_TASKS]
    assert len(test) >= 150, counts
    assert all(m["family"] and m["family"] not in trained for m in test)
    # the training set stays the size the demo's training time was set for (~300)
    assert 270 <= counts["train"] <= 330, counts
    # the demo's eval grades every one of them
    cases = stratified(load_test_cases(report.path, list(SUPPORT_TASKS)), budget.eval_limit)
    assert len(cases) == len(test)
    assert took < 120, f"building the demo-size dataset took {took:.0f} s"
