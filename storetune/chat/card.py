"""Cards: the store facts a prompt shows, as objects.

A card is built from store records, rendered into the prompt's "Product information"
block, and handed as the same object to whatever checks a reply against the prompt:
the grounding guard at serve time, the hallucination metric in the eval (through the
dataset's meta.jsonl, `to_dict`/`from_dict`). Nothing reads a card back out of prompt
text, except `parse_cards` for prompts that were stored as text only (datasets built
before cards were recorded, hand-written eval sets, extra eval files).

Product cards, help-center passage cards and order cards (a verified customer's own
order), each a subclass with its own `kind`, `render` and fields, registered in `_KINDS`.
The prompt renders passages and orders in their own blocks (storetune.chat.prompt).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from storetune.chat.money import DEFAULT_CURRENCY, format_money
from storetune.facts import MONEY, money_amount
from storetune.store.records import Fulfillment, Order, OrderLine, Product, Variant

MAX_VARIANTS = 12
# A product whose variants form a full grid of its options is shown whole, up to this many
# variants: its options once and the stock as "all <status> except ...", fewer tokens
# than a dozen "label: status" pairs (the sample store's median card: 168 -> 139 tokens).
MAX_GRID = 60
MAX_FACTS = 6

IN_STOCK = "in stock"
OUT_OF_STOCK = "out of stock"
BACKORDER = "out of stock, backorder available"


def stock_status(v: Variant) -> str:
    """A variant's availability as cards state it."""
    if v.in_stock:
        return IN_STOCK
    return BACKORDER if v.inventory_policy == "continue" else OUT_OF_STOCK


@dataclass
class Card:
    """One block of facts in a prompt's context."""

    kind: ClassVar[str] = ""
    title: str

    def render(self, currency: str = DEFAULT_CURRENCY) -> str:
        raise NotImplementedError

    def stock(self) -> list[tuple[str, str]]:
        """(variant label, stock status) pairs the card states; none for most kinds."""
        return []

    def values(self) -> dict[str, set[str]]:
        """Order facts (order and tracking numbers, as storetune.facts normalizes them)
        the card vouches for; only an order card has any."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Card:
        kind = data.get("kind", ProductCard.kind)
        if kind not in _KINDS:
            raise ValueError(f"unknown card kind {kind!r}")
        return _KINDS[kind].from_dict(data)


@dataclass
class ProductCard(Card):
    """What a reply may quote about one product: its price line, the stock of its
    variants, and up to six "Name: value" facts of the description.

    Variants that form a full grid of the product's options (every size in every colour)
    are all shown, compactly: `options` names each option's values once and the stock
    line states the common status with its exceptions. Other products show the stock of
    their first dozen variants one by one."""

    kind: ClassVar[str] = "product"
    product_type: str = "product"
    prices: list[Decimal] = field(default_factory=list)  # one price, or lowest and highest
    was: Decimal | None = None  # the highest compare-at price while on sale
    variants: list[tuple[str, str]] = field(default_factory=list)  # (label, stock); "" label:
    #   a product without options, whose card states one "stock:" line
    facts: list[str] = field(default_factory=list)
    handle: str = ""
    # (option name, values) when the variants are a full grid shown compactly; else empty
    options: list[tuple[str, list[str]]] = field(default_factory=list)

    @classmethod
    def from_product(cls, p: Product, max_variants: int = MAX_VARIANTS) -> ProductCard:
        prices = sorted({v.price for v in p.variants})
        sale = [v for v in p.variants if v.on_sale]
        named = [v for v in p.variants if v.label != "Default"]
        options = _grid_options(named)
        if options and _compact_stock([(v.label, stock_status(v)) for v in named]):
            variants = [(v.label, stock_status(v)) for v in named]
        elif named:
            options = []
            named = named[:max_variants]
            variants = [(v.label, stock_status(v)) for v in named]
        else:
            variants = [("", stock_status(p.variants[0]))] if p.variants else []
        facts = [
            f for f in (ln.strip("- ").strip() for ln in p.description.splitlines()) if _is_fact(f)
        ]
        return cls(
            title=p.title,
            product_type=p.product_type or "product",
            prices=prices[:1] if len(prices) == 1 else prices[:1] + prices[-1:],
            was=max(v.compare_at_price for v in sale) if sale else None,
            variants=variants,
            facts=facts[:MAX_FACTS],
            handle=p.handle,
            options=options,
        )

    def price_text(self, currency: str = DEFAULT_CURRENCY) -> str:
        if not self.prices:
            return "not listed"
        text = "-".join(format_money(x, currency) for x in self.prices)
        if self.was is not None:
            text += f" (on sale, was {format_money(self.was, currency)}; final sale)"
        return text

    def render(self, currency: str = DEFAULT_CURRENCY) -> str:
        lines = [f"* {self.title} ({self.product_type})", f"  price: {self.price_text(currency)}"]
        compact = _compact_stock(self.variants) if self.options else None
        if compact:
            lines.append(
                "  options: " + "; ".join(f"{n} ({', '.join(v)})" for n, v in self.options)
            )
            lines.append(f"  stock: {compact}")
        elif self.variants and self.variants[0][0]:
            lines.append("  variants: " + "; ".join(f"{lab}: {s}" for lab, s in self.variants))
        elif self.variants:
            lines.append(f"  stock: {self.variants[0][1]}")
        if self.facts:
            lines.append("  " + "; ".join(self.facts))
        return "\n".join(lines)

    def stock(self) -> list[tuple[str, str]]:
        return list(self.variants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "product_type": self.product_type,
            "prices": [str(x) for x in self.prices],
            "was": None if self.was is None else str(self.was),
            "variants": [list(v) for v in self.variants],
            "facts": list(self.facts),
            "handle": self.handle,
            "options": [[n, list(v)] for n, v in self.options],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProductCard:
        was = data.get("was")
        return cls(
            title=data["title"],
            product_type=data.get("product_type", "product"),
            prices=[Decimal(x) for x in data.get("prices", [])],
            was=None if was is None else Decimal(was),
            variants=[(str(a), str(b)) for a, b in data.get("variants", [])],
            facts=list(data.get("facts", [])),
            handle=data.get("handle", ""),
            options=[(str(n), [str(x) for x in v]) for n, v in data.get("options", [])],
        )


def _is_fact(line: str) -> bool:
    """A short "Name: value" line; a description's prose with a colon in it ("Meet the
    Fireweed: a jacket our crew ...") is not one and would only cost prompt tokens."""
    name, _, value = line.partition(":")
    return bool(value.strip()) and 0 < len(name.split()) <= 3


