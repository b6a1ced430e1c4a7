"""Zendesk ticket exports (docs/formats.md, "Zendesk").

Accepts one page, a list of pages, a directory of page files (tickets-*.json,
ticket_events-*.json, users, per-ticket {"comments": [...]} files) or JSON Lines,
in any mix. Conversations are rebuilt from comments (ticket_events Comment child
events or comment lists), sorted by time; internal notes are kept with role
"note"; every text is cleaned (signature, quotes, PII) before it leaves here.

Zendesk sits on the shared helpdesk base (helpdesk.py) like every other ticket
source: what is its own is how pages are gathered and how one ticket and its
comments become a Conversation (roles from the users list, the description as
the opening message).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Unpack

from storetune.ingest import helpdesk as hd

SOURCE = "zendesk"
STATUS = {
    "new": "open",
    "open": "open",
    "pending": "pending",
    "hold": "pending",
    "solved": "solved",
    "closed": "closed",
}
ROLE = {"end-user": "customer", "agent": "agent", "admin": "agent"}
_PAGE_KEYS = ("tickets", "ticket", "users", "ticket_events", "comments", "audits")
# Paging envelope fields: a record holding only these carries no data.
_ENVELOPE = {
    "after_cursor", "after_url", "before_cursor", "before_url", "end_of_stream", "end_time",
    "next_page", "previous_page", "count", "meta", "links",
}  # fmt: skip


@dataclass
class _Comment:
    key: str
    author_id: str
    body: str
    is_html: bool
    public: bool
    created_at: str
    order: int
    location: str
    raw: str


def _ticket_hint(path: Path) -> str:
    # per-ticket comment files are named after the ticket: 35436.json, comments-35436.json
    digits = re.findall(r"\d+", path.stem)
    return digits[-1] if digits else ""


# --- gathering ----------------------------------------------------------------------


def _absorb(value: Any, src: Path, col: hd.Collector) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, col)
        return
    if not isinstance(value, dict):
        col.count("record", "read")
        col.reject(str(src), f"record {col.seen}", "record", "not a JSON object", hd.raw(value))
        return
    col.seen += 1
    if value.keys() <= _ENVELOPE:
        return
    if any(k in value for k in _PAGE_KEYS):
        _absorb_page(value, src, col)
    elif "child_events" in value:
        _add_event(value, src, col)
    elif "id" in value and any(k in value for k in ("subject", "requester_id", "description")):
        _add_ticket(value, src, col)
    elif "role" in value and "name" in value:
        col.users[hd.sid(value.get("id"))] = value
    elif "body" in value or "html_body" in value or "plain_body" in value:
        _add_comment(value, hd.sid(value.get("ticket_id")) or _ticket_hint(src), src, col)
    elif value and all(re.fullmatch(r"\d+", str(k)) for k in value):
        for tid, comments in value.items():  # {"35436": {"comments": [...]}} or {"35436": [...]}
            items = comments.get("comments", []) if isinstance(comments, dict) else comments
            for c in items if isinstance(items, list) else []:
                _add_comment(c, str(tid), src, col)
    else:
        col.not_ours(value, src, "Zendesk")


def _absorb_page(page: dict[str, Any], src: Path, col: hd.Collector) -> None:
    for u in hd.as_list(page.get("users")):
        if isinstance(u, dict):
            col.users[hd.sid(u.get("id"))] = u
    tickets = hd.as_list(page.get("tickets")) or (
        [page["ticket"]] if isinstance(page.get("ticket"), dict) else []
    )
    for t in tickets:
        _add_ticket(t, src, col)
    for e in hd.as_list(page.get("ticket_events")):
        _add_event(e, src, col) if isinstance(e, dict) else _not_object(e, "ticket event", src, col)
    for a in hd.as_list(page.get("audits")):
        _add_audit(a, src, col) if isinstance(a, dict) else _not_object(a, "audit", src, col)
    page_ticket = hd.sid(page.get("ticket_id")) or _ticket_hint(src)
    for c in hd.as_list(page.get("comments")):
        own = hd.sid(c.get("ticket_id")) if isinstance(c, dict) and c.get("ticket_id") else ""
        _add_comment(c, own or page_ticket, src, col)


def _not_object(value: Any, what: str, src: Path, col: hd.Collector) -> None:
    col.count("record", "read")
    reason = f"{what} is not a JSON object"
    col.reject(str(src), f"record {col.seen}", "record", reason, hd.raw(value))


def _add_ticket(t: Any, src: Path, col: hd.Collector) -> None:
    # Time-based exports repeat a ticket each time it changed: the newest is kept.
    if isinstance(t, dict):
        col.add_ticket(hd.sid(t.get("id")), t, src, t.get("updated_at"))
    else:
        col.add_ticket("", t, src)


def _add_event(e: dict[str, Any], src: Path, col: hd.Collector) -> None:
    tid = hd.sid(e.get("ticket_id"))
    when = e.get("created_at") or e.get("timestamp")
    for child in hd.as_list(e.get("child_events")):
        if not isinstance(child, dict) or child.get("event_type") != "Comment":
            col.dropped["system_events"] += 1  # status changes, tags, assignments…
            continue
        merged = {"author_id": e.get("updater_id"), "created_at": hd.iso(when), **child}
        _add_comment(merged, tid, src, col)


def _add_audit(a: dict[str, Any], src: Path, col: hd.Collector) -> None:
    tid = hd.sid(a.get("ticket_id"))
    for ev in hd.as_list(a.get("events")):
        if not isinstance(ev, dict) or ev.get("type") != "Comment":
            col.dropped["system_events"] += 1
            continue
        merged = {"author_id": a.get("author_id"), "created_at": a.get("created_at"), **ev}
        _add_comment(merged, tid, src, col)


def _body(c: dict[str, Any]) -> tuple[str, bool]:
    """(text, is_html): the plain body when there is one."""
    plain = c.get("plain_body") or c.get("body")
    return (str(plain), False) if plain else (str(c.get("html_body") or ""), True)


def _key(c: dict[str, Any]) -> str:
    # Comments without an id are the same comment when time, author and text agree.
    fallback = f"{c.get('created_at')}|{c.get('author_id')}|{zlib.crc32(_body(c)[0].encode())}"
    return hd.sid(c.get("id")) or fallback


def _add_comment(c: Any, tid: str, src: Path, col: hd.Collector) -> None:
    if not isinstance(c, dict):
        col.count("message", "read")
        reason = "comment is not a JSON object"
        col.reject(str(src), f"ticket {tid}", "message", reason, hd.raw(c))
        return
    n = len(col.extra.get(tid, []))
    # the same comment from two pages is kept once
    col.add_extra(tid, c, src, key=_key(c), where=_location(c, tid, n))


# --- one ticket ---------------------------------------------------------------------


def _location(c: dict[str, Any], tid: str, n: int) -> str:
    return f"ticket {tid} comment {hd.sid(c.get('id')) or n + 1}"


def _comment(c: dict[str, Any], tid: str, n: int) -> _Comment:
    body, is_html = _body(c)
    return _Comment(
        key=_key(c),
        author_id=hd.sid(c.get("author_id")),
        body=body,
        is_html=is_html,
        public=c.get("public", True) is not False,
        created_at=hd.iso(c.get("created_at")),
        order=n,
        location=_location(c, tid, n),
        raw=hd.raw(c),
    )


def _role(c: _Comment, t: dict[str, Any], users: dict[str, dict[str, Any]], opener: bool) -> str:
    """customer or agent: from the users list, else the ticket's requester/assignee."""
    user = users.get(c.author_id)
    if user is not None:
        return ROLE.get(str(user.get("role")), "customer")
    if c.author_id and c.author_id == hd.sid(t.get("requester_id")):
        return "customer"
    if c.author_id and c.author_id == hd.sid(t.get("assignee_id")):
        return "agent"
    return "customer" if opener else "agent"  # unknown author: the opener is the customer


