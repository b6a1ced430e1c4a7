"""Orders in store.db: upsert by order name, lookup, and what purchases say.

Orders carry personal data (email, name, address). Only two readers ever see them:
serving's order lookup, which hands a verified requester their own order, and the
build's leak check, which makes sure no real order value reaches a dataset.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import asdict
from decimal import Decimal

from storetune.store.db import transaction
from storetune.store.records import Fulfillment, Order, OrderLine


def normalize_name(name: str) -> str:
    """The key an order is stored and looked up by: "#1001", "1001" and "# 1001" agree."""
    core = "".join(name.split()).lstrip("#").upper()
    return f"#{core}" if core else ""


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def upsert_orders(conn: sqlite3.Connection, orders: list[Order]) -> dict[str, int]:
    """Insert or replace orders by name (lines and shipments replaced whole), so a newer
    export updates them and re-importing one changes nothing. An order whose stored copy
    has a later `updated_at` than the incoming one is kept: an older export can't undo a
    refund. Returns counts: inserted, updated, kept_newer."""
    counts = Counter(inserted=0, updated=0, kept_newer=0)
    with transaction(conn):
        for o in orders:
            row = conn.execute("SELECT updated_at FROM orders WHERE name = ?", (o.name,)).fetchone()
            if row is not None and row[0] and o.updated_at and row[0] > o.updated_at:
                counts["kept_newer"] += 1
                continue
            counts["updated" if row is not None else "inserted"] += 1
            _write(conn, o)
    return dict(counts)


def _write(conn: sqlite3.Connection, o: Order) -> None:
    conn.execute("DELETE FROM orders WHERE name = ?", (o.name,))  # cascades to its lines
    conn.execute(
        """INSERT INTO orders (name, email, customer_name, shipping_address, financial_status,
               fulfillment_status, currency, total, shipping_method, created_at, paid_at,
               fulfilled_at, cancelled_at, cancel_reason, refunded_amount, updated_at,
               fulfillments, source)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            o.name,
            o.email,
            o.customer_name,
            o.shipping_address,
            o.financial_status,
            o.fulfillment_status,
            o.currency,
            _dec(o.total),
            o.shipping_method,
            o.created_at,
            o.paid_at,
            o.fulfilled_at,
            o.cancelled_at,
            o.cancel_reason,
            _dec(o.refunded_amount),
            o.updated_at,
            json.dumps([asdict(f) for f in o.fulfillments], ensure_ascii=False),
            o.source,
        ),
    )
    conn.executemany(
        """INSERT INTO order_lines (order_name, position, title, variant_title, sku, quantity,
               price, fulfillment_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            (
                o.name,
                i,
                ln.title,
                ln.variant_title,
                ln.sku,
                ln.quantity,
                _dec(ln.price),
                ln.fulfillment_status,
            )
            for i, ln in enumerate(o.lines)
        ],  # fmt: skip
    )


def _opt(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def load_order(conn: sqlite3.Connection, name: str) -> Order | None:
    """The order of that name (any spelling normalize_name accepts), or None."""
    key = normalize_name(name)
    row = conn.execute("SELECT * FROM orders WHERE name = ?", (key,)).fetchone()
    if row is None:
        return None
    lines = [
        OrderLine(
            title=r["title"],
            quantity=r["quantity"],
            price=_opt(r["price"]),
            sku=r["sku"],
            variant_title=r["variant_title"],
            fulfillment_status=r["fulfillment_status"],
        )
        for r in conn.execute(
            "SELECT * FROM order_lines WHERE order_name = ? ORDER BY position", (key,)
        )
    ]
    fields = {k: row[k] for k in row.keys() if k not in ("fulfillments",)}
    fields["total"] = _opt(fields["total"])
    fields["refunded_amount"] = _opt(fields["refunded_amount"])
    shipments = [Fulfillment(**f) for f in json.loads(row["fulfillments"])]
    return Order(**fields, lines=lines, fulfillments=shipments)


def has_orders(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM orders LIMIT 1").fetchone() is not None


def order_values(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Every real order number, email and tracking number in store.db, for the build's
    check that none reaches a dataset."""
    names, emails, tracking = set(), set(), set()
    for name, email, shipments in conn.execute("SELECT name, email, fulfillments FROM orders"):
        names.add(name)
        if email:
            emails.add(email.lower())
        tracking.update(f["tracking_number"] for f in json.loads(shipments) if f["tracking_number"])
    return {"order_number": names, "email": emails, "tracking_number": tracking}


def purchases(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Per order (cancelled ones left out: nobody kept them), the SKUs and titles bought."""
    rows = conn.execute(
        """SELECT l.order_name, l.sku, l.title FROM order_lines l
           JOIN orders o ON o.name = l.order_name WHERE o.cancelled_at = ''"""
    )
    out: dict[str, set[str]] = {}
    for name, sku, title in rows:
        out.setdefault(name, set()).add(sku or f"title:{title.lower()}")
    return out


def bought_by(conn: sqlite3.Connection, email: str) -> list[str]:
    """SKUs (or "title:…") a customer bought, newest order first; cancelled ones left out."""
    rows = conn.execute(
        """SELECT l.sku, l.title FROM order_lines l JOIN orders o ON o.name = l.order_name
           WHERE o.email = ? COLLATE NOCASE AND o.cancelled_at = ''
           ORDER BY o.created_at DESC, l.position""",
        (email.strip(),),
    )
    return list(dict.fromkeys(sku or f"title:{title.lower()}" for sku, title in rows))
