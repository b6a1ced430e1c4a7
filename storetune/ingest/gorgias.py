"""Gorgias ticket exports (docs/formats.md, "Gorgias").

Pages are `{"data": [...], "meta": {"next_cursor": ...}}` of tickets (with their
`messages[]`), of messages (with `ticket_id`) or of satisfaction surveys
(`ticket_id`, `score` 1–5), as one page, a list of pages, a directory or JSON Lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storetune.ingest import helpdesk as hd

SOURCE = "gorgias"
STATUS = {"open": "open", "closed": "closed"}
_ENVELOPE = {"meta", "object", "uri", "next_cursor", "prev_cursor"}


def _absorb(value: Any, src: Path, col: hd.Collector) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, col)
        return
    col.seen += 1
    if not isinstance(value, dict):
        return col.not_ours(value, src, "Gorgias")
    if value.keys() <= _ENVELOPE:
        return None
    if isinstance(value.get("data"), list):
        for item in value["data"]:
            _absorb(item, src, col)
    elif "object_type" in value and "type" in value:
        col.dropped["system_events"] += (
            1  # /api/events: "ticket-closed", "ticket-assigned"… (verify)
        )
    elif "ticket_id" in value and "score" in value:
        col.ratings[hd.sid(value["ticket_id"])] = value.get("score")
    elif "ticket_id" in value and ("from_agent" in value or "body_text" in value):
        col.add_extra(hd.sid(value["ticket_id"]), value, src)
    elif "id" in value and ("messages" in value or "status" in value or "customer" in value):
        col.add_ticket(hd.sid(value["id"]), value, src, value.get("updated_datetime") or "")
    else:
        col.not_ours(value, src, "Gorgias")
    return None


def _part(m: Any, tid: str, n: int) -> hd.Part:
    if not isinstance(m, dict):
        return hd.Part("customer", "", key=f"bad{n}", location=f"ticket {tid} message {n}")
    text = m.get("stripped_text") or m.get("body_text")
    body, is_html = (text, False) if text else (m.get("body_html") or "", True)
    # Internal notes are flagged either way depending on the API version.
    note = m.get("public") is False or m.get("channel") == "internal-note"
    return hd.Part(
        role="agent" if m.get("from_agent") else "customer",
        body=str(body or ""),
        created_at=hd.iso(m.get("created_datetime") or m.get("sent_datetime")),
        is_html=is_html,
        public=not note,
        key=hd.sid(m.get("id")) or f"n{n}",
        location=f"ticket {tid} message {hd.sid(m.get('id')) or n}",
        raw=hd.raw(m),
    )


def _names(t: dict[str, Any], messages: list[Any]) -> list[str]:
    people = [t.get("customer"), t.get("assignee_user")]
    for m in messages:
        if isinstance(m, dict):
            people += [m.get("sender"), m.get("receiver")]
    names = []
    for p in people:
        if isinstance(p, dict):
            names.append(str(p.get("name") or ""))
            names.append(hd.full_name(p.get("firstname"), p.get("lastname")))
    return names


def _convert(t: dict[str, Any], extra: list[tuple[Any, str]], col: hd.Collector) -> hd.Conversation:
    tid = hd.sid(t["id"])
    messages = hd.as_list(t.get("messages")) + [m for m, _ in extra]
    raw_status = str(t.get("status") or "").lower()
    score = col.ratings.get(tid)
    if score is None and isinstance(t.get("satisfaction_survey"), dict):
        score = t["satisfaction_survey"].get("score")
    return hd.Conversation(
        id=tid,
        subject=str(t.get("subject") or ""),
        status=STATUS.get(raw_status),
        status_reason=f"unknown status {t.get('status')!r}",
        parts=[_part(m, tid, n) for n, m in enumerate(messages, 1)],
        names=_names(t, messages),
        tags=[str(x.get("name") if isinstance(x, dict) else x) for x in hd.as_list(t.get("tags"))],
        channel=str(t.get("channel") or ""),
        satisfaction=hd.rating_1_to_5(score),
        created_at=hd.iso(t.get("created_datetime")),
    )


# Public entry point, same signature and semantics as zendesk.read_tickets.
read_tickets = hd.json_reader(SOURCE, _absorb, _convert)
