"""Spreadsheet and prepared-chat ticket exports (docs/formats.md, "Spreadsheets", "Chat JSON Lines").

- CSV or JSON Lines, one ticket per row: the customer's message and the agent's
  response, with optional status, CSAT, created_at, id, subject and customer/agent
  name columns. Columns are found by name (common headers guessed) and can be
  named explicitly with `columns={"customer": "Question", "agent": "Answer"}`.
- OpenAI chat JSON Lines: `{"messages": [{"role": "user", "content": ...}, ...]}`;
  system prompts are ignored, user → customer, assistant → agent. A bad line is
  quarantined with its line number; the rest of the file is still read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from storetune.errors import StoretuneError
from storetune.ingest import helpdesk as hd
from storetune.ingest.shopify_csv import read_text

FIELDS = ("customer", "agent", "status", "csat", "created_at", "id", "subject")
FIELDS += ("customer_name", "agent_name")
# Header names tried in order, compared lower-case with _ - and spaces alike.
GUESSES: dict[str, tuple[str, ...]] = {
    "customer": ("customer message", "customer", "question", "message", "query", "inquiry",
                 "request", "prompt", "input", "customer text", "body"),
    "agent": ("agent response", "agent reply", "agent message", "response", "answer", "reply",
              "completion", "output"),
    "status": ("status", "state", "ticket status"),
    "csat": ("csat", "csat score", "satisfaction", "satisfaction rating", "rating", "score"),
    "created_at": ("created at", "created", "created date", "date", "timestamp", "time"),
    "id": ("id", "ticket id", "conversation id", "case id", "ticket number", "ticket"),
    "subject": ("subject", "title", "topic"),
    "customer_name": ("customer name", "requester name", "requester", "name"),
    "agent_name": ("agent name", "assignee name", "assignee", "agent"),
}  # fmt: skip
STATUS = {
    "open": "open", "new": "open", "pending": "pending", "hold": "pending", "on hold": "pending",
    "waiting": "pending", "solved": "solved", "resolved": "solved", "answered": "solved",
    "done": "solved", "closed": "closed",
}  # fmt: skip
CSAT = {
    "good": "good", "great": "good", "positive": "good", "satisfied": "good", "yes": "good",
    "bad": "bad", "not good": "bad", "negative": "bad", "unsatisfied": "bad",
    "dissatisfied": "bad", "no": "bad",
}  # fmt: skip
CHAT_ROLES = {"user": "customer", "assistant": "agent"}


def _key(header: str) -> str:
    return re.sub(r"[\s_\-]+", " ", header.lstrip("\ufeff'")).strip().lower()


def guess_columns(
    headers: Sequence[str], columns: Mapping[str, str] | None, src: Path
) -> dict[str, str]:
    """field -> header in this file; explicit columns win, the rest are guessed."""
    by_key = {_key(h): h for h in headers if h}
    chosen: dict[str, str] = {}
    for name, header in (columns or {}).items():
        if name not in FIELDS:
            raise StoretuneError(f"unknown column option {name!r}", hint=f"use {', '.join(FIELDS)}")
        if _key(header) not in by_key:
            raise StoretuneError(
                f"{src}: no column {header!r} (columns: {', '.join(headers)})",
                hint=f"fix the column name given for {name!r}",
            )
        chosen[name] = by_key[_key(header)]
    for name in FIELDS:
        taken = set(chosen.values())
        guess = next(
            (by_key[g] for g in GUESSES[name] if by_key.get(g) not in (None, *taken)), None
        )
        if name not in chosen and guess:
            chosen[name] = guess
    missing = [n for n in ("customer", "agent") if n not in chosen]
    if missing:
        raise StoretuneError(
            f"{src}: can't tell which column holds the {' and the '.join(missing)} text "
            f"(columns: {', '.join(headers)})",
            hint='name them, e.g. columns={"customer": "Question", "agent": "Answer"}',
        )
    return chosen


def _status(value: str, answered: bool) -> str | None:
    if not value.strip():
        # A spreadsheet of questions with answers is a list of answered tickets.
        return "solved" if answered else "open"
    return STATUS.get(_key(value))


def _csat(value: str) -> str | None:
    return CSAT.get(_key(value)) or hd.rating_1_to_5(value) if value.strip() else None


def _row_conversation(
    row: Mapping[str, Any], cols: dict[str, str], src: Path, line: int
) -> hd.Conversation:
    def cell(name: str) -> str:
        value = row.get(cols[name]) if name in cols else None
        return "" if value is None else str(value).strip()

    tid = cell("id").lstrip("'") or f"{src.stem}:{line}"
    parts = [hd.Part("customer", cell("customer"), cell("created_at"), key="customer")]
    if cell("agent"):
        parts.append(hd.Part("agent", cell("agent"), cell("created_at"), key="agent"))
    for p in parts:
        p.location, p.raw = f"line {line} {p.role} message", hd.raw(p.body)
    return hd.Conversation(
        id=tid,
        subject=cell("subject"),
        status=_status(cell("status"), answered=len(parts) > 1),
        status_reason=f"line {line}: unknown status {cell('status')!r}",
        parts=parts,
        names=[cell("customer_name"), cell("agent_name")],
        satisfaction=_csat(cell("csat")),
        created_at=cell("created_at"),
        raw=hd.raw(dict(row)),
    )


def _add_row(col: hd.Collector, conv: hd.Conversation, src: Path, line: int) -> None:
    if not conv.parts[0].body:
        col.count("ticket", "read")
        col.reject(str(src), f"line {line}", "ticket", "no customer message", conv.raw)
        return
    # a later row with the same id replaces an earlier one (a conflict when they differ)
    col.add_ticket(conv.id, {"conv": conv}, src, content=_content(conv))


def _content(conv: hd.Conversation) -> str:
    """What two rows of one ticket must agree on to be the same ticket."""
    parts = [(p.role, p.body) for p in conv.parts]
    return json.dumps([conv.subject, conv.status, conv.satisfaction, parts], ensure_ascii=False)


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    # A pasted email thread can be megabytes; csv's default cap is 128 KiB a cell.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as e:
        raise StoretuneError(f"{path} line {reader.line_num}: not valid CSV ({e})") from None


def _gather_csv(path: Path, col: hd.Collector, columns: Mapping[str, str] | None) -> None:
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise StoretuneError(f"{path}: no header row")
    headers = [h.strip() for h in first[1]]
    cols = guess_columns(headers, columns, path)
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        conv = _row_conversation(dict(zip(headers, cells, strict=False)), cols, path, line)
        _add_row(col, conv, path, line)
        col.seen += 1


def _json_lines(path: Path, col: hd.Collector, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Objects of a JSON Lines file; a line that is not one is quarantined, not fatal."""
    for line, text in enumerate(read_text(path, what="JSON Lines").splitlines(), 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            value, why = None, f"not valid JSON ({e.msg}, column {e.colno})"
        except (ValueError, RecursionError) as e:  # a 5000-digit number, 1000 levels deep
            value, why = None, f"JSON that can't be read ({type(e).__name__})"
        else:
            why = "" if isinstance(value, dict) else "not a JSON object"
        if why:
            col.count(kind, "read")
            col.reject(str(path), f"line {line}", kind, why, text)
            continue
        yield line, value


def _gather_jsonl(path: Path, col: hd.Collector, columns: Mapping[str, str] | None) -> None:
    cols: dict[str, str] | None = None
    for line, obj in _json_lines(path, col, "ticket"):
        cols = cols or guess_columns(list(obj), columns, path)
        _add_row(col, _row_conversation(obj, cols, path, line), path, line)
        col.seen += 1


def _chat_text(content: Any) -> str:
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "\n".join(str(c.get("text") or "") for c in content if isinstance(c, dict))
    return "" if content is None else str(content)


def _chat_parts(obj: dict[str, Any], line: int, col: hd.Collector) -> list[hd.Part] | str:
    messages = obj.get("messages")
    if not isinstance(messages, list):
        return 'no "messages" list'
    parts = []
    for n, m in enumerate(messages, 1):
        role = m.get("role") if isinstance(m, dict) else None
        role = role if isinstance(role, str) else None  # a list or object is no role
        if role in CHAT_ROLES:
            part = hd.Part(CHAT_ROLES[role], _chat_text(m.get("content")), key=str(n))
            part.location, part.raw = f"line {line} message {n}", hd.raw(m)
            parts.append(part)
        elif role in {"system", "developer"}:
            col.dropped["system_prompts"] += 1  # instructions, not conversation
        else:
            return f"message {n} has no user or assistant role"
    if not {p.role for p in parts} >= {"customer", "agent"}:
        return "needs at least one user and one assistant message"
    return parts


def _gather_chat(path: Path, col: hd.Collector) -> None:
    for line, obj in _json_lines(path, col, "ticket"):
        parts = _chat_parts(obj, line, col)
        if isinstance(parts, str):
            col.count("ticket", "read")
            col.reject(str(path), f"line {line}", "ticket", parts, hd.raw(obj))
            continue
        tid = hd.sid(obj.get("id")) or f"{path.stem}:{line}"
        # Prepared data holds finished conversations: resolved by construction.
        conv = hd.Conversation(id=tid, subject="", status="solved", parts=parts, raw=hd.raw(obj))
        col.add_ticket(tid, {"conv": conv}, path, content=_content(conv))
        col.seen += 1


def _convert(record: dict[str, Any], extra: list[Any], col: hd.Collector) -> hd.Conversation:
    return record["conv"]


def _read(
    path: hd.PathArg,
    source: str,
    gather: Any,
    suffixes: tuple[str, ...],
    **options: Unpack[hd.ReadOptions],
) -> hd.Result:
    col = hd.Collector()
    for p in hd.as_paths(path):
        for f in hd.files_of(p, suffixes, col):
            gather(f, col)
    return hd.finish(col, source, _convert, **options)


def read_csv_tickets(
    path: hd.PathArg,
    *,
    columns: Mapping[str, str] | None = None,
    **options: Unpack[hd.ReadOptions],
) -> hd.Result:
    """One ticket per CSV row (customer message → agent response), as zendesk's."""
    gather = lambda f, col: _gather_csv(f, col, columns)  # noqa: E731
    return _read(path, "generic_csv", gather, (".csv",), **options)


def read_jsonl_tickets(
    path: hd.PathArg,
    *,
    columns: Mapping[str, str] | None = None,
    **options: Unpack[hd.ReadOptions],
) -> hd.Result:
    """One ticket per JSON Lines object, keys mapped like CSV columns."""
    gather = lambda f, col: _gather_jsonl(f, col, columns)  # noqa: E731
    return _read(path, "generic_jsonl", gather, (".jsonl", ".json"), **options)


def read_chat_jsonl(path: hd.PathArg, **options: Unpack[hd.ReadOptions]) -> hd.Result:
    """One ticket per OpenAI chat line; bad lines quarantined with their line number."""
    return _read(path, "chat_jsonl", _gather_chat, (".jsonl", ".json"), **options)


def read_tickets(
    path: hd.PathArg,
    *,
    columns: Mapping[str, str] | None = None,
    **options: Unpack[hd.ReadOptions],
) -> hd.Result:
    """Generic CSV or JSON Lines tickets, by the first file's suffix (.csv → CSV)."""
    first = hd.list_files(hd.as_paths(path)[0], (".csv", ".jsonl", ".json"))[0]
    reader = read_csv_tickets if first.suffix.lower() == ".csv" else read_jsonl_tickets
    return reader(path, columns=columns, **options)
