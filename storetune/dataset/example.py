"""One training example plus the metadata that travels in meta.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field

from storetune.chat.card import Card

# Moved to storetune.store.records; re-exported for demo/ticket_gen.py and
# dataset/builders/escalation.py until their owner's branch imports them there.


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
