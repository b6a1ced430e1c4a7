"""The `policies:` block of store.yaml: the rules rendered into every system prompt.

A merchant's own rules file is mapped onto this schema by `storetune.config.rules`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Returns(_Strict):
    window_days: int = Field(30, ge=0, description="Days after delivery a return is accepted.")
    condition: str = "unused, with original tags"
    sale_items_final: bool = Field(True, description="Sale (discounted) items cannot be returned.")
    refund_days: int = Field(5, ge=0, description="Business days to refund once received.")
    return_shipping: str = "free prepaid return label"


class Exchanges(_Strict):
    allowed: bool = True
    window_days: int = Field(30, ge=0)
    notes: str = ""


class DamagedItems(_Strict):
    report_within_days: int = Field(7, ge=0, description="Days to report damage or a missing item.")
    remedy: str = "a free replacement or a full refund; a photo of the damage is needed"


class ShippingZone(_Strict):
    name: str
    regions: list[str] = []
    cost: float = Field(ge=0, description="Standard shipping cost in the store currency.")
    days_min: int = Field(ge=0)
    days_max: int = Field(ge=0)


class Shipping(_Strict):
    currency: str = "USD"
    free_threshold: float | None = Field(
        None, description="Order value for free standard shipping."
    )
    processing_days: int = Field(1, ge=0, description="Business days before an order ships.")
    zones: list[ShippingZone] = []


class Loyalty(_Strict):
    name: str
    earn: str
    redeem: str


class Contact(_Strict):
    email: str
    phone: str = ""
    hours: str = ""


class PolicyChange(_Strict):
    date: str = Field(description="ISO date the change took effect.")
    field: str = Field(description="Dotted policy field, e.g. returns.window_days.")
    old: Any
    new: Any


class Policies(BaseModel):
    # Unknown keys are kept (extra="allow") and rendered as free text rules.
    model_config = ConfigDict(extra="allow")

    returns: Returns = Returns()
    exchanges: Exchanges = Exchanges()
    damaged_items: DamagedItems = DamagedItems()
    shipping: Shipping = Shipping()
    loyalty: Loyalty | None = None
    size_guide: str = ""
    care: str = ""
    price_match: str = ""
    cancellations: str = ""
    address_changes: str = ""
    order_status: str = ""
    contact: Contact | None = None
    changes: list[PolicyChange] = Field(
        default_factory=list,
        description="Past policy changes, newest last (used to spot stale answers).",
    )

    def extra_rules(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
