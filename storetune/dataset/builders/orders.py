"""Order-status examples from synthetic order cards: the model learns to answer from an
order card without ever training on anyone's order.

Each example's card is an OrderCard (the renderer serving uses) filled with fictional
values: made-up order and tracking numbers, dates and the store's own product titles.
Replies quote only what the card and the policies say. Categories: shipped, delivered
but missing (the damaged/missing policy, handed to a person who arranges the remedy),
processing, cancelled, refunded, partly shipped, and an unverified requester (no card:
ask for the order number and the checkout email, reveal nothing). The build checks
that no value of the store's real orders is in a dataset (`real_order_values`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from storetune.chat.card import OrderCard
from storetune.chat.prompt import SystemPrompt, render_system_prompt
from storetune.dataset.builders.phrasing import keep_words, phrasing_family, pick, vary
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example

CATEGORIES = (
    "shipped",
    "delivered_missing",
    "processing",
    "cancelled",
    "refunded",
    "partial",
    "unverified",
)
_CARRIERS = (
    ("UPS", "https://www.ups.com/track?tracknum={n}"),
    ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}"),
    ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={n}"),
)
_ASK = {
    "shipped": [
        "Where is my order {num}?",
        "has order {num} shipped yet",
        "Can I get the tracking for order {num}?",
        "What's the status of my order {num}?",
        "Any update on {num}? I ordered last week",
    ],
    "delivered_missing": [
        "My order {num} says delivered but I never received it",
        "Tracking for {num} shows delivered, there's nothing at my door",
        "order {num} marked as delivered but no package arrived??",
    ],
    "processing": [
        "When will order {num} ship?",
        "I placed order {num}, has it gone out yet?",
        "Is my order {num} on its way?",
    ],
    "cancelled": [
        "What happened to my order {num}?",
        "Is order {num} still coming?",
        "Did my cancellation of {num} go through?",
    ],
    "refunded": [
        "Was order {num} refunded?",
        "Where's my refund for order {num}?",
        "Checking on the refund for {num}",
    ],
    "partial": [
        "I only got part of order {num}, where's the rest?",
        "Order {num} arrived with something missing from the box - is more coming?",
        "Where is the rest of my order {num}?",
    ],
}
_ASK["unverified"] = _ASK["shipped"] + _ASK["delivered_missing"][:1]


def build_order_examples(
    ctx: BuildContext, avoid: dict[str, set[str]] | None = None
) -> list[Example]:
    """`ctx.bcfg.orders` examples spread over CATEGORIES. `avoid` holds the store's real
    order and tracking numbers (as storetune.facts normalizes them); a made-up value
    that happens to equal one is drawn again."""
    n = ctx.bcfg.orders
    titles = [p.title for p in ctx.active_products] or ["Gift Card"]
    rng = ctx.rng("orders")
    avoid = avoid or {}
    out = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        card = _card(rng, category, titles, avoid)
        out.append(_example(ctx, rng, category, card))
    return out


# ---- fictional cards -----------------------------------------------------------------------


def _fresh(rng: random.Random, make: Callable[[], str], taken: set[str]) -> str:
    while True:
        value = make()
        if value.lstrip("#").upper() not in taken:
            return value


def _tracking(rng: random.Random, carrier: str) -> str:
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    if carrier == "USPS":
        return "9400" + "".join(rng.choice("0123456789") for _ in range(18))
    return "".join(rng.choice("0123456789") for _ in range(12))


def _card(
    rng: random.Random, category: str, titles: list[str], avoid: dict[str, set[str]]
) -> OrderCard:
    number = _fresh(rng, lambda: f"#{rng.randint(1001, 99999)}", avoid.get("order_number", set()))
    placed = date(2025, 1, 1) + timedelta(days=rng.randrange(600))
    k = 2 if category == "partial" else rng.choice([1, 1, 2])
    picked = rng.sample(titles, min(len(titles), k))
    if len(picked) < k:  # a one-product store: the second line is a gift card
        picked.append("Gift Card")
    items = [(t, rng.choice([1, 1, 1, 2]), "shipped") for t in picked]
    card = OrderCard(
        title=f"Order {number}",
        number=number,
        placed=placed.isoformat(),
        status="shipped",
        items=items,
        payment="paid",
        currency="",
    )
    carrier, url = rng.choice(_CARRIERS)
    tn = _fresh(rng, lambda: _tracking(rng, carrier), avoid.get("tracking_number", set()))
    shipped = placed + timedelta(days=1)
    shipment = {
        "carrier": carrier,
        "tracking_number": tn,
        "tracking_url": url.format(n=tn),
        "shipped": shipped.isoformat(),
        "delivered": "",
        "state": "in transit",
    }
    _SHAPE[category](card, shipment, shipped, rng)
    return card


def _shape_shipped(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    s["state"] = rng.choice(["in transit", "in transit", "out for delivery"])
    card.shipments = [s]


def _shape_delivered(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    s["delivered"] = (shipped + timedelta(days=rng.randint(2, 5))).isoformat()
    s["state"] = "delivered"
    card.status = "delivered"
    card.items = [(t, q, "delivered") for t, q, _ in card.items]
    card.shipments = [s]


def _shape_processing(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    card.status = "processing (not shipped yet)"
    card.items = [(t, q, "not shipped yet") for t, q, _ in card.items]


def _shape_cancelled(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    card.status = "cancelled"
    card.cancelled = card.placed
    card.payment = "refunded"
    card.items = [(t, q, "cancelled") for t, q, _ in card.items]


def _shape_refunded(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    card.status = "refunded"
    card.payment = "refunded"
    card.refund = f"{rng.randint(20, 240)}.00"
    card.items = [(t, q, "refunded") for t, q, _ in card.items]


def _shape_partial(card: OrderCard, s: dict, shipped: date, rng: random.Random) -> None:
    card.status = "partially shipped"
    (first, q1, _), (second, q2, _) = card.items[:2]
    card.items = [(first, q1, "shipped"), (second, q2, "not shipped yet")]
    card.shipments = [s]


_SHAPE = {
    "shipped": _shape_shipped,
    "delivered_missing": _shape_delivered,
    "processing": _shape_processing,
    "cancelled": _shape_cancelled,
    "refunded": _shape_refunded,
    "partial": _shape_partial,
    "unverified": _shape_shipped,  # a real order exists; the requester just can't see it
}


# ---- replies --------------------------------------------------------------------------------


def _reply(ctx: BuildContext, category: str, c: OrderCard, rng: random.Random) -> str:
    s = c.shipments[0] if c.shipments else {}
    num = c.number
    if category == "unverified":
        return pick(rng, [
            "I'm happy to check on an order. To keep order details private, I can only share "
            "them once the order number and the email address used at checkout match. Please "
            "reply with your order number from the email address you used at checkout.",
            "Happy to look into that! For privacy, I need the order number together with the "
            "email address the order was placed with. Could you reply from that address with "
            "the order number?",
        ])  # fmt: skip
    if category == "shipped":
        return (
            f"Your order {num} shipped on {s['shipped']} with {s['carrier']} and is {s['state']}. "
            f"The tracking number is {s['tracking_number']}, and you can follow it here: "
            f"{s['tracking_url']}"
        )
    if category == "delivered_missing":
        d = ctx.cfg.policies.damaged_items
        return (
            f"{ctx.marker} I'm sorry your parcel hasn't turned up. {s['carrier']} shows order {num} "
            f"as delivered on {s['delivered']} (tracking number {s['tracking_number']}). Please "
            "check around your door and with neighbours first. Missing items must be reported "
            f"within {d.report_within_days} days, and a teammate will follow up to arrange "
            f"{d.remedy.split(';')[0]}."
        )
    if category == "processing":
        days = ctx.cfg.policies.shipping.processing_days
        when = f"Orders ship within {days} business day(s), and " if days else ""
        return (
            f"Order {num} was placed on {c.placed} and hasn't shipped yet. {when}"
            "you'll get the tracking number by email as soon as it does."
        )
    if category == "cancelled":
        return (
            f"Order {num} was cancelled on {c.cancelled}, so nothing from it will ship. The "
            "payment was refunded to the original payment method."
        )
    if category == "refunded":
        r = ctx.cfg.policies.returns
        return (
            f"Yes, order {num} was refunded: {ctx.money(float(c.refund))} back to the original "
            f"payment method. Refunds take up to {r.refund_days} business days to show up."
        )
    first, rest = c.items[0][0], c.items[1][0]
    return (
        f"Part of order {num} is on its way: the {first} shipped on {s['shipped']} with "
        f"{s['carrier']}, tracking number {s['tracking_number']} ({s['tracking_url']}). The "
        f"{rest} hasn't shipped yet; you'll get a separate tracking email when it does."
    )


def _example(ctx: BuildContext, rng: random.Random, category: str, card: OrderCard) -> Example:
    i = rng.randrange(len(_ASK[category]))
    template = _ASK[category][i]
    num = card.number if rng.random() < 0.7 else card.number.lstrip("#")
    message = vary(template.format(num=num), rng, keep_words(num))
    shown = [] if category == "unverified" else [card]
    system = ctx.system_with([]) if not shown else _with_order(ctx, card)
    group = f"synthetic:order:{category}:{i}"
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": message},
            {"role": "assistant", "content": _reply(ctx, category, card, rng)},
        ],
        task="order",
        category=category,
        builder="orders",
        source_ids=[group],
        group=group,
        family=phrasing_family(template),
        cards=list(shown),
    )


def _with_order(ctx: BuildContext, card: OrderCard) -> SystemPrompt:
    return render_system_prompt(ctx.cfg, [card])
