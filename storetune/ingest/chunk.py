"""Help-center text into passages: boilerplate out, one chunk per heading section.

Articles arrive as an outline (Markdown-style "#" heading lines, see
storetune.clean.html.html_to_outline). A chunk is the text under one heading, split at
paragraph breaks when longer than MAX_CHARS, so a retrieved passage is one topic
("Packs" of the sizing guide) and a few of them fit a small model's focused prompt.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from storetune.store.knowledge import Article, Chunk

# ~150 tokens: two passages and the policy lines stay a few hundred tokens.
MAX_CHARS = 700
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Lines help centers add to every article: votes, sharing, "still need help".
_BOILERPLATE = re.compile(
    r"^(?:was this (?:article|page) helpful\??.*|\d+ (?:out )?of \d+ found this helpful.*|"
    r"(?:yes|no)\s*(?:/|\|)?\s*(?:yes|no)?|return to top|back to top|skip to (?:main )?content|"
    r"related articles?|recently viewed articles?|share this (?:article|page).*|"
    r"(?:facebook|twitter|linkedin)(?:\s+(?:facebook|twitter|linkedin))*|"
    r"have more questions\?.*|still need help\?.*|submit a request|sign in|"
    r"powered by zendesk.*|articles in this section|comments?|\d+ comments?|"
    r"please sign in to leave a comment\.?|updated \d.*|print)$",
    re.I,
)
# A paragraph in this share of an export's articles (and in at least 3) is a template's.
REPEATED_SHARE = 0.5


def chunk_outline(outline: str, title: str) -> list[Chunk]:
    """Chunks of an article's outline text, each under its nearest heading."""
    chunks: list[Chunk] = []
    heading, paragraphs = "", []
    for block in _blocks(outline):
        m = _HEADING.match(block)
        if m:
            chunks += _section(heading, paragraphs)
            heading, paragraphs = m.group(2).strip(), []
        elif not _BOILERPLATE.match(block):
            paragraphs.append(block)
    chunks += _section(heading, paragraphs)
    # The article's own title repeated as its first heading says nothing new.
    return [Chunk("" if c.heading == title else c.heading, c.text) for c in chunks]


def _blocks(outline: str) -> list[str]:
    """Paragraphs, with each heading line a block of its own."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", outline):
        lines = [ln.rstrip() for ln in para.strip().splitlines() if ln.strip()]
        current: list[str] = []
        for ln in lines:
            if _HEADING.match(ln.strip()):
                if current:
                    out.append("\n".join(current))
                out.append(ln.strip())
                current = []
            else:
                current.append(_bullet(ln.strip()))
        if current:
            out.append("\n".join(current))
    return out


def _bullet(line: str) -> str:
    # One bullet style: a "* Name (x)" line would read as a product card in a prompt.
    return re.sub(r"^[*+•]\s+", "- ", line)


def _section(heading: str, paragraphs: list[str]) -> list[Chunk]:
    """The section's paragraphs in chunks of at most MAX_CHARS (a longer paragraph is
    cut at sentence ends)."""
    chunks: list[Chunk] = []
    current = ""
    for piece in (p for para in paragraphs for p in _fit(para)):
        if current and len(current) + 2 + len(piece) > MAX_CHARS:
            chunks.append(Chunk(heading, current))
            current = ""
        current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(Chunk(heading, current))
    return chunks


def _fit(paragraph: str) -> list[str]:
    if len(paragraph) <= MAX_CHARS:
        return [paragraph]
    out, current = [], ""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", paragraph):
        if current and len(current) + 1 + len(sentence) > MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    return out + ([current] if current else [])


def drop_repeated(articles: Sequence[Article]) -> int:
    """Remove paragraphs that most of an export's articles share (a footer the export
    kept, a standard disclaimer); return how many were removed. Chunks left empty go;
    an article that would be left with nothing keeps its text."""
    if len(articles) < 3:
        return 0
    seen = Counter(
        para for a in articles for para in {p for c in a.chunks for p in c.text.split("\n\n")}
    )
    common = {p for p, n in seen.items() if n >= 3 and n >= REPEATED_SHARE * len(articles)}
    removed = 0
    for a in articles:
        kept = []
        for c in a.chunks:
            left = [p for p in c.text.split("\n\n") if p not in common]
            if left:
                kept.append(Chunk(c.heading, "\n\n".join(left)))
        if kept:
            removed += sum(c.text.count("\n\n") + 1 for c in a.chunks) - sum(
                c.text.count("\n\n") + 1 for c in kept
            )
            a.chunks = kept
    return removed
