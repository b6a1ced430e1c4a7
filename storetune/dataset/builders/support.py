"""Support replies from resolved helpdesk tickets (multi-turn kept)."""

from __future__ import annotations

import re

from storetune.chat.money import SYMBOLS, store_currency
from storetune.chat.prompt import prompt_cards
from storetune.config import StoreConfig
from storetune.dataset.example import Example
from storetune.store.records import Ticket, family_from_tags

_GREETING_NAME = re.compile(r"^(hi|hello|hey|dear)\s+<NAME>", re.IGNORECASE)
_INLINE_NAME = re.compile(r",\s*<NAME>(?=[,.!?])")


def intent_of(ticket: Ticket, known: set[str]) -> str:
    for tag in ticket.tags:
        if tag in known:
            return tag
    return next((t for t in ticket.tags if t != "escalated"), "general")


def _turns(ticket: Ticket) -> list[dict]:
    """Public messages as alternating user/assistant turns (same-role runs merged)."""
    turns: list[dict] = []
    for m in ticket.public_messages():
        role = "user" if m.role == "customer" else "assistant"
        text = m.text.strip()
        if not text:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    while turns and turns[0]["role"] != "user":
        turns.pop(0)
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()
    return turns


def _polish_reply(text: str) -> str:
    # A greeting to a scrubbed name would teach the model to write "<NAME>".
    text = _GREETING_NAME.sub("Hi there", text)
    return _INLINE_NAME.sub("", text)


class PolicyCorrector:
    """Rewrites resolutions that quote a policy value since changed (counted)."""

    def __init__(self, cfg: StoreConfig) -> None:
        self.rules: list[tuple[re.Pattern, str]] = []
        currency = store_currency(cfg)
        for ch in cfg.policies.changes:
            old, new = ch.old, ch.new
            if ch.field.endswith("_days"):
                self.rules.append((re.compile(rf"\b{old}(?=[- ]day)"), str(new)))
            elif isinstance(old, int | float):
                self.rules.append(_amount_rule(old, new, currency))
        self.corrected = 0

    def __call__(self, text: str) -> str:
        fixed = text
        for pattern, new in self.rules:
            fixed = pattern.sub(new, fixed)
        if fixed != text:
            self.corrected += 1
        return fixed


def _amount_rule(old: float, new: float, currency: str) -> tuple[re.Pattern, str]:
    """ "$50" or "$50.00" -> "$60", written as the store writes its currency."""
    symbol = SYMBOLS.get(currency.upper())
    if symbol:
        return re.compile(rf"{re.escape(symbol)}{old:g}(?:\.00)?(?!\d)"), f"{symbol}{new:g}"
    code = currency.upper()
    return re.compile(rf"(?<![\d.]){old:g}(?:\.00)? {code}\b"), f"{new:g} {code}"


def build_support(
    tickets: list[Ticket],
    cfg: StoreConfig,
    intents: set[str],
    system_for,
    corrector: PolicyCorrector,
) -> tuple[list[Example], dict]:
    marker = cfg.escalation.marker
    out: list[Example] = []
    skipped = {"human_only": 0, "no_reply": 0}
    for t in tickets:
        if t.human_only:
            skipped["human_only"] += 1
            continue
        turns = _turns(t)
        if not turns:
            skipped["no_reply"] += 1
            continue
        for m in turns:
            if m["role"] == "assistant":
                m["content"] = corrector(_polish_reply(m["content"]))
        if "escalated" in t.tags and not turns[-1]["content"].startswith(marker):
            turns[-1]["content"] = f"{marker} {turns[-1]['content']}"
        system = system_for(turns[0]["content"])
        out.append(
            Example(
                messages=[{"role": "system", "content": system}, *turns],
                task="support",
                category=intent_of(t, intents),
                builder="support",
                source_ids=[f"{t.source}:{t.source_id}"],
                group=f"{t.source}:{t.source_id}",
                family=family_from_tags(t.tags),
                cards=prompt_cards(system),
            )
        )
    return out, skipped