def _people(
    t: dict[str, Any], comments: list[_Comment], users: dict[str, dict[str, Any]], agents: list[str]
) -> Iterator[str]:
    """Names of everyone on the ticket, and of every staff member: notes and replies
    mention colleagues ("@Jordan can you check…") who never wrote on the ticket."""
    ids = {hd.sid(t.get(k)) for k in ("requester_id", "submitter_id", "assignee_id")}
    ids.update(agents)
    ids.update(
        hd.sid(i) for i in hd.as_list(t.get("collaborator_ids")) + hd.as_list(t.get("follower_ids"))
    )
    ids.update(c.author_id for c in comments)
    for uid in ids:
        user = users.get(uid) or {}
        yield str(user.get("name") or "")


def _ordered(t: dict[str, Any], comments: list[_Comment]) -> list[_Comment]:
    """Comments by time; the description first when the export lacks its comment (the
    first comment of a Zendesk ticket is its description)."""
    ordered = sorted(comments, key=lambda c: (hd.time_key(c.created_at), c.order))
    desc = str(t.get("description") or "")
    if desc.strip() and not any(hd.norm_text(desc) == hd.norm_text(c.body) for c in ordered[:3]):
        opener = _Comment(
            key="description",
            author_id=hd.sid(t.get("requester_id")),
            body=desc,
            is_html=False,
            public=True,
            created_at=hd.iso(t.get("created_at")),
            order=-1,
            location=f"ticket {t['id']} description",
            raw=hd.raw(desc),
        )
        ordered.insert(0, opener)
    return ordered


