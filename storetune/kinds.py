"""The kinds of ticket the router tells apart, and what each kind needs.

One table shared by the dataset (which labels it writes), router training (which
label an example teaches), the focused prompt (which policy sections a kind needs)
and routing (which kinds must go to a person). The labels come from the dataset's
own task/category metadata, so nobody labels tickets by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    sections: tuple[str, ...] = ()  # policy sections its reply needs (chat prompt sections)
    hand_over: bool = False  # a person must take it, whatever the draft says
    safety: bool = False  # a request to refuse or deflect


# Policy section names are those of the system prompt renderer's policy lines.
KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("returns", ("returns", "sale_items")),
        Kind("sale_return", ("sale_items", "returns")),
        Kind("exchange", ("exchanges", "sale_items")),
        Kind("damaged_missing", ("damaged",)),
        Kind("shipping", ("shipping", "international")),
        Kind("order_status", ("order_status", "shipping")),
        Kind("cancellation", ("cancellations",)),
        Kind("address_change", ("address_changes",)),
        Kind("discount_price_match", ("price_match",)),
        Kind("loyalty", ("loyalty",)),
        Kind("size_guide", ("sizing",)),
        Kind("product_question", ("care", "sizing")),
        Kind("recommendation", ("shipping",)),
        Kind("human_request", hand_over=True),
        Kind("complaint", hand_over=True),
        Kind("fraud_chargeback", hand_over=True),
        Kind("legal_threat", hand_over=True),
        Kind("safety_incident", hand_over=True),
        Kind("fake_product", safety=True),
        Kind("manipulation", safety=True),
        Kind("off_topic", safety=True),
        Kind("injection", safety=True),
        Kind("negotiation", ("price_match",), safety=True),
    ]
}

HAND_OVER = tuple(k.name for k in KINDS.values() if k.hand_over)

# Support categories whose name differs from the kind they teach.
_SUPPORT_ALIASES = {"complaint_escalate": "complaint"}
# Tasks whose every example asks about a product (the category says which fact).
_PRODUCT_TASKS = ("product_qa", "grounded", "no_info", "lookalike")


def kind_of(task: str, category: str) -> str | None:
    """The router label an example of this task/category teaches; None when it teaches
    none (catalog tasks have their own adapters)."""
    if task == "support":
        name = _SUPPORT_ALIASES.get(category, category)
        return name if name in KINDS else None
    if task in ("escalation", "safety"):
        return category if category in KINDS else None
    if task in _PRODUCT_TASKS:
        # lookalikes name a hand-over topic but ask an ordinary product question
        return "product_question"
    if task == "recommend":
        return "recommendation"
    if task == "order":  # synthetic order cards: a delivered parcel that never came is
        # the damaged/missing kind, every other order question is order status
        return "damaged_missing" if category == "delivered_missing" else "order_status"
    return None


def sections_for(kinds: list[str]) -> list[str]:
    """The policy sections a reply to these kinds needs, in the kinds' order, once each."""
    out: list[str] = []
    for name in kinds:
        for s in KINDS[name].sections if name in KINDS else ():
            if s not in out:
                out.append(s)
    return out


def focus(ranked: list[tuple[str, float]], sure: float = 0.6, floor: float = 0.1) -> list[str]:
    """The kinds whose policy lines a reply gets, from the router's ranked reading.

    The top kind always; when the router is not sure of it (p < `sure`), the next
    kinds too while each has at least `floor`, up to three in all, so a ticket the
    router half-understands still finds its line in the prompt."""
    if not ranked:
        return []
    chosen = [ranked[0][0]]
    if ranked[0][1] < sure:
        chosen += [k for k, p in ranked[1:3] if p >= floor]
    return chosen
