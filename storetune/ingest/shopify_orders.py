"""Shopify orders: the admin's orders CSV export and Admin REST order JSON.

The CSV (Orders → Export) has one row per line item; the first row of an order
carries its order fields (Email, Financial Status, Fulfillment Status, Created at…),
later rows only the Lineitem columns. It has no tracking numbers; the optional
columns 'Tracking Number', 'Tracking Company' and 'Tracking URL' (written by export
apps) are read when present. The JSON is `{"orders": [...]}`, `{"order": {...}}`, a
list, or JSON Lines of these, with `line_items`, `fulfillments` (tracking_company,
tracking_number, tracking_url, shipment_status) and `refunds`.

An order with any unusable row or field goes to the quarantine whole, with the
file, line or record and field in its reason: a card must never show half an order.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from storetune.errors import StoretuneError
from storetune.ingest.shopify_csv import RowError, clean_id, parse_money, read_text
from storetune.ingest.shopify_json import load_json_records
from storetune.store.db import QuarantineItem
from storetune.store.orders import normalize_name
from storetune.store.records import Fulfillment, Order, OrderLine

ORDERS_HINT = (
    "export them from Shopify admin: Orders → Export → CSV, or the Admin API's orders.json"
)
MAX_QUANTITY = 10**6

# canonical field -> header names (lower-case) of Shopify's orders CSV export
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "email": ("email",),
    "financial_status": ("financial status",),
    "paid_at": ("paid at",),
    "fulfillment_status": ("fulfillment status",),
    "fulfilled_at": ("fulfilled at",),
    "currency": ("currency",),
    "total": ("total",),
    "shipping_method": ("shipping method",),
    "created_at": ("created at",),
    "quantity": ("lineitem quantity",),
    "title": ("lineitem name",),
    "price": ("lineitem price",),
    "sku": ("lineitem sku",),
    "line_status": ("lineitem fulfillment status",),
    "billing_name": ("billing name",),
    "shipping_name": ("shipping name",),
    "shipping_street": ("shipping street", "shipping address1"),
    "shipping_city": ("shipping city",),
    "shipping_zip": ("shipping zip",),
    "shipping_province": ("shipping province",),
    "shipping_country": ("shipping country",),
    "cancelled_at": ("cancelled at",),
    "refunded": ("refunded amount",),
    "tracking_number": ("tracking number",),
    "tracking_company": ("tracking company",),
    "tracking_url": ("tracking url",),
}
# Fields only an order's first row carries; two rows disagreeing on one is no export.
_ORDER_FIELDS = ("email", "financial_status", "fulfillment_status", "created_at", "total")
_DATES = ("created_at", "paid_at", "fulfilled_at", "cancelled_at")
_DATE = re.compile(
    r"(?P<d>\d{4}-\d{2}-\d{2})(?:[ T](?P<t>\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?\s*"
    r"(?P<z>Z|[+-]\d{2}:?\d{2})?)?"
)


@dataclass
class OrderBook:
    """Everything read from one orders export, before it is written to store.db."""

    path: Path
    format: str
    orders: list[Order] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # the files read (a directory has several)

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(kind, Counter(read=0, accepted=0, quarantined=0))[outcome] += n

    def reject(self, kind: str, location: str, reason: str, raw: str) -> None:
        self.quarantine.append(QuarantineItem(str(self.path), location, kind, reason, raw))
        self.count(kind, "quarantined")


# --- values -----------------------------------------------------------------------------


def parse_date(value: Any, label: str) -> str:
    """An ISO timestamp in UTC ("2025-03-04T17:02:11Z"), "" for none; RowError naming the
    field for anything else (exports write "2025-03-04 12:02:11 -0500")."""
    s = str(value or "").strip()
    if not s:
        return ""
    m = _DATE.fullmatch(s)
    if not m:
        raise RowError(f"field '{label}': {s[:40]!r} is not a date")
    zone = m["z"] or "Z"
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    clock = m["t"] or "00:00"
    clock = clock if clock.count(":") == 2 else f"{clock}:00"
    try:
        when = datetime.fromisoformat(f"{m['d']}T{clock}{zone}")
    except ValueError:
        raise RowError(f"field '{label}': {s[:40]!r} is not a date") from None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_quantity(value: Any, label: str) -> int:
    s = clean_id(str(value if value is not None else ""))
    if not re.fullmatch(r"\d{1,7}", s) or not 0 < int(s) <= MAX_QUANTITY:
        raise RowError(f"field '{label}': {s[:20]!r} is not a quantity (a whole number ≥ 1)")
    return int(s)


def _money(value: Any, label: str) -> Decimal | None:
    return parse_money(str(value if value is not None else ""), label)


def _status(value: Any) -> str:
    return str(value or "").strip().lower().replace(" ", "_")


# --- CSV ------------------------------------------------------------------------------------


def _index(path: Path, header: list[str]) -> dict[str, int]:
    names: dict[str, int] = {}
    for i, name in enumerate(header):
        names.setdefault(name.strip().lower(), i)
    index = {k: names[a] for k, aliases in COLUMNS.items() for a in aliases if a in names}
    for key, label in (
        ("name", "Name"),
        ("title", "Lineitem name"),
        ("quantity", "Lineitem quantity"),
    ):
        if key not in index:
            raise StoretuneError(
                f"{path} line 1: not a Shopify orders CSV (no '{label}' column)",
                hint=ORDERS_HINT,
            )
    return index


@dataclass
class _Row:
    line: int
    cells: list[str]
    index: dict[str, int]

    def get(self, key: str) -> str:
        i = self.index.get(key)
        return self.cells[i].strip() if i is not None and i < len(self.cells) else ""

    def raw(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(self.cells)
        return buf.getvalue()


def _csv_records(path: Path, text: str):
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    last = 0
    try:
        for cells in reader:
            yield last + 1, cells
            last = reader.line_num
    except csv.Error as e:
        raise StoretuneError(
            f"{path} line {reader.line_num}: malformed CSV ({e})",
            hint="check for an unclosed quote; " + ORDERS_HINT,
        ) from None


def read_orders_csv(path: Path | str) -> OrderBook:
    """Orders from Shopify's orders CSV export; see the module docstring."""
    path = Path(path)
    records = _csv_records(path, read_text(path))
    first = next(records, None)
    if first is None:
        raise StoretuneError(f"{path}: file is empty", hint=ORDERS_HINT)
    index = _index(path, first[1])
    book = OrderBook(path, "shopify_orders_csv", files=[str(path)])
    book.count("row", "read", 0)
    book.count("order", "read", 0)
    groups: dict[str, list[_Row]] = {}
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # a blank line is not a record
        book.count("row", "read")
        row = _Row(line, cells, index)
        if len(cells) < len(first[1]):
            reason = f"row has {len(cells)} of the header's {len(first[1])} columns (cut off?)"
            book.reject("row", f"line {line}", reason, row.raw())
        elif not normalize_name(row.get("name")):
            book.reject("row", f"line {line}", "field 'Name': the row has no order name", row.raw())
        else:
            groups.setdefault(normalize_name(row.get("name")), []).append(row)
    for name, rows in groups.items():
        _csv_order(book, name, rows)
    return book


