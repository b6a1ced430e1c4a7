"""Knowledge-base records in store.db: help-center articles and their heading chunks.

An article is keyed by (source, source_id): its help center and its id there. A
re-import replaces a changed article's chunks whole and leaves an unchanged one's
alone (content_hash), so the index re-embeds only what changed. Articles that came
from the same export (`origin`) and are no longer in it are removed, as are articles
now unpublished wherever they came from.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from storetune.store.db import transaction


@dataclass
class Chunk:
    heading: str  # the nearest heading above the text ("" when the article has none)
    text: str


@dataclass
class Article:
    source: str  # zendesk_hc | shopify_page | shopify_article | files
    source_id: str
    title: str
    chunks: list[Chunk] = field(default_factory=list)
    url: str = ""
    locale: str = ""
    section: str = ""
    updated_at: str = ""

    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_id}"

    def content_hash(self) -> str:
        # What a reply can quote: title and chunks (not the update time, which a copy or
        # a no-op save changes).
        parts = [self.title, self.url] + [f"{c.heading}\n{c.text}" for c in self.chunks]
        return hashlib.sha256("\n\x00".join(parts).encode()).hexdigest()[:24]


@dataclass
class Passage:
    """One chunk as retrieval and the prompt use it."""

    key: str  # source:source_id#position, the index key
    title: str
    heading: str
    text: str
    url: str = ""
    updated_at: str = ""

    def embed_text(self) -> str:
        head = self.title if self.heading in ("", self.title) else f"{self.title}: {self.heading}"
        return f"{head}. {self.text}"


def passage_key(source: str, source_id: str, position: int) -> str:
    return f"{source}:{source_id}#{position}"


def write_articles(
    conn: sqlite3.Connection,
    articles: Sequence[Article],
    origin: str,
    unpublished: Iterable[tuple[str, str]] = (),
) -> dict[str, int]:
    """Store articles read from `origin`; return counts of new, changed, unchanged and
    removed articles. `unpublished` are (source, source_id) of drafts and hidden
    pages: an earlier import of them is removed."""
    counts = {"new": 0, "changed": 0, "unchanged": 0, "removed": 0}
    with transaction(conn):
        stored = {
            (r[0], r[1]): (r[2], r[3])
            for r in conn.execute(
                "SELECT source, source_id, id, content_hash FROM knowledge_articles"
            )
        }
        for a in articles:
            before = stored.get((a.source, a.source_id))
            digest = a.content_hash()
            outcome = "new" if before is None else "changed" if before[1] != digest else "unchanged"
            counts[outcome] += 1
            article_id = _upsert(conn, a, digest, origin)
            if outcome != "unchanged":
                _replace_chunks(conn, article_id, a.chunks)
        keep = {(a.source, a.source_id) for a in articles}
        gone = [
            (s, i)
            for (s, i) in conn.execute(
                "SELECT source, source_id FROM knowledge_articles WHERE origin = ?", (origin,)
            )
            if (s, i) not in keep
        ]
        gone += [k for k in unpublished if k in stored and k not in keep]
        for s, i in dict.fromkeys(gone):
            conn.execute(
                "DELETE FROM knowledge_articles WHERE source = ? AND source_id = ?", (s, i)
            )
            counts["removed"] += 1
    return counts


def _upsert(conn: sqlite3.Connection, a: Article, digest: str, origin: str) -> int:
    row = conn.execute(
        """INSERT INTO knowledge_articles (source, source_id, title, url, locale, section,
               updated_at, content_hash, origin)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(source, source_id) DO UPDATE SET title=excluded.title,
               url=excluded.url, locale=excluded.locale, section=excluded.section,
               updated_at=excluded.updated_at, content_hash=excluded.content_hash,
               origin=excluded.origin
           RETURNING id""",
        (a.source, a.source_id, a.title, a.url, a.locale, a.section, a.updated_at, digest, origin),
    ).fetchone()
    return int(row[0])


def _replace_chunks(conn: sqlite3.Connection, article_id: int, chunks: list[Chunk]) -> None:
    conn.execute("DELETE FROM knowledge_chunks WHERE article_id = ?", (article_id,))
    conn.executemany(
        "INSERT INTO knowledge_chunks (article_id, position, heading, text) VALUES (?, ?, ?, ?)",
        [(article_id, i, c.heading, c.text) for i, c in enumerate(chunks)],
    )


_PASSAGES = """SELECT a.source, a.source_id, c.position, a.title, c.heading, c.text, a.url,
                      a.updated_at
               FROM knowledge_chunks c JOIN knowledge_articles a ON a.id = c.article_id"""


def load_passages(conn: sqlite3.Connection, keys: Sequence[str] | None = None) -> list[Passage]:
    """Every stored chunk as a passage (in article, then chunk order), or those of `keys`
    in the order given (retrieval reads its few hits' current text per query)."""
    where, params = "", list(keys or ())
    if keys is not None:
        where = f" WHERE a.source || ':' || a.source_id || '#' || c.position IN ({','.join('?' * len(params))})"
    rows = conn.execute(_PASSAGES + where + " ORDER BY a.id, c.position", params).fetchall()
    found = [Passage(passage_key(r[0], r[1], r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]
    if keys is None:
        return found
    by_key = {p.key: p for p in found}
    return [by_key[k] for k in keys if k in by_key]


def knowledge_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        "articles": int(conn.execute("SELECT COUNT(*) FROM knowledge_articles").fetchone()[0]),
        "passages": int(conn.execute("SELECT COUNT(*) FROM knowledge_chunks").fetchone()[0]),
    }
