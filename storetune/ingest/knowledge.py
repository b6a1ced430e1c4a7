"""Knowledge-base readers: help-center articles into cleaned, heading-chunked Articles.

Formats (docs in README, "Knowledge base"):

- zendesk_hc: Zendesk Help Center API pages, {"articles": [{"id", "title", "body" (HTML),
  "section_id", "locale", "updated_at", "html_url", "draft"}], "next_page": ...}; one
  file or a folder of pages. Drafts and articles restricted to a user segment
  (`user_segment_id` set: signed-in users or agents only) are skipped.
- shopify_pages / shopify_blog: Shopify Admin REST {"pages": [...]} and blog
  {"articles": [...]} with "title", "body_html", "handle", "updated_at",
  "published_at"; a null published_at (hidden) is skipped.
- files: a folder (or one file) of Markdown (.md, .markdown) or HTML (.html, .htm).

A record that can't be used is quarantined whole with the field at fault; a file that
is not JSON at all stops the import with its name and line (nothing is written).
"""

from __future__ import annotations

import html as _html
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from storetune.clean.html import html_to_outline
from storetune.errors import StoretuneError
from storetune.ingest.chunk import chunk_outline, drop_repeated
from storetune.ingest.detect import KNOWLEDGE_FORMATS
from storetune.ingest.files import scan
from storetune.ingest.helpdesk import iso, raw, sid
from storetune.ingest.shopify_json import load_json_records
from storetune.store.db import QuarantineItem
from storetune.store.knowledge import Article

__all__ = ["KNOWLEDGE_FORMATS", "KnowledgeRead", "markdown_outline", "read_knowledge"]
FILE_SUFFIXES = (".md", ".markdown", ".html", ".htm")


