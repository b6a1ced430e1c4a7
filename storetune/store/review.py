"""The review queue in store.db: every routed ticket, its draft, and what agents did.

Records and database access only; the pages and HTTP routes agents use live in
`storetune.serve.review`, and the feedback export and dataset builder read the
decided tickets from here without importing the server.

A ticket enters as `waiting` (or `sent`, when review mode `auto` let a confident,
non-escalated draft go out). An agent moves a waiting ticket to `approved` (the
proposed reply unchanged), `edited` (their own text) or `rejected` (with a
reason); nothing else moves a ticket, and every move is written to
`review_audit` with who, when, and the state before and after, in the same
transaction as the move itself.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storetune.errors import StoretuneError
from storetune.store import db

WAITING, SENT, APPROVED, EDITED, REJECTED = "waiting", "sent", "approved", "edited", "rejected"
DECIDED = (APPROVED, EDITED, REJECTED)
MAX_ID = 2**63 - 1  # SQLite's largest INTEGER: no ticket id can be above it


def storable_id(ticket_id: int) -> bool:
    """False for ids no ticket can have (SQLite would raise OverflowError on them)."""
    return -MAX_ID - 1 <= ticket_id <= MAX_ID


class ReviewError(StoretuneError):
    """An action the queue cannot take (unknown ticket, already decided, empty text)."""


@dataclass
class NewTicket:
    """What the router hands the queue."""

    model: str
    message: str
    system_prompt: str
    raw_draft: str  # the model's text as generated (marker included)
    draft: str  # without the marker
    response: str  # what may be sent: the draft without blocked sentences
    confidence: str
    escalate: bool
    reasons: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    thread: list[dict] = field(default_factory=list)
    customer: dict[str, Any] = field(default_factory=dict)


@dataclass
class QueuedTicket:
    id: int
    created: str
    model: str
    message: str
    thread: list[dict]
    customer: dict[str, Any]
    system_prompt: str
    raw_draft: str
    draft: str
    response: str
    confidence: str
    escalate: bool
    reasons: list[str]
    sources: list[dict]
    signals: dict[str, Any]
    status: str
    final_text: str | None
    decided_by: str | None
    decided_at: str | None
    reject_reason: str | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> QueuedTicket:
        loads = json.loads
        return cls(
            id=r["id"],
            created=r["created"],
            model=r["model"],
            message=r["message"],
            thread=loads(r["thread"]),
            customer=loads(r["customer"]),
            system_prompt=r["system_prompt"],
            raw_draft=r["raw_draft"],
            draft=r["draft"],
            response=r["response"],
            confidence=r["confidence"],
            escalate=bool(r["escalate"]),
            reasons=loads(r["reasons"]),
            sources=loads(r["sources"]),
            signals=loads(r["signals"]),
            status=r["status"],
            final_text=r["final_text"],
            decided_by=r["decided_by"],
            decided_at=r["decided_at"],
            reject_reason=r["reject_reason"],
        )

    def public(self) -> dict[str, Any]:
        """The ticket as the API shows it to the helpdesk that sent it."""
        return {
            "ticket_id": self.id,
            "status": self.status,
            "created": self.created,
            "confidence": self.confidence,
            "escalate": self.escalate,
            "reasons": self.reasons,
            "response": self.response,
            "final_text": self.final_text,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "reject_reason": self.reject_reason,
        }


@dataclass
class AuditRow:
    id: int
    ticket_id: int
    at: str
    actor: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SharedConnection:
    """One store.db connection shared by a server's threads, one thread at a time."""

    def __init__(self, db_path: Path | str) -> None:
        self.conn = db.connect(db_path, check_same_thread=False)
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, db.transaction(self.conn):
            yield self.conn


