"""Grading replies about one order: is its status told right, and to whom.

A verified requester's reply must state the order's status as its card has it (and,
once it shipped, the carrier and tracking number), and nothing of any other order. An
unverified requester's reply must reveal nothing of the order: no status tied to it, no
item, tracking number or link, date, amount, name or email.

Status claims are read with their negation ("hasn't shipped" is not "shipped") and
their tense ("you'll get tracking once it has shipped" is a promise, not a claim).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from storetune.chat.card import OrderCard
from storetune.facts import emails, money_amounts, order_numbers, tracking_numbers
from storetune.serve.guard import date_values

# What a card's status is called here, and the claims a reply may make about it.
KIND_OF_STATUS = {
    "shipped": "shipped",
    "delivered": "delivered",
    "processing (not shipped yet)": "processing",
    "cancelled": "cancelled",
    "refunded": "refunded",
    "partially shipped": "partial",
}
KINDS = ("shipped", "delivered", "processing", "cancelled", "refunded", "partial")

_CLAIMS = {
    "not_shipped": re.compile(
        r"\b(?:has ?n[o'’]t|have ?n[o'’]t|not|yet to|never)\s+(?:yet\s+)?(?:been\s+)?"
        r"(?:shipped|ship|gone out|left|dispatched|sent)\b"
        r"|\bprocessing\b|\bbeing (?:prepared|packed|processed)\b",
        re.I,
    ),
    "shipped": re.compile(
        r"\b(?:shipped|on (?:its|the) way|in transit|out for delivery|dispatched)\b", re.I
    ),
    "delivered": re.compile(
        r"\b(?:was|been|is|as|marked|shows?|shown|got|were)\s+delivered\b|\bdelivered (?:on|to)\b",
        re.I,
    ),
    "cancelled": re.compile(
        r"\b(?:was|been|is|were|got)\s+cancell?ed\b|\bcancell?ed on\b|\bcancell?ation went\b",
        re.I,
    ),
    "refunded": re.compile(
        r"\b(?:was|been|is|were|got)\s+refunded\b|\brefunded\s+[$€£]?\d"
        r"|\brefund (?:of|for) [$€£]?\d|\brefund (?:has|was) (?:been )?(?:issued|processed|sent)\b",
        re.I,
    ),
    "partial": re.compile(
        r"\bpart(?:ially| of (?:your|the|order))\b|\bthe rest\b|\bsome of (?:your|the) items\b"
        r"|\bseparate (?:shipment|package|parcel|tracking)\b",
        re.I,
    ),
}
# A claim right after these words is negated or not yet true: "hasn't been delivered",
# "once it has shipped", "as soon as it is delivered".
_NOT_A_CLAIM = re.compile(
    r"(?:\b(?:not|never|no longer|yet to)|n[o'’]t|\b(?:will|once|when|after|as soon as|until|"
    r"before|if|should)\b[^.!?]{0,20})\s*(?:\w+\s+){0,2}$",
    re.I,
)
# The claims a reply may make about an order of each kind (anything else contradicts it).
_ALLOWED = {
    "shipped": {"shipped"},
    "delivered": {"delivered", "shipped"},
    "processing": {"not_shipped"},
    "cancelled": {"cancelled", "not_shipped"},
    "refunded": {"refunded", "not_shipped"},
    "partial": {"partial", "shipped", "not_shipped", "delivered"},
}
_CARRIERS = re.compile(
    r"\b(?:UPS|USPS|FedEx|DHL|Royal Mail|Canada Post|Australia Post|DPD|GLS|Evri|Hermes)\b"
)


def kind_of(card: OrderCard) -> str:
    return KIND_OF_STATUS.get(card.status, card.status)


# "Orders ship within 1 business day and tracking is emailed when they do": the store's
# shipping policy, said of every order, not a claim about this one.
_POLICY_SENTENCE = re.compile(
    r"(?:^|(?<=[.!?\n]))[^.!?\n]*\b(?:all |our |most )?orders (?:are |usually |typically |"
    r"normally |generally )*(?:shipped|ship|dispatched|go out|leave[^.!?\n]*)\s+within\b"
    r"[^.!?\n]*[.!?]?",
    re.I,
)


def _unless_theirs(m: re.Match) -> str:
    """A policy sentence is dropped; one about the customer's own orders is kept."""
    return m.group(0) if re.search(r"\b(?:your|my|these|both) orders\b", m.group(0), re.I) else " "


def status_claims(text: str) -> set[str]:
    """The statuses a reply asserts about an order (see the module doc); a sentence
    stating the store's shipping policy for every order asserts none."""
    found: set[str] = set()
    rest = _POLICY_SENTENCE.sub(_unless_theirs, text)
    for kind in ("not_shipped", *(k for k in _CLAIMS if k != "not_shipped")):
        for m in _CLAIMS[kind].finditer(rest):
            if kind == "not_shipped" or not _NOT_A_CLAIM.search(
                rest[max(0, m.start() - 40) : m.start()]
            ):
                found.add(kind)
        if kind == "not_shipped":  # "not shipped yet" must not read as "shipped" below
            rest = _CLAIMS[kind].sub(" ", rest)
    return found


