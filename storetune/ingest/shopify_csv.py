"""Shopify product CSV exports, all three dialects (docs/formats.md, "Shopify product CSV").

Columns are mapped by name, never position. Several rows make one product: the
first carries the product fields, later rows add variants and/or images. Rows that
can't be used go to the quarantine with their line number and reason; a file
that isn't a product CSV at all raises StoretuneError.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from storetune.clean import clean_description
from storetune.errors import StoretuneError
from storetune.ingest.files import check_file, decode_utf16, utf16
from storetune.store.db import QuarantineItem
from storetune.store.records import Product, Variant

EXPORT_HINT = "export it from Shopify admin: Products → Export → CSV for Excel or plain CSV"
STATUSES = {"active", "draft", "archived", "unlisted"}
# No price reaches this, even in the weakest currency; 1e309 and 400-digit numbers do.
MAX_PRICE = Decimal(10) ** 12
MIN_PRICE = Decimal("0.0001")  # 1e-999 is no price either (0 is: a free item)
# Without these a product CSV is no catalog: every variant would be quarantined.
REQUIRED = {"title": "Title", "price": "Variant Price' or 'Price"}

# canonical field -> header names (lower-case), older/2023 name first, 2024+ after.
COLUMNS: dict[str, tuple[str, ...]] = {
    "handle": ("handle", "url handle"),
    "title": ("title",),
    "body": ("body (html)", "description", "body html"),
    "vendor": ("vendor",),
    "category": ("product category", "standard product type"),
    "type": ("type", "custom product type"),
    "tags": ("tags",),
    "published": ("published", "published on online store"),
    "status": ("status",),
    "opt1_name": ("option1 name",),
    "opt1_value": ("option1 value",),
    "opt2_name": ("option2 name",),
    "opt2_value": ("option2 value",),
    "opt3_name": ("option3 name",),
    "opt3_value": ("option3 value",),
    "sku": ("variant sku", "sku"),
    "grams": ("variant grams", "weight value (grams)"),
    "tracker": ("variant inventory tracker", "inventory tracker"),
    "qty": ("variant inventory qty", "inventory quantity"),
    "policy": ("variant inventory policy", "continue selling when out of stock"),
    "price": ("variant price", "price"),
    "compare_at": ("variant compare at price", "compare-at price"),
    "barcode": ("variant barcode", "barcode"),
    "image_src": ("image src", "product image url"),
    "image_pos": ("image position",),
    "variant_image": ("variant image", "variant image url"),
    "cost": ("cost per item",),
}
_VARIANT_FIELDS = ("opt1_value", "opt2_value", "opt3_value", "sku", "price", "barcode")


@dataclass
class Catalog:
    """Everything read from one product export, before it is written to store.db."""

    path: Path
    format: str
    dialect: str
    products: list[Product] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    costs: dict[str, list[Decimal | None]] = field(default_factory=dict)  # never in Product
    flags: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += n

    def reject(self, kind: str, location: str, reason: str, raw: str) -> None:
        self.quarantine.append(QuarantineItem(str(self.path), location, kind, reason, raw))
        self.count(kind, "quarantined")


class RowError(ValueError):
    """A value in one row that can't be used; the row goes to the quarantine."""


# --- value parsing ------------------------------------------------------------------


def clean_id(value: str) -> str:
    """IDs, SKUs and barcodes stay strings; a leading ' (spreadsheet text marker) goes."""
    return value.strip().lstrip("'").strip()


def parse_money(value: str, column: str) -> Decimal | None:
    s = clean_id(value).replace("$", "").replace("€", "").replace("£", "").strip()
    if not s:
        return None
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    try:
        amount = Decimal(s)
    except InvalidOperation:
        raise RowError(f"unparsable price {value.strip()!r} in column '{column}'") from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_PRICE or 0 < amount < MIN_PRICE:
        raise RowError(f"invalid price {value.strip()!r} in column '{column}'")
    return amount + 0  # -0 is 0


def parse_bool(value: str, default: bool) -> bool:
    v = value.strip().lower()
    if v in {"true", "yes", "y", "1"}:
        return True
    if v in {"false", "no", "n", "0"}:
        return False
    return default


def parse_int(value: str, column: str) -> int | None:
    s = clean_id(value)
    if not s:
        return None
    try:
        number = Decimal(s)
    except InvalidOperation:
        raise RowError(f"unparsable number {value.strip()!r} in column '{column}'") from None
    # "inf", "NaN" and 1e400 parse as Decimals but are no count of anything (and would
    # not fit store.db's 64-bit integers).
    if not number.is_finite() or abs(number) >= 2**63:
        raise RowError(f"invalid number {value.strip()!r} in column '{column}'")
    return int(number.to_integral_value())


def parse_policy(value: str) -> str:
    v = value.strip().lower()
    if v in {"deny", "continue"}:
        return v
    return "continue" if parse_bool(v, False) else "deny"