class ReviewQueue(SharedConnection):
    """store.db access for the queue; safe to share between a server's threads."""

    # ---- writes ----------------------------------------------------------------------

    def add(self, t: NewTicket, auto_send: bool = False, at: str | None = None) -> int:
        """Store a routed ticket; `auto_send` marks it sent instead of waiting."""
        status = SENT if auto_send else WAITING
        created = at or now()
        with self._tx() as c:
            row = c.execute(
                """INSERT INTO review_tickets (created, model, message, thread, customer,
                       system_prompt, raw_draft, draft, response, confidence, escalate, reasons,
                       sources, signals, status, final_text, decided_by, decided_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (
                    created,
                    t.model,
                    t.message,
                    json.dumps(t.thread, ensure_ascii=False),
                    json.dumps(t.customer, ensure_ascii=False),
                    t.system_prompt,
                    t.raw_draft,
                    t.draft,
                    t.response,
                    t.confidence,
                    int(t.escalate),
                    json.dumps(t.reasons, ensure_ascii=False),
                    json.dumps(t.sources, ensure_ascii=False),
                    json.dumps(t.signals, ensure_ascii=False),
                    status,
                    t.response if auto_send else None,
                    "auto" if auto_send else None,
                    created if auto_send else None,
                ),
            ).fetchone()
            ticket_id = int(row[0])
            _audit(c, ticket_id, created, "router", "auto_sent" if auto_send else "queued", {},
                   {"status": status, "text": t.response})  # fmt: skip
        return ticket_id

    def approve(self, ticket_id: int, actor: str) -> QueuedTicket:
        """Send the proposed reply unchanged."""
        return self._decide(ticket_id, actor, APPROVED, text=None, reason=None)

    def edit(self, ticket_id: int, actor: str, text: str) -> QueuedTicket:
        """Send the agent's text; the same text as proposed counts as an approval."""
        if not text.strip():
            raise ReviewError("the edited reply is empty; write a reply or reject the ticket")
        current = self.get(ticket_id)
        if current is not None and _same(text, current.response):
            return self.approve(ticket_id, actor)
        return self._decide(ticket_id, actor, EDITED, text=text.strip(), reason=None)

    def reject(self, ticket_id: int, actor: str, reason: str) -> QueuedTicket:
        if not reason.strip():
            raise ReviewError("give a reason for rejecting the draft")
        return self._decide(ticket_id, actor, REJECTED, text=None, reason=reason.strip())

    def _decide(
        self, ticket_id: int, actor: str, status: str, text: str | None, reason: str | None
    ) -> QueuedTicket:
        at = now()
        if not storable_id(ticket_id):
            raise ReviewError(f"ticket {ticket_id} does not exist")
        with self._tx() as c:
            row = c.execute("SELECT * FROM review_tickets WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                raise ReviewError(f"ticket {ticket_id} does not exist")
            if row["status"] != WAITING:
                raise ReviewError(
                    f"ticket {ticket_id} is already {row['status']}; only waiting drafts can "
                    "be approved, edited or rejected"
                )
            final = None if status == REJECTED else (text if text is not None else row["response"])
            c.execute(
                """UPDATE review_tickets SET status = ?, final_text = ?, decided_by = ?,
                       decided_at = ?, reject_reason = ? WHERE id = ?""",
                (status, final, actor, at, reason, ticket_id),
            )
            before = {"status": row["status"], "text": row["response"]}
            after: dict[str, Any] = {"status": status, "text": final}
            if reason:
                after["reason"] = reason
            _audit(c, ticket_id, at, actor, status, before, after)
        ticket = self.get(ticket_id)
        assert ticket is not None
        return ticket

    # ---- reads -----------------------------------------------------------------------

    def get(self, ticket_id: int) -> QueuedTicket | None:
        if not storable_id(ticket_id):
            return None
        with self._lock:
            row = self.conn.execute(
                "SELECT * FROM review_tickets WHERE id = ?", (ticket_id,)
            ).fetchone()
        return QueuedTicket.from_row(row) if row else None

    def tickets(self, status: str | None = WAITING, limit: int = 100) -> list[QueuedTicket]:
        """Tickets in a state, oldest first (the next one to answer on top)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        with self._lock:
            rows = self.conn.execute(
                f"SELECT * FROM review_tickets {where} ORDER BY id LIMIT ?", [*params, limit]
            ).fetchall()
        return [QueuedTicket.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT status, COUNT(*) FROM review_tickets GROUP BY status"
            ).fetchall()
        return {s: 0 for s in (WAITING, SENT, *DECIDED)} | {r[0]: r[1] for r in rows}

    def audit(self, ticket_id: int | None = None, limit: int = 200) -> list[AuditRow]:
        if ticket_id is not None and not storable_id(ticket_id):
            return []
        where, params = ("WHERE ticket_id = ?", [ticket_id]) if ticket_id else ("", [])
        with self._lock:
            rows = self.conn.execute(
                f"SELECT * FROM review_audit {where} ORDER BY id DESC LIMIT ?", [*params, limit]
            ).fetchall()
        return [
            AuditRow(
                r["id"],
                r["ticket_id"],
                r["at"],
                r["actor"],
                r["action"],
                json.loads(r["before"]),
                json.loads(r["after"]),
            )
            for r in rows
        ]


@dataclass
class ReviewSession:
    """A review-page login as store.db keeps it."""

    username: str
    credential: str  # HMAC of the agent's password entry when they logged in
    csrf: str  # the token every form of this session carries
    expires: int  # unix seconds


class ReviewSessions(SharedConnection):
    """Server-side review logins (`review_sessions`): a session exists only while its row
    does, so deleting the row (logout, agent removed, password changed) ends it at once.
    Rows are keyed by the SHA-256 of the cookie, never the cookie itself."""

    def add(self, token_hash: str, s: ReviewSession, at: int | None = None) -> None:
        """Store a new session; expired ones are dropped on the way (`at`: unix seconds)."""
        with self._tx() as c:
            c.execute("DELETE FROM review_sessions WHERE expires <= ?", (at or int(time.time()),))
            c.execute(
                "INSERT INTO review_sessions (token_hash, username, credential, csrf, created, "
                "expires) VALUES (?, ?, ?, ?, ?, ?)",
                (token_hash, s.username, s.credential, s.csrf, now(), s.expires),
            )

    def get(self, token_hash: str) -> ReviewSession | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT username, credential, csrf, expires FROM review_sessions "
                "WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return ReviewSession(*row) if row else None

    def delete(self, token_hash: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM review_sessions WHERE token_hash = ?", (token_hash,))

    def keep_only(self, credentials: dict[str, str], at: int) -> int:
        """Delete expired sessions and those of agents not in `credentials` (username ->
        current credential) or whose credential changed; how many were deleted."""
        with self._tx() as c:
            rows = c.execute("SELECT token_hash, username, credential, expires FROM "
                             "review_sessions").fetchall()  # fmt: skip
            gone = [(r[0],) for r in rows if r[3] <= at or credentials.get(r[1]) != r[2]]
            c.executemany("DELETE FROM review_sessions WHERE token_hash = ?", gone)
        return len(gone)

    def count(self, username: str | None = None) -> int:
        where, params = ("WHERE username = ?", [username]) if username else ("", [])
        with self._lock:
            return self.conn.execute(
                f"SELECT COUNT(*) FROM review_sessions {where}", params
            ).fetchone()[0]


def reviewed_tickets(conn: sqlite3.Connection) -> list[QueuedTicket]:
    """Approved and edited tickets, in the order agents decided them."""
    rows = conn.execute(
        "SELECT * FROM review_tickets WHERE status IN (?, ?) ORDER BY decided_at, id",
        (APPROVED, EDITED),
    ).fetchall()
    return [QueuedTicket.from_row(r) for r in rows]


_ROLES = {"customer": "user", "user": "user", "agent": "assistant", "assistant": "assistant"}


def thread_turns(thread: list[dict]) -> list[dict]:
    """Earlier turns as chat messages (customer -> user, agent -> assistant)."""
    turns: list[dict] = []
    for i, m in enumerate(thread):
        role = _ROLES.get(str(m.get("role", "")).lower())
        if role is None:
            raise ReviewError(f"thread[{i}].role must be customer or agent, not {m.get('role')!r}")
        content = str(m.get("content") or "").strip()
        if content:
            turns.append({"role": role, "content": content})
    return turns


def conversation(system: str, thread: list[dict], message: str) -> list[dict]:
    """The chat a routed ticket was (or would be) generated from: system prompt, earlier
    turns, the new message (joined to a customer turn it follows)."""
    messages = [{"role": "system", "content": system}, *thread_turns(thread)]
    if messages[-1]["role"] == "user":
        messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n\n" + message}
    else:
        messages.append({"role": "user", "content": message})
    return messages


def _same(a: str, b: str) -> bool:
    # Browsers turn newlines in a textarea into CRLF; that is not an edit.
    return " ".join(a.split()) == " ".join(b.split())


def _audit(
    c: sqlite3.Connection,
    ticket_id: int,
    at: str,
    actor: str,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    c.execute(
        "INSERT INTO review_audit (ticket_id, at, actor, action, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (ticket_id, at, actor, action, json.dumps(before, ensure_ascii=False),
         json.dumps(after, ensure_ascii=False)),
    )  # fmt: skip
