"""store.db: the one SQLite database of a workspace.

Schema changes are ordered, named migration functions recorded in `_migrations`
(the design of simonw/llm's migrations.py): each runs once, in list order, inside
its own transaction. To change the schema, append a new function to MIGRATIONS;
never edit one that has shipped, because existing databases already ran it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from storetune.errors import StoretuneError
from storetune.store.records import Message, Product, Ticket, Variant

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    # Statement by statement, not executescript(): that would COMMIT mid-migration.
    for stmt in _INITIAL_SCHEMA:
        conn.execute(stmt)


_INITIAL_SCHEMA = [
    """CREATE TABLE products (
        handle TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        vendor TEXT NOT NULL DEFAULT '',
        product_type TEXT NOT NULL DEFAULT '',
        category TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'active',
        published INTEGER NOT NULL DEFAULT 1,
        options TEXT NOT NULL DEFAULT '[]',
        images TEXT NOT NULL DEFAULT '[]',
        flags TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL DEFAULT ''
    )""",
    # cost is the merchant's internal cost: stored for completeness, never loaded.
    """CREATE TABLE variants (
        id INTEGER PRIMARY KEY,
        product_handle TEXT NOT NULL REFERENCES products(handle) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        sku TEXT NOT NULL DEFAULT '',
        options TEXT NOT NULL DEFAULT '{}',
        price TEXT NOT NULL,
        compare_at_price TEXT,
        inventory_qty INTEGER,
        inventory_policy TEXT NOT NULL DEFAULT 'deny',
        grams INTEGER,
        barcode TEXT,
        cost TEXT,
        UNIQUE (product_handle, position)
    )""",
    "CREATE INDEX variants_sku ON variants(sku)",
    """CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        source_id TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        channel TEXT NOT NULL DEFAULT '',
        satisfaction TEXT,
        created_at TEXT NOT NULL DEFAULT '',
        human_only INTEGER NOT NULL DEFAULT 0,
        human_only_reason TEXT,
        UNIQUE (source, source_id)
    )""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('customer', 'agent', 'note')),
        text TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL DEFAULT '',
        UNIQUE (ticket_id, position)
    )""",
    """CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        source_file TEXT NOT NULL,
        location TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    )""",
    "CREATE INDEX quarantine_source ON quarantine(source_file)",
    """CREATE TABLE ingest_runs (
        id INTEGER PRIMARY KEY,
        started TEXT NOT NULL,
        report TEXT NOT NULL
    )""",
]


@migration
def m002_retrieval_index(conn: sqlite3.Connection) -> None:
    # Embeddings of active products (kind 'product', key = handle) and of historical
    # tickets (kind 'ticket', label = escalate|answer) for the router's second opinion.
    # content_hash lets a re-index embed only what changed.
    conn.execute(
        """CREATE TABLE index_vectors (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            label TEXT,
            vector BLOB NOT NULL,
            PRIMARY KEY (kind, key)
        )"""
    )
    conn.execute("CREATE TABLE index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migration
def m003_review_queue(conn: sqlite3.Connection) -> None:
    # Every routed ticket with its draft, and an append-only audit of agent actions.
    conn.execute(
        """CREATE TABLE review_tickets (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            model TEXT NOT NULL,
            message TEXT NOT NULL,
            thread TEXT NOT NULL DEFAULT '[]',
            customer TEXT NOT NULL DEFAULT '{}',
            system_prompt TEXT NOT NULL,
            raw_draft TEXT NOT NULL,
            draft TEXT NOT NULL,
            response TEXT NOT NULL,
            confidence TEXT NOT NULL CHECK (confidence IN ('high', 'medium', 'low')),
            escalate INTEGER NOT NULL,
            reasons TEXT NOT NULL DEFAULT '[]',
            sources TEXT NOT NULL DEFAULT '[]',
            signals TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL
                CHECK (status IN ('waiting', 'sent', 'approved', 'edited', 'rejected')),
            final_text TEXT,
            decided_by TEXT,
            decided_at TEXT,
            reject_reason TEXT
        )"""
    )
    conn.execute("CREATE INDEX review_tickets_status ON review_tickets(status, id)")
    conn.execute("CREATE INDEX review_tickets_created ON review_tickets(created)")
    conn.execute(
        """CREATE TABLE review_audit (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES review_tickets(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            before TEXT NOT NULL DEFAULT '{}',
            after TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    conn.execute("CREATE INDEX review_audit_ticket ON review_audit(ticket_id)")


@migration
def m004_ingest_reliability(conn: sqlite3.Connection) -> None:
    # A re-ingest drops earlier rejects of the same record (by location and kind, then
    # reason and raw text) wherever the export was read from.
    conn.execute("CREATE INDEX quarantine_record ON quarantine(location, kind)")


@migration
def m005_review_sessions(conn: sqlite3.Connection) -> None:
    # Review-page logins, server-side so logout, removing an agent or changing their
    # password ends them. token_hash is the SHA-256 of the cookie (the cookie itself is
    # never stored); credential is an HMAC of the agent's password entry at login.
    conn.execute(
        """CREATE TABLE review_sessions (
            token_hash TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            credential TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created TEXT NOT NULL,
            expires INTEGER NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX review_sessions_user ON review_sessions(username)")


@migration
def m006_orders(conn: sqlite3.Connection) -> None:
    # Orders from the store's order export, keyed by the name customers quote ("#1001").
    # email, customer_name and shipping_address are personal data: store.db only, never
    # a dataset (the build checks). updated_at lets an older export leave a newer alone.
    conn.execute(
        """CREATE TABLE orders (
            name TEXT PRIMARY KEY,
            email TEXT NOT NULL DEFAULT '',
            customer_name TEXT NOT NULL DEFAULT '',
            shipping_address TEXT NOT NULL DEFAULT '',
            financial_status TEXT NOT NULL DEFAULT '',
            fulfillment_status TEXT NOT NULL DEFAULT '',
            currency TEXT NOT NULL DEFAULT '',
            total TEXT,
            shipping_method TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL DEFAULT '',
            paid_at TEXT NOT NULL DEFAULT '',
            fulfilled_at TEXT NOT NULL DEFAULT '',
            cancelled_at TEXT NOT NULL DEFAULT '',
            cancel_reason TEXT NOT NULL DEFAULT '',
            refunded_amount TEXT,
            updated_at TEXT NOT NULL DEFAULT '',
            fulfillments TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL DEFAULT ''
        )"""
    )
    conn.execute("CREATE INDEX orders_email ON orders(email COLLATE NOCASE)")
    conn.execute(
        """CREATE TABLE order_lines (
            order_name TEXT NOT NULL REFERENCES orders(name) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            variant_title TEXT NOT NULL DEFAULT '',
            sku TEXT NOT NULL DEFAULT '',
            quantity INTEGER NOT NULL,
            price TEXT,
            fulfillment_status TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (order_name, position)
        )"""
    )
    conn.execute("CREATE INDEX order_lines_sku ON order_lines(sku)")


@migration
def m007_knowledge(conn: sqlite3.Connection) -> None:
    # Help-center articles and their heading chunks (storetune.knowledge). An article is
    # keyed by its source and id there; `origin` is the export it came from, so a
    # re-import of that export removes its articles that are gone. content_hash lets a
    # re-import tell unchanged articles from changed ones; chunks are replaced whole.
    conn.execute(
        """CREATE TABLE knowledge_articles (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            title TEXT NOT NULL,
            url TEXT NOT NULL DEFAULT '',
            locale TEXT NOT NULL DEFAULT '',
            section TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            origin TEXT NOT NULL DEFAULT '',
            UNIQUE (source, source_id)
        )"""
    )
    conn.execute("CREATE INDEX knowledge_articles_origin ON knowledge_articles(origin)")
    conn.execute(
        """CREATE TABLE knowledge_chunks (
            id INTEGER PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES knowledge_articles(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            UNIQUE (article_id, position)
        )"""
    )


@migration
def m008_helpdesk(conn: sqlite3.Connection) -> None:
    # Tickets that arrived from a helpdesk webhook (Zendesk, Gorgias), keyed by the
    # helpdesk's own ticket id so a retried webhook routes the ticket once, and the
    # outbox of requests storetune owes the helpdesk (internal notes, tags, public
    # replies): a row stays until the helpdesk accepted it, so an outage or a restart
    # loses nothing. reply_state: none | queued | posted | from_helpdesk (the agent
    # answered in the helpdesk; storetune must not post a second reply).
    conn.execute(
        """CREATE TABLE helpdesk_tickets (
            helpdesk TEXT NOT NULL,
            external_id TEXT NOT NULL,
            review_ticket_id INTEGER REFERENCES review_tickets(id) ON DELETE SET NULL,
            received TEXT NOT NULL,
            ticket_created TEXT,
            meta TEXT NOT NULL DEFAULT '{}',
            reply_state TEXT NOT NULL DEFAULT 'none',
            PRIMARY KEY (helpdesk, external_id)
        )"""
    )
    conn.execute("CREATE INDEX helpdesk_tickets_review ON helpdesk_tickets(review_ticket_id)")
    conn.execute(
        """CREATE TABLE helpdesk_outbox (
            id INTEGER PRIMARY KEY,
            helpdesk TEXT NOT NULL,
            external_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            body TEXT NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            last_error TEXT,
            sent_at TEXT,
            UNIQUE (helpdesk, external_id, purpose)
        )"""
    )
    conn.execute("CREATE INDEX helpdesk_outbox_due ON helpdesk_outbox(sent_at, next_at)")


@dataclass
class QuarantineItem:
    """One rejected input record, with where it was and why."""

    source_file: str
    location: str  # "line 12", "ticket 35436", "record 3"
    kind: str  # row, product, variant, ticket, message
    reason: str
    raw: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: Path | str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) a store.db and bring its schema up to date.

    check_same_thread=False lets a server share the connection across threads
    (it must then serialise writes itself)."""
    try:
        conn = sqlite3.connect(str(path), check_same_thread=check_same_thread)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")  # readers (serve) never block the writer
        conn.execute("PRAGMA busy_timeout = 5000")
        migrate(conn)
    except sqlite3.DatabaseError as e:  # includes "file is not a database"
        raise StoretuneError(
            f"{path}: can't open the store database ({e})",
            hint="check the path; a damaged store.db can be rebuilt with 'storetune ingest'",
        ) from None
    return conn


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order; return the names applied now."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    conn.commit()
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with transaction(conn):
            fn(conn)
            conn.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, _now()))
        applied.append(fn.__name__)
    return applied


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All-or-nothing block; joins an already open transaction instead of nesting."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


# --- writes -------------------------------------------------------------------------


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def upsert_products(
    conn: sqlite3.Connection,
    products: list[Product],
    costs: dict[str, list[Decimal | None]] | None = None,
    replace: bool = False,
) -> None:
    """Insert or update products with their variants.

    costs maps handle -> per-variant cost (same order as product.variants); it is
    kept apart from Product so cost can never leak into anything built from records.
    replace=True removes products not in the list (a product export is the whole catalog).
    """
    costs = costs or {}
    with transaction(conn):
        if replace:
            keep = {p.handle for p in products}
            gone = [(h,) for (h,) in conn.execute("SELECT handle FROM products") if h not in keep]
            conn.executemany("DELETE FROM products WHERE handle = ?", gone)
        for p in products:
            _upsert_product(conn, p, costs.get(p.handle, []))


def _upsert_product(conn: sqlite3.Connection, p: Product, costs: list[Decimal | None]) -> None:
    conn.execute(
        """INSERT INTO products (handle, title, description, vendor, product_type, category,
               tags, status, published, options, images, flags, source)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(handle) DO UPDATE SET title=excluded.title,
               description=excluded.description, vendor=excluded.vendor,
               product_type=excluded.product_type, category=excluded.category,
               tags=excluded.tags, status=excluded.status, published=excluded.published,
               options=excluded.options, images=excluded.images, flags=excluded.flags,
               source=excluded.source""",
        (
            p.handle,
            p.title,
            p.description,
            p.vendor,
            p.product_type,
            p.category,
            json.dumps(p.tags),
            p.status,
            int(p.published),
            json.dumps(p.options),
            json.dumps(p.images),
            json.dumps(p.flags),
            p.source,
        ),
    )
    conn.execute("DELETE FROM variants WHERE product_handle = ?", (p.handle,))
    conn.executemany(
        """INSERT INTO variants (product_handle, position, sku, options, price,
               compare_at_price, inventory_qty, inventory_policy, grams, barcode, cost)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                p.handle,
                i,
                v.sku,
                json.dumps(v.options),
                str(v.price),
                _dec(v.compare_at_price),
                v.inventory_qty,
                v.inventory_policy,
                v.grams,
                v.barcode,
                _dec(costs[i]) if i < len(costs) else None,
            )
            for i, v in enumerate(p.variants)
        ],
    )


def catalog_change(conn: sqlite3.Connection, products: list[Product]) -> dict[str, int]:
    """What importing products as the whole catalog would do to store.db's active
    catalog: active before and after, products removed, active ones lost."""
    rows = conn.execute("SELECT handle, status = 'active' AND published FROM products").fetchall()
    before = {h for h, active in rows if active}
    after = {p.handle for p in products if p.status == "active" and p.published}
    keep = {p.handle for p in products}
    return {
        "active_before": len(before),
        "active_after": len(after),
        "removed": sum(1 for h, _ in rows if h not in keep),
        "active_lost": len(before - after),
    }


def upsert_ticket(conn: sqlite3.Connection, t: Ticket) -> int:
    """Insert or update a ticket by (source, source_id); its messages are replaced,
    so re-ingesting the same export changes nothing. Returns the ticket row id."""
    with transaction(conn):
        row = conn.execute(
            """INSERT INTO tickets (source, source_id, subject, status, tags, channel,
                   satisfaction, created_at, human_only, human_only_reason)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(source, source_id) DO UPDATE SET subject=excluded.subject,
                   status=excluded.status, tags=excluded.tags, channel=excluded.channel,
                   satisfaction=excluded.satisfaction, created_at=excluded.created_at,
                   human_only=excluded.human_only, human_only_reason=excluded.human_only_reason
               RETURNING id""",
            (
                t.source,
                t.source_id,
                t.subject,
                t.status,
                json.dumps(t.tags),
                t.channel,
                t.satisfaction,
                t.created_at,
                int(t.human_only),
                t.human_only_reason,
            ),
        ).fetchone()
        ticket_id = int(row[0])
        conn.execute("DELETE FROM messages WHERE ticket_id = ?", (ticket_id,))
        conn.executemany(
            """INSERT INTO messages (ticket_id, position, role, text, created_at, author)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [
                (ticket_id, i, m.role, m.text, m.created_at, m.author)
                for i, m in enumerate(t.messages)
            ],
        )
    return ticket_id


def quarantine(
    conn: sqlite3.Connection, source_file: str, location: str, kind: str, reason: str, raw: str
) -> None:
    """Record one rejected input record, its raw text whole."""
    conn.execute(
        """INSERT INTO quarantine (source_file, location, kind, reason, raw, created)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (str(source_file), location, kind, reason, raw or "", _now()),
    )


def quarantine_items(
    conn: sqlite3.Connection, items: list[QuarantineItem], replace_sources: Sequence[str] = ()
) -> None:
    """Store items; earlier entries for replace_sources, and earlier entries for the
    same record (the same export read from another folder), are dropped first so a
    re-ingest does not count its rejects twice."""
    with transaction(conn):
        for src in replace_sources:
            conn.execute("DELETE FROM quarantine WHERE source_file = ?", (str(src),))
        conn.executemany(
            "DELETE FROM quarantine WHERE location = ? AND kind = ? AND reason = ? AND raw = ?",
            [(q.location, q.kind, q.reason, q.raw or "") for q in items],
        )
        for q in items:
            quarantine(conn, q.source_file, q.location, q.kind, q.reason, q.raw)


def record_ingest_run(conn: sqlite3.Connection, started: str, report: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO ingest_runs (started, report) VALUES (?, ?)", (started, json.dumps(report))
    )


# --- reads --------------------------------------------------------------------------


def _opt_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _variant(row: sqlite3.Row) -> Variant:
    return Variant(
        sku=row["sku"],
        options=json.loads(row["options"]),
        price=Decimal(row["price"]),
        compare_at_price=_opt_dec(row["compare_at_price"]),
        inventory_qty=row["inventory_qty"],
        inventory_policy=row["inventory_policy"],
        grams=row["grams"],
        barcode=row["barcode"],
    )


def load_products(
    conn: sqlite3.Connection, active_only: bool = False, handles: Sequence[str] | None = None
) -> list[Product]:
    """Products in ingest order with their variants (never the cost column).

    handles limits the read to those products (retrieval reads a few current rows
    per query instead of the whole catalog)."""
    clauses = ["status = 'active' AND published = 1"] if active_only else []
    params: list[str] = []
    if handles is not None:
        params = list(handles)
        clauses.append(f"handle IN ({','.join('?' * len(params))})")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(f"SELECT * FROM products {where} ORDER BY rowid", params).fetchall()
    vwhere = (
        f"WHERE product_handle IN ({','.join('?' * len(params))})" if handles is not None else ""
    )
    variants: dict[str, list[Variant]] = {}
    for v in conn.execute(
        f"""SELECT product_handle, sku, options, price, compare_at_price, inventory_qty,
                  inventory_policy, grams, barcode
           FROM variants {vwhere} ORDER BY product_handle, position""",
        params,
    ):
        variants.setdefault(v["product_handle"], []).append(_variant(v))
    return [
        Product(
            handle=r["handle"],
            title=r["title"],
            description=r["description"],
            vendor=r["vendor"],
            product_type=r["product_type"],
            category=r["category"],
            tags=json.loads(r["tags"]),
            status=r["status"],
            published=bool(r["published"]),
            options=json.loads(r["options"]),
            variants=variants.get(r["handle"], []),
            images=json.loads(r["images"]),
            flags=json.loads(r["flags"]),
            source=r["source"],
        )
        for r in rows
    ]


def load_tickets(conn: sqlite3.Connection, resolved_only: bool = True) -> list[Ticket]:
    """Tickets with their messages in conversation order (notes included, role 'note')."""
    where = "WHERE status IN ('solved', 'closed')" if resolved_only else ""
    rows = conn.execute(f"SELECT * FROM tickets {where} ORDER BY id").fetchall()
    messages: dict[int, list[Message]] = {}
    for m in conn.execute(
        "SELECT ticket_id, role, text, created_at, author FROM messages "
        "ORDER BY ticket_id, position"
    ):
        messages.setdefault(m["ticket_id"], []).append(
            Message(role=m["role"], text=m["text"], created_at=m["created_at"], author=m["author"])
        )
    return [
        Ticket(
            source_id=r["source_id"],
            source=r["source"],
            subject=r["subject"],
            status=r["status"],
            messages=messages.get(r["id"], []),
            tags=json.loads(r["tags"]),
            channel=r["channel"],
            satisfaction=r["satisfaction"],
            created_at=r["created_at"],
            human_only=bool(r["human_only"]),
            human_only_reason=r["human_only_reason"],
        )
        for r in rows
    ]


_COUNT_QUERIES = {
    "products": "SELECT COUNT(*) FROM products",
    "active_products": "SELECT COUNT(*) FROM products WHERE status = 'active' AND published = 1",
    "variants": "SELECT COUNT(*) FROM variants",
    "tickets": "SELECT COUNT(*) FROM tickets",
    "resolved_tickets": "SELECT COUNT(*) FROM tickets WHERE status IN ('solved', 'closed')",
    "human_only_tickets": "SELECT COUNT(*) FROM tickets WHERE human_only = 1",
    "messages": "SELECT COUNT(*) FROM messages",
    "notes": "SELECT COUNT(*) FROM messages WHERE role = 'note'",
    "quarantine": "SELECT COUNT(*) FROM quarantine",
    "orders": "SELECT COUNT(*) FROM orders",
}


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Row counts a person checks after an ingest."""
    return {name: int(conn.execute(q).fetchone()[0]) for name, q in _COUNT_QUERIES.items()}
