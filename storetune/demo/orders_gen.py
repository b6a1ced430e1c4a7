"""The sample store's orders: a Shopify Admin REST order export consistent with its tickets.

Every order number a ticket's conversation mentions becomes an order of that ticket's
requester (same email), placed a few days before the ticket and in the state its
topic implies (a "where is my order" ticket's order is in transit, a missing-item
ticket's was delivered, a cancellation's was cancelled). More orders from the same
customers make the purchase history the recommendations learn "often bought with"
from: each product has a fixed companion that joins its orders more often than not.
Everything is fictional and deterministic (its own random stream).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storetune.demo.catalog_gen import DemoProduct
from storetune.demo.ticket_gen import BuiltTicket, Person, TicketSet
from storetune.facts import order_numbers

CARRIER = "UPS"
TRACK_URL = "https://tracking.example.com/ups/{n}"  # fictional: example.com is reserved
# A ticket's topic -> the state its order is in when the customer writes.
STATE_BY_INTENT = {
    "order_status": "in_transit",
    "damaged_missing": "delivered",
    "cancellation": "cancelled",
    "address_change": "processing",
    "returns": "delivered",
    "sale_return": "delivered",
    "exchange": "delivered",
    "discount_price_match": "refunded_partly",
}
COMPANION_SHARE = 0.6  # how often a product's companion joins its order


@dataclass
class _Claim:
    person: Person
    at: datetime
    intent: str


def mentioned_orders(ts: TicketSet) -> dict[int, _Claim]:
    """Order number -> the requester of the first ticket that mentions it. A number a
    later ticket of another customer repeats stays the first customer's."""
    claims: dict[int, _Claim] = {}
    for b in sorted(ts.tickets, key=lambda b: (b.items[0].at, b.id)):
        for n in _numbers(b):
            claims.setdefault(n, _Claim(b.requester, b.items[0].at, b.intent))
    return claims


def _numbers(b: BuiltTicket) -> list[int]:
    out = []
    for item in b.items:
        for e in order_numbers(item.text):
            digits = e.value.lstrip("#")
            if digits.isdigit() and int(digits) not in out:
                out.append(int(digits))
    return out


def build_orders(
    rng: random.Random, ts: TicketSet, products: list[DemoProduct], extra: int
) -> list[dict[str, Any]]:
    """Admin REST order objects: one per mentioned number, plus `extra` more."""
    live = [p for p in products if p.active and p.variants]
    companion = {p.handle: rng.choice([q for q in live if q.handle != p.handle]) for p in live}
    orders = [
        _order(rng, n, c.person, c.at - timedelta(days=rng.randint(3, 9)), c.intent, live,
               companion)
        for n, c in sorted(mentioned_orders(ts).items())
    ]  # fmt: skip
    taken = {o["order_number"] for o in orders}
    people = sorted(ts.customers, key=lambda p: p.id)
    number = 9000  # below the tickets' numbers (10000 and up), so never one of theirs
    for _ in range(extra):
        number += rng.randint(1, 3)
        if number in taken:
            continue
        start = datetime(2024, 6, 1, tzinfo=UTC)
        when = start + timedelta(days=rng.randrange(800), minutes=rng.randrange(1440))
        person = rng.choice(people)
        state = rng.choice(["delivered", "delivered", "delivered", "in_transit", "processing"])
        orders.append(_order(rng, number, person, when, state, live, companion))
    return sorted(orders, key=lambda o: o["order_number"])


def _order(
    rng: random.Random,
    number: int,
    person: Person,
    placed: datetime,
    intent_or_state: str,
    live: list[DemoProduct],
    companion: dict[str, DemoProduct],
) -> dict[str, Any]:
    state = STATE_BY_INTENT.get(intent_or_state, intent_or_state)
    if state not in {"in_transit", "delivered", "cancelled", "processing", "refunded_partly"}:
        state = "delivered"
    first = rng.choice(live)
    picked = [first] + ([companion[first.handle]] if rng.random() < COMPANION_SHARE else [])
    lines = [_line(rng, p, i) for i, p in enumerate(picked)]
    total = sum(float(x["price"]) * x["quantity"] for x in lines)
    order: dict[str, Any] = {
        "id": 5500000000 + number,
        "name": f"#{number}",
        "order_number": number,
        "email": person.email,
        "created_at": _iso(placed),
        "updated_at": _iso(placed + timedelta(days=6)),
        "currency": "USD",
        "total_price": f"{total:.2f}",
        "financial_status": "paid",
        "fulfillment_status": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "customer": {"first_name": person.first, "last_name": person.last, "email": person.email},
        "shipping_address": {
            "name": person.name,
            "address1": person.address.split(",")[0],
            "city": person.city,
            "province_code": person.state,
            "country_code": "US",
        },
        "shipping_lines": [{"title": "Standard"}],
        "line_items": lines,
        "fulfillments": [],
        "refunds": [],
    }
    _apply_state(rng, order, state, placed)
    return order


def _line(rng: random.Random, p: DemoProduct, i: int) -> dict[str, Any]:
    v = rng.choice(p.variants)
    label = " / ".join(x for x in v.options.values() if x and x != "Default Title")
    return {
        "id": 9100000 + i,
        "title": p.title,
        "variant_title": label or None,
        "sku": v.sku,
        "quantity": 1 if rng.random() < 0.85 else 2,
        "price": f"{v.price:.2f}",
        "fulfillment_status": None,
    }


def _apply_state(rng: random.Random, o: dict[str, Any], state: str, placed: datetime) -> None:
    if state == "processing":
        return
    if state == "cancelled":
        o["cancelled_at"] = _iso(placed + timedelta(minutes=rng.randint(5, 50)))
        o["cancel_reason"] = "customer"
        o["financial_status"] = "refunded"
        o["refunds"] = [_refund(o["total_price"], placed + timedelta(hours=2))]
        return
    shipped = placed + timedelta(days=1, hours=rng.randint(1, 8))
    tracking = f"1Z999AA1{rng.randrange(10**9, 10**10)}"
    delivered = state in ("delivered", "refunded_partly")
    o["fulfillment_status"] = "fulfilled"
    for x in o["line_items"]:
        x["fulfillment_status"] = "fulfilled"
    o["fulfillments"] = [
        {
            "id": o["id"] + 7,
            "status": "success",
            "created_at": _iso(shipped),
            "updated_at": _iso(shipped + timedelta(days=rng.randint(2, 5))),
            "tracking_company": CARRIER,
            "tracking_number": tracking,
            "tracking_url": TRACK_URL.format(n=tracking),
            "shipment_status": "delivered" if delivered else "in_transit",
            "line_items": [{"title": x["title"]} for x in o["line_items"]],
        }
    ]
    if state == "refunded_partly":
        o["financial_status"] = "partially_refunded"
        o["refunds"] = [_refund("10.00", shipped + timedelta(days=6))]


def _refund(amount: str, when: datetime) -> dict[str, Any]:
    return {
        "created_at": _iso(when),
        "transactions": [{"kind": "refund", "status": "success", "amount": amount}],
    }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def orders_json(orders: list[dict[str, Any]]) -> bytes:
    """The export file's bytes: one Admin API page, fixed layout."""
    return (json.dumps({"orders": orders}, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
