"""Entity patterns: what an email, phone number, URL, price, discount, order number,
tracking number, payment card, IBAN or IP address looks like — defined once.

Three places look for these and must agree:

- `clean/pii.py` replaces the personal ones in helpdesk text;
- `serve/guard.py` blocks the ones a draft states that its evidence does not support;
- `eval/hallucination.py` counts the same ones, so the eval's hallucination rate
  measures what the guard would block.

The patterns are compiled once here; `find_entities` returns the grounded kinds as
`Entity` records (kind, surface text, normalized value, span) and `check_entities`
is the one rule for which evidence supports which entity (see `Grounds`).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the card module reads money with the patterns below
    from storetune.chat.card import Card

_TRANSLATE = str.maketrans(
    {"–": "-", "—": "-", "‑": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "\u00a0": " "}
)


def normalize(text: str) -> str:
    """Dashes, quotes and spaces in one form, so patterns need not list every variant.
    One character for one, so spans found in the result are spans of the input."""
    return text.translate(_TRANSLATE)


# ---- email and URL ------------------------------------------------------------------------

EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)

_URL_CHAR = r"[^\s<>\"')\]]"
_URL_END = r"[^\s<>\"')\].,;:!?]"  # a sentence's full stop is not part of the link
_DOMAIN = r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*"
URL = re.compile(
    rf"\b(?:https?://|www\.){_URL_CHAR}*{_URL_END}"
    # a bare domain with a path (bit.ly/x), or one with a common top-level domain
    rf"|\b{_DOMAIN}\.[a-z]{{2,24}}/(?:{_URL_CHAR}*{_URL_END})?"
    rf"|\b{_DOMAIN}\.(?:com|net|org|shop|store|co|io|us|uk|ca|de|fr|info|biz)\b(?![\w.-]*@)",
    re.I,
)


def norm_url(url: str) -> str:
    """Scheme, "www." and a trailing slash dropped, lower case: one page, one spelling."""
    u = url.rstrip(".,;:!?").lower()
    u = re.sub(r"^https?://", "", u)
    u = re.sub(r"^www\.", "", u)
    return u.rstrip("/")


def url_host(url: str) -> str:
    return norm_url(url).split("/")[0].split(":")[0]


# ---- money and percentages ----------------------------------------------------------------

_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_SYMBOL = r"(?:US|C|A|NZ)?\$|€|£"
_CODE = r"USD|CAD|AUD|NZD|EUR|GBP|CHF|SEK|NOK|DKK|JPY|dollars?|bucks|euros?"
# "pounds" is no currency word here: in a catalog it is a weight ("2 pounds"); "£" is.
MONEY = re.compile(
    rf"(?<![\w$€£])(?:{_SYMBOL})\s?(?P<a>{_AMOUNT})(?!\d)"
    rf"|(?<![\w.,$€£])(?P<b>{_AMOUNT})\s?(?:(?:{_CODE})\b|€|£)",
    re.I,
)
PERCENT = re.compile(r"(?<![\w.])(?P<v>\d{1,3}(?:\.\d+)?)\s?(?:%|percent\b|per cent\b)", re.I)
DISCOUNT = re.compile(
    r"\b(?P<a>\d{1,3})\s?(?:%|percent)\s*(?:off|discount)"
    r"|\bdiscount of (?P<b>\d{1,3})\s?(?:%|percent)",
    re.I,
)


def money_amount(m: re.Match[str]) -> Decimal:
    """The amount of a MONEY match, to the cent."""
    return Decimal((m.group("a") or m.group("b")).replace(",", "")).quantize(Decimal("0.01"))


def money_amounts(text: str) -> set[str]:
    """Every amount of money a text states, as "129.00" (currency aside)."""
    return {str(money_amount(m)) for m in MONEY.finditer(text)}


# ---- order and tracking numbers -----------------------------------------------------------

_ORDER_ID = r"[A-Z]{0,4}-?\d{4,12}(?:-\d{1,4})?"  # Shopify numbers start at #1001
ORDER_WORD = re.compile(
    r"\border(?:[ \t]+(?:number|no\.?|num|id|ref))?[ \t]*(?:is|was)?[ \t]*:?[ \t]*"
    rf"(?P<v>#?[ \t]?{_ORDER_ID})(?![\w-])",
    re.I,
)
ORDER_HASH = re.compile(rf"(?<![\w&#])(?P<v>#{_ORDER_ID})(?![\w-])")

# One definition per carrier; 12- and 15-digit FedEx numbers look like anything, so
# they count only after the carrier's name or the word "tracking".
UPS = re.compile(r"\b1Z[0-9A-Z]{16}\b", re.I)  # 1Z + shipper (6) + service (2) + package (8)
USPS = re.compile(r"\b9[2345]\d{2}(?: ?\d{4}){4}(?: ?\d{2})?\b")  # IMpb: 20 or 22 digits
FEDEX_GROUND = re.compile(r"\b96\d{20}\b")
POSTAL_S10 = re.compile(r"\b[A-Z]{2}\d{9}[A-Z]{2}\b")  # UPU S10: Royal Mail, international post
TRACKING_BARE = (UPS, USPS, FEDEX_GROUND, POSTAL_S10)
TRACKING_AFTER_WORD = re.compile(
    r"\btracking(?:[ \t]+(?:number|no\.?|num|#|id|code|ref))?[ \t]*(?:is|was)?[ \t]*[:#-]?[ \t]*"
    r"(?P<v>[A-Z0-9]{8,30})\b",
    re.I,
)
TRACKING_AFTER_CARRIER = re.compile(
    r"\b(?:FedEx|DHL|UPS|USPS|Royal Mail|Canada Post|Australia Post|DPD|GLS|Hermes|Evri)"
    r"[ \t]*(?:#|no\.?|number)?[ \t]*:?[ \t]*(?P<v>\d{10,22})\b"
)
TRACKING_MIN_DIGITS = 6  # after "tracking": "tracking info available" is no number


def tracking_ok(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= TRACKING_MIN_DIGITS


# ---- phone numbers ------------------------------------------------------------------------

PHONE_MIN_DIGITS = 10  # a national number with its area code
PHONE_MAX_NATIONAL_DIGITS = 13
PHONE_MIN_DIGITS_INTL = 8  # after + or 00: country code and subscriber number
PHONE_MAX_DIGITS = 15  # E.164
LOCAL_PHONE_DIGITS = 7  # 555-0142: only after a phone word

_PHONE_EDGE_L = r"(?<![\w+/#.-])"
_PHONE_EDGE_R = r"(?![\w/-]|\.\d)"
PHONES = (
    # international: +44 20 7946 0958, 0044 20 7946 0958, +1 (503) 555-0142
    re.compile(
        _PHONE_EDGE_L + r"(?:\+|00)\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,5})){1,5}" + _PHONE_EDGE_R
    ),
    # North American: (503) 555-0142, 503-555-0142, 1-800-555-0199, 5035550142
    re.compile(
        _PHONE_EDGE_L
        + r"(?:1[ .-])?(?:\(\d{3}\)[ .-]?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}"
        + _PHONE_EDGE_R
    ),
    # national with trunk 0: 020 7946 0958, 07700 900123, 01 23 45 67 89
    re.compile(_PHONE_EDGE_L + r"0\d{1,4}(?:[ .-]?\d{2,4}){2,4}" + _PHONE_EDGE_R),
    # trunk 0 area code in brackets: (02) 9876 5432, (030) 1234 5678
    re.compile(r"(?<![\w+/#.-])\(0\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,3}" + _PHONE_EDGE_R),
)
LOCAL_PHONE = re.compile(
    r"(?i:\b(?:call|text|phone|tel|mobile|cell|number is|reach me (?:at|on)))\b[^\n\d]{0,12}"
    r"(?P<v>(?<![\w-])\d{3}[ .-]\d{4})(?![\w-])"
)


def _international(raw: str) -> bool:
    return raw.startswith(("+", "00"))


def phone_ok(raw: str) -> bool:
    """The one rule for how many digits a phone number has (see the constants above)."""
    digits = re.sub(r"\D", "", raw)
    if _international(raw):
        n = len(digits) - (2 if raw.startswith("00") else 0)
        return PHONE_MIN_DIGITS_INTL <= n <= PHONE_MAX_DIGITS
    if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_NATIONAL_DIGITS:
        return False
    # "32 34 36 38 40" is a size run, "2025 03 14 …" a date: phones have a trunk 0 there.
    groups = [g for g in re.split(r"\D+", raw) if g]
    return not (all(len(g) <= 2 for g in groups) and not raw.startswith("0"))


def phone_digits(raw: str) -> str:
    """Digits to compare: without the 00 prefix or the national trunk 0, so
    "+44 20 7946 0958" and "020 7946 0958" end the same way."""
    digits = re.sub(r"\D", "", raw)
    if raw.startswith("00"):
        return digits[2:]
    if not _international(raw) and digits.startswith("0"):
        return digits[1:]
    return digits


def same_phone(a: str, b: str) -> bool:
    """Same line: one number's digits end the other's (a country code or area code may
    be left out), with at least a local number's worth in common."""
    short, long = sorted((a, b), key=len)
    return len(short) >= LOCAL_PHONE_DIGITS and long.endswith(short)


