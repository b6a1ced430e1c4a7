"""Zendesk ticket exports (reference/export-formats.md §2).

Accepts one page, a list of pages, a directory of page files (tickets-*.json,
ticket_events-*.json, users, per-ticket {"comments": [...]} files) or JSON Lines,
in any mix. Conversations are rebuilt from comments (ticket_events Comment child
events or comment lists), sorted by time; internal notes are kept with role
"note"; every text is cleaned (signature, quotes, PII) before it leaves here.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from storetune.clean import (
    Scrubber,
    drop_placeholder_tail,
    html_to_text,
    human_only_reason,
    strip_signature,
)
from storetune.config import EscalationTopic
from storetune.errors import StoretuneError
from storetune.ingest.shopify_json import load_json_records
from storetune.store.db import QuarantineItem
from storetune.store.records import Message, Ticket

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
    ticket_id: str
    author_id: str
    body: str
    is_html: bool
    public: bool
    created_at: str
    order: int
    location: str
    raw: str
    src: str = ""


@dataclass
class _Export:
    """Everything gathered from all files before tickets are rebuilt."""

    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    ticket_where: dict[str, str] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, dict[str, _Comment]] = field(default_factory=dict)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    pii: Counter[str] = field(default_factory=Counter)
    seen: int = 0

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(kind, Counter(read=0, accepted=0, quarantined=0))[outcome] += n

    def reject(self, src: str, where: str, kind: str, reason: str, raw: str) -> None:
        self.quarantine.append(QuarantineItem(src, where, kind, reason, raw))
        self.count(kind, "quarantined")


def _id(value: Any) -> str:
    return "" if value is None else str(value)


def _raw(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)[:4096]


def _list(value: Any) -> list[Any]:
    """A JSON field that should hold a list: a lone value is a list of one, null none."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _iso(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return _id(value)  # not a plausible epoch time: keep it as text
    return _id(value)


def _time_key(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")  # undated comments go last, in file order


# --- gathering ----------------------------------------------------------------------


def export_files(path: Path) -> list[Path]:
    if not path.exists():
        raise StoretuneError(f"{path}: not found", hint="check sources.tickets in store.yaml")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".json", ".jsonl"})
    if not files:
        raise StoretuneError(f"{path}: directory has no .json or .jsonl files")
    return files


def _ticket_hint(path: Path) -> str:
    # per-ticket comment files are named after the ticket: 35436.json, comments-35436.json
    digits = re.findall(r"\d+", path.stem)
    return digits[-1] if digits else ""


def _absorb(value: Any, src: Path, ex: _Export, hint: str) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, ex, hint)
        return
    if not isinstance(value, dict):
        ex.count("record", "read")
        ex.reject(str(src), f"record {ex.seen}", "record", "not a JSON object", _raw(value))
        return
    ex.seen += 1
    if value.keys() <= _ENVELOPE:
        return
    if any(k in value for k in _PAGE_KEYS):
        _absorb_page(value, src, ex, hint)
    elif "child_events" in value:
        _add_event(value, src, ex)
    elif "id" in value and any(k in value for k in ("subject", "requester_id", "description")):
        _add_ticket(value, src, ex)
    elif "role" in value and "name" in value:
        ex.users[_id(value.get("id"))] = value
    elif "body" in value or "html_body" in value or "plain_body" in value:
        _add_comment(value, _id(value.get("ticket_id")) or hint, src, ex)
    elif value and all(re.fullmatch(r"\d+", str(k)) for k in value):
        for tid, comments in value.items():  # {"35436": {"comments": [...]}} or {"35436": [...]}
            items = comments.get("comments", []) if isinstance(comments, dict) else comments
            for c in items if isinstance(items, list) else []:
                _add_comment(c, str(tid), src, ex)
    else:
        ex.count("record", "read")
        ex.reject(str(src), f"record {ex.seen}", "record", "not a Zendesk record", _raw(value))


