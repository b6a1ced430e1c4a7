"""Hand-over examples: what a person must handle, answered with the marker."""

from __future__ import annotations

import random
import re

from storetune.chat.money import format_money, store_currency
from storetune.chat.prompt import prompt_cards
from storetune.config import EscalationTopic, ShippingZone, StoreConfig
from storetune.dataset.builders.grounded import (
    Catalog,
    fill,
    lower_first,
    stock_answer,
)
from storetune.dataset.builders.phrasing import keep_words, phrasing_family, pick, vary
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Product, Ticket, Variant, family_from_tags

_HANDOVERS = [
    "I'm sorry you're dealing with this. I've passed your message to a teammate who handles "
    "{topic} cases, and they will reply by email within one business day.",
    "Thank you for telling us. This needs a member of our team, so I've handed it over; "
    "someone will contact you within one business day.",
    "I understand, and I want this handled properly. A teammate will review your {topic} "
    "concern and follow up with you within one business day.",
]
# Hand-overs of the kinds whose generic wording would read oddly ("your human request
# concern"), by look-alike family: {brand} is the store's name.
_FAMILY_HANDOVERS = {
    "human": [
        "Of course - I've asked a member of the {brand} team to take this over personally. "
        "They'll reply by email within one business day.",
        "Absolutely, a real person will pick this up. I've passed your message to a teammate, "
        "who will get back to you within one business day.",
        "Sure thing. I've handed your message to one of our team, and they'll follow up with "
        "you personally within one business day.",
    ],
    "complaint": [
        "I'm really sorry we've let you down, and thank you for telling us straight. I've "
        "passed this to a teammate who will look into it personally and reply within one "
        "business day.",
        "I hear you, and I'm sorry - this isn't the experience we want anyone to have with "
        "{brand}. A member of our team will review what happened and get back to you within "
        "one business day.",
        "That's frustrating, and I'm sorry. I've handed your message to our team so a person "
        "can put it right; they'll contact you within one business day.",
    ],
}


def _handover(cfg: StoreConfig, reason: str | None, rng: random.Random) -> str:
    topic = next((t for t in cfg.escalation.always if t.name == reason), None)
    lines = _FAMILY_HANDOVERS.get(_family(topic) if topic else None) or _HANDOVERS
    text = rng.choice(lines).format(
        topic=(reason or "this").replace("_", " "), brand=cfg.brand.name
    )
    return f"{cfg.escalation.marker} {text}"


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
        reply = _handover(cfg, t.human_only_reason, rng)
        system = system_for(first)
        out.append(
            Example(
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": first},
                    {"role": "assistant", "content": reply},
                ],
                task="escalation",
                category=t.human_only_reason or "human_only",
                builder="escalation",
                source_ids=[f"{t.source}:{t.source_id}"],
                group=f"{t.source}:{t.source_id}",
                family=family_from_tags(t.tags),
                cards=prompt_cards(system),
            )
        )
    return out


# --- look-alikes: hand-over words, ordinary questions -----------------------------------------

