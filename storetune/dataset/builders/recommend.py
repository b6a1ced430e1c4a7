"""Recommendations under constraints (occasion, budget, size in stock).

The system prompt holds candidate cards: products that meet the constraint next to
ones that don't (too expensive, wrong size sold out, a different type), so the model
learns to filter by what the cards say. Answers name only active products that can
be bought now or on backorder, quote the card's price, and say plainly when nothing
shown fits, pointing to the nearest option. Candidates come only from active
products, so drafts and archived items are never named.
"""

from __future__ import annotations

import random
from collections import defaultdict

from storetune.chat.prompt import prompt_cards
from storetune.dataset.builders.grounded import Catalog, fill
from storetune.dataset.builders.phrasing import keep_words, next_step, phrasing_family, pick, vary
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Product, Variant

# Tags that name an activity or occasion; other tags (gender, material, collection)
# say nothing about when a product is used.
OCCASIONS = (
    "hiking", "camping", "backpacking", "winter", "skiing", "snowboarding", "travel",
    "trail running", "running", "everyday", "climbing", "fishing", "cycling", "beach",
    "summer", "commuting", "work", "gym", "yoga", "festival", "wedding", "party", "gift",
)  # fmt: skip
_OCCASION_WORDS = {"everyday": "everyday use", "winter": "winter trips", "gift": "a gift"}
_BUDGETS = (20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 150, 200, 250, 300, 400, 500, 750, 1000)
_PAIRS = {"pants", "socks", "gloves", "shoes", "boots", "trekking poles", "shorts", "mittens"}
_SIZE_KEYS = {"size", "shoe size"}
# Cards per prompt: serving retrieves a couple; four keep every example well under
# 2,048 tokens with the default model's tokenizer while still holding distractors.
MAX_CARDS = 4


def _nouns(product_type: str) -> tuple[str, str | None]:
    """(plural, singular or None) as a customer would write the product type."""
    plural = product_type.lower()
    if plural.endswith("s") and not plural.endswith("ss") and plural not in _PAIRS:
        return plural, plural[:-1]
    return plural, None


def _size(v: Variant) -> str | None:
    return next((val for k, val in v.options.items() if k.lower() in _SIZE_KEYS), None)


def _top_price(p: Product):
    return max(v.price for v in p.variants)


def _by_type(ctx: Catalog) -> dict[str, list[Product]]:
    groups: dict[str, list[Product]] = defaultdict(list)
    for p in ctx.active_products:
        if p.product_type and ctx.buyable(p):
            groups[p.product_type].append(p)
    return dict(groups)


def _mention(ctx: Catalog, p: Product) -> str:
    """'the X at $Y', noting backorder when nothing shown is in stock."""
    text = f"the {p.title} at {ctx.price_phrase(p, short=True)}"
    if not any(v.in_stock for v in ctx.variants(p)):
        text += " (on backorder)"
    return text


def _join(parts: list[str], conj: str = "or") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {conj} " + parts[-1]


def _example(ctx: Catalog, cards: list[Product], q: str, a: str, cat: str, key: str, template: str):
    group = f"recommend:{cat}:{key}"  # same type + constraint: near-identical examples
    system = ctx.system_with(cards)
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": q},
            {"role": "assistant", "content": a},
        ],
        task="recommend",
        category=cat,
        builder="recommend",
        source_ids=[group],
        group=group,
        family=phrasing_family(template),
        cards=prompt_cards(system),
    )


def _shuffled(items: list[Product], rng: random.Random) -> list[Product]:
    items = list({p.handle: p for p in items}.values())  # unique, order kept
    rng.shuffle(items)
    return items


# --- budget -----------------------------------------------------------------------------------

_BUDGET_Q = [
    "Looking for {pl} under ${b}, what do you have?",
    "any {pl} for less than {b} bucks?",
    "My budget is ${b} - which {pl} would you recommend?",
    "cheap {pl}? max ${b}",
    "I need {pl} but can't spend more than ${b}. Ideas?",
    "What {pl} do you have below ${b}?",
]
_BUDGET_Q1 = ["What's a good {s} under ${b}?", "need a {s} for under ${b}, suggestions?"]


