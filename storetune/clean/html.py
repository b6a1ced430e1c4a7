"""HTML → readable plain text with the standard library parser.

Product descriptions and helpdesk bodies arrive as HTML fragments, often
hand-written in a rich-text editor, so the converter must tolerate broken markup;
is_broken_html() says when it had to.
"""

from __future__ import annotations

import html as _html
import re
from html.parser import HTMLParser

_BLOCK = set(
    "p div section article header footer aside main nav h1 h2 h3 h4 h5 h6 ul ol table tr "
    "blockquote pre hr dl dt dd figure figcaption address form".split()
)
_DROP = {"script", "style", "head", "title", "noscript", "template", "svg"}
# Tags whose end tag HTML lets an author omit, and tags that never have one.
_OPTIONAL_END = set(
    "p li dt dd tr td th thead tbody tfoot option colgroup caption html head body".split()
)
_VOID = set("area base br col embed hr img input link meta param source track wbr".split())
_TAG_LIKE = re.compile(r"<\s*[a-zA-Z!/]")
_CUT_TAG = re.compile(r"<[a-zA-Z/][^<>]*$")


class _TextExtractor(HTMLParser):
    drop = _DROP  # tags whose content is not text

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.drop_depth = 0
        self.stack: list[str] = []
        self.mismatched = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.drop:
            self.drop_depth += 1
        if tag not in _VOID:
            self.stack.append(tag)
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"td", "th"}:
            self.parts.append(" ")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.drop and self.drop_depth:
            self.drop_depth -= 1
        self._pop(tag)
        if tag in _BLOCK:
            self.parts.append("\n\n")

    def _pop(self, tag: str) -> None:
        if tag in _VOID:
            return
        if tag not in self.stack:
            self.mismatched = True
            return
        # Closing an outer tag implicitly closes inner ones; only optional ones may be.
        while self.stack:
            top = self.stack.pop()
            if top == tag:
                return
            if top not in _OPTIONAL_END:
                self.mismatched = True

    def handle_data(self, data: str) -> None:
        if self.drop_depth:
            return
        # Source newlines are only whitespace in HTML (except in <pre>); the
        # structural newlines come from the tags above.
        self.parts.append(data if "pre" in self.stack else re.sub(r"\s+", " ", data))


def _normalise(text: str) -> str:
    lines = [re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out)
    out = re.sub(r"(\n- )\n+", r"\1", out)  # list item whose text began on the next line
    return out.strip()


def html_to_text(html: str | None) -> str:
    """Readable text: paragraphs and <br> become newlines, list items "- item"."""
    if not html:
        return ""
    if not _TAG_LIKE.search(html):
        # Plain text: its newlines are meaningful, only entities need decoding.
        return _normalise(_html.unescape(html).replace("\r\n", "\n"))
    parser = _TextExtractor()
    parser.feed(_CUT_TAG.sub("", html))  # a tag cut off at the end is not text
    parser.close()
    return _normalise("".join(parser.parts))


# Page chrome of an exported help-center page: menus, site header and footer, sidebars.
_CHROME = {"nav", "header", "footer", "aside", "form", "button"}
_HEADING = {f"h{n}": n for n in range(1, 7)}


class _OutlineExtractor(_TextExtractor):
    """Text that keeps the heading structure ("## Heading" lines) and link targets, with
    page chrome dropped: what knowledge-base articles are chunked from."""

    drop = _DROP | _CHROME

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, int]] = []  # (href, parts index where the link began)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        if self.drop_depth:
            return
        if tag in _HEADING:
            self.parts.append("#" * _HEADING[tag] + " ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links and not self.drop_depth:
            href, start = self.links.pop()
            # An absolute link's target is a fact a reply may give (the guard checks URLs
            # against the context), so it is kept when the link text does not show it.
            if href.startswith(("http://", "https://")) and href not in "".join(self.parts[start:]):
                self.parts.append(f" ({href})")
        super().handle_endtag(tag)


def html_to_outline(html: str | None) -> str:
    """Readable text with headings as Markdown "#" lines, absolute link targets in
    brackets after their text, and navigation, header, footer and sidebars removed."""
    if not html:
        return ""
    if not _TAG_LIKE.search(html):
        return _normalise(_html.unescape(html).replace("\r\n", "\n"))
    parser = _OutlineExtractor()
    parser.feed(_CUT_TAG.sub("", html))
    parser.close()
    return _normalise("".join(parser.parts))


def is_broken_html(html: str | None) -> bool:
    """True for unclosed or mismatched tags, or a tag cut off mid-way."""
    if not html or not _TAG_LIKE.search(html):
        return False
    parser = _TextExtractor()
    parser.feed(html)
    leftover = parser.rawdata[parser.rawdata.rfind("<") :] if "<" in parser.rawdata else ""
    parser.close()
    unclosed = [t for t in parser.stack if t not in _OPTIONAL_END]
    return parser.mismatched or bool(unclosed) or bool(leftover.strip())