_UNSAFE = re.compile(r"[,;:()]")


def _grid_options(variants: list[Variant]) -> list[tuple[str, list[str]]]:
    """Each option's values in first-seen order when `variants` are every combination of
    them (as a label spells it) and at most MAX_GRID; else []. Values with the card's
    separators in them keep the one-by-one form, which reads back without ambiguity."""
    if not variants or len(variants) > MAX_GRID:
        return []
    names = [n for n, v in variants[0].options.items() if v and v != "Default Title"]
    values: list[list[str]] = [[] for _ in names]
    labels = set()
    for v in variants:
        row = [v.options.get(n, "") for n in names]
        if not all(row) or " / ".join(row) != v.label:
            return []
        labels.add(v.label)
        for seen, x in zip(values, row, strict=True):
            if x not in seen:
                seen.append(x)
    size = 1
    for seen in values:
        size *= len(seen)
    unsafe = any(_UNSAFE.search(x) for x in [*names, *(x for seen in values for x in seen)])
    if size != len(variants) or len(labels) != size or unsafe:
        return []
    return list(zip(names, values, strict=True))


def _compact_stock(variants: list[tuple[str, str]]) -> str | None:
    """ "all in stock" or "all in stock except M / Rust: out of stock; ..." for a grid's
    variants when fewer than half are exceptions (else None: list them one by one)."""
    if not variants:
        return None
    statuses = [s for _, s in variants]
    common = max(dict.fromkeys(statuses), key=statuses.count)
    odd = [(lab, s) for lab, s in variants if s != common]
    if len(odd) * 2 >= len(variants) or len(odd) > MAX_VARIANTS:
        return None
    text = f"all {common}"
    return text + (" except " + "; ".join(f"{lab}: {s}" for lab, s in odd) if odd else "")