def _budget(ctx: Catalog, by_type: dict, rng: random.Random) -> Example | None:
    ptype = rng.choice(sorted(by_type))
    pool = by_type[ptype]
    plural, singular = _nouns(ptype)
    if rng.random() < 0.8:  # something fits: a budget just above one product's price
        anchor = _top_price(rng.choice(pool))
        budget = next((b for b in _BUDGETS if b > anchor), None)
    else:  # nothing fits: a budget below the cheapest product of the type
        cheapest = min(min(v.price for v in p.variants) for p in pool)
        budget = next((b for b in reversed(_BUDGETS) if b < cheapest), None)
    if budget is None:
        return None
    fits = sorted((p for p in pool if _top_price(p) < budget), key=_top_price)
    fit_handles = {p.handle for p in fits}
    others = [p for p in pool if p.handle not in fit_handles]
    rng.shuffle(others)
    shown_fits = rng.sample(fits, min(len(fits), rng.randint(1, 3)))
    cards = (
        shown_fits
        + others[: min(rng.randint(1 if not fits else 0, 2), MAX_CARDS - len(shown_fits))]
    )
    if len(cards) < MAX_CARDS and rng.random() < 0.4:  # right budget, wrong type: skip it
        for _ in range(20):
            o = rng.choice(ctx.active_products)
            if o.product_type != ptype and ctx.buyable(o) and _top_price(o) < budget:
                cards.append(o)
                break
    templates = _BUDGET_Q + (_BUDGET_Q1 if singular else [])
    template = pick(rng, templates)
    question = template.format(pl=plural, s=singular, b=budget)
    question = vary(question, rng, keep_words(plural))
    picks = sorted(shown_fits, key=_top_price)[:2]
    if picks:
        lead = pick(rng, ["Within your budget", "In that range", "Good options there"])
        answer = f"{lead}, I'd look at {_join([_mention(ctx, p) for p in picks])}."
    else:
        nearest = min((p for p in cards if p.product_type == ptype), key=_top_price)
        answer = (
            pick(
                rng,
                [
                    f"I'm sorry, I don't see any {plural} in that price range.",
                    f"Unfortunately none of the {plural} I can see come in under that.",
                ],
            )
            + f" The most affordable one is {_mention(ctx, nearest)}."
        )
    key = f"{ptype}:{budget}"
    return _example(ctx, _shuffled(cards, rng), question, answer, "budget", key, template)


# --- size -------------------------------------------------------------------------------------

_SIZE_Q = [
    "Do you have any {pl} in size {z} in stock?",
    "{pl} in size {z}?? which ones can I actually order",
    "I wear size {z} - what {pl} do you have available?",
    "Which of your {pl} come in size {z} right now?",
    "need {pl}, size {z}. what's in stock?",
]


def _size_options(ctx: Catalog, p: Product, size: str) -> tuple[list[str], list[str]]:
    """Other option values (e.g. colours) of size `size`: (in stock, backorder only)."""
    now, later = [], []
    for v in ctx.buyable(p):
        if _size(v) == size:
            rest = " / ".join(x for k, x in v.options.items() if k.lower() not in _SIZE_KEYS)
            (now if v.in_stock else later).append(rest)
    return now, later


def _size_line(ctx: Catalog, p: Product, size: str) -> str:
    now, _ = _size_options(ctx, p, size)
    if now:
        colours = f" in {_join(now, 'and')}" if all(now) else ""
        text = f"the {p.title} has size {size} in stock{colours}"
    else:
        text = f"the {p.title} has size {size} on backorder"
    return f"{text}, at {ctx.price_phrase(p, short=True)}"


def _sizes_by_type(ctx: Catalog, by_type: dict) -> dict[str, list[str]]:
    """Sizes the cards show, per product type that has sizes."""
    out = {}
    for t, ps in sorted(by_type.items()):
        sizes = [_size(v) for p in ps for v in ctx.variants(p)]
        if any(sizes):
            out[t] = list(dict.fromkeys(z for z in sizes if z))
    return out


def _size_one(ctx: Catalog, by_type: dict, rng: random.Random) -> Example | None:
    sized = ctx.memo("recommend:sizes", lambda: _sizes_by_type(ctx, by_type))
    if not sized:
        return None
    ptype = rng.choice(sorted(sized))
    pool = by_type[ptype]
    size = rng.choice(sized[ptype])
    fits = [p for p in pool if any(_size(v) == size for v in ctx.buyable(p))]
    fit_handles = {p.handle for p in fits}
    misses = [p for p in pool if p.handle not in fit_handles]
    rng.shuffle(fits)
    rng.shuffle(misses)
    if fits and (rng.random() < 0.8 or not misses):
        cards = fits[: rng.randint(1, 3)]
        cards += misses[: min(rng.randint(0, 2), MAX_CARDS - len(cards))]
    elif misses:  # nothing shown fits
        cards = misses[: rng.randint(1, 3)]
    else:
        return None
    plural, _ = _nouns(ptype)
    template = pick(rng, _SIZE_Q)
    question = template.format(pl=plural, z=size)
    if any(c.isdigit() for c in size) and not any(
        _size(v) == size for p in cards for v in ctx.variants(p)
    ):
        size_ref = "that size"  # a size number the cards don't show is not repeated
    else:
        size_ref = f"size {size}"
    question = vary(question, rng, keep_words(plural, size))
    shown = [p for p in cards if p.handle in fit_handles][:2]
    if shown:
        lines = [_size_line(ctx, p, size) for p in shown]
        answer = "In that size, " + "; ".join(lines) + "."
    else:
        answer = _no_size(ctx, cards, size_ref, plural, rng)
    key = f"{ptype}:{size}"
    return _example(ctx, _shuffled(cards, rng), question, answer, "size", key, template)