# Words in a topic's name or keywords that tell which family of look-alikes fits it.
_FAMILIES = {
    "fraud": ("fraud", "chargeback", "dispute", "unauthori", "stolen"),
    "legal": ("legal", "lawyer", "attorney", "sue", "lawsuit", "court"),
    "safety": ("safety", "injur", "fire", "burn", "hospital", "allerg", "melt"),
    "complaint": ("complaint", "complain", "manager", "unacceptable"),
    "human": ("human", "person", "someone", "agent", "representative", "callback"),
}
# Words a family's look-alikes hinge on: never misspelt, or the message loses its point.
_FAMILY_KEEP = {
    "human": {"person", "personal", "agent", "manager", "human", "staff", "team", "trainer"},
    "complaint": {"complaint", "complaints", "manager", "complain"},
}
# (need, message): the need is what the reply answers; {t} product, {v} variant,
# {z} shipping zone, {kw} one of the topic's own keywords.
_LOOKALIKES = {
    "legal": [
        ("stock", "My lawyer friend loved her {t} - do you have it in {v}?"),
        ("material", "I'm an attorney and on my feet all day. What's the {t} made of?"),
        (
            "returns",
            "Not planning to sue anyone haha, just wondering how long I have to return something?",
        ),
        (
            "price",
            "I work at a law firm and need something for weekend hikes - how much is the {t}?",
        ),
        ("exchanges", "Is there any legal fine print on exchanges? Can I swap for another size?"),
        (
            "shipping",
            "my attorney's office is in {z} - do you ship there, and how long does it take?",
        ),
    ],
    "fraud": [
        ("returns", "Not a chargeback, I just want to return it. How does that work?"),
        (
            "exchanges",
            "I don't want to dispute the charge or anything - can I just exchange for "
            "a different size?",
        ),
        ("price", "Is the price on the {t} legit or a fraud-level typo? how much is it really"),
        ("shipping", "No bank dispute here, just asking: how much is shipping to {z}?"),
        ("stock", "Not a fraud alert or anything, just checking: is the {t} in {v} in stock?"),
    ],
    "safety": [
        ("care", "Will the {t} melt if I put it in the dryer? how should I wash it"),
        (
            "material",
            "I'm a nurse at the hospital and need comfy layers for long shifts - what's "
            "the {t} made of?",
        ),
        ("material", "my kid gets a rash from scratchy fabric. what's the {t} made of?"),
        (
            "care",
            "I'd hate to ruin it - any care instructions for the {t}? Don't want it "
            "catching fire near the campfire either lol",
        ),
        (
            "stock",
            "Nothing to do with an injury, I just need a spare: is the {t} in {v} available?",
        ),
        ("care", "Is it safe to dry the {t} on high heat? My last jacket melted."),
    ],
    "complaint": [
        ("stock", "Not a complaint at all, I love my {t}! Do you have it in {v} too?"),
        ("returns", "no complaints, just a question: what's your return window?"),
        ("price", "No need for a manager, quick one: how much is the {t}?"),
        (
            "material",
            "My friend's only complaint about the {t} was the fabric - what is it made of?",
        ),
        (
            "shipping",
            "Shipping has never been a complaint of mine, just curious: how much is it to {z}?",
        ),
    ],
    # mentions a person, an agent or a manager, asks for none of them
    "human": [
        ("stock", "My sales agent said the {t} comes in {v} - is that in stock?"),
        ("material", "The person at the counter recommended the {t}. What's it made of?"),
        ("price", "A guy on your team at the trail expo showed me the {t}. How much is it?"),
        (
            "returns",
            "I'm not after a manager or anything, just tell me: how long is the return window?",
        ),
        ("stock", "No need to bother anyone on your team, quick one: is the {t} in {v} in stock?"),
        (
            "shipping",
            "My travel agent booked me a trip to {z} - do you ship there and how long does it take?",
        ),
        (
            "care",
            "The staff member at the store told me to wash the {t} cold. What are the actual care instructions?",
        ),
        (
            "material",
            "I'm a customer service agent myself and stand all day - what's the {t} made of?",
        ),
        (
            "exchanges",
            "My personal trainer thinks I need the next size up. Can I exchange for another size?",
        ),
        ("price", "How much is the {t}? It's a gift for the most outdoorsy human I know."),
        ("stock", "My manager at work swears by the {t} - do you have it in {v}?"),
    ],
}
# For topics of no known family: the topic's own keyword, quoted, in an ordinary question.
_GENERIC = [
    ("returns", "This isn't about anything like '{kw}' - how long do I have to return an item?"),
    ("price", "nothing to do with '{kw}', I just want to know the price of the {t}"),
    ("shipping", "Not about '{kw}', promise. How much is shipping to {z}?"),
    ("stock", "(unrelated to '{kw}') is the {t} in {v} in stock?"),
]
_OPENERS = ["", "", "No problem! ", "Happy to help. ", "Sure! ", "Good question. "]
_WEARABLE_HINTS = ("fabric", "layers", "jacket")  # templates that only make sense for clothing


def _family(topic: EscalationTopic) -> str | None:
    """The look-alike family of a topic: by its name first ("human_request" is the person
    family even when a keyword says "manager"), then by its keywords."""
    for text in (topic.name.lower(), " ".join(topic.keywords).lower()):
        found = next((f for f, words in _FAMILIES.items() if any(w in text for w in words)), None)
        if found:
            return found
    return None


