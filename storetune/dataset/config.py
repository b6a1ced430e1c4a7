"""Dataset builder options (store.yaml `build:`), each default explained."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tickets: int | None = Field(None, ge=1, description="Use at most this many tickets.")
    product_qa: int = Field(400, ge=0, description="Catalog question/answer examples.")
    escalation: int | None = Field(
        None, ge=0, description="Hand-over examples from human-only tickets (default: all)."
    )
    context_products: int = Field(2, ge=0, description="Product cards put in the system prompt.")
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train/val/test shares.")
    seed: int = 0