# ---- payment cards, IBANs, IP addresses (PII only) ----------------------------------------

CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
# The same without the short last group, for "…3910 1924 I wear": the " I" is a word.
IBAN_WHOLE_GROUPS = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}\b")
IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.]\d)"
)
IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_ok(raw: str) -> bool:
    return luhn_ok(re.sub(r"\D", "", raw))


def iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ipv6_ok(raw: str) -> bool:
    """A real IPv6 address with two written groups at least ("fe80::1"; not "12:30")."""
    if sum(1 for g in raw.split(":") if g) < 2 or ("::" not in raw and raw.count(":") != 7):
        return False
    try:
        ipaddress.IPv6Address(raw)
    except ValueError:
        return False
    return True


# ---- entities -----------------------------------------------------------------------------

# The kinds the guard checks and the metric counts, in the order overlaps are settled:
# an email's domain is no URL, a tracking number in a URL is part of the URL, an order
# number is no phone number.
GROUNDED_KINDS = (
    "email",
    "url",
    "tracking_number",
    "order_number",
    "phone",
    "price",
    "discount",
)


@dataclass(frozen=True)
class Entity:
    kind: str  # one of GROUNDED_KINDS
    text: str  # as written
    value: str  # normalized: lower-case email, norm_url, phone_digits, "129.00", "20", "A7731920"
    start: int
    end: int


