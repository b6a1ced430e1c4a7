"""Agent decisions as training data: approved and edited drafts become chat examples.

Each example is the conversation the model saw (the system prompt as it was at
routing time, earlier turns, the customer's message) with the reply the agent
actually sent. An approved hand-over keeps the escalation marker, so the next
version learns to hand over there too. Customer text is scrubbed of personal data
with the same scrubber ingest uses: the queue holds raw messages, a dataset never.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storetune.clean.pii import Scrubber
from storetune.config import StoreConfig
from storetune.errors import StoretuneError
from storetune.io import atomic_write_text
from storetune.store import db
from storetune.store.review import APPROVED, EDITED, QueuedTicket, conversation, reviewed_tickets
from storetune.workspace import Workspace


@dataclass
class FeedbackExample:
    messages: list[dict]
    ticket_id: int
    action: str  # approved | edited
    agent: str
    at: str
    model: str

    @property
    def edited(self) -> bool:
        return self.action == EDITED

    def provenance(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "action": self.action,
            "agent": self.agent,
            "time": self.at,
            "edited": self.edited,
            "model": self.model,
        }


def feedback_examples(conn: sqlite3.Connection, cfg: StoreConfig) -> list[FeedbackExample]:
    """Every approved or edited draft as a scrubbed chat example."""
    vocabulary = _vocabulary(conn, cfg)
    allow = _allowed(cfg)
    out = []
    for t in reviewed_tickets(conn):
        scrubber = Scrubber(names=_names(t.customer), protected=vocabulary, allow=allow)
        thread = [{**m, "content": scrubber.scrub(str(m.get("content", "")))} for m in t.thread]
        messages = conversation(t.system_prompt, thread, scrubber.scrub(t.message))
        messages.append({"role": "assistant", "content": scrubber.scrub(_reply(t, cfg))})
        out.append(
            FeedbackExample(
                messages, t.id, t.status, t.decided_by or "", t.decided_at or "", t.model
            )
        )
    return out


def _reply(t: QueuedTicket, cfg: StoreConfig) -> str:
    text = (t.final_text or "").strip()
    marker = cfg.escalation.marker
    # An approved hand-over is a lesson in handing over: keep the marker the model wrote.
    if t.status == APPROVED and marker in t.raw_draft and not text.startswith(marker):
        text = f"{marker} {text}"
    return text


def _names(customer: dict[str, Any]) -> list[str]:
    keys = ("name", "first_name", "last_name", "full_name")
    return [str(customer[k]) for k in keys if customer.get(k)]


def _vocabulary(conn: sqlite3.Connection, cfg: StoreConfig) -> set[str]:
    # Catalog and brand words are names only in a name context ("Olive Jacket").
    texts = [cfg.brand.name]
    texts += [r[0] for r in conn.execute("SELECT title || ' ' || product_type FROM products")]
    return {w.lower() for t in texts for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", t or "")}


def _allowed(cfg: StoreConfig) -> list[str]:
    contact = cfg.policies.contact
    return [x for x in (contact.email, contact.phone) if x] if contact else []


@dataclass
class ExportReport:
    path: Path
    examples: int
    approved: int
    edited: int


def export_feedback(ws: Workspace, out: Path | None = None) -> ExportReport:
    """Write approved and edited drafts as chat JSONL with provenance (atomically)."""
    if not ws.db_path.exists():
        raise StoretuneError(f"{ws.db_path}: no store database", hint="run 'storetune ingest'")
    cfg = ws.config()
    conn = db.connect(ws.db_path)
    try:
        examples = feedback_examples(conn, cfg)
    finally:
        conn.close()
    path = out or ws.root / "feedback" / "feedback.jsonl"
    lines = [
        json.dumps({"messages": e.messages, "provenance": e.provenance()}, ensure_ascii=False)
        for e in examples
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    edited = sum(e.edited for e in examples)
    return ExportReport(path, len(examples), len(examples) - edited, edited)
