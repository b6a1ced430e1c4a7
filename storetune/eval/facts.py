"""Checkable facts in a support reply, each tied to what it is about.

A fact is a typed value (a price, a day count, a weight, in/out of stock, can/can't
return, a fit or care term, a product name) with the product or policy topic its
sentence is about, so that "a different price for the same thing" can be told
apart from "another true price mentioned in passing".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storetune.facts import MONEY, money_amount, normalize


@dataclass(frozen=True)
class Fact:
    kind: str  # money | qty:<unit> | stock | ability | fit | care | refund_method | warranty | compare | size | answer | product
    value: str  # normalized value, e.g. "129.00", "30", "out", "return:no"
    subject: str | None  # product title or policy topic the sentence is about
    text: str  # surface form, for reasons
    was: bool = False  # a price quoted as the old (compare-at) price

    def label(self) -> str:
        return self.text


# ---------------------------------------------------------------- sentences and topics

_SENT_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")


def sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs; decimals like $6.95 are not split."""
    out, pos = [], 0
    for m in _SENT_SPLIT.finditer(text):
        if m.start() > pos:
            out.append((pos, text[pos : m.start()]))
        pos = m.end()
    if pos < len(text):
        out.append((pos, text[pos:]))
    return out


_TOPICS = [
    ("threshold", r"free (?:standard )?shipping|orders? over|over \$"),
    ("discount", r"\boff\b|discount|coupon|\bcode\b|\bdeal\b"),
    ("points", r"\bpoints?\b|loyalty"),
    ("price_match", r"price[- ]?match|price drops?|\bmatch"),
    ("refund", r"refund|money back"),
    ("return", r"\breturn|send (?:it|them) back"),
    ("exchange", r"exchang|\bswap"),
    ("damage", r"damag|missing|\breport"),
    ("cancel", r"cancel"),
    ("address", r"address"),
    ("warranty", r"warrant"),
    ("reply", r"\breply|follow up|get back|in touch|respond|call you"),
    ("shipping", r"\bship|deliver|arriv|transit|\btakes?\b"),
]
_TOPIC_RES = [(name, re.compile(p, re.I)) for name, p in _TOPICS]


def topic_at(sentence: str, pos: int) -> str | None:
    """The policy topic a value at `pos` is about: the nearest keyword before it, else after."""
    before: list[tuple[int, str]] = []
    after: list[tuple[int, str]] = []
    for name, rx in _TOPIC_RES:
        for m in rx.finditer(sentence):
            (before if m.start() < pos else after).append((m.start(), name))
    if before:
        return max(before)[1]
    if after:
        return min(after)[1]
    return None


# ---------------------------------------------------------------- product names

_WORD = re.compile(r"[a-z0-9][a-z0-9'.°-]*")
_GENDER = re.compile(r"^(?:men's|women's|kids'|kid's|unisex)\s+", re.I)


def _stem(word: str) -> str:
    word = word.strip("'.").lower()
    for suffix in ("es", "s"):
        if len(word) > 3 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