def _entity(kind: str, m: re.Match[str], value: str, group: str | int = 0) -> Entity:
    return Entity(kind, m.group(group), value, m.start(group), m.end(group))


def emails(text: str) -> list[Entity]:
    return [_entity("email", m, m.group().lower()) for m in EMAIL.finditer(text)]


def urls(text: str) -> list[Entity]:
    return [_entity("url", m, norm_url(m.group())) for m in URL.finditer(text)]


def _id_value(raw: str) -> str:
    return re.sub(r"[\s#]", "", raw).upper()


def tracking_numbers(text: str) -> list[Entity]:
    found = [
        _entity("tracking_number", m, _id_value(m.group()))
        for rx in TRACKING_BARE
        for m in rx.finditer(text)
    ]
    for rx in (TRACKING_AFTER_WORD, TRACKING_AFTER_CARRIER):
        found += [
            _entity("tracking_number", m, _id_value(m.group("v")), "v")
            for m in rx.finditer(text)
            if tracking_ok(m.group("v"))
        ]
    return found


def order_numbers(text: str) -> list[Entity]:
    return [
        _entity("order_number", m, _id_value(m.group("v")), "v")
        for rx in (ORDER_WORD, ORDER_HASH)
        for m in rx.finditer(text)
    ]


def phones(text: str) -> list[Entity]:
    found = [
        _entity("phone", m, phone_digits(m.group()))
        for rx in PHONES
        for m in rx.finditer(text)
        if phone_ok(m.group())
    ]
    found += [
        _entity("phone", m, phone_digits(m.group("v")), "v") for m in LOCAL_PHONE.finditer(text)
    ]
    return found