def _absorb_page(page: dict[str, Any], src: Path, ex: _Export, hint: str) -> None:
    for u in _list(page.get("users")):
        if isinstance(u, dict):
            ex.users[_id(u.get("id"))] = u
    tickets = _list(page.get("tickets")) or (
        [page["ticket"]] if isinstance(page.get("ticket"), dict) else []
    )
    for t in tickets:
        _add_ticket(t, src, ex)
    for e in _list(page.get("ticket_events")):
        _add_event(e, src, ex) if isinstance(e, dict) else _not_object(e, "ticket event", src, ex)
    for a in _list(page.get("audits")):
        _add_audit(a, src, ex) if isinstance(a, dict) else _not_object(a, "audit", src, ex)
    page_ticket = _id(page.get("ticket_id")) or hint
    for c in _list(page.get("comments")):
        _add_comment(
            c,
            _id(c.get("ticket_id")) if isinstance(c, dict) and c.get("ticket_id") else page_ticket,
            src,
            ex,
        )


def _not_object(value: Any, what: str, src: Path, ex: _Export) -> None:
    ex.count("record", "read")
    ex.reject(str(src), f"record {ex.seen}", "record", f"{what} is not a JSON object", _raw(value))


def _add_ticket(t: Any, src: Path, ex: _Export) -> None:
    if not isinstance(t, dict) or t.get("id") is None:
        ex.count("ticket", "read")
        ex.reject(str(src), f"record {ex.seen}", "ticket", "ticket has no id", _raw(t))
        return
    tid = _id(t["id"])
    old = ex.tickets.get(tid)
    if old is not None:
        # Time-based exports repeat a ticket each time it changed: keep the newest.
        ex.dropped["duplicate_ticket_records"] += 1
        if _id(t.get("updated_at")) < _id(old.get("updated_at")):
            return
    else:
        ex.count("ticket", "read")
    ex.tickets[tid] = t
    ex.ticket_where[tid] = str(src)


def _add_event(e: dict[str, Any], src: Path, ex: _Export) -> None:
    tid = _id(e.get("ticket_id"))
    when = e.get("created_at") or e.get("timestamp")
    for child in _list(e.get("child_events")):
        if not isinstance(child, dict) or child.get("event_type") != "Comment":
            ex.dropped["system_events"] += 1  # status changes, tags, assignments…
            continue
        merged = {"author_id": e.get("updater_id"), "created_at": _iso(when), **child}
        _add_comment(merged, tid, src, ex)


def _add_audit(a: dict[str, Any], src: Path, ex: _Export) -> None:
    tid = _id(a.get("ticket_id"))
    for ev in _list(a.get("events")):
        if not isinstance(ev, dict) or ev.get("type") != "Comment":
            ex.dropped["system_events"] += 1
            continue
        merged = {"author_id": a.get("author_id"), "created_at": a.get("created_at"), **ev}
        _add_comment(merged, tid, src, ex)


def _add_comment(c: Any, tid: str, src: Path, ex: _Export) -> None:
    ex.count("message", "read")
    if not isinstance(c, dict):
        ex.reject(str(src), f"ticket {tid}", "message", "comment is not a JSON object", _raw(c))
        return
    plain = c.get("plain_body") or c.get("body")
    body, is_html = (plain, False) if plain else (c.get("html_body") or "", True)
    key = (
        _id(c.get("id"))
        or f"{c.get('created_at')}|{c.get('author_id')}|{zlib.crc32(str(body).encode())}"
    )
    bucket = ex.comments.setdefault(tid, {})
    if key in bucket:
        ex.count("message", "read", -1)  # the same comment from two pages is one message
        ex.dropped["duplicate_comments"] += 1
        return
    bucket[key] = _Comment(
        key=key,
        ticket_id=tid,
        author_id=_id(c.get("author_id")),
        body=str(body or ""),
        is_html=is_html,
        public=c.get("public", True) is not False,
        created_at=_iso(c.get("created_at")),
        order=len(bucket),
        location=f"ticket {tid} comment {_id(c.get('id')) or len(bucket) + 1}",
        raw=_raw(c),
        src=str(src),
    )