@dataclass
class KnowledgeRead:
    """What one knowledge source gave: counts reconcile (read = accepted + quarantined);
    drafts and hidden pages are `dropped`, not read."""

    path: Path
    format: str
    articles: list[Article] = field(default_factory=list)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    unpublished: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[list[str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    read: int = 0

    def reject(self, src: Path, where: str, reason: str, obj: Any) -> None:
        text = obj if isinstance(obj, str) else raw(obj)
        self.quarantine.append(QuarantineItem(str(src), where, "article", reason, text))

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            "article": {
                "read": self.read,
                "accepted": len(self.articles),
                "quarantined": len(self.quarantine),
            }
        }


def read_knowledge(path: Path, fmt: str, website: str = "") -> KnowledgeRead:
    """Articles of a knowledge source in format `fmt` (see KNOWLEDGE_FORMATS)."""
    out = KnowledgeRead(path, fmt)
    if fmt == "knowledge_files":
        _read_files(path, out)
    else:
        _read_json(path, fmt, website, out)
    out.dropped["boilerplate_paragraphs"] = drop_repeated(out.articles)
    out.dropped = Counter({k: v for k, v in out.dropped.items() if v})
    _keep_latest(out)
    return out


# --- JSON exports -------------------------------------------------------------------------


_CONTAINERS = {
    "zendesk_hc": ("articles", "article"),
    "shopify_pages": ("pages", "page"),
    "shopify_blog": ("articles", "article"),
}


def _read_json(path: Path, fmt: str, website: str, out: KnowledgeRead) -> None:
    files, skipped = scan(path, {".json", ".jsonl"})
    out.skipped += [[f, why] for f, why in skipped]
    if not files:
        raise StoretuneError(f"{path}: no .json or .jsonl file to read")
    many, one = _CONTAINERS[fmt]
    for f in files:
        out.files.append(str(f))
        n = 0
        for value in load_json_records(f):
            for record in _records(value, many, one):
                n += 1
                out.read += 1
                _one_record(f, n, record, fmt, website, out)


def _records(value: Any, many: str, one: str) -> list[Any]:
    if isinstance(value, list):
        return [r for item in value for r in _records(item, many, one)]
    if isinstance(value, dict) and many in value:
        items = value[many]
        return items if isinstance(items, list) else [items]
    if isinstance(value, dict) and isinstance(value.get(one), dict):
        return [value[one]]
    return [value]


def _one_record(f: Path, n: int, record: Any, fmt: str, website: str, out: KnowledgeRead) -> None:
    where = f"record {n}"
    if not isinstance(record, dict):
        out.reject(f, where, f"{where} is not a JSON object", record)
        return
    if record.get("id") is not None:
        where = f"article {sid(record.get('id'))}"
    problem = _problem(record, fmt)
    if problem:
        out.reject(f, where, f"{f.name} {where}: {problem}", record)
        return
    source, source_id = _identity(record, fmt)
    hidden = _hidden(record, fmt)
    if hidden:
        out.read -= 1  # not public content: counted apart, and removed if stored before
        out.dropped[hidden] += 1
        out.unpublished.append((source, source_id))
        return
    body_key = "body" if fmt == "zendesk_hc" else "body_html"
    article = _article(record, fmt, source, source_id, website, record.get(body_key) or "")
    if article.chunks:
        out.articles.append(article)
    else:
        out.reject(f, where, f"{f.name} {where}: field '{body_key}' has no text", record)


def _problem(record: dict[str, Any], fmt: str) -> str:
    """What makes a record unusable, naming the field; "" when it is fine."""
    ident = record.get("id")
    if fmt == "shopify_pages" and ident is None:
        ident = record.get("handle")
    if ident is None or isinstance(ident, bool | dict | list) or sid(ident).strip() == "":
        return "field 'id' is missing"
    title = record.get("title") or record.get("name")
    if not isinstance(title, str) or not title.strip():
        return "field 'title' is missing or empty"
    body_key = "body" if fmt == "zendesk_hc" else "body_html"
    body = record.get(body_key)
    if body is not None and not isinstance(body, str):
        return f"field '{body_key}' is {type(body).__name__}, not HTML text"
    for key in ("updated_at", "html_url", "handle", "locale"):
        value = record.get(key)
        if value is not None and not isinstance(value, str | int | float):
            return f"field '{key}' is {type(value).__name__}, not text"
    return ""


def _identity(record: dict[str, Any], fmt: str) -> tuple[str, str]:
    if fmt == "zendesk_hc":
        # Translations share the article id: one row per locale.
        locale = sid(record.get("locale"))
        return "zendesk_hc", sid(record["id"]) + (f":{locale}" if locale else "")
    if fmt == "shopify_pages":
        return "shopify_page", sid(
            record.get("id") if record.get("id") is not None else record["handle"]
        )
    return "shopify_article", sid(record["id"])


def _hidden(record: dict[str, Any], fmt: str) -> str:
    """Why a customer cannot read this article ("" when anyone can): a reply must not
    quote what the store keeps from its customers."""
    if fmt == "zendesk_hc":
        if record.get("draft") is True:
            return "draft"
        # an article visible only to a user segment (signed-in users, agents): Zendesk
        # sets user_segment_id to null for articles everyone can see
        return "restricted" if record.get("user_segment_id") is not None else ""
    if record.get("published") is False:
        return "unpublished"
    # Shopify writes published_at: null for a hidden page or article.
    return "unpublished" if "published_at" in record and not record["published_at"] else ""


def _article(
    record: dict[str, Any], fmt: str, source: str, source_id: str, website: str, body: str
) -> Article:
    title = _html.unescape((record.get("title") or record.get("name")).strip())
    url = sid(record.get("html_url"))
    if not url and fmt == "shopify_pages" and website and record.get("handle"):
        url = f"{website.rstrip('/')}/pages/{record['handle']}"
    return Article(
        source=source,
        source_id=source_id,
        title=title,
        chunks=chunk_outline(html_to_outline(body), title),
        url=url,
        locale=sid(record.get("locale")),
        section=sid(record.get("section_id") or record.get("blog_id")),
        updated_at=iso(record.get("updated_at") or record.get("edited_at")),
    )


def _keep_latest(out: KnowledgeRead) -> None:
    """One article per id: a page overlap or a re-export in the same folder repeats one;
    the latest update wins (ISO times of one export compare as text)."""
    best: dict[str, Article] = {}
    for a in out.articles:
        if a.key not in best or a.updated_at >= best[a.key].updated_at:
            best[a.key] = a
    dupes = len(out.articles) - len(best)
    if dupes:
        out.dropped["duplicate_articles"] += dupes
        out.read -= dupes
        out.articles = [a for a in out.articles if best[a.key] is a]


# --- a folder of Markdown or HTML files ---------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
_CANONICAL = re.compile(r"<link[^>]+rel=[\"']canonical[\"'][^>]*>", re.I)
_HREF = re.compile(r"href=[\"']([^\"']+)[\"']", re.I)
_MAIN = re.compile(r"<(main|article)\b[^>]*>(.*)</\1\s*>", re.I | re.S)


def _read_files(path: Path, out: KnowledgeRead) -> None:
    files, skipped = scan(path, FILE_SUFFIXES)
    out.skipped += [[f, why] for f, why in skipped]
    if not files:
        raise StoretuneError(
            f"{path}: no Markdown or HTML file in it",
            hint=f"a knowledge folder holds {', '.join(FILE_SUFFIXES)} files",
        )
    root = path if path.is_dir() else path.parent
    for f in files:
        out.files.append(str(f))
        out.read += 1
        _one_file(f, root, out)


def _one_file(f: Path, root: Path, out: KnowledgeRead) -> None:
    data = f.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        why = f"{f} line {line}: not UTF-8 text (byte {data[e.start]:#04x})"
        out.reject(f, "file", why, data.decode("utf-8", "backslashreplace"))
        return
    meta, outline, title = _parse_file(f, text)
    if meta is None:
        out.reject(f, "file", f"{f} line 1: front matter is not a YAML mapping", text)
        return
    rel = f.relative_to(root).as_posix()
    if meta.get("draft") is True or meta.get("published") is False:
        out.read -= 1
        out.dropped["draft"] += 1
        out.unpublished.append(("files", f"{root.name}/{rel}"))
        return
    title = str(meta.get("title") or title or f.stem.replace("-", " ").replace("_", " "))
    article = Article(
        source="files",
        source_id=f"{root.name}/{rel}",
        title=title.strip(),
        chunks=chunk_outline(outline, title.strip()),
        url=sid(meta.get("url")),
        updated_at=iso(meta.get("updated") or meta.get("updated_at") or meta.get("date") or ""),
    )
    if article.chunks:
        out.articles.append(article)
    else:
        out.reject(f, "file", f"{f}: no text in the file", text)


def _parse_file(f: Path, text: str) -> tuple[dict[str, Any] | None, str, str]:
    """(front matter or {}, outline text, title found in the body); None front matter
    when it is there but unreadable."""
    meta: dict[str, Any] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
        except yaml.YAMLError:
            loaded = None
        if not isinstance(loaded, dict):
            return None, "", ""
        meta, text = loaded, text[m.end() :]
    if f.suffix.lower() in (".html", ".htm"):
        return _html_file(text, meta)
    outline = markdown_outline(text)
    first = re.match(r"#\s+(.+)", outline)
    return meta, outline, first.group(1).strip() if first else ""


def _html_file(text: str, meta: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    title = _TITLE_TAG.search(text)
    canonical = _CANONICAL.search(text)
    if canonical and not meta.get("url"):
        href = _HREF.search(canonical.group())
        meta = {**meta, "url": href.group(1)} if href else meta
    main = _MAIN.search(text)  # the page's own content, without the site around it
    outline = html_to_outline(main.group(2) if main else text)
    first = re.match(r"#\s+(.+)", outline)
    name = _html.unescape(title.group(1)).strip() if title else ""
    return meta, outline, (first.group(1).strip() if first else name)


_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")
_SETEXT = re.compile(r"^(.+)\n(=+|-+)\s*$", re.M)


def markdown_outline(text: str) -> str:
    """Markdown as outline text: "#" headings kept, links as "text (url)", images, HTML
    tags and emphasis markers removed."""
    text = text.replace("\r\n", "\n")
    text = _SETEXT.sub(lambda m: ("# " if m.group(2)[0] == "=" else "## ") + m.group(1), text)
    text = _MD_LINK.sub(_link, text)
    text = re.sub(r"<[^>\n]+>", "", text)
    text = _MD_EMPHASIS.sub(r"\2", text)
    return _html.unescape(text).strip()


def _link(m: re.Match[str]) -> str:
    if m.group(1):  # an image says nothing a reply can use
        return m.group(2)
    label, url = m.group(2), m.group(3)
    return f"{label} ({url})" if url.startswith(("http://", "https://")) and url != label else label