def prices(text: str) -> list[Entity]:
    return [_entity("price", m, str(money_amount(m))) for m in MONEY.finditer(text)]


def discounts(text: str) -> list[Entity]:
    return [_entity("discount", m, m.group("a") or m.group("b")) for m in DISCOUNT.finditer(text)]


_FINDERS = {
    "email": emails,
    "url": urls,
    "tracking_number": tracking_numbers,
    "order_number": order_numbers,
    "phone": phones,
    "price": prices,
    "discount": discounts,
}


def find_entities(text: str, kinds: Sequence[str] = GROUNDED_KINDS) -> list[Entity]:
    """Entities of `kinds` in `text`, none overlapping another (earlier kinds win,
    then the earlier and longer match), in text order."""
    text = normalize(text)
    found: list[Entity] = []
    for kind in GROUNDED_KINDS:
        if kind not in kinds:
            continue
        for e in sorted(_FINDERS[kind](text), key=lambda e: (e.start, -e.end)):
            if not any(e.start < f.end and f.start < e.end for f in found):
                found.append(e)
    return sorted(found, key=lambda e: e.start)


# ---- which evidence supports which entity --------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_POLICY_CUE = re.compile(
    r"\b(?:shipping|ships|delivery|orders? over|points?|loyalty|label|fee|threshold|"
    r"refund the difference)\b",
    re.I,
)
# Capitalised words that start sentences or address people, never a product's name.
NOT_NAME = frozenset(
    "a an the our your my their his her its this that these those each every any all some "
    "new hi hello hey dear thanks thank yes no sure great good unfortunately sorry please "
    "we i you it they there here if when while for and or but also so as at in on of to "
    "with from by just only both either".split()
)
GENERIC_NOUNS = frozenset(
    "jacket coat parka vest hoodie fleece sweater shirt tee top pants trousers shorts leggings "
    "tights skirt dress boot shoe sneaker sandal sock glove mitten hat cap beanie scarf tent "
    "shelter tarp bag pack backpack daypack duffel stove pot pan mug cup bottle flask lamp "
    "headlamp lantern light pole pad mat hammock chair table knife watch helmet harness rope "
    "layer bottoms crew hoody shell set kit".split()
)


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "shes", "ches")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


@dataclass
class Grounds:
    """What a draft may draw on, split by who may vouch for what.

    The store's side (`store`: the system prompt's policies and cards, and in the eval
    the earlier agent turns and the reference reply; `website`) supports anything. The
    customer's own words support only what a customer can know about themself: their
    order or tracking number, email, phone. A price, a discount or a URL is never
    supported by the customer, so "the jacket is now $1" cannot put $1 in a reply.
    """

    store: str
    customer: str = ""
    website: str = ""
    cards: Sequence[Card] = ()
    # The two leniencies of the eval's rubric, off for the guard (and each pinned by a
    # rubric test): any page of the store's website counts as given (the guard wants
    # the exact page: an invented path is a dead link), and a price or percentage the
    # customer wrote is their own figure echoed, which the rubric grades as compliance
    # rather than invention (the guard never lets the customer set a price).
    site_paths: bool = False
    customer_figures: bool = False
    # The guard's rule for order facts: an order or tracking number needs the customer's
    # own words or an order card (a verified order), never other store text. The eval's
    # rubric keeps the looser rule: its store side includes the reference reply.
    order_cards_only: bool = False


@dataclass(frozen=True)
class Checked:
    entity: Entity
    reason: str = ""  # why it is unsupported; empty when supported

    @property
    def supported(self) -> bool:
        return not self.reason


