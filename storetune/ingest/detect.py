"""Tell which export a file or directory is, from its content, not its name alone."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.ingest.files import check_file, check_path, scan, utf16

TICKET_FORMATS = (
    "zendesk", "gorgias", "freshdesk", "helpscout", "intercom",
    "generic_csv", "generic_jsonl", "chat_jsonl",
)  # fmt: skip
PRODUCT_FORMATS = ("shopify_csv", "shopify_json")
ORDER_FORMATS = ("shopify_orders_csv", "shopify_orders_json")
KNOWLEDGE_FORMATS = ("zendesk_hc", "shopify_pages", "shopify_blog", "knowledge_files")
FORMATS = PRODUCT_FORMATS + TICKET_FORMATS + ORDER_FORMATS + KNOWLEDGE_FORMATS
_SNIFF_BYTES = 64 * 1024
_SUFFIXES = {".json", ".jsonl", ".csv"}

# Keys only one helpdesk writes, tried in this order before Zendesk and Shopify
# (Gorgias messages have body_html, Freshdesk tickets requester_id).
_HELPDESK_KEYS = (
    ("intercom", re.compile(r'"(?:conversation_parts|part_type|conversation_rating)"\s*:')),
    ("helpscout", re.compile(r'"(?:primaryCustomer|mailboxId|createdBy|closedBy)"\s*:')),
    (
        "gorgias",
        re.compile(r'"(?:from_agent|created_datetime|stripped_text|next_cursor)"\s*:'),
    ),
    (
        "freshdesk",
        re.compile(r'"(?:description_text|responder_id|fr_due_by|fr_escalated|incoming)"\s*:'),
    ),
)

_ZENDESK_KEYS = re.compile(
    r'"(?:tickets|ticket_events|child_events|requester_id|audits|comments|users)"\s*:'
)
_SHOPIFY_KEYS = re.compile(r'"(?:products|product|variants|body_html)"\s*:')

# Help-center exports. Zendesk HC and Shopify blogs both page {"articles": [...]}: a
# Shopify article has blog_id/body_html, a Zendesk one section_id/html_url and a plain
# "body". Ticket keys anywhere mean a helpdesk export that merely mentions articles.
_KB_ARTICLES = re.compile(r'"articles?"\s*:\s*[\[{]')
_KB_PAGES = re.compile(r'"pages?"\s*:\s*[\[{]')
_KB_BLOG_KEYS = re.compile(r'"(?:blog_id|summary_html)"\s*:')
_KB_HC_KEYS = re.compile(
    r'"(?:section_id|html_url|source_locale|vote_sum|label_names|user_segment_id)"\s*:'
)
_KB_TICKET_KEYS = re.compile(
    r'"(?:tickets|ticket|ticket_events|requester_id|conversation_parts|messages|via)"\s*:'
)
_KB_SUFFIXES = {".md", ".markdown", ".html", ".htm"}
# Keys only a Shopify order has (a product or a helpdesk ticket has none of them).
_ORDER_KEYS = re.compile(r'"(?:orders|line_items|financial_status|fulfillment_status)"\s*:')


def _unknown(path: Path, why: str) -> StoretuneError:
    return StoretuneError(
        f"{path}: can't tell what export this is ({why})",
        hint=f"supported formats: {', '.join(FORMATS)}; pass --format to choose one",
    )


def _head(path: Path) -> str:
    check_file(path)  # never open a FIFO: the read would wait forever
    with path.open("rb") as f:
        data = f.read(_SNIFF_BYTES)
    codec = utf16(data)
    if codec:
        return data.decode(codec, errors="replace").lstrip("\ufeff")
    if b"\x00" in data:
        raise _unknown(path, "binary data")
    return data.decode("utf-8-sig", errors="replace")


def _sniff_csv(path: Path, head: str) -> str:
    try:
        header = next(csv.reader(io.StringIO(head, newline="")), []) if head else []
    except csv.Error as e:  # a stray carriage return, a NUL after decoding…
        raise _unknown(path, f"not CSV ({e})") from None
    names = {c.strip().lower() for c in header}
    if "name" in names and names & {"lineitem name", "financial status"}:
        return "shopify_orders_csv"
    if names & {"handle", "url handle"}:
        return "shopify_csv"
    if _generic_columns(path, header):
        return "generic_csv"
    raise _unknown(
        path, "CSV with neither a 'Handle' column nor customer message / agent response columns"
    )


def _generic_columns(path: Path, headers: list[str]) -> bool:
    from storetune.ingest.generic import guess_columns  # generic imports this module's peers

    try:
        guess_columns([h.strip() for h in headers], None, path)
    except StoretuneError:
        return False
    return True


def _first_object(head: str) -> dict | None:
    line = next((x for x in head.splitlines() if x.strip()), "")
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # invalid, nested too deep, a 5000-digit number
        return None
    return value if isinstance(value, dict) else None


def _sniff_lines(path: Path, head: str) -> str | None:
    """chat_jsonl or generic_jsonl from the first line; None for helpdesk JSON."""
    obj = _first_object(head)
    if obj is None:
        return None
    messages = obj.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
    ):
        return "chat_jsonl"
    # Helpdesk records have no answer/response key, so this cannot take one of theirs.
    return "generic_jsonl" if _generic_columns(path, list(obj)) else None


def _sniff_knowledge(head: str) -> str | None:
    if _KB_TICKET_KEYS.search(head):
        return None
    if _KB_ARTICLES.search(head):
        if _KB_BLOG_KEYS.search(head):
            return "shopify_blog"
        if _KB_HC_KEYS.search(head):
            return "zendesk_hc"
    if _KB_PAGES.search(head) and '"body_html"' in head:
        return "shopify_pages"
    return None


def _sniff_json(path: Path, head: str) -> str:
    lines = _sniff_lines(path, head)
    if lines:
        return lines
    knowledge = _sniff_knowledge(head)
    if knowledge:
        return knowledge
    if _orders_first(head):
        return "shopify_orders_json"
    for fmt, keys in _HELPDESK_KEYS:
        if keys.search(head):
            return fmt
    zendesk = _ZENDESK_KEYS.search(head)
    shopify = _SHOPIFY_KEYS.search(head)
    if zendesk and (not shopify or zendesk.start() < shopify.start()):
        return "zendesk"
    if shopify:
        return "shopify_json"
    raise _unknown(path, "no known product or helpdesk fields in the first 64 KB")


def _orders_first(head: str) -> bool:
    """Order keys come before any helpdesk key (a Gorgias ticket may embed Shopify
    order data deep inside; an orders export starts with its orders)."""
    order = _ORDER_KEYS.search(head)
    if order is None:
        return False
    others = [rx.search(head) for _, rx in _HELPDESK_KEYS] + [_ZENDESK_KEYS.search(head)]
    return all(m is None or order.start() < m.start() for m in others)


def detect_format(path: Path | str) -> str:
    """One of FORMATS; StoretuneError listing them (and --format) when unsure."""
    path = Path(path)
    check_path(path)
    if path.is_dir():
        for f in scan(path, _SUFFIXES)[0]:
            try:
                return _sniff_file(f)
            except StoretuneError:
                continue  # e.g. a users page comes first: look at the next file
        if scan(path, _KB_SUFFIXES)[0]:
            return "knowledge_files"
        raise _unknown(path, "no .json, .jsonl or .csv file in it looks like a known export")
    if path.suffix.lower() in _KB_SUFFIXES:
        return "knowledge_files"
    return _sniff_file(path)


def _sniff_file(path: Path) -> str:
    head = _head(path)
    stripped = head.lstrip()
    if path.suffix.lower() in {".json", ".jsonl"} or stripped[:1] in {"{", "["}:
        return _sniff_json(path, head)
    return _sniff_csv(path, head)