def _policy_reply(cfg: StoreConfig, need: str, zone: ShippingZone | None) -> str | None:
    p = cfg.policies
    if need == "returns":
        r = p.returns
        text = (
            f"Returns are accepted within {r.window_days} days of delivery, {r.condition}; "
            f"{r.return_shipping}. Refunds go back to your original payment method within "
            f"{r.refund_days} business days."
        )
        return text + (" Sale items are final sale." if r.sale_items_final else "")
    if need == "exchanges":
        if not p.exchanges.allowed:
            return None
        text = f"Yes - exchanges are free within {p.exchanges.window_days} days."
        first = re.split(r"(?<=\.)\s", p.exchanges.notes.strip())[0]
        return text + (f" {first}" if first else "")
    if need == "shipping" and zone is not None:
        cost = format_money(zone.cost, store_currency(cfg))
        return (
            f"Yes, we ship to {zone.name}: {cost}, arriving in {zone.days_min}-{zone.days_max} "
            "business days."
        )
    return None


def _product_reply(
    ctx: Catalog, p: Product, need: str, variant: Variant | None, rng: random.Random
) -> str | None:
    if need == "stock":
        return stock_answer(p, variant, rng, ctx.variants(p)) if variant else None
    if need == "price":
        return f"The {p.title} is {ctx.price_phrase(p)}."
    fact = ctx.facts(p).get(need)
    if fact is None:
        return None
    if need == "material":
        return f"The {p.title} is made of {lower_first(fact[1])}."
    return f"Care for the {p.title}: {fact[1]}."


def _pool(ctx: Catalog, need: str, wearable: bool) -> list[Product]:
    """Products a template can ask about: with the fact it needs, clothing if it says so."""
    pool = ctx.active_products
    if wearable:
        pool = [q for q in pool if any(o.lower() == "size" for o in q.options)] or pool
    if need in {"material", "care"}:
        pool = [q for q in pool if need in ctx.facts(q)]
    return pool


def _lookalike_one(ctx: Catalog, topic: EscalationTopic, rng: random.Random) -> Example | None:
    family = _family(topic)
    templates = _LOOKALIKES.get(family) or _GENERIC
    t = rng.randrange(len(templates))
    need, template = templates[t]
    zones = ctx.cfg.policies.shipping.zones
    zone = rng.choice(zones) if zones else None
    wearable = any(h in template for h in _WEARABLE_HINTS)
    pool = ctx.memo(f"lookalike:{need}:{wearable}", lambda: _pool(ctx, need, wearable))
    if not pool:
        return None
    p = rng.choice(pool)
    named = [v for v in ctx.variants(p) if v.label != "Default"]
    variant = rng.choice(named) if named else None
    if "{v}" in template and variant is None:
        return None
    message = template.format(
        t=p.title,
        v=variant.label if variant else "",
        z=zone.name if zone else "",
        kw=rng.choice(topic.keywords) if topic.keywords else topic.name.replace("_", " "),
    )
    uses_product = "{t}" in template
    if uses_product:
        reply = _product_reply(ctx, p, need, variant, rng)
    else:
        reply = _policy_reply(ctx.cfg, need, zone)
    if reply is None:
        return None
    if not reply.startswith(("Yes", "Good news", "Sorry")):
        reply = pick(rng, _OPENERS) + reply
    keep = keep_words(p.title, variant.label if variant else "", zone.name if zone else "")
    keep |= {k.lower() for k in topic.keywords} | _FAMILY_KEEP.get(family, set())
    question = vary(message, rng, keep)
    system = ctx.system_with([p]) if uses_product else ctx.system_for(question)
    group = f"lookalike:{topic.name}:{t}"  # one template's phrasings share a split
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": question},
            {"role": "assistant", "content": reply},
        ],
        task="lookalike",
        category=topic.name,
        builder="lookalike",
        source_ids=[group],
        group=group,
        family=phrasing_family(template),
        cards=prompt_cards(system),
    )


def build_lookalikes(ctx: BuildContext) -> list[Example]:
    """Messages that sound like a hand-over topic but can be answered (no marker).

    One set per always-escalate topic of store.yaml, spread evenly; a topic's own
    keywords appear in the message, yet the reply answers it from policies or cards.
    """
    ctx = Catalog(ctx)
    topics = ctx.cfg.escalation.always
    if not topics or not ctx.active_products:
        return []
    n = ctx.bcfg.lookalikes
    seen: set[str] = set()
    out: list[Example] = []
    for i, topic in enumerate(topics):
        want = n // len(topics) + (1 if i < n % len(topics) else 0)
        rng = ctx.rng(f"lookalike:{topic.name}")
        out += fill(want, lambda r, topic=topic: _lookalike_one(ctx, topic, r), rng, seen)
    return out