@dataclass
class _Known:
    """The evidence's entities, indexed once per check."""

    store: list[Entity]
    customer: list[Entity]
    store_text: str
    customer_text: str
    amounts: set[str] = field(default_factory=set)
    percents: set[str] = field(default_factory=set)
    customer_amounts: set[str] = field(default_factory=set)
    customer_percents: set[str] = field(default_factory=set)

    def values(self, kind: str, customer: bool = True) -> set[str]:
        pool = self.store + (self.customer if customer else [])
        return {e.value for e in pool if e.kind == kind}

    def written(self, value: str) -> bool:
        """An id written anywhere in the evidence as a token of its own."""
        rx = re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])", re.I)
        return bool(rx.search(self.store_text) or rx.search(self.customer_text))


def check_entities(draft: str, grounds: Grounds) -> list[Checked]:
    """Every entity of GROUNDED_KINDS in `draft`, with the reason when its evidence
    does not support it. The grounding guard and the hallucination metric both call
    this, so what one blocks the other counts."""
    store = normalize(grounds.store + "\n" + grounds.website)
    customer = normalize(grounds.customer)
    known = _Known(
        find_entities(store),
        find_entities(customer),
        store,
        customer,
        money_amounts(store),
        _percents(store),
        money_amounts(customer),
        _percents(customer),
    )
    cards = _CardNames(grounds.cards)
    sentences = _sentence_spans(normalize(draft))
    out = []
    for e in find_entities(draft):
        sentence = next((s for s, start, end in sentences if start <= e.start < end), "")
        out.append(Checked(e, _unsupported(e, known, grounds, cards, sentence)))
    return out


def _percents(text: str) -> set[str]:
    return {m.group("v") for m in PERCENT.finditer(text)}


def _unsupported(e: Entity, known: _Known, g: Grounds, cards: _CardNames, sentence: str) -> str:
    if e.kind == "email":
        return (
            ""
            if e.value in known.values("email")
            else f"email address {e.text} is not in the policies"
        )
    if e.kind == "url":
        ok = e.value in known.values("url", customer=False) or (
            g.site_paths and bool(g.website) and url_host(e.value) == url_host(g.website)
        )
        return "" if ok else f"URL {e.text} is not in the policies"
    if e.kind == "phone":
        ok = any(same_phone(e.value, v) for v in known.values("phone"))
        return "" if ok else f"phone number {e.text.strip()} is not in the policies"
    if e.kind in ("order_number", "tracking_number"):
        ok = _order_fact_ok(e, known, g)
        label = e.kind.replace("_", " ")
        return "" if ok else f"{label} {e.value} was not given by the customer"
    if e.kind == "discount":
        ok = e.value in known.percents or (
            g.customer_figures and e.value in known.customer_percents
        )
        return "" if ok else f"discount {e.text.strip()} is not in the policies"
    if g.customer_figures and e.value in known.customer_amounts:
        return ""
    return _price_unsupported(e, known, cards, sentence)


def _order_fact_ok(e: Entity, known: _Known, g: Grounds) -> bool:
    """An order or tracking number the customer wrote, or one an order card shows; with
    the looser rule, one anywhere in the evidence."""
    carded = any(e.value in c.values().get(e.kind, ()) for c in g.cards)
    if carded:
        return True
    if g.order_cards_only:
        said = {x.value for x in known.customer if x.kind == e.kind}
        rx = re.compile(rf"(?<![\w-]){re.escape(e.value)}(?![\w-])", re.I)
        return e.value in said or bool(rx.search(known.customer_text))
    return e.value in known.values(e.kind) or known.written(e.value)


def _price_unsupported(e: Entity, known: _Known, cards: _CardNames, sentence: str) -> str:
    """A price must be in the store's evidence; in a sentence about one product of the
    context, it must be that product's price unless the sentence is about a policy
    amount (shipping, loyalty): "$1" in "1 point per $1 spent" cannot become the price
    of a jacket."""
    about = cards.named_in(sentence)
    if len(about) == 1 and not _POLICY_CUE.search(sentence):
        title, amounts = about[0]
        return "" if e.value in amounts else f"price {e.text.strip()} is not the price of {title}"
    return "" if e.value in known.amounts else f"price {e.text.strip()} is not in the context"


