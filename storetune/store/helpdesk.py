"""Helpdesk links and the outbox in store.db (`helpdesk_tickets`, `helpdesk_outbox`).

Records and database access only; the webhook routes, the helpdesk clients and the
worker that drains the outbox live in `storetune.serve.integrations`, and the
monitor reads the same tables without importing the server.

A ticket that arrives by webhook is claimed by (helpdesk, its id there) before it
is routed, so a helpdesk that retries the webhook gets the first answer instead of
a second draft. Every request storetune owes the helpdesk (the internal note, the
escalation tags, the public reply) is a row in the outbox until the helpdesk
accepted it; an outage only delays it, and a restart picks it up again.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storetune.store.review import APPROVED, EDITED, SENT, SharedConnection, now

NOTE, TAGS, REPLY = "note", "tags", "reply"  # outbox purposes
NONE, QUEUED, POSTED, FROM_HELPDESK = "none", "queued", "posted", "from_helpdesk"
CLAIM_STALE_S = 600  # a claim this old with no draft: the routing process died; route again


@dataclass
class HelpdeskLink:
    """A helpdesk ticket and the review-queue ticket it became."""

    helpdesk: str
    external_id: str
    review_ticket_id: int | None  # None while it is being routed
    received: str
    ticket_created: str | None
    meta: dict[str, Any]  # what the helpdesk told us that a reply needs (customer, channel)
    reply_state: str

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> HelpdeskLink:
        return cls(
            r["helpdesk"],
            r["external_id"],
            r["review_ticket_id"],
            r["received"],
            r["ticket_created"],
            json.loads(r["meta"]),
            r["reply_state"],
        )


@dataclass
class OutboxItem:
    """One HTTP request owed to a helpdesk."""

    id: int
    helpdesk: str
    external_id: str
    purpose: str  # note | tags | reply
    method: str
    path: str
    body: dict[str, Any]
    attempts: int
    last_error: str | None


@dataclass
class OwedReply:
    """A decided draft of a helpdesk ticket whose public reply is not queued yet."""

    link: HelpdeskLink
    text: str


class HelpdeskStore(SharedConnection):
    """store.db access for the integrations; safe to share between a server's threads."""

    # ---- incoming tickets ----

    def claim(
        self,
        helpdesk: str,
        external_id: str,
        ticket_created: str | None,
        meta: dict[str, Any],
        at: datetime | None = None,
    ) -> bool:
        """True when this call should route the ticket: nobody had it, or an earlier
        claim died before drafting (older than CLAIM_STALE_S)."""
        at = at or datetime.now(UTC)
        stale = (at - timedelta(seconds=CLAIM_STALE_S)).isoformat(timespec="seconds")
        with self._tx() as c:
            row = c.execute(
                "SELECT review_ticket_id, received FROM helpdesk_tickets "
                "WHERE helpdesk = ? AND external_id = ?",
                (helpdesk, external_id),
            ).fetchone()
            if row is not None and (row[0] is not None or row[1] > stale):
                return False
            c.execute(
                "INSERT OR REPLACE INTO helpdesk_tickets (helpdesk, external_id, received, "
                "ticket_created, meta) VALUES (?, ?, ?, ?, ?)",
                (helpdesk, external_id, at.isoformat(timespec="seconds"), ticket_created,
                 json.dumps(meta, ensure_ascii=False)),
            )  # fmt: skip
        return True

    def release(self, helpdesk: str, external_id: str) -> None:
        """Drop a claim whose routing failed, so the helpdesk's retry routes it."""
        with self._tx() as c:
            c.execute(
                "DELETE FROM helpdesk_tickets WHERE helpdesk = ? AND external_id = ? "
                "AND review_ticket_id IS NULL",
                (helpdesk, external_id),
            )

    def link(self, helpdesk: str, external_id: str, review_ticket_id: int) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE helpdesk_tickets SET review_ticket_id = ? "
                "WHERE helpdesk = ? AND external_id = ?",
                (review_ticket_id, helpdesk, external_id),
            )

    def get(self, helpdesk: str, external_id: str) -> HelpdeskLink | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT * FROM helpdesk_tickets WHERE helpdesk = ? AND external_id = ?",
                (helpdesk, external_id),
            ).fetchone()
        return HelpdeskLink.from_row(row) if row else None

    def for_review_ticket(self, review_ticket_id: int) -> HelpdeskLink | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT * FROM helpdesk_tickets WHERE review_ticket_id = ?", (review_ticket_id,)
            ).fetchone()
        return HelpdeskLink.from_row(row) if row else None

    def answered_in_helpdesk(self, helpdesk: str, external_id: str) -> bool:
        """Mark that an agent replied in the helpdesk itself, unless storetune already
        owes or posted a reply; True when this call marked it."""
        with self._tx() as c:
            n = c.execute(
                "UPDATE helpdesk_tickets SET reply_state = ? "
                "WHERE helpdesk = ? AND external_id = ? AND reply_state = ?",
                (FROM_HELPDESK, helpdesk, external_id, NONE),
            ).rowcount
        return n == 1

    # ---- the outbox ----

    def enqueue(
        self,
        helpdesk: str,
        external_id: str,
        purpose: str,
        method: str,
        path: str,
        body: dict[str, Any],
    ) -> bool:
        """Queue one request, due now; a second request of the same purpose for the same
        ticket is ignored (a retried webhook must not post a second note)."""
        with self._tx() as c:
            return _enqueue(c, helpdesk, external_id, purpose, method, path, body)

    def due(self, at: float, helpdesks: list[str], limit: int = 20) -> list[OutboxItem]:
        """Unsent requests to these helpdesks whose time has come, oldest first."""
        marks = ",".join("?" * len(helpdesks))
        with self._lock:
            rows = self.conn.execute(
                "SELECT * FROM helpdesk_outbox WHERE sent_at IS NULL AND next_at <= ? "
                f"AND helpdesk IN ({marks}) ORDER BY next_at, id LIMIT ?",
                (at, *helpdesks, limit),
            ).fetchall()
        return [
            OutboxItem(
                r["id"],
                r["helpdesk"],
                r["external_id"],
                r["purpose"],
                r["method"],
                r["path"],
                json.loads(r["body"]),
                r["attempts"],
                r["last_error"],
            )
            for r in rows
        ]

    def next_due(self, helpdesks: list[str]) -> float | None:
        """When the earliest unsent request to these helpdesks is due (unix seconds);
        None when none is (requests to a helpdesk not configured now just wait)."""
        marks = ",".join("?" * len(helpdesks))
        with self._lock:
            row = self.conn.execute(
                "SELECT MIN(next_at) FROM helpdesk_outbox WHERE sent_at IS NULL "
                f"AND helpdesk IN ({marks})",
                helpdesks,
            ).fetchone()
        return row[0]

    def sent(self, item: OutboxItem) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE helpdesk_outbox SET sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                (now(), item.id),
            )
            if item.purpose == REPLY:
                c.execute(
                    "UPDATE helpdesk_tickets SET reply_state = ? "
                    "WHERE helpdesk = ? AND external_id = ?",
                    (POSTED, item.helpdesk, item.external_id),
                )

    def failed(self, item: OutboxItem, error: str, next_at: float) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE helpdesk_outbox SET attempts = attempts + 1, last_error = ?, "
                "next_at = ? WHERE id = ?",
                (error[:500], next_at, item.id),
            )

    def pending(self) -> int:
        with self._lock:
            return self.conn.execute(
                "SELECT COUNT(*) FROM helpdesk_outbox WHERE sent_at IS NULL"
            ).fetchone()[0]

    # ---- replies decided in storetune ----

    def owed_replies(self) -> list[OwedReply]:
        """Helpdesk tickets an agent approved or edited in storetune (or review mode
        `auto` sent) whose public reply is not queued yet."""
        with self._lock:
            rows = self.conn.execute(
                """SELECT h.*, r.final_text FROM helpdesk_tickets h
                   JOIN review_tickets r ON r.id = h.review_ticket_id
                   WHERE h.reply_state = ? AND r.status IN (?, ?, ?)
                   ORDER BY r.decided_at, r.id""",
                (NONE, APPROVED, EDITED, SENT),
            ).fetchall()
        return [OwedReply(HelpdeskLink.from_row(r), r["final_text"] or "") for r in rows]

    def queue_reply(self, link: HelpdeskLink, method: str, path: str, body: dict) -> bool:
        """Queue the public reply and mark it owed, in one transaction; False when the
        agent answered in the helpdesk meanwhile (nothing queued)."""
        with self._tx() as c:
            n = c.execute(
                "UPDATE helpdesk_tickets SET reply_state = ? "
                "WHERE helpdesk = ? AND external_id = ? AND reply_state = ?",
                (QUEUED, link.helpdesk, link.external_id, NONE),
            ).rowcount
            if n != 1:
                return False
            _enqueue(c, link.helpdesk, link.external_id, REPLY, method, path, body)
        return True


def _enqueue(
    c: sqlite3.Connection,
    helpdesk: str,
    external_id: str,
    purpose: str,
    method: str,
    path: str,
    body: dict[str, Any],
) -> bool:
    cur = c.execute(
        "INSERT OR IGNORE INTO helpdesk_outbox (helpdesk, external_id, purpose, method, path, "
        "body, created, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
        (helpdesk, external_id, purpose, method, path, json.dumps(body, ensure_ascii=False),
         now()),
    )  # fmt: skip
    return cur.rowcount == 1
