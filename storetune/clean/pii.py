"""Replace personal data in helpdesk text with typed placeholders.

One Scrubber per conversation: names it learns anywhere in the conversation (a
greeting, a sign-off, the helpdesk's user records) are replaced everywhere in it.
Placeholders are plain (<EMAIL>, <NAME>, …) so the model learns the shape of a
reply, never a customer's details. Catalog facts (product names, SKUs, prices,
sizes, dates, policy numbers) must survive: every pattern here is anchored on
something personal data has and catalog text does not (an @, a checksum, a
street suffix, a greeting), and single-word names that are also catalog words
("Olive", "Rose") are only replaced where the context says they are names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from storetune.facts import (
    CARD,
    EMAIL,
    FEDEX_GROUND,
    IBAN,
    IBAN_WHOLE_GROUPS,
    IPV4,
    IPV6,
    LOCAL_PHONE,
    ORDER_HASH,
    ORDER_WORD,
    PHONES,
    POSTAL_S10,
    TRACKING_AFTER_CARRIER,
    TRACKING_AFTER_WORD,
    UPS,
    URL,
    USPS,
    card_ok,
    iban_ok,
    ipv6_ok,
    phone_ok,
    tracking_ok,
)

_DIGIT = re.compile(r"\d")

TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "ADDRESS", "NAME", "ORDER_ID", "TRACKING", "IP")


def placeholder(kind: str) -> str:
    return f"<{kind}>"


# --- patterns -----------------------------------------------------------------------

# Emails, URLs, phones, order and tracking numbers, cards, IBANs and IP addresses are
# defined once in storetune.facts (the guard and the eval use the same patterns).
_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl"
    r"|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Close|Crescent"
    r"|Cres|Gardens|Grove|Mews|Row|Hill|Walk|Loop|Alley|Plaza"
)
_US_STATES = (
    r"AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE"
    r"|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2})"
_CA_POSTAL = r"(?:(?:AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT)[ \t]+[A-Z]\d[A-Z][ \t]?\d[A-Z]\d)"
_CAP = r"[A-Z][a-zA-Z'’-]*(?!\w)\.?"  # a capitalised word, never half of "SW1A"
_CITY_TAIL = (
    rf"(?:,[ \t]*{_CAP}(?:[ \t]+{_CAP}){{0,3}})?"
    rf"(?:,?[ \t]*(?:(?:{_US_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?|{_CA_POSTAL}|{_UK_POSTCODE}))?"
)
_ADDRESSES = [
    # 42 Birch Lane, Apt 3, Portland, OR 97201 / 10 Downing Street, London SW1A 2AA
    re.compile(
        rf"\b\d{{1,6}}[A-Za-z]?(?:[ \t]+(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th))){{1,4}}?[ \t]+(?:{_SUFFIX})\b\.?"
        rf"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|\#)\.?[ \t]*[\w-]+)?" + _CITY_TAIL
    ),
    re.compile(r"\bP\.?[ \t]?O\.?[ \t]+Box[ \t]+\d+\b" + _CITY_TAIL, re.I),
    # Portland, OR 97201 / Calgary, AB T2P 1J9 on their own
    re.compile(
        rf"\b{_CAP}(?:[ \t]+{_CAP}){{0,2}},[ \t]*(?:(?:{_US_STATES})[ \t]+\d{{5}}(?:-\d{{4}})?"
        rf"|{_CA_POSTAL})\b"
    ),
    # German/Dutch: Hauptstraße 12, 10115 Berlin
    re.compile(
        r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|laan|straat"
        r"|gracht|plein|kade)[ \t]+\d{1,4}[a-z]?(?:,[ \t]*\d{4,5}(?:[ \t]?[A-Z]{2})?[ \t]+[A-Z][\wäöüß-]+)?"
    ),
    # French/Spanish/Italian: 12 rue de la Paix, 75002 Paris / Calle Mayor 5, 28013 Madrid
    re.compile(
        r"\b\d{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|boulevard|bd|place|chemin|allée"
        r"|impasse|quai)[ \t]+(?:[\wÀ-ÿ'’-]+[ \t]+){0,4}?[A-ZÀ-Ý][\wÀ-ÿ'’-]+(?:[ \t]+[A-ZÀ-Ý][\wÀ-ÿ'’-]+)*"
        r"(?:,[ \t]*\d{5}[ \t]+[A-ZÀ-Ý][\wÀ-ÿ-]+)?"
    ),
    re.compile(
        r"\b(?:Via|Viale|Calle|Avenida|Rua|Carrer|Corso)[ \t]+(?:[\wÀ-ÿ'’-]+[ \t]+){0,4}?\d{1,4}"
        r"(?:,[ \t]*\d{5}[ \t]+[A-ZÀ-Ý][\wÀ-ÿ-]+)?"
    ),
    # a postcode alone only after a comma, a "postcode" label or at a line start:
    # "M4 3XL" in running text is more likely a product code and a size
    re.compile(
        r"(?:(?<=,)|(?<=,[ \t])|^|(?<=[Cc]ode[ \t])|(?<=[Cc]ode:[ \t]))" + _UK_POSTCODE + r"\b",
        re.M,
    ),
]

_NAME_WORD = r"[A-Z][a-zA-Z'’-]+"
_NAME2 = rf"{_NAME_WORD}(?:[ \t]+(?:{_NAME_WORD}|[A-Z]\.))?"
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)"
# Keywords match in any case; the name itself must be capitalised.
_GREETING = re.compile(
    rf"^[ \t]*(?i:hi|hello|hey|dear|hiya|greetings|good (?:morning|afternoon|evening))[ \t]+"
    rf"(?:{_TITLES}\.?[ \t]+)?(?P<v>{_NAME2})[ \t]*(?=[,!.:;—-]|$)",
    re.M,
)
_TITLED = re.compile(rf"\b{_TITLES}\.?[ \t]+(?P<v>{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?)")
_INTRO = re.compile(rf"(?i:\bmy name is|\bmy name's|\bname:)[ \t]+(?P<v>{_NAME2})")
_THIS_IS = re.compile(rf"(?i:\bthis is)[ \t]+(?P<v>{_NAME_WORD})(?=[ \t]+(?i:from|here)\b)")
# "Thanks, Maya!" inline; "Best,\nJordan P." with the name alone on the next line.
_THANKS_NAME = re.compile(
    rf"(?i:\b(?:thanks|thank you|thx|cheers)(?:[ \t]+(?:so much|a lot|again))?)[ \t]*,?[ \t]*(?P<v>{_NAME2})[ \t]*(?=[!.,]|$)",
    re.M,
)
_SIGNOFF_NAME = re.compile(
    r"^[ \t]*(?i:thanks|thank you|many thanks|cheers|best|best regards|kind regards|regards"
    r"|warm regards|sincerely|warmly|take care|all the best)[ \t]*[,!.]?[ \t]*\n"
    rf"[ \t]*(?P<v>{_NAME2})[ \t]*$",
    re.M,
)
_MENTION = re.compile(rf"(?<![\w.])@(?P<v>{_NAME_WORD})\b")  # "@Jordan can you check…"
# "— Maya" as the last line (en/em dash or tilde: a hyphen starts a list item).
_DASH_NAME = re.compile(rf"^[ \t]*[–—~][ \t]*(?P<v>{_NAME2})[ \t]*(?=\s*\Z)", re.M)
_CONTEXT_NAME_RULES = [
    _GREETING,
    _TITLED,
    _INTRO,
    _THIS_IS,
    _THANKS_NAME,
    _SIGNOFF_NAME,
    _DASH_NAME,
    _MENTION,
]

# Words that fill a name slot without being a name ("Hi there", "Thanks again").
_NOT_NAMES = set(
    "there team all everyone folks support sir madam customer friend friends again guys you "
    "so much for in a lot the both care service hello hi thanks thank y'all yall and or "
    "regards best very kindly please ok okay yes no not is it i we our your my this that an "
    "advance monday tuesday wednesday thursday friday saturday sunday january february march "
    "april may june july august september october november december today tomorrow morning "
    "afternoon evening question order about regarding re just quick sorry though mr mrs ms "
    "miss mx dr prof bye".split()
)


# First names that are also everyday words: replaced only where context says "name",
# so "Will it ship?" survives a customer called Will.
_WORD_NAMES = set(
    "will may june april august bill mark grace hope joy faith rich sky summer autumn dawn "
    "guy ray rose jack frank art pat sue don chance miles max rob wade gene bob sandy rusty "
    "amber ruby pearl jade olive ivy holly iris lily daisy violet hunter taylor page "
    "crystal misty stormy brook river forest".split()
)


class Scrubber:
    """Replaces personal data in the texts of one conversation, counting by type."""

    def __init__(
        self,
        names: Iterable[str] = (),
        protected: Iterable[str] = (),
        allow: Iterable[str] = (),
    ) -> None:
        # protected: lower-case catalog/brand words that are only names in context.
        self.protected = (
            _lowered(protected)
            if isinstance(protected, frozenset)
            else {w.lower() for w in protected}
        )
        self.allow = sorted({a for a in allow if a}, key=len, reverse=True)
        self.counts: Counter[str] = Counter()
        self._full: set[str] = set()
        self._tokens: set[str] = set()
        self._learned: set[str] = set()
        for name in names:
            self.add_name(name)

    # --- names ---------------------------------------------------------------------

    def _is_name_token(self, token: str) -> bool:
        t = token.strip(".,").lower()
        return len(t) >= 2 and t not in _NOT_NAMES

    def add_name(self, name: str) -> None:
        """Remember a person's name for this conversation: the full name, and the first
        name alone. A surname alone is left to context ("Mr. Price"): many are also
        words ("Price", "Brown") that a reply needs."""
        full, first = _name_parts(name or "")
        if full:
            self._full.add(full)
        if first:
            self._tokens.add(first)

    def learn(self, text: str) -> None:
        """Pick up names from context (greetings, sign-offs) without replacing anything,
        so a name seen in a later message is also replaced in earlier ones."""
        if not text or text in self._learned:
            return  # ingest learns every message first, then scrub() would learn it again
        self._learned.add(text)
        for rule in _CONTEXT_NAME_RULES:
            if rule is _TITLED:
                continue  # "Mr. Price" gives a surname, which may also be a word
            for m in rule.finditer(text):
                self._learn_match(m.group("v"))

    def _learn_match(self, value: str) -> None:
        if self._plausible_name(value):
            self.add_name(value)

    def _plausible_name(self, value: str) -> bool:
        """False for "Hi there", "Hi Support Team", or a greeting to the brand
        ("Hello Cedar Summit"): every word a catalog/brand word is not a person."""
        tokens = value.split()
        if (
            not tokens
            or "<" in value
            or not all(self._is_name_token(t) for t in tokens if not re.fullmatch(r"[A-Z]\.", t))
        ):
            return False
        words = [t.strip(".,").lower() for t in tokens if len(t.strip(".,")) > 1]
        return not (len(words) > 1 and all(w in self.protected for w in words))

    # --- scrubbing -----------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Text with personal data replaced; self.counts grows by what was replaced."""
        if not text:
            return text or ""
        self.learn(text)
        # Every pattern but names and emails needs a digit: most chat lines have none.
        digits = _DIGIT.search(text) is not None
        vault: list[str] = []
        text = self._stash(text, self.allow, vault)
        if "@" in text:
            text = self._sub(EMAIL, "EMAIL", text)
        if digits:
            for rule in (UPS, USPS, FEDEX_GROUND):  # before a link could hide them
                text = self._sub(rule, "TRACKING", text)
        text = URL.sub(lambda m: self._hide(m.group(0), vault), text)  # store links stay
        if digits:
            text = self._scrub_numbers(text)
        text = self._scrub_names(text)
        return self._unstash(text, vault)

    def _scrub_numbers(self, text: str) -> str:
        text = self._sub(TRACKING_AFTER_WORD, "TRACKING", text, check=tracking_ok)
        text = self._sub(TRACKING_AFTER_CARRIER, "TRACKING", text)
        text = self._sub(POSTAL_S10, "TRACKING", text)
        text = self._sub(IBAN, "IBAN", text, check=iban_ok)
        text = self._sub(IBAN_WHOLE_GROUPS, "IBAN", text, check=iban_ok)
        text = self._sub(CARD, "CARD", text, check=card_ok)
        text = self._sub(ORDER_WORD, "ORDER_ID", text)
        text = self._sub(ORDER_HASH, "ORDER_ID", text)
        text = self._sub(IPV4, "IP", text)
        text = self._sub(IPV6, "IP", text, check=ipv6_ok)
        for rule in PHONES:
            text = self._sub(rule, "PHONE", text, check=phone_ok)
        text = self._sub(LOCAL_PHONE, "PHONE", text)
        for rule in _ADDRESSES:  # every address pattern holds a house number or postcode
            text = self._sub(rule, "ADDRESS", text, check=self._not_catalog)
        return text

    def scrub_all(self, texts: list[str]) -> list[str]:
        for t in texts:
            self.learn(t)
        return [self.scrub(t) for t in texts]

    def _sub(
        self,
        rx: re.Pattern[str],
        kind: str,
        text: str,
        check: Callable[[str], bool] | None = None,
    ) -> str:
        def repl(m: re.Match[str]) -> str:
            group = "v" if "v" in rx.groupindex else 0
            value = m.group(group)
            if value is None or (check and not check(value)):
                return m.group(0)
            self.counts[kind] += 1
            start, end = m.span(group)
            whole = m.group(0)
            base = m.start(0)
            return whole[: start - base] + placeholder(kind) + whole[end - base :]

        return rx.sub(repl, text)

    def _not_catalog(self, value: str) -> bool:
        words = re.findall(r"[A-Za-z]{3,}", value)
        return not words or not all(w.lower() in self.protected for w in words)

    def _scrub_names(self, text: str) -> str:
        lowered = text.lower()
        for full in sorted(self._full, key=len, reverse=True):
            if full.isascii() and full.lower() not in lowered:
                continue  # cheap test first: most names are absent from most messages
            if all(p.strip(".").lower() in self.protected for p in full.split()):
                continue  # "Olive Green" the person vs the Olive Green Jacket: context only
            text = self._sub(_full_name_rx(full), "NAME", text)
        for token in sorted(self._tokens, key=len, reverse=True):
            if token not in text:
                continue  # the token regexes are case-sensitive
            low = token.strip(".").lower()
            if low in self.protected:
                continue
            # "Will it ship?" keeps its Will; "Sorry, Will, the…" loses it.
            text = self._sub(_token_rx(token, low in _WORD_NAMES), "NAME", text)
        # Catalog words used as names are only replaced where context says "name".
        for rule in _CONTEXT_NAME_RULES:
            text = self._sub(rule, "NAME", text, check=self._plausible_name)
        return text

    @staticmethod
    def _hide(value: str, vault: list[str]) -> str:
        vault.append(value)
        return f"\ue000{len(vault) - 1}\ue001"

    def _stash(self, text: str, values: list[str], vault: list[str]) -> str:
        for v in values:
            text = text.replace(v, self._hide(v, vault)) if v in text else text
        return text

    @staticmethod
    def _unstash(text: str, vault: list[str]) -> str:
        return re.sub("\ue000(\\d+)\ue001", lambda m: vault[int(m.group(1))], text)