class ProductNames:
    """Finds catalog products mentioned in text, by full title or a distinctive short form.

    "the Ember pants" names "Men's Ember Ripstop Hiking Pants": a word no other title
    has ("ember") next to another word of the same title ("pants"). A lone colour that
    happens to match a title word ("Ember Red") does not.
    """

    def __init__(self, titles: list[str] | tuple[str, ...]) -> None:
        self.titles = sorted({t for t in titles if t.strip()}, key=len, reverse=True)
        words = {
            t: [_stem(w) for w in _WORD.findall(_GENDER.sub("", normalize(t).lower()))]
            for t in self.titles
        }
        count: dict[str, int] = {}
        for ws in words.values():
            for w in set(ws):
                count[w] = count.get(w, 0) + 1
        self._words = words
        self._distinct = {
            t: {w for w in ws if count[w] == 1 and len(w) > 2} for t, ws in words.items()
        }
        self._full = {t: _GENDER.sub("", normalize(t).lower()) for t in self.titles}
        self._rank = {t: i for i, t in enumerate(self.titles)}
        # indexes, so a 3,000-product catalog costs a few lookups per word, not a scan
        self._by_first: dict[str, list[str]] = {}
        for t in self.titles:
            first = _WORD.match(self._full[t])
            self._by_first.setdefault(first.group(0) if first else "", []).append(t)
        self._owner = {w: t for t, ds in self._distinct.items() for w in ds}
        self._cache: dict[str, list[tuple[int, int, str]]] = {}

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, title) of each mention, leftmost first, non-overlapping."""
        if text not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[text] = self._spans(text)
        return self._cache[text]

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        low = normalize(text).lower()
        found: list[tuple[int, int, str]] = []
        taken = [False] * len(low)
        raw = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(low)]
        candidates = {t for _, _, w in raw for t in self._by_first.get(w, ())}
        candidates |= set(self._by_first.get("", ()))
        for t in sorted(candidates, key=self._rank.__getitem__):  # longest titles first
            for m in re.finditer(re.escape(self._full[t]), low):
                s = m.start()
                # include a leading "men's " etc. in the span
                g = re.search(r"(?:men's|women's|kids'|unisex)\s+$", low[max(0, s - 9) : s])
                if g:
                    s -= len(g.group(0))
                if not any(taken[s : m.end()]):
                    found.append((s, m.end(), t))
                    taken[s : m.end()] = [True] * (m.end() - s)
        tokens = [(s, e, _stem(w)) for s, e, w in raw]
        owners = {self._owner[w] for _, _, w in tokens if w in self._owner}
        for t in sorted(owners, key=self._rank.__getitem__):
            distinct, title_words = self._distinct[t], set(self._words[t])
            for i, (s, e, w) in enumerate(tokens):
                if w not in distinct or taken[s]:
                    continue
                window = tokens[max(0, i - 3) : i + 5]
                partners = [x for x in window if x[2] in title_words and x[2] != w]
                if partners:
                    start = min(s, *(x[0] for x in partners))
                    end = max(e, *(x[1] for x in partners))
                    if not any(taken[start:end]):
                        found.append((start, end, t))
                        taken[start:end] = [True] * (end - start)
        return sorted(found)

    def mentioned(self, text: str) -> list[str]:
        seen: list[str] = []
        for _, _, t in self.spans(text):
            if t not in seen:
                seen.append(t)
        return seen

    def loosely_mentioned(self, text: str) -> list[str]:
        """Titles named by any word no other title has ("the Ridgeline"): looser, so only
        used for what the customer asked about, where a false hit merely excuses an echo."""
        words = {_stem(w) for w in _WORD.findall(normalize(text).lower())}
        strict = self.mentioned(text)
        loose = sorted(
            {self._owner[w] for w in words if w in self._owner}, key=self._rank.__getitem__
        )
        return strict + [t for t in loose if t not in strict]

    def mask(self, text: str) -> str:
        """Titles blanked out (same length), so "55L Pack" is not read as a 55-litre fact."""
        chars = list(normalize(text))
        for s, e, _ in self.spans(text):
            chars[s:e] = ["_"] * (e - s)
        return "".join(chars)


# ---------------------------------------------------------------- values

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "first": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45,
    "sixty": 60, "ninety": 90,
}  # fmt: skip
_NUM = r"\d[\d,]*(?:\.\d+)?|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))

_WAS = re.compile(
    r"(?:\bwas|on sale from|down from|reduced from|originally|regularly|compare at|normally)\s*\(?\s*$",
    re.I,
)

# unit pattern -> (family, factor to the family's base unit)
_UNITS = [
    (r"(?:business |calendar |working )?days?(?:\(s\))?", ("day", 1.0)),
    (r"weeks?", ("day", 7.0)),
    (r"hours?|hrs?|h", ("hour", 1.0)),
    (r"months?", ("month", 1.0)),
    (r"years?|yrs?", ("month", 12.0)),
    (r"%|percent|per cent", ("%", 1.0)),
    (r"points?|pts", ("point", 1.0)),
    (r"kg|kilograms?|kilos?", ("mass", 1000.0)),
    (r"g|grams?", ("mass", 1.0)),
    (r"oz|ounces?", ("mass", 28.3495)),
    (r"lbs?|pounds?", ("mass", 453.592)),
    (r"mm", ("length", 1.0)),
    (r"cm", ("length", 10.0)),
    (r"ml", ("volume", 1.0)),
    (r"l|liters?|litres?", ("volume", 1000.0)),
    (r"lumens?", ("lumen", 1.0)),
    (r"mah", ("mah", 1.0)),
    (r"°\s?f", ("temp_f", 1.0)),
    (r"°\s?c", ("temp_c", 1.0)),
]
_UNIT_RE = "|".join(f"(?:{p})" for p, _ in _UNITS)
QUANTITY = re.compile(
    rf"(?<![\w$.])(?P<a>{_NUM})(?:\s*(?:-|to)\s*(?P<b>{_NUM}))?[\s-]?(?P<unit>{_UNIT_RE})(?![\w])",
    re.I,
)
_IP = re.compile(r"\bIP(X|\d)(\d)\b", re.I)
_AGO = re.compile(r"^\s*(?:ago|old)\b", re.I)


def number(text: str) -> float:
    t = text.lower().replace(",", "")
    return float(_NUMBER_WORDS[t]) if t in _NUMBER_WORDS else float(t)


def unit_of(unit: str) -> tuple[str, float]:
    for pattern, family in _UNITS:
        if re.fullmatch(pattern, unit, re.I):
            return family
    raise ValueError(unit)


def money_values(text: str) -> list[tuple[int, float, str]]:
    """(offset, value, surface) for each amount of money (storetune.facts.MONEY: $, €, £,
    ISO codes)."""
    return [
        (m.start(), float(money_amount(m)), m.group(0)) for m in MONEY.finditer(normalize(text))
    ]


@dataclass(frozen=True)
class Quantity:
    family: str
    lo: float
    hi: float
    text: str
    start: int


def quantities(text: str) -> list[Quantity]:
    """Numbers with units ("3-5 business days", "1864 g", "IPX7"); "10 weeks ago" is skipped."""
    out = []
    for m in QUANTITY.finditer(text):
        if _AGO.match(text[m.end() :]):
            continue
        a = m.group("a")
        if a.lower() in ("a", "an", "first") and m.group("b"):
            continue
        family, factor = unit_of(m.group("unit"))
        lo = number(a) * factor
        hi = number(m.group("b")) * factor if m.group("b") else lo
        out.append(Quantity(family, lo, hi, m.group(0), m.start()))
    for m in _IP.finditer(text):
        out.append(Quantity("ip", float(m.group(2)), float(m.group(2)), m.group(0), m.start()))
    return out


def same_quantity(a: Quantity, b: Quantity) -> bool:
    """Equal values; masses compare after conversion (1.5 lb = 680 g); "5 days" meets "3-5 days"."""
    if a.family != b.family:
        return False
    tol = 0.03 if a.family == "mass" else 1e-6

    def eq(x: float, y: float) -> bool:
        return abs(x - y) <= tol * max(abs(x), abs(y), 1e-9)

    if eq(a.lo, b.lo) and eq(a.hi, b.hi):
        return True
    # a single figure equal to the top of a range ("within 5 business days" ~ "3-5")
    return (a.lo == a.hi and eq(a.lo, b.hi)) or (b.lo == b.hi and eq(b.lo, a.hi))


# ---------------------------------------------------------------- categorical facts

_STOCK_OUT = re.compile(
    r"out of stock|sold out|not in stock|isn't in stock|is not in stock|aren't in stock|"
    r"currently unavailable|none left|no longer available|(?:not|isn't|aren't) available",
    re.I,
)
_STOCK_IN = re.compile(
    r"\bin stock\b|ready to ship|available now|\bin-stock\b|\b(?:is|are) available\b", re.I
)
_BACKORDER = re.compile(r"back-?order", re.I)

_ABILITY_VERBS = {
    "return": r"return(?:s|ed|ing)?\b|send (?:it|them) back",
    "exchange": r"exchang\w*|swap\w*",
    "refund": r"refund\w*",
    "cancel": r"cancel\w*",
    "match": r"(?:price[- ])?match\w*",
    "discount": r"discount\w*|negotia\w*|knock\w* (?:\$?\d+ )?off|\d+% off|\$\d+ off",
}
_NEG_CUE = re.compile(
    r"\b(?:can't|cannot|can not|couldn't|unable to|not able to|won't|isn't|is not|aren't|"
    r"are not|don't|do not|doesn't|does not|no|not|never|outside|ineligible|too late)\b",
    re.I,
)
_POS_CUE = re.compile(
    r"\b(?:can|could|able to|eligible|happy to|feel free|welcome to|we'll|we will|i'll|"
    r"accept(?:ed)?|allowed|possible|free)\b",
    re.I,
)
_POST_NEG = re.compile(
    r"^\W*(?:\w+\W+){0,2}?(?:isn't|is not|not|aren't|are not)\s+(?:possible|allowed|accepted|available)",
    re.I,
)
_FINAL_SALE = re.compile(r"final sale|no returns or exchanges", re.I)

_FIT_TERMS = {
    "runs small": r"runs? (?:(?:half a size|a (?:bit|little|touch)|slightly|a size) )?small|on the small side",
    "runs large": r"runs? (?:(?:half a size|a (?:bit|little)|slightly|a size) )?(?:large|big)",
    "true to size": r"true to size",
    "size up": r"size up|sizing up|go(?:ing)? up|(?:a|one|half a) size up",
    "size down": r"size down|sizing down|go(?:ing)? down a size",
    "relaxed fit": r"relaxed(?: fit)?",
    "regular fit": r"regular fit",
    "trim fit": r"trim(?: fit)?|slim fit",
    "narrow fit": r"narrow(?: fit)?",
    "medium width": r"medium width",
}
_CARE_TERMS = {
    "machine wash": r"machine[- ]wash\w*|washing machine|machine washable|go in the wash|"
    r"wash\w* (?:[\w°-]+ ){0,6}in (?:a |the )?(?:front-load |top-load )?machine|front-load machine",
    "hand wash": r"hand[- ]wash\w*",
    "wash cold": r"wash\w* cold|cold (?:water|wash)",
    "wash warm": r"wash\w* warm",
    "tumble dry": r"tumble[- ]dry",
    "air dry": r"air[- ]dry|hang(?: to)? dry|line dry|lay flat",
    "spot clean": r"spot[- ]clean",
    "dishwasher safe": r"dishwasher[- ]safe|(?:can|may) go in the dishwasher",
    "not dishwasher safe": r"(?:not|isn't|never)\s+(?:\w+\s+)?dishwasher[- ]safe|no dishwasher|don't put it in the dishwasher",
    "dry clean": r"dry[- ]clean",
}
_REFUND_METHOD = {
    "original payment": r"original (?:payment|card|form of payment)|back (?:to|on) (?:your|the) card",
    "store credit": r"store credit|gift card balance",
}
_WARRANTY = re.compile(r"(lifetime|\d+[- ]year(?: limited)?)\s+warranty", re.I)
_COMPARE = re.compile(
    r"\b(lighter|heavier|cheaper|pricier|more expensive|less expensive|warmer|cooler|bigger|"
    r"smaller|larger|longer|shorter)\b",
    re.I,
)
_SIZE = re.compile(
    r"\b(?:go with|get|pick|choose|order|try|recommend(?:ing)?|so|size)\s+(?:a |an |the |size )?"
    r"(XXS|XS|XXL|XL|S|M|L|\d{1,2}(?:\.5)?)\b(?![/.\d])"
)
_YES = re.compile(
    r"^(?:yes|yep|yeah|yup|good news|absolutely|of course|definitely|it does|we do|they do|"
    r"(?:it's|it is|that's|that is) (?:fine|ok|okay|safe))\b",
    re.I,
)
_NO = re.compile(
    r"^(?:no\b(?=[,.!:;]|$)|no,|nope|unfortunately|i'm afraid|sadly|sorry,? but|"
    r"i'm sorry,? but|please don't|don't\b|we don't|it doesn't|they don't|there isn't|there's no)",
    re.I,
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|thanks|thank you|good (?:morning|afternoon|evening))\b[^.!?\n]*[.!?,\n]?\s*",
    re.I,
)


_NEGATED = re.compile(
    r"\b(?:not|don't|doesn't|do not|does not|isn't|won't|no need to|never)\s+(?:\w+\s+)?$", re.I
)


def _terms(text: str, table: dict[str, str]) -> list[tuple[int, str, str]]:
    out = []
    for name, pattern in table.items():
        for m in re.finditer(pattern, text, re.I):
            # "they don't run small" states the opposite; "not dishwasher safe" has its own term
            if not name.startswith("not ") and _NEGATED.search(text[: m.start()]):
                continue
            out.append((m.start(), name, m.group(0)))
    # "not dishwasher safe" also matches "dishwasher safe": keep the negative only
    negs = {pos for pos, name, _ in out if name.startswith("not ")}
    if negs:
        out = [
            x for x in out if x[1].startswith("not ") or not any(abs(x[0] - n) < 25 for n in negs)
        ]
    return out


def _ability(sentence: str) -> list[tuple[int, str, str]]:
    """(offset, "verb:yes|no", surface) for can/can't statements about returns, refunds…"""
    out = []
    for verb, pattern in _ABILITY_VERBS.items():
        for m in re.finditer(pattern, sentence, re.I):
            head = sentence[: m.start()]
            window = " ".join(head.split()[-6:])
            neg, pos = list(_NEG_CUE.finditer(window)), list(_POS_CUE.finditer(window))
            if _POST_NEG.match(sentence[m.end() :]):
                out.append((m.start(), f"{verb}:no", m.group(0)))
            elif neg and (not pos or neg[-1].start() >= pos[-1].start() - 12):
                out.append((m.start(), f"{verb}:no", m.group(0)))
            elif pos and not re.search(r"\bonly\b", window, re.I):
                # "can only be cancelled within 1 hour" states a limit, not a yes
                out.append((m.start(), f"{verb}:yes", m.group(0)))
    for m in _FINAL_SALE.finditer(sentence):
        out.append((m.start(), "return:no", m.group(0)))
        out.append((m.start(), "exchange:no", m.group(0)))
    return out


