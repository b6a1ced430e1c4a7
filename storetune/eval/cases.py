"""Which examples an evaluation runs: the held-out test split of the tasks a version was
trained on, plus any extra eval files, optionally cut to a stratified sample."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from storetune.chat.card import cards_from_dicts
from storetune.chat.prompt import prompt_cards
from storetune.config.train import ALL_TASKS, SUPPORT_TASKS
from storetune.errors import StoretuneError
from storetune.eval.records import Case
from storetune.io import read_jsonl


def trained_tasks(version_dir: Path) -> list[str]:
    """The `tasks` of the version's train_config.json; the support tasks when it has none."""
    path = version_dir / "train_config.json"
    tasks = None
    if path.exists():
        tasks = json.loads(path.read_text(encoding="utf-8")).get("tasks")
    if not tasks:
        return list(SUPPORT_TASKS)
    return list(ALL_TASKS) if tasks == ["all"] else list(tasks)


def load_test_cases(data_dir: Path, tasks: list[str], split: str = "test") -> list[Case]:
    """The examples of one dataset split (the test split; calibration reads val) whose
    task is in `tasks`, as cases: the last assistant turn is the gold reply."""
    rows = read_jsonl(data_dir / f"{split}.jsonl")
    meta = [m for m in read_jsonl(data_dir / "meta.jsonl") if m["split"] == split]
    if len(rows) != len(meta):
        raise StoretuneError(
            f"{data_dir}: {split}.jsonl has {len(rows)} rows but meta.jsonl lists {len(meta)}",
            hint="rebuild the dataset with 'storetune build'",
        )
    return [
        Case(
            r["messages"][:-1],
            r["messages"][-1]["content"],
            m["task"],
            m["category"],
            split,
            cards_from_dicts(m.get("cards")),
        )
        for r, m in zip(rows, meta, strict=True)
        if m["task"] in tasks and r["messages"][-1]["role"] == "assistant"
    ]


def load_extra(path: Path, system_for: Callable[[str], str]) -> list[Case]:
    """An extra eval file: chat JSONL, each line's messages ending with the reference reply,
    optional "task" (default support) and "category" (default extra). Lines without a
    system message get the store's system prompt with the catalog cards the first
    customer message retrieves, as the training data did."""
    if not path.exists():
        raise StoretuneError(f"{path}: extra eval file not found")
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        cases.append(_extra_case(line, path, n, system_for))
    if not cases:
        raise StoretuneError(f"{path}: no examples in the extra eval file")
    return cases


def _extra_case(line: str, path: Path, n: int, system_for: Callable[[str], str]) -> Case:
    where = f"{path} line {n}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise StoretuneError(f"{where}: not valid JSON ({e.msg})") from None
    msgs = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(msgs, list) or len(msgs) < 2:
        raise StoretuneError(f"{where}: field 'messages' must list the turns, reference reply last")
    if any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in msgs):
        raise StoretuneError(f"{where}: every message needs 'role' and 'content'")
    if msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
        raise StoretuneError(
            f"{where}: the last message must be the assistant's reference reply, after a user turn"
        )
    task = row.get("task", "support")
    if task not in ALL_TASKS:
        raise StoretuneError(
            f"{where}: field 'task' is '{task}', not one of {', '.join(ALL_TASKS)}"
        )
    turns, cards = msgs[:-1], None
    if turns[0]["role"] != "system":
        first_user = next(m["content"] for m in turns if m["role"] == "user")
        system = system_for(first_user)
        cards = prompt_cards(system)  # the cards it was rendered from, when it was
        turns = [{"role": "system", "content": str(system)}, *turns]
    category = row.get("category", "extra")
    return Case(turns, msgs[-1]["content"], task, category, path.name, cards)


def stratified(cases: list[Case], limit: int | None) -> list[Case]:
    """Round-robin over task/category so a small budget still covers every one."""
    if not limit or limit >= len(cases):
        return cases
    by_cat: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_cat[f"{c.task}/{c.category}"].append(c)
    queues = [list(by_cat[k]) for k in sorted(by_cat)]
    picked: list[Case] = []
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked
