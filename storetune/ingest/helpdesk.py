"""What every ticket reader shares: gathering pages, dedupe, rebuilding conversations,
cleaning and counting (the formats are described in docs/formats.md).

A reader turns its source's records into Conversations (raw parts with a role and
a time); everything after that is here, so the counts every reader reports mean
the same: per kind read == accepted + quarantined, system events and duplicate
records under "dropped", internal notes kept with role "note".
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from storetune.clean import (
    Scrubber,
    drop_placeholder_tail,
    html_to_text,
    human_only_reason,
    strip_signature,
    tagged_topic,
)
from storetune.config import EscalationTopic
from storetune.errors import StoretuneError
from storetune.ingest.files import scan
from storetune.ingest.parallel import map_slices
from storetune.ingest.shopify_json import load_json_records
from storetune.progress import progress as progress_bar
from storetune.store.db import QuarantineItem
from storetune.store.records import Message, Ticket

PathArg = Path | str | Sequence[Path | str]
Result = tuple[list[Ticket], list[QuarantineItem], dict[str, Any]]


@dataclass
class Part:
    """One message as the source wrote it, before cleaning."""

    role: str  # customer | agent: who wrote it
    body: str
    created_at: str = ""  # ISO 8601
    is_html: bool = False
    public: bool = True  # False: internal note
    key: str = ""  # dedupe key within the ticket (the source's message id)
    location: str = ""
    raw: str = ""
    # The ticket's opening message kept in a field of its own (a description): it comes
    # first whatever its time, which is often missing or the ticket's own.
    opener: bool = False


@dataclass
class Conversation:
    id: str
    subject: str
    status: str | None  # normalised; None: unknown, the ticket is quarantined
    parts: list[Part]
    status_reason: str = ""  # why status is None
    names: list[str] = field(default_factory=list)  # people on the ticket, for the scrubber
    tags: list[str] = field(default_factory=list)
    channel: str = ""
    satisfaction: str | None = None  # good | bad
    created_at: str = ""
    raw: str = ""  # the source record, quarantined whole when the ticket is rejected


# --- small helpers ------------------------------------------------------------------


def sid(value: Any) -> str:
    return "" if value is None else str(value)


def raw(obj: Any) -> str:
    """The source record as JSON, whole: the quarantine keeps everything."""
    return json.dumps(obj, ensure_ascii=False, default=str)


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def iso(value: Any) -> str:
    """ISO 8601 from ISO text or Unix seconds (Intercom); "" for an impossible time."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):  # NaN, before year 1, after 9999
            return ""
    return sid(value)


