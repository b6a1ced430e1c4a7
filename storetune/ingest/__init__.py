"""Ingest: read a store's exports, clean them and write store.db in one transaction.

Readers (one module per source) return records plus quarantined items and counts;
nothing touches the database until every file has been read, so a bad file
leaves store.db as it was.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from storetune.config import StoreConfig, describe_rules, record_source
from storetune.config.store import Sources
from storetune.errors import StoretuneError
from storetune.ingest import (
    freshdesk,
    generic,
    gorgias,
    helpscout,
    intercom,
    shopify_csv,
    shopify_json,
    shopify_orders,
    zendesk,
)
from storetune.ingest.detect import (
    FORMATS,
    KNOWLEDGE_FORMATS,
    ORDER_FORMATS,
    PRODUCT_FORMATS,
    TICKET_FORMATS,
    detect_format,
)
from storetune.ingest.files import check_path, scan
from storetune.ingest.helpdesk import list_files
from storetune.ingest.knowledge import KnowledgeRead, read_knowledge
from storetune.ingest.parallel import default_workers
from storetune.ingest.shopify_csv import Catalog
from storetune.io import atomic_write_text
from storetune.store import db
from storetune.store import knowledge as knowledge_store
from storetune.store import orders as order_store
from storetune.store.records import Product, Ticket
from storetune.workspace import Workspace

__all__ = [
    "IngestReport",
    "SourceReport",
    "detect_format",
    "format_report",
    "ingest_workspace",
    "read_catalog",
]


@dataclass
class SourceReport:
    """What happened to one input: counts per kind reconcile (read = accepted + quarantined)."""

    name: str  # products | tickets
    path: str
    format: str
    dialect: str = ""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantine_records: int = 0
    flags: dict[str, int] = field(default_factory=dict)  # product description flags
    dropped: dict[str, int] = field(default_factory=dict)  # system events, duplicates
    notes: int = 0  # internal notes kept (never training text)
    pii: dict[str, int] = field(default_factory=dict)  # replacements per type
    human_only: dict[str, int] = field(default_factory=dict)  # tickets per topic
    skipped: list[list[str]] = field(default_factory=list)  # [file, why] not read
    catalog: dict[str, int] = field(default_factory=dict)  # db.catalog_change
    upserts: dict[str, int] = field(default_factory=dict)  # orders: inserted, updated, …
    rejects: list[str] = field(default_factory=list)  # the first few quarantine reasons

    @property
    def reconciles(self) -> bool:
        return all(c["read"] == c["accepted"] + c["quarantined"] for c in self.counts.values())


@dataclass
class IngestReport:
    started: str
    finished: str
    db_path: str
    sources: list[SourceReport]
    db_counts: dict[str, int]
    # The policy rules file: its fields, free-text keys, whether this run recorded it.
    policies: dict[str, Any] | None = None

    @property
    def reconciles(self) -> bool:
        return all(s.reconciles for s in self.sources)

    def source(self, name: str) -> SourceReport | None:
        return next((s for s in self.sources if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for src, d in zip(self.sources, out["sources"], strict=True):
            d["reconciles"] = src.reconciles
        out["reconciles"] = self.reconciles
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- reading ------------------------------------------------------------------------


def read_catalog(path: Path, fmt: str = "auto") -> Catalog:
    """Products from a Shopify CSV or Admin JSON export."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "shopify_csv":
        return shopify_csv.read_catalog(path)
    if fmt == "shopify_json":
        return shopify_json.read_catalog(path)
    raise StoretuneError(
        f"{path}: this is a {fmt} export, not a product export",
        hint=_source_hint(fmt),
    )


def _source_hint(fmt: str) -> str:
    if fmt in ORDER_FORMATS:
        return "pass it as the orders source (--orders / sources.orders)"
    return "pass it as the tickets source (--tickets / sources.tickets)"


