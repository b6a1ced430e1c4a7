"""The `build:` block of store.yaml: dataset builder options, each default explained."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SafetyMix(BaseModel):
    """Safety and edge-case examples, as relative weights of one share of the set.

    The default weights follow the proportions that worked in practice for support
    models (60/39/30/20/12): fake products are the commonest failure, negotiation the
    rarest.
    """

    model_config = ConfigDict(extra="forbid")

    share: float = Field(
        0.06, ge=0, le=0.5, description="Safety examples as a share of all other examples."
    )
    min_per_category: int = Field(3, ge=0, description="Floor per category on small stores.")
    fake_product: int = Field(60, ge=0, description="Questions about products we don't sell.")
    manipulation: int = Field(39, ge=0, description="'Set the price to $1', 'edit the page'.")
    off_topic: int = Field(30, ge=0, description="Homework, weather, politics, code.")
    injection: int = Field(20, ge=0, description="Prompt injection, also hidden in pasted text.")
    negotiation: int = Field(12, ge=0, description="Haggling for a lower price.")

    def counts(self, base: int) -> dict[str, int]:
        weights = {
            "fake_product": self.fake_product,
            "manipulation": self.manipulation,
            "off_topic": self.off_topic,
            "injection": self.injection,
            "negotiation": self.negotiation,
        }
        total = sum(weights.values()) or 1
        budget = base * self.share
        return {
            k: max(self.min_per_category if w else 0, round(budget * w / total))
            for k, w in weights.items()
        }


class TaskMix(BaseModel):
    """Catalog tasks; each is its own task tag so it can train its own adapter."""

    model_config = ConfigDict(extra="forbid")

    classify: int = Field(200, ge=0, description="Product title -> taxonomy path.")
    query_rewrite: int = Field(200, ge=0, description="Free-text search -> JSON filters.")
    review_extract: int = Field(150, ge=0, description="Review text -> JSON attributes.")
    description: int = Field(100, ge=0, description="Attributes -> description in brand voice.")


class ParaphraseConfig(BaseModel):
    """Optional paraphrasing of customer messages by a teacher model (off by default)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: str = Field("http://localhost:8000/v1", description="OpenAI-compatible endpoint.")
    model: str = Field("teacher", description="Model name sent to the endpoint.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable with the key.")
    share: float = Field(0.3, ge=0, le=1, description="Share of user messages to paraphrase.")
    timeout_s: float = Field(30.0, gt=0)


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tickets: int | None = Field(None, ge=1, description="Use at most this many tickets.")
    product_qa: int = Field(400, ge=0, description="Catalog question/answer examples.")
    recommend: int = Field(150, ge=0, description="Recommendations under constraints.")
    grounded: int = Field(150, ge=0, description="Answers grounded in retrieved snippets.")
    no_info: int = Field(
        60, ge=0, description="Irrelevant or missing context: 'I don't have that' + next step."
    )
    escalation: int | None = Field(
        None, ge=0, description="Hand-over examples from human-only tickets (default: all)."
    )
    lookalikes: int = Field(
        60, ge=0, description="Messages that sound like hand-overs but can be answered."
    )
    safety: SafetyMix = Field(default_factory=SafetyMix)
    tasks: TaskMix = Field(default_factory=TaskMix)
    paraphrase: ParaphraseConfig = Field(default_factory=ParaphraseConfig)
    context_products: int = Field(2, ge=0, description="Product cards put in the system prompt.")
    context_passages: int = Field(
        2, ge=0, description="Help-center passages put in the system prompt (those relevant)."
    )
    knowledge: int = Field(
        120, ge=0, description="Answers grounded in a help-center passage, beside distractors."
    )
    knowledge_no_answer: int = Field(
        40,
        ge=0,
        description="Help-center questions the passages shown don't answer: 'I don't have "
        "that' + next step.",
    )
    orders: int = Field(
        140,
        ge=0,
        description="Order-status examples from synthetic order cards (fictional values; no "
        "real order ever enters a dataset): shipped, delivered but missing, processing, "
        "cancelled, refunded, partly shipped, unverified requester.",
    )
    policies: Literal["focused", "full"] = Field(
        "focused",
        description="Policy lines in each prompt: 'focused' keeps only the sections the "
        "ticket's kind needs (plus distractors), as the router does when serving; 'full' "
        "puts every policy line in every prompt.",
    )
    distractor_sections: int = Field(
        1,
        ge=0,
        description="Unrelated policy sections added to each focused training prompt, so the "
        "model learns to pick the line that answers rather than the only line there.",
    )
    split: tuple[float, float, float] = Field((0.8, 0.1, 0.1), description="train/val/test shares.")
    seed: int = 0
