"""What a grader reads (a case and the store it belongs to) and what it returns (a grade)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from storetune.chat.card import Card, parse_cards

VERDICTS = ("correct", "partial", "wrong")
SCORE = {"correct": 3, "partial": 2, "wrong": 1}
VERDICT_OF_SCORE = {v: k for k, v in SCORE.items()}


@dataclass
class Case:
    """One held-out example: the conversation up to the last customer turn, and the gold reply."""

    conversation: list[dict]  # system message first, ends with a user turn
    gold: str
    task: str
    category: str
    source: str = "test"  # test split or the extra file it came from
    cards: list[Card] | None = None  # the cards the system prompt shows (dataset meta.jsonl)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.conversation).encode()).hexdigest()[:20]

    @property
    def system(self) -> str:
        return "\n".join(m["content"] for m in self.conversation if m["role"] == "system")

    @property
    def customer(self) -> str:
        """Everything the customer wrote (their numbers and names are not hallucinations)."""
        return "\n".join(m["content"] for m in self.conversation if m["role"] == "user")

    @property
    def store_side(self) -> str:
        """What the store's side said: the system prompt and any earlier agent turns."""
        return "\n".join(m["content"] for m in self.conversation if m["role"] != "user")

    @property
    def evidence(self) -> str:
        """Everything the model was shown: policies, product cards, every earlier turn."""
        return "\n".join(m["content"] for m in self.conversation)

    @property
    def context_cards(self) -> list[Card]:
        """The cards the model was shown: from the dataset when it recorded them, else
        read back from the prompt text (hand-written sets, older datasets, extra files)."""
        return list(self.cards) if self.cards is not None else list(parse_cards(self.system))

    @property
    def last_user(self) -> str:
        return next(m["content"] for m in reversed(self.conversation) if m["role"] == "user")


@dataclass(frozen=True)
class StoreFacts:
    """Store-wide knowledge a grader needs beyond the case itself."""

    marker: str = "[ESCALATE]"
    catalog: tuple[str, ...] = ()  # every product title, to spot real products outside the context
    allowed: tuple[str, ...] = ()  # strings replies may always use: the website, contact email

    @classmethod
    def from_config(cls, cfg, titles: list[str]) -> StoreFacts:
        """From a StoreConfig and the catalog titles in store.db."""
        allowed = [cfg.brand.website] if cfg.brand.website else []
        if cfg.policies.contact:
            allowed += [cfg.policies.contact.email, cfg.policies.contact.phone]
        return cls(cfg.escalation.marker, tuple(titles), tuple(a for a in allowed if a))


@dataclass
class Grade:
    """The verdict on one reply, with the reasons a person can check."""

    verdict: str  # correct | partial | wrong
    task: str
    category: str
    reasons: list[str] = field(default_factory=list)
    escalate_gold: bool = False
    escalate_pred: bool = False
    refused: bool = False  # declined or handed over (safety) / generic refusal (elsewhere)
    over_refusal: bool = False  # refused a legitimate question
    complied: bool = False  # did what a manipulation / injection / haggle asked
    hallucinations: list[str] = field(default_factory=list)  # "kind: text"
    missing: list[str] = field(default_factory=list)
    contradicted: list[str] = field(default_factory=list)
    task_metrics: dict = field(default_factory=dict)  # catalog tasks: class, fields, coverage…

    @property
    def score(self) -> int:
        return SCORE[self.verdict]

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "score": self.score,
            "reasons": self.reasons,
            "escalate_gold": self.escalate_gold,
            "escalate_pred": self.escalate_pred,
            "refused": self.refused,
            "over_refusal": self.over_refusal,
            "complied": self.complied,
            "hallucinations": self.hallucinations,
            "missing": self.missing,
            "contradicted": self.contradicted,
            "task_metrics": self.task_metrics,
        }
