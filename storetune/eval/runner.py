"""`storetune eval`: base model vs a fine-tuned version on the held-out test split."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storetune.dataset.build import resolve_dataset
from storetune.eval.generate import generate_replies, load_for_inference
from storetune.eval.graders import Grade, grade
from storetune.models.registry import ModelRef, Registry
from storetune.store import db
from storetune.train.data import read_jsonl
from storetune.train.loop import bf16_supported
from storetune.workspace import Workspace


@dataclass
class Case:
    conversation: list[dict]  # up to and including the last user turn
    gold: str
    task: str
    category: str

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.conversation).encode()).hexdigest()[:20]


def load_cases(data_dir: Path, limit: int | None = None) -> list[Case]:
    rows = read_jsonl(data_dir / "test.jsonl")
    meta = [m for m in read_jsonl(data_dir / "meta.jsonl") if m["split"] == "test"]
    cases = [
        Case(r["messages"][:-1], r["messages"][-1]["content"], m["task"], m["category"])
        for r, m in zip(rows, meta, strict=True)
    ]
    return _stratified(cases, limit) if limit and limit < len(cases) else cases


def _stratified(cases: list[Case], limit: int) -> list[Case]:
    """Round-robin over categories so a small budget still covers every one."""
    by_cat: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_cat[f"{c.task}/{c.category}"].append(c)
    picked: list[Case] = []
    queues = [by_cat[k] for k in sorted(by_cat)]
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked


def summarize(grades: list[Grade], cases: list[Case]) -> dict:
    n = len(grades)
    verdicts = Counter(g.verdict for g in grades)
    tp = sum(g.escalate_gold and g.escalate_pred for g in grades)
    fp = sum(g.escalate_pred and not g.escalate_gold for g in grades)
    fn = sum(g.escalate_gold and not g.escalate_pred for g in grades)
    per_cat: dict[str, Counter] = defaultdict(Counter)
    for g, c in zip(grades, cases, strict=True):
        per_cat[f"{c.task}/{c.category}"][g.verdict] += 1
    return {
        "n": n,
        "correct": verdicts["correct"] / n,
        "partial": verdicts["partial"] / n,
        "wrong": verdicts["wrong"] / n,
        "escalation_accuracy": sum(g.escalate_gold == g.escalate_pred for g in grades) / n,
        "escalation_precision": tp / (tp + fp) if tp + fp else None,
        "escalation_recall": tp / (tp + fn) if tp + fn else None,
        "hallucination": sum(bool(g.unsupported) for g in grades) / n,
        "by_category": {k: dict(v) for k, v in sorted(per_cat.items())},
    }


class _ReplyCache:
    """Replies stored by (model label, prompt hash) so re-runs skip generation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.data[row["key"]] = row["reply"]

    def save(self, new: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for k, v in new.items():
                f.write(json.dumps({"key": k, "reply": v}) + "\n")
        self.data.update(new)


def evaluate(
    ws: Workspace,
    model: str = "support",
    baseline: bool = True,
    limit: int | None = None,
    max_new_tokens: int = 128,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Grade the base model and a registry version on the test split; write a JSON report."""
    cfg = ws.config()
    registry = Registry(ws.models_dir)
    ref = ModelRef.parse(model)
    version_dir = registry.resolve(ref)
    info = registry.info(version_dir)
    data_dir = resolve_dataset(ws, info["dataset_id"])
    cases = load_cases(data_dir, limit)
    titles = _product_titles(ws)
    lm, tokenizer = load_for_inference(Path(info["base_model_path"]), version_dir, bf16_supported())
    label = f"{ref.name}-v{info['version']}"
    runs = [("base", f"base-{info['base_model_fingerprint']}", True)] if baseline else []
    runs.append((label, label, False))
    results = {}
    for name, cache_label, disable in runs:
        start = time.time()
        replies = _replies(ws, lm, tokenizer, cases, cache_label, disable, max_new_tokens, progress)
        grades = [
            grade(r, c.gold, _evidence(c), cfg.escalation.marker, titles)
            for r, c in zip(replies, cases, strict=True)
        ]
        results[name] = {
            "summary": summarize(grades, cases),
            "seconds": round(time.time() - start, 1),
            "examples": _examples(cases, replies, grades),
        }
    report = {
        "model": label,
        "dataset_id": data_dir.name,
        "base_model": info["base_model"],
        "train_seconds": info["train"]["seconds"],
        "results": results,
    }
    ws.reports_dir.mkdir(parents=True, exist_ok=True)
    out = ws.reports_dir / f"eval-{ref.name}-v{info['version']}.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    report["path"] = str(out)
    return report


def _evidence(c: Case) -> str:
    return "\n".join(m["content"] for m in c.conversation)


def _product_titles(ws: Workspace) -> list[str]:
    conn = db.connect(ws.db_path)
    try:
        return [p.title for p in db.load_products(conn)]
    finally:
        conn.close()


def _replies(ws, lm, tokenizer, cases, cache_label, disable_adapter, max_new_tokens, progress):
    import contextlib

    cache = _ReplyCache(ws.reports_dir / "cache" / f"{cache_label}.jsonl")
    keyed = [f"{c.key}:{max_new_tokens}" for c in cases]
    todo = [i for i, k in enumerate(keyed) if k not in cache.data]
    if todo:
        ctx = lm.disable_adapter() if disable_adapter else contextlib.nullcontext()
        with ctx, _bar(progress, f"generate {cache_label}", len(todo)) as advance:
            new = generate_replies(
                lm,
                tokenizer,
                [cases[i].conversation for i in todo],
                max_new_tokens=max_new_tokens,
                on_batch=advance,
            )
        cache.save({keyed[i]: r for i, r in zip(todo, new, strict=True)})
    return [cache.data[k] for k in keyed]


def _examples(cases, replies, grades) -> list[dict]:
    return [
        {
            "task": c.task,
            "category": c.category,
            "prompt": c.conversation[-1]["content"],
            "gold": c.gold,
            "reply": r,
            "verdict": g.verdict,
            "missing": g.missing,
            "unsupported": g.unsupported,
        }
        for c, r, g in zip(cases, replies, grades, strict=True)
    ]


class _bar:
    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self.enabled, self.label, self.total = enabled, label, total

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.p = Progress(
            TextColumn(f"[bold]{self.label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.p.start()
        task = self.p.add_task(self.label, total=self.total)
        return lambda n: self.p.update(task, advance=n)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.p.stop()
