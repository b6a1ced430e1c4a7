"""Rules that live in code, not in the weights.

- An explicit request for a person always hands over (as the helpdesks' own bots do):
  the router's reading decides for wordings it learned, and these patterns catch the
  plain ones even when the router has never seen a single example of the kind.
- A draft that loops or says nothing is never sent.
- The store's fixed wording (store.yaml `escalation.handover` and `templates`) is
  filled from store.yaml's facts only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from decimal import Decimal

from storetune.config import StoreConfig
from storetune.facts import money_amounts

# "talk to a human", "speak with someone", "real person pls", "connect me to an agent",
# "can I call someone", "I want a manager" — the verb and the person, near each other.
_PERSON = r"(?:a\s+|an\s+|the\s+|your\s+|some\s+)?(?:real\s+|actual\s+|live\s+)?(?:human|person|people|agent|representative|rep|someone|somebody|manager|supervisor|staff|operator)"
_ASK = re.compile(
    rf"\b(?:speak|talk|chat|get\s+through|connect\s+me|put\s+me\s+through|transfer\s+me|"
    rf"escalate\s+(?:this|me)|call\s+me|phone\s+me|(?:i\s+)?(?:want|need|would\s+like|'d\s+like)"
    rf"(?:\s+to\s+(?:speak|talk)(?:\s+to|\s+with)?)?)\b[^.?!\n]{{0,24}}?\b{_PERSON}\b",
    re.IGNORECASE,
)
_BARE = re.compile(
    r"^\W*(?:(?:a\s+)?(?:real\s+)?(?:human|person|agent|representative|operator)"
    r"(?:\s+(?:please|pls|plz|now))?\W*)+$",
    re.IGNORECASE,
)
_NOT_A_BOT = re.compile(
    r"\b(?:not|no|stop)\s+(?:a\s+|an\s+|the\s+|this\s+)?(?:bot|robot|ai|automated|machine)\b",
    re.IGNORECASE,
)


def asks_for_person(text: str) -> bool:
    """The customer explicitly asks for a person (not just mentions one)."""
    return bool(_ASK.search(text) or _BARE.match(text.strip()) or _NOT_A_BOT.search(text))


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
# A draft of greetings and placeholders only ("<NAME>, <NAME>,", "Hi there, Hi there,")
_GREETING_ONLY = re.compile(
    r"^(?:[\s,.!:;-]|<[A-Z_]+>|\b(?:hi|hello|hey|dear|there|team|all|everyone|folks)\b)*$",
    re.IGNORECASE,
)


def degenerate(draft: str, max_sentences: int = 12) -> str | None:
    """Why a draft must not be sent (empty, looping, rambling); None when it is fine."""
    text = draft.strip()
    # greetings and the scrubber's placeholders say nothing
    if _GREETING_ONLY.match(text) or not re.search(r"[A-Za-z]{2}", _PLACEHOLDER.sub(" ", text)):
        return "the draft is empty"
    return repeating(text, max_sentences)


def repeating(text: str, max_sentences: int = 12) -> str | None:
    """Why a draft (or the start of one) loops or rambles; None when it does not. Once
    this is said of a draft's start, the draft will never be sent, so generation stops
    there (`stop_repetition`, every REPEAT_CHECK_EVERY tokens)."""
    sentences = [s.strip().lower() for s in _SENTENCE.findall(text) if len(s.strip()) > 3]
    if len(sentences) != len(set(sentences)):
        return "the draft repeats a sentence"
    words = text.lower().split()
    grams = [" ".join(words[i : i + 5]) for i in range(max(0, len(words) - 4))]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return "the draft repeats itself"
    if any(any(c.isalnum() for c in m.group(1)) for m in _RUN.finditer(text)):
        return "the draft repeats itself"  # "MEsMEsMEs…": no spaces, so no words
    if len(sentences) > max_sentences:
        return f"the draft runs past {max_sentences} sentences"
    return None


_RUN = re.compile(r"(.{2,24}?)\1{7,}", re.S)  # a short piece eight times in a row
REPEAT_CHECK_EVERY = 4  # tokens between checks of a draft being generated


def loops_at(n_tokens: int, text: Callable[[], str]) -> bool:
    """Whether generation with `stop_repetition` ends a draft of `n_tokens` tokens here:
    a check falls every REPEAT_CHECK_EVERY tokens; `text()` decodes it only then."""
    return n_tokens % REPEAT_CHECK_EVERY == 0 and repeating(text()) is not None


def repetition_cut(decode, ids: list[int]) -> int | None:
    """The length at which generation with `stop_repetition` ends `ids`, or None if it
    runs on; `decode` turns ids to text. Engines that cannot stop mid-batch cut their
    output here afterwards: same replies."""
    for n in range(1, len(ids) + 1):
        if loops_at(n, lambda n=n: decode(ids[:n])):
            return n
    return None


# "under $150", "less than 250 bucks", "up to 80 euros": a ceiling the customer set. A
# number needs a currency sign or word, so "under 2 kg" or "below 20 degrees" is none.
_BUDGET = re.compile(
    r"\b(?:under|below|less than|no more than|not more than|at most|max(?:imum)?(?: of)?|"
    r"up to|cheaper than|within)\s+(?:a\s+)?(?:[$€£]\s?(?P<a>\d[\d,]*(?:\.\d+)?)"
    r"|(?P<b>\d[\d,]*(?:\.\d+)?)\s?(?:bucks|dollars|usd|eur|euros?|pounds|gbp|[$€£]))",
    re.I,
)


def budget(texts: list[str]) -> Decimal | None:
    """The customer's latest price ceiling, if a message sets one."""
    for text in reversed(texts):
        found = [Decimal((m["a"] or m["b"]).replace(",", "")) for m in _BUDGET.finditer(text)]
        if found:
            return min(found)
    return None


def over_budget(customer_texts: list[str], draft: str) -> str | None:
    """Why a draft must not go out unread: it names a price above the customer's ceiling
    ("jackets below $150?" answered with a $199 one)."""
    ceiling = budget(customer_texts)
    if ceiling is None:
        return None
    over = sorted(a for a in (Decimal(x) for x in money_amounts(draft)) if a > ceiling)
    if not over:
        return None
    return f"the draft names a price ({over[0]}) above the customer's budget ({ceiling})"


def pasted_markup(draft: str, heads: list[str]) -> str | None:
    """Why a draft must not be sent: it copies the prompt's markup (a help-center
    passage's "[Title > Section]" head) instead of answering in words."""
    if any(h and h in draft for h in heads):
        return "the draft pastes a help-center passage's heading"
    return None


def store_facts(cfg: StoreConfig) -> dict[str, str]:
    """The values a template may use, from store.yaml only."""
    contact = cfg.policies.contact
    return {
        "brand": cfg.brand.name,
        "email": contact.email if contact else "",
        "phone": (contact.phone or "") if contact else "",
        "hours": (contact.hours or "") if contact else "",
        "website": cfg.brand.website or "",
    }


def fill(template: str, cfg: StoreConfig) -> str:
    """A store template with its placeholders filled; an empty value leaves no gap."""
    facts = store_facts(cfg)
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    text = template.format(**{n: facts.get(n, "") for n in names})
    return re.sub(r"\s{2,}", " ", re.sub(r"\(\s*\)|\s+([,.])", r"\1", text)).strip()


def handover_line(cfg: StoreConfig, kind: str | None = None) -> str:
    """What the customer reads when a person takes over: the kind's template if the store
    fixed one, else the store's hand-over line."""
    template = cfg.escalation.templates.get(kind or "") or cfg.escalation.handover
    return fill(template, cfg)