def split_tags(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else (value or "").split(",")
    seen: dict[str, None] = {}
    for t in items:
        if str(t).strip():
            seen.setdefault(str(t).strip(), None)
    return list(seen)


def parse_status(value: str, flags: list[str]) -> str:
    v = value.strip().lower()
    if not v:
        return "active"  # exports older than the Status column only held sellable products
    if v in STATUSES:
        return v
    flags.append("unknown_status")
    return "draft"  # unknown state: don't let the assistant sell it


# --- file reading -------------------------------------------------------------------


def read_text(path: Path, what: str = "CSV") -> str:
    """Text of path: UTF-8 (BOM allowed) or UTF-16; StoretuneError for a missing, special,
    binary or otherwise encoded file."""
    check_file(path, what)
    data = path.read_bytes()
    codec = utf16(data)
    if codec:
        return decode_utf16(path, data, codec)
    if not data.strip():
        raise StoretuneError(f"{path}: file is empty", hint=EXPORT_HINT if what == "CSV" else None)
    nul = data.find(b"\x00", 0, 8192)
    if nul >= 0:
        raise StoretuneError(
            f"{path}: binary data, not a {what} text file (NUL byte at offset {nul})",
            hint=EXPORT_HINT if what == "CSV" else None,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise StoretuneError(
            f"{path} line {line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})",
            hint="re-save the file as UTF-8 (in Excel: 'CSV UTF-8')",
        ) from None


def _rows(path: Path, text: str):
    """(first line number, cells) per CSV record, RFC 4180 (quoted newlines allowed)."""
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
            hint="check for an unclosed quote; " + EXPORT_HINT,
        ) from None


def _column_index(path: Path, header: list[str]) -> tuple[dict[str, int], str]:
    names: dict[str, int] = {}
    for i, name in enumerate(header):
        names.setdefault(name.strip().lower(), i)
    index = {}
    for key, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in names:
                index[key] = names[alias]
                break
    if "handle" not in index:
        raise StoretuneError(
            f"{path} line 1: not a Shopify product CSV (no 'Handle' or 'URL handle' column)",
            hint=EXPORT_HINT + "; or pass --format to pick another reader",
        )
    for key, label in REQUIRED.items():
        if key not in index:
            raise StoretuneError(
                f"{path} line 1: no '{label}' column, so no product can be read",
                hint="export the catalog again with all columns; " + EXPORT_HINT,
            )
    if "url handle" in names:
        dialect = "2024"
    elif "product category" in names or "status" in names:
        dialect = "2023"
    else:
        dialect = "legacy"
    return index, dialect


class _Row:
    def __init__(self, line: int, cells: list[str], index: dict[str, int]) -> None:
        self.line = line
        self.cells = cells
        self.index = index

    def get(self, key: str) -> str:
        i = self.index.get(key)
        return self.cells[i].strip() if i is not None and i < len(self.cells) else ""

    def has(self, key: str) -> bool:
        return key in self.index

    def raw(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(self.cells)
        return buf.getvalue()

    @property
    def location(self) -> str:
        return f"line {self.line}"


@dataclass
class _Group:
    product: Product
    option_names: list[str]
    lines: list[_Row] = field(default_factory=list)  # rows used so far
    costs: list[Decimal | None] = field(default_factory=list)
    images: list[tuple[int, int, str]] = field(default_factory=list)  # position, order, src
    seen: dict[tuple, str] = field(default_factory=dict)  # variant options -> where first


def _new_group(row: _Row, source: str, flags: Counter[str]) -> _Group:
    description, pflags = clean_description(row.get("body"))
    status = parse_status(row.get("status"), pflags)
    flags.update(pflags)
    product = Product(
        handle=row.get("handle"),
        title=row.get("title"),
        description=description,
        vendor=row.get("vendor"),
        product_type=row.get("type"),
        category=row.get("category"),
        tags=split_tags(row.get("tags")),
        status=status,
        published=parse_bool(row.get("published"), True),
        flags=pflags,
        source=source,
    )
    names = [row.get(f"opt{i}_name") for i in (1, 2, 3)]
    return _Group(product=product, option_names=names)


def _is_variant_row(row: _Row) -> bool:
    return any(row.get(k) for k in _VARIANT_FIELDS)


def _variant(row: _Row, names: list[str]) -> tuple[Variant, Decimal | None]:
    options = {}
    for i in (1, 2, 3):
        value = row.get(f"opt{i}_value")
        if value:
            options[names[i - 1] or f"Option{i}"] = value
    if options == {"Title": "Default Title"}:
        options = {}  # Shopify's marker for "this product has no options"
    price = parse_money(row.get("price"), "price")
    if price is None:
        raise RowError("variant row has no price")
    # A blank tracker means Shopify doesn't count stock: the quantity is meaningless.
    tracked = not row.has("tracker") or bool(row.get("tracker"))
    qty = parse_int(row.get("qty"), "inventory quantity")
    grams = row.get("grams")
    try:
        grams_value = parse_int(grams, "grams")
    except RowError:
        grams_value = None  # weight is display-only; a bad value must not cost the variant
    variant = Variant(
        sku=clean_id(row.get("sku")),
        options=options,
        price=price,
        compare_at_price=parse_money(row.get("compare_at"), "compare-at price"),
        inventory_qty=qty if tracked else None,
        inventory_policy=parse_policy(row.get("policy")),
        grams=grams_value,
        barcode=clean_id(row.get("barcode")) or None,
    )
    return variant, parse_money(row.get("cost"), "cost per item")


def _add_row(group: _Group, row: _Row, cat: Catalog) -> None:
    if _is_variant_row(row):
        cat.count("variant", "read")
        try:
            variant, cost = _variant(row, group.option_names)
            check_duplicate(group.seen, variant, row.location)
        except RowError as e:
            cat.reject("row", row.location, f"handle '{group.product.handle}': {e}", row.raw())
            cat.count("variant", "quarantined")
            return
        group.product.variants.append(variant)
        group.costs.append(cost)
        cat.count("variant", "accepted")
    src = row.get("image_src")
    if src:
        pos = parse_int_or(row.get("image_pos"), 10**6)
        group.images.append((pos, len(group.images), src))
    group.lines.append(row)


def check_duplicate(seen: dict[tuple, str], variant: Variant, where: str) -> None:
    """RowError for a second variant with the same options (a repeated row or file)."""
    key = tuple(sorted(variant.options.items()))
    first = seen.setdefault(key, where)
    if first != where:
        options = ", ".join(f"{k} {v}" for k, v in key) or "no options"
        raise RowError(f"duplicate variant ({options}) of {first}")


def parse_int_or(value: str, default: int) -> int:
    try:
        return parse_int(value, "") or default
    except RowError:
        return default


def _finish(group: _Group, cat: Catalog) -> None:
    p = group.product
    if not p.variants:
        for row in group.lines:
            cat.reject(
                "row", row.location, f"product '{p.handle}' has no usable variant", row.raw()
            )
        cat.count("product", "quarantined")
        return
    names = [n for n in group.option_names if n]
    p.options = [] if names == ["Title"] and not any(v.options for v in p.variants) else names
    images = [src for _, _, src in sorted(group.images)]
    for row in group.lines:
        vimg = row.get("variant_image")
        if vimg:
            images.append(vimg)
    p.images = list(dict.fromkeys(images))
    cat.products.append(p)
    cat.costs[p.handle] = group.costs
    cat.count("row", "accepted", len(group.lines))
    cat.count("product", "accepted")


def read_catalog(path: Path | str) -> Catalog:
    """Read a product CSV in any dialect; see the module docstring."""
    path = Path(path)
    rows = _rows(path, read_text(path))
    first = next(rows, None)
    if first is None:
        raise StoretuneError(f"{path}: file is empty", hint=EXPORT_HINT)
    index, dialect = _column_index(path, first[1])
    cat = Catalog(path=path, format="shopify_csv", dialect=dialect)
    for kind in ("row", "product", "variant"):
        cat.counts[kind] = Counter(read=0, accepted=0, quarantined=0)
    groups: dict[str, _Group] = {}
    for line, cells in rows:
        if any(c.strip() for c in cells):  # a blank line is not a record
            _read_row(_Row(line, cells, index), groups, cat, len(first[1]))
    if not cat.counts["row"]["read"]:
        raise StoretuneError(f"{path}: no product rows after the header", hint=EXPORT_HINT)
    for group in groups.values():
        _finish(group, cat)
    return cat


def _read_row(row: _Row, groups: dict[str, _Group], cat: Catalog, width: int) -> None:
    cat.count("row", "read")
    handle = row.get("handle")
    if len(row.cells) < width:
        reason = f"row has {len(row.cells)} of the header's {width} columns (cut off?)"
        cat.reject("row", row.location, reason, row.raw())
        return
    if not handle:
        cat.reject("row", row.location, "row has no handle", row.raw())
        return
    group = groups.get(handle)
    if group is None:
        if not row.get("title"):
            reason = f"row for handle '{handle}' comes before any product row (with a Title) for it"
            cat.reject("row", row.location, reason, row.raw())
            return
        group = groups[handle] = _new_group(row, str(cat.path), cat.flags)
        cat.count("product", "read")
    _add_row(group, row, cat)


def read_products(path: Path | str) -> tuple[list[Product], list[QuarantineItem]]:
    """Products and quarantined rows from a Shopify product CSV."""
    cat = read_catalog(path)
    return cat.products, cat.quarantine
