"""Remove what is not the message itself: sign-offs, signatures, device lines and
quoted earlier emails.

Every rule is anchored to whole lines near the end of a message (or to a quote
header), so a sentence that merely contains "thanks" or "best" is never touched.
A message that is nothing but a sign-off ("Thanks!") is left as it is: there the
sign-off is the content.
"""

from __future__ import annotations

import re

from storetune.facts import EMAIL, URL, phones

_LINK_START = ("http://", "https://", "www.")

_QUOTE_HEADERS = [
    # Gmail/Apple Mail: "On Mon, 3 Mar 2025, Maya <m@x.com> wrote:" (often wrapped once)
    re.compile(r"^[ \t]*On\b[^\n]{0,200}(?:\n[^\n]{0,200})?\bwrote:[ \t]*$", re.M),
    re.compile(r"^[ \t]*-{2,}[ \t]*Original Message[ \t]*-{2,}[ \t]*$", re.M | re.I),
    # Outlook: a From: line followed by Sent:/Date: header lines
    re.compile(r"^[ \t]*From:[^\n]+\n[ \t]*(?:Sent|Date):[^\n]+$", re.M),
    re.compile(r"^[ \t]*_{20,}[ \t]*\n[ \t]*From:", re.M),
]
_DEVICE_LINE = re.compile(
    r"^[ \t]*(?:Sent from my [^\n]{1,40}|Sent from (?:Mail|Yahoo Mail|Outlook)[^\n]{0,40}"
    r"|Get Outlook for [^\n]{1,30})[ \t]*$",
    re.M | re.I,
)
_SIG_SEPARATOR = re.compile(r"^--[ \t]?$")