def answer_polarity(text: str) -> str | None:
    """'yes' / 'no' when the reply opens with one (after any greeting), else None."""
    body = normalize(text).strip()
    for _ in range(2):
        body = _GREETING.sub("", body, count=1).strip()
    if _YES.match(body):
        return "yes"
    if _NO.match(body):
        return "no"
    return None


# ---------------------------------------------------------------- extraction


@dataclass
class _Subjects:
    """Who a value in one sentence is about: a product it names, else the topic, else the
    product named earlier in the reply (or the one the customer asked about)."""

    sent: str
    offset: int
    in_sent: list[tuple[int, str]]
    default: str | None

    def named(self, pos: int) -> str | None:
        before = [t for s, t in self.in_sent if s - self.offset <= pos]
        if before:
            return before[-1]
        return self.in_sent[0][1] if len(self.in_sent) == 1 else None

    def subject(self, pos: int) -> str | None:
        return self.named(pos) or self.default

    def topical(self, pos: int) -> str | None:
        # a policy figure is about its topic even when the customer asked about a product
        return self.named(pos) or topic_at(self.sent, pos) or self.default

    def money(self, pos: int) -> str | None:
        # a product's price, else the policy it belongs to (shipping, threshold…)
        topic = topic_at(self.sent, pos)
        return (self.subject(pos) if topic in (None, "shipping") else None) or topic


