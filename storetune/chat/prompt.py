"""The system prompt, rendered from store.yaml.

Policies live here rather than in the weights, so a policy change needs no
retraining; training teaches the model to read and follow this block. It is kept
compact because every training and serving token of it costs compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storetune.chat.card import Card, OrderCard, PassageCard, render_cards
from storetune.chat.money import format_money, store_currency
from storetune.config import Policies, StoreConfig
from storetune.config.train import SUPPORT_TASKS
from storetune.errors import StoretuneError


class SystemPrompt(str):
    """A rendered system prompt that remembers the cards it shows.

    It is the prompt text wherever text is wanted (chat messages, JSONL); `cards` is
    what the guard and the dataset's meta.jsonl read instead of parsing the text back.
    `cards` is None when the context came as text, so the cards are not known.
    """

    cards: tuple[Card, ...] | None

    def __new__(cls, text: str, cards: Sequence[Card] | None = None) -> SystemPrompt:
        prompt = super().__new__(cls, text)
        prompt.cards = None if cards is None else tuple(cards)
        return prompt


def prompt_cards(system: str) -> list[Card] | None:
    """The cards a rendered prompt shows, when it was rendered from cards."""
    cards = getattr(system, "cards", None)
    return None if cards is None else list(cards)


def _shipping_lines(p: Policies) -> list[str]:
    s = p.shipping
    lines = []
    if s.free_threshold is not None:
        lines.append(
            f"Free standard shipping on orders over {format_money(s.free_threshold, s.currency)}."
        )
    for z in s.zones:
        lines.append(
            f"Shipping to {z.name}: {format_money(z.cost, s.currency)}, "
            f"{z.days_min}-{z.days_max} business days."
        )
    if s.processing_days:
        lines.append(f"Orders ship within {s.processing_days} business day(s).")
    return lines


def policy_sections(p: Policies) -> list[tuple[str, str]]:
    """Every policy line with the section it belongs to, in the prompt's order.

    Section names are what storetune.kinds asks for (a store's free-text rules are
    sections named by their key), so the router can pick the lines a ticket needs."""
    r, x, d = p.returns, p.exchanges, p.damaged_items
    lines = [
        (
            "returns",
            f"Returns: within {r.window_days} days of delivery, {r.condition}; "
            f"{r.return_shipping}; refunds to the original payment method within "
            f"{r.refund_days} business days.",
        )
    ]
    if r.sale_items_final:
        lines.append(("sale_items", "Sale items are final sale: no returns or exchanges."))
    if x.allowed:
        lines.append(
            ("exchanges", f"Exchanges: free within {x.window_days} days. {x.notes}".strip())
        )
    lines.append(
        (
            "damaged",
            f"Damaged or missing items: report within {d.report_within_days} days; {d.remedy}.",
        )
    )
    lines += [("shipping", line) for line in _shipping_lines(p)]
    if p.loyalty:
        lines.append(
            ("loyalty", f"Loyalty ({p.loyalty.name}): {p.loyalty.earn}; {p.loyalty.redeem}.")
        )
    for section, label, text in [
        ("price_match", "Price match", p.price_match),
        ("cancellations", "Cancellations", p.cancellations),
        ("address_changes", "Address changes", p.address_changes),
        ("order_status", "Order status", p.order_status),
        ("sizing", "Sizing", p.size_guide),
        ("care", "Care", p.care),
    ]:
        if text:
            lines.append((section, f"{label}: {text.strip()}"))
    lines += [
        (k, f"{k.replace('_', ' ').capitalize()}: {_free_text(v)}")
        for k, v in p.extra_rules().items()
    ]
    return lines


def _policy_lines(p: Policies, sections: Sequence[str] | None = None) -> list[str]:
    """The policy lines; only those of `sections` when given (the focused context)."""
    wanted = None if sections is None else set(sections)
    return [line for name, line in policy_sections(p) if wanted is None or name in wanted]


def _free_text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_free_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_free_text(v) for v in value)
    return str(value)


# The prompt's layout: 2 puts every line that is the same for all of a store's tickets
# (who, the rules, the contact) before the lines chosen per ticket, so engines compute
# that head once and share it; 3 writes a product whose variants are a full grid of its
# options compactly (its options once, the stock as "all in stock except ...") and says
# how to read that in the rules. Recorded in version.json: a version trained on another
# layout reads a prompt it was not trained on (`layout_warning`).
PROMPT_LAYOUT = 3
_RULES_2 = (
    "Only state facts found in the policies, help-center passages, order information or "
    "product information below. Never invent products, prices, stock, order details or "
    "promises. Order details come only from a verified order shown below; you cannot "
    "change orders."
)
_RULES = (
    _RULES_2 + ' Stock "all in stock except X: out of stock" means every option but X is in stock.'
)
# what changed at each layout, for the warning
_LAYOUT_CHANGES = {1: "lines reordered", 2: "product stock written compactly"}


_SUPPORT_HEAD = "You are the customer support assistant of "


def prompt_layout_of(system: str) -> int | None:
    """The layout a rendered support prompt was written in (1: before the shared head);
    None for other prompts (the catalog tasks')."""
    lines = system.split("\n", 2)
    if not lines[0].startswith(_SUPPORT_HEAD):
        return None
    second = lines[1] if len(lines) > 1 else ""
    return {_RULES: PROMPT_LAYOUT, _RULES_2: 2}.get(second, 1)


def layout_warning(info: dict) -> str | None:
    """A warning for a support version trained on an older prompt layout, else None.
    Versions from before the layout was recorded are layout 1 when they answer tickets."""
    layout = info.get("prompt_layout")
    if "prompt_layout" not in info and set(info.get("tasks") or []) & {*SUPPORT_TASKS, "all"}:
        layout = 1
    if layout is None or layout == PROMPT_LAYOUT:
        return None
    changes = "; ".join(_LAYOUT_CHANGES.get(n, "changed") for n in range(layout, PROMPT_LAYOUT))
    return (
        f"{info.get('name')} v{info.get('version')} was trained on prompt layout {layout}; "
        f"this storetune renders layout {PROMPT_LAYOUT} (same facts, {changes or 'changed'}): "
        "rebuild and retrain for replies as good as the eval measured"
    )


def render_system_prompt(
    cfg: StoreConfig,
    context: str | Card | Sequence[Card] | None = None,
    sections: Sequence[str] | None = None,
) -> SystemPrompt:
    """The one system prompt for building, training, evaluating and serving.

    `context` is the retrieved cards (rendered in the store's currency; help-center
    passages in a block of their own before the products), or catalog text already
    rendered (then the prompt does not know its cards). `sections` keeps
    only those policy sections (the focused context the router chose); None keeps
    every policy line."""
    b, p = cfg.brand, cfg.policies
    currency = store_currency(cfg)
    contact = ""
    if p.contact:
        contact = f"Contact: {p.contact.email}" + (
            f", {p.contact.phone}" if p.contact.phone else ""
        )
        contact += f" ({p.contact.hours})." if p.contact.hours else "."
    topics = ", ".join(t.name for t in cfg.escalation.always) or "fraud, legal threats, safety"
    cards: list[Card] | None = None
    if isinstance(context, Card):
        context = [context]
    passages: list[Card] = []
    orders: list[Card] = []
    if context is not None and not isinstance(context, str):
        cards = list(context)
        passages = [c for c in cards if c.kind == PassageCard.kind]
        orders = [c for c in cards if c.kind == OrderCard.kind]
        own = (PassageCard.kind, OrderCard.kind)
        context = render_cards([c for c in cards if c.kind not in own], currency)
    # Lines the same for every ticket first (the shared head), then what was chosen.
    parts = [
        f"You are the customer support assistant of {b.name}. Voice: {b.voice}",
        _RULES,
        f"If a person must handle it ({topics}, or anything you cannot resolve), start your "
        f"reply with {cfg.escalation.marker} and say a teammate will follow up.",
    ]
    if contact:
        parts.append(contact)
    policy = _policy_lines(p, sections)
    if policy:
        parts += ["Policies:", *(f"- {line}" for line in policy)]
    if passages:
        parts += ["Help center:", render_cards(passages, currency)]
    if orders:
        parts += ["Order information:", render_cards(orders, currency)]
    if context:
        parts += ["Product information:", context.strip()]
    return SystemPrompt("\n".join(parts), cards)


# --- catalog tasks ------------------------------------------------------------------
# Each catalog task trains its own adapter, so its prompt is short and task-specific:
# no policies, just the brand, the instruction and what this catalog allows.

_TASK_INSTRUCTIONS = {
    "classify": (
        "Classify the product into exactly one taxonomy path from the list below. "
        "Reply with the path only."
    ),
    "query_rewrite": (
        "Turn the shopper's search into one JSON object of filters. Use only the keys the "
        "search implies, only the keys and values listed below, and sorted keys. "
        "Reply with the JSON only."
    ),
    "review_extract": (
        "Extract the review's attributes as one JSON object with sorted keys and exactly "
        "the keys below. Use null when the review does not say. Reply with the JSON only."
    ),
    "description": (
        "Write a 40-110 word product description from the attributes. Mention every "
        "attribute value, never write 'I', use at most one '!', and state no prices or "
        "stock levels."
    ),
}


def render_task_prompt(cfg: StoreConfig, task: str, extra: str | None = None) -> str:
    """System prompt of a catalog task; `extra` is the catalog-specific allowed values."""
    if task not in _TASK_INSTRUCTIONS:
        raise StoretuneError(
            f"unknown catalog task {task!r}",
            hint=f"use one of: {', '.join(_TASK_INSTRUCTIONS)}",
        )
    parts = [f"You are the catalog assistant of {cfg.brand.name}.", _TASK_INSTRUCTIONS[task]]
    if task == "description":
        parts.append(f"Voice: {cfg.brand.voice}")
    if extra:
        parts.append(extra.strip())
    return "\n".join(parts)
