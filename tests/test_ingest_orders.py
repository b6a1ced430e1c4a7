"""Orders ingest: Shopify's orders CSV export and Admin REST order JSON into store.db.

Small exports are written here; the sample store's orders.json is read at the end,
with the check that every order number its tickets mention is an order of that
ticket's requester.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storetune.cli import app
from storetune.demo.catalog_gen import build_catalog
from storetune.demo.orders_gen import mentioned_orders
from storetune.demo.store_gen import _rng, demo_config
from storetune.demo.ticket_gen import Facts, generate_tickets
from storetune.errors import StoretuneError
from storetune.ingest import detect_format, ingest_workspace, read_orders
from storetune.store import db
from storetune.store import orders as order_store
from storetune.workspace import Workspace

HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Currency,Total,"
    "Shipping Method,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,"
    "Lineitem fulfillment status,Billing Name,Shipping Name,Shipping Street,Shipping City,"
    "Cancelled at,Refunded Amount"
)
CSV_ROWS = [
    "#1001,Ana@Example.com,paid,2025-03-01 10:00:00 -0500,fulfilled,2025-03-02 09:00:00 -0500,"
    "USD,120.00,Standard,2025-03-01 09:58:00 -0500,1,Larch 1P Dome Tent,100.00,TENT-1,fulfilled,"
    "Ana Diaz,Ana Diaz,1 Fern St,Portland,,",
    "#1001,,,,,,,,,,2,Wool Hiking Socks,10.00,SOCK-M,fulfilled,,,,,,",
    "#1002,bo@example.org,refunded,,,,USD,10.00,Standard,2025-03-03 09:00:00 -0500,1,"
    "Wool Hiking Socks,10.00,SOCK-M,,Bo Lind,Bo Lind,,,2025-03-03 09:30:00 -0500,10.00",
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def orders_csv(tmp_path: Path, rows=CSV_ROWS, name="orders_export.csv") -> Path:
    return write(tmp_path / name, "\n".join([HEADER, *rows]) + "\n")


def api_order(name="#2001", updated="2025-04-03T10:00:00-04:00", **extra) -> dict:
    order = {
        "id": 450789469,
        "name": name,
        "email": "cy@example.com",
        "created_at": "2025-04-01T09:00:00-04:00",
        "updated_at": updated,
        "financial_status": "partially_refunded",
        "fulfillment_status": "partial",
        "currency": "USD",
        "total_price": "149.00",
        "customer": {"first_name": "Cy", "last_name": "Moss", "email": "cy@example.com"},
        "shipping_address": {"name": "Cy Moss", "address1": "9 Elm Rd", "city": "Bend"},
        "shipping_lines": [{"title": "Standard"}],
        "line_items": [
            {"title": "Talus Rain Jacket", "variant_title": "M", "sku": "J-M", "quantity": 1,
             "price": "129.00", "fulfillment_status": "fulfilled"},
            {"title": "Camp Mug", "sku": "MUG", "quantity": 2, "price": "10.00",
             "fulfillment_status": None},
        ],
        "fulfillments": [
            {"status": "success", "created_at": "2025-04-02T12:00:00-04:00",
             "updated_at": "2025-04-04T12:00:00-04:00", "tracking_company": "USPS",
             "tracking_number": "9400111899223197428490",
             "tracking_url": "https://tools.usps.com/go/TrackConfirmAction?tLabels=94001",
             "shipment_status": "delivered", "line_items": [{"title": "Talus Rain Jacket"}]},
        ],
        "refunds": [{"transactions": [{"kind": "refund", "status": "success", "amount": "20.00"}]}],
    }  # fmt: skip
    return {**order, **extra}


def orders_json(tmp_path: Path, orders: list[dict], name="orders.json") -> Path:
    return write(tmp_path / name, json.dumps({"orders": orders}))


def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "store.yaml").write_text("brand:\n  name: Test Store\n  voice: plain\n")
    return Workspace(root)


def test_detect_order_exports(tmp_path):
    assert detect_format(orders_csv(tmp_path)) == "shopify_orders_csv"
    assert detect_format(orders_json(tmp_path, [api_order()])) == "shopify_orders_json"


def test_csv_export_groups_line_items_into_orders(tmp_path):
    book = read_orders(orders_csv(tmp_path))
    assert book.counts["order"] == {"read": 2, "accepted": 2, "quarantined": 0}
    first, second = book.orders
    assert (first.name, first.email, first.financial_status) == ("#1001", "ana@example.com", "paid")
    assert [(ln.title, ln.quantity, ln.sku) for ln in first.lines] == [
        ("Larch 1P Dome Tent", 1, "TENT-1"),
        ("Wool Hiking Socks", 2, "SOCK-M"),
    ]
    assert first.created_at == "2025-03-01T14:58:00Z"  # -0500 read as UTC
    assert first.fulfillments[0].created_at == "2025-03-02T14:00:00Z"
    assert second.cancelled_at == "2025-03-03T14:30:00Z"
    assert second.refunded_amount == Decimal("10.00") and not second.fulfillments


def test_api_json_reads_fulfillments_tracking_and_refunds(tmp_path):
    book = read_orders(orders_json(tmp_path, [api_order()]))
    (o,) = book.orders
    (f,) = o.fulfillments
    assert (f.tracking_company, f.tracking_number, f.shipment_status) == (
        "USPS",
        "9400111899223197428490",
        "delivered",
    )
    assert f.tracking_url.startswith("https://tools.usps.com/") and f.delivered_at == (
        "2025-04-04T16:00:00Z"
    )
    assert o.refunded_amount == Decimal("20.00") and o.customer_name == "Cy Moss"
    assert [ln.fulfillment_status for ln in o.lines] == ["fulfilled", ""]


def test_bad_rows_quarantine_the_whole_order_with_file_line_and_field(tmp_path):
    rows = [
        *CSV_ROWS,
        "#1003,cy@example.com,paid,,,,USD,5.00,Standard,2025-03-04 09:00:00,1,Camp Mug,5.00,MUG,,,,,,,",
        "#1003,,,,,,,,,,two,Camp Mug,5.00,MUG,,,,,,,",  # the second line item is unusable
        "#1004,dee@example.com,paid,,,,USD,5.00,Standard,yesterday,1,Camp Mug,5.00,MUG,,,,,,,",
        ",x@example.com,paid,,,,USD,5.00,Standard,,1,Camp Mug,5.00,MUG,,,,,,,",
        "#1005,eve@example.com,paid",  # cut off
    ]
    path = orders_csv(tmp_path, rows)
    book = read_orders(path)
    assert [o.name for o in book.orders] == ["#1001", "#1002"]
    reasons = {q.location: q.reason for q in book.quarantine}
    assert reasons["line 6"] == (
        "order #1003: line 6: field 'Lineitem quantity': 'two' is not a quantity "
        "(a whole number ≥ 1)"
    )
    assert "line 5" in reasons  # the order's good row goes with it: no half order
    assert "field 'Created At': 'yesterday' is not a date" in reasons["line 7"]
    assert reasons["line 8"] == "field 'Name': the row has no order name"
    assert "cut off" in reasons["line 9"]
    assert all(q.source_file == str(path) and q.raw for q in book.quarantine)
    counts = book.counts
    for kind in ("row", "order"):
        assert counts[kind]["read"] == counts[kind]["accepted"] + counts[kind]["quarantined"]
    assert counts["row"]["quarantined"] == 5


def test_bad_json_records_are_quarantined_by_record_and_field(tmp_path):
    bad_qty = api_order("#2002")
    bad_qty["line_items"][1]["quantity"] = -1
    no_name = api_order("")
    no_name.pop("name")
    book = read_orders(orders_json(tmp_path, [api_order(), bad_qty, no_name, "junk"]))
    assert [o.name for o in book.orders] == ["#2001"]
    reasons = {q.location: q.reason for q in book.quarantine}
    assert "field 'line_items[1].quantity'" in reasons["record 2"]
    assert reasons["record 3"] == "field 'name': the order has no name (nor order_number)"
    assert reasons["record 4"] == "not an order object"
    assert book.counts["order"] == {"read": 4, "accepted": 1, "quarantined": 3}


def test_a_file_that_is_no_orders_export_is_one_clear_error(tmp_path):
    path = write(tmp_path / "o.csv", "Name,Email,Financial Status\n#1,a@example.com,paid\n")
    with pytest.raises(StoretuneError, match=r"o\.csv line 1: not a Shopify orders CSV .*"
                                              r"'Lineitem name'"):  # fmt: skip
        read_orders(path)
    products = write(tmp_path / "p.csv", "Handle,Title,Variant Price\nx,X,1\n")
    with pytest.raises(StoretuneError, match="shopify_csv export, not a Shopify orders export"):
        read_orders(products)
    cut = write(tmp_path / "cut.json", json.dumps({"orders": [api_order()]})[:-40])
    with pytest.raises(StoretuneError, match=r"cut\.json line 1: not valid JSON"):
        read_orders(cut)


def test_ingest_upserts_by_name_and_an_older_export_never_wins(tmp_path):
    ws = workspace(tmp_path)
    path = orders_json(tmp_path, [api_order()])
    first = ingest_workspace(ws, orders=path, progress=False)
    assert first.source("orders").upserts == {"inserted": 1, "updated": 0, "kept_newer": 0}
    again = ingest_workspace(ws, orders=path, progress=False)
    assert again.db_counts == first.db_counts and again.reconciles
    newer = api_order(updated="2025-04-09T10:00:00-04:00", financial_status="refunded")
    ingest_workspace(ws, orders=orders_json(tmp_path, [newer], "new.json"), progress=False)
    older = api_order(updated="2025-04-02T10:00:00-04:00", financial_status="pending")
    report = ingest_workspace(ws, orders=orders_json(tmp_path, [older], "old.json"), progress=False)
    assert report.source("orders").upserts["kept_newer"] == 1
    conn = db.connect(ws.db_path)
    try:
        stored = order_store.load_order(conn, "2001")
        assert stored.financial_status == "refunded" and len(stored.lines) == 2
        assert db.counts(conn)["orders"] == 1
    finally:
        conn.close()


def test_cli_ingest_orders_reports_and_keeps_counts(tmp_path):
    ws = workspace(tmp_path)
    rows = [*CSV_ROWS, "#1009,z@example.com,paid,,,,USD,1,Std,2025-01-01,x,Mug,1,M,,,,,,,"]
    path = orders_csv(tmp_path, rows)
    result = CliRunner().invoke(app, ["-w", str(ws.root), "ingest", "--orders", str(path)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "2 orders" in out and "line 5: order #1009: line 5: field 'Lineitem quantity'" in out
    saved = json.loads((ws.reports_dir / "ingest.json").read_text())
    assert saved["sources"][0]["format"] == "shopify_orders_csv" and saved["reconciles"]
    conn = db.connect(ws.db_path)
    try:
        row = conn.execute("SELECT COUNT(*) FROM quarantine WHERE kind = 'row'").fetchone()
        assert row[0] == 1
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory) -> Path:
    from test_retrieval import indexed_store_template

    return indexed_store_template()  # seed 2, 40 products, 150 tickets, already ingested


def test_sample_store_orders_match_the_tickets_that_mention_them(sample_store):
    # the template was ingested from its store.yaml, which names orders.json
    report = json.loads((sample_store / "reports" / "ingest.json").read_text())
    (orders,) = [s for s in report["sources"] if s["name"] == "orders"]
    assert orders["format"] == "shopify_orders_json" and orders["reconciles"]
    assert orders["counts"]["order"]["quarantined"] == 0 and report["db_counts"]["orders"] >= 20
    cfg = demo_config(2)
    products = build_catalog(_rng(2, "catalog"), 40)
    ts = generate_tickets(_rng(2, "tickets"), Facts.from_config(cfg), products, 150)
    claims = mentioned_orders(ts)
    assert len(claims) >= 10
    conn = db.connect(sample_store / "store.db")
    try:
        for number, claim in claims.items():
            order = order_store.load_order(conn, f"#{number}")
            assert order is not None and order.email == claim.person.email.lower()
    finally:
        conn.close()
