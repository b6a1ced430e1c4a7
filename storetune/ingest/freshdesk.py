"""Freshdesk API v2 ticket exports (docs/formats.md, "Freshdesk").

Tickets come as a JSON array (one page), several pages, a directory or JSON Lines;
each may embed `conversations`, or conversations come apart (objects or arrays with
`ticket_id`). The opening message is not a conversation: it is the ticket's
`description_text`, written by `requester_id`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storetune.ingest import helpdesk as hd

SOURCE = "freshdesk"
STATUS = {2: "open", 3: "pending", 4: "solved", 5: "closed"}
STATUS_NAMES = {"open": "open", "pending": "pending", "resolved": "solved", "closed": "closed"}
SOURCES = {
    1: "email",
    2: "portal",
    3: "phone",
    7: "chat",
    9: "feedback_widget",
    10: "outbound_email",
}
_PAGE_KEYS = ("tickets", "conversations", "satisfaction_ratings", "results", "activities_data")


def _absorb(value: Any, src: Path, col: hd.Collector) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, col)
        return
    col.seen += 1
    if not isinstance(value, dict):
        return col.not_ours(value, src, "Freshdesk")
    if "activity" in value and ("ticket_id" in value or "performer_id" in value):
        col.dropped["system_events"] += 1  # activities export: status/assignment changes (verify)
    elif "ticket_id" in value and "ratings" in value:
        col.ratings[hd.sid(value["ticket_id"])] = value.get("ratings")
    elif "ticket_id" in value and ("incoming" in value or "body_text" in value or "body" in value):
        col.add_extra(hd.sid(value["ticket_id"]), value, src)
    elif "id" in value and ("description_text" in value or "requester_id" in value):
        col.add_ticket(hd.sid(value["id"]), value, src, value.get("updated_at") or "")
    elif any(isinstance(value.get(k), list) for k in _PAGE_KEYS):
        for k in _PAGE_KEYS:
            _absorb(value.get(k) or [], src, col)
    elif "total" in value and not value.get("results"):
        return None  # an empty search page
    else:
        col.not_ours(value, src, "Freshdesk")
    return None


def _status(value: Any) -> str | None:
    if isinstance(value, str) and not value.isdigit():
        return STATUS_NAMES.get(value.strip().lower())
    try:
        code = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        return None
    # 6+ are the account's custom statuses ("Waiting on customer"…): never resolved.
    return STATUS.get(code) or ("pending" if code >= 6 else None)


def _channel(value: Any) -> str:
    # source is a code (1 email, 3 phone…); keep anything else as written
    return SOURCES.get(value, hd.sid(value)) if isinstance(value, int | str) else ""


def _satisfaction(ratings: Any) -> str | None:
    """Freshdesk CSAT points (verify): 100 neutral, 101–103 happy, -101…-103 unhappy."""
    if not isinstance(ratings, dict) or not ratings:
        return None
    value = ratings.get("default_question", next(iter(ratings.values())))
    try:
        points = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return "good" if points > 100 else "bad" if points < 0 else None


def _part(c: Any, tid: str, n: int) -> hd.Part:
    if not isinstance(c, dict):
        return hd.Part("customer", "", key=f"bad{n}", location=f"ticket {tid} conversation {n}")
    text = c.get("body_text")
    body, is_html = (text, False) if text else (c.get("body") or "", True)
    return hd.Part(
        role="customer" if c.get("incoming") else "agent",
        body=str(body or ""),
        created_at=hd.iso(c.get("created_at")),
        is_html=is_html,
        public=c.get("private") is not True,
        key=hd.sid(c.get("id")) or f"n{n}",
        location=f"ticket {tid} conversation {hd.sid(c.get('id')) or n}",
        raw=hd.raw(c),
    )


def _opener(t: dict[str, Any], tid: str, first: hd.Part | None) -> list[hd.Part]:
    text = t.get("description_text")
    body, is_html = (text, False) if text else (t.get("description") or "", True)
    # Some exports also list the opener among conversations: keep it once.
    if not str(body).strip() or (first and hd.norm_text(first.body) == hd.norm_text(str(body))):
        return []
    part = hd.Part("customer", str(body), hd.iso(t.get("created_at")), is_html, key="description")
    part.location, part.raw = f"ticket {tid} description", hd.raw(body)
    return [part]


def _names(t: dict[str, Any], convs: list[Any]) -> list[str]:
    people = [t.get(k) for k in ("requester", "responder", "contact", "agent")]
    names = [str(p.get("name") or "") for p in people if isinstance(p, dict)]
    # from_email is often "Maya Chen <maya@example.com>"
    for c in convs:
        sender = str(c.get("from_email") or "") if isinstance(c, dict) else ""
        if "<" in sender:
            names.append(sender.split("<", 1)[0].strip().strip('"'))
    return names


def _convert(t: dict[str, Any], extra: list[tuple[Any, str]], col: hd.Collector) -> hd.Conversation:
    tid = hd.sid(t["id"])
    convs = hd.as_list(t.get("conversations")) + [c for c, _ in extra]
    parts = [_part(c, tid, n) for n, c in enumerate(convs, 1)]
    first = min(parts, key=lambda p: hd.time_key(p.created_at)) if parts else None
    rating = col.ratings.get(tid)
    return hd.Conversation(
        id=tid,
        subject=str(t.get("subject") or ""),
        status=_status(t.get("status")),
        status_reason=f"unknown status {t.get('status')!r}",
        parts=_opener(t, tid, first) + parts,
        names=_names(t, convs),
        tags=[str(x) for x in hd.as_list(t.get("tags"))],
        channel=_channel(t.get("source")),
        satisfaction=_satisfaction(rating if rating is not None else t.get("satisfaction_rating")),
        created_at=hd.iso(t.get("created_at")),
    )


# Public entry point, same signature and semantics as zendesk.read_tickets.
read_tickets = hd.json_reader(SOURCE, _absorb, _convert)