def read_orders(path: Path) -> shopify_orders.OrderBook:
    """Orders from a Shopify orders CSV or Admin REST order JSON (a file, or a
    directory of them: pages of the API); any other export is refused by name."""
    files = scan(path, (".csv", ".json", ".jsonl"))[0] if path.is_dir() else [path]
    if not files:
        raise StoretuneError(f"{path}: no .csv, .json or .jsonl file in it")
    books = []
    for f in files:
        fmt = detect_format(f)
        if fmt not in ORDER_FORMATS:
            raise StoretuneError(
                f"{f}: this is a {fmt} export, not a Shopify orders export",
                hint=shopify_orders.ORDERS_HINT,
            )
        books.append(shopify_orders.READERS[fmt](f))
    return shopify_orders.merge(path, books)


TICKET_READERS = {
    "zendesk": zendesk.read_tickets,
    "gorgias": gorgias.read_tickets,
    "freshdesk": freshdesk.read_tickets,
    "helpscout": helpscout.read_tickets,
    "intercom": intercom.read_tickets,
    "generic_csv": generic.read_csv_tickets,
    "generic_jsonl": generic.read_jsonl_tickets,
    "chat_jsonl": generic.read_chat_jsonl,
}


def _check_ticket_format(path: Path, fmt: str) -> str:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in TICKET_FORMATS:
        raise StoretuneError(
            f"{path}: this is a {fmt} export, not a helpdesk ticket export",
            hint=_source_hint(fmt)
            if fmt in ORDER_FORMATS
            else f"ticket formats supported: {', '.join(TICKET_FORMATS)}",
        )
    return fmt


def _split_format(fmt: str, tickets_format: str) -> tuple[str, str]:
    if fmt == "auto":
        return "auto", tickets_format or "auto"
    if fmt in PRODUCT_FORMATS:
        return fmt, tickets_format or "auto"
    if fmt in TICKET_FORMATS:
        return "auto", fmt
    raise StoretuneError(
        f"unknown format {fmt!r}", hint=f"use auto or one of: {', '.join(FORMATS)}"
    )