_SIGNOFF_WORDS = (
    r"thanks(?: again| so much| a lot| in advance)?|thank you(?: so much| again)?|many thanks"
    r"|thx|ty|best(?: regards| wishes)?|all the best|regards|kind regards|warm regards"
    r"|warmest regards|warmly|cheers|sincerely|yours sincerely|yours truly|take care"
    r"|talk soon|with gratitude|respectfully|with thanks|speak soon|happy trails|happy hiking"
    r"|have a (?:great|good|nice|lovely) (?:day|one|weekend)|stay (?:warm|dry|safe)"
)
_NAME_TOKEN = r"[A-Z][\w.'’-]*"
# The sign-off alone on its line, optionally followed by a name on the same line.
_SIGNOFF = re.compile(
    rf"^[ \t]*(?:{_SIGNOFF_WORDS})[ \t]*[,!.]*"
    rf"(?:[ \t]*[-–—]?[ \t]*{_NAME_TOKEN}(?:[ \t]+{_NAME_TOKEN}){{0,2}})?[ \t]*$",
    re.I,
)
_TEAM_WORDS = re.compile(
    r"\b(?:customer care|support|team|service|experience|manager|specialist|representative"
    r"|agent|advocate|happiness|hero|concierge|desk)\b",
    re.I,
)
_NAME_LINE = re.compile(
    r"^[-–—~ \t]*(?:[A-Z][\w.'’-]*|&|\||of|the|and|at)(?:[ \t]+(?:[A-Z][\w.'’-]*|&|\||of|the|and"
    r"|at|[-–—|]))*[ \t]*[.,]?$"
)
_ADDRESS_LINE = re.compile(
    # "6959 Larkspur Way, Missoula, MT 59801" or "Missoula, MT 59801"
    r"^(?:\d{1,6}[A-Za-z]?|[A-Z][\w.'’-]*)(?:,?[ \t]+[A-Z0-9][\w.'’-]*){1,8}[.!]?$"
)
_ADDRESS_HINT = re.compile(
    r"\b(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place"
    r"|Pl|Terrace|Circle|Parkway|Highway|Square|Trail|Close|Crescent|Gardens|Grove|Mews)\b"
    r"|\b(?:\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d)[.!]?$"
)
_HOURS = re.compile(r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b.*\d", re.I)
_PRONOUNS = re.compile(r"\((?:she|he|they|ze|xe)/\w+\)", re.I)
_PART_SPLIT = re.compile(r"[ \t]+[|·•][ \t]+|[ \t]+[-–—][ \t]+")
# Any short closing line ending in a comma ("See you out there,"): only a sign-off when
# a name follows it, unlike the known words above.
_LOOSE_SIGNOFF = re.compile(r"^[ \t]*[A-Z][\w'’]*(?:[ \t]+[\w'’!]+){0,3}[ \t]*,[ \t]*$")
_DASH_SIGNATURE = re.compile(
    r"^[ \t]*[-–—~][ \t]*[A-Z][\w'’-]*(?:[ \t]+(?:[A-Z][\w'’-]*|[A-Z]\.))?[ \t]*$"
)
_MAX_SIG_LINES = 6


def _signature_part(s: str) -> bool:
    words = len(s.split())
    if _contact(s) and words <= 6:
        return True
    if _address_line(s) or (_HOURS.search(s) and words <= 8):
        return True
    return bool(_NAME_LINE.match(s)) or (bool(_TEAM_WORDS.search(s)) and words <= 6)


def _contact(s: str) -> bool:
    """An email address, a phone number or a web link, as storetune.facts reads them. A
    bare domain is no link here: "bought it on amazon.com" is a customer's sentence."""
    links = (m.group().lower() for m in URL.finditer(s))
    return bool(EMAIL.search(s) or phones(s) or any(u.startswith(_LINK_START) for u in links))


def _address_line(s: str) -> bool:
    return bool(_ADDRESS_LINE.match(s) and _ADDRESS_HINT.search(s))


def _signature_like(line: str) -> bool:
    """Name, title, company, contact, address or hours: what signature lines hold."""
    s = _PRONOUNS.sub("", line).strip()
    if not s:
        return True
    if len(s) > 90 or s.endswith("?"):
        return False
    parts = [p for p in _PART_SPLIT.split(s) if p.strip()]
    return all(_signature_part(p.strip()) for p in parts)


def _contact_info(line: str) -> bool:
    s = line.strip()
    return bool(_contact(s) or _TEAM_WORDS.search(s) or _address_line(s))


def _has_content(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def _cut_quotes(text: str) -> str:
    starts = [m.start() for rx in _QUOTE_HEADERS if (m := rx.search(text))]
    if starts:
        text = text[: min(starts)]
    return "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))


def _cut_separator(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if _SIG_SEPARATOR.match(line) and _has_content(lines[:i]):
            return lines[:i]
    return lines


def _cut_signoff(lines: list[str]) -> list[str]:
    # The last sign-off line wins; everything after it must look like a signature.
    for i in range(len(lines) - 1, -1, -1):
        tail = [t for t in lines[i + 1 :] if t.strip()]
        if len(tail) > _MAX_SIG_LINES or not all(_signature_like(t) for t in tail):
            return lines
        if not _has_content(lines[:i]):
            return lines
        if _SIGNOFF.match(lines[i]) or (tail and _LOOSE_SIGNOFF.match(lines[i])):
            return lines[:i]
    return lines


def _cut_dash_name(lines: list[str]) -> list[str]:
    """A closing "- Olivia" line; not the last item of a "- item" list."""
    body = [i for i, line in enumerate(lines) if line.strip()]
    if len(body) < 2 or not _DASH_SIGNATURE.match(lines[body[-1]]):
        return lines
    before = lines[body[-2]].lstrip()
    return lines if before[:1] in {"-", "–", "—", "~", "*"} else lines[: body[-1]]


def _cut_contact_block(lines: list[str]) -> list[str]:
    """A trailing paragraph of name/title/email/phone lines with no sign-off word."""
    blanks = [i for i, line in enumerate(lines) if not line.strip()]
    if not blanks:
        return lines
    start = blanks[-1]
    block = [t for t in lines[start + 1 :] if t.strip()]
    if not block or len(block) > _MAX_SIG_LINES - 1 or not _has_content(lines[:start]):
        return lines
    if not all(_signature_like(t) for t in block):
        return lines
    if any(_contact_info(t) for t in block):
        return lines[:start]
    return lines


def strip_signature(text: str) -> str:
    """The message without quoted replies, device lines, sign-off and signature."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _cut_quotes(text)
    text = _DEVICE_LINE.sub("", text)
    lines = text.rstrip().split("\n")
    lines = _cut_separator(lines)
    lines = _cut_signoff([line.rstrip() for line in lines])
    lines = _cut_contact_block(lines)
    lines = _cut_dash_name(lines)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
