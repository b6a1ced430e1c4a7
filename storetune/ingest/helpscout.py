"""Help Scout Mailbox API 2.0 exports (docs/formats.md, "Help Scout").

HAL pages: `{"_embedded": {"conversations": [...]}, "page": {...}}` from
`GET /v2/conversations?status=all&embed=threads`, each conversation with
`_embedded.threads[]`; or bare conversation objects (a list, JSON Lines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storetune.ingest import helpdesk as hd

SOURCE = "helpscout"
STATUS = {"active": "open", "open": "open", "pending": "pending", "closed": "closed"}
RATING = {"great": "good", "okay": None, "not_good": "bad"}
_ENVELOPE = {"page", "_links"}
# Forwards are an agent's message to someone else: kept as notes, never training text.
_NOTE_TYPES = {"note", "forwardparent", "forwardchild"}
_BY_AUTHOR = {"chat", "phone"}  # either side writes these: the author decides


def _absorb(value: Any, src: Path, col: hd.Collector) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, col)
        return
    col.seen += 1
    if not isinstance(value, dict):
        return col.not_ours(value, src, "Help Scout")
    embedded = value.get("_embedded")
    if value.keys() <= _ENVELOPE:
        return None
    if isinstance(embedded, dict) and isinstance(embedded.get("conversations"), list):
        _absorb(embedded["conversations"], src, col)
    elif "id" in value and ("threads" in value or "primaryCustomer" in value or "status" in value):
        col.add_ticket(hd.sid(value["id"]), value, src, value.get("userUpdatedAt") or "")
    else:
        col.not_ours(value, src, "Help Scout")
    return None


def _threads(c: dict[str, Any]) -> list[Any]:
    embedded = c.get("_embedded")
    threads = embedded.get("threads") if isinstance(embedded, dict) else None
    return hd.as_list(threads or (c.get("threads") if isinstance(c.get("threads"), list) else []))


def _role(th: dict[str, Any]) -> str:
    kind = str(th.get("type") or "")
    if kind in _BY_AUTHOR:
        by = th.get("createdBy")
        return "customer" if isinstance(by, dict) and by.get("type") == "customer" else "agent"
    return "customer" if kind == "customer" else "agent"


def _parts(threads: list[Any], cid: str, col: hd.Collector) -> list[hd.Part]:
    parts = []
    for n, th in enumerate(threads, 1):
        if not isinstance(th, dict):
            parts.append(hd.Part("customer", "", key=f"bad{n}", location=f"conversation {cid}"))
            continue
        if th.get("type") == "lineitem":
            col.dropped["system_events"] += 1  # "Assigned to…", "Marked as closed"
            continue
        if th.get("state") == "draft":
            col.dropped["drafts"] += 1  # never sent
            continue
        tid = hd.sid(th.get("id"))
        parts.append(
            hd.Part(
                role=_role(th),
                body=str(th.get("body") or th.get("text") or ""),
                created_at=hd.iso(th.get("createdAt")),
                is_html=True,  # thread bodies are HTML; plain text passes through unchanged
                public=hd.sid(th.get("type")) not in _NOTE_TYPES,
                key=tid or f"n{n}",
                location=f"conversation {cid} thread {tid or n}",
                raw=hd.raw(th),
            )
        )
    return parts


def _names(c: dict[str, Any], threads: list[Any]) -> list[str]:
    people = [c.get("primaryCustomer"), c.get("customer"), c.get("assignee"), c.get("createdBy")]
    for th in threads:
        if isinstance(th, dict):
            people += [th.get("createdBy"), th.get("customer"), th.get("assignedTo")]
    return [hd.full_name(p.get("first"), p.get("last")) for p in people if isinstance(p, dict)]


def _convert(c: dict[str, Any], extra: list[tuple[Any, str]], col: hd.Collector) -> hd.Conversation:
    cid = hd.sid(c["id"])
    threads = _threads(c) + [t for t, _ in extra]
    raw_status = str(c.get("status") or "").lower()
    reason = "spam" if raw_status == "spam" else f"unknown status {c.get('status')!r}"
    rating = c.get("rating") or c.get("satisfaction")
    return hd.Conversation(
        id=cid,
        subject=str(c.get("subject") or ""),
        status=STATUS.get(raw_status),
        status_reason=reason,
        parts=_parts(threads, cid, col),
        names=_names(c, threads),
        tags=[str(x.get("tag") if isinstance(x, dict) else x) for x in hd.as_list(c.get("tags"))],
        channel=str(c.get("type") or ""),
        satisfaction=RATING.get(str(rating)) if rating else None,
        created_at=hd.iso(c.get("createdAt")),
    )


# Public entry point, same signature and semantics as zendesk.read_tickets.
read_tickets = hd.json_reader(SOURCE, _absorb, _convert)
