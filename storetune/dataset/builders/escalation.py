"""Hand-over examples: what a person must handle, answered with the marker."""

from __future__ import annotations

import random

from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Ticket
from storetune.workspace import StoreConfig

_HANDOVERS = [
    "I'm sorry you're dealing with this. I've passed your message to a teammate who handles "
    "{topic} cases, and they will reply by email within one business day.",
    "Thank you for telling us. This needs a member of our team, so I've handed it over; "
    "someone will contact you within one business day.",
    "I understand, and I want this handled properly. A teammate will review your {topic} "
    "concern and follow up with you within one business day.",
]


def build_escalation(
    tickets: list[Ticket], cfg: StoreConfig, system_for, limit: int | None, seed: int
) -> list[Example]:
    rng = random.Random(seed)
    human = [t for t in tickets if t.human_only]
    if limit is not None:
        human = human[:limit]
    out = []
    for t in human:
        first = next((m.text for m in t.messages if m.role == "customer" and m.text.strip()), None)
        if not first:
            continue
        topic = (t.human_only_reason or "this").replace("_", " ")
        reply = f"{cfg.escalation.marker} " + rng.choice(_HANDOVERS).format(topic=topic)
        out.append(
            Example(
                messages=[
                    {"role": "system", "content": system_for(first)},
                    {"role": "user", "content": first},
                    {"role": "assistant", "content": reply},
                ],
                task="escalation",
                category=t.human_only_reason or "human_only",
                builder="escalation",
                source_ids=[f"{t.source}:{t.source_id}"],
                group=f"{t.source}:{t.source_id}",
            )
        )
    return out


def build_lookalikes(ctx: BuildContext) -> list[Example]:
    """Messages that sound like a hand-over topic but can be answered (no marker)."""
    return []  # filled in by the look-alike builder work (issue 4)
