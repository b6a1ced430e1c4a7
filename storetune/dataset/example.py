"""One training example plus the metadata that travels in meta.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field

from storetune.chat.card import Card

# Re-exported: the task tags moved to storetune.config.train.
from storetune.config.train import ALL_TASKS, CATALOG_TASKS, SUPPORT_TASKS  # noqa: F401


@dataclass
class Example:
    messages: list[dict]  # OpenAI chat format, system message first
    task: str  # support | product_qa | escalation | …
    category: str  # intent or question kind
    builder: str
    source_ids: list[str] = field(default_factory=list)
    group: str = ""  # examples sharing a group never straddle splits
    # The wording the customer message came from (a template id); the split keeps a
    # family on one side, so test wordings are ones training never saw. "" if unknown.
    family: str = ""
    cards: list[Card] | None = None  # what the system prompt shows; None: not known

    def key(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] != "system")


# A helpdesk tag naming a ticket's phrasing family (the demo store writes it; real
# exports have none).
PHRASING_TAG = "phrasing:"


def family_from_tags(tags: list[str]) -> str:
    """The phrasing family a ticket's `phrasing:<family>` tag names, or ""."""
    return next((t.removeprefix(PHRASING_TAG) for t in tags if t.startswith(PHRASING_TAG)), "")