def gather(paths: Iterable[Path]) -> _Export:
    ex = _Export()
    for kind in ("ticket", "message"):
        ex.count(kind, "read", 0)
    for path in paths:
        for f in export_files(path):
            for record in load_json_records(f):
                _absorb(record, f, ex, _ticket_hint(f))
    return ex


# --- rebuilding ---------------------------------------------------------------------


@dataclass
class _Options:
    topics: Sequence[EscalationTopic] | None
    protected: frozenset[str]
    allow: list[str]
    agents: list[str] = field(default_factory=list)  # user ids of staff, found once


def _role(
    c: _Comment, t: dict[str, Any], users: dict[str, dict[str, Any]], opener: bool
) -> tuple[str, str]:
    """(message role, author label); the label is a role, never a person's name."""
    user = users.get(c.author_id)
    if user is not None:
        role = ROLE.get(str(user.get("role")), "customer")
    elif c.author_id and c.author_id == _id(t.get("requester_id")):
        role = "customer"
    elif c.author_id and c.author_id == _id(t.get("assignee_id")):
        role = "agent"
    else:
        role = "customer" if opener else "agent"  # unknown author: the opener is the customer
    return ("note" if not c.public else role), role


def _people(
    t: dict[str, Any], comments: list[_Comment], users: dict[str, dict[str, Any]], agents: list[str]
):
    """Names of everyone on the ticket, and of every staff member: notes and replies
    mention colleagues ("@Jordan can you check…") who never wrote on the ticket."""
    ids = {_id(t.get(k)) for k in ("requester_id", "submitter_id", "assignee_id")}
    ids.update(agents)
    ids.update(_id(i) for i in _list(t.get("collaborator_ids")) + _list(t.get("follower_ids")))
    ids.update(c.author_id for c in comments)
    for uid in ids:
        user = users.get(uid) or {}
        yield str(user.get("name") or "")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def _conversation(t: dict[str, Any], comments: list[_Comment]) -> list[_Comment]:
    ordered = sorted(comments, key=lambda c: (_time_key(c.created_at), c.order))
    desc = str(t.get("description") or "")
    # The first comment is the description; add it only when the export lacks that comment.
    if desc.strip() and not any(_norm(desc) == _norm(c.body) for c in ordered[:3]):
        opener = _Comment(
            key="description",
            ticket_id=_id(t["id"]),
            author_id=_id(t.get("requester_id")),
            body=desc,
            is_html=False,
            public=True,
            created_at=_iso(t.get("created_at")),
            order=-1,
            location=f"ticket {t['id']} description",
            raw=_raw(desc),
        )
        ordered.insert(0, opener)
    return ordered


def _rebuild(t: dict[str, Any], comments: list[_Comment], ex: _Export, opt: _Options):
    tid = _id(t["id"])
    src = ex.ticket_where[tid]
    raw_status = str(t.get("status") or "").lower()
    convo = _conversation(t, comments)
    described = sum(1 for c in convo if c.key == "description")
    ex.count("message", "read", described)
    if raw_status not in STATUS:
        reason = (
            "ticket was deleted in Zendesk"
            if raw_status == "deleted"
            else (f"unknown status {t.get('status')!r}")
        )
        return _reject_ticket(ex, src, tid, reason, t, len(convo))
    scrubber = Scrubber(_people(t, comments, ex.users, opt.agents), opt.protected, opt.allow)
    texts = [strip_signature(html_to_text(c.body) if c.is_html else c.body) for c in convo]
    for text in texts:
        scrubber.learn(text)
    messages: list[Message] = []
    for i, (c, text) in enumerate(zip(convo, texts, strict=True)):
        clean = drop_placeholder_tail(scrubber.scrub(text).strip())
        if not clean:
            ex.reject(
                src,
                c.location,
                "message",
                "no text left after removing signature, quoted reply and blank lines",
                c.raw,
            )
            continue
        role, author = _role(c, t, ex.users, opener=i == 0)
        messages.append(Message(role=role, text=clean, created_at=c.created_at, author=author))
        ex.count("message", "accepted")
    if not messages:
        return _reject_ticket(ex, src, tid, "ticket has no message text", t, 0)
    return _ticket(t, messages, scrubber, ex, opt)


