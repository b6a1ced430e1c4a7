"""Order lookup for routing: find the order a ticket names, and show it only to its owner.

The rule (README, "Orders"): an order is shown only when the ticket names its number
and the requester's email (the request's `customer.email`, or the helpdesk requester's)
equals the order's email, ignoring case. Anything less gets one fixed reply asking
for the order number and the checkout email, word for word the same whether the
order does not exist, belongs to someone else or no email came with the ticket: no
status, no items, not even whether the number exists. The model never sees an order
it may not tell.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storetune.chat.card import MAX_FACTS, OrderCard, ProductCard
from storetune.facts import EMAIL, order_numbers
from storetune.store import orders as order_store
from storetune.store.records import Product

ASK_FOR_ORDER = (
    "I can look up an order once I have its order number (it's on your confirmation email) "
    "and it matches the email address used at checkout. Please reply with the order number, "
    "from the email address you used at checkout, and I'll check it for you."
)

# "where is my order", "hasn't arrived", "tracking number": a question about an order's
# whereabouts even when no number is given.
_ABOUT_ORDER = re.compile(
    r"\b(?:where(?:'s| is)? (?:my|our|the) (?:order|package|parcel|delivery|stuff|shipment)"
    r"|order status|status of (?:my|our|the) order|track(?:ing)?(?: my| the)? "
    r"(?:order|package|parcel)|tracking (?:number|info|link)"
    r"|(?:has ?n[o']t|not|never|still not|hasn't|haven't|didn't) (?:yet )?"
    r"(?:arrived|shipped|been delivered|been shipped|received|got it|come)"
    r"|when will (?:my|it|the) ?(?:order|package|parcel)? ?(?:ship|arrive|be delivered))",
    re.I,
)
ORDER_KINDS = ("order_status", "damaged_missing")  # router kinds that ask about an order
# How sure the router must be that a ticket is about an order before its reading alone
# (no number named, no "where is my order") makes routing look for one.
ORDER_READING_MIN = 0.4
# Without a router: a request for a suggestion ("what goes with it?").
_SUGGEST = re.compile(
    r"\b(?:recommend|suggest|goes? (?:well )?with|go(?:es)? together|pair (?:it|with)|"
    r"what else|also (?:need|get|buy)|bought with)\b",
    re.I,
)


@dataclass
class OrderContext:
    """What routing learned about the order a ticket asks about."""

    state: str  # none (not about an order) | verified | unverified
    card: OrderCard | None = None  # only when verified

    @property
    def ask(self) -> bool:
        return self.state == "unverified"

    def sections(self) -> list[str]:
        """Policy sections a reply about this order needs."""
        if self.card is None:
            return []
        extra = {
            "delivered": ["damaged"],
            "cancelled": ["cancellations"],
            "refunded": ["returns"],
        }.get(self.card.status, [])
        return ["order_status", "shipping", *extra]


def requester_email(customer: dict[str, Any]) -> str:
    """The email the helpdesk vouches for: `customer.email`, or its requester's."""
    candidates = [customer.get("email"), customer.get("requester_email")]
    requester = customer.get("requester")
    if isinstance(requester, dict):
        candidates.append(requester.get("email"))
    for c in candidates:
        if isinstance(c, str) and EMAIL.fullmatch(c.strip()):
            return c.strip().casefold()
    return ""


def named_orders(texts: Sequence[str]) -> list[str]:
    """Order numbers the customer wrote, newest message first, each once."""
    found: list[str] = []
    for text in reversed(texts):
        for e in order_numbers(text):
            key = order_store.normalize_name(e.value)
            if key not in found:
                found.append(key)
    return found


def about_order(texts: Sequence[str], kind: str | None = None) -> bool:
    return (
        bool(named_orders(texts))
        or kind in ORDER_KINDS
        or any(_ABOUT_ORDER.search(t) for t in texts)
    )


def look_up(
    conn: sqlite3.Connection,
    texts: Sequence[str],
    customer: dict[str, Any],
    kind: str | None = None,
) -> OrderContext:
    """The verified order the customer's words name, or why not (see the module doc).

    A store with no orders in store.db keeps routing as it was (policies say what to do)."""
    if not order_store.has_orders(conn) or not about_order(texts, kind):
        return OrderContext("none")
    email = requester_email(customer)
    for name in named_orders(texts) if email else []:
        order = order_store.load_order(conn, name)
        # The same comparison whether or not the order exists: nothing to time or tell.
        owner = order.email.casefold() if order is not None else ""
        if owner and owner == email:
            return OrderContext("verified", OrderCard.from_order(order))
    return OrderContext("unverified")


# What the customer wrote where an email address was (ingest's scrubber leaves this in
# the datasets and the eval's tickets; a live ticket has the address itself).
_EMAIL_PLACEHOLDER = "<EMAIL>"


def needs_a_person(agent_turns: Sequence[str], message: str) -> str | None:
    """Why an unverified order question goes to a person instead of the fixed ask: the
    ask was already sent in this thread (asking again loops), or the customer typed an
    email address that the requester's own address does not confirm (a person can
    check who is writing; routing never takes a typed address as proof)."""
    opening = ASK_FOR_ORDER.split("(")[0].strip()
    if any(opening in turn for turn in agent_turns):
        return "the customer was already asked for the order number and checkout email"
    if EMAIL.search(message) or _EMAIL_PLACEHOLDER in message:
        return "the customer gave an email address the requester's cannot confirm"
    return None


def asks_for_suggestion(texts: Sequence[str]) -> bool:
    return bool(texts) and _SUGGEST.search(texts[-1]) is not None


def often_bought_card(p: Product, base: Product, theirs: bool) -> ProductCard:
    """A suggestion's card, saying which product it is often bought with."""
    card = ProductCard.from_product(p)
    note = f"often bought with the {base.title}" + (" you ordered" if theirs else "")
    card.facts = [note, *card.facts][:MAX_FACTS]
    return card
