"""One training example plus the metadata that travels in meta.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field

from storetune.chat.card import Card


@dataclass
class Example:
    messages: list[dict]  # OpenAI chat format, system message first
    task: str  # support | product_qa | escalation | …
    category: str  # intent or question kind
    builder: str
    source_ids: list[str] = field(default_factory=list)
    group: str = ""  # examples sharing a group never straddle splits
    cards: list[Card] | None = None  # what the system prompt shows; None: not known

    def key(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] != "system")


# Task tags in meta.jsonl. The support adapter trains on the conversational tasks;
# each catalog task has its own tag so it can train its own adapter.
SUPPORT_TASKS = (
    "support",  # replies from resolved tickets, category = intent
    "escalation",  # hand-overs with the marker, category = reason
    "lookalike",  # sounds like a hand-over but can be answered, category = topic
    "product_qa",  # category = price|stock|material|care|fit|weight
    "recommend",  # category = occasion|budget|size
    "grounded",  # answer from retrieved snippets, category = question kind
    "no_info",  # category = irrelevant_context|missing_context
    "safety",  # category = fake_product|manipulation|off_topic|injection|negotiation
)
CATALOG_TASKS = ("classify", "query_rewrite", "review_extract", "description")
ALL_TASKS = SUPPORT_TASKS + CATALOG_TASKS
