"""Property tests: a product file of any shape, through the whole ingest, into store.db.

Whatever bytes replace a store's product export, `ingest_workspace` either raises a
StoretuneError and leaves store.db byte for byte as it was, or succeeds with counts
that reconcile (read == accepted + quarantined), store.db holding exactly the accepted
products, and at most half of the active catalog gone (more needs --replace).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from test_ingest_properties import (
    BAD_NUMBERS,
    CELLS,
    HEADER,
    SCALARS,
    SETTINGS,
    VALID_CSV,
    _csv_bytes,
    _product_rows,
)

from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.store import db
from storetune.workspace import Workspace


def _product(i: int) -> dict:
    return {
        "id": 100 + i,
        "handle": f"trail-jacket-{i}",
        "title": f"Trail Jacket {i}",
        "body_html": "<p>Warm</p>",
        "status": "active",
        "options": [{"name": "Size"}],
        "variants": [
            {"option1": s, "price": "129.00", "sku": f"J-{i}-{s}", "inventory_quantity": 3}
            for s in ("S", "M", "L")
        ],
        "images": [{"src": f"https://cdn.example.com/{i}.jpg", "position": 1}],
    }


VALID_JSON = json.dumps({"products": [_product(i) for i in range(3)]}, indent=1).encode()

SHOPIFY_KEYS = st.sampled_from(
    [
        "products", "product", "handle", "title", "body_html", "status", "options", "name",
        "variants", "option1", "option2", "price", "compare_at_price", "sku", "barcode",
        "inventory_quantity", "inventory_management", "grams", "images", "src", "position",
        "published_at", "tags", "vendor", "id", "cost",
    ]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.one_of(SCALARS, st.sampled_from(BAD_NUMBERS)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(SHOPIFY_KEYS, st.text(max_size=6)), inner, max_size=6),
    ),
    max_leaves=30,
)


@cache
def _template() -> Path:
    """A workspace whose store.db holds the valid 3-product catalog."""
    root = Path(tempfile.mkdtemp(prefix="storetune-prop-ws-"))
    cfg = {"brand": {"name": "Cedar & Summit", "voice": "warm"}, "sources": {}}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (root / "catalog.csv").write_bytes(VALID_CSV)
    report = ingest_workspace(Workspace(root), products=root / "catalog.csv", progress=False)
    assert report.db_counts["active_products"] == 3
    return root


def _ingest(data: bytes, suffix: str, stocked: bool = True, replace: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="storetune-prop-") as d:
        root = Path(d) / "ws"
        shutil.copytree(_template(), root)
        ws = Workspace(root)
        if not stocked:
            ws.db_path.unlink()
        before = ws.db_path.read_bytes() if stocked else None
        path = Path(d) / f"products{suffix}"
        path.write_bytes(data)
        try:
            report = ingest_workspace(ws, products=path, progress=False, replace=replace)
        except StoretuneError:
            after = ws.db_path.read_bytes() if ws.db_path.exists() else None
            assert after == before, "a failed ingest changed store.db"
            return
        _check(report, ws, replace)


def _check(report, ws: Workspace, replace: bool) -> None:
    assert report.reconciles, report.to_dict()
    (src,) = report.sources
    accepted = src.counts["product"]["accepted"]
    assert report.db_counts["products"] == accepted
    conn = db.connect(ws.db_path)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
    finally:
        conn.close()
    assert stored == src.quarantine_records
    change = src.catalog
    assert replace or change["active_lost"] * 2 <= change["active_before"], change


# --- any bytes ----------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000), st.sampled_from([".csv", ".json", ".jsonl"]), st.booleans())
def test_random_bytes(data, suffix, stocked):
    _ingest(data, suffix, stocked)


@SETTINGS
@given(st.data())
def test_truncated_exports(data):
    valid, suffix = data.draw(st.sampled_from([(VALID_CSV, ".csv"), (VALID_JSON, ".json")]))
    cut = data.draw(st.integers(min_value=0, max_value=len(valid)))
    _ingest(valid[:cut], suffix, stocked=data.draw(st.booleans()))


# --- CSV ------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_csv_with_corrupted_cells_dropped_columns_and_repeats(data):
    rows = _product_rows()
    for _ in range(data.draw(st.integers(min_value=0, max_value=6))):
        r = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
        c = data.draw(st.integers(min_value=0, max_value=len(HEADER) - 1))
        rows[r][c] = data.draw(CELLS)
    rows += data.draw(st.lists(st.sampled_from(rows), max_size=4))  # repeated rows
    drop = data.draw(st.sets(st.integers(min_value=0, max_value=len(HEADER) - 1), max_size=4))
    keep = [i for i in range(len(HEADER)) if i not in drop]
    body = [[row[i] for i in keep] for row in rows]
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    replace = data.draw(st.booleans())
    _ingest(_csv_bytes([HEADER[i] for i in keep], body, encoding), ".csv", replace=replace)


# --- JSON -----------------------------------------------------------------------------------


@SETTINGS
@given(JSON_VALUES, st.booleans())
def test_random_json(value, replace):
    _ingest(json.dumps(value).encode(), ".json", replace=replace)


@SETTINGS
@given(st.data())
def test_json_with_corrupted_fields(data):
    products = [_product(i) for i in range(3)]
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        target = data.draw(st.sampled_from(products))
        if data.draw(st.booleans()) and isinstance(target.get("variants"), list):
            target = data.draw(st.sampled_from(target["variants"] or [target]))
        if not isinstance(target, dict):
            continue
        key = data.draw(st.one_of(st.sampled_from(sorted(target)), SHOPIFY_KEYS))
        target[key] = data.draw(JSON_VALUES)
    products += data.draw(st.lists(st.sampled_from(products), max_size=2))  # repeats
    _ingest(json.dumps({"products": products}).encode(), ".json")


def test_found_by_these_properties():
    _ingest(b"\r\x01", ".csv", stocked=False)  # csv.Error escaped format detection


def test_deep_nesting_huge_numbers_and_non_finite():
    for text in [
        "[" * 100_000,
        '{"products": [' + "[" * 500 + "]" * 500 + "]}",
        '{"products": [{"handle": "a", "title": "A", "variants": [{"price": 1e309}]}]}',
        '{"products": [{"handle": "a", "title": "A", "variants": [{"price": '
        + "9" * 5000
        + "}]}]}",
        '{"products": [{"handle": "a", "title": "A", "variants": [{"price": NaN}]}]}',
    ]:
        for stocked in (True, False):
            _ingest(text.encode(), ".json", stocked)