def _vocabulary(products: list[Product], cfg: StoreConfig) -> set[str]:
    """Catalog and brand words: single-word names equal to these are replaced only in
    a name context, so 'Olive Green Jacket' survives a customer called Olive."""
    words: set[str] = set()
    texts = [cfg.brand.name]
    for p in products:
        texts += [p.title, p.vendor, p.product_type, *p.options, *p.tags]
        texts += [value for v in p.variants for value in v.options.values()]
    for text in texts:
        words.update(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", text or ""))
    return words


def _stored_products(ws: Workspace) -> list[Product]:
    """The catalog from an earlier ingest, when this one reads only tickets."""
    if not ws.db_path.exists():
        return []
    conn = db.connect(ws.db_path)
    try:
        return db.load_products(conn)
    finally:
        conn.close()


def _allowed(cfg: StoreConfig) -> list[str]:
    """The store's own contact details are not personal data."""
    contact = cfg.policies.contact
    return [x for x in (contact.email, contact.phone) if x] if contact else []


def _refuse_shrink(cat: Catalog, change: dict[str, int]) -> None:
    """StoretuneError (nothing written) when the import would take most of the active
    catalog away: a header-only, cut-off or wrongly mapped export, not a new catalog."""
    lost, before = change["active_lost"], change["active_before"]
    if lost and lost * 2 > before:
        kept = cat.counts.get("product", {}).get("accepted", 0)
        raise StoretuneError(
            f"{cat.path}: would take {lost} of the {before} active products out of the "
            f"catalog ({kept} usable products in the file, {len(cat.quarantine)} records "
            "quarantined); nothing was written",
            hint="check the export (columns, a cut-off file); if this is the new catalog, "
            "run ingest again with --replace",
        )


def _product_report(cat: Catalog, change: dict[str, int]) -> SourceReport:
    return SourceReport(
        name="products",
        path=str(cat.path),
        format=cat.format,
        dialect=cat.dialect,
        counts={k: dict(v) for k, v in cat.counts.items()},
        quarantine_records=len(cat.quarantine),
        flags=dict(cat.flags),
        catalog=change,
    )


def _ticket_report(path: Path, stats: dict[str, Any], n_quarantine: int) -> SourceReport:
    return SourceReport(
        name="tickets",
        path=str(path),
        format=stats.get("format", "zendesk"),
        counts=stats["counts"],
        quarantine_records=n_quarantine,
        dropped=stats["dropped"],
        notes=stats["notes"],
        pii=stats["pii"],
        human_only=stats["human_only"],
        skipped=stats.get("skipped", []),
    )


def _resolve(ws: Workspace, given: Path | str | None, rel: str | None, what: str) -> Path | None:
    if given is not None:
        return _absolute(Path(given).expanduser())
    if rel:
        return _absolute(ws.source_path(rel, what))
    return None


def _absolute(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # Python < 3.13 raises on a symlink loop
        check_path(path)  # names the problem in one line
        raise


# --- the one entry point ------------------------------------------------------------


def ingest_workspace(
    ws: Workspace,
    products: Path | str | None = None,
    tickets: Path | str | None = None,
    fmt: str = "auto",
    progress: bool = True,
    policies: Path | str | None = None,
    replace: bool = False,
    orders: Path | str | None = None,
    knowledge: Path | str | None = None,
    configured_sources: bool = True,
) -> IngestReport:
    """Read the store's exports into ws.db_path and write reports/ingest.json.

    Paths default to store.yaml's sources (relative to the workspace root). fmt
    forces the reader for whichever source it names (a product or ticket format);
    store.yaml's sources.tickets_format names the format of sources.tickets only, so
    a `tickets` path given here is detected from its content unless fmt says.
    A product export replaces the catalog, but one that would take most of the
    active catalog away is refused (nothing written) unless `replace`.
    A `policies` rules file is validated with store.yaml and, once ingest has
    succeeded, recorded as sources.policies. A `knowledge` source (help-center export
    or Markdown/HTML folder) replaces the articles an earlier import of it gave.
    `configured_sources=False` reads only the paths given (`storetune ingest PATH`).
    """
    rules = _resolve(ws, policies, None, "policies")
    cfg = ws.config(rules)
    started = _now()
    src = cfg.sources if configured_sources else Sources()
    product_path = _resolve(ws, products, src.products, "products")
    ticket_path = _resolve(ws, tickets, src.tickets, "tickets")
    order_path = _resolve(ws, orders, src.orders, "orders")
    kb_path = _resolve(ws, knowledge, src.knowledge, "knowledge")
    paths = (product_path, ticket_path, order_path, kb_path, rules)
    if all(p is None for p in paths):
        raise StoretuneError(
            f"{ws.config_path}: no sources to ingest",
            hint="set sources.products / sources.tickets / sources.knowledge in store.yaml, "
            "or pass the paths",
        )
    configured = src.tickets_format if tickets is None else "auto"
    kb_fmt = fmt if fmt in KNOWLEDGE_FORMATS else "auto"
    product_fmt, ticket_fmt = _split_format("auto" if fmt in KNOWLEDGE_FORMATS else fmt, configured)
    catalog = read_catalog(product_path, product_fmt) if product_path else None
    ticket_read = None
    if ticket_path is not None:
        ticket_fmt = _check_ticket_format(ticket_path, ticket_fmt)
        known = catalog.products if catalog else _stored_products(ws)
        ticket_read = TICKET_READERS[ticket_fmt](
            ticket_path,
            topics=cfg.escalation.always or None,
            protected=_vocabulary(known, cfg),
            allow=_allowed(cfg),
            progress=progress,
            workers=default_workers(),
        )
        ticket_read[2]["format"] = ticket_fmt
    book = read_orders(order_path) if order_path is not None else None
    kb = _read_knowledge(kb_path, kb_fmt, cfg) if kb_path is not None else None
    # Only now, with every file read, is store.db opened for writing.
    conn = db.connect(ws.db_path)
    try:
        policy = _policy_report(ws, cfg, rules)
        report = _write(
            conn, ws, started, catalog, ticket_path, ticket_read, policy, replace, book, kb
        )
    finally:
        conn.close()
    if rules is not None:
        record_source(ws.config_path, "policies", _relative(ws, rules))
    report_json = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(ws.reports_dir / "ingest.json", report_json)
    # An index built before follows the new catalog (only changed products are
    # embedded); imported here so ingest never loads the embedder when there is none.
    from storetune.retrieval.index import refresh_if_indexed

    refresh_if_indexed(ws.db_path, progress=progress)
    return report


def _policy_report(ws: Workspace, cfg: StoreConfig, given: Path | None) -> dict[str, Any] | None:
    path = given or _resolve(ws, None, cfg.sources.policies, "policies")
    if path is None:
        return None
    return {**describe_rules(path), "recorded": given is not None}


def _relative(ws: Workspace, path: Path) -> str:
    # Relative inside the workspace so the workspace can move; absolute otherwise.
    return path.relative_to(ws.root).as_posix() if path.is_relative_to(ws.root) else str(path)


TicketRead = tuple[list[Ticket], list[db.QuarantineItem], dict[str, Any]]


def _write(
    conn: sqlite3.Connection,
    ws: Workspace,
    started: str,
    catalog: Catalog | None,
    ticket_path: Path | None,
    ticket_read: TicketRead | None,
    policies: dict[str, Any] | None = None,
    replace: bool = False,
    book: shopify_orders.OrderBook | None = None,
    kb: KnowledgeRead | None = None,
) -> IngestReport:
    sources: list[SourceReport] = []
    with db.transaction(conn):
        if catalog is not None:
            change = db.catalog_change(conn, catalog.products)
            if not replace:
                _refuse_shrink(catalog, change)
            db.upsert_products(conn, catalog.products, catalog.costs, replace=True)
            db.quarantine_items(conn, catalog.quarantine, replace_sources=[str(catalog.path)])
            sources.append(_product_report(catalog, change))
        if ticket_read is not None and ticket_path is not None:
            tickets, quarantined, stats = ticket_read
            for t in tickets:
                db.upsert_ticket(conn, t)
            files = stats.get("files") or [str(f) for f in list_files(ticket_path)]
            db.quarantine_items(conn, quarantined, replace_sources=files)
            sources.append(_ticket_report(ticket_path, stats, len(quarantined)))
        if book is not None:
            sources.append(_write_orders(conn, book))
        if kb is not None:
            sources.append(_write_knowledge(conn, kb))
        report = IngestReport(
            started=started,
            finished=_now(),
            db_path=str(ws.db_path),
            sources=sources,
            db_counts={**db.counts(conn), **knowledge_store.knowledge_counts(conn)},
            policies=policies,
        )
        db.record_ingest_run(conn, started, report.to_dict())
    return report


def _write_orders(conn: sqlite3.Connection, book: shopify_orders.OrderBook) -> SourceReport:
    upserts = order_store.upsert_orders(conn, book.orders)
    files = sorted({q.source_file for q in book.quarantine} | set(book.files))
    db.quarantine_items(conn, book.quarantine, replace_sources=files)
    return SourceReport(
        name="orders",
        path=str(book.path),
        format=book.format,
        counts={k: dict(v) for k, v in book.counts.items()},
        quarantine_records=len(book.quarantine),
        upserts=upserts,
        rejects=[f"{q.source_file} {q.location}: {q.reason}" for q in book.quarantine[:5]],
    )


def _read_knowledge(path: Path, fmt: str, cfg: StoreConfig) -> KnowledgeRead:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in KNOWLEDGE_FORMATS:
        raise StoretuneError(
            f"{path}: this is a {fmt} export, not a help-center export",
            hint=f"knowledge formats supported: {', '.join(KNOWLEDGE_FORMATS)}",
        )
    return read_knowledge(path, fmt, cfg.brand.website or "")


def _write_knowledge(conn: sqlite3.Connection, kb: KnowledgeRead) -> SourceReport:
    """Store the articles; the export's earlier articles and rejects are replaced."""
    origin = str(kb.path)
    upserts = knowledge_store.write_articles(conn, kb.articles, origin, kb.unpublished)
    files = sorted({q.source_file for q in kb.quarantine} | set(kb.files))
    db.quarantine_items(conn, kb.quarantine, replace_sources=files)
    return SourceReport(
        name="knowledge",
        path=origin,
        format=kb.format,
        counts=kb.counts(),
        quarantine_records=len(kb.quarantine),
        dropped=dict(kb.dropped),
        skipped=kb.skipped,
        upserts=upserts,
        rejects=[f"{q.reason}" for q in kb.quarantine[:5]],
    )


def source_role(path: Path | str) -> str:
    """Which source an export is, from its content: products, tickets, orders or
    knowledge (`storetune ingest PATH`)."""
    fmt = detect_format(Path(path))
    if fmt in PRODUCT_FORMATS:
        return "products"
    if fmt in ORDER_FORMATS:
        return "orders"
    return "knowledge" if fmt in KNOWLEDGE_FORMATS else "tickets"


# --- presentation -------------------------------------------------------------------


def _summary(items: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(items.items(), key=lambda kv: -kv[1]))


def format_report(report: IngestReport) -> Table:
    """A table of read / accepted / quarantined per source and kind, for the CLI."""
    table = Table(title="Ingest", caption_justify="left")
    for col, justify in (
        ("source", "left"),
        ("kind", "left"),
        ("read", "right"),
        ("accepted", "right"),
        ("quarantined", "right"),
    ):
        table.add_column(col, justify=justify)
    for src in report.sources:
        label = f"{src.name} ({src.format}{' ' + src.dialect if src.dialect else ''})"
        for kind, c in src.counts.items():
            style = "red" if c["quarantined"] else None
            table.add_row(
                label, kind, str(c["read"]), str(c["accepted"]), str(c["quarantined"]), style=style
            )
            label = ""
    table.caption = _caption(report)
    return table


def _caption(report: IngestReport) -> str:
    lines = []
    for src in report.sources:
        if src.catalog.get("removed"):
            c = src.catalog
            lines.append(
                f"catalog: {c['removed']} products not in the export removed "
                f"({c['active_before']} → {c['active_after']} active)"
            )
        if src.skipped:
            why = Counter(reason for _, reason in src.skipped)
            lines.append(f"files skipped (not read): {len(src.skipped)}: {_summary(why)}")
        if src.flags:
            lines.append(f"description flags: {_summary(src.flags)}")
        if src.pii:
            lines.append(f"PII replaced: {_summary(src.pii)}")
        if src.dropped:
            lines.append(f"dropped: {_summary(src.dropped)}")
        if src.notes:
            lines.append(f"internal notes kept (never training text): {src.notes}")
        if src.human_only:
            lines.append(f"human-only tickets: {_summary(src.human_only)}")
        if src.upserts and src.name == "knowledge":
            lines.append(f"articles: {_summary(src.upserts)}")
        elif src.upserts:
            lines.append(f"orders: {_summary(src.upserts)} (personal data stays in store.db)")
        lines += [f"[red]quarantined[/red] {escape(r)}" for r in src.rejects]
    if report.policies:
        lines.append(_policy_line(report.policies))
    c = report.db_counts
    lines.append(
        f"store.db: {c['products']} products ({c['active_products']} active), "
        f"{c['variants']} variants, {c['tickets']} tickets ({c['resolved_tickets']} resolved), "
        f"{c['orders']} orders, {c.get('articles', 0)} help-center articles "
        f"({c.get('passages', 0)} passages), {c['quarantine']} quarantined records"
    )
    if not report.reconciles:
        lines.append("[red]counts do not reconcile: please report this[/red]")
    return "\n".join(lines)


def _policy_line(info: dict[str, Any]) -> str:
    line = f"policies from {Path(info['path']).name}: {len(info['fields'])} fields"
    if info["free_text"]:
        line += f"; kept as free text: {', '.join(info['free_text'])}"
    if info["recorded"]:
        line += "; recorded in store.yaml sources.policies"
    return line