@dataclass
class PassageCard(Card):
    """One help-center passage: the article's title, the heading it sits under, its text
    and where it lives. Its lines carry no card markers ("* ", indent), so a prompt
    stored as text never reads a passage back as a product (parse_cards)."""

    kind: ClassVar[str] = "passage"
    heading: str = ""
    text: str = ""
    url: str = ""
    key: str = ""  # the passage's index key (source:id#chunk)
    updated_at: str = ""

    @classmethod
    def from_passage(cls, p: Any) -> PassageCard:
        """From a storetune.store.knowledge.Passage."""
        return cls(p.title, p.heading, p.text, p.url, p.key, p.updated_at)

    def label(self) -> str:
        return self.title if self.heading in ("", self.title) else f"{self.title} > {self.heading}"

    def render(self, currency: str = DEFAULT_CURRENCY) -> str:
        head = f"[{self.label()}]" + (f" {self.url}" if self.url else "")
        body = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        return "\n".join([head, *(ln[2:] if ln.startswith("* ") else ln for ln in body)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "heading": self.heading,
            "text": self.text,
            "url": self.url,
            "key": self.key,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassageCard:
        return cls(
            title=data["title"],
            heading=data.get("heading", ""),
            text=data.get("text", ""),
            url=data.get("url", ""),
            key=data.get("key", ""),
            updated_at=data.get("updated_at", ""),
        )


SHIPMENT_STATES = {
    "label_printed": "label created",
    "label_purchased": "label created",
    "confirmed": "with the carrier",
    "in_transit": "in transit",
    "out_for_delivery": "out for delivery",
    "attempted_delivery": "delivery attempted",
    "ready_for_pickup": "ready for pickup",
    "delivered": "delivered",
    "failure": "delivery failed",
}


@dataclass
class OrderCard(Card):
    """What a reply may say about one verified order: its status, items, each shipment's
    carrier, tracking number and link with shipped/delivered dates, and its refund state.

    Only serving builds one from a real order, and only for the customer it belongs to;
    training builds them from fictional values. Its lines carry no product-card markers
    ("* ", indent), so a prompt stored as text never reads it back as a product."""

    kind: ClassVar[str] = "order"
    number: str = ""  # "#1001"
    placed: str = ""  # ISO date
    status: str = ""  # processing | shipped | partially shipped | delivered | cancelled | refunded
    items: list[tuple[str, int, str]] = field(default_factory=list)  # title, qty, state
    shipments: list[dict[str, str]] = field(default_factory=list)  # carrier, tracking_number,
    #   tracking_url, shipped, delivered, state
    payment: str = ""  # paid | pending | refunded | partially refunded …
    refund: str = ""  # amount refunded as the card writes it ("$20.00"); "" none
    cancelled: str = ""  # ISO date
    currency: str = ""

    @classmethod
    def from_order(cls, o: Order) -> OrderCard:
        shipments = [_shipment(f) for f in o.fulfillments]
        status = order_status(o)
        return cls(
            title=f"Order {o.name}",
            number=o.name,
            placed=o.created_at[:10],
            status=status,
            items=[(ln.title, ln.quantity, _item_state(o, ln, status)) for ln in o.lines],
            shipments=shipments,
            payment=o.financial_status.replace("_", " "),
            refund=str(o.refunded_amount) if o.refunded_amount else "",
            cancelled=o.cancelled_at[:10],
            currency=o.currency,
        )

    def render(self, currency: str = DEFAULT_CURRENCY) -> str:
        lines = [f"{self.title}, placed {self.placed or 'date unknown'}: {self.status}"]
        if self.items:
            lines.append("Items: " + "; ".join(f"{q} x {t} ({s})" for t, q, s in self.items))
        for n, s in enumerate(self.shipments, 1):
            lines.append(f"Shipment {n}: " + _shipment_text(s))
        money = self.currency or currency
        payment = f"Payment: {self.payment or 'unknown'}"
        if self.refund:
            payment += f"; refunded {format_money(Decimal(self.refund), money)}"
        lines.append(payment)
        if self.cancelled:
            lines.append(f"Cancelled on {self.cancelled}")
        return "\n".join(lines)

    def values(self) -> dict[str, set[str]]:
        """The order facts this card vouches for, as storetune.facts normalizes them."""
        return {
            "order_number": {self.number.lstrip("#").upper()},
            "tracking_number": {
                re.sub(r"[\s#]", "", s["tracking_number"]).upper()
                for s in self.shipments
                if s.get("tracking_number")
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "number": self.number,
            "placed": self.placed,
            "status": self.status,
            "items": [list(i) for i in self.items],
            "shipments": [dict(s) for s in self.shipments],
            "payment": self.payment,
            "refund": self.refund,
            "cancelled": self.cancelled,
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderCard:
        return cls(
            title=data["title"],
            number=data.get("number", ""),
            placed=data.get("placed", ""),
            status=data.get("status", ""),
            items=[(str(t), int(q), str(s)) for t, q, s in data.get("items", [])],
            shipments=[{str(k): str(v) for k, v in s.items()} for s in data.get("shipments", [])],
            payment=data.get("payment", ""),
            refund=data.get("refund", ""),
            cancelled=data.get("cancelled", ""),
            currency=data.get("currency", ""),
        )


def order_status(o: Order) -> str:
    """One word or two for where an order stands, in the order a customer cares."""
    if o.cancelled_at:
        return "cancelled"
    if o.financial_status == "refunded" and not o.fulfillments:
        return "refunded"
    if not o.fulfillments:
        return "processing (not shipped yet)"
    open_lines = any(ln.fulfillment_status not in ("fulfilled", "") for ln in o.lines)
    if o.fulfillment_status == "partial" or open_lines:
        return "partially shipped"
    if all(f.shipment_status == "delivered" for f in o.fulfillments):
        return "delivered"
    return "shipped"


def _item_state(o: Order, ln: OrderLine, status: str) -> str:
    """Where one line stands: the order's state unless the order is partly shipped, then
    what the line's own status or a shipment's item list says."""
    if status == "processing (not shipped yet)":
        return "not shipped yet"
    if status != "partially shipped":
        return status
    carried = {t for f in o.fulfillments for t in f.items}
    if ln.fulfillment_status == "fulfilled" or ln.title in carried:
        return "shipped"
    if carried or any(x.fulfillment_status for x in o.lines):
        return "not shipped yet"
    return "shipping state not recorded"


def _shipment(f: Fulfillment) -> dict[str, str]:
    return {
        "carrier": f.tracking_company,
        "tracking_number": f.tracking_number,
        "tracking_url": f.tracking_url,
        "shipped": f.created_at[:10],
        "delivered": f.delivered_at[:10],
        "state": SHIPMENT_STATES.get(f.shipment_status, f.shipment_status.replace("_", " ")),
    }


def _shipment_text(s: dict[str, str]) -> str:
    parts = [s.get("carrier") or "carrier not recorded"]
    if s.get("tracking_number"):
        parts.append(f"tracking number {s['tracking_number']}")
    if s.get("tracking_url"):
        parts.append(f"tracking link {s['tracking_url']}")
    if s.get("shipped"):
        parts.append(f"shipped {s['shipped']}")
    if s.get("delivered"):
        parts.append(f"delivered {s['delivered']}")
    elif s.get("state"):
        parts.append(s["state"])
    return ", ".join(parts)


_KINDS: dict[str, type[Card]] = {
    ProductCard.kind: ProductCard,
    PassageCard.kind: PassageCard,
    OrderCard.kind: OrderCard,
}


def cards_from_dicts(data: list[dict[str, Any]] | None) -> list[Card] | None:
    """Cards as a dataset's meta.jsonl records them ("cards"); None when it has none
    (a dataset built before cards were recorded: read the prompt with parse_cards)."""
    return None if data is None else [Card.from_dict(d) for d in data]


def render_cards(cards: list[Card], currency: str = DEFAULT_CURRENCY) -> str:
    return "\n".join(c.render(currency) for c in cards)


# ---- prompts stored as text only ------------------------------------------------------------

_HEAD = re.compile(r"^\* (.+?) \(([^()]*)\)\s*$")
_SALE = " (on sale, was "


def parse_cards(system: str) -> list[ProductCard]:
    """Product cards read back from a rendered prompt (the `ProductCard.render` format).

    Only for prompts that exist as text alone: datasets built before meta.jsonl carried
    the cards, the hand-labeled eval set, extra eval files. Everything this project
    renders passes the card objects along instead.
    """
    cards: list[ProductCard] = []
    for line in system.splitlines():
        head = _HEAD.match(line)
        if head:
            cards.append(ProductCard(head.group(1), head.group(2)))
        elif cards and line.startswith("  "):
            _read_line(cards[-1], line.strip())
    return cards


_OPTION = re.compile(r"([^;()]+?) \(([^()]*)\)")


def _read_grid(card: ProductCard, text: str) -> None:
    """The variants of a compact card: every combination of its options, in the common
    status but for the listed exceptions."""
    common, _, rest = text.partition(" except ")
    odd = {}
    for part in rest.split(";") if rest else []:
        label, _, status = part.rpartition(":")
        odd[label.strip()] = status.strip()
    labels = [" / ".join(row) for row in itertools.product(*(v for _, v in card.options))]
    card.variants = [(lab, odd.get(lab, common.strip())) for lab in labels]


def _read_line(card: ProductCard, body: str) -> None:
    if body.startswith("price:"):
        price, _, was = body[len("price:") :].partition(_SALE)
        card.prices = [money_amount(m) for m in MONEY.finditer(price)]
        found = [money_amount(m) for m in MONEY.finditer(was)]
        card.was = found[0] if found else None
    elif body.startswith("variants:"):
        for part in body[len("variants:") :].split(";"):
            label, _, status = part.rpartition(":")
            if label.strip():
                card.variants.append((label.strip(), status.strip()))
    elif body.startswith("options:"):
        card.options = [
            (m.group(1).strip(), [x.strip() for x in m.group(2).split(",")])
            for m in _OPTION.finditer(body[len("options:") :])
        ]
    elif body.startswith("stock: all ") and card.options:
        _read_grid(card, body[len("stock: all ") :])
    elif body.startswith("stock:"):
        card.variants.append(("", body[len("stock:") :].strip()))
    else:
        card.facts += [f.strip() for f in body.split(";") if f.strip()]
