"""Property tests: malformed exports never crash the helpdesk, generic and Shopify
JSON readers.

Every reader gets random bytes, truncated valid exports (written here in the shapes
of docs/formats.md), random JSON and JSON Lines, and valid
exports with corrupted fields (wrong types, nulls, huge strings, out-of-range
timestamps); the generic CSV reader also gets missing columns, random cells and a
10 MB cell. Either a StoretuneError comes out or the reader returns and its counts
reconcile: read == accepted + quarantined for every kind.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storetune.errors import StoretuneError
from storetune.ingest import freshdesk, generic, gorgias, helpscout, intercom, shopify_json

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,  # no .hypothesis/ directory left in the repo
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- valid samples, in the documented shapes -----------------------------------------

CUSTOMER = {"name": "Maya Chen", "email": "maya.chen@example.com"}
AGENT = {"name": "Jordan Price", "email": "jordan@cedarsummit.com"}
ASK = "Hello, where is my parcel? Call me on 503-555-0142.\n\nThanks,\nMaya"
REPLY = "Hi Maya,\n\nIt shipped today, tracking 1Z999.\n\nBest,\nJordan"


def _at(hour: int) -> str:
    return f"2025-03-01T{hour:02d}:00:00Z"


def _gorgias() -> Any:
    def msg(mid: int, tid: int, agent: bool, text: str, hour: int) -> dict:
        return {"id": mid, "ticket_id": tid, "public": True, "channel": "email",
                "from_agent": agent, "sender": AGENT if agent else CUSTOMER,
                "receiver": CUSTOMER if agent else AGENT,
                "source": {"from": {"address": "x@example.com"}, "to": []},
                "body_text": text, "body_html": f"<p>{text}</p>", "stripped_text": text,
                "created_datetime": _at(hour)}  # fmt: skip

    tickets = [
        {"id": tid, "status": "closed" if tid % 2 else "open", "channel": "email",
         "customer": {"id": 9, **CUSTOMER}, "subject": "Where is my parcel?",
         "tags": [{"name": "shipping"}],
         "messages": [msg(10 * tid, tid, False, ASK, 9), msg(10 * tid + 1, tid, True, REPLY, 10)],
         "created_datetime": _at(9), "closed_datetime": _at(11), "updated_datetime": _at(11)}
        for tid in (1, 2)
    ]  # fmt: skip
    note = msg(99, 1, True, "VIP customer.", 10) | {"public": False, "channel": "internal-note"}
    return [
        {"data": tickets, "meta": {"next_cursor": "abc"}},
        {"data": [note], "meta": {"next_cursor": None}},
        {"data": [{"ticket_id": 1, "score": 5, "body_text": "fast"}], "meta": {}},
    ]


def _freshdesk() -> Any:
    def conv(cid: int, tid: int, incoming: bool, text: str, hour: int) -> dict:
        return {"id": cid, "ticket_id": tid, "user_id": 9 if incoming else 5,
                "incoming": incoming, "private": False, "source": 0, "body": f"<p>{text}</p>",
                "body_text": text, "from_email": "Maya Chen <maya.chen@example.com>",
                "to_emails": ["support@example.com"], "created_at": _at(hour)}  # fmt: skip

    tickets = [
        {"id": tid, "subject": "Where is my parcel?", "description": f"<p>{ASK}</p>",
         "description_text": ASK, "status": 4 + tid % 2, "priority": 1, "source": 1,
         "tags": ["shipping"], "requester_id": 9, "responder_id": 5,
         "requester": {"id": 9, **CUSTOMER}, "custom_fields": {}, "created_at": _at(9),
         "updated_at": _at(11), "conversations": [conv(10 * tid, tid, False, REPLY, 10)]}
        for tid in (1, 2)
    ]  # fmt: skip
    return [
        tickets,
        [conv(30, 1, True, "Great, thank you!", 12)],
        {"satisfaction_ratings": [{"ticket_id": 1, "ratings": {"default_question": 103},
                                   "feedback": "fast"}]},
    ]  # fmt: skip


def _helpscout() -> Any:
    def thread(th_id: int, kind: str, text: str, hour: int) -> dict:
        by = {"type": "customer", "first": "Maya", "last": "Chen", "email": CUSTOMER["email"]}
        if kind != "customer":
            by = {"type": "user", "first": "Jordan", "last": "Price", "email": AGENT["email"]}
        return {"id": th_id, "type": kind, "body": f"<p>{text}</p>", "createdBy": by,
                "createdAt": _at(hour)}  # fmt: skip

    convs = [
        {"id": cid, "number": 100 + cid, "type": "email", "status": "closed",
         "subject": "Where is my parcel?",
         "primaryCustomer": {"first": "Maya", "last": "Chen", "email": CUSTOMER["email"]},
         "tags": [{"id": 1, "tag": "shipping"}], "createdAt": _at(9), "closedAt": _at(11),
         "rating": "great",
         "_embedded": {"threads": [
             thread(10 * cid, "customer", ASK, 9), thread(10 * cid + 1, "message", REPLY, 10),
             thread(10 * cid + 2, "note", "VIP.", 10),
             {"id": 10 * cid + 3, "type": "lineitem", "action": {"text": "Closed"},
              "createdAt": _at(11)}]}}
        for cid in (1, 2)
    ]  # fmt: skip
    return {"_embedded": {"conversations": convs}, "page": {"number": 1, "totalPages": 1}}


def _intercom() -> Any:
    def part(pid: str, kind: str, who: str, text: str | None, ts: int) -> dict:
        author = {"type": who, **(CUSTOMER if who == "user" else AGENT)}
        return {"type": "conversation_part", "id": pid, "part_type": kind, "body": text,
                "author": author, "created_at": ts}  # fmt: skip

    t0 = 1_740_819_600  # 2025-03-01T09:00:00Z
    convs = [
        {"type": "conversation", "id": str(cid), "created_at": t0, "updated_at": t0 + 7200,
         "state": "closed", "open": False, "title": "Parcel",
         "source": {"type": "conversation", "delivered_as": "customer_initiated",
                    "subject": "", "body": f"<p>{ASK}</p>", "author": {"type": "user", **CUSTOMER}},
         "conversation_parts": {"type": "conversation_part.list", "total_count": 3,
                                "conversation_parts": [
                                    part(f"{cid}1", "comment", "admin", f"<p>{REPLY}</p>", t0 + 60),
                                    part(f"{cid}2", "note", "admin", "<p>VIP</p>", t0 + 120),
                                    part(f"{cid}3", "close", "admin", None, t0 + 180)]},
         "conversation_rating": {"rating": 5}, "tags": {"type": "tag.list", "tags": []}}
        for cid in (1, 2)
    ]  # fmt: skip
    return {"type": "conversation.list", "conversations": convs, "pages": {"page": 1}}


def _shopify_json() -> Any:
    products = [
        {"id": 100 + i, "title": f"Trail Jacket {i}", "body_html": "<p>Warm &amp; light</p>",
         "vendor": "Cedar & Summit", "product_type": "Jacket", "handle": f"trail-jacket-{i}",
         "status": "active", "published_at": "2025-01-01T00:00:00Z", "tags": "rain, shell",
         "options": [{"name": "Size", "position": 1, "values": ["S", "M"]}],
         "variants": [
             {"id": 1000 + 10 * i + j, "title": size, "sku": f"CS-{i}-{size}", "price": "129.00",
              "compare_at_price": "149.00", "inventory_policy": "deny",
              "inventory_management": "shopify", "inventory_quantity": 5, "option1": size,
              "option2": None, "option3": None, "grams": 450, "weight": 0.45,
              "weight_unit": "kg", "barcode": "0123456789", "taxable": True,
              "requires_shipping": True, "image_id": None}
             for j, size in enumerate(["S", "M"])],
         "images": [{"id": 7, "position": 1, "src": f"https://cdn.example.com/{i}.jpg",
                     "alt": None, "variant_ids": []}]}
        for i in range(2)
    ]  # fmt: skip
    return {"products": products}


CSV_HEADER = ["Ticket ID", "Subject", "Customer Message", "Agent Response", "Status", "CSAT",
              "Created At", "Customer Name", "Agent Name"]  # fmt: skip


def _generic_rows() -> list[list[str]]:
    return [
        [f"T-{i}", "Parcel", ASK, REPLY, "solved" if i % 2 else "", str(i + 1), _at(9),
         "Maya Chen", "Jordan Price"]
        for i in range(4)
    ]  # fmt: skip


def _generic_jsonl() -> Any:
    return [dict(zip(CSV_HEADER, row, strict=True)) for row in _generic_rows()]


def _chat_jsonl() -> Any:
    return [
        {"id": f"c{i}", "messages": [
            {"role": "system", "content": "You are a helpful store assistant."},
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": [{"type": "text", "text": REPLY}]}]}
        for i in range(3)
    ]  # fmt: skip


def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding, errors="replace")


# --- the readers ---------------------------------------------------------------------


def _helpdesk_counts(reader: Callable[[Path], Any]) -> Callable[[Path], dict]:
    def run(path: Path) -> dict:
        tickets, quarantine, stats = reader(path)
        counts = stats["counts"]
        assert counts.get("ticket", {}).get("accepted", 0) == len(tickets), counts
        assert all(t.messages for t in tickets)
        return counts

    return run


def _catalog_counts(path: Path) -> dict:
    cat = shopify_json.read_catalog(path)
    counts = {k: dict(v) for k, v in cat.counts.items()}
    assert counts["product"].get("accepted", 0) == len(cat.products), counts
    return counts


@dataclass
class Reader:
    run: Callable[[Path], dict]  # counts per kind
    suffix: str
    sample: Any  # the valid export as Python values (JSON) or None (CSV)
    lines: bool = False  # sample is JSON Lines: one value per line

    def encode(self, value: Any, indent: int | None = None) -> bytes:
        if self.lines:
            return "\n".join(json.dumps(v) for v in value).encode("utf-8")
        return json.dumps(value, indent=indent).encode("utf-8")

    def valid(self) -> bytes:
        if self.sample is None:
            return _csv_bytes(CSV_HEADER, _generic_rows())
        return self.encode(self.sample, indent=1)  # line breaks: more places to cut


READERS = {
    "gorgias": Reader(_helpdesk_counts(gorgias.read_tickets), ".json", _gorgias()),
    "freshdesk": Reader(_helpdesk_counts(freshdesk.read_tickets), ".json", _freshdesk()),
    "helpscout": Reader(_helpdesk_counts(helpscout.read_tickets), ".json", _helpscout()),
    "intercom": Reader(_helpdesk_counts(intercom.read_tickets), ".json", _intercom()),
    "shopify_json": Reader(_catalog_counts, ".json", _shopify_json()),
    "generic_csv": Reader(_helpdesk_counts(generic.read_csv_tickets), ".csv", None),
    "generic_jsonl": Reader(
        _helpdesk_counts(generic.read_jsonl_tickets), ".jsonl", _generic_jsonl(), lines=True
    ),
    "chat_jsonl": Reader(
        _helpdesk_counts(generic.read_chat_jsonl), ".jsonl", _chat_jsonl(), lines=True
    ),
}
JSON_READERS = [name for name, r in READERS.items() if r.sample is not None]


def _reconciles(counts: dict) -> bool:
    return all(
        c.get("read", 0) == c.get("accepted", 0) + c.get("quarantined", 0) for c in counts.values()
    )


# One directory for the whole module (removed at exit): a directory per example
# costs more than most reads.
_TMP = tempfile.TemporaryDirectory(prefix="storetune-prop-")


def _check(name: str, data: bytes, suffix: str | None = None) -> dict | None:
    """Run a reader on data; None when it refused the file with a StoretuneError."""
    reader = READERS[name]
    path = Path(_TMP.name) / f"export{suffix or reader.suffix}"
    path.write_bytes(data)
    try:
        counts = reader.run(path)
    except StoretuneError as e:
        assert str(path) in str(e), str(e)  # the message names the file
        return None
    assert _reconciles(counts), counts
    return counts


def test_valid_samples_are_read():
    # The samples must themselves be valid, or truncating/corrupting them proves little.
    for name, reader in READERS.items():
        counts = _check(name, reader.valid())
        assert counts is not None, name
        kind = "product" if name == "shopify_json" else "ticket"
        assert counts[kind]["accepted"] >= 2, (name, counts)


# --- strategies ----------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "id", "data", "meta", "messages", "ticket_id", "score", "from_agent", "body_text",
        "body_html", "stripped_text", "public", "channel", "status", "customer", "subject",
        "tags", "created_datetime", "updated_datetime", "tickets", "conversations",
        "description_text", "description", "requester_id", "incoming", "private", "ratings",
        "created_at", "updated_at", "source", "_embedded", "threads", "type", "createdBy",
        "createdAt", "body", "primaryCustomer", "state", "conversation_parts", "part_type",
        "author", "conversation_rating", "products", "product", "variants", "options",
        "images", "handle", "title", "price", "inventory_quantity", "grams", "role",
        "content", "Customer Message", "Agent Response", "CSAT",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["closed", "open", "spam", "customer", "note", "lineitem", "comment", "user"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)
# Wrong on purpose: numbers where lists/objects/strings belong, nulls, huge strings,
# timestamps before year 1 or after 9999, numbers too big for a float.
BAD_VALUES = [
    None, 0, 1, -1, True, False, 3.5, float("nan"), float("inf"), float("-inf"),
    -(10**15), 10**18, 10**400, -1e308, 1e308, 253402300800, -62135596801,
    "", "x", "9" * 400, "x" * 200_000, "-1", "1e999", "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-14:00", "not a date", [], [None], [1, 2], ["a", {"b": 1}],
    {}, {"a": 1}, [[[]]], {"tags": 5}, {"conversation_parts": 3},
]  # fmt: skip
BAD = st.one_of(st.sampled_from(BAD_VALUES).map(copy.deepcopy), JSON_VALUES)


def _containers(value: Any, path: tuple = (), first_only: bool = False) -> Iterator[tuple]:
    """Paths to every dict and list inside value (the value itself included);
    first_only: only the first item of each inner list (the rest are alike)."""
    if isinstance(value, dict | list):
        yield path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if first_only and path and isinstance(value, list) and k > 0:
                break
            yield from _containers(v, (*path, k), first_only)


def _at_path(value: Any, path: tuple) -> Any:
    for k in path:
        value = value[k]
    return value


def _corrupt(sample: Any, data: st.DataObject, n: int) -> Any:
    value = json.loads(json.dumps(sample))  # a deep copy
    paths = list(_containers(value))
    for _ in range(n):
        target = _at_path(value, data.draw(st.sampled_from(paths)))
        if isinstance(target, dict):
            key = data.draw(st.one_of(st.sampled_from(sorted(target) or ["id"]), KEYS))
            if data.draw(st.integers(0, 5)) == 0:
                target.pop(key, None)
            else:
                target[key] = data.draw(BAD)
        elif target:
            target[data.draw(st.integers(0, len(target) - 1))] = data.draw(BAD)
        else:
            target.append(data.draw(BAD))
        paths = list(_containers(value))
    return value


# --- every reader --------------------------------------------------------------------

ALL = pytest.mark.parametrize("name", list(READERS))
JSON_ONLY = pytest.mark.parametrize("name", JSON_READERS)


@ALL
@SETTINGS
@given(data=st.binary(max_size=1500))
def test_random_bytes(name, data):
    _check(name, data)


@ALL
@SETTINGS
@given(data=st.data())
def test_truncated(name, data):
    valid = READERS[name].valid()
    cut = data.draw(st.integers(min_value=0, max_value=len(valid)))
    _check(name, valid[:cut])


@ALL
@SETTINGS
@given(value=JSON_VALUES)
def test_random_json(name, value):
    _check(name, json.dumps(value).encode("utf-8"), ".json" if name != "generic_csv" else None)


@ALL
@SETTINGS
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=5))
def test_random_json_lines(name, values):
    text = "\n".join(json.dumps(v) for v in values).encode("utf-8")
    _check(name, text, ".jsonl" if name != "generic_csv" else None)


@JSON_ONLY
@SETTINGS
@given(data=st.data())
def test_valid_export_with_corrupted_fields(name, data):
    reader = READERS[name]
    value = _corrupt(reader.sample, data, data.draw(st.integers(min_value=1, max_value=5)))
    _check(name, reader.encode(value))


@JSON_ONLY
def test_every_field_gets_every_kind_of_wrong_value(name):
    # Exhaustive where random draws are thin: each field of the valid export in turn
    # becomes a null, a number, a list, an object, a huge string or an impossible time
    # (half of these per field, in rotation, so that every kind meets every kind of
    # field; a quarter of the time the whole list runs).
    reader = READERS[name]
    sample = reader.sample
    kinds = [None, [1, 2], 10**400, {"a": 1}, float("inf"), "x" * 5000, -(10**15), 10**18]
    n = 0
    for path in _containers(sample, first_only=True):
        container = _at_path(sample, path)
        keys = sorted(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            n += 1
            for bad in kinds[n % 2 :: 2] if n % 4 else kinds:
                value = json.loads(json.dumps(sample))
                _at_path(value, path)[key] = bad
                _check(name, reader.encode(value))


@JSON_ONLY
def test_deep_nesting_huge_numbers_and_non_finite(name):
    cases = [
        "[" * 100_000,
        "[" * 950 + "]" * 950,
        "[" * 400 + "{}" + "]" * 400,
        "1" * 5000,
        '{"id": ' + "9" * 5000 + "}",
        "NaN",
        "[Infinity, -Infinity]",
        '{"id": 1, "status": Infinity, "created_at": -Infinity, "messages": NaN}',
        '{"id": 1, "source": {"body": "hi"}, "created_at": 1e400, "state": "open"}',
    ]
    for text in cases:
        _check(name, text.encode())
        _check(name, (text + "\n" + text).encode(), ".jsonl")


# --- generic CSV ---------------------------------------------------------------------

CELLS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "solved", "spam", "5", "1e999", "NaN", "-inf", "0001-01-01", "'T-1"]),
    st.integers(min_value=20_000, max_value=120_000).map(lambda n: "<p>" + "x" * n),
    st.just('"unbalanced'),
)
HEADER_NAMES = st.sampled_from(
    CSV_HEADER + ["Question", "Answer", "Body", "Rating", "Date", "Foo", "", "id", "ID"]
)


@SETTINGS
@given(
    header=st.lists(HEADER_NAMES, min_size=1, max_size=10),
    rows=st.lists(st.lists(CELLS, max_size=12), max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
)
def test_generic_csv_missing_columns_and_random_cells(header, rows, encoding):
    _check("generic_csv", _csv_bytes(header, rows, encoding))


@SETTINGS
@given(data=st.data())
def test_generic_csv_valid_file_with_corrupted_cells(data):
    rows = _generic_rows()
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        r = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
        c = data.draw(st.integers(min_value=0, max_value=len(CSV_HEADER) - 1))
        rows[r][c] = data.draw(CELLS)
    drop = data.draw(st.sets(st.integers(min_value=0, max_value=len(CSV_HEADER) - 1), max_size=5))
    keep = [i for i in range(len(CSV_HEADER)) if i not in drop]
    body = [[row[i] for i in keep] for row in rows]
    if data.draw(st.booleans()):  # ragged rows: cells missing or extra
        body = [row[: data.draw(st.integers(0, len(row) + 2))] + ["extra"] for row in body]
    _check("generic_csv", _csv_bytes([CSV_HEADER[i] for i in keep], body))


def test_generic_csv_ten_megabyte_cell():
    # csv's default 128 KiB cell limit once refused the whole file for one long cell.
    big = "x" * (10 * 1024 * 1024)
    rows = _generic_rows()
    for r, column in enumerate(("Customer Message", "Status")):
        rows[r][CSV_HEADER.index(column)] = big
    counts = _check("generic_csv", _csv_bytes(CSV_HEADER, rows))
    # An oversized cell is one bad ticket at worst, not a refused file.
    assert counts is not None and counts["ticket"]["read"] == len(rows), counts
    assert counts["ticket"]["quarantined"] == 1, counts  # the 10 MB status is unknown


# --- crashes found by the tests above, kept as plain regressions -----------------------

_G = '{"data": [{"id": 1, "status": "closed", "subject": "s", "messages": %s}]}'
_GM = '[{"id": 5, "from_agent": false, "body_text": "Where is my parcel?", %s}]'
_F = '[{"id": 1, "requester_id": 9, "description_text": "Where is my parcel?", %s}]'
_H = '{"id": 1, "status": "closed", "threads": [{"id": 2, "body": "Where is it?", %s}]}'
_I = '{"id": "1", "state": "open", "source": {"body": "Where is it?"}, %s}'
_P = '{"products": [{"handle": "h", "title": "T", "variants": [{"price": "1.00"%s}]%s}]}'
_CHAT = '{"messages": [{"role": "user", "content": "hi"}, {"role": %s, "content": "x"}]}'
KNOWN_CRASHES = [  # (reader, file text): what once escaped
    ("gorgias", _G % "7.5"),  # TypeError: 'float' object is not iterable
    ("gorgias", _G % (_GM % '"created_datetime": 1e18')),  # OverflowError: time_t
    ("gorgias", _G % (_GM % '"created_datetime": -1e15')),  # ValueError: year out of range
    ("gorgias", _G % "[]" + '\n{"ticket_id": 1, "score": ' + "9" * 400 + "}"),  # float()
    ("freshdesk", _F % '"conversations": 3'),  # TypeError: 'int' object is not iterable
    ("freshdesk", _F % '"status": Infinity'),  # OverflowError in int()
    ("freshdesk", _F % '"tags": 1, "created_at": 253402300800'),  # iter / year 10000
    ("helpscout", _H % '"type": ["note"]'),  # TypeError: unhashable type: 'list'
    ("helpscout", _H % '"createdAt": NaN'),  # ValueError: Invalid value NaN
    ("intercom", _I % '"conversation_parts": {"conversation_parts": 3}'),  # not iterable
    ("intercom", _I % '"conversation_parts": [{"part_type": [1], "body": "x"}]'),  # unhashable
    ("intercom", _I % '"conversation_parts": [{"author": {"type": {}}, "body": "x"}]'),
    ("intercom", _I % '"created_at": 1e300, "tags": 4'),  # OverflowError / not iterable
    ("chat_jsonl", _CHAT % '["assistant"]'),  # TypeError: unhashable type: 'list'
    ("generic_jsonl", '{"question": "a", "answer": "b"}\n{"question": ' + "9" * 5000 + "}"),
    ("generic_jsonl", '{"question": "a", "answer": "b"}\n' + "[" * 5000),  # RecursionError
    ("shopify_json", _P % ("", ', "body_html": 5')),  # TypeError in html_to_text
    (
        "shopify_json",
        _P % (', "inventory_management": "shopify", "inventory_quantity": Infinity', ""),
    ),  # OverflowError in int()
    ("shopify_json", _P % (', "grams": ' + "9" * 400, ', "tags": 3')),  # 400 digits, .split
    ("shopify_json", _P % ("", ', "images": [{"src": "a", "position": "2"}, {"src": "b"}]')),
    ("shopify_json", _P % ("", ', "variants": 1, "options": 2')),  # not iterable
]


@pytest.mark.parametrize(("name", "text"), KNOWN_CRASHES)
def test_known_crashes_are_quarantined_not_raised(name, text):
    suffix = ".jsonl" if "\n" in text else None
    counts = _check(name, text.encode("utf-8"), suffix)
    assert counts is not None, "the bad record should be quarantined, not the file refused"


@pytest.mark.parametrize("name", ["gorgias", "freshdesk", "helpscout", "intercom", "shopify_json"])
def test_nesting_too_deep_for_the_readers_is_a_storetune_error(name):
    # json.loads takes ~990 levels; walking them recursed past Python's limit.
    assert _check(name, ("[" * 950 + "]" * 950).encode()) is None
