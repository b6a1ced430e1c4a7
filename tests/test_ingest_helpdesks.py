"""Gorgias, Freshdesk, Help Scout, Intercom and generic readers, on small exports
written here in the shapes docs/formats.md describes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from storetune.errors import StoretuneError
from storetune.ingest import freshdesk, generic, gorgias, helpscout, ingest_workspace, intercom
from storetune.ingest.detect import detect_format
from storetune.workspace import Workspace

# One conversation told by every export: written out of order on purpose.
OPENER = "Hello, where is my parcel? Reach me at maya.chen@example.com.\n\nThanks,\nMaya"
REPLY = "Hi Maya,\n\nIt shipped today.\n\nBest,\nJordan"
NOTE = "Maya Chen called about this, VIP."
THANKS = "Great, thank you!"
MESSAGES = [  # (key, who, text, hour, minute)
    ("14", "customer", THANKS, 12, 0),
    ("12", "agent", REPLY, 10, 0),
    ("11", "customer", OPENER, 9, 0),
    ("13", "note", NOTE, 10, 30),
]
CUSTOMER = {"name": "Maya Chen", "email": "maya.chen@example.com"}
AGENT = {"name": "Jordan Price", "email": "jordan@cedarsummit.com"}


def _at(hour: int, minute: int = 0) -> str:
    return f"2025-03-01T{hour:02d}:{minute:02d}:00Z"


def _unix(hour: int, minute: int = 0) -> int:
    return int(datetime(2025, 3, 1, hour, minute, tzinfo=UTC).timestamp())


def _html(text: str) -> str:
    return "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))


def _write(d: Path, name: str, value) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(value), encoding="utf-8")


def _reconciles(stats) -> bool:
    return all(c["read"] == c["accepted"] + c["quarantined"] for c in stats["counts"].values())


# --- the exports ---------------------------------------------------------------------


def _gorgias(root: Path) -> list[dict]:
    def msg(key, who, text, h, m, tid=1):
        return {"id": int(key), "ticket_id": tid, "public": who != "note",
                "channel": "internal-note" if who == "note" else "email",
                "from_agent": who != "customer", "sender": CUSTOMER if who == "customer" else AGENT,
                "body_text": text, "body_html": _html(text), "created_datetime": _at(h, m)}  # fmt: skip

    def ticket(tid, status, msgs, updated):
        return {"id": tid, "status": status, "channel": "email", "customer": {"id": 9, **CUSTOMER},
                "subject": "Where is my parcel?", "tags": [{"name": "shipping"}], "messages": msgs,
                "created_datetime": _at(9), "updated_datetime": updated}  # fmt: skip

    t1 = [msg(*m) for m in MESSAGES]
    t2 = [msg("21", "customer", "Do the boots run small?", 9, 0, 2),
          msg("22", "agent", "They run true to size.", 9, 30, 2)]  # fmt: skip
    return [
        {"data": [ticket(1, "open", t1, _at(11))], "meta": {"next_cursor": "c2"}},
        {"data": [ticket(1, "closed", t1, _at(13)), ticket(2, "open", t2, _at(10))],
         "meta": {"next_cursor": None}},
        {"data": [{"id": 7, "object_type": "Ticket", "object_id": 1, "type": "ticket-closed",
                   "created_datetime": _at(13)},
                  {"id": 3, "ticket_id": 1, "score": 5, "body_text": "fast"}],
         "meta": {"next_cursor": None}},
    ]  # fmt: skip


def _freshdesk(root: Path) -> list:
    def conv(key, who, text, h, m, tid=1):
        return {"id": int(key), "ticket_id": tid, "user_id": 9 if who == "customer" else 5,
                "incoming": who == "customer", "private": who == "note", "body": _html(text),
                "body_text": text, "created_at": _at(h, m)}  # fmt: skip

    def ticket(tid, status, description, convs, updated):
        t = {"id": tid, "subject": "Where is my parcel?", "description": _html(description),
             "description_text": description, "status": status, "priority": 1, "source": 1,
             "requester_id": 9, "requester": {"id": 9, **CUSTOMER}, "responder_id": 5,
             "tags": ["shipping"], "created_at": _at(9), "updated_at": updated}  # fmt: skip
        return {**t, "conversations": convs} if convs is not None else t

    t1 = [conv(*m) for m in MESSAGES if m[0] != "11"]  # the opener is the description
    return [
        [ticket(1, 2, OPENER, t1, _at(11))],
        [ticket(1, 5, OPENER, t1, _at(13)), ticket(2, 2, "Do the boots run small?", None, _at(10))],
        # conversations exported apart, keyed by ticket_id; an activity (system event)
        [conv("22", "agent", "They run true to size.", 9, 30, tid=2)],
        {"activities_data": [{"performer_id": 5, "ticket_id": 1, "performed_at": _at(13),
                              "activity": {"status": "Closed"}}]},
    ]  # fmt: skip


def _helpscout(root: Path) -> list[dict]:
    def thread(key, who, text, h, m):
        kind = {"customer": "customer", "agent": "message", "note": "note"}[who]
        by = {"type": "customer", "first": "Maya", "last": "Chen"} if who == "customer" else {
            "type": "user", "first": "Jordan", "last": "Price"}  # fmt: skip
        return {"id": int(key), "type": kind, "body": _html(text), "createdBy": by,
                "createdAt": _at(h, m)}  # fmt: skip

    def conv(cid, status, threads, updated):
        return {"id": cid, "number": 100 + cid, "type": "email", "status": status,
                "subject": "Where is my parcel?", "tags": [{"id": 1, "tag": "shipping"}],
                "primaryCustomer": {"first": "Maya", "last": "Chen", "email": CUSTOMER["email"]},
                "createdAt": _at(9), "userUpdatedAt": updated,
                "_embedded": {"threads": threads}}  # fmt: skip

    lineitem = {"id": 15, "type": "lineitem", "action": {"text": "Marked as closed"},
                "createdAt": _at(12, 5)}  # fmt: skip
    t1 = [thread(*m) for m in MESSAGES] + [lineitem]
    t2 = [thread("22", "agent", "They run true to size.", 9, 30),
          thread("21", "customer", "Do the boots run small?", 9, 0)]  # fmt: skip

    def page(n, convs):
        return {"_embedded": {"conversations": convs}, "page": {"number": n, "totalPages": 2}}

    return [
        page(1, [conv(1, "active", t1, _at(11))]),
        page(2, [conv(1, "closed", t1, _at(13)), conv(2, "active", t2, _at(10))]),
    ]


def _intercom(root: Path) -> list[dict]:
    def part(key, who, text, h, m):
        author = {"type": "user", **CUSTOMER} if who == "customer" else {"type": "admin", **AGENT}
        return {"type": "conversation_part", "id": key, "part_type": "note" if who == "note"
                else "comment", "body": _html(text), "author": author, "created_at": _unix(h, m)}  # fmt: skip

    def conv(cid, state, opener, parts, updated):
        return {"type": "conversation", "id": str(cid), "created_at": _unix(9),
                "updated_at": updated, "state": state, "open": state != "closed",
                "source": {"type": "conversation", "delivered_as": "customer_initiated",
                           "subject": "", "body": _html(opener),
                           "author": {"type": "user", **CUSTOMER}},
                "conversation_parts": {"type": "conversation_part.list",
                                       "conversation_parts": parts, "total_count": len(parts)},
                "conversation_rating": {"rating": 5}, "tags": {"type": "tag.list", "tags": []}}  # fmt: skip

    event = {"type": "conversation_part", "id": "15", "part_type": "close", "body": None,
             "author": {"type": "admin", **AGENT}, "created_at": _unix(12, 5)}  # fmt: skip
    p1 = [part(*m) for m in MESSAGES if m[0] != "11"] + [event]
    p2 = [part("22", "agent", "They run true to size.", 9, 30)]

    def page(convs):
        return {"type": "conversation.list", "conversations": convs, "pages": {"page": 1}}

    return [
        page([conv(1, "open", OPENER, p1, _unix(11))]),
        page([conv(1, "closed", OPENER, p1, _unix(13)),
              conv(2, "open", "Do the boots run small?", p2, _unix(10))]),
    ]  # fmt: skip


EXPORTS = {  # format: (pages, reader, status of the resolved ticket)
    "gorgias": (_gorgias, gorgias.read_tickets, "closed"),
    "freshdesk": (_freshdesk, freshdesk.read_tickets, "closed"),
    "helpscout": (_helpscout, helpscout.read_tickets, "closed"),
    "intercom": (_intercom, intercom.read_tickets, "closed"),
}


def _export(root: Path, fmt: str) -> Path:
    d = root / fmt
    for n, page in enumerate(EXPORTS[fmt][0](root), 1):
        _write(d, f"page-{n:03d}.json", page)
    return d


# --- the four helpdesks ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_conversation_rebuilt_with_notes_roles_and_pii(tmp_path, fmt):
    tickets, _, stats = EXPORTS[fmt][1](_export(tmp_path, fmt))
    t = next(t for t in tickets if t.source_id == "1")
    assert t.source == fmt
    assert [m.role for m in t.messages] == ["customer", "agent", "note", "customer"]
    assert [m.author for m in t.messages] == ["customer", "agent", "agent", "customer"]
    opener, reply, note, thanks = (m.text for m in t.messages)
    assert opener == "Hello, where is my parcel? Reach me at <EMAIL>."
    assert reply.startswith("Hi <NAME>,") and "It shipped today." in reply
    assert note == "<NAME> called about this, VIP."
    assert thanks == THANKS
    assert all(m.role != "note" for m in t.public_messages())
    corpus = "\n".join(m.text for t in tickets for m in t.messages)
    assert "Maya" not in corpus and "maya.chen@example.com" not in corpus
    assert stats["notes"] == 1 and stats["pii"]["EMAIL"] == 1


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_pages_deduped_status_events_and_counts(tmp_path, fmt):
    tickets, quarantined, stats = EXPORTS[fmt][1](_export(tmp_path, fmt))
    by_id = {t.source_id: t for t in tickets}
    assert set(by_id) == {"1", "2"} and not quarantined
    # the later copy of ticket 1 wins: it is the resolved one
    assert by_id["1"].status == EXPORTS[fmt][2] and by_id["1"].resolved
    assert by_id["2"].status == "open"
    assert [m.role for m in by_id["2"].messages] == ["customer", "agent"]
    assert stats["dropped"]["duplicate_ticket_records"] == 1
    assert stats["dropped"]["system_events"] == 1
    assert stats["counts"]["ticket"] == {"read": 2, "accepted": 2, "quarantined": 0}
    assert stats["counts"]["message"] == {"read": 6, "accepted": 6, "quarantined": 0}
    assert _reconciles(stats)


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_auto_detection(tmp_path, fmt):
    d = _export(tmp_path, fmt)
    assert detect_format(d) == fmt
    assert detect_format(d / "page-002.json") == fmt


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_json_lines_and_list_of_pages(tmp_path, fmt):
    pages = EXPORTS[fmt][0](tmp_path)
    lines = tmp_path / f"{fmt}.jsonl"
    lines.write_text("\n".join(json.dumps(p) for p in pages) + "\n", encoding="utf-8")
    from_lines, _, stats = EXPORTS[fmt][1](lines)
    d = _export(tmp_path, fmt)
    from_list, _, _ = EXPORTS[fmt][1](sorted(d.iterdir()))
    assert {t.source_id for t in from_lines} == {t.source_id for t in from_list} == {"1", "2"}
    assert detect_format(lines) == fmt and _reconciles(stats)


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_malformed_page_names_the_file(tmp_path, fmt):
    d = _export(tmp_path, fmt)
    bad = d / "page-009.json"
    bad.write_text(json.dumps(EXPORTS[fmt][0](tmp_path)[1])[:150], encoding="utf-8")
    with pytest.raises(StoretuneError) as err:
        EXPORTS[fmt][1](d)
    assert str(bad) in str(err.value) and "line" in str(err.value)


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_unknown_records_and_orphans_quarantined(tmp_path, fmt):
    d = _export(tmp_path, fmt)
    _write(d, "page-008.json", {"hello": "world"})
    _, quarantined, stats = EXPORTS[fmt][1](d)
    assert [q.kind for q in quarantined] == ["record"]
    assert quarantined[0].source_file == str(d / "page-008.json")
    assert _reconciles(stats)


def test_freshdesk_orphan_conversation_and_custom_status(tmp_path):
    d = _export(tmp_path, "freshdesk")
    _write(d, "page-007.json", [{"id": 99, "ticket_id": 42, "incoming": True, "body_text": "hi"}])
    tickets, quarantined, stats = freshdesk.read_tickets(d)
    assert [(q.kind, q.location) for q in quarantined] == [("message", "ticket 42")]
    assert stats["counts"]["message"]["quarantined"] == 1 and _reconciles(stats)
    assert freshdesk._status(6) == "pending" and freshdesk._status("Resolved") == "solved"


def test_helpscout_spam_quarantined_with_its_messages(tmp_path):
    pages = _helpscout(tmp_path)
    pages[1]["_embedded"]["conversations"][1]["status"] = "spam"
    _write(tmp_path / "hs", "p.json", pages)
    tickets, quarantined, stats = helpscout.read_tickets(tmp_path / "hs")
    assert [t.source_id for t in tickets] == ["1"]
    assert [(q.location, q.reason) for q in quarantined if q.kind == "ticket"] == [
        ("ticket 2", "spam")
    ]
    # the spam ticket's messages are stored beside it (issue 16 item 7)
    assert len([q for q in quarantined if q.kind == "message"]) == 2
    assert stats["counts"]["message"] == {"read": 6, "accepted": 4, "quarantined": 2}


def test_intercom_action_with_a_body_is_a_reply(tmp_path):
    # (verify) Intercom sends "reply and close" as a close part with a body.
    pages = _intercom(tmp_path)
    parts = pages[1]["conversations"][1]["conversation_parts"]["conversation_parts"]
    parts.append({"id": "23", "part_type": "close", "body": "<p>Closing this, enjoy!</p>",
                  "author": {"type": "bot", "name": "Operator"}, "created_at": _unix(9, 40)})  # fmt: skip
    _write(tmp_path / "ic", "p.json", pages)
    tickets, _, _ = intercom.read_tickets(tmp_path / "ic")
    t2 = next(t for t in tickets if t.source_id == "2")
    assert [(m.role, m.text) for m in t2.messages][-1] == ("agent", "Closing this, enjoy!")
    assert t2.satisfaction == "good"


# --- generic CSV / JSON Lines ------------------------------------------------------------

CSV = (
    "\ufeffTicket ID,Customer Name,Customer Message,Agent Response,Status,CSAT,Created At\n"
    '1,Maya Chen,"Hi, where is my parcel?\nIt was due Monday, write to maya.chen@example.com","Hi Maya, it shipped,'
    ' ""tracked"" today.",Resolved,5,2025-03-01\n'
    "2,Sam Ode,Do the boots run small?,,open,,2025-03-02\n"
    "3,Sam Ode,,An answer to nothing,solved,,2025-03-02\n"
    "4,Sam Ode,Can I return it?,Yes within 30 days,escalated-ish,,2025-03-03\n"
    "2,Sam Ode,Do the boots run small?,They run true to size.,solved,2,2025-03-04\n"
)


def test_generic_csv(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(CSV, encoding="utf-8")
    assert detect_format(path) == "generic_csv"
    tickets, quarantined, stats = generic.read_csv_tickets(path)
    by_id = {t.source_id: t for t in tickets}
    assert set(by_id) == {"1", "2"}
    one = by_id["1"]
    assert [m.role for m in one.messages] == ["customer", "agent"]
    assert one.messages[0].text == "Hi, where is my parcel?\nIt was due Monday, write to <EMAIL>"
    assert one.messages[1].text == 'Hi <NAME>, it shipped, "tracked" today.'
    assert (one.status, one.satisfaction) == ("solved", "good")
    assert (by_id["2"].status, by_id["2"].satisfaction) == ("solved", "bad")  # the later row
    status = "line 6: unknown status 'escalated-ish'"
    assert {(q.location, q.reason) for q in quarantined} == {
        ("line 5", "no customer message"),  # row 1 spans lines 2-3
        ("ticket 4", status),
        # the ticket's messages, and the row for ticket 2 that a later one replaced
        # (issue 16 items 7 and 11)
        ("line 6 customer message", f"its ticket 4 was quarantined: {status}"),
        ("line 6 agent message", f"its ticket 4 was quarantined: {status}"),
        ("ticket 2", "ticket 2: a later record of it has other content and replaced this one"),
    }
    assert stats["dropped"]["conflicting_duplicate_tickets"] == 1
    assert stats["counts"]["ticket"] == {"read": 4, "accepted": 2, "quarantined": 2}
    assert stats["counts"]["record"] == {"read": 1, "accepted": 0, "quarantined": 1}
    assert _reconciles(stats)


def test_generic_csv_columns_named_and_missing(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("Q,A,When\nDo you ship to Canada?,Yes we do.,2025-01-01\n", encoding="utf-8")
    with pytest.raises(StoretuneError, match="faq.csv: can't tell which column"):
        generic.read_csv_tickets(path)
    tickets, _, stats = generic.read_csv_tickets(
        path, columns={"customer": "Q", "agent": "A", "created_at": "When"}
    )
    assert [(m.role, m.text) for m in tickets[0].messages] == [
        ("customer", "Do you ship to Canada?"),
        ("agent", "Yes we do."),
    ]
    assert tickets[0].status == "solved" and _reconciles(stats)
    with pytest.raises(StoretuneError, match="no column 'Answer'"):
        generic.read_csv_tickets(path, columns={"customer": "Q", "agent": "Answer"})


def test_generic_jsonl_bad_line_quarantined(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"question": "Do you ship to Canada?", "answer": "Yes.", "status": "closed"},
            {"question": "Gift wrap?", "answer": "For $5."}]  # fmt: skip
    path.write_text(json.dumps(rows[0]) + "\n{oops\n" + json.dumps(rows[1]) + "\n")
    assert detect_format(path) == "generic_jsonl"
    tickets, quarantined, stats = generic.read_jsonl_tickets(path)
    assert [t.status for t in tickets] == ["closed", "solved"]
    assert [q.location for q in quarantined] == ["line 2"]
    assert _reconciles(stats)


def test_chat_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    good = {"messages": [
        {"role": "system", "content": "You are a helpful store assistant."},
        {"role": "user", "content": "Hi, my name is Maya. Where's my order? maya.chen@example.com"},
        {"role": "assistant", "content": [{"type": "text", "text": "It ships today."}]},
    ]}  # fmt: skip
    only_user = {"messages": [{"role": "user", "content": "hello?"}]}
    path.write_text("\n".join([json.dumps(good), "", "not json", json.dumps(only_user), "[1]"]))
    assert detect_format(path) == "chat_jsonl"
    tickets, quarantined, stats = generic.read_chat_jsonl(path)
    (t,) = tickets
    assert [(m.role, m.text) for m in t.messages] == [
        ("customer", "Hi, my name is <NAME>. Where's my order? <EMAIL>"),
        ("agent", "It ships today."),
    ]
    assert t.resolved and t.source == "chat_jsonl"
    assert [q.location for q in quarantined] == ["line 3", "line 4", "line 5"]
    assert stats["dropped"]["system_prompts"] == 1
    assert stats["counts"]["ticket"] == {"read": 4, "accepted": 1, "quarantined": 3}
    assert _reconciles(stats)


def test_detect_error_lists_every_format(tmp_path):
    path = tmp_path / "mystery.json"
    path.write_text(json.dumps({"foo": 1}))
    with pytest.raises(StoretuneError) as err:
        detect_format(path)
    for fmt in ("zendesk", "gorgias", "freshdesk", "helpscout", "intercom", "chat_jsonl"):
        assert fmt in str(err.value)


# --- into store.db -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["intercom", "generic_csv"])
def test_ingest_workspace_routes_by_detected_format(tmp_path, fmt):
    root = tmp_path / "ws"
    if fmt == "generic_csv":
        root.mkdir()
        (root / "tickets.csv").write_text(CSV, encoding="utf-8")
        source = "tickets.csv"
    else:
        _export(root, fmt)
        source = fmt
    cfg = {"brand": {"name": "Cedar & Summit", "voice": "warm"}, "sources": {"tickets": source}}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    report = ingest_workspace(Workspace(root), progress=False)
    src = report.source("tickets")
    assert src.format == fmt and report.reconciles
    assert report.db_counts["tickets"] == 2
    again = ingest_workspace(Workspace(root), fmt=fmt, progress=False)
    assert again.db_counts == report.db_counts
