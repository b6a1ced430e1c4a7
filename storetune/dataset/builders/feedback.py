"""Support examples from the review queue: what agents approved or wrote themselves.

The queue lives in store.db; each approved or edited draft becomes one example
(task "support", category feedback_approved / feedback_edited) with the system
prompt it was routed with and the reply that was sent, scrubbed of personal data.
"""

from __future__ import annotations

from pathlib import Path

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.feedback import feedback_examples
from storetune.store import db


def build_feedback(ctx: BuildContext, db_path: Path) -> list[Example]:
    if not Path(db_path).exists():
        return []
    conn = db.connect(db_path)
    try:
        found = feedback_examples(conn, ctx.cfg)
    finally:
        conn.close()
    return [
        Example(
            messages=e.messages,
            task="support",
            category=f"feedback_{e.action}",
            builder="feedback",
            source_ids=[f"review:{e.ticket_id}"],
            group=f"review:{e.ticket_id}",
        )
        for e in found
    ]