class _CardNames:
    """Which of the context's cards a sentence is about: by full title, or by a word of
    the title no other card has ("talus" for the Talus Storm Rain Jacket, "socks" when
    only one card is socks)."""

    def __init__(self, cards: Sequence[Card]) -> None:
        self.cards: list[tuple[str, set[str], set[str]]] = []  # (title, amounts, names)
        for c in cards:
            if c.kind == "passage":  # an article's title names no product with a price
                continue
            self.cards.append((c.title, money_amounts(c.render()), _name_words(c.title)))
        # A word shared by several cards ("rain") names none of them.
        seen = Counter(w for _, _, names in self.cards for w in names)
        for _, _, names in self.cards:
            names -= {w for w in names if seen[w] > 1}

    def named_in(self, sentence: str) -> list[tuple[str, set[str]]]:
        low = sentence.lower()
        words = _name_words(sentence)
        return [
            (title, amounts)
            for title, amounts, names in self.cards
            if title.lower() in low or names & words
        ]


def _name_words(text: str) -> set[str]:
    words = re.findall(r"[\w'’]+", text.lower())
    return {singular(w) for w in words if len(w) > 2 and w not in NOT_NAME}


def _sentence_spans(text: str) -> list[tuple[str, int, int]]:
    out, pos = [], 0
    for piece in _SENTENCE.split(text):
        start = text.find(piece, pos)
        pos = start + len(piece)
        out.append((piece, start, pos))
    return out


# ---- things given away, policies announced -----------------------------------------------

# "free X", "X is/are free", "at no cost", "complimentary", "a new policy": claims only the
# store can make. A customer's "your new policy says everything is free" must not come
# back as the store's word, so only the store's side vouches for them (guard and metric).
_FREE_NOUN = re.compile(
    r"(?<![\w-])(?<!feel )(?<!feels )free (?P<noun>(?!(?:to|of|from|for|and|or|up|time|within|on|over|in|at|with|if|when|until|as|"
    r"by|under|after|before|now|here|there|again|too|so|but)\b)"
    r"[a-z][a-z-]+)",
    re.I,
)
_FREE_STATE = re.compile(
    r"\b(?P<subject>[a-z][a-z-]+) (?:is|are|will be|would be|becomes?|now)"
    r"(?: now| all| completely| totally| entirely)? (?:free(?! of\b)|free of charge|"
    r"at no (?:extra |additional )?(?:cost|charge)|complimentary)\b",
    re.I,
)
_NEW_POLICY = re.compile(
    r"\b(?:new|updated|changed|revised) (?:store |refund |return |shipping )?polic(?:y|ies)\b"
    r"|\bpolicy (?:is now|has (?:been )?changed|now says)\b",
    re.I,
)
_NEAR = 40  # characters of one clause within which the store ties the subject to "free"


def _stem(word: str) -> str:
    return singular(word.lower())


_PRONOUNS = {"it", "this", "that", "they", "these", "those", "which"}


def _store_says_free(store_low: str, word: str) -> bool:
    if word.lower() in _PRONOUNS:  # what "it" is can't be told here: the store must say free
        return bool(re.search(r"\b(?:free|no cost|no charge)\b", store_low))
    stem = re.escape(_stem(word))
    return bool(
        re.search(rf"\bfree (?:[\w-]+ ){{0,2}}{stem}", store_low)  # free prepaid return
        or re.search(
            rf"\b{stem}\w*\b[^.;,\n]{{0,{_NEAR}}}\b(?:free|no cost|no charge)\b", store_low
        )
    )


def unsupported_giveaways(draft: str, store: str) -> list[re.Match[str]]:
    """Claims that something is free, or that a policy is new, which the store's own
    text does not make (the customer's words never count: see the comment above)."""
    low = store.lower()
    found = [m for m in _FREE_NOUN.finditer(draft) if not _store_says_free(low, m["noun"])]
    found += [m for m in _FREE_STATE.finditer(draft) if not _store_says_free(low, m["subject"])]
    found += [m for m in _NEW_POLICY.finditer(draft) if m.group().lower() not in low]
    return found
