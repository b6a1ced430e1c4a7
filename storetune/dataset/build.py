"""store.db -> datasets/<id>/ {train,val,test}.jsonl + meta.jsonl + report."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from storetune.dataset.builders.escalation import build_escalation, build_lookalikes
from storetune.dataset.builders.grounded import build_grounded
from storetune.dataset.builders.product_qa import build_product_qa
from storetune.dataset.builders.recommend import build_recommend
from storetune.dataset.builders.safety import build_safety
from storetune.dataset.builders.support import PolicyCorrector, build_support
from storetune.dataset.builders.tasks import build_tasks
from storetune.dataset.config import BuildConfig
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.dataset.paraphrase import paraphrase_examples
from storetune.dataset.prompt import render_system_prompt
from storetune.dataset.split import SPLITS, assign_splits, merge_duplicate_groups
from storetune.errors import StoretuneError
from storetune.store import db
from storetune.workspace import Workspace

INTENTS = {
    "returns",
    "sale_return",
    "exchange",
    "damaged_missing",
    "shipping",
    "order_status",
    "product_question",
    "recommendation",
    "discount_price_match",
    "cancellation",
    "address_change",
    "complaint_escalate",
    "fraud_chargeback",
    "loyalty",
    "size_guide",
}


@dataclass
class BuildReport:
    dataset_id: str
    path: Path
    counts: dict[str, int]
    by_task: dict[str, dict[str, int]]
    by_category: dict[str, int]
    notes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "dataset_id": self.dataset_id,
            "path": str(self.path),
            "counts": self.counts,
            "by_task": self.by_task,
            "by_category": self.by_category,
            "notes": self.notes,
        }


def build_config(ws: Workspace) -> BuildConfig:
    try:
        return BuildConfig.model_validate(ws.config().build)
    except Exception as e:
        raise StoretuneError(f"{ws.config_path}: invalid 'build' section: {e}") from None


def collect_examples(ws: Workspace, bcfg: BuildConfig) -> tuple[list[Example], dict]:
    cfg = ws.config()
    if not ws.db_path.exists():
        raise StoretuneError(
            f"{ws.db_path}: no store database", hint="run 'storetune ingest' first"
        )
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    tickets = db.load_tickets(conn, resolved_only=True)
    conn.close()
    # max_tickets bounds the support replies; hand-overs are rarer, so the escalation
    # builder draws from every human-only ticket (capped by build.escalation).
    all_tickets = tickets
    if bcfg.max_tickets:
        tickets = tickets[: bcfg.max_tickets]
    ctx = BuildContext(cfg, bcfg, products, tickets)

    def system_for_card(card: str) -> str:
        return render_system_prompt(cfg, card)

    corrector = PolicyCorrector(cfg)
    support, skipped = build_support(tickets, cfg, INTENTS, ctx.system_for, corrector)
    examples = support
    examples += build_escalation(all_tickets, cfg, ctx.system_for, bcfg.escalation, bcfg.seed)
    examples += build_lookalikes(ctx)
    examples += build_product_qa(products, bcfg.product_qa, system_for_card, bcfg.seed)
    examples += build_recommend(ctx)
    examples += build_grounded(ctx)
    examples += build_safety(ctx, base=len(examples))
    examples += build_tasks(ctx)
    notes = {
        "tickets_read": len(tickets),
        "support_skipped_human_only": skipped["human_only"],
        "support_skipped_no_reply": skipped["no_reply"],
        "outdated_policy_corrected": corrector.corrected,
    }
    return examples, notes


def dedupe(examples: list[Example]) -> tuple[list[Example], int]:
    seen: set[str] = set()
    kept = []
    for ex in examples:
        k = ex.key()
        if k not in seen:
            seen.add(k)
            kept.append(ex)
    return kept, len(examples) - len(kept)


def build_dataset(ws: Workspace) -> BuildReport:
    bcfg = build_config(ws)
    examples, notes = collect_examples(ws, bcfg)
    examples, paraphrased = paraphrase_examples(examples, bcfg.paraphrase, bcfg.seed)
    notes.update(paraphrased)  # empty unless build.paraphrase.enabled
    examples, notes["exact_duplicates_removed"] = dedupe(examples)
    if not examples:
        raise StoretuneError("no training examples could be built from store.db")
    merge_duplicate_groups(examples)
    splits = assign_splits(examples, bcfg.split, bcfg.seed)
    return _write(ws, examples, splits, notes)


def _lines(examples: list[Example], splits: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in (*SPLITS, "meta")}
    for ex, split in zip(examples, splits, strict=True):
        out[split].append(json.dumps({"messages": ex.messages}, ensure_ascii=False))
        meta = {
            "split": split,
            "index": len(out[split]) - 1,
            "task": ex.task,
            "category": ex.category,
            "builder": ex.builder,
            "source_ids": ex.source_ids,
        }
        out["meta"].append(json.dumps(meta, ensure_ascii=False))
    return out


def _write(ws: Workspace, examples: list[Example], splits: list[str], notes: dict) -> BuildReport:
    lines = _lines(examples, splits)
    digest = hashlib.sha256("\n".join("\n".join(v) for v in lines.values()).encode()).hexdigest()
    dataset_id = f"ds-{digest[:10]}"
    ws.datasets_dir.mkdir(parents=True, exist_ok=True)
    final = ws.datasets_dir / dataset_id
    by_task: dict[str, dict[str, int]] = {}
    for ex, split in zip(examples, splits, strict=True):
        by_task.setdefault(ex.task, Counter())[split] += 1
    report = BuildReport(
        dataset_id=dataset_id,
        path=final,
        counts={s: len(lines[s]) for s in SPLITS},
        by_task={k: dict(v) for k, v in sorted(by_task.items())},
        by_category=dict(sorted(Counter(f"{e.task}/{e.category}" for e in examples).items())),
        notes=notes,
    )
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=ws.datasets_dir))
    try:
        for name, rows in lines.items():
            (tmp / f"{name}.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        (tmp / "report.md").write_text(report_markdown(report), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (ws.datasets_dir / "LATEST").write_text(dataset_id + "\n", encoding="utf-8")
    return report


def report_markdown(r: BuildReport) -> str:
    rows = ["| task | train | val | test |", "|---|---:|---:|---:|"]
    rows += [
        f"| {t} | {c.get('train', 0)} | {c.get('val', 0)} | {c.get('test', 0)} |"
        for t, c in r.by_task.items()
    ]
    cats = "\n".join(f"- {k}: {v}" for k, v in r.by_category.items())
    notes = "\n".join(f"- {k}: {v}" for k, v in r.notes.items())
    return (
        f"# Dataset {r.dataset_id}\n\n"
        + "\n".join(rows)
        + f"\n\n## Categories\n{cats}\n\n## Notes\n{notes}\n"
    )


def resolve_dataset(ws: Workspace, dataset_id: str | None = None) -> Path:
    if dataset_id is None:
        latest = ws.datasets_dir / "LATEST"
        if not latest.exists():
            raise StoretuneError(
                f"{ws.datasets_dir}: no dataset built yet", hint="run 'storetune build'"
            )
        dataset_id = latest.read_text().strip()
    path = ws.datasets_dir / dataset_id
    if not (path / "train.jsonl").exists():
        raise StoretuneError(f"{path}: dataset not found or incomplete")
    return path
