"""The reply to "where is my order?" once the requester is verified: read off the card.

An order's status is a lookup, not a judgement: the card holds every fact the reply
needs (status, dates, carrier, tracking), and the shipping and refund policies say the
rest. Generating it lets a small model garble a tracking number or a date; the demo's
eval measured the fine-tuned 135M model stating the status right on 1 of 28 real
orders. So routing answers a plain status question from the card, in fixed words like
the "send your order number" reply, and keeps the model for what needs judgement (a
parcel marked delivered that never came, a change to the order, a thread that goes on).

Every fact here comes from the card or store.yaml; nothing is inferred.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from storetune.chat.card import OrderCard
from storetune.chat.money import format_money, store_currency
from storetune.config import StoreConfig
from storetune.models.router import RouterPrediction

STATUS_KIND = "order_status"  # the router's kind for "where is my order?"


def asks_status(reading: RouterPrediction | None) -> bool:
    """A plain status question, as the router reads it. Without a router (a version
    trained before routers) nothing tells a status question from "it arrived broken",
    so the model answers from the card as before."""
    return reading is not None and reading.label == STATUS_KIND


def status_reply(card: OrderCard, cfg: StoreConfig) -> str:
    """What a verified customer reads about their order, by its status."""
    kind = {
        "processing (not shipped yet)": _processing,
        "shipped": _shipped,
        "delivered": _delivered,
        "cancelled": _cancelled,
        "refunded": _refunded,
        "partially shipped": _partial,
    }.get(card.status, _unknown)
    return kind(card, cfg)


def _processing(card: OrderCard, cfg: StoreConfig) -> str:
    days = cfg.policies.shipping.processing_days
    when = f"Orders ship within {days} business day(s), and " if days else ""
    placed = f" was placed on {card.placed} and" if card.placed else ""
    return (
        f"Order {card.number}{placed} hasn't shipped yet. {when}"
        "you'll get the tracking number by email as soon as it does."
    )


def _shipped(card: OrderCard, cfg: StoreConfig) -> str:
    if len(card.shipments) == 1:
        s = card.shipments[0]
        return f"Your order {card.number} shipped{_on(s)}{_with(s)}.{_latest(s)}{_tracking(s)}"
    parts = [f"Your order {card.number} shipped in {len(card.shipments)} parcels."]
    parts += [
        f"Parcel {n}{_went(s)}.{_latest(s)}{_tracking(s)}" for n, s in enumerate(card.shipments, 1)
    ]
    return " ".join(parts)


def _delivered(card: OrderCard, cfg: StoreConfig) -> str:
    s = card.shipments[-1] if card.shipments else {}
    when = f" on {s['delivered']}" if s.get("delivered") else ""
    by = f"{s['carrier']} shows" if s.get("carrier") else "Tracking shows"
    number = f" (tracking number {s['tracking_number']})" if s.get("tracking_number") else ""
    days = cfg.policies.damaged_items.report_within_days
    return (
        f"{by} order {card.number} as delivered{when}{number}. If it hasn't reached you, "
        "please check around your door and with neighbours, then reply here"
        + (f" within {days} days" if days else "")
        + " and a teammate will look into it."
    )


def _cancelled(card: OrderCard, cfg: StoreConfig) -> str:
    when = f" on {card.cancelled}" if card.cancelled else ""
    text = f"Order {card.number} was cancelled{when}, so nothing from it will ship."
    if card.refund:
        text += f" {_money(card, cfg)} was refunded to the original payment method."
    elif "refund" in card.payment:
        text += " The payment was refunded to the original payment method."
    return text


def _refunded(card: OrderCard, cfg: StoreConfig) -> str:
    amount = f": {_money(card, cfg)} back to the original payment method" if card.refund else ""
    days = cfg.policies.returns.refund_days
    wait = f" Refunds take up to {days} business days to show up." if days else ""
    return f"Order {card.number} was refunded{amount}.{wait}"


def _partial(card: OrderCard, cfg: StoreConfig) -> str:
    sent = [t for t, _, state in card.items if state == "shipped"]
    waiting = [t for t, _, state in card.items if state == "not shipped yet"]
    what = f": the {_and(sent)}" if sent else ""
    if len(card.shipments) == 1:
        s = card.shipments[0]
        went = " shipped" + _on(s) + _with(s) if sent else _went(s)
        parts = [
            f"Part of order {card.number} is on its way{what}{went}.{_latest(s)}{_tracking(s)}"
        ]
    else:
        parts = [f"Part of order {card.number} is on its way{what}."]
        parts += [
            f"Parcel {n}{_went(s)}.{_latest(s)}{_tracking(s)}"
            for n, s in enumerate(card.shipments, 1)
        ]
    if waiting:
        verb = "hasn't" if len(waiting) == 1 else "haven't"
        parts.append(
            f"The {_and(waiting)} {verb} shipped yet; you'll get a separate tracking email "
            "when it does."
        )
    return " ".join(parts)


def _unknown(card: OrderCard, cfg: StoreConfig) -> str:
    return f"Order {card.number} is {card.status or 'recorded'}." + (
        _tracking(card.shipments[0]) if card.shipments else ""
    )


# ---- pieces ------------------------------------------------------------------------------------


def _on(s: dict[str, str]) -> str:
    return f" on {s['shipped']}" if s.get("shipped") else ""


def _with(s: dict[str, str]) -> str:
    return f" with {s['carrier']}" if s.get("carrier") else ""


def _went(s: dict[str, str]) -> str:
    """' shipped on 2026-05-01 with UPS' (what the card knows of one parcel)."""
    return f" shipped{_on(s)}{_with(s)}"


def _tracking(s: dict[str, str]) -> str:
    if not s.get("tracking_number"):
        return ""
    link = f" ({s['tracking_url']})" if s.get("tracking_url") else ""
    return f" The tracking number is {s['tracking_number']}{link}."


def _latest(s: dict[str, str]) -> str:
    """The carrier's last scan as the card words it ('in transit', 'label created')."""
    state = s.get("state", "")
    return f" The carrier's latest status: {state}." if state and state != "shipped" else ""


def _and(titles: list[str]) -> str:
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + f" and {titles[-1]}"


def _money(card: OrderCard, cfg: StoreConfig) -> str:
    try:
        return format_money(Decimal(card.refund), card.currency or store_currency(cfg))
    except (InvalidOperation, ValueError):
        return card.refund
