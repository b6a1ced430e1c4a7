"""One training example plus the metadata that travels in meta.jsonl."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def key(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] != "system")
