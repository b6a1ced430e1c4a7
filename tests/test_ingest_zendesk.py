"""Zendesk reader: real Airbyte fixtures (read in place) and small exports written here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from storetune.errors import StoretuneError
from storetune.ingest import ingest_workspace
from storetune.ingest.detect import detect_format
from storetune.ingest.zendesk import read_tickets
from storetune.store import db
from storetune.workspace import Workspace

HELPDESK = Path(__file__).resolve().parents[2] / "shared" / "data" / "helpdesk"
TICKETS = HELPDESK / "zendesk_incremental_tickets.json"
EVENTS = HELPDESK / "zendesk_ticket_events_comments.json"


def _reconciles(stats) -> bool:
    return all(c["read"] == c["accepted"] + c["quarantined"] for c in stats["counts"].values())


# --- real fixtures ------------------------------------------------------------------


def test_airbyte_fixtures_together():
    tickets, quarantined, stats = read_tickets([TICKETS, EVENTS])
    assert not quarantined
    (t,) = tickets
    assert (t.source, t.source_id, t.status) == ("zendesk", "35436", "open")
    assert t.subject == "Help, my printer is on fire!"
    assert t.tags == ["enterprise", "other_tag"]
    assert (t.channel, t.satisfaction) == ("web", "good")
    # the description is not among the events, so it opens the conversation
    assert [(m.role, m.text) for m in t.messages] == [
        ("customer", "The fire is very colorful."),
        ("agent", "Test comment"),  # author is the assignee
    ]
    assert stats["counts"]["message"] == {"read": 2, "accepted": 2, "quarantined": 0}
    assert _reconciles(stats)


def test_airbyte_tickets_page_alone_uses_description():
    tickets, _, stats = read_tickets(TICKETS)
    assert [m.text for m in tickets[0].messages] == ["The fire is very colorful."]
    assert stats["counts"]["ticket"] == {"read": 1, "accepted": 1, "quarantined": 0}


def test_events_without_their_ticket_are_quarantined():
    tickets, quarantined, stats = read_tickets(EVENTS)
    assert tickets == []
    assert [q.kind for q in quarantined] == ["message"]
    assert "35436" in quarantined[0].reason and quarantined[0].source_file == str(EVENTS)
    assert _reconciles(stats)


def test_detect_zendesk():
    assert detect_format(TICKETS) == "zendesk"
    assert detect_format(EVENTS) == "zendesk"


# --- an export written here ---------------------------------------------------------------

USERS = [
    {"id": 1, "name": "Maya Chen", "email": "maya.chen@example.com", "role": "end-user"},
    {"id": 2, "name": "Jordan Price", "email": "jordan@cedarsummit.com", "role": "agent"},
    {"id": 3, "name": "Sam Okafor", "email": "sam@example.org", "role": "end-user"},
    {"id": 4, "name": "Ana Ruiz", "email": "ana@cedarsummit.com", "role": "admin"},
]


def _ticket(tid, subject, status, description, requester=1, updated="2025-03-02T00:00:00Z", **kw):
    return {
        "id": tid, "subject": subject, "status": status, "description": description,
        "requester_id": requester, "assignee_id": 2, "tags": ["shipping"],
        "via": {"channel": "email"}, "created_at": "2025-03-01T09:00:00Z",
        "updated_at": updated, "satisfaction_rating": {"score": "unoffered"}, **kw,
    }  # fmt: skip


def _comment(cid, author, body, when, public=True):
    return {"id": cid, "event_type": "Comment", "author_id": author, "body": body,
            "public": public, "created_at": when}  # fmt: skip


def _write_export(root: Path) -> Path:
    d = root / "zendesk"
    d.mkdir(parents=True)
    opener = "Hi, where is my order #10482? My phone is 503-555-0142.\n\nThanks,\nMaya"
    page1 = {
        "tickets": [
            _ticket(101, "Where is my order?", "solved", opener),
            _ticket(102, "Refund", "open", "I want a refund for the boots"),
        ],
        "users": USERS[:2], "end_of_stream": False, "after_cursor": "abc",
    }  # fmt: skip
    page2 = {
        "tickets": [
            # the same ticket again, changed later: the newer record wins
            _ticket(102, "Refund", "closed", "I want a refund for the boots",
                    updated="2025-03-05T00:00:00Z", satisfaction_rating={"score": "bad"}),
            _ticket(103, "Charge", "solved", "I will file a chargeback if this isn't fixed.",
                    requester=3),
            _ticket(104, "Spam", "deleted", "spam"),
            _ticket(105, "Empty", "solved", ""),
        ],
        "users": USERS[2:], "end_of_stream": True,
    }  # fmt: skip
    events = {
        "ticket_events": [
            {"ticket_id": 101, "created_at": "2025-03-01T09:00:00Z", "child_events": [
                _comment(1, 1, opener, "2025-03-01T09:00:00Z"),
                {"id": 2, "event_type": "Change", "field_name": "status", "value": "open"},
            ]},
            {"ticket_id": 101, "created_at": "2025-03-01T12:00:00Z", "child_events": [
                # out of order on purpose: sorted by created_at
                _comment(4, 1, "Great, thank you Jordan!", "2025-03-01T12:00:00Z"),
                _comment(3, 2, "Hi Maya,\n\nIt shipped today, tracking number is 123456789012."
                         "\n\nBest,\nJordan P.\nCedar & Summit Customer Care\njordan@cedarsummit.com",
                         "2025-03-01T10:00:00Z"),
                _comment(5, 2, "Customer called from +1 (503) 555-0142, VIP.",
                         "2025-03-01T10:30:00Z", public=False),
                {"id": 6, "event_type": "Notification", "body": "sent"},
            ]},
        ],
        "end_of_stream": True,
    }  # fmt: skip
    (d / "tickets-00001.json").write_text(json.dumps(page1))
    (d / "tickets-00002.json").write_text(json.dumps(page2))
    (d / "ticket_events-00001.json").write_text(json.dumps(events))
    # per-ticket comments file, and one page as JSON Lines
    comments = {"comments": [
        {"id": 30, "author_id": 3, "plain_body": "I will file a chargeback if this isn't fixed.",
         "public": True, "created_at": "2025-03-01T09:00:00Z"},
        {"id": 31, "author_id": 4, "html_body": "<p>Sorry Sam, I have passed this to our team.</p>",
         "public": True, "created_at": "2025-03-01T11:00:00Z"},
    ]}  # fmt: skip
    (d / "comments-103.json").write_text(json.dumps(comments))
    (d / "tickets-00003.jsonl").write_text(
        json.dumps({"tickets": [_ticket(106, "Sizing", "solved", "Does the M fit?")]})
        + "\n" + json.dumps({"ticket_events": []}) + "\n"
    )  # fmt: skip
    return d


def test_directory_export(tmp_path):
    tickets, quarantined, stats = read_tickets(_write_export(tmp_path))
    by_id = {t.source_id: t for t in tickets}
    assert set(by_id) == {"101", "102", "103", "106"}
    assert by_id["102"].status == "closed" and by_id["102"].satisfaction == "bad"
    assert stats["dropped"]["duplicate_ticket_records"] == 1
    assert stats["dropped"]["system_events"] == 2
    reasons = {q.location: q.reason for q in quarantined}
    assert reasons["ticket 104"] == "ticket was deleted in Zendesk"
    assert reasons["ticket 105"] == "ticket has no message text"
    assert _reconciles(stats)
    assert stats["counts"]["ticket"] == {"read": 6, "accepted": 4, "quarantined": 2}


def test_conversation_rebuilt_in_order_with_notes_and_clean_text(tmp_path):
    tickets, _, stats = read_tickets(_write_export(tmp_path))
    t = next(t for t in tickets if t.source_id == "101")
    assert [m.role for m in t.messages] == ["customer", "agent", "note", "customer"]
    opener, reply, note, thanks = (m.text for m in t.messages)
    # the description equals the first comment: it is not added twice
    assert opener == "Hi, where is my order <ORDER_ID>? My phone is <PHONE>."
    assert reply == "Hi <NAME>,\n\nIt shipped today, tracking number is <TRACKING>."
    assert note == "Customer called from <PHONE>, VIP."
    assert thanks == "Great, thank you <NAME>!"
    assert all(m.author in {"customer", "agent"} for m in t.messages)
    assert stats["notes"] == 1
    assert stats["pii"]["PHONE"] == 2 and stats["pii"]["NAME"] >= 2
    assert t.public_messages() == [m for m in t.messages if m.role != "note"]


def test_comment_files_html_bodies_and_jsonl(tmp_path):
    tickets, _, _ = read_tickets(_write_export(tmp_path))
    by_id = {t.source_id: t for t in tickets}
    charge = by_id["103"]
    assert [m.role for m in charge.messages] == ["customer", "agent"]  # admin counts as agent
    assert charge.messages[1].text == "Sorry <NAME>, I have passed this to our team."
    assert [m.text for m in by_id["106"].messages] == ["Does the M fit?"]


def test_human_only_from_default_topics(tmp_path):
    tickets, _, stats = read_tickets(_write_export(tmp_path))
    flagged = {t.source_id: t.human_only_reason for t in tickets if t.human_only}
    assert flagged == {"103": "fraud_chargeback"}
    assert stats["human_only"] == {"fraud_chargeback": 1}


def test_json_lines_of_tickets(tmp_path):
    path = tmp_path / "tickets.jsonl"
    rows = [_ticket(1, "A", "solved", "first"), _ticket(2, "B", "pending", "second")]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tickets, _, _ = read_tickets(path)
    assert [(t.source_id, t.status) for t in tickets] == [("1", "solved"), ("2", "pending")]


def test_truncated_page_names_file_and_line(tmp_path):
    path = tmp_path / "tickets-00001.json"
    path.write_text(TICKETS.read_text()[:400])
    with pytest.raises(StoretuneError) as err:
        read_tickets(path)
    assert str(path) in str(err.value) and "line" in str(err.value)


def test_missing_path(tmp_path):
    with pytest.raises(StoretuneError, match="not found"):
        read_tickets(tmp_path / "nope")


# --- into store.db ------------------------------------------------------------------------


def _workspace(root: Path) -> Workspace:
    _write_export(root)
    cfg = {
        "brand": {"name": "Cedar & Summit", "voice": "warm"},
        "policies": {"contact": {"email": "help@cedarsummit.com"}},
        "escalation": {"always": [
            {"name": "refund_dispute", "reason": "money", "keywords": ["chargeback"]},
        ]},
        "sources": {"tickets": "zendesk", "products": None},
    }  # fmt: skip
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Workspace(root)


def test_ingest_tickets_idempotent_with_config_topics(tmp_path):
    ws = _workspace(tmp_path / "ws")
    first = ingest_workspace(ws, progress=True)  # progress bar must not break anything
    second = ingest_workspace(ws, progress=False)
    assert first.db_counts == second.db_counts
    c = second.db_counts
    assert (c["tickets"], c["resolved_tickets"], c["notes"]) == (4, 4, 1)
    # 2 tickets, and the deleted ticket's message kept beside it (issue 16 item 7)
    assert c["quarantine"] == 3 and c["human_only_tickets"] == 1
    assert second.reconciles
    conn = db.connect(ws.db_path)
    resolved = {t.source_id: t for t in db.load_tickets(conn)}
    assert set(resolved) == {"101", "102", "103", "106"}
    assert [m.role for m in resolved["101"].messages] == ["customer", "agent", "note", "customer"]
    charge = resolved["103"]
    assert charge.human_only_reason == "refund_dispute"
    saved = json.loads((ws.reports_dir / "ingest.json").read_text())
    src = saved["sources"][0]
    assert src["name"] == "tickets" and src["pii"]["PHONE"] == 2 and src["reconciles"]


# --- the demo store, end to end ----------------------------------------------------------


def test_demo_store_ingests_clean(tmp_path):
    from storetune.demo.store_gen import generate_demo_store

    root = tmp_path / "demo"
    generate_demo_store(root, seed=0, n_products=40, n_tickets=200)
    ws = Workspace(root)
    report = ingest_workspace(ws, progress=False)
    assert report.reconciles
    products, tickets = report.source("products"), report.source("tickets")
    assert products.counts["product"]["accepted"] == 40
    assert set(products.flags) == {"placeholder", "boilerplate", "broken_html"}
    assert tickets.counts["ticket"]["accepted"] == 200
    assert tickets.dropped["system_events"] > 0 and tickets.notes > 0
    topics = {t.name for t in ws.config().escalation.always}
    assert tickets.human_only and set(tickets.human_only) <= topics
    assert {"NAME", "EMAIL", "PHONE", "ADDRESS", "ORDER_ID"} <= set(tickets.pii)

    conn = db.connect(ws.db_path)
    texts = [m.text for t in db.load_tickets(conn, resolved_only=False) for m in t.messages]
    corpus = "\n".join(texts)
    users = [u for f in sorted((root / "zendesk").glob("tickets-*.json"))
             for u in json.loads(f.read_text())["users"]]  # fmt: skip
    for u in users:  # no helpdesk user's name, email or phone survives
        for value in (u["name"], u["name"].split()[0], u.get("email"), u.get("phone")):
            if value:
                assert not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", corpus), value
    assert not re.search(r"\n(?:Best|Cheers|Thanks|Happy trails),?\n", corpus)  # sign-offs gone
    assert ingest_workspace(ws, progress=False).db_counts == report.db_counts


def test_bad_ticket_export_writes_nothing(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "tickets.json").write_text(TICKETS.read_text()[:300])
    cfg = {"brand": {"name": "S", "voice": "v"}, "sources": {"tickets": "tickets.json"}}
    (root / "store.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    ws = Workspace(root)
    with pytest.raises(StoretuneError, match="tickets.json line"):
        ingest_workspace(ws, progress=False)
    assert not ws.db_path.exists() and not (ws.reports_dir / "ingest.json").exists()


# --- on the shared helpdesk base: where Zendesk's own copies had diverged -------------------


def _one_page(tmp_path: Path, tickets: list, events: list | None = None) -> Path:
    page = tmp_path / "zendesk.json"
    page.write_text(json.dumps({"tickets": tickets, "users": USERS, "ticket_events": events or []}))
    return page


def test_impossible_times_are_empty_not_text(tmp_path):
    # The base's iso: a boolean or an out-of-range epoch is no time (Zendesk kept "True").
    page = _one_page(
        tmp_path,
        [
            _ticket(1, "A", "open", "Where is my parcel?", created_at=True),
            _ticket(2, "B", "open", "Where is my parcel now?", created_at=1e20),
        ],
    )
    tickets, _, _ = read_tickets(page)
    assert [(t.source_id, t.created_at) for t in tickets] == [("1", ""), ("2", "")]
    assert all(m.created_at == "" for t in tickets for m in t.messages)


def test_a_time_the_platform_cannot_convert_sorts_last_instead_of_failing(tmp_path, monkeypatch):
    # Windows raises OSError for naive times before 1970; Zendesk's own time key did not
    # catch it and the whole read failed. The base's puts such a comment last.
    from datetime import datetime

    from storetune.ingest import helpdesk

    class WindowsDatetime(datetime):
        def timestamp(self) -> float:
            if self.tzinfo is None and self.year < 1970:
                raise OSError(22, "Invalid argument")
            return super().timestamp()

    monkeypatch.setattr(helpdesk, "datetime", WindowsDatetime)
    events = [
        {"ticket_id": 1, "child_events": [
            _comment(11, 2, "An agent reply from a broken clock.", "1960-01-01T00:00:00"),
            _comment(12, 2, "We shipped it this morning.", "2025-03-01T10:00:00Z"),
        ]},
    ]  # fmt: skip
    tickets, _, _ = read_tickets(_one_page(tmp_path, [_ticket(1, "A", "open", "Where?")], events))
    assert [m.text for m in tickets[0].messages] == [
        "Where?",
        "We shipped it this morning.",
        "An agent reply from a broken clock.",
    ]


def test_numeric_update_times_keep_the_newest_record(tmp_path):
    # Zendesk compared update times as text ("9" > "10"); the base compares numbers.
    page = _one_page(
        tmp_path,
        [
            _ticket(1, "Refund", "open", "I want a refund", updated=9),
            _ticket(1, "Refund", "closed", "I want a refund", updated=10),
        ],
    )
    tickets, _, stats = read_tickets(page)
    assert [t.status for t in tickets] == ["closed"]
    assert stats["dropped"]["duplicate_ticket_records"] == 1


def test_an_empty_ticket_id_is_quarantined(tmp_path):
    # Zendesk only refused a missing id; an empty one became ticket "" (the base refuses both).
    page = _one_page(tmp_path, [_ticket("", "A", "open", "Where is my parcel?")])
    tickets, quarantined, stats = read_tickets(page)
    assert tickets == []
    assert [(q.kind, q.reason) for q in quarantined] == [("ticket", "ticket has no id")]
    assert _reconciles(stats)


def test_the_description_opens_the_conversation_even_undated(tmp_path):
    # Zendesk's behaviour, kept: the description is the first message whatever its time;
    # the base used to sort an undated opener last.
    ticket = _ticket(1, "A", "open", "My boots came apart after a week.", created_at=None)
    events = [{"ticket_id": 1, "child_events": [
        _comment(11, 2, "Sorry to hear that, a replacement is on its way.", "2025-03-01T10:00:00Z"),
    ]}]  # fmt: skip
    tickets, _, _ = read_tickets(_one_page(tmp_path, [ticket], events))
    assert [(m.role, m.text[:8]) for m in tickets[0].messages] == [
        ("customer", "My boots"),
        ("agent", "Sorry to"),
    ]


def test_a_rejected_ticket_is_quarantined_whole(tmp_path):
    # Zendesk's behaviour, kept: the quarantine holds the record (the base kept the subject).
    page = _one_page(tmp_path, [_ticket(7, "Old", "archived", "Where is my parcel?")])
    _, quarantined, _ = read_tickets(page)
    assert [(q.location, q.reason) for q in quarantined] == [
        ("ticket 7", "unknown status 'archived'"),
        # its messages are stored too (issue 16 item 7)
        ("ticket 7 description", "its ticket 7 was quarantined: unknown status 'archived'"),
    ]
    assert json.loads(quarantined[0].raw)["status"] == "archived"
    assert json.loads(quarantined[1].raw) == "Where is my parcel?"


def test_an_orphan_comment_is_named_in_the_quarantine(tmp_path):
    # Zendesk's behaviour, kept: the location names the comment, not only the ticket.
    events = [{"ticket_id": 999, "child_events": [
        _comment(55, 2, "Reply to a ticket not in the export.", "2025-03-01T10:00:00Z"),
    ]}]  # fmt: skip
    _, quarantined, stats = read_tickets(_one_page(tmp_path, [], events))
    assert [(q.kind, q.location) for q in quarantined] == [("message", "ticket 999 comment 55")]
    assert _reconciles(stats)
