"""Cleaning shared by every reader: HTML, PII, signatures, description quality and
human-only (always-escalate) marking."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from storetune.clean.html import html_to_text, is_broken_html
from storetune.clean.pii import Scrubber
from storetune.clean.signatures import strip_signature
from storetune.config import EscalationTopic

__all__ = [
    "DEFAULT_ESCALATION_TOPICS",
    "Scrubber",
    "clean_description",
    "clean_message",
    "drop_placeholder_tail",
    "html_to_text",
    "human_only_reason",
    "is_broken_html",
    "strip_signature",
    "tagged_topic",
]

_PLACEHOLDER = re.compile(
    r"lorem ipsum|\bcoming soon\b|\btbd\b|\btba\b|\bdescription (?:to come|coming)\b"
    r"|\bplaceholder\b|\binsert (?:description|text) here\b|\bxxx+\b",
    re.I,
)
_BOILERPLATE = re.compile(
    r"\bclick here\b|\bbuy now\b|\bshop now\b|\badd to cart\b|\border now\b"
    r"|\blimited time (?:only|offer)\b|\bdon'?t miss out\b",
    re.I,
)


def clean_description(html: str | None) -> tuple[str, list[str]]:
    """Product description as plain text plus quality flags for the dataset builders:
    placeholder (nothing real to say), boilerplate (sales filler), broken_html."""
    text = html_to_text(html or "")
    flags = []
    if not text or _PLACEHOLDER.search(text):
        flags.append("placeholder")
    if _BOILERPLATE.search(text):
        flags.append("boilerplate")
    if is_broken_html(html or ""):
        flags.append("broken_html")
    return text, flags


# A last line holding only personal-data placeholders is what is left of a signature
# the rules did not recognise ("Ezra" above "Sent from my iPhone"): no content.
_PLACEHOLDER_TAIL = re.compile(
    r"\n[ \t]*(?:[-–—~,|•·]?[ \t]*<(?:NAME|ADDRESS|PHONE|EMAIL)>[ \t.,!|•·]*)+[ \t]*$"
)


def drop_placeholder_tail(text: str) -> str:
    """Scrubbed text without trailing placeholder-only lines (and a sign-off they leave)."""
    dropped = False
    while True:
        cut = _PLACEHOLDER_TAIL.sub("", text).rstrip()
        if cut == text or not cut:
            return strip_signature(text) if dropped else text
        text, dropped = cut, True


def clean_message(body: str, scrubber: Scrubber, *, is_html: bool = False) -> str:
    """One helpdesk message: HTML → text, signature and quotes off, PII replaced."""
    text = html_to_text(body) if is_html else (body or "").replace("\r\n", "\n")
    return drop_placeholder_tail(scrubber.scrub(strip_signature(text)).strip())


def _words(joined: str) -> list[str]:
    return joined.split("|")


# Used when store.yaml names no always-escalate topics: the cases no model should
# answer alone, whatever the store.
DEFAULT_ESCALATION_TOPICS: list[EscalationTopic] = [
    EscalationTopic(
        name="fraud_chargeback",
        reason="payment disputes and suspected fraud need a person",
        keywords=_words(
            "chargeback|charge back|dispute the charge|disputing the charge|fraud|fraudulent"
            "|unauthorized charge|unauthorised charge|stolen card|didn't authorize"
            "|did not authorize|identity theft"
        ),
    ),
    EscalationTopic(
        name="legal_threat",
        reason="legal threats go to the owner",
        keywords=_words(
            "lawyer|attorney|solicitor|sue you|suing|lawsuit|legal action|small claims"
            "|take you to court|see you in court|consumer protection|better business bureau"
        ),
    ),
    EscalationTopic(
        name="abuse",
        reason="abusive or threatening messages need a person",
        keywords=_words("kill you|hurt you|you idiots|you idiot|morons|f*** you|fuck you|fucking"),
    ),
]


@lru_cache(maxsize=256)
def _topic_rx(keywords: tuple[str, ...]) -> re.Pattern[str]:
    # Whole words only: "court" must not fire on "courteous".
    alternatives = "|".join(re.escape(k.lower()) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])")


def human_only_reason(
    customer_texts: Iterable[str], topics: Sequence[EscalationTopic] | None = None
) -> str | None:
    """Name of the first always-escalate topic whose keywords the customer used."""
    chosen = list(topics) if topics else DEFAULT_ESCALATION_TOPICS
    text = "\n".join(customer_texts).lower()
    for topic in chosen:
        if topic.keywords and _topic_rx(tuple(topic.keywords)).search(text):
            return topic.name
    return None


def tagged_topic(
    tags: Iterable[str], topics: Sequence[EscalationTopic] | None = None
) -> str | None:
    """Name of the first always-escalate topic the helpdesk tagged the ticket with (a tag
    equal to the topic's name, any case). The helpdesk's own triage holds where the
    customer's wording misses every keyword ("agent", "bot, human")."""
    chosen = list(topics) if topics else DEFAULT_ESCALATION_TOPICS
    have = {t.strip().lower() for t in tags}
    return next((t.name for t in chosen if t.name.lower() in have), None)