def _csv_order(book: OrderBook, name: str, rows: list[_Row]) -> None:
    book.count("order", "read")
    try:
        order = _order_from_rows(name, rows, str(book.path))
    except RowError as e:
        for row in rows:
            book.reject("row", f"line {row.line}", f"order {name}: {e}", row.raw())
        book.count("order", "quarantined")
        return
    book.orders.append(order)
    book.count("row", "accepted", len(rows))
    book.count("order", "accepted")


def _order_fields(rows: list[_Row]) -> dict[str, str]:
    """Each order-level field from the rows that carry it; RowError on disagreement."""
    out: dict[str, str] = {}
    for key in COLUMNS:
        if key in ("quantity", "title", "price", "sku", "line_status"):
            continue
        values = {r.get(key): r.line for r in rows if r.get(key)}
        if len(values) > 1 and key in _ORDER_FIELDS:
            lines = ", ".join(str(n) for n in sorted(values.values()))
            raise RowError(f"rows (lines {lines}) disagree on field '{_label(key)}'")
        out[key] = next(iter(values), "")
    return out


def _label(key: str) -> str:
    return COLUMNS[key][0].title().replace("Url", "URL")


def _order_from_rows(name: str, rows: list[_Row], source: str) -> Order:
    f = _order_fields(rows)
    lines = []
    for r in rows:
        try:
            lines.append(_csv_line(r))
        except RowError as e:
            raise RowError(f"line {r.line}: {e}") from None
    dates = {k: parse_date(f[k], _label(k)) for k in _DATES}
    address = ", ".join(
        x for x in (f[k] for k in ("shipping_street", "shipping_city", "shipping_province",
                                   "shipping_zip", "shipping_country")) if x
    )  # fmt: skip
    shipped = bool(dates["fulfilled_at"] or f["tracking_number"])
    shipment = Fulfillment(
        status="success",
        tracking_company=f["tracking_company"],
        tracking_number=clean_id(f["tracking_number"]),
        tracking_url=f["tracking_url"],
        created_at=dates["fulfilled_at"],
    )
    return Order(
        name=name,
        email=f["email"].lower(),
        customer_name=f["shipping_name"] or f["billing_name"],
        shipping_address=address,
        financial_status=_status(f["financial_status"]),
        fulfillment_status=_status(f["fulfillment_status"]),
        currency=f["currency"].upper(),
        total=_money(f["total"], "Total"),
        shipping_method=f["shipping_method"],
        refunded_amount=_money(f["refunded"], "Refunded Amount"),
        lines=lines,
        fulfillments=[shipment] if shipped else [],
        source=source,
        **dates,
    )


