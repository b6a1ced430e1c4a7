"""The review queue (store.db) and the review page (login, CSRF, approve/edit/reject, audit)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from test_serve_support import KEY
from test_serve_tickets import ScriptedEngine

from storetune.serve.app import create_app
from storetune.serve.security import hash_password
from storetune.store import db
from storetune.store.review import NewTicket, ReviewError, ReviewQueue, reviewed_tickets
from storetune.workspace import Workspace

PASSWORD = "correct horse battery"


def new_ticket(message: str = "Can I return my jacket?", **kw) -> NewTicket:
    fields = {
        "model": "support",
        "message": message,
        "system_prompt": "You are the support assistant.\nPolicies:\n- Returns: within 30 days.",
        "raw_draft": "Yes! Returns are free within 30 days.",
        "draft": "Yes! Returns are free within 30 days.",
        "response": "Yes! Returns are free within 30 days.",
        "confidence": "medium",
        "escalate": False,
        "reasons": ["mean log-prob -0.40 is below -0.25 for high confidence"],
        "sources": [
            {"handle": "tent", "title": "Larch 1P Dome Tent", "price": "$199.00", "in_stock": True}
        ],
    }
    return NewTicket(**(fields | kw))


# ---- the queue ------------------------------------------------------------------------------


@pytest.fixture
def queue(tmp_path) -> ReviewQueue:
    return ReviewQueue(tmp_path / "store.db")


def test_migration_creates_the_queue_tables_in_memory():
    conn = db.connect(":memory:")
    names = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    assert {"m002_retrieval_index", "m003_review_queue"} <= names
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"review_tickets", "review_audit", "index_vectors", "index_meta"} <= tables


def test_states_and_audit(queue):
    a, b, c = (queue.add(new_ticket(f"question {i}")) for i in range(3))
    sent = queue.add(new_ticket("auto"), auto_send=True)
    assert [t.id for t in queue.tickets("waiting")] == [a, b, c]
    assert queue.get(sent).status == "sent" and queue.get(sent).decided_by == "auto"

    assert queue.approve(a, "ana").final_text == "Yes! Returns are free within 30 days."
    edited = queue.edit(b, "ben", "Sure, returns are free within 30 days of delivery.")
    assert (edited.status, edited.decided_by) == ("edited", "ben")
    rejected = queue.reject(c, "cy", "wrong product")
    assert (rejected.status, rejected.final_text, rejected.reject_reason) == (
        "rejected",
        None,
        "wrong product",
    )
    assert queue.counts() == {"waiting": 0, "sent": 1, "approved": 1, "edited": 1, "rejected": 1}

    trail = {r.ticket_id: r for r in queue.audit() if r.actor != "router"}
    assert trail[b].before == {"status": "waiting", "text": "Yes! Returns are free within 30 days."}
    assert trail[b].after["text"].startswith("Sure, returns") and trail[b].action == "edited"
    assert trail[c].after == {"status": "rejected", "text": None, "reason": "wrong product"}
    assert {r.action for r in queue.audit(sent)} == {"auto_sent"}
    assert all(r.at for r in queue.audit())


def test_reviewed_tickets_are_the_approved_and_edited_ones_in_decision_order(queue):
    a, b, c, d = (queue.add(new_ticket(f"question {i}")) for i in range(4))
    queue.add(new_ticket("auto"), auto_send=True)
    queue.edit(c, "ben", "Returns are free within 30 days of delivery.")
    queue.reject(b, "cy", "wrong product")
    queue.approve(a, "ana")
    # Ordered by when agents decided (c before a here), not by ticket id; d still waits.
    queue.conn.execute("UPDATE review_tickets SET decided_at = '2026-01-01' WHERE id = ?", (c,))
    queue.conn.execute("UPDATE review_tickets SET decided_at = '2026-01-02' WHERE id = ?", (a,))
    assert [(t.id, t.status) for t in reviewed_tickets(queue.conn)] == [
        (c, "edited"),
        (a, "approved"),
    ]
    assert queue.get(d).status == "waiting"


def test_only_waiting_drafts_can_be_decided(queue):
    t = queue.add(new_ticket())
    queue.approve(t, "ana")
    with pytest.raises(ReviewError, match="already approved"):
        queue.reject(t, "ben", "too late")
    with pytest.raises(ReviewError, match="does not exist"):
        queue.approve(999, "ana")
    u = queue.add(new_ticket())
    with pytest.raises(ReviewError, match="empty"):
        queue.edit(u, "ana", "   ")
    with pytest.raises(ReviewError, match="reason"):
        queue.reject(u, "ana", "")
    assert queue.get(u).status == "waiting"
    # the proposed text sent back with only whitespace changes is an approval
    assert queue.edit(u, "ana", "Yes!  Returns are free\r\nwithin 30 days.").status == "approved"


# ---- the page -------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    users = [
        {"username": "ana", "password_hash": hash_password(PASSWORD, iterations=1000)},
        {"username": "ben", "password_env": "BEN_PASSWORD"},
    ]
    (root / "store.yaml").write_text(
        "brand: {name: Tiny Outfitters, voice: friendly}\n"
        f"serve: {{api_keys: [{KEY}], review_users: {__import__('json').dumps(users)}}}\n"
    )
    monkeypatch.setenv("BEN_PASSWORD", "ben-pass-123")
    monkeypatch.setenv("STORETUNE_SESSION_SECRET", "test-secret-key")
    ws = Workspace(root)
    queue = ReviewQueue(ws.db_path)
    ids = [
        queue.add(new_ticket("Is the <script>alert(1)</script> tent waterproof?")),
        queue.add(new_ticket("Can I return my jacket?")),
        queue.add(new_ticket("Where is my parcel?", escalate=True, confidence="low")),
    ]
    with TestClient(create_app(ws, ScriptedEngine()), follow_redirects=False) as client:
        yield client, queue, ids


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, user: str = "ana", password: str = PASSWORD):
    page = client.get("/review/login")
    return client.post(
        "/review/login",
        data={"username": user, "password": password, "csrf": csrf_of(page.text)},
    )


def test_review_page_requires_login(site):
    client, _, ids = site
    for path in ("/review", "/review/history"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/review/login"
    r = client.post(f"/review/{ids[0]}/approve", data={"csrf": "x"})
    assert r.status_code == 303 and r.headers["location"] == "/review/login"


def test_wrong_password_and_forged_cookie_are_refused(site):
    client, _, _ = site
    r = login(client, password="guess")
    assert r.status_code == 401 and "Wrong username or password" in r.text
    assert "storetune_review" not in client.cookies
    r = login(client, user="nobody")
    assert r.status_code == 401
    client.cookies.set("storetune_review", "eyJ1IjogImFuYSJ9.deadbeef", path="/review")
    assert client.get("/review").status_code == 303


def test_login_form_needs_its_csrf_token(site):
    client, _, _ = site
    client.get("/review/login")
    r = client.post("/review/login", data={"username": "ana", "password": PASSWORD, "csrf": "x"})
    assert r.status_code == 401 and "expired" in r.text


def test_repeated_failures_are_throttled(site):
    client, _, _ = site
    for _ in range(5):
        assert login(client, password="nope").status_code == 401
    r = login(client)  # even the right password waits now
    assert r.status_code == 401 and "Too many failed logins" in r.text


def test_agent_approves_edits_and_rejects(site):
    client, queue, (a, b, c) = site
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/review"
    page = client.get("/review")
    assert page.status_code == 200
    html = page.text
    assert "&lt;script&gt;" in html and "<script>alert" not in html  # escaped
    assert "Larch 1P Dome Tent" in html and "mean log-prob -0.40" in html
    assert all(f'id="ticket-{i}"' in html for i in (a, b, c))
    token = csrf_of(html)

    assert client.post(f"/review/{a}/approve", data={"csrf": "wrong"}).status_code == 403
    assert queue.get(a).status == "waiting"

    r = client.post(f"/review/{a}/approve", data={"csrf": token})
    assert r.status_code == 303 and "done=approved" in r.headers["location"]
    client.post(f"/review/{b}/edit", data={"csrf": token, "text": "Yes, within 30 days."})
    r = client.post(f"/review/{c}/reject", data={"csrf": token, "reason": ""})
    assert "error=" in r.headers["location"] and queue.get(c).status == "waiting"
    client.post(f"/review/{c}/reject", data={"csrf": token, "reason": "needs the carrier"})

    assert [queue.get(i).status for i in (a, b, c)] == ["approved", "edited", "rejected"]
    assert {queue.get(i).decided_by for i in (a, b, c)} == {"ana"}
    r = client.post(f"/review/{a}/approve", data={"csrf": token})
    assert "already+approved" in r.headers["location"]
    assert "Nothing is waiting" in client.get("/review").text
    history = client.get("/review/history").text
    assert "needs the carrier" in history and "Yes, within 30 days." in history


def test_env_password_user_and_logout(site):
    client, queue, (a, _, _) = site
    assert login(client, "ben", "ben-pass-123").status_code == 303
    token = csrf_of(client.get("/review").text)
    client.post(f"/review/{a}/approve", data={"csrf": token})
    assert queue.get(a).decided_by == "ben"
    client.post("/review/logout", data={"csrf": token})
    assert client.get("/review").status_code == 303


def test_sessions_survive_a_restart_with_the_same_secret(site, tmp_path):
    client, _, _ = site
    login(client)
    cookie = client.cookies.get("storetune_review")
    app2 = create_app(client.app.state.ws, ScriptedEngine())
    with TestClient(app2, follow_redirects=False) as other:
        other.cookies.set("storetune_review", cookie, path="/review")
        assert other.get("/review").status_code == 200


def test_login_page_says_when_no_agent_is_configured(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "store.yaml").write_text(
        f"brand: {{name: Tiny Outfitters, voice: friendly}}\nserve: {{api_keys: [{KEY}]}}\n"
    )
    with TestClient(create_app(Workspace(root), ScriptedEngine())) as client:
        page = client.get("/review/login")
    assert page.status_code == 200 and "serve.review_users" in page.text
