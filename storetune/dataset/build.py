"""store.db -> datasets/<id>/ {train,val,test}.jsonl + meta.jsonl + report."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from storetune.clean.pii import find_pii
from storetune.config import BuildConfig
from storetune.dataset.builders.escalation import build_escalation, build_lookalikes
from storetune.dataset.builders.feedback import build_feedback
from storetune.dataset.builders.grounded import build_grounded
from storetune.dataset.builders.knowledge import build_knowledge
from storetune.dataset.builders.orders import build_order_examples
from storetune.dataset.builders.product_qa import build_product_qa
from storetune.dataset.builders.recommend import build_recommend
from storetune.dataset.builders.safety import build_safety
from storetune.dataset.builders.support import PolicyCorrector, build_support
from storetune.dataset.builders.tasks import build_tasks
from storetune.dataset.context import BuildContext
from storetune.dataset.dedup import group_duplicates, remove_exact_duplicates
from storetune.dataset.example import Example
from storetune.dataset.focus import focus_examples
from storetune.dataset.order_leaks import drop_real_order_values, real_order_values
from storetune.dataset.paraphrase import paraphrase_examples
from storetune.dataset.split import SPLITS, assign_splits, group_by_family, phrasing_counts
from storetune.dataset.validate import (
    ModelTokenizer,
    ValidationReport,
    estimate_line,
    load_model_tokenizer,
    validate_dataset,
)
from storetune.dataset.validate import markdown as validation_markdown
from storetune.errors import StoretuneError
from storetune.io import atomic_write_text
from storetune.progress import progress as progress_bar
from storetune.store import db
from storetune.store.knowledge import load_passages
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
    by_task: dict[str, dict[str, int]]  # task -> split -> examples
    by_category: dict[str, int]  # "task/category" -> examples
    notes: dict[str, int] = field(default_factory=dict)
    by_builder: dict[str, dict[str, int]] = field(default_factory=dict)  # builder -> split
    by_category_split: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: ValidationReport | None = None
    # examples whose user/assistant text still looks like personal data (see _pii_left)
    pii_left: dict = field(default_factory=dict)

    @property
    def safety(self) -> dict[str, int]:
        """Safety and edge-case examples by category."""
        return {
            k.split("/", 1)[1]: v for k, v in self.by_category.items() if k.startswith("safety/")
        }

    @property
    def leakage(self) -> dict[str, int]:
        return dict(self.validation.leakage) if self.validation else {}

    def to_dict(self) -> dict:
        return {
            "dataset_id": self.dataset_id,
            "path": str(self.path),
            "counts": self.counts,
            "by_task": self.by_task,
            "by_builder": self.by_builder,
            "by_category": self.by_category,
            "by_category_split": self.by_category_split,
            "safety": self.safety,
            "leakage": self.leakage,
            "notes": self.notes,
            "pii_left": self.pii_left,
            "validation": self.validation.to_dict() if self.validation else None,
        }


def build_config(ws: Workspace) -> BuildConfig:
    return ws.config().build


def collect_examples(ws: Workspace, bcfg: BuildConfig) -> tuple[list[Example], dict]:
    cfg = ws.config()
    if not ws.db_path.exists():
        raise StoretuneError(
            f"{ws.db_path}: no store database", hint="run 'storetune ingest' first"
        )
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    tickets = db.load_tickets(conn, resolved_only=True)
    passages = load_passages(conn)
    conn.close()
    # max_tickets bounds the support replies; hand-overs are rarer, so the escalation
    # builder draws from every human-only ticket (capped by build.escalation).
    all_tickets = tickets
    if bcfg.max_tickets:
        tickets = tickets[: bcfg.max_tickets]
    ctx = BuildContext(cfg, bcfg, products, tickets, passages)

    corrector = PolicyCorrector(cfg)
    support, skipped = build_support(tickets, cfg, INTENTS, ctx.system_for, corrector)
    examples = support
    examples += build_escalation(all_tickets, cfg, ctx.system_for, bcfg.escalation, bcfg.seed)
    examples += build_lookalikes(ctx)
    examples += build_product_qa(ctx)
    examples += build_recommend(ctx)
    examples += build_grounded(ctx)
    examples += build_knowledge(ctx)  # help-center passages, when the store has them
    examples += build_safety(ctx, base=len(examples))
    examples += build_tasks(ctx)
    examples += build_feedback(ctx, ws.db_path)  # agents' approved/edited drafts
    real = real_order_values(ws.db_path)
    examples += build_order_examples(ctx, avoid=real)  # fictional cards only
    examples, leaked = drop_real_order_values(examples, real)
    notes = {
        "tickets_read": len(tickets),
        "support_skipped_human_only": skipped["human_only"],
        "support_skipped_no_reply": skipped["no_reply"],
        "outdated_policy_corrected": corrector.corrected,
        "real_order_values_dropped": leaked.get("examples", 0),
    }
    return examples, notes


def dedupe(examples: list[Example]) -> tuple[list[Example], int]:
    """Drop exact duplicates (same normalised non-system text); keep the first."""
    return remove_exact_duplicates(examples)


def build_dataset(
    ws: Workspace, *, model: ModelTokenizer | None = None, progress: bool = True
) -> BuildReport:
    """Build, split, write and validate a dataset; mark it LATEST only if it passes.

    `model` is the tokenizer to validate with (default: store.yaml's base_model).
    On validation errors the dataset is still written (its report.md says what is
    wrong) but not marked LATEST, and StoretuneError is raised.
    """
    bcfg = build_config(ws)
    examples, notes = collect_examples(ws, bcfg)
    examples, paraphrased = paraphrase_examples(examples, bcfg.paraphrase, bcfg.seed)
    notes.update(paraphrased)  # empty unless build.paraphrase.enabled
    examples, notes["exact_duplicates_removed"] = dedupe(examples)
    if not examples:
        raise StoretuneError("no training examples could be built from store.db")
    # near duplicates (and one ticket's examples, and same opening messages) share a
    # group, so the split never puts them on both sides of the train/test line
    group_by_family(examples)  # a phrasing family is held out whole (split.py)
    label = "grouping near duplicates"
    with progress_bar(label, len(examples), progress, stderr=True, transient=True) as bar:
        grouping = group_duplicates(examples, bar.advance)
    notes["near_duplicate_pairs"] = grouping.near_pairs
    notes["groups_merged_as_near_duplicates"] = grouping.merged_groups
    splits = assign_splits(examples, bcfg.split, bcfg.seed)
    notes["kind_sections"] = focus_examples(examples, ws.config(), bcfg, splits)
    notes.update(phrasing_counts(examples, splits))
    tok = model or _base_tokenizer(ws)
    report = _summary(examples, splits, notes)
    report.pii_left = _pii_left(ws, examples, splits)
    staged = _stage_files(ws, examples, splits, report)
    del examples, splits  # the files hold them now: free them before validation reads them
    _validate_and_publish(ws, report, staged, tok, progress, grouping.signatures)
    if report.validation and report.validation.errors:
        raise StoretuneError(
            f"{report.path}: dataset failed validation "
            f"({len(report.validation.errors)} error finding(s)); not marked as latest",
            hint=f"see {report.path / 'report.md'}",
        )
    return report


PII_EXAMPLES_SHOWN = 10


def _pii_left(ws: Workspace, examples: list[Example], splits: list[str]) -> dict:
    """Examples whose customer or reply text still looks like personal data to the PII
    scrubber (the system prompt is the store's own policies and catalog cards): how many,
    by type, and the first few as "split:index" ids (meta.jsonl's split and index) with
    their source ids. Values are never repeated here: the report must not leak them."""
    cfg = ws.config()
    contact = cfg.policies.contact
    allow = [x for x in (contact.email, contact.phone) if x] if contact else []
    protected = _catalog_words(ws) | {w.lower() for w in cfg.brand.name.split()}
    seen: dict[str, Counter[str]] = {}
    by_type: Counter[str] = Counter()
    shown: list[dict] = []
    flagged = 0
    index: Counter[str] = Counter()
    for ex, split in zip(examples, splits, strict=True):
        found: Counter[str] = Counter()
        for m in [] if _synthetic(ex) else ex.messages:
            text = m.get("content") or ""
            if m.get("role") == "system" or not text:
                continue
            if text not in seen:
                seen[text] = find_pii(text, protected, allow)
            found.update(seen[text])
        if found:
            flagged += 1
            by_type.update(found)
            if len(shown) < PII_EXAMPLES_SHOWN:
                shown.append(
                    {
                        "id": f"{split}:{index[split]}",
                        "types": sorted(found),
                        "source_ids": list(ex.source_ids),
                    }
                )
        index[split] += 1
    return {"examples": flagged, "by_type": dict(sorted(by_type.items())), "shown": shown}


def _synthetic(ex: Example) -> bool:
    """Written by a builder from fictional values (a made-up order number in a
    manipulation attempt), not from any customer's text."""
    return bool(ex.source_ids) and all(s.startswith("synthetic:") for s in ex.source_ids)


def _catalog_words(ws: Workspace) -> set[str]:
    if not ws.db_path.exists():
        return set()
    conn = db.connect(ws.db_path)
    try:
        rows = conn.execute("SELECT title || ' ' || product_type FROM products").fetchall()
    finally:
        conn.close()
    return {w.lower() for (t,) in rows for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", t or "")}


def pii_warning(r: BuildReport) -> str | None:
    """One line naming how many examples still look like they hold personal data."""
    left = r.pii_left or {}
    if not left.get("examples"):
        return None
    types = ", ".join(f"{k} {n}" for k, n in left["by_type"].items())
    ids = ", ".join(f"{e['id']} ({'/'.join(e['types'])})" for e in left["shown"])
    more = left["examples"] - len(left["shown"])
    return (
        f"possible personal data left in {left['examples']} example(s) ({types}): {ids}"
        + (f" and {more} more" if more > 0 else "")
        + "; see meta.jsonl for their sources"
    )


def _base_tokenizer(ws: Workspace) -> ModelTokenizer:
    return load_model_tokenizer(ws.config().base_model)


def _train_options(ws: Workspace) -> dict:
    tc = ws.config().train
    return {"epochs": tc.epochs, "train_max_length": tc.max_length, "train_truncates": True}


def _mix(examples: list[Example], splits: list[str], key) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for ex, split in zip(examples, splits, strict=True):
        out.setdefault(key(ex), Counter())[split] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def _summary(examples: list[Example], splits: list[str], notes: dict) -> BuildReport:
    """The report's counts and mix; id and path are set once the files are written."""
    counts = Counter(splits)
    return BuildReport(
        dataset_id="",
        path=Path(),
        counts={s: counts[s] for s in SPLITS},
        by_task=_mix(examples, splits, lambda e: e.task),
        by_category=dict(sorted(Counter(f"{e.task}/{e.category}" for e in examples).items())),
        notes=notes,
        by_builder=_mix(examples, splits, lambda e: e.builder),
        by_category_split=_mix(examples, splits, lambda e: f"{e.task}/{e.category}"),
    )


def _stage_files(
    ws: Workspace, examples: list[Example], splits: list[str], report: BuildReport
) -> Path:
    """Write the split files and meta.jsonl into a temp directory, one line at a time
    (no copy of the whole set in memory), and name the dataset by their content."""
    ws.datasets_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=ws.datasets_dir))
    names = (*SPLITS, "meta")
    digests = {n: hashlib.sha256() for n in names}
    index: Counter[str] = Counter()
    try:
        with ExitStack() as stack:
            files = {
                n: stack.enter_context((tmp / f"{n}.jsonl").open("w", encoding="utf-8"))
                for n in names
            }

            def put(name: str, obj: dict) -> None:
                line = json.dumps(obj, ensure_ascii=False) + "\n"
                files[name].write(line)
                digests[name].update(line.encode("utf-8"))

            for ex, split in zip(examples, splits, strict=True):
                put(split, {"messages": ex.messages})
                meta = {
                    "split": split,
                    "index": index[split],
                    "task": ex.task,
                    "category": ex.category,
                    "builder": ex.builder,
                    "source_ids": ex.source_ids,
                    "family": ex.family,
                }
                if ex.cards is not None:  # eval and guard read these, not the prompt text
                    meta["cards"] = [c.to_dict() for c in ex.cards]
                put("meta", meta)
                index[split] += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    digest = hashlib.sha256("".join(digests[n].hexdigest() for n in names).encode())
    report.dataset_id = f"ds-{digest.hexdigest()[:10]}"
    report.path = ws.datasets_dir / report.dataset_id
    return tmp


def _validate_and_publish(
    ws: Workspace,
    report: BuildReport,
    tmp: Path,
    model: ModelTokenizer,
    progress: bool,
    signatures: dict | None,
) -> None:
    """Validate the staged files as training will read them, write the report, move
    the directory into place; mark it LATEST only when validation passed."""
    try:
        opts = _train_options(ws)
        report.validation = validate_dataset(
            tmp, model, progress=progress, signatures=signatures, **opts
        )
        report.validation.files = {k: str(report.path / k) for k in report.validation.files}
        (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        (tmp / "report.md").write_text(report_markdown(report), encoding="utf-8")
        shutil.rmtree(report.path, ignore_errors=True)
        os.replace(tmp, report.path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if report.validation.ok:
        atomic_write_text(ws.datasets_dir / "LATEST", report.dataset_id + "\n")


def _split_table(title: str, mix: dict[str, dict[str, int]]) -> list[str]:
    rows = [f"| {title} | train | val | test | total |", "|---|---:|---:|---:|---:|"]
    for name, c in mix.items():
        cells = [c.get(s, 0) for s in SPLITS]
        rows.append(f"| {name} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    totals = [sum(c.get(s, 0) for c in mix.values()) for s in SPLITS]
    rows.append("| **total** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return rows


def report_markdown(r: BuildReport) -> str:
    v = r.validation
    out = [f"# Dataset {r.dataset_id}", ""]
    out += [", ".join(f"{s}: {r.counts.get(s, 0):,}" for s in SPLITS) + " examples"]
    if v:
        out += [
            f"leakage between splits: {v.leakage['exact']} exact, {v.leakage['near']} near "
            "(expected 0)",
            estimate_line(v) or "",
        ]
    out += ["", "## Mix by builder", "", *_split_table("builder", r.by_builder)]
    out += ["", "## Mix by task", "", *_split_table("task", r.by_task)]
    out += ["", "## Mix by task/category", "", *_split_table("task/category", r.by_category_split)]
    if r.safety:
        out += ["", "## Safety and edge cases", "", "| category | examples |", "|---|---:|"]
        out += [f"| {k} | {n} |" for k, n in r.safety.items()]
    if pii_warning(r):
        out += ["", "## Possible personal data", "", f"**warning**: {pii_warning(r)}"]
    out += ["", "## Notes", "", "| note | count |", "|---|---:|"]
    out += [f"| {k.replace('_', ' ')} | {n} |" for k, n in r.notes.items()]
    if v:
        out += ["", "## Validation", "", validation_markdown(v)]
    return "\n".join(out) + "\n"


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
    if _failed_validation(path):
        raise StoretuneError(
            f"{path}: this dataset failed validation; training on it would waste the run",
            hint=f"see {path / 'report.md'}, fix the data and run 'storetune build' again",
        )
    return path


def _failed_validation(path: Path) -> bool:
    try:
        report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # datasets from before validation existed have no verdict
    return (report.get("validation") or {}).get("ok") is False


def build_summary(r: BuildReport):
    """What `storetune build` prints (a rich Group): the mix, leakage, warnings, where
    the report is."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"dataset {r.dataset_id}")
    for col in ("builder", *SPLITS, "total"):
        table.add_column(col, justify="left" if col == "builder" else "right")
    for name, c in r.by_builder.items():
        cells = [c.get(s, 0) for s in SPLITS]
        table.add_row(name, *map(str, cells), str(sum(cells)))
    out: list = [table]
    if r.safety:
        out.append(Text("safety: " + ", ".join(f"{k} {n}" for k, n in r.safety.items())))
    v = r.validation
    if v:
        bad = v.leakage["exact"] or v.leakage["near"]
        out.append(
            Text(
                f"leakage between splits: {v.leakage['exact']} exact, {v.leakage['near']} near",
                style="bold red" if bad else "green",
            )
        )
        counts = {c: n for c, n in v.counts().items() if c not in ("leakage_exact", "leakage_near")}
        if counts:
            out.append(Text("warnings: " + ", ".join(f"{c} {n}" for c, n in counts.items())))
        if estimate_line(v):
            out.append(Text(estimate_line(v)))
    if pii_warning(r):
        out.append(Text(f"warning: {pii_warning(r)}", style="bold yellow"))
    removed = r.notes.get("exact_duplicates_removed", 0)
    out.append(Text(f"exact duplicates removed: {removed}; report: {r.path / 'report.md'}"))
    return Group(*out)
