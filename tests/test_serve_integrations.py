"""Helpdesk round trips against a fake Zendesk/Gorgias API on loopback.

The server runs with the scripted engine of test_serve_tickets (so a test decides what
the "model" says) on a workspace with no catalog. Each test drives the real webhook
routes and the real review page, and the outbox worker posts to the fake over HTTP
with a millisecond backoff, so outages and retries play out in well under a second.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from fastapi.testclient import TestClient
from helpdesk_fake import GORGIAS_KEY, GORGIAS_USER, ZENDESK_TOKEN, FakeHelpdesk
from test_review import csrf_of, login
from test_serve_support import KEY, wait_until
from test_serve_tickets import ScriptedEngine

from storetune.feedback import feedback_examples
from storetune.serve.app import create_app
from storetune.serve.integrations import HELPDESKS
from storetune.serve.integrations.outbox import Backoff
from storetune.serve.security import hash_password
from storetune.store import db
from storetune.store.helpdesk import HelpdeskStore
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

ZENDESK_SECRET = "zd-webhook-secret"
GORGIAS_SECRET = "gg-shared-secret"
PASSWORD = "agent-pass-123"
FAST = Backoff(base_s=0.005, factor=2.0, cap_s=0.02)


@pytest.fixture
def fake():
    with FakeHelpdesk() as f:
        yield f


@pytest.fixture
def ws(tmp_path, monkeypatch, fake) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    users = [{"username": "ana", "password_hash": hash_password(PASSWORD, iterations=1000)}]
    (root / "store.yaml").write_text(
        "brand: {name: Tiny Outfitters, voice: friendly}\n"
        f"serve: {{api_keys: [{KEY}], review_users: {json.dumps(users)}}}\n"
    )
    env = {
        "STORETUNE_ZENDESK_SUBDOMAIN": "tiny",
        "STORETUNE_ZENDESK_EMAIL": "bot@store.test",
        "STORETUNE_ZENDESK_API_TOKEN": ZENDESK_TOKEN,
        "STORETUNE_ZENDESK_WEBHOOK_SECRET": ZENDESK_SECRET,
        "STORETUNE_ZENDESK_BASE_URL": fake.url,
        "STORETUNE_GORGIAS_DOMAIN": "tiny",
        "STORETUNE_GORGIAS_USER": GORGIAS_USER,
        "STORETUNE_GORGIAS_API_KEY": GORGIAS_KEY,
        "STORETUNE_GORGIAS_SECRET": GORGIAS_SECRET,
        "STORETUNE_GORGIAS_BASE_URL": fake.url,
        "STORETUNE_SESSION_SECRET": "test-session-secret",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Workspace(root)


def serve(ws: Workspace) -> TestClient:
    app = create_app(ws, ScriptedEngine())
    app.state.helpdesk_backoff = FAST
    return TestClient(app, follow_redirects=False)


def zendesk_post(client, payload: dict, secret: str = ZENDESK_SECRET):
    body = json.dumps(payload).encode()
    stamp = "2026-03-18T10:00:00Z"
    mac = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    headers = {
        "X-Zendesk-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return client.post("/v1/integrations/zendesk", content=body, headers=headers)


def gorgias_post(client, payload: dict, secret: str = GORGIAS_SECRET):
    headers = {"X-Storetune-Secret": secret}
    return client.post("/v1/integrations/gorgias", json=payload, headers=headers)


def zendesk_created(ticket: str, text: str) -> dict:
    return {
        "type": "zen:event-type:ticket.created",
        "account_id": 12514403,
        "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
        "time": "2026-03-18T09:59:58Z",
        "zendesk_event_version": "2022-06-20",
        "subject": f"zen:ticket:{ticket}",
        "detail": {
            "id": ticket,
            "subject": "A question",
            "description": text,
            "requester_id": "6596848315901",
            "created_at": "2026-03-18T09:59:50Z",
            "status": "NEW",
            "tags": [],
        },
        "event": {},
    }


def zendesk_comment(ticket: str, body: str, public: bool = True, staff: bool = True) -> dict:
    author = {"id": "42", "is_staff": staff, "name": "Ana Agent"}
    return {
        "type": "zen:event-type:ticket.comment_added",
        "detail": {"id": ticket, "subject": "A question"},
        "event": {"comment": {"id": "9", "body": body, "is_public": public, "author": author}},
    }


def reviewed(ws: Workspace) -> list:
    conn = db.connect(ws.db_path)
    try:
        return feedback_examples(conn, ws.config())
    finally:
        conn.close()


def review_page_action(client, ticket_id: int, action: str, **form) -> None:
    if "storetune_review" not in client.cookies:
        assert login(client, password=PASSWORD).status_code == 303
    token = csrf_of(client.get("/review").text)
    r = client.post(f"/review/{ticket_id}/{action}", data={"csrf": token, **form})
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers


# ---- Zendesk ----------------------------------------------------------------------------------


def test_zendesk_round_trip(ws, fake):
    with serve(ws) as client:
        queue = ReviewQueue(ws.db_path)
        forged = zendesk_post(client, zendesk_created("35436", "Hi"), secret="guess")
        assert forged.status_code == 401
        assert queue.counts()["waiting"] == 0 and fake.calls == []

        first = zendesk_post(client, zendesk_created("35436", "Do you ship to Canada?"))
        assert first.status_code == 200 and first.json()["status"] == "routed"
        ticket_id = first.json()["ticket_id"]
        again = zendesk_post(client, zendesk_created("35436", "Do you ship to Canada?"))
        assert again.json() == {"status": "duplicate", "ticket_id": ticket_id}
        assert queue.counts()["waiting"] == 1

        wait_until(lambda: fake.of("zendesk", "35436"), "the internal note")
        [note] = fake.of("zendesk", "35436")
        draft = queue.get(ticket_id)
        assert note.body["comment"]["public"] is False
        assert draft.response in note.body["comment"]["body"]
        assert f"Confidence: {draft.confidence}" in note.body["comment"]["body"]
        assert all(reason in note.body["comment"]["body"] for reason in draft.reasons)
        assert "storetune" in note.body["additional_tags"]
        assert "storetune_escalate" not in note.body["additional_tags"]

        review_page_action(client, ticket_id, "approve")
        wait_until(lambda: len(fake.of("zendesk", "35436")) == 2, "the public reply")
        reply = fake.of("zendesk", "35436")[1].body["comment"]
        assert reply == {"body": draft.response, "public": True}
        # Zendesk tells us about the reply we posted: not an agent's edit
        echo = zendesk_post(client, zendesk_comment("35436", draft.response))
        assert echo.json()["status"] == "ignored"
    assert len(fake.of("zendesk", "35436")) == 2
    assert [(e.ticket_id, e.action) for e in reviewed(ws)] == [(ticket_id, "approved")]


def test_zendesk_escalation_is_tagged_and_helpdesk_edit_is_fed_back(ws, fake):
    with serve(ws) as client:
        r = zendesk_post(client, zendesk_created("77", "I want to talk to a human, now."))
        ticket_id = r.json()["ticket_id"]
        assert r.json()["escalate"] is True
        wait_until(lambda: fake.of("zendesk", "77"), "the internal note")
        note = fake.of("zendesk", "77")[0].body
        assert "storetune_escalate" in note["additional_tags"]
        assert "HAND OVER" in note["comment"]["body"]

        for ignored in (
            zendesk_comment("77", "internal remark", public=False),
            zendesk_comment("77", "Any news?", staff=False),
            zendesk_comment("999", "not our ticket"),
        ):
            assert zendesk_post(client, ignored).json()["status"] == "ignored"
        sent = "Hi! I'm Ana from the team, I'll call you back within the hour."
        r = zendesk_post(client, zendesk_comment("77", sent))
        assert r.json() == {"status": "edited", "ticket_id": ticket_id}
        decided = ReviewQueue(ws.db_path).get(ticket_id)
        assert (decided.final_text, decided.decided_by) == (sent, "zendesk:Ana Agent")
        client.app.state.helpdesk_worker.run_once()  # a round with the decision in store.db
    [example] = reviewed(ws)
    assert example.action == "edited" and example.messages[-1]["content"] == sent
    assert len(fake.of("zendesk", "77")) == 1  # the agent's reply is never posted twice


def test_zendesk_trigger_body_and_bad_payloads(ws, fake):
    with serve(ws) as client:
        trigger = {
            "ticket": {
                "id": "501",
                "subject": "Sizing",
                "description": "Which size should I take?",
                "requester": {"name": "Jo Buyer", "email": "jo@example.com"},
            }
        }
        r = zendesk_post(client, trigger)
        assert r.json()["status"] == "routed"
        assert ReviewQueue(ws.db_path).get(r.json()["ticket_id"]).customer == {
            "name": "Jo Buyer",
            "email": "jo@example.com",
        }
        assert zendesk_post(client, {"ticket": {"id": "abc"}}).status_code == 400
        assert zendesk_post(client, {"hello": 1}).status_code == 400
        assert zendesk_post(client, {"type": "zen:event-type:user.created"}).json()["status"] == (
            "ignored"
        )


# ---- Gorgias ----------------------------------------------------------------------------------


def gorgias_created(ticket: str, text: str) -> dict:
    # the body of the README's HTTP integration, as Gorgias renders its variables
    return {
        "event": "ticket_created",
        "ticket_id": ticket,
        "subject": "Return",
        "customer_email": "sam@example.com",
        "customer_name": "Sam Shopper",
        "channel": "email",
        "message": text,
        "from_agent": "False",
    }


def test_gorgias_round_trip_with_edit_in_storetune(ws, fake):
    with serve(ws) as client:
        queue = ReviewQueue(ws.db_path)
        assert gorgias_post(client, gorgias_created("8", "Hi"), secret="nope").status_code == 401
        assert gorgias_post(client, gorgias_created("8", "Hi"), secret="").status_code == 401
        assert queue.counts()["waiting"] == 0

        r = gorgias_post(client, gorgias_created("8", "Can I return my boots?"))
        ticket_id = r.json()["ticket_id"]
        assert gorgias_post(client, gorgias_created("8", "Can I return my boots?")).json() == {
            "status": "duplicate",
            "ticket_id": ticket_id,
        }
        wait_until(lambda: len(fake.of("gorgias", "8")) == 2, "the note and its tags")
        note, tags = fake.of("gorgias", "8")
        assert note.body["channel"] == "internal-note" and note.body["from_agent"] is True
        assert queue.get(ticket_id).response in note.body["body_text"]
        assert tags.kind == "tags" and "storetune" in tags.body["names"]

        edited = "Yes! Send the boots back within 30 days for a full refund."
        review_page_action(client, ticket_id, "edit", text=edited)
        wait_until(lambda: len(fake.of("gorgias", "8")) == 3, "the public reply")
        reply = fake.of("gorgias", "8")[2].body
        assert reply["body_text"] == edited and reply["channel"] == "email"
        assert reply["receiver"] == {"email": "sam@example.com"}
    [example] = reviewed(ws)
    assert example.action == "edited" and example.messages[-1]["content"] == edited


def test_gorgias_agent_message_is_fed_back(ws, fake):
    nested = {
        "ticket": {
            "id": 12,
            "channel": "chat",
            "customer": {"email": "kim@example.com", "name": "Kim"},
            "messages": [{"body_text": "Is the tent waterproof?", "from_agent": False}],
        }
    }
    with serve(ws) as client:
        ticket_id = gorgias_post(client, nested).json()["ticket_id"]
        note = {"ticket_id": 12, "message": {"channel": "internal-note", "from_agent": True,
                                             "body_text": "checking"}}  # fmt: skip
        assert gorgias_post(client, note).json()["status"] == "ignored"
        follow_up = {"event": "ticket_message_created", "ticket_id": 12, "message": "hello?"}
        assert gorgias_post(client, follow_up).json()["status"] == "ignored"
        sent = "Yes, it is rated to 3000 mm."
        agent = {"ticket": {"id": 12}, "message": {"channel": "chat", "from_agent": True,
                 "body_text": sent, "sender": {"email": "ana@store.test"}}}  # fmt: skip
        assert gorgias_post(client, agent).json() == {"status": "edited", "ticket_id": ticket_id}
    decided = ReviewQueue(ws.db_path).get(ticket_id)
    assert (decided.status, decided.decided_by) == ("edited", "gorgias:ana@store.test")
    assert [c.kind for c in fake.of("gorgias", "12")] == ["message", "tags"]


def test_gorgias_message_integration_body_is_fed_back(ws, fake):
    with serve(ws) as client:
        ticket_id = gorgias_post(client, gorgias_created("13", "Is it in stock?")).json()[
            "ticket_id"
        ]
        sent = "Yes, all sizes ship today."
        agent = {"event": "ticket_message_created", "ticket_id": "13", "message": sent,
                 "from_agent": "True", "channel": "email", "sender_email": "ben@store.test"}  # fmt: skip
        assert gorgias_post(client, agent).json() == {"status": "edited", "ticket_id": ticket_id}
    decided = ReviewQueue(ws.db_path).get(ticket_id)
    assert (decided.final_text, decided.decided_by) == (sent, "gorgias:ben@store.test")


# ---- outages, restarts, configuration ------------------------------------------------------


def pending(ws: Workspace) -> int:
    store = HelpdeskStore(ws.db_path)
    try:
        return store.pending()
    finally:
        store.close()


def test_outage_is_retried_with_backoff_and_survives_a_restart(ws, fake):
    fake.down = True
    with serve(ws) as client:
        r = zendesk_post(client, zendesk_created("600", "Where is my order?"))
        assert r.status_code == 200  # the draft is safe in store.db whatever the helpdesk does
        wait_until(lambda: fake.failures >= 3, "three refused attempts")
    # the server stopped while Zendesk was still down: the note waits in store.db
    assert pending(ws) == 1 and fake.calls == []
    store = HelpdeskStore(ws.db_path)
    (row,) = store.conn.execute("SELECT attempts, last_error FROM helpdesk_outbox").fetchall()
    store.close()
    assert row[0] >= 3 and row[1].startswith("HTTP 500")

    fake.down = False
    fake.fail_next = 2  # still flaky for a moment after the restart
    with serve(ws):
        wait_until(lambda: fake.of("zendesk", "600"), "the note after the restart")
    assert len(fake.of("zendesk", "600")) == 1 and pending(ws) == 0


def outbox_errors(ws: Workspace) -> list[str | None]:
    store = HelpdeskStore(ws.db_path)
    try:
        return [r[0] for r in store.conn.execute("SELECT last_error FROM helpdesk_outbox")]
    finally:
        store.close()


def test_refused_connection_is_retried(ws, fake):
    fake.__exit__()  # nothing listens on the fake's port any more
    with serve(ws) as client:
        gorgias_post(client, gorgias_created("31", "Do you have gift cards?"))
        wait_until(lambda: len(outbox_errors(ws)) == 2 and all(outbox_errors(ws)), "two refusals")
        assert all(e.startswith("ConnectError") for e in outbox_errors(ws))
        assert pending(ws) == 2


def test_backoff_grows_exponentially_to_its_cap():
    b = Backoff(base_s=5, factor=2, cap_s=60)
    assert [b.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_unconfigured_helpdesk_answers_503_naming_the_variables(ws, monkeypatch):
    monkeypatch.delenv("STORETUNE_GORGIAS_API_KEY")
    with serve(ws) as client:
        r = gorgias_post(client, gorgias_created("1", "hi"))
        assert r.status_code == 503 and "STORETUNE_GORGIAS_API_KEY" in r.text
        assert client.post("/v1/integrations/freshdesk", json={}).status_code == 404
        assert zendesk_post(client, zendesk_created("1", "still on")).status_code == 200
    assert set(HELPDESKS) == {"zendesk", "gorgias"}