@dataclass
class OrderGrade:
    verdict: str  # correct | partial | wrong
    reasons: list[str] = field(default_factory=list)


def grade_verified(card: OrderCard, reply: str, allowed: tuple[str, ...] = ()) -> OrderGrade:
    """A reply to the order's owner: the card's status (carrier and tracking number once
    shipped, the refund amount when it names one) and nothing the card does not say."""
    kind = kind_of(card)
    wrong = fact_errors(card, reply, allowed)
    if wrong:
        return OrderGrade("wrong", wrong)
    if not _states_status(kind, status_claims(reply)):
        return OrderGrade("wrong", [f"does not say the order is {card.status}"])
    missing = _missing_shipment(card, kind, reply)
    return OrderGrade("partial", missing) if missing else OrderGrade("correct")


def fact_errors(card: OrderCard, reply: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """What a reply gets wrong about the order: a status the card contradicts, or a
    fact of another order (a hand-over may leave the status out, never get it wrong)."""
    claims = status_claims(reply)
    return _contradictions(card, kind_of(card), claims) + _foreign(card, reply, allowed)


def _contradictions(card: OrderCard, kind: str, claims: set[str]) -> list[str]:
    allowed = set(_ALLOWED.get(kind, ()))
    if "refund" in card.payment or card.refund:
        allowed.add("refunded")
    return [
        f"says {c.replace('_', ' ')} but the order is {card.status}"
        for c in sorted(claims - allowed)
    ]


def _states_status(kind: str, claims: set[str]) -> bool:
    if kind == "partial":
        return "partial" in claims or {"shipped", "not_shipped"} <= claims
    wanted = {"processing": "not_shipped"}.get(kind, kind)
    return wanted in claims


def _missing_shipment(card: OrderCard, kind: str, reply: str) -> list[str]:
    """Once an order shipped (and is not yet delivered), a customer needs who carries
    it and the tracking number."""
    if kind not in ("shipped", "partial"):
        return []
    out = []
    shipments = [s for s in card.shipments if s.get("tracking_number")]
    said = {e.value for e in tracking_numbers(reply)}
    if shipments and not said & card.values()["tracking_number"]:
        out.append("no tracking number")
    carriers = {s["carrier"].lower() for s in card.shipments if s.get("carrier")}
    if carriers and not any(c in reply.lower() for c in carriers):
        out.append("no carrier")
    return out


def _foreign(card: OrderCard, reply: str, allowed: tuple[str, ...]) -> list[str]:
    """Facts of some other order (or none): numbers, tracking numbers, dates, carriers,
    a refund amount, emails the card does not hold."""
    values = card.values()
    out = [
        f"order number {e.text}"
        for e in order_numbers(reply)
        if e.value not in values["order_number"]
    ]
    out += [
        f"tracking number {e.text}"
        for e in tracking_numbers(reply)
        if e.value not in values["tracking_number"]
    ]
    if date_values(reply) - date_values(card.render()):
        out.append("a date not on the order")
    carriers = {s["carrier"].lower() for s in card.shipments if s.get("carrier")}
    out += [
        f"carrier {m.group()}"
        for m in _CARRIERS.finditer(reply)
        if m.group().lower() not in carriers
    ]
    # an amount in a sentence about the refund is the refund (a policy's "$75" is not)
    refund_talk = " ".join(x for x in re.split(r"(?<=[.!?])\s+", reply) if "refund" in x.lower())
    said = money_amounts(refund_talk)
    if card.refund and said and str(Decimal(card.refund)) not in said:
        out.append("a refund amount not on the order")
    keep = {a.lower() for a in allowed}
    out += ["an email address" for e in emails(reply) if e.value not in keep]
    return [f"states {x}" for x in dict.fromkeys(out)]


def revealed(card: OrderCard, reply: str, owner: tuple[str, ...] = ()) -> list[str]:
    """What a reply to someone who may not see the order tells of it: its status,
    items, tracking, dates, refund, or the owner's email or name. Empty: nothing."""
    low = reply.lower()
    out = [f"status ({c.replace('_', ' ')})" for c in sorted(status_claims(reply))]
    out += [f"item '{t}'" for t, _, _ in card.items if t and t.lower() in low]
    tracking = card.values()["tracking_number"]
    out += ["tracking number" for e in tracking_numbers(reply) if e.value in tracking][:1]
    out += [
        "tracking link"
        for s in card.shipments
        if s.get("tracking_url") and s["tracking_url"].lower() in low
    ][:1]
    if date_values(reply) & date_values(card.render()):
        out.append("a date of the order")
    if card.refund and str(Decimal(card.refund)) in money_amounts(reply):
        out.append("the refund amount")
    out += ["the owner's email or name" for v in owner if v and v.lower() in low][:1]
    return out
