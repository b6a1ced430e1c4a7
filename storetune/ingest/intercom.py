"""Intercom conversation exports (docs/formats.md, "Intercom").

One conversation per `GET /conversations/{id}` (a file, a list, a directory or
JSON Lines), or pages `{"type": "conversation.list", "conversations": [...]}`.
The opening message is `source`; replies are `conversation_parts.conversation_parts[]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storetune.clean import html_to_text
from storetune.ingest import helpdesk as hd

SOURCE = "intercom"
STATUS = {"open": "open", "snoozed": "pending", "closed": "closed"}
CUSTOMER = {"user", "lead", "contact"}
_ENVELOPE = {"type", "pages", "total_count", "next", "page", "per_page", "total_pages"}


def _absorb(value: Any, src: Path, col: hd.Collector) -> None:
    if isinstance(value, list):
        for item in value:
            _absorb(item, src, col)
        return
    col.seen += 1
    if not isinstance(value, dict):
        return col.not_ours(value, src, "Intercom")
    if isinstance(value.get("conversations"), list):
        _absorb(value["conversations"], src, col)
    elif value.keys() <= _ENVELOPE:
        return None
    elif "id" in value and ("source" in value or "conversation_parts" in value):
        col.add_ticket(hd.sid(value["id"]), value, src, value.get("updated_at") or 0)
    else:
        col.not_ours(value, src, "Intercom")
    return None


def _role(author: Any) -> str:
    kind = author.get("type") if isinstance(author, dict) else None
    return "customer" if hd.sid(kind) in CUSTOMER else "agent"  # admin, bot, team


def _message(p: dict[str, Any], cid: str, key: str, when: Any, public: bool) -> hd.Part:
    return hd.Part(
        role=_role(p.get("author")),
        body=str(p.get("body") or ""),
        created_at=hd.iso(when),
        is_html=True,  # Intercom bodies are HTML
        public=public,
        key=key,
        location=f"conversation {cid} {'part ' + key if key != 'source' else 'opening message'}",
        raw=hd.raw(p),
    )


def _parts(c: dict[str, Any], cid: str, col: hd.Collector) -> list[hd.Part]:
    out = []
    source = c.get("source")
    if isinstance(source, dict) and source.get("body"):
        out.append(_message(source, cid, "source", c.get("created_at"), True))
    container = c.get("conversation_parts")
    parts = container.get("conversation_parts") if isinstance(container, dict) else container
    for n, p in enumerate(hd.as_list(parts), 1):
        if not isinstance(p, dict):
            out.append(hd.Part("customer", "", key=f"bad{n}", location=f"conversation {cid}"))
            continue
        kind = hd.sid(p.get("part_type"))
        # assignment/close/open with a body is a reply sent with that action (verify):
        # only body-less events are system noise.
        if kind not in {"comment", "note"} and not p.get("body"):
            col.dropped["system_events"] += 1
            continue
        key = hd.sid(p.get("id")) or f"n{n}"
        out.append(_message(p, cid, key, p.get("created_at"), kind != "note"))
    return out


def _names(c: dict[str, Any]) -> list[str]:
    authors = [(c.get("source") or {}).get("author")] if isinstance(c.get("source"), dict) else []
    container = c.get("conversation_parts")
    parts = container.get("conversation_parts") if isinstance(container, dict) else container
    authors += [p.get("author") for p in hd.as_list(parts) if isinstance(p, dict)]
    # Bots are named after the product ("Operator", "Fin"): not people to scrub.
    return [
        str(a.get("name") or "") for a in authors if isinstance(a, dict) and a.get("type") != "bot"
    ]


def _convert(c: dict[str, Any], extra: list[tuple[Any, str]], col: hd.Collector) -> hd.Conversation:
    cid = hd.sid(c["id"])
    state = str(c.get("state") or ("open" if c.get("open") else "closed")).lower()
    rating = c.get("conversation_rating")
    source = c.get("source") if isinstance(c.get("source"), dict) else {}
    tags = (c.get("tags") or {}).get("tags") if isinstance(c.get("tags"), dict) else c.get("tags")
    return hd.Conversation(
        id=cid,
        subject=html_to_text(str(source.get("subject") or c.get("title") or "")),
        status=STATUS.get(state),
        status_reason=f"unknown state {c.get('state')!r}",
        parts=_parts(c, cid, col),
        names=_names(c),
        tags=[str(t.get("name") if isinstance(t, dict) else t) for t in hd.as_list(tags)],
        channel=str(source.get("delivered_as") or source.get("type") or ""),
        satisfaction=hd.rating_1_to_5(rating.get("rating")) if isinstance(rating, dict) else None,
        created_at=hd.iso(c.get("created_at")),
    )


# Public entry point, same signature and semantics as zendesk.read_tickets.
read_tickets = hd.json_reader(SOURCE, _absorb, _convert)