def _reject_ticket(ex: _Export, src: str, tid: str, reason: str, t: Any, n_messages: int) -> None:
    ex.reject(src, f"ticket {tid}", "ticket", reason, _raw(t))
    ex.count("message", "quarantined", n_messages)  # covered by the ticket's record
    return None


def _ticket(
    t: dict[str, Any], messages: list[Message], scrubber: Scrubber, ex: _Export, opt: _Options
) -> Ticket:
    subject = scrubber.scrub(str(t.get("subject") or t.get("raw_subject") or "")).strip()
    reason = human_only_reason([m.text for m in messages if m.role == "customer"], opt.topics)
    ex.pii.update(scrubber.counts)
    rating = t.get("satisfaction_rating")
    score = rating.get("score") if isinstance(rating, dict) else None
    via = t.get("via")
    ex.count("ticket", "accepted")
    return Ticket(
        source_id=_id(t["id"]),
        source=SOURCE,
        subject=subject,
        status=STATUS[str(t.get("status")).lower()],
        messages=messages,
        tags=[str(x) for x in _list(t.get("tags"))],
        channel=str(via.get("channel") or "") if isinstance(via, dict) else "",
        satisfaction=score if score in ("good", "bad") else None,
        created_at=_iso(t.get("created_at")),
        human_only=reason is not None,
        human_only_reason=reason,
    )


# --- progress -----------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


def _progress_iter(items: list[Any], label: str, enabled: bool) -> Iterator[Any]:
    if not enabled or not items:
        yield from items
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        yield from progress.track(items, description=label)


# --- entry point --------------------------------------------------------------------


def read_tickets(
    path: Path | str | Sequence[Path | str],
    *,
    topics: Sequence[EscalationTopic] | None = None,
    protected: Iterable[str] = (),
    allow: Iterable[str] = (),
    progress: bool = False,
) -> tuple[list[Ticket], list[QuarantineItem], dict[str, Any]]:
    """Tickets (cleaned, PII replaced, human-only marked), quarantined records, stats.

    path: a file, a directory of page files, or several of these. topics: the
    store's always-escalate topics (None → built-in defaults). protected: catalog
    and brand words that are names only in context. allow: strings never scrubbed
    (the store's own support email). stats: counts per kind (read/accepted/
    quarantined), dropped system events and duplicates, notes, PII replacements
    per type and human-only tickets per topic.
    """
    paths = [Path(p) for p in path] if isinstance(path, list | tuple) else [Path(path)]
    ex = gather(paths)
    agents = [uid for uid, u in ex.users.items() if ROLE.get(str(u.get("role"))) == "agent"]
    opt = _Options(
        topics=topics,
        protected=frozenset(w.lower() for w in protected),
        allow=list(allow),
        agents=agents,
    )
    human: Counter[str] = Counter()
    tickets: list[Ticket] = []
    for tid in _progress_iter(list(ex.tickets), "Cleaning tickets", progress):
        comments = list(ex.comments.pop(tid, {}).values())
        ticket = _rebuild(ex.tickets[tid], comments, ex, opt)
        if ticket is not None:
            tickets.append(ticket)
            if ticket.human_only_reason:
                human[ticket.human_only_reason] += 1
    for tid, orphans in ex.comments.items():
        for c in orphans.values():
            reason = f"comment for ticket {tid or '?'}, which is not in the export"
            ex.reject(c.src, c.location, "message", reason, c.raw)
    stats = {
        "counts": {k: dict(v) for k, v in ex.counts.items()},
        "dropped": dict(ex.dropped),
        "notes": sum(1 for t in tickets for m in t.messages if m.role == "note"),
        "pii": dict(ex.pii),
        "human_only": dict(human),
    }
    return tickets, ex.quarantine, stats