# Compiled once per name, not once per message: agents' names recur on every ticket.
@lru_cache(maxsize=8192)
def _full_name_rx(full: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w<])" + re.escape(full) + r"(?![\w>])", re.I)


@lru_cache(maxsize=8192)
def _token_rx(token: str, word_name: bool) -> re.Pattern[str]:
    name = re.escape(token)
    if word_name:  # mid-sentence after a word, or alone on its line
        return re.compile(rf"(?<=[\w,;:] ){name}(?![\w>])|^[ \t]*{name}(?=[ \t.!]*$)", re.M)
    return re.compile(rf"(?<![\w<]){name}(?![\w>])")


@lru_cache(maxsize=65536)
def _name_parts(name: str) -> tuple[str | None, str | None]:
    """(full name when it has several words, first name when it can stand alone)."""
    name = re.sub(r"\s+", " ", name).strip()
    if "@" in name or not re.search(r"[A-Za-z]", name):
        return None, None
    parts = name.split(" ")
    first = parts[0]
    t = first.strip(".,").lower()
    token_ok = len(first.strip(".")) >= 2 and len(t) >= 2 and t not in _NOT_NAMES
    return (name if len(parts) > 1 else None), (first if token_ok else None)


@lru_cache(maxsize=16)
def _lowered(words: frozenset[str]) -> frozenset[str]:
    # ingest passes the same catalog vocabulary to every ticket's Scrubber
    return frozenset(w.lower() for w in words)
