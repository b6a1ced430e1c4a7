"""Shopify product readers against real exports (read in place from /work/shared/data)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from storetune.errors import StoretuneError
from storetune.ingest import (
    format_report,
    ingest_workspace,
    read_catalog,
    shopify_csv,
    shopify_json,
)
from storetune.ingest.detect import detect_format
from storetune.store import db
from storetune.workspace import Workspace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHOPIFY = DATA / "shopify"


def _by_handle(products):
    return {p.handle: p for p in products}


def _reconciles(counts):
    return all(c["read"] == c["accepted"] + c["quarantined"] for c in counts.values())


def _workspace(root: Path, **sources) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    cfg = {"brand": {"name": "Cedar & Summit", "voice": "warm"}, "sources": sources}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Workspace(root)


# --- real files ---------------------------------------------------------------------


def test_apparel_older_dialect():
    cat = shopify_csv.read_catalog(SHOPIFY / "apparel.csv")
    assert cat.dialect == "legacy"
    products = _by_handle(cat.products)
    assert len(products) == 20 and not cat.quarantine
    top = products["classic-varsity-top"]
    assert top.options == ["Size"]
    assert [v.options["Size"] for v in top.variants] == ["Small", "Medium", "Large"]
    shirt = products["ocean-blue-shirt"]
    assert shirt.options == [] and shirt.variants[0].options == {}  # "Default Title"
    assert shirt.variants[0].price == Decimal("50")
    assert shirt.variants[0].inventory_qty is None  # blank tracker: stock not tracked
    assert shirt.status == "active" and shirt.published  # no Status column -> active
    assert shirt.tags == ["men"]
    assert cat.counts["row"] == {"read": 22, "accepted": 22, "quarantined": 0}


def test_home_and_garden_prices_images_and_html():
    products, quarantined = shopify_csv.read_products(SHOPIFY / "home-and-garden.csv")
    assert not quarantined
    p = _by_handle(products)
    assert len(p) == 20
    pot = p["clay-plant-pot"]
    assert [v.price for v in pot.variants] == [Decimal("9.99"), Decimal("15.99")]
    assert len(pot.images) == 2
    assert pot.description == "Classic blown clay pot for plants"  # <p> removed
    assert pot.tags == ["Pot", "Plants"]
    light = p["copper-light"].variants[0]
    assert light.compare_at_price == Decimal("75") and light.on_sale
    pots = p["biodegradable-cardboard-pots"].variants[0]
    assert pots.inventory_qty == 8  # tracker "shopify": quantity is real


def test_2023_template_status_variants_and_barcodes_as_strings():
    cat = shopify_csv.read_catalog(SHOPIFY / "product_template_2023.csv")
    assert cat.dialect == "2023"
    p = _by_handle(cat.products)
    assert set(p) == {"example-shirt", "example-pants", "example-hat"}
    shirt, pants, hat = p["example-shirt"], p["example-pants"], p["example-hat"]
    assert len(shirt.variants) == 12 and shirt.options == ["Color", "Size"]
    assert shirt.variants[0].barcode == "3.65275E+11"  # exactly as in the file
    assert shirt.variants[0].sku == "SRT_COT_111"
    assert shirt.category == "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts"
    assert (shirt.status, shirt.published) == ("active", True)
    assert (pants.status, pants.published) == ("draft", False)
    assert (hat.status, hat.published) == ("archived", False)
    assert len(pants.variants) == 3 and len(pants.images) == 4  # last row is image-only
    assert pants.variants[0].grams == 227  # 226.796185 g
    assert pants.variants[0].price == Decimal("95")
    assert hat.variants[0].inventory_qty == 50
    assert cat.counts["row"] == {"read": 17, "accepted": 17, "quarantined": 0}
    assert cat.costs["example-hat"] == [Decimal("8.5")]
    assert all(not hasattr(v, "cost") for v in hat.variants)


def test_admin_rest_json():
    products, quarantined = shopify_json.read_products(SHOPIFY / "admin_rest_products.json")
    assert not quarantined
    (p,) = products
    assert p.handle == "ipod-nano" and p.title == "IPod Nano - 8GB"
    assert p.tags == ["Emotive", "Flash Memory", "MP3", "Music"]
    assert p.published and p.status == "active"
    v = p.variants[0]
    assert v.price == Decimal("199.00") and v.sku == "IPOD2008PINK"
    assert v.inventory_policy == "continue" and v.inventory_qty == 10
    assert v.options == {"Title": "Pink"}
    assert p.description.startswith("It's the small iPod")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("apparel.csv", "shopify_csv"),
        ("home-and-garden.csv", "shopify_csv"),
        ("product_template_2023.csv", "shopify_csv"),
        ("admin_rest_products.json", "shopify_json"),
    ],
)
def test_detect_format(name, fmt):
    assert detect_format(SHOPIFY / name) == fmt


# --- dialects and shapes written here -------------------------------------------------

NEWEST_HEADER = (
    "Title,URL handle,Description,Vendor,Product category,Type,Tags,Published on online store,"
    "Status,SKU,Barcode,Option1 name,Option1 value,Option1 Linked To,Option2 name,Option2 value,"
    "Option2 Linked To,Option3 name,Option3 value,Option3 Linked To,Price,Compare-at price,"
    "Cost per item,Charge tax,Tax code,Inventory tracker,Inventory quantity,"
    "Continue selling when out of stock,Weight value (grams),Weight unit for display,"
    "Requires shipping,Fulfillment service,Product image URL,Image position,Image alt text,"
    "Variant image URL,Gift card,SEO title,SEO description"
)


def _row(header: str, **cells: str) -> str:
    cols = header.split(",")
    return ",".join(cells.get(c, "") for c in cols)


def test_newest_2024_dialect(tmp_path):
    h = NEWEST_HEADER
    first = {
        "Title": "Trail Jacket", "URL handle": "trail-jacket", "Description": "<p>Light.</p>",
        "Vendor": "Cedar", "Status": "active", "Published on online store": "TRUE",
        "SKU": "'00123", "Barcode": "'0012345678905", "Option1 name": "Size",
        "Option1 value": "M", "Price": "129.00", "Compare-at price": "149.00",
        "Cost per item": "51.00", "Inventory tracker": "shopify", "Inventory quantity": "4",
        "Continue selling when out of stock": "TRUE", "Weight value (grams)": "450",
        "Product image URL": "https://cdn.example.com/j1.jpg", "Image position": "1",
    }  # fmt: skip
    second = {"URL handle": "trail-jacket", "Option1 value": "L", "Price": "129.00",
              "SKU": "00124", "Inventory tracker": "shopify", "Inventory quantity": "0",
              "Continue selling when out of stock": "FALSE"}  # fmt: skip
    path = tmp_path / "new.csv"
    path.write_text("\n".join([h, _row(h, **first), _row(h, **second)]) + "\n", encoding="utf-8")
    cat = shopify_csv.read_catalog(path)
    assert cat.dialect == "2024"
    (p,) = cat.products
    assert p.description == "Light." and p.images == ["https://cdn.example.com/j1.jpg"]
    m, large = p.variants
    assert m.sku == "00123" and m.barcode == "0012345678905"  # leading ' stripped, zeros kept
    assert m.inventory_policy == "continue" and large.inventory_policy == "deny"
    assert m.grams == 450 and m.compare_at_price == Decimal("149.00")
    assert large.inventory_qty == 0 and not large.purchasable
    assert cat.costs["trail-jacket"] == [Decimal("51.00"), None]


LEGACY = "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src"


def test_bad_rows_are_quarantined_with_line_numbers(tmp_path):
    lines = [
        LEGACY,
        'tent,Tent,"<p>Two rooms.</p>\n<p>Sleeps 4.</p>",Size,2P,T-2,199.00,',  # lines 2-3
        "tent,,,,4P,T-4,abc,",  # line 4: unparsable price
        ",Orphan,,,,X-1,10.00,",  # line 5: no handle
        "ghost,,,,M,G-1,10.00,",  # line 6: variant row for a handle with no product row
        "tent,,,,,,,https://cdn.example.com/t2.jpg",  # line 7: image-only row
        ",,,,,,,",  # blank: not a record
        'mat,Mat,,Title,Default Title,M-1,"$1,299.00",',  # line 9
    ]
    path = tmp_path / "products.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")  # with BOM
    cat = shopify_csv.read_catalog(path)
    products = _by_handle(cat.products)
    assert set(products) == {"tent", "mat"}
    assert products["tent"].description == "Two rooms.\n\nSleeps 4."
    assert len(products["tent"].variants) == 1 and len(products["tent"].images) == 1
    where = {q.location: q.reason for q in cat.quarantine}
    assert set(where) == {"line 4", "line 5", "line 6"}
    assert "unparsable price 'abc'" in where["line 4"]
    assert "no handle" in where["line 5"]
    assert "'ghost'" in where["line 6"]
    assert all(q.source_file == str(path) and q.raw for q in cat.quarantine)
    assert _reconciles(cat.counts)
    assert cat.counts["row"] == {"read": 6, "accepted": 3, "quarantined": 3}
    assert products["mat"].variants[0].price == Decimal("1299.00")


def test_product_without_usable_variant_is_quarantined_whole(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(f"{LEGACY}\nhat,Hat,,Title,Default Title,H-1,free,\n", encoding="utf-8")
    cat = shopify_csv.read_catalog(path)
    assert cat.products == []
    assert cat.counts["product"] == {"read": 1, "accepted": 0, "quarantined": 1}
    assert _reconciles(cat.counts)


def test_description_flags(tmp_path):
    bodies = {
        "lorem": "<p>Lorem ipsum dolor sit amet</p>",
        "empty": "",
        "soon": "Description coming soon",
        "salesy": "<p>Great boots. Click here to buy now!</p>",
        "broken": "<p>Warm <b>wool</strong><div>",
        "fine": "<ul><li>Wool</li><li>Warm</li></ul>",
    }
    rows = [f'{h},{h.title()},"{b}",Title,Default Title,S-{h},5.00,' for h, b in bodies.items()]
    path = tmp_path / "p.csv"
    path.write_text("\n".join([LEGACY, *rows]) + "\n", encoding="utf-8")
    p = _by_handle(shopify_csv.read_catalog(path).products)
    assert p["lorem"].flags == ["placeholder"]
    assert p["empty"].flags == ["placeholder"]
    assert p["soon"].flags == ["placeholder"]
    assert p["salesy"].flags == ["boilerplate"]
    assert "broken_html" in p["broken"].flags
    assert p["fine"].flags == [] and p["fine"].description == "- Wool\n- Warm"


def test_json_shapes_single_product_list_and_jsonl(tmp_path):
    product = json.loads((SHOPIFY / "admin_rest_products.json").read_text())["products"][0]
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"product": product}))
    pages = tmp_path / "pages.json"
    other = dict(product, handle="ipod-mini", id=2)
    pages.write_text(json.dumps([{"products": [product]}, {"products": [other]}]))
    lines = tmp_path / "products.jsonl"
    lines.write_text(json.dumps(product) + "\n" + json.dumps(other) + "\n")
    assert len(shopify_json.read_products(single)[0]) == 1
    assert [p.handle for p in shopify_json.read_products(pages)[0]] == ["ipod-nano", "ipod-mini"]
    assert len(shopify_json.read_products(lines)[0]) == 2


def test_json_bad_records_are_quarantined(tmp_path):
    product = json.loads((SHOPIFY / "admin_rest_products.json").read_text())["products"][0]
    bad_price = json.loads(json.dumps(product))
    bad_price["handle"] = "broken"
    bad_price["variants"][0]["price"] = "n/a"
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"products": [product, {"id": 9}, bad_price, product]}))
    cat = shopify_json.read_catalog(path)
    assert [p.handle for p in cat.products] == ["ipod-nano"]
    reasons = " | ".join(q.reason for q in cat.quarantine)
    assert "no handle" in reasons and "unparsable price" in reasons and "duplicate" in reasons
    assert _reconciles(cat.counts)


# --- files that are not product exports --------------------------------------------------


def _one_line_error(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value).split("\n  hint:")[0]
    assert str(path) in msg and "\n" not in msg
    return msg


def test_csv_without_handle_column(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("First Name,Last Name,Email\nMaya,Chen,maya@example.com\n")
    with pytest.raises(StoretuneError) as err:
        shopify_csv.read_products(path)
    assert "Handle" in _one_line_error(err, path)


def test_binary_file(tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00binary zip")
    with pytest.raises(StoretuneError) as err:
        shopify_csv.read_products(path)
    assert "binary" in _one_line_error(err, path)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(
        f"{LEGACY}\ncafe,Caf\xe9 Mug,,Title,Default Title,C-1,9.00,\n".encode("latin-1")
    )
    with pytest.raises(StoretuneError) as err:
        shopify_csv.read_products(path)
    assert "line 2" in _one_line_error(err, path)


def test_unclosed_quote_is_malformed_csv(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(f'{LEGACY}\ntent,Tent,"<p>never closed,Title,Default Title,T,1.00,\n')
    with pytest.raises(StoretuneError) as err:
        shopify_csv.read_products(path)
    assert "malformed CSV" in _one_line_error(err, path)


def test_truncated_json(tmp_path):
    path = tmp_path / "products.json"
    path.write_text((SHOPIFY / "admin_rest_products.json").read_text()[:700])
    with pytest.raises(StoretuneError) as err:
        shopify_json.read_products(path)
    assert "line" in _one_line_error(err, path)


def test_detect_unknown_lists_formats_and_flag(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    with pytest.raises(StoretuneError) as err:
        detect_format(path)
    assert "--format" in str(err.value) and "shopify_csv" in str(err.value)


def test_ticket_export_as_products_is_refused():
    with pytest.raises(StoretuneError, match="not a product export"):
        read_catalog(DATA / "helpdesk" / "zendesk_incremental_tickets.json")


# --- into store.db --------------------------------------------------------------------


def test_ingest_workspace_products_idempotent(tmp_path):
    ws = _workspace(tmp_path / "ws", products=str(SHOPIFY / "product_template_2023.csv"))
    first = ingest_workspace(ws, progress=False)
    second = ingest_workspace(ws, progress=False)
    assert first.db_counts == second.db_counts
    assert first.db_counts["products"] == 3 and first.db_counts["variants"] == 16
    assert first.db_counts["active_products"] == 1
    assert second.reconciles
    saved = json.loads((ws.reports_dir / "ingest.json").read_text())
    assert saved["sources"][0]["counts"]["product"]["read"] == 3
    assert saved["reconciles"] is True
    conn = db.connect(ws.db_path)
    cost = conn.execute(
        "SELECT cost FROM variants WHERE product_handle = 'example-hat'"
    ).fetchone()[0]
    assert cost == "8.5"  # kept in store.db only
    assert conn.execute("SELECT COUNT(*) FROM ingest_runs").fetchone()[0] == 2
    table = format_report(second)
    assert table.row_count == 3


def test_ingest_quarantine_is_not_duplicated_on_reingest(tmp_path):
    src = tmp_path / "products.csv"
    src.write_text(f"{LEGACY}\ntent,Tent,,Title,Default Title,T,1.00,\n,x,,,,,1,\n")
    ws = _workspace(tmp_path / "ws", products=str(src))
    ingest_workspace(ws, progress=False)
    report = ingest_workspace(ws, progress=False)
    assert report.db_counts["quarantine"] == 1
    assert report.sources[0].quarantine_records == 1


def test_bad_file_leaves_db_untouched(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(f"{LEGACY}\ntent,Tent,,Title,Default Title,T,1.00,\n")
    ws = _workspace(tmp_path / "ws", products=str(good))
    ingest_workspace(ws, progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"products": [')
    with pytest.raises(StoretuneError):
        ingest_workspace(ws, products=bad, progress=False)
    assert db.counts(db.connect(ws.db_path))["products"] == 1
