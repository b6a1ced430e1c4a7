"""Claims in a reply that nothing the model was shown supports.

A claim is a price, a number with a unit, an order or tracking number, a URL, an
email address, a phone number, a product name, a stock statement, a delivery or
restock promise, a discount code, a material, or an action on an order ("I've
refunded…"). It is supported when the system prompt (policies + product cards), a
customer or earlier agent turn, the store's own website/contact, or the reference
reply states it. Look-alikes that are NOT flagged: a price on a card in the context,
a product in the context, the store's contact email, a number the customer wrote.

Prices, discounts, emails, phones, URLs, order and tracking numbers are found and
judged by `storetune.facts.check_entities`, the rule the grounding guard blocks by,
so the hallucination rate counts what the guard would block (with two leniencies of
the rubric, named in `storetune.facts.Grounds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from storetune.chat.card import Card, parse_cards
from storetune.eval.facts import ProductNames, normalize, quantities, same_quantity, sentences
from storetune.facts import URL, Checked, Entity, Grounds, check_entities, unsupported_giveaways


@dataclass(frozen=True)
class Claim:
    kind: str  # price | number | order_number | tracking | url | email | phone | product | stock | promise | code | material | action | giveaway
    text: str
    entity: Entity | None = field(default=None, compare=False)  # the storetune.facts entity

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


# Names the report has always used for the shared entity kinds (storetune.facts); a
# discount is a percentage, reported with the other numbers.
CLAIM_KIND = {"tracking_number": "tracking", "discount": "number"}
_CODE = re.compile(r"\b(?:code|coupon|promo)\s*:?\s+([A-Z0-9]{4,})\b")
_DATE_WORDS = re.compile(
    r"\b(?:tomorrow|tonight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"next week|next month|this week|overnight|next[- ]day|same[- ]day|guaranteed?|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?)\b",
    re.I,
)
_PROMISE_CONTEXT = re.compile(
    r"arriv|deliver|ship|get it|have it|receive|reach you|back in stock|restock|be back|in time",
    re.I,
)
_SAME_DAY = re.compile(
    r"\b(?:ship|send|deliver|arriv|dispatch|refund)\w*\b[^.!?\n]{0,40}\btoday\b", re.I
)
_ACTION = re.compile(
    r"\b(?:i've|i have|we've|we have|i just|i went ahead and|i'll go ahead and)\s+(?:\w+\s+)?"
    r"(?:refunded|cancell?ed|applied|updated|changed|issued|processed|credited|adjusted|"
    r"taken|removed|added|reversed|upgraded|waived|lowered|reduced|set|overridden|approved)\b"
    r"|\b(?:refund|order|price|discount|address|charge|payment)\s+(?:has been |was |is now |is )?"
    r"(?:processed|issued|cancell?ed|updated|changed|applied|reversed|refunded|approved)\b",
    re.I,
)
_COMPENSATION = re.compile(
    r"\b(?:we|i)(?:'ll| will)\s+(?:cover|pay for|reimburse|compensate|give you|send you) "
    r"(?:the |a |an |you |your )?(?:full |free )?(?:cost|gift card|voucher|credit|coupon|"
    r"discount|compensation|\$)",
    re.I,
)
_MATERIALS = (
    "cotton", "linen", "polyester", "nylon", "merino", "wool", "leather", "suede", "cashmere",
    "silk", "bamboo", "hemp", "polypropylene", "spandex", "elastane", "acrylic", "rayon",
    "titanium", "aluminum", "aluminium", "carbon fiber", "stainless steel", "cast iron",
    "copper", "ceramic", "stoneware", "porcelain", "walnut", "maple", "oak", "silicone",
    "gore-tex", "fleece", "canvas", "denim", "goose down", "duck down",
)  # fmt: skip
_STOCK_CLAIM = re.compile(
    r"(?P<out>out of stock|sold out|not in stock|isn't in stock|currently unavailable)"
    r"|(?P<back>back-?order)|(?P<in>\bin stock\b|ready to ship|available now)",
    re.I,
)
_PRODUCT_NOUNS = (
    "jacket", "shell", "parka", "vest", "hoodie", "fleece", "pullover", "sweater", "shirt",
    "tee", "pants", "shorts", "leggings", "tights", "boot", "boots", "shoe", "shoes",
    "sandals", "runner", "runners", "socks", "beanie", "hat", "cap", "gloves", "mittens",
    "pack", "backpack", "bag", "tent", "stove", "headlamp", "lantern", "poles", "bottle",
    "mug", "mugs", "kettle", "skillet", "pan", "pot", "board", "apron", "poncho", "crew",
    "layer", "quarter-zip", "set", "knife", "blanket", "pad", "hammock", "chair",
)  # fmt: skip
_NAME_LEAD = re.compile(
    r"^(?:the|our|your|a|an|this|that|these|those|any|all|some|my|try|check|out|get|and|or|with)$",
    re.I,
)


class Evidence:
    """What a claim may rest on, indexed once per case.

    `text` is the store's side (system prompt, earlier agent turns, the reference reply)
    and `customer` the customer's own words; the shared entity kinds (prices, emails,
    phones, URLs, order and tracking numbers, discounts) follow the guard's rule of who
    may vouch for what (`storetune.facts.Grounds`), everything else may rest on either.
    `allowed` are strings a reply may always use (the website, the contact details).
    """

    def __init__(
        self,
        text: str,
        allowed: tuple[str, ...] = (),
        cards: list[Card] | None = None,
        customer: str = "",
    ):
        self.allowed = [normalize(a) for a in allowed if a]
        store = normalize("\n".join([text, *self.allowed]))
        self.text = normalize(text + "\n" + customer)
        self.low = self.text.lower()
        self.quantities = quantities(self.text)
        self.cards = cards if cards is not None else parse_cards(store)
        website = next((a for a in self.allowed if URL.fullmatch(a)), "")
        self.grounds = Grounds(
            store, normalize(customer), website, self.cards, site_paths=True, customer_figures=True
        )


def entity_claims(reply: str, evidence: Evidence) -> tuple[list[Claim], list[Checked]]:
    """Claims for the shared entity kinds the evidence does not support, and every
    entity found (the rest of the metric leaves their spans alone)."""
    checked = check_entities(reply, evidence.grounds)
    claims = [
        Claim(CLAIM_KIND.get(c.entity.kind, c.entity.kind), _claim_text(c), c.entity)
        for c in checked
        if not c.supported
    ]
    return claims, checked


def _claim_text(c: Checked) -> str:
    if c.entity.kind in ("order_number", "tracking_number"):
        return c.entity.text.lstrip("#").strip()
    return c.entity.text.strip()


def unsupported_claims(
    reply: str,
    evidence: Evidence,
    names: ProductNames,
    focal: str | None = None,
) -> list[Claim]:
    """Every claim in `reply` that `evidence` does not support."""
    text = normalize(reply)
    claims, checked = entity_claims(text, evidence)
    masked = _blank(text, checked)
    claims += _quantity_claims(names.mask(masked), evidence)
    claims += _pattern_claims(text, evidence)
    claims += _product_claims(text, evidence, names)
    claims += _stock_claims(text, evidence, names, focal)
    return claims


def _blank(text: str, checked: list[Checked]) -> str:
    """The text with every entity blanked: a number inside a URL, an order number or a
    price is not a quantity of its own."""
    chars = list(text)
    for c in checked:
        chars[c.entity.start : c.entity.end] = " " * (c.entity.end - c.entity.start)
    return "".join(chars)


def _quantity_claims(text: str, evidence: Evidence) -> list[Claim]:
    out = []
    for q in quantities(text):
        if not any(same_quantity(q, e) for e in evidence.quantities):
            out.append(Claim("number", q.text.strip()))
    return out


def _pattern_claims(text: str, evidence: Evidence) -> list[Claim]:
    out = []
    for m in _CODE.finditer(text):
        if m.group(1).lower() not in evidence.low:
            out.append(Claim("code", m.group(0)))
    for _, sent in sentences(text):
        if _PROMISE_CONTEXT.search(sent) or _DATE_WORDS.search(sent):
            for m in _DATE_WORDS.finditer(sent):
                if m.group(0).lower() not in evidence.low:
                    out.append(Claim("promise", sent.strip()[:120]))
                    break
    for m in _SAME_DAY.finditer(text):
        if "today" not in evidence.low:
            out.append(Claim("promise", m.group(0)))
    for rx in (_ACTION, _COMPENSATION):
        for m in rx.finditer(text):
            if m.group(0).lower() not in evidence.low:
                out.append(Claim("action", m.group(0)))
    # only the store's side vouches for a giveaway or a new policy (storetune.facts)
    for m in unsupported_giveaways(text, evidence.grounds.store):
        out.append(Claim("giveaway", m.group(0)))
    low = text.lower()
    for material in _MATERIALS:
        if re.search(rf"\b{re.escape(material)}\b", low) and not re.search(
            rf"\b{re.escape(material)}", evidence.low
        ):
            out.append(Claim("material", material))
    return out


def _product_claims(text: str, evidence: Evidence, names: ProductNames) -> list[Claim]:
    out = []
    known = set(names.mentioned(evidence.text)) | {c.title for c in evidence.cards}
    for title in names.mentioned(text):
        if title not in known:
            out.append(Claim("product", f"{title} (not in the context)"))
    # invented names: Capitalised words ending in a product noun, found nowhere in the evidence
    masked = names.mask(text)
    for m in re.finditer(r"(?:[A-Z][\w'-]*\s+){1,5}(?:[A-Z][\w'-]*)", masked):
        words = m.group(0).split()
        while words and _NAME_LEAD.match(words[0]):
            words.pop(0)
        if len(words) < 2 or words[-1].lower().rstrip("s") not in {
            n.rstrip("s") for n in _PRODUCT_NOUNS
        }:
            continue
        name = " ".join(words)
        if name.lower() not in evidence.low and not names.mentioned(name):
            out.append(Claim("product", name))
    return out


def _stock_claims(
    text: str, evidence: Evidence, names: ProductNames, focal: str | None
) -> list[Claim]:
    out = []
    # stock is read from product cards; an order or passage card has no variants
    cards = {c.title: c for c in evidence.cards if c.kind == "product"}
    mentions = names.spans(text)
    for offset, sent in sentences(text):
        for m in _STOCK_CLAIM.finditer(sent):
            claim = "out" if m.group("out") else "backorder" if m.group("back") else "in"
            here = [t for s, _, t in mentions if s < offset + m.start()]
            product = here[-1] if here else focal
            if product is None and len(cards) == 1:
                product = next(iter(cards))
            clause = _clause(sent, m.start())
            if not _stock_supported(
                claim, clause, cards.get(product) if product else None, evidence
            ):
                out.append(Claim("stock", sent.strip()[:120]))
    return out


_CLAUSE_BREAK = re.compile(r",|;|\bbut\b|\bwhile\b|\bwhereas\b|\bhowever\b", re.I)


def _clause(sentence: str, pos: int) -> str:
    """The clause around `pos`: "out of stock in M, but S is in stock" has two."""
    starts = [m.end() for m in _CLAUSE_BREAK.finditer(sentence) if m.end() <= pos]
    ends = [m.start() for m in _CLAUSE_BREAK.finditer(sentence) if m.start() > pos]
    return sentence[max(starts, default=0) : min(ends, default=len(sentence))]


def _stock_supported(claim: str, sentence: str, card: Card | None, evidence: Evidence) -> bool:
    if card is None:
        # no card to read: only what the conversation itself says supports it
        word = {"in": "in stock", "out": "out of stock", "backorder": "backorder"}[claim]
        return word in evidence.low.replace("-", "")
    low = normalize(sentence).lower()
    named = [
        (label, status)
        for label, status in card.variants
        if label and re.search(rf"(?<![\w]){re.escape(label.lower())}(?![\w])", low)
    ]
    pool = named or card.variants

    def matches(status: str) -> bool:
        status = status.lower()
        if claim == "in":
            return status.startswith("in stock")
        if claim == "backorder":
            return "backorder" in status
        return status.startswith("out of stock")

    return any(matches(s) for _, s in pool) if pool else False