def _csv_line(r: _Row) -> OrderLine:
    title = r.get("title")
    if not title:
        raise RowError("field 'Lineitem name' is empty")
    return OrderLine(
        title=title,
        quantity=parse_quantity(r.get("quantity"), "Lineitem quantity"),
        price=_money(r.get("price"), "Lineitem price"),
        sku=clean_id(r.get("sku")),
        fulfillment_status=_status(r.get("line_status")),
    )


# --- JSON -----------------------------------------------------------------------------------


def _order_dicts(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [o for item in value for o in _order_dicts(item)]
    if isinstance(value, dict):
        if isinstance(value.get("orders"), list):
            return list(value["orders"])
        if isinstance(value.get("order"), dict):
            return [value["order"]]
    return [value]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _raw(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def read_orders_json(path: Path | str) -> OrderBook:
    """Orders from Admin REST order JSON; see the module docstring."""
    path = Path(path)
    book = OrderBook(path, "shopify_orders_json", files=[str(path)])
    book.count("order", "read", 0)
    records = _order_dicts(load_json_records(path))
    if not records:
        raise StoretuneError(f"{path}: no orders in it", hint=ORDERS_HINT)
    kept: dict[str, tuple[int, str, Any]] = {}  # name -> (index in book.orders, where, raw)
    for n, obj in enumerate(records, 1):
        book.count("order", "read")
        where = f"record {n}"
        try:
            if not isinstance(obj, dict):
                raise RowError("not an order object")
            order = _json_order(obj, str(path))
        except RowError as e:
            book.reject("order", where, str(e), _raw(obj))
            continue
        _keep_latest(book, kept, order, where, obj)
    return book


def _keep_latest(
    book: OrderBook, kept: dict[str, tuple[int, str, Any]], order: Order, where: str, obj: Any
) -> None:
    """One order per name: a second record of it (pages that overlap) keeps the newer
    copy and quarantines the older, so the counts still reconcile."""
    if order.name not in kept:
        kept[order.name] = (len(book.orders), where, obj)
        book.orders.append(order)
        book.count("order", "accepted")
        return
    i, first, first_obj = kept[order.name]
    if order.updated_at > book.orders[i].updated_at:
        book.orders[i] = order
        kept[order.name] = (i, where, obj)
        reason = f"order {order.name}: an older copy of {where}, which is kept"
        book.reject("order", first, reason, _raw(first_obj))
    else:
        reason = f"order {order.name}: duplicate of {first}, which is as new or newer"
        book.reject("order", where, reason, _raw(obj))


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def _json_order(o: dict[str, Any], source: str) -> Order:
    name = normalize_name(_text(o, "name") or _text(o, "order_number"))
    if not name:
        raise RowError("field 'name': the order has no name (nor order_number)")
    customer = o.get("customer") if isinstance(o.get("customer"), dict) else {}
    ship = o.get("shipping_address") if isinstance(o.get("shipping_address"), dict) else {}
    email = _text(o, "email") or _text(o, "contact_email") or _text(customer, "email")
    lines = [_json_line(x, i) for i, x in enumerate(_list(o.get("line_items")))]
    if not lines:
        raise RowError(f"order {name}: field 'line_items' is empty")
    shipments = [_json_fulfillment(f, i) for i, f in enumerate(_list(o.get("fulfillments")))]
    shipping = [s for s in _list(o.get("shipping_lines")) if isinstance(s, dict)]
    return Order(
        name=name,
        email=email.lower(),
        customer_name=_text(ship, "name")
        or " ".join(x for x in (_text(customer, "first_name"), _text(customer, "last_name")) if x),
        shipping_address=", ".join(
            x
            for x in (
                _text(ship, k)
                for k in ("address1", "address2", "city", "province_code", "zip", "country_code")
            )
            if x
        ),  # fmt: skip
        financial_status=_status(o.get("financial_status")),
        fulfillment_status=_status(o.get("fulfillment_status")),
        currency=_text(o, "currency").upper(),
        total=_field_money(o, "total_price", name),
        shipping_method=_text(shipping[0], "title") if shipping else "",
        created_at=_field_date(o, "created_at", name),
        paid_at=_field_date(o, "processed_at", name) if o.get("financial_status") == "paid" else "",
        fulfilled_at=max((f.created_at for f in shipments), default=""),
        cancelled_at=_field_date(o, "cancelled_at", name),
        cancel_reason=_text(o, "cancel_reason"),
        refunded_amount=_refunded(o, name),
        updated_at=_field_date(o, "updated_at", name),
        lines=lines,
        fulfillments=[f for f in shipments if f.status not in ("cancelled", "error", "failure")],
        source=source,
    )


def _field_date(obj: dict[str, Any], key: str, where: str) -> str:
    try:
        return parse_date(obj.get(key), key)
    except RowError as e:
        raise RowError(f"order {where}: {e}") from None


def _field_money(obj: dict[str, Any], key: str, where: str) -> Decimal | None:
    try:
        return _money(obj.get(key), key)
    except RowError as e:
        raise RowError(f"order {where}: {e}") from None


def _json_line(x: Any, i: int) -> OrderLine:
    label = f"line_items[{i}]"
    if not isinstance(x, dict):
        raise RowError(f"field '{label}' is not an object")
    title = _text(x, "title") or _text(x, "name")
    if not title:
        raise RowError(f"field '{label}.title' is empty")
    return OrderLine(
        title=title,
        quantity=parse_quantity(x.get("quantity"), f"{label}.quantity"),
        price=_money(x.get("price"), f"{label}.price"),
        sku=clean_id(_text(x, "sku")),
        variant_title=_text(x, "variant_title"),
        fulfillment_status=_status(x.get("fulfillment_status")),
    )


def _json_fulfillment(f: Any, i: int) -> Fulfillment:
    label = f"fulfillments[{i}]"
    if not isinstance(f, dict):
        raise RowError(f"field '{label}' is not an object")
    numbers = [str(n) for n in _list(f.get("tracking_numbers")) if n]
    urls = [str(u) for u in _list(f.get("tracking_urls")) if u]
    shipped = parse_date(f.get("created_at"), f"{label}.created_at")
    status = _status(f.get("shipment_status"))
    updated = parse_date(f.get("updated_at"), f"{label}.updated_at")
    items = [
        _text(x, "title") or _text(x, "name")
        for x in _list(f.get("line_items"))
        if isinstance(x, dict)
    ]
    return Fulfillment(
        status=_status(f.get("status")),
        tracking_company=_text(f, "tracking_company"),
        tracking_number=clean_id(_text(f, "tracking_number") or (numbers[0] if numbers else "")),
        tracking_url=_text(f, "tracking_url") or (urls[0] if urls else ""),
        shipment_status=status,
        created_at=shipped,
        delivered_at=updated if status == "delivered" else "",
        items=[t for t in items if t],
    )


def _refunded(o: dict[str, Any], where: str) -> Decimal | None:
    """The sum of successful refund transactions; None when the order has no refunds."""
    total, any_refund = Decimal(0), False
    for r in _list(o.get("refunds")):
        for t in _list(r.get("transactions") if isinstance(r, dict) else None):
            if not isinstance(t, dict) or t.get("kind") != "refund":
                continue
            if t.get("status") not in (None, "success"):
                continue
            amount = _field_money(t, "amount", where)
            total += amount or 0
            any_refund = True
    return total if any_refund else None


def merge(path: Path, books: list[OrderBook]) -> OrderBook:
    """One book for a directory of exports; counts add up, a later file's copy of an
    order is upserted after an earlier one's (store.db keeps the newer by updated_at)."""
    if len(books) == 1:
        return books[0]
    out = OrderBook(path, "+".join(sorted({b.format for b in books})))
    for b in books:
        out.orders += b.orders
        out.quarantine += b.quarantine
        out.files += b.files
        for kind, c in b.counts.items():
            for outcome, n in c.items():
                out.count(kind, outcome, n)
    return out


READERS = {"shopify_orders_csv": read_orders_csv, "shopify_orders_json": read_orders_json}
