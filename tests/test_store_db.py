"""store.db: migrations, round trips, idempotent upserts, all-or-nothing writes."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from storetune.errors import StoretuneError
from storetune.store import db
from storetune.store.records import Message, Product, Ticket, Variant


def _product(handle: str = "trail-jacket", price: str = "129.00") -> Product:
    return Product(
        handle=handle,
        title="Trail Jacket",
        description="Waterproof shell.",
        tags=["rain", "shell"],
        options=["Size", "Color"],
        variants=[
            Variant(
                sku="CS-JKT-0012-M-BLK",
                options={"Size": "M", "Color": "Black"},
                price=Decimal(price),
                compare_at_price=Decimal("149.00"),
                inventory_qty=3,
                barcode="0012345678905",
            ),
            Variant(
                sku="CS-JKT-0012-L-BLK",
                options={"Size": "L", "Color": "Black"},
                price=Decimal(price),
            ),
        ],
        images=["https://cdn.example.com/a.jpg"],
        flags=["boilerplate"],
        source="products.csv",
    )


def _ticket(source_id: str = "1", status: str = "solved", n: int = 2) -> Ticket:
    messages = [
        Message(
            role="customer" if i % 2 == 0 else "agent",
            text=f"message {i}",
            created_at=f"2025-03-0{i + 1}T10:00:00Z",
            author="customer",
        )
        for i in range(n)
    ]
    return Ticket(
        source_id=source_id,
        source="zendesk",
        subject="Where is my order?",
        status=status,
        messages=messages,
        tags=["shipping"],
        channel="email",
        satisfaction="good",
        created_at="2025-03-01T10:00:00Z",
    )


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_apply_once_in_order_on_memory_db():
    conn = db.connect(":memory:")
    names = [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [fn.__name__ for fn in db.MIGRATIONS]
    assert {"products", "variants", "tickets", "messages", "quarantine", "ingest_runs"} <= _tables(
        conn
    )
    assert db.migrate(conn) == []  # idempotent: nothing left to apply
    assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(db.MIGRATIONS)


def test_failed_migration_rolls_back_and_is_retried(monkeypatch):
    conn = db.connect(":memory:")

    def m999_broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError):
        db.migrate(conn)
    assert "half_done" not in _tables(conn)
    assert "m999_broken" not in {r[0] for r in conn.execute("SELECT name FROM _migrations")}


def test_file_db_uses_wal_and_foreign_keys(tmp_path):
    conn = db.connect(tmp_path / "store.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    conn.close()
    again = db.connect(tmp_path / "store.db")  # reopening applies nothing new
    assert db.migrate(again) == []


def test_a_file_that_is_not_a_database_is_a_user_error(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoretuneError, match="store.db: can't open"):
        db.connect(path)


def test_products_round_trip_with_decimal_prices_and_no_cost():
    conn = db.connect(":memory:")
    db.upsert_products(conn, [_product()], costs={"trail-jacket": [Decimal("51.20"), None]})
    (p,) = db.load_products(conn)
    assert p == _product()
    assert isinstance(p.variants[0].price, Decimal)
    assert p.variants[0].price == Decimal("129.00")
    assert not hasattr(p.variants[0], "cost")
    stored = [r[0] for r in conn.execute("SELECT cost FROM variants ORDER BY position")]
    assert stored == ["51.20", None]


def test_upsert_products_updates_and_replace_removes_missing():
    conn = db.connect(":memory:")
    db.upsert_products(conn, [_product("a"), _product("b")])
    db.upsert_products(conn, [_product("a", price="99.00")])
    assert [p.handle for p in db.load_products(conn)] == ["a", "b"]
    assert db.load_products(conn)[0].variants[0].price == Decimal("99.00")
    assert db.counts(conn)["variants"] == 4  # variants replaced, not appended
    db.upsert_products(conn, [_product("b")], replace=True)
    assert [p.handle for p in db.load_products(conn)] == ["b"]
    assert db.counts(conn)["variants"] == 2  # cascade removed a's variants


def test_load_products_active_only():
    conn = db.connect(":memory:")
    draft = _product("draft-one")
    draft.status = "draft"
    hidden = _product("hidden-one")
    hidden.published = False
    db.upsert_products(conn, [_product("live"), draft, hidden])
    assert [p.handle for p in db.load_products(conn, active_only=True)] == ["live"]
    assert db.counts(conn)["active_products"] == 1


def test_upsert_ticket_is_idempotent_and_replaces_messages():
    conn = db.connect(":memory:")
    first = db.upsert_ticket(conn, _ticket(n=3))
    second = db.upsert_ticket(conn, _ticket(n=2))
    assert first == second  # same row: other tables may point at it
    (t,) = db.load_tickets(conn)
    assert [m.text for m in t.messages] == ["message 0", "message 1"]
    assert db.counts(conn)["messages"] == 2


def test_load_tickets_resolved_only_and_message_order():
    conn = db.connect(":memory:")
    db.upsert_ticket(conn, _ticket("1", "solved", n=4))
    db.upsert_ticket(conn, _ticket("2", "open"))
    db.upsert_ticket(conn, _ticket("3", "closed"))
    assert [t.source_id for t in db.load_tickets(conn)] == ["1", "3"]
    assert len(db.load_tickets(conn, resolved_only=False)) == 3
    t = db.load_tickets(conn)[0]
    assert [m.text for m in t.messages] == [f"message {i}" for i in range(4)]
    assert t.tags == ["shipping"] and t.satisfaction == "good"


def test_quarantine_keeps_the_raw_record_whole():
    # issue 16 item 7: nothing is lost, not even past 2 KB
    conn = db.connect(":memory:")
    db.quarantine(conn, "products.csv", "line 7", "row", "unparsable price", "é" * 5000)
    raw, location = conn.execute("SELECT raw, location FROM quarantine").fetchone()
    assert raw == "é" * 5000
    assert location == "line 7"


def test_quarantine_items_replace_earlier_entries_for_the_same_file():
    conn = db.connect(":memory:")
    item = db.QuarantineItem("a.csv", "line 2", "row", "no handle", "x")
    db.quarantine_items(conn, [item, item])
    db.quarantine_items(conn, [item], replace_sources=["a.csv"])
    assert db.counts(conn)["quarantine"] == 1


def test_transaction_is_all_or_nothing():
    conn = db.connect(":memory:")
    with pytest.raises(ValueError), db.transaction(conn):
        db.upsert_products(conn, [_product()])
        db.upsert_ticket(conn, _ticket())
        raise ValueError("reader failed half-way")
    assert db.counts(conn)["products"] == 0
    assert db.counts(conn)["tickets"] == 0


def test_messages_role_is_checked():
    conn = db.connect(":memory:")
    bad = _ticket()
    bad.messages[0].role = "bot"
    with pytest.raises(sqlite3.IntegrityError):
        db.upsert_ticket(conn, bad)
    assert db.counts(conn)["tickets"] == 0