def _no_size(
    ctx: Catalog, cards: list[Product], size_ref: str, plural: str, rng: random.Random
) -> str:
    answer = pick(
        rng,
        [
            f"Sorry, none of the {plural} I can see are available in {size_ref} right now.",
            f"I'm afraid {size_ref} isn't available in the {plural} I have here.",
        ],
    )
    near = next((p for p in cards if any(_size(v) for v in ctx.buyable(p))), None)
    if near is None:
        return answer + " " + next_step(ctx.cfg, rng)
    in_stock = list(dict.fromkeys(_size(v) for v in ctx.buyable(near) if _size(v)))
    return answer + f" The nearest option is the {near.title}, available in {_join(in_stock)}."


# --- occasion ---------------------------------------------------------------------------------

_OCCASION_Q = [
    "Which {pl} would you recommend for {o}?",
    "Need {pl} for {o}. Suggestions?",
    "Shopping for {o} - do you have any {pl}?",
    "I'm new to {o} and need {pl}, what's good?",
    "what {pl} do people get for {o}",
]
_OCCASION_Q1 = ["What {s} should I get for {o}?", "looking for a {s} for {o}, any recs?"]


def _highlight(ctx: Catalog, p: Product) -> str:
    """One short spec from the card that helps a customer choose."""
    facts = ctx.facts(p)
    for key, (name, value) in facts.items():
        skip = key in {"material", "care", "fit", "warranty"}
        if not skip and len(value) <= 50 and "(" not in value:
            return f" ({name.lower()}: {value})"
    return ""


def _occasion_index(by_type: dict) -> dict[str, dict[str, list[Product]]]:
    """occasion tag -> product type -> products with that tag."""
    index: dict[str, dict[str, list[Product]]] = {}
    for ptype, ps in sorted(by_type.items()):
        for p in ps:
            for tag in p.tags:
                if tag in OCCASIONS:
                    index.setdefault(tag, {}).setdefault(ptype, []).append(p)
    return index


def _occasion(ctx: Catalog, by_type: dict, rng: random.Random) -> Example | None:
    index = ctx.memo("recommend:occasions", lambda: _occasion_index(by_type))
    if not index:
        return None
    tag = rng.choice(sorted(index))
    types = sorted(index[tag])
    ptype = rng.choice(types)
    fits = list(index[tag][ptype])
    rng.shuffle(fits)
    # other types for the same occasion: right activity, wrong kind of product
    elsewhere = [p for t in types if t != ptype for p in index[tag][t]]
    picks = fits[: rng.randint(1, 3)]
    extra = min(len(elsewhere), rng.randint(0, 2), MAX_CARDS - len(picks))
    cards = picks + rng.sample(elsewhere, extra)
    plural, singular = _nouns(ptype)
    words = _OCCASION_WORDS.get(tag, tag)
    template = pick(rng, _OCCASION_Q + (_OCCASION_Q1 if singular else []))
    question = vary(template.format(pl=plural, s=singular, o=words), rng)
    parts = [_mention(ctx, p) + _highlight(ctx, p) for p in picks[:2]]
    answer = f"For {words}, I'd suggest {_join(parts)}."
    if len(parts) == 2 and rng.random() < 0.5:
        answer += " Happy to compare them if you tell me what matters most."
    key = f"{ptype}:{tag}"
    return _example(ctx, _shuffled(cards, rng), question, answer, "occasion", key, template)


def build_recommend(ctx: BuildContext) -> list[Example]:
    """build.recommend examples, split evenly across occasion, budget and size."""
    ctx = Catalog(ctx)
    by_type = _by_type(ctx)
    if not by_type:
        return []
    n = ctx.bcfg.recommend
    makers = [_occasion, _budget, _size_one]
    seen: set[str] = set()
    out: list[Example] = []
    for i, make in enumerate(makers):
        want = n // 3 + (1 if i < n % 3 else 0)
        rng = ctx.rng(f"recommend:{make.__name__}")
        out += fill(want, lambda r, make=make: make(ctx, by_type, r), rng, seen)
    # a store without, say, sized products tops the set up with the other kinds
    rng = ctx.rng("recommend:top-up")
    for make in makers:
        out += fill(n - len(out), lambda r, make=make: make(ctx, by_type, r), rng, seen)
    return out