def extract(text: str, names: ProductNames, focal: str | None = None) -> list[Fact]:
    """Every checkable fact in `text`. `focal` is the product the customer asked about,
    the subject of sentences that name none ("It's $129.00.")."""
    norm = normalize(text)
    mentions = names.spans(norm)
    facts: list[Fact] = []
    for offset, sent in sentences(names.mask(norm)):
        in_sent = [(s, t) for s, _, t in mentions if offset <= s < offset + len(sent)]
        # a subject named earlier in the reply carries into following sentences
        earlier = [t for s, _, t in mentions if s < offset]
        default = in_sent[0][1] if len(in_sent) == 1 else (earlier[-1] if earlier else focal)
        facts += _sentence_facts(sent, _Subjects(sent, offset, in_sent, default))
    facts += [Fact("product", t, t, t) for t in names.mentioned(norm)]
    polarity = answer_polarity(norm)
    if polarity:
        facts.append(Fact("answer", polarity, None, polarity))
    return facts


def _sentence_facts(sent: str, who: _Subjects) -> list[Fact]:
    facts = [
        Fact("money", f"{v:.2f}", who.money(pos), surface.strip(), bool(_WAS.search(sent[:pos])))
        for pos, v, surface in money_values(sent)
    ]
    facts += [
        Fact(f"qty:{q.family}", f"{q.lo:g}-{q.hi:g}", who.topical(q.start), q.text.strip())
        for q in quantities(sent)
    ]
    facts += _stock_facts(sent, who)
    facts += [Fact("ability", value, None, surface) for _, value, surface in _ability(sent)]
    for kind, table in (("fit", _FIT_TERMS), ("care", _CARE_TERMS)):
        facts += [Fact(kind, v, who.subject(pos), surf) for pos, v, surf in _terms(sent, table)]
    facts += [Fact("refund_method", v, None, s) for _, v, s in _terms(sent, _REFUND_METHOD)]
    for m in _WARRANTY.finditer(sent):
        value = m.group(1).lower().replace(" limited", "").replace(" ", "-")
        facts.append(Fact("warranty", value, who.subject(m.start()), m.group(0)))
    for m in _COMPARE.finditer(sent):
        facts.append(Fact("compare", m.group(1).lower(), who.subject(m.start()), m.group(0)))
    facts += [Fact("size", m.group(1).upper(), None, m.group(0)) for m in _SIZE.finditer(sent)]
    return facts


def _stock_facts(sent: str, who: _Subjects) -> list[Fact]:
    outs = [(m.start(), m.group(0)) for m in _STOCK_OUT.finditer(sent)]
    facts = [Fact("stock", "out", who.subject(pos), surface) for pos, surface in outs]
    for m in _STOCK_IN.finditer(sent):
        # "in stock" inside "not in stock" was already read as out
        if not any(p <= m.start() < p + len(s) for p, s in outs):
            facts.append(Fact("stock", "in", who.subject(m.start()), m.group(0)))
    for m in _BACKORDER.finditer(sent):
        facts.append(Fact("stock", "backorder", who.subject(m.start()), m.group(0)))
    return facts


def quantity_of(f: Fact) -> Quantity:
    lo, _, hi = f.value.partition("-")
    # values are written "lo-hi"; a negative number never occurs in these facts
    return Quantity(f.kind[4:], float(lo), float(hi), f.text, 0)
