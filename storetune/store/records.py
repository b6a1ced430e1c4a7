"""Canonical records every stage shares: what ingest writes and build reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Variant:
    sku: str
    options: dict[str, str]  # option name -> value, e.g. {"Size": "M", "Color": "Moss"}
    price: Decimal
    compare_at_price: Decimal | None = None
    inventory_qty: int | None = None  # None when inventory is not tracked
    inventory_policy: str = "deny"  # "deny" stops selling at 0, "continue" backorders
    grams: int | None = None
    barcode: str | None = None

    @property
    def on_sale(self) -> bool:
        return self.compare_at_price is not None and self.compare_at_price > self.price

    @property
    def in_stock(self) -> bool:
        return self.inventory_qty is None or self.inventory_qty > 0

    @property
    def purchasable(self) -> bool:
        return self.in_stock or self.inventory_policy == "continue"

    @property
    def label(self) -> str:
        values = [v for v in self.options.values() if v and v != "Default Title"]
        return " / ".join(values) or "Default"


@dataclass
class Product:
    handle: str
    title: str
    description: str  # clean text, HTML removed
    vendor: str = ""
    product_type: str = ""
    category: str = ""  # taxonomy path, " > " separated
    tags: list[str] = field(default_factory=list)
    status: str = "active"  # active | draft | archived
    published: bool = True
    options: list[str] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # placeholder, boilerplate, broken_html
    source: str = ""  # file the record came from

    @property
    def active(self) -> bool:
        return self.status == "active" and self.published


@dataclass
class Message:
    role: str  # customer | agent | note (internal, never training text)
    text: str  # cleaned, PII replaced
    created_at: str = ""
    author: str = ""  # placeholder-safe display role, never a real name


@dataclass
class Ticket:
    source_id: str  # id in the source system, unique per source
    source: str  # zendesk, gorgias, …
    subject: str
    status: str  # normalised: open | pending | solved | closed
    messages: list[Message] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    channel: str = ""
    satisfaction: str | None = None
    created_at: str = ""
    human_only: bool = False
    human_only_reason: str | None = None

    @property
    def resolved(self) -> bool:
        return self.status in {"solved", "closed"}

    def public_messages(self) -> list[Message]:
        return [m for m in self.messages if m.role in {"customer", "agent"}]


# A helpdesk tag naming a ticket's phrasing family (the demo store writes it; real
# exports have none). The split keeps a family on one side.
PHRASING_TAG = "phrasing:"


def family_from_tags(tags: list[str]) -> str:
    """The phrasing family a ticket's `phrasing:<family>` tag names, or ""."""
    return next((t.removeprefix(PHRASING_TAG) for t in tags if t.startswith(PHRASING_TAG)), "")


@dataclass
class OrderLine:
    title: str
    quantity: int
    price: Decimal | None = None
    sku: str = ""
    variant_title: str = ""
    fulfillment_status: str = ""  # fulfilled | partial | unfulfilled | "" (unknown)


@dataclass
class Fulfillment:
    """One shipment of an order (Shopify: a fulfillment holds one tracking number)."""

    status: str = ""  # success | pending | open | cancelled | error | failure
    tracking_company: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    shipment_status: str = ""  # in_transit | out_for_delivery | delivered | failure | …
    created_at: str = ""  # when it shipped
    delivered_at: str = ""  # when shipment_status turned delivered, where known
    items: list[str] = field(default_factory=list)  # line titles it carries, where known


@dataclass
class Order:
    """An order as the store's order system exported it. Email, names and addresses
    are personal data: they live in store.db only and never reach a dataset."""

    name: str  # "#1001": what customers quote, the key an export is merged on
    email: str = ""
    customer_name: str = ""
    shipping_address: str = ""
    financial_status: str = ""  # pending | authorized | paid | partially_refunded | refunded…
    fulfillment_status: str = ""  # fulfilled | partial | unfulfilled / "" | restocked
    currency: str = ""
    total: Decimal | None = None
    shipping_method: str = ""
    created_at: str = ""
    paid_at: str = ""
    fulfilled_at: str = ""
    cancelled_at: str = ""
    cancel_reason: str = ""
    refunded_amount: Decimal | None = None
    updated_at: str = ""  # the export's own clock: an older export never overwrites a newer
    lines: list[OrderLine] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    source: str = ""
