"""Property tests: malformed exports never crash the readers.

Whatever bytes a user hands the Shopify CSV reader or the Zendesk reader, either a
StoretuneError comes out (a message naming the file) or the reader returns and its
counts reconcile: read == accepted + quarantined for every kind.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storetune.errors import StoretuneError
from storetune.ingest import shopify_csv, zendesk

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no .hypothesis/ directory left in the repo
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# --- helpers ------------------------------------------------------------------------


def _write(d: str, data: bytes, suffix: str) -> Path:
    path = Path(d) / f"export{suffix}"
    path.write_bytes(data)
    return path


def _reconciles(counts: dict) -> bool:
    return all(c["read"] == c["accepted"] + c["quarantined"] for c in counts.values())


def _read_csv(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="storetune-prop-") as d:
        _check_csv(_write(d, data, ".csv"))


def _check_csv(path: Path) -> None:
    try:
        cat = shopify_csv.read_catalog(path)
    except StoretuneError:
        return
    counts = {k: dict(v) for k, v in cat.counts.items()}
    assert _reconciles(counts), counts
    products, quarantine = shopify_csv.read_products(path)
    assert len(products) == len(cat.products) and len(quarantine) == len(cat.quarantine)


def _read_zendesk(data: bytes, suffix: str = ".json") -> None:
    with tempfile.TemporaryDirectory(prefix="storetune-prop-") as d:
        _check_zendesk(_write(d, data, suffix))


def _check_zendesk(path: Path) -> None:
    try:
        tickets, quarantine, stats = zendesk.read_tickets(path)
    except StoretuneError:
        return
    assert _reconciles(stats["counts"]), stats["counts"]
    assert stats["counts"]["ticket"]["accepted"] == len(tickets)


# --- a valid sample of each, to truncate and corrupt ---------------------------------

HEADER = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags",
    "Published", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value",
    "Variant SKU", "Variant Grams", "Variant Inventory Tracker", "Variant Inventory Qty",
    "Variant Inventory Policy", "Variant Price", "Variant Compare At Price",
    "Variant Barcode", "Image Src", "Image Position", "Cost per item", "Status",
]  # fmt: skip


def _product_rows() -> list[list[str]]:
    rows = []
    for i in range(3):
        for j, size in enumerate(["S", "M", "L"]):
            first = j == 0
            rows.append(
                [
                    f"trail-jacket-{i}", f"Trail Jacket {i}" if first else "",
                    "<p>Warm &amp; <b>light</b></p>" if first else "", "Cedar & Summit" if first else "",
                    "Apparel" if first else "", "Jacket" if first else "", "rain, shell" if first else "",
                    "TRUE" if first else "", "Size" if first else "", size, "", "",
                    f"CS-JKT-{i:04d}-{size}", "450", "shopify", str(5 * j), "deny", "129.00",
                    "149.00", f"'0123456789{i}{j}", f"https://cdn.example.com/{i}.jpg" if first else "",
                    "1" if first else "", "60.00", "active" if first else "",
                ]
            )  # fmt: skip
    return rows


def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding, errors="replace")


VALID_CSV = _csv_bytes(HEADER, _product_rows())


def _zendesk_sample() -> bytes:
    users = [
        {"id": 1, "name": "Maya Chen", "role": "end-user", "email": "maya@example.com"},
        {"id": 2, "name": "Jordan Ames", "role": "agent"},
    ]
    tickets = [
        {
            "id": 100 + i, "subject": f"Order #1048{i}", "status": "solved",
            "requester_id": 1, "assignee_id": 2, "created_at": "2025-03-01T10:00:00Z",
            "updated_at": "2025-03-02T10:00:00Z", "tags": ["returns"],
            "via": {"channel": "email"}, "satisfaction_rating": {"score": "good"},
            "description": "Hi, my jacket is too small. Call 503-555-0142.",
        }
        for i in range(3)
    ]  # fmt: skip
    events = [
        {
            "ticket_id": 100 + i, "updater_id": 2, "created_at": "2025-03-01T11:00:00Z",
            "child_events": [
                {"event_type": "Comment", "id": 900 + i, "body": "Hi Maya,\nSure, swap to M.",
                 "public": True},
                {"event_type": "Change", "field_name": "status", "value": "solved"},
            ],
        }
        for i in range(3)
    ]  # fmt: skip
    page = {"tickets": tickets, "users": users, "ticket_events": events, "end_of_stream": True}
    return json.dumps(page, indent=1).encode("utf-8")


VALID_JSON = _zendesk_sample()

# --- strategies ---------------------------------------------------------------------

BAD_NUMBERS = [
    "", "abc", "-5", "inf", "-inf", "NaN", "Infinity", "1e999999", "1E+400", "$1,299.99",
    "1,2,3", "12.5.6", "€", "0x1F", "1_000", "  9  ", "'42", "١٢٣", "9" * 400, "-0", "1e-999",
]  # fmt: skip
CELLS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(BAD_NUMBERS),
    st.sampled_from(["TRUE", "false", "deny", "continue", "shopify", "draft", "Size", "Title"]),
    st.integers(min_value=20_000, max_value=120_000).map(lambda n: "<p>" + "x" * n),  # huge
    st.just('"unbalanced'),
)
HEADER_NAMES = st.sampled_from(
    HEADER + ["URL handle", "Description", "Price", "SKU", "Inventory quantity", "Foo", ""]
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["solved", "open", "deleted", "end-user", "agent", "Comment", "2025-03-01"]),
)
ZENDESK_KEYS = st.sampled_from(
    [
        "tickets", "ticket", "users", "ticket_events", "comments", "audits", "id", "subject",
        "requester_id", "assignee_id", "description", "status", "role", "name", "child_events",
        "event_type", "body", "html_body", "plain_body", "public", "author_id", "ticket_id",
        "created_at", "updated_at", "tags", "via", "satisfaction_rating", "collaborator_ids",
        "follower_ids", "events", "type", "updater_id", "timestamp", "after_cursor", "123",
    ]
)  # fmt: skip
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(ZENDESK_KEYS, st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)

# --- Shopify CSV ----------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
def test_csv_random_bytes(data):
    _read_csv(data)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID_CSV)))
def test_csv_truncated(cut):
    _read_csv(VALID_CSV[:cut])


@SETTINGS
@given(
    st.lists(HEADER_NAMES, min_size=1, max_size=12),
    st.lists(st.lists(CELLS, max_size=14), max_size=8),
    st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-8"]),
)
def test_csv_missing_columns_and_random_cells(header, rows, encoding):
    _read_csv(_csv_bytes(["Handle", *header], rows, encoding))


@SETTINGS
@given(st.data())
def test_csv_valid_file_with_corrupted_cells(data):
    rows = _product_rows()
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        r = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
        c = data.draw(st.integers(min_value=0, max_value=len(HEADER) - 1))
        rows[r][c] = data.draw(CELLS)
    drop = data.draw(st.sets(st.integers(min_value=1, max_value=len(HEADER) - 1), max_size=6))
    keep = [i for i in range(len(HEADER)) if i not in drop]
    header = [HEADER[i] for i in keep]
    body = [[row[i] for i in keep] for row in rows]
    encoding = data.draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    _read_csv(_csv_bytes(header, body, encoding))


# --- Zendesk --------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000), st.sampled_from([".json", ".jsonl"]))
def test_zendesk_random_bytes(data, suffix):
    _read_zendesk(data, suffix)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID_JSON)))
def test_zendesk_truncated(cut):
    _read_zendesk(VALID_JSON[:cut])


@SETTINGS
@given(JSON_VALUES)
def test_zendesk_random_json(value):
    _read_zendesk(json.dumps(value).encode("utf-8"))


@SETTINGS
@given(st.lists(JSON_VALUES, min_size=1, max_size=5))
def test_zendesk_random_json_lines(values):
    _read_zendesk("\n".join(json.dumps(v) for v in values).encode("utf-8"), ".jsonl")


@SETTINGS
@given(st.data())
def test_zendesk_valid_page_with_corrupted_fields(data):
    page = json.loads(VALID_JSON)
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        section = data.draw(st.sampled_from(["tickets", "users", "ticket_events"]))
        items = page[section]
        i = data.draw(st.integers(min_value=0, max_value=len(items) - 1))
        target = items[i]
        # An earlier round may already have replaced child_events with any JSON value.
        children = target.get("child_events")
        if (
            section == "ticket_events"
            and isinstance(children, list)
            and children
            and isinstance(children[0], dict)
            and data.draw(st.booleans())
        ):
            target = children[0]
        key = data.draw(st.one_of(st.sampled_from(sorted(target)), ZENDESK_KEYS))
        target[key] = data.draw(JSON_VALUES)
    encoding = data.draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"]))
    _read_zendesk(json.dumps(page, ensure_ascii=False).encode(encoding, errors="replace"))


def test_zendesk_huge_numbers_and_deep_nesting():
    for text in ["1" * 5000, '{"tickets": [{"id": ' + "9" * 5000 + "}]}", "[" * 100_000]:
        _read_zendesk(text.encode())


NUMERIC_COLUMNS = [
    "Variant Grams", "Variant Inventory Qty", "Variant Price", "Variant Compare At Price",
    "Image Position", "Cost per item",
]  # fmt: skip


def test_csv_every_bad_number_in_every_numeric_column():
    # Exhaustive where random draws are thin: "inf" in a quantity once escaped as
    # OverflowError, "NaN" as ValueError.
    for column in NUMERIC_COLUMNS:
        c = HEADER.index(column)
        for bad in BAD_NUMBERS:
            rows = _product_rows()
            for row in rows:
                row[c] = bad
            _read_csv(_csv_bytes(HEADER, rows))
