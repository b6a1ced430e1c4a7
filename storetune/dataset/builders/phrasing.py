"""Wide phrasing variation for customer messages, and shared reply sentences.

A 135M model memorises wording: trained on three phrasings of an intent it fails on a
fourth. So every builder passes its customer messages through `vary`, which mixes
casing, punctuation, greetings, sign-offs, indirect openers and the odd typo, and
builds questions from several templates. Words that carry the facts (product titles,
sizes, numbers) are never misspelt, so the gold answer stays exactly right.

Each customer message also records its phrasing family (`phrasing_family` of the
template it came from), so the split can hold whole wordings out of training.
"""

from __future__ import annotations

import hashlib
import random
import re

from storetune.config import StoreConfig

_GREETINGS = ["hi, ", "Hi! ", "hey ", "Hello, ", "hi there - ", "Good morning! ", "yo ", ""]
_THANKS = [" thanks!", " thx", " Thank you.", " ty", " cheers", " Thanks in advance!", ""]
_INDIRECT = [
    "Quick question: ",
    "I was wondering - ",
    "My partner asked me to find out: ",
    "Before I order, ",
    "Hoping you can help. ",
    "Sorry if this is obvious, but ",
    "One more thing... ",
]
_WORD = re.compile(r"[A-Za-z]{4,}")
_SLOT_OR_WORD = re.compile(r"\{[^}]*\}|[a-z0-9]+")


def pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def phrasing_family(template: str) -> str:
    """The phrasing family of a customer-message template, named by its wording.

    Slots are blanked and case and punctuation dropped, so the same wording in two
    builders ("How much is the {t}?", "how much is the {f}") is one family, and the
    split cannot train on it in one task and test it in another. The id is the first
    words plus a digest of them all: readable, stable while the template is.
    """
    words = ["x" if w.startswith("{") else w for w in _SLOT_OR_WORD.findall(template.lower())]
    digest = hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()[:6]
    return "-".join([*words[:5], digest])


def typo(text: str, rng: random.Random, keep: set[str] = frozenset()) -> str:
    """Misspell one ordinary word (swap, drop or double a letter); `keep` words stay intact."""
    spans = [m.span() for m in _WORD.finditer(text) if m.group().lower() not in keep]
    if not spans:
        return text
    start, end = spans[rng.randrange(len(spans))]
    word = text[start:end]
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    elif kind == 1:
        word = word[:i] + word[i + 1 :]
    else:
        word = word[:i] + word[i] + word[i:]
    return text[:start] + word + text[end:]


def keep_words(*texts: str) -> set[str]:
    """Lower-cased words that must not be misspelt (titles, sizes, option values)."""
    return {w.lower() for t in texts for w in _WORD.findall(t)} | {"size"}


def vary(text: str, rng: random.Random, keep: set[str] = frozenset()) -> str:
    """One customer message, restyled at random; facts in `keep` words are preserved."""
    if rng.random() < 0.15:
        text = pick(rng, _INDIRECT) + text[:1].lower() + text[1:]
    if rng.random() < 0.25:
        text = pick(rng, _GREETINGS) + text
    if rng.random() < 0.2:
        text = text.rstrip() + pick(rng, _THANKS)
    if rng.random() < 0.2:
        text = typo(text, rng, keep | {"size"})
    if rng.random() < 0.25:
        text = text.lower()
    if rng.random() < 0.15:
        text = text.rstrip("?!. ")
    return text.strip()


def combine(first: str, second: str, rng: random.Random) -> str:
    """Two questions in one message, the way customers batch them."""
    second = second[:1].lower() + second[1:]
    glue = pick(rng, [" Also, ", " And ", " Oh and ", "\n\nAlso ", " + "])
    return first.rstrip() + glue + second


def next_step(cfg: StoreConfig, rng: random.Random) -> str:
    """Where to go when the assistant doesn't have the answer (only from store.yaml)."""
    c = cfg.policies.contact
    if c is None:
        return pick(
            rng,
            [
                "If you like, I can pass your question to a teammate who can check.",
                "A teammate can look into it for you - just say the word and I'll pass it on.",
            ],
        )
    hours = f" ({c.hours})" if c.hours else ""
    return pick(
        rng,
        [
            f"Our team can find out for you at {c.email}.",
            f"Please email {c.email}{hours} and a teammate will check for you.",
            f"The best next step is an email to {c.email} - the team can look it up.",
            f"If you drop a line to {c.email}, someone from the team will get you an answer.",
        ],
    )