def time_key(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("inf")  # undated messages go last, in file order


def as_list(value: Any) -> list[Any]:
    """A field that should be a list: a lone value is a list of one, null or "" none."""
    if isinstance(value, list):
        return value
    return [] if value is None or value == "" else [value]


def full_name(*parts: Any) -> str:
    return " ".join(str(p) for p in parts if p).strip()


def rating_1_to_5(value: Any) -> str | None:
    """1–5 scores (Gorgias, Intercom, spreadsheets): 4–5 good, 1–2 bad, 3 neither."""
    try:
        score = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
        return None
    return "good" if score >= 4 else "bad" if score <= 2 else None


# --- gathering ----------------------------------------------------------------------


@dataclass
class Delta:
    """What rebuilding some tickets added to a collector's outputs."""

    quarantine: list[QuarantineItem]
    counts: dict[str, Counter[str]]
    dropped: Counter[str]
    pii: Counter[str]


class Collector:
    """Everything gathered from all files before tickets are rebuilt."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[dict[str, Any], str]] = {}  # ticket id -> (record, file)
        self.updated: dict[str, Any] = {}
        self.contents: dict[str, str | None] = {}  # what tells two records of a ticket apart
        self.extra: dict[str, list[tuple[Any, str]]] = {}  # messages shipped apart from tickets
        self._extra_keys: dict[str, set[str]] = {}
        self._extra_where: dict[str, list[str]] = {}  # parallel to extra: quarantine locations
        self.users: dict[str, dict[str, Any]] = {}  # people shipped apart from tickets, by id
        self.ratings: dict[str, Any] = {}
        self.quarantine: list[QuarantineItem] = []
        self.counts: dict[str, Counter[str]] = {}
        self.dropped: Counter[str] = Counter()
        self.pii: Counter[str] = Counter()
        self.files: list[str] = []
        self.skipped: list[tuple[str, str]] = []  # files not read: (path, why)
        self.seen = 0
        for kind in ("ticket", "message"):
            self.count(kind, "read", 0)

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        self.counts.setdefault(kind, Counter(read=0, accepted=0, quarantined=0))[outcome] += n

    def reject(self, src: str, where: str, kind: str, reason: str, obj: str) -> None:
        self.quarantine.append(QuarantineItem(src, where, kind, reason, obj))
        self.count(kind, "quarantined")

    def not_ours(self, value: Any, src: Path, what: str) -> None:
        self.count("record", "read")
        self.reject(str(src), f"record {self.seen}", "record", f"not a {what} record", raw(value))

    def add_ticket(
        self, tid: str, record: Any, src: Path, updated: Any = "", content: str | None = None
    ) -> None:
        """Keep the newest record of ticket tid. content (default: the record as JSON)
        tells a repeat of the same ticket from a conflicting one: a record that differs
        from the kept one with no newer update time replaces it, and the replaced one
        is quarantined whole, so the summary says so."""
        if not tid or not isinstance(record, dict):
            self.count("ticket", "read")
            self.reject(str(src), f"record {self.seen}", "ticket", "ticket has no id", raw(record))
            return
        if tid not in self.records:
            self.count("ticket", "read")
        elif not self._keep_new(tid, record, src, updated, content):
            return
        self.records[tid] = (record, str(src))
        self.updated[tid] = updated
        self.contents[tid] = content

    def _keep_new(
        self, tid: str, record: Any, src: Path, updated: Any, content: str | None
    ) -> bool:
        # Paged and incremental exports repeat a ticket each time it changed.
        old, old_src = self.records[tid]
        old_content = self.contents.get(tid)
        same = (content, old_content) if content is not None else (_json(record), _json(old))
        if same[0] == same[1] or sid(updated) != sid(self.updated.get(tid)):
            self.dropped["duplicate_ticket_records"] += 1
            return not _older(updated, self.updated.get(tid))
        self.dropped["conflicting_duplicate_tickets"] += 1
        self.count("record", "read")
        reason = f"ticket {tid}: a later record of it has other content and replaced this one"
        self.reject(old_src, f"ticket {tid}", "record", reason, _record_raw(old))
        return True

    def add_extra(self, tid: str, message: Any, src: Path, key: str = "", where: str = "") -> None:
        """Keep a message for ticket `tid`; one whose `key` was already seen for that
        ticket is the same message from another page and is dropped. `where` names it
        in the quarantine should its ticket never come."""
        if key:
            seen = self._extra_keys.setdefault(tid, set())
            if key in seen:
                self.dropped["duplicate_comments"] += 1
                return
            seen.add(key)
        self.extra.setdefault(tid, []).append((message, str(src)))
        self._extra_where.setdefault(tid, []).append(where or f"ticket {tid or '?'}")

    def fresh(self) -> Collector:
        """A collector that reads what this one gathered (users, ratings) and counts
        from zero: what rebuilding a slice of the tickets adds, for `merge`."""
        out = copy.copy(self)
        out.quarantine, out.counts = [], {}
        out.dropped, out.pii = Counter(), Counter()
        return out

    def delta(self) -> Delta:
        """What a `fresh` collector counted and quarantined, and nothing it only reads:
        a worker sends this back, not the gathered records."""
        return Delta(self.quarantine, self.counts, self.dropped, self.pii)

    def merge(self, delta: Delta) -> None:
        """Add what a `fresh` collector counted and quarantined (its `delta`)."""
        self.quarantine.extend(delta.quarantine)
        for kind, counts in delta.counts.items():
            self.counts.setdefault(kind, Counter(read=0, accepted=0, quarantined=0)).update(counts)
        self.dropped.update(delta.dropped)
        self.pii.update(delta.pii)

    def orphans(self) -> Iterator[tuple[str, Any, str, str]]:
        """(ticket id, message, file, location) of every message left without its ticket."""
        for tid, messages in self.extra.items():
            for (message, src), where in zip(messages, self._extra_where[tid], strict=True):
                yield tid, message, src, where


def _record_raw(record: dict[str, Any]) -> str:
    conv = record.get("conv")  # spreadsheet and chat readers keep a Conversation
    return conv.raw or raw(conv.subject) if isinstance(conv, Conversation) else raw(record)


def _older(new: Any, old: Any) -> bool:
    """True when new predates old; ties keep the later record (numbers: Unix seconds)."""
    if isinstance(new, int | float) and isinstance(old, int | float):
        return new < old
    return sid(new) < sid(old)


def list_files(path: Path, suffixes: Iterable[str] = (".json", ".jsonl")) -> list[Path]:
    return scan_files(path, suffixes)[0]


def scan_files(
    path: Path, suffixes: Iterable[str] = (".json", ".jsonl")
) -> tuple[list[Path], list[tuple[str, str]]]:
    """(files to read, [(file, why skipped)]); StoretuneError when nothing can be read."""
    files, skipped = scan(path, suffixes)
    if not files:
        why = f" ({len(skipped)} other file(s): {skipped[0][1]}, …)" if skipped else ""
        raise StoretuneError(
            f"{path}: directory has no {' or '.join(sorted(set(suffixes)))} files{why}",
            hint="check sources.tickets in store.yaml, or pass --format",
        )
    return files, skipped


def files_of(path: Path, suffixes: Iterable[str], col: Collector) -> list[Path]:
    """The files of path to read; the others are counted in col.skipped."""
    files, skipped = scan_files(path, suffixes)
    col.skipped.extend(skipped)
    col.files.extend(str(f) for f in files)
    return files


def as_paths(path: PathArg) -> list[Path]:
    return [Path(p) for p in path] if isinstance(path, list | tuple) else [Path(path)]


def gather_json(paths: list[Path], absorb: Callable[[Any, Path, Collector], None]) -> Collector:
    """Feed every top-level JSON value of every file (or JSON Lines line) to absorb."""
    col = Collector()
    for path in paths:
        for f in files_of(path, (".json", ".jsonl"), col):
            for record in load_json_records(f):
                absorb(record, f, col)
    return col


# --- rebuilding ---------------------------------------------------------------------


@dataclass
class Options:
    topics: Sequence[EscalationTopic] | None
    protected: set[str]
    allow: list[str]


def _unique(conv: Conversation, col: Collector) -> list[Part]:
    seen: set[str] = set()
    parts = []
    for p in conv.parts:
        if p.key and p.key in seen:
            col.dropped["duplicate_comments"] += 1  # the same message from two pages
            continue
        seen.add(p.key)
        parts.append(p)
    return parts


def _reject_ticket(
    col: Collector, src: str, conv: Conversation, reason: str, parts: Sequence[Part] = ()
) -> None:
    """The ticket's record whole, and each of its messages not yet quarantined."""
    col.reject(src, f"ticket {conv.id}", "ticket", reason, conv.raw or raw(conv.subject))
    for p in parts:
        why = f"its ticket {conv.id} was quarantined: {reason}"
        col.reject(src, p.location or f"ticket {conv.id}", "message", why, p.raw or raw(p.body))


def rebuild(conv: Conversation, src: str, col: Collector, opt: Options) -> Ticket | None:
    parts = _unique(conv, col)
    col.count("message", "read", len(parts))
    if conv.status is None:
        return _reject_ticket(col, src, conv, conv.status_reason or "unknown status", parts)
    order = sorted(
        range(len(parts)), key=lambda i: (not parts[i].opener, time_key(parts[i].created_at), i)
    )
    parts = [parts[i] for i in order]
    scrubber = Scrubber(conv.names, opt.protected, opt.allow)
    texts = [strip_signature(html_to_text(p.body) if p.is_html else p.body) for p in parts]
    for text in texts:
        scrubber.learn(text)
    messages: list[Message] = []
    for p, text in zip(parts, texts, strict=True):
        clean = drop_placeholder_tail(scrubber.scrub(text).strip())
        if not clean:
            reason = "no text left after removing signature, quoted reply and blank lines"
            col.reject(src, p.location, "message", reason, p.raw)
            continue
        role = p.role if p.public else "note"
        messages.append(Message(role=role, text=clean, created_at=p.created_at, author=p.role))
        col.count("message", "accepted")
    if not messages:
        return _reject_ticket(col, src, conv, "ticket has no message text")
    return _ticket(conv, messages, scrubber, col, opt)


def _ticket(
    conv: Conversation, messages: list[Message], scrubber: Scrubber, col: Collector, opt: Options
) -> Ticket:
    customer = [m.text for m in messages if m.role == "customer"]
    reason = tagged_topic(conv.tags, opt.topics) or human_only_reason(customer, opt.topics)
    subject = scrubber.scrub(conv.subject).strip()
    col.pii.update(scrubber.counts)
    col.count("ticket", "accepted")
    return Ticket(
        source_id=conv.id,
        source="",  # set by finish()
        subject=subject,
        status=conv.status or "open",
        messages=messages,
        tags=conv.tags,
        channel=conv.channel,
        satisfaction=conv.satisfaction,
        created_at=conv.created_at,
        human_only=reason is not None,
        human_only_reason=reason,
    )


Convert = Callable[[dict[str, Any], list[tuple[Any, str]], Collector], Conversation]


class ReadOptions(TypedDict, total=False):
    """What every ticket reader takes besides its path (json_reader's `read_tickets`
    says what each means); readers pass them through to `finish` unchanged."""

    topics: Sequence[EscalationTopic] | None
    protected: Iterable[str]
    allow: Iterable[str]
    progress: bool
    workers: int


def finish(
    col: Collector,
    source: str,
    convert: Convert,
    *,
    topics: Sequence[EscalationTopic] | None = None,
    protected: Iterable[str] = (),
    allow: Iterable[str] = (),
    progress: bool = False,
    workers: int = 1,
) -> Result:
    """Rebuild every gathered ticket; messages whose ticket never came are quarantined.
    `workers` > 1 rebuilds big reads in forked processes (storetune.ingest.parallel),
    with the same result."""
    opt = Options(topics=topics, protected={w.lower() for w in protected}, allow=list(allow))
    human: Counter[str] = Counter()
    tickets: list[Ticket] = []
    jobs = [(*col.records[tid], col.extra.pop(tid, [])) for tid in list(col.records)]

    def work(lo: int, hi: int) -> tuple[list[Ticket], Delta]:
        out = col.fresh()
        built = [
            rebuild(convert(rec, extra, out), src, out, opt) for rec, src, extra in jobs[lo:hi]
        ]
        return [t for t in built if t is not None], out.delta()

    slices = map_slices(work, len(jobs), workers)
    with progress_bar(
        "Cleaning tickets", len(jobs), stderr=True, transient=True, enabled=progress
    ) as bar:
        for size, (built, out) in slices:
            col.merge(out)
            for ticket in built:
                ticket.source = source
                tickets.append(ticket)
                if ticket.human_only_reason:
                    human[ticket.human_only_reason] += 1
            bar.advance(size)
    for tid, message, src, where in col.orphans():
        col.count("message", "read")
        reason = f"message for ticket {tid or '?'}, which is not in the export"
        col.reject(src, where, "message", reason, raw(message))
    stats = {
        "counts": {k: dict(v) for k, v in col.counts.items()},
        "dropped": dict(col.dropped),
        "notes": sum(1 for t in tickets for m in t.messages if m.role == "note"),
        "pii": dict(col.pii),
        "human_only": dict(human),
        "files": list(dict.fromkeys(col.files)),
        "skipped": [list(x) for x in dict.fromkeys(col.skipped)],
    }
    return tickets, col.quarantine, stats


def norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def json_reader(
    source: str,
    absorb: Callable[[Any, Path, Collector], None],
    convert: Callable[..., Any],
) -> Callable[..., Result]:
    """The `read_tickets` of a JSON helpdesk export: gather its pages, then finish.

    Gorgias, Freshdesk, Help Scout and Intercom differ only in `absorb` (how a page's
    records are collected) and `convert` (how one conversation becomes a Ticket).
    """

    def read_tickets(path: PathArg, **options: Unpack[ReadOptions]) -> Result:
        """Tickets (cleaned, PII replaced, human-only marked), quarantined records, stats.

        path: a file, a directory of page files, or several of these. topics: the
        store's always-escalate topics (None → built-in defaults). protected: catalog
        and brand words that are names only in context. allow: strings never scrubbed
        (the store's own support email). progress: show a bar. workers: processes that
        clean the tickets (big reads only). stats: counts per kind (read/accepted/
        quarantined), dropped system events and duplicates, notes, PII replacements
        per type, human-only tickets per topic and the files read.
        """
        return finish(gather_json(as_paths(path), absorb), source, convert, **options)

    return read_tickets
