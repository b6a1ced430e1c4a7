"""Shopify Admin REST product JSON (docs/formats.md, "Shopify Admin REST product JSON").

Accepts {"products": [...]}, {"product": {...}}, a bare list of products, a list
of such pages, or JSON Lines of any of these.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from storetune.clean import clean_description
from storetune.errors import StoretuneError
from storetune.ingest.shopify_csv import (
    EXPORT_HINT,
    Catalog,
    RowError,
    check_duplicate,
    clean_id,
    parse_money,
    parse_status,
    read_text,
    split_tags,
)
from storetune.io import too_deep
from storetune.store.db import QuarantineItem
from storetune.store.records import Product, Variant


def load_json_records(path: Path) -> list[Any]:
    """Top-level JSON value(s) of a .json or JSON Lines file; errors name file and line."""
    text = read_text(path, what="JSON")
    try:
        return [_loads(path, text)]
    except json.JSONDecodeError as e:
        first_error = e
    if first_error.msg != "Extra data":
        raise _json_error(path, first_error)
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(_loads(path, line, n))
            except json.JSONDecodeError as e:
                raise _json_error(path, e, line=n) from None
    return records


def _loads(path: Path, text: str, line: int | None = None) -> Any:
    """json.loads; valid JSON that Python can't hold (nesting too deep, an integer of
    thousands of digits) is a StoretuneError, not a crash."""
    where = f" line {line}" if line is not None else ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as e:
        raise StoretuneError(
            f"{path}{where}: JSON that can't be read ({type(e).__name__}: {str(e)[:120]})",
            hint="the file may be corrupted; export it again",
        ) from None
    if too_deep(value, MAX_DEPTH):
        # json.loads takes ~990 levels, the code walking the value far fewer.
        raise StoretuneError(
            f"{path}{where}: JSON nested more than {MAX_DEPTH} levels deep",
            hint="the file may be corrupted; export it again",
        )
    return value


MAX_DEPTH = 100  # real exports nest under 10 levels


def _json_error(path: Path, e: json.JSONDecodeError, line: int | None = None) -> StoretuneError:
    where = line if line is not None else e.lineno
    return StoretuneError(
        f"{path} line {where}: not valid JSON ({e.msg}, column {e.colno})",
        hint="the file may be truncated; export it again",
    )


def _product_dicts(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [p for item in value for p in _product_dicts(item)]
    if isinstance(value, dict):
        if isinstance(value.get("products"), list):
            return list(value["products"])
        if isinstance(value.get("product"), dict):
            return [value["product"]]
        return [value]
    return [value]


def _raw(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)  # whole: the quarantine keeps everything


def _list(value: Any) -> list[Any]:
    """A JSON field that should be a list: a lone value is a list of one, null none."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _count(value: Any) -> int | None:
    """A quantity or weight: a number store.db can hold, else unknown (NaN/Infinity parse
    as floats; a 400-digit integer overflows both float and SQLite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if -(2**63) <= value < 2**63 else None


def _variant(v: dict[str, Any], names: list[str]) -> Variant:
    options = {}
    for i in (1, 2, 3):
        value = v.get(f"option{i}")
        if value not in (None, ""):
            name = names[i - 1] if i - 1 < len(names) else f"Option{i}"
            options[name] = str(value)
    if options == {"Title": "Default Title"}:
        options = {}
    price = parse_money(str(v.get("price") or ""), "price")
    if price is None:
        raise RowError("variant has no price")
    tracked = v.get("inventory_management") not in (None, "")
    qty = _count(v.get("inventory_quantity"))
    return Variant(
        sku=clean_id(str(v.get("sku") or "")),
        options=options,
        price=price,
        compare_at_price=parse_money(str(v.get("compare_at_price") or ""), "compare_at_price"),
        inventory_qty=qty if tracked else None,
        inventory_policy="continue" if v.get("inventory_policy") == "continue" else "deny",
        grams=_count(v.get("grams")),
        barcode=clean_id(str(v.get("barcode") or "")) or None,
    )


def _product(
    p: dict[str, Any], n: int, cat: Catalog
) -> tuple[Product, list[Decimal | None]] | None:
    handle = str(p.get("handle") or "").strip()
    where = f"product {p.get('id', n)}"
    if not handle or not str(p.get("title") or "").strip():
        cat.reject("product", where, "product has no handle or title", _raw(p))
        return None
    names = [str(o.get("name") or "") for o in _list(p.get("options")) if isinstance(o, dict)]
    variants, costs, seen = [], [], {}
    for i, v in enumerate(_list(p.get("variants"))):
        cat.count("variant", "read")
        try:
            variant = _variant(v if isinstance(v, dict) else {}, names)
            check_duplicate(seen, variant, f"variant {i + 1}")
        except RowError as e:
            cat.reject("variant", f"{where} variant {i + 1}", f"handle '{handle}': {e}", _raw(v))
            continue
        variants.append(variant)
        costs.append(_cost(v))
        cat.count("variant", "accepted")
    if not variants:
        cat.reject("product", where, f"product '{handle}' has no usable variant", _raw(p))
        return None
    body, tags = p.get("body_html"), p.get("tags")
    description, flags = clean_description(body if isinstance(body, str) else "")
    status = parse_status(str(p.get("status") or ""), flags)
    images = sorted(
        (img for img in _list(p.get("images")) if isinstance(img, dict) and img.get("src")),
        key=_image_position,
    )
    product = Product(
        handle=handle,
        title=str(p["title"]).strip(),
        description=description,
        vendor=str(p.get("vendor") or ""),
        product_type=str(p.get("product_type") or ""),
        category=_category(p),
        tags=split_tags(tags if isinstance(tags, list | str) else None),
        status=status,
        # REST: published_at null = not on the online store; absent key = no information.
        published=("published_at" not in p) or p.get("published_at") is not None,
        options=[] if names == ["Title"] and not any(v.options for v in variants) else names,
        variants=variants,
        images=[str(img["src"]) for img in images],
        flags=flags,
        source=str(cat.path),
    )
    return product, costs


def _image_position(img: dict[str, Any]) -> float:
    pos = img.get("position")
    return pos if isinstance(pos, int | float) and not isinstance(pos, bool) else 0


def _cost(v: dict[str, Any]) -> Decimal | None:
    try:
        return parse_money(str(v.get("cost") or ""), "cost")
    except RowError:
        return None


def _category(p: dict[str, Any]) -> str:
    cat = p.get("category") or p.get("product_category")
    if isinstance(cat, dict):
        return str(cat.get("full_name") or cat.get("name") or "")
    return str(cat or "")


def read_catalog(path: Path | str) -> Catalog:
    path = Path(path)
    cat = Catalog(path=path, format="shopify_json", dialect="admin_rest")
    for kind in ("product", "variant"):
        cat.counts[kind] = Counter(read=0, accepted=0, quarantined=0)
    seen: set[str] = set()
    records = _product_dicts(load_json_records(path))
    if not records:
        raise StoretuneError(f"{path}: no products in it", hint=EXPORT_HINT)
    for n, p in enumerate(records, 1):
        cat.count("product", "read")
        if not isinstance(p, dict):
            cat.reject("product", f"record {n}", "not a product object", _raw(p))
            continue
        read = _product(p, n, cat)
        product = read[0] if read else None
        if product is not None and product.handle in seen:
            # Two records, one handle: store.db keys products by handle, so keep the first.
            reason = f"duplicate handle '{product.handle}' (the first product with it is kept)"
            cat.reject("product", f"product {p.get('id', n)}", reason, _raw(p))
        elif product is not None:
            seen.add(product.handle)
            cat.costs[product.handle] = read[1]
            cat.flags.update(product.flags)
            cat.products.append(product)
            cat.count("product", "accepted")
    return cat


def read_products(path: Path | str) -> tuple[list[Product], list[QuarantineItem]]:
    """Products and quarantined records from Admin REST product JSON."""
    cat = read_catalog(path)
    return cat.products, cat.quarantine
