"""Tell which export a file or directory is, from its content, not its name alone."""

from __future__ import annotations

import re
from pathlib import Path

from storetune.errors import StoretuneError

FORMATS = ("shopify_csv", "shopify_json", "zendesk")
PRODUCT_FORMATS = ("shopify_csv", "shopify_json")
TICKET_FORMATS = ("zendesk",)
_SNIFF_BYTES = 64 * 1024

_ZENDESK_KEYS = re.compile(
    r'"(?:tickets|ticket_events|child_events|requester_id|audits|comments|users)"\s*:'
)
_SHOPIFY_KEYS = re.compile(r'"(?:products|product|variants|body_html)"\s*:')


def _unknown(path: Path, why: str) -> StoretuneError:
    return StoretuneError(
        f"{path}: can't tell what export this is ({why})",
        hint=f"supported formats: {', '.join(FORMATS)}; pass --format to choose one",
    )


def _head(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(_SNIFF_BYTES)
    if b"\x00" in data:
        raise _unknown(path, "binary data")
    return data.decode("utf-8-sig", errors="replace")


def _sniff_csv(path: Path, head: str) -> str:
    header = head.splitlines()[0] if head else ""
    names = {c.strip().strip('"').lower() for c in header.split(",")}
    if names & {"handle", "url handle"}:
        return "shopify_csv"
    raise _unknown(path, "CSV without a 'Handle' or 'URL handle' column")


def _sniff_json(path: Path, head: str) -> str:
    zendesk = _ZENDESK_KEYS.search(head)
    shopify = _SHOPIFY_KEYS.search(head)
    if zendesk and (not shopify or zendesk.start() < shopify.start()):
        return "zendesk"
    if shopify:
        return "shopify_json"
    raise _unknown(path, "no Shopify product or Zendesk ticket fields in the first 64 KB")


def detect_format(path: Path | str) -> str:
    """One of FORMATS; StoretuneError listing them (and --format) when unsure."""
    path = Path(path)
    if not path.exists():
        raise StoretuneError(f"{path}: not found")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in {".json", ".jsonl"})
        for f in files:
            try:
                return _sniff_json(f, _head(f))
            except StoretuneError:
                continue  # e.g. a users page comes first: look at the next file
        raise _unknown(path, "no .json or .jsonl file in it looks like a known export")
    head = _head(path)
    stripped = head.lstrip()
    if path.suffix.lower() in {".json", ".jsonl"} or stripped[:1] in {"{", "["}:
        return _sniff_json(path, head)
    return _sniff_csv(path, head)