def _status(t: dict[str, Any]) -> tuple[str | None, str]:
    raw_status = str(t.get("status") or "").lower()
    if raw_status == "deleted":
        return None, "ticket was deleted in Zendesk"
    return STATUS.get(raw_status), f"unknown status {t.get('status')!r}"


def _convert(
    t: dict[str, Any], extra: list[tuple[Any, str]], col: hd.Collector, agents: list[str]
) -> hd.Conversation:
    tid = hd.sid(t["id"])
    comments = [_comment(c, tid, n) for n, (c, _src) in enumerate(extra)]  # deduped on arrival
    convo = _ordered(t, comments)
    parts = [
        hd.Part(
            role=_role(c, t, col.users, opener=i == 0),
            body=c.body,
            created_at=c.created_at,
            is_html=c.is_html,
            public=c.public,
            key=c.key,
            location=c.location,
            raw=c.raw,
            opener=c.key == "description",
        )
        for i, c in enumerate(convo)
    ]
    status, status_reason = _status(t)
    rating = t.get("satisfaction_rating")
    score = rating.get("score") if isinstance(rating, dict) else None
    via = t.get("via")
    return hd.Conversation(
        id=tid,
        subject=str(t.get("subject") or t.get("raw_subject") or ""),
        status=status,
        status_reason=status_reason,
        parts=parts,
        names=list(_people(t, comments, col.users, agents)),
        tags=[str(x) for x in hd.as_list(t.get("tags"))],
        channel=str(via.get("channel") or "") if isinstance(via, dict) else "",
        satisfaction=score if score in ("good", "bad") else None,
        created_at=hd.iso(t.get("created_at")),
        raw=hd.raw(t),
    )


# --- entry point --------------------------------------------------------------------


def read_tickets(path: hd.PathArg, **options: Unpack[hd.ReadOptions]) -> hd.Result:
    """Tickets (cleaned, PII replaced, human-only marked), quarantined records, stats;
    the arguments and stats are those of every helpdesk reader (helpdesk.json_reader)."""
    col = hd.gather_json(hd.as_paths(path), _absorb)
    # Staff are found once: every ticket's scrubber learns their names.
    agents = [uid for uid, u in col.users.items() if ROLE.get(str(u.get("role"))) == "agent"]
    convert = partial(_convert, agents=agents)
    return hd.finish(col, SOURCE, convert, **options)
