"""Catalog tasks: classification, query rewriting, review extraction, descriptions.

Each task has its own task tag (so it can train its own adapter), a short task
prompt (`render_task_prompt`) listing what this catalog allows, one user message
and one assistant message. What an answer looks like and the rules it keeps are
the task's spec in `storetune.tasks`, which the graders use too; a generated answer
is kept only when its spec finds no problem with it:

- classify: product title (maybe with a variant or its first description line)
  -> the taxonomy path, e.g. ``Apparel & Accessories > Clothing > Pants``.
- query_rewrite: a shopper's free-text search -> ``json.dumps(filters,
  sort_keys=True)`` with only the filter keys the search implies.
- review_extract: a customer review -> JSON with exactly the review keys.
- description: ``key: value`` attribute lines -> a 40-110 word description that
  mentions every value and keeps the voice rules.

Every example is generated from a real, active product, so labels and filter
values are always valid for this catalog; one product's examples share a group
and so a split.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from decimal import Decimal

from storetune.chat.prompt import render_task_prompt
from storetune.config import StoreConfig
from storetune.dataset.context import BuildContext
from storetune.dataset.example import Example
from storetune.store.records import Product, Variant
from storetune.tasks import (
    CLASSIFY,
    DESCRIPTION,
    DESCRIPTION_WORDS,
    QUERY_REWRITE,
    REVIEW_EXTRACT,
    REVIEW_FITS,
    REVIEW_SENTIMENTS,
    QueryVocab,
    TaskSpec,
    task_spec,
)


def build_tasks(ctx: BuildContext) -> list[Example]:
    """All four catalog tasks, counts from store.yaml `build.tasks`."""
    products = usable_products(ctx.products)
    mix = ctx.bcfg.tasks
    cfg = ctx.cfg
    return [
        *build_classify(cfg, products, mix.classify, ctx.rng("tasks:classify")),
        *build_query_rewrite(cfg, products, mix.query_rewrite, ctx.rng("tasks:query_rewrite")),
        *build_review_extract(cfg, products, mix.review_extract, ctx.rng("tasks:review_extract")),
        *build_description(cfg, products, mix.description, ctx.rng("tasks:description")),
    ]


def task_prompt(cfg: StoreConfig, task: str, products: Iterable[Product]) -> str:
    """The system prompt a catalog task is trained with, for eval and serving too."""
    spec = task_spec(task)
    return render_task_prompt(cfg, task, spec.allowed_text(catalog_allowed(task, products)))


def catalog_allowed(task: str, products: Iterable[Product]) -> object:
    """What a task allows in this catalog: the taxonomy for classify, the filter values
    for query_rewrite, nothing catalog-specific for the others."""
    products = usable_products(products)
    if task == "classify":
        return catalog_taxonomy(products)
    if task == "query_rewrite":
        return query_vocabulary(products)
    return None


def usable_products(products: Iterable[Product]) -> list[Product]:
    """Products the tasks are built from: live, sellable, with a real description
    (the same rule as `BuildContext.active_products`), sorted by handle."""
    return sorted(
        (p for p in products if p.active and p.variants and "placeholder" not in p.flags),
        key=lambda p: p.handle,
    )


def _example(system: str, user: str, answer: str, task: str, category: str, p: Product) -> Example:
    return Example(
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ],
        task=task,
        category=category,
        builder="tasks",
        source_ids=[f"product:{p.handle}"],
        group=f"product:{p.handle}",
    )


def _collect(
    n: int,
    rng: random.Random,
    products: list[Product],
    make: Callable,
    spec: TaskSpec,
    allowed: object = None,
) -> list[tuple[Product, str, str, str]]:
    """Up to n distinct (product, user, answer, category) draws whose answer keeps the
    task's rules; small catalogs give fewer."""
    out: list[tuple[Product, str, str, str]] = []
    seen: set[str] = set()
    attempts = 0
    while products and len(out) < n and attempts < n * 20:
        attempts += 1
        p = rng.choice(products)
        made = make(p, rng)
        if made is None or made[0] in seen or spec.problems(made[1], made[0], allowed):
            continue
        seen.add(made[0])
        out.append((p, *made))
    return out


# --- shared text helpers -----------------------------------------------------------------


def _typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: swapped, dropped or doubled letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _typo_in(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    slots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not slots:
        return text
    i = rng.choice(slots)
    words[i] = _typo(words[i], rng)
    return " ".join(words)


def _lower_first(value: str) -> str:
    """Lowercase a leading capital mid-sentence, but keep acronyms like 'RDS'."""
    if len(value) > 1 and value[0].isupper() and value[1].islower():
        return value[0].lower() + value[1:]
    return value


def _fact(p: Product, key: str) -> str | None:
    for name, value in _facts(p):
        if name.lower() == key:
            return value
    return None


def _facts(p: Product) -> list[tuple[str, str]]:
    """`Key: value` lines of a product description (the Shopify body's spec list)."""
    out = []
    for line in p.description.splitlines():
        name, sep, value = line.strip().lstrip("-*• ").partition(":")
        name, value = name.strip(), value.strip()
        if sep and value and 0 < len(name) <= 30 and not re.search(r"https?$", name):
            out.append((name, value))
    return out


def _option_values(products: Iterable[Product], names: set[str]) -> list[str]:
    seen: dict[str, None] = {}
    for p in products:
        for v in p.variants:
            for k, val in v.options.items():
                if k.lower() in names and val and val != "Default Title":
                    seen[val] = None
    return list(seen)


_COLOR_OPTIONS = {"color", "colour"}
_SIZE_OPTIONS = {"size"}
_LETTER_SIZES = ("XXS", "XS", "S", "M", "L", "XL", "XXL", "XXXL")


def _size_order(size: str) -> tuple[int, float, str]:
    if size.upper() in _LETTER_SIZES:
        return (0, _LETTER_SIZES.index(size.upper()), size)
    try:
        return (1, float(size), size)
    except ValueError:
        return (2, 0.0, size)


def _variant_option(v: Variant, names: set[str]) -> str | None:
    return next((val for k, val in v.options.items() if k.lower() in names and val), None)


def _join(values: list[str]) -> str:
    """'A', 'A and B', 'A, B and C': readable in prose and findable verbatim."""
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


# --- classify ----------------------------------------------------------------------------


def taxonomy_label(p: Product) -> str:
    """The class of a product: its Shopify category path, else its product type."""
    return (p.category or p.product_type).strip()


def catalog_taxonomy(products: Iterable[Product]) -> list[str]:
    """Every label the classifier may answer with, sorted."""
    return sorted({taxonomy_label(p) for p in products if taxonomy_label(p)})


def _title_forms(p: Product, rng: random.Random) -> list[str]:
    """How a title shows up in feeds and carts: bare, lowercased, with a variant."""
    intro = next((ln.strip() for ln in p.description.splitlines() if ln.strip()), "")
    forms = [p.title, p.title.lower()]
    if intro and ":" not in intro:  # a spec line is not an intro
        forms.append(f"{p.title}\n{intro}")
    labels = sorted({v.label for v in p.variants if v.label != "Default"})
    forms += [f"{p.title} - {label}" for label in rng.sample(labels, min(4, len(labels)))]
    if p.vendor:
        forms.append(f"{p.vendor} {p.title}")
    return list(dict.fromkeys(forms))


def build_classify(
    cfg: StoreConfig, products: list[Product], n: int, rng: random.Random
) -> list[Example]:
    labelled = [p for p in products if taxonomy_label(p)]
    if not labelled or n <= 0:
        return []
    taxonomy = catalog_taxonomy(labelled)
    system = render_task_prompt(cfg, "classify", CLASSIFY.allowed_text(taxonomy))
    queues = []
    for p in labelled:
        forms = _title_forms(p, rng)
        rng.shuffle(forms)
        queues.append((p, forms))
    rng.shuffle(queues)
    out: list[Example] = []
    # Round-robin so every product is seen before any product is seen twice.
    while len(out) < n and any(forms for _, forms in queues):
        for p, forms in queues:
            if forms and len(out) < n:
                label, form = taxonomy_label(p), forms.pop()
                if CLASSIFY.problems(label, form, taxonomy):
                    continue
                top = label.split(">")[0].strip()
                out.append(_example(system, form, label, "classify", top, p))
    return out


# --- query rewrite -----------------------------------------------------------------------


def query_vocabulary(products: Iterable[Product]) -> QueryVocab:
    """Values a filter may take in this catalog (active products only)."""
    products = usable_products(products)
    types = sorted({p.product_type for p in products if p.product_type})
    colors = sorted(_option_values(products, _COLOR_OPTIONS))
    sizes = sorted(_option_values(products, _SIZE_OPTIONS), key=_size_order)
    # A tag that is part of a type name ('packs' in 'backpacks') or an option value
    # would make the gold ambiguous, so it is never a keyword.
    taken = " ".join(t.lower() for t in types)
    values = {c.lower() for c in colors} | {s.lower() for s in sizes}
    tags = {t for p in products for t in p.tags if re.fullmatch(r"[a-z]{3,}( [a-z]{3,})?", t)}
    keywords = sorted(t for t in tags if t not in values and t.rstrip("s") not in taken)
    return QueryVocab(types, colors, sizes, keywords)


def _type_nouns(product_type: str) -> list[str]:
    low = product_type.lower()
    if low.endswith("s") and not low.endswith("ss"):
        return [low, low[:-1]]
    return [low]


_PRICE_STEPS = (10, 15, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 125, 150, 175, 200, 250)
_PRICE_STEPS += (300, 350, 400, 450, 500, 600, 750, 1000, 1500, 2000, 3000, 5000)
_SIZE_WORDS = {
    "XS": ("xs", "extra small"),
    "S": ("small", "s", "size s"),
    "M": ("medium", "m", "size m", "med"),
    "L": ("large", "l", "size l"),
    "XL": ("xl", "extra large", "size xl"),
    "XXL": ("xxl", "2xl", "size xxl"),
}
_QUERY_OPENERS = (
    "", "", "looking for ", "need ", "do you have ", "any ", "show me ", "i want ",
    "searching for ", "got any ", "pls find ", "where are your ",
)  # fmt: skip
_QUERY_CLOSERS = ("", "", "", "?", " pls", " thanks", "??")
_GENERIC_NOUNS = ("something", "gear", "stuff", "anything", "items")


def _price_phrase(kind: str, lo: int | None, hi: int | None, rng: random.Random) -> str:
    if kind == "max":
        return rng.choice(
            (f"under ${hi}", f"below {hi}", f"less than {hi} dollars", f"max ${hi}", f"<${hi}",
             f"no more than ${hi}", f"budget {hi}", f"under {hi} bucks")
        )  # fmt: skip
    if kind == "min":
        return rng.choice(
            (f"over ${lo}", f"above {lo}", f"at least ${lo}", f"more than {lo} dollars")
        )
    return rng.choice((f"between ${lo} and ${hi}", f"${lo}-{hi}", f"{lo} to {hi} dollars"))


def _pick_prices(price: Decimal, rng: random.Random) -> tuple[str, int | None, int | None]:
    above = [s for s in _PRICE_STEPS if s >= price][:2]
    below = [s for s in _PRICE_STEPS if s <= price * Decimal("0.9")][-2:]
    kinds = (["max"] * 3 if above else []) + (["min"] if below else [])
    kinds += ["range"] if above and below else []
    if not kinds:
        return "none", None, None
    kind = rng.choice(kinds)
    hi = rng.choice(above) if kind in ("max", "range") else None
    lo = rng.choice(below) if kind in ("min", "range") else None
    return kind, lo, hi


def _query_constraints(p: Product, vocab: QueryVocab, rng: random.Random) -> list[str]:
    colors = any(_variant_option(v, _COLOR_OPTIONS) for v in p.variants)
    sizes = any(_variant_option(v, _SIZE_OPTIONS) for v in p.variants)
    available = {
        "color": colors,
        "size": sizes,
        "price": True,
        "stock": any(v.in_stock for v in p.variants),
        "sale": any(v.on_sale and v.in_stock for v in p.variants),
        "keywords": any(t in vocab.keywords for t in p.tags),
    }
    options = [k for k, ok in available.items() if ok]
    extra = rng.sample(options, min(rng.choice((0, 1, 1, 2, 2, 3)), len(options)))
    kinds = (["type"] if p.product_type and (not extra or rng.random() < 0.85) else []) + extra
    return [
        k for k in ("type", "color", "size", "price", "stock", "sale", "keywords") if k in kinds
    ]


def _query_example(
    p: Product, vocab: QueryVocab, rng: random.Random
) -> tuple[str, str, str] | None:
    kinds = _query_constraints(p, vocab, rng)
    if not kinds:
        return None
    variants = [v for v in p.variants if v.in_stock] if "stock" in kinds else list(p.variants)
    if "sale" in kinds:
        variants = [v for v in variants if v.on_sale and v.in_stock]
    if not variants:
        return None
    v = rng.choice(variants)
    gold: dict = {}
    adjectives: list[str] = []  # protected pieces that go before the noun
    tails: list[str] = []  # protected pieces that go after it
    if "color" in kinds and (color := _variant_option(v, _COLOR_OPTIONS)):
        gold["color"] = color
        if rng.random() < 0.6:
            adjectives.append(color.lower())
        else:
            tails.append(f"in {color.lower()}")
    if "size" in kinds and (size := _variant_option(v, _SIZE_OPTIONS)):
        gold["size"] = size
        words = _SIZE_WORDS.get(size.upper(), (f"size {size.lower()}", f"sz {size.lower()}"))
        tails.append(rng.choice(words) if rng.random() < 0.7 else f"in {rng.choice(words)}")
    if "price" in kinds:
        kind, lo, hi = _pick_prices(v.price, rng)
        if kind != "none":
            tails.append(_price_phrase(kind, lo, hi, rng))
            if hi is not None:
                gold["max_price"] = hi
            if lo is not None:
                gold["min_price"] = lo
    if "stock" in kinds:
        gold["in_stock"] = True
        tails.append(rng.choice(("in stock", "available now", "that's in stock", "ready to ship")))
    if "sale" in kinds:
        gold["on_sale"] = True
        phrase = rng.choice(("on sale", "discounted", "on clearance", "sale"))
        (adjectives if phrase != "on clearance" else tails).append(phrase)
    if "keywords" in kinds:
        tags = [t for t in p.tags if t in vocab.keywords]
        chosen = sorted(rng.sample(tags, min(len(tags), rng.choice((1, 1, 2)))))
        gold["keywords"] = chosen
        for kw in chosen:
            if rng.random() < 0.75:
                adjectives.append(kw)
            else:
                tails.append(f"for {kw}")
    if "type" in kinds:
        gold["product_type"] = p.product_type
        noun = rng.choice(_type_nouns(p.product_type))
        if rng.random() < 0.3:
            noun = _typo_in(noun, rng)
    else:
        noun = rng.choice(_GENERIC_NOUNS)
    if not gold:
        return None
    rng.shuffle(adjectives)
    rng.shuffle(tails)
    opener = rng.choice(_QUERY_OPENERS)
    if rng.random() < 0.3:
        opener = _typo_in(opener, rng)
    text = opener + " ".join([*adjectives, noun, *tails]) + rng.choice(_QUERY_CLOSERS)
    if rng.random() < 0.2:
        text = text[0].upper() + text[1:]
    category = "+".join(k for k in kinds if _kind_in_gold(k, gold))
    return text.strip(), json.dumps(gold, sort_keys=True), category


def _kind_in_gold(kind: str, gold: dict) -> bool:
    keys = {
        "type": ("product_type",),
        "color": ("color",),
        "size": ("size",),
        "price": ("max_price", "min_price"),
        "stock": ("in_stock",),
        "sale": ("on_sale",),
        "keywords": ("keywords",),
    }[kind]
    return any(k in gold for k in keys)


def build_query_rewrite(
    cfg: StoreConfig, products: list[Product], n: int, rng: random.Random
) -> list[Example]:
    if n <= 0 or not products:
        return []
    vocab = query_vocabulary(products)
    system = render_task_prompt(cfg, "query_rewrite", QUERY_REWRITE.allowed_text(vocab))

    def make(p: Product, r: random.Random) -> tuple[str, str, str] | None:
        return _query_example(p, vocab, r)

    draws = _collect(n, rng, products, make, QUERY_REWRITE, vocab)
    return [_example(system, u, a, "query_rewrite", c, p) for p, u, a, c in draws]


# --- review extraction -------------------------------------------------------------------


_FIT_LINES = {
    "runs small": (
        "Runs small, I had to size up.", "it runs small so order one size up",
        "Fits snug - definitely runs small.", "runs small!! go up a size",
    ),
    "true to size": (
        "Fits true to size.", "true to size for me", "Sizing is spot on, took my usual {size}.",
        "fit is exactly as expected, true to size",
    ),
    "runs large": (
        "Runs large, size down.", "it's a bit big, runs large",
        "Way roomier than expected, runs large.", "runs large - I swapped for a smaller one",
    ),
}  # fmt: skip
_QUALITY_LINES = {
    "high": (
        "Really well made.", "quality is excellent", "Solid construction, feels premium.",
        "the build quality is top notch",
    ),
    "low": (
        "Feels cheap.", "the quality is poor", "Flimsy material for the money.",
        "build quality is disappointing",
    ),
}  # fmt: skip
_RECOMMEND_LINES = {
    True: (
        "Would recommend!",
        "I'd buy it again.",
        "highly recommend",
        "Recommended to my friends.",
    ),
    False: (
        "Would not recommend.",
        "save your money",
        "I wouldn't buy it again.",
        "not recommended",
    ),
}
_ISSUE_LINES = {
    "zipper": ("The zipper snagged after a week.", "zipper broke on the second trip"),
    "durability": ("It started falling apart after a month.", "wore through way too fast"),
    "shipping": ("Shipping took forever.", "arrived two weeks late"),
    "color": ("The {color} looks nothing like the photos.", "colour is much duller than pictured"),
    "comfort": ("Not comfortable for long days.", "it rubs and chafes after an hour"),
    "packaging": ("The box was crushed when it arrived.", "packaging was torn open"),
    "smell": (
        "Strong chemical smell out of the package.",
        "it still smells weird after airing it out",
    ),
    "stitching": ("Stitching came loose along the seam.", "loose threads everywhere"),
    "waterproofing": ("It leaked in the first rain.", "got soaked, not waterproof at all"),
    "missing parts": ("Parts were missing from the box.", "came without half the pieces"),
}
_PRAISE_LINES = (
    "Looks great.", "Love the design.", "The style is spot on.", "Great for {occasion}.",
    "my partner likes it too", "Exactly what I was looking for.",
)  # fmt: skip
_OPENERS = (
    "Bought the {title} for {occasion}.", "Got this in {color}.", "Review of the {title}:",
    "Second one I've bought.", "", "", "Used it on a weekend trip.",
)  # fmt: skip
_OCCASIONS = ("a weekend trip", "everyday use", "a gift", "my commute", "a holiday")
_STARS = {
    "positive": (4, 5),
    "negative": (1, 2),
    "mixed": (2, 3, 4),
}


def _applicable_issues(p: Product, sized: bool) -> list[str]:
    text = f"{p.title} {p.product_type} {p.description}".lower()
    out = ["color", "durability", "packaging", "shipping", "smell", "stitching"]
    if sized:
        out.append("comfort")
    else:
        out.append("missing parts")
    if re.search(r"zip|jacket|pack\b|tent\b|bag\b|hood|parka|\bshell\b", text):
        out.append("zipper")
    if "waterproof" in text or "rain" in text:
        out.append("waterproofing")
    return sorted(out)


def _review_labels(p: Product, rng: random.Random) -> dict:
    sized = any(_variant_option(v, _SIZE_OPTIONS) for v in p.variants)
    sentiment = rng.choices(REVIEW_SENTIMENTS, weights=(5, 3, 2))[0]
    issues_from = _applicable_issues(p, sized)
    if sentiment == "positive":
        quality = rng.choice(("high", "high", None))
        recommend = rng.choice((True, True, None))
        issues: list[str] = []
    elif sentiment == "negative":
        quality = rng.choice(("low", "low", None))
        recommend = rng.choice((False, False, None))
        issues = rng.sample(issues_from, rng.choice((1, 1, 2)))
    else:
        quality = rng.choice(("high", "low", None))
        recommend = rng.choice((True, False, None))
        issues = rng.sample(issues_from, 1)
    fit = None
    if sized and rng.random() < 0.6:
        weights = (1, 3, 1) if sentiment == "positive" else (2, 1, 2)
        fit = rng.choices(REVIEW_FITS, weights=weights)[0]
    return {
        "fit": fit,
        "issues": sorted(issues),
        "quality": quality,
        "sentiment": sentiment,
        "would_recommend": recommend,
    }


def _review_text(p: Product, labels: dict, rng: random.Random) -> str:
    v = rng.choice(p.variants)
    fill = {
        "title": p.title if rng.random() < 0.6 else p.title.lower(),
        "occasion": rng.choice(_OCCASIONS),
        "color": (_variant_option(v, _COLOR_OPTIONS) or "colour").lower(),
        "size": _variant_option(v, _SIZE_OPTIONS) or "size",
    }
    body = []
    if labels["fit"]:
        body.append(rng.choice(_FIT_LINES[labels["fit"]]))
    if labels["quality"]:
        body.append(rng.choice(_QUALITY_LINES[labels["quality"]]))
    body += [rng.choice(_ISSUE_LINES[i]) for i in labels["issues"]]
    needs_praise = labels["sentiment"] == "mixed" and labels["quality"] != "high"
    if needs_praise or (labels["sentiment"] == "positive" and len(body) < 2):
        body.append(rng.choice(_PRAISE_LINES))
    rng.shuffle(body)
    opener = rng.choice(_OPENERS)
    if "{color}" in opener and not _variant_option(v, _COLOR_OPTIONS):
        opener = ""
    parts = [opener, *body]
    if labels["would_recommend"] is not None:
        parts.append(rng.choice(_RECOMMEND_LINES[labels["would_recommend"]]))
    if rng.random() < 0.4:
        stars = rng.choice(_STARS[labels["sentiment"]])
        rating = rng.choice((f"{stars}/5", "★" * stars + "☆" * (5 - stars), f"{stars} stars"))
        parts.insert(0 if rng.random() < 0.5 else len(parts), rating)
    text = " ".join(s.format(**fill) for s in parts if s)
    return _noisy(text, rng)


def _noisy(text: str, rng: random.Random) -> str:
    """Real reviews: lowercase, missing full stops, a typo, shouting."""
    roll = rng.random()
    if roll < 0.3:
        text = text.lower()
    elif roll < 0.4:
        text = text.replace(". ", " ")
    if rng.random() < 0.35:
        text = _typo_in(text, rng)
    if rng.random() < 0.05:
        text = text.upper()
    return text


def build_review_extract(
    cfg: StoreConfig, products: list[Product], n: int, rng: random.Random
) -> list[Example]:
    if n <= 0 or not products:
        return []
    system = render_task_prompt(cfg, "review_extract", REVIEW_EXTRACT.allowed_text(None))

    def make(p: Product, r: random.Random) -> tuple[str, str, str]:
        labels = _review_labels(p, r)
        return _review_text(p, labels, r), json.dumps(labels, sort_keys=True), labels["sentiment"]

    draws = _collect(n, rng, products, make, REVIEW_EXTRACT)
    return [_example(system, u, a, "review_extract", c, p) for p, u, a, c in draws]


# --- descriptions ------------------------------------------------------------------------


def _items(value: str) -> list[str]:
    head, _, last = value.rpartition(" and ")
    return [*head.split(", "), last] if head else [value]


_SKIPPED_FACTS = {"material", "fit", "care", "weight", "warranty"}
_OPENING = (
    "Meet the {title}, a no-fuss pick from our {type} range.",
    "From our {type} range: the {title}, made for getting outside.",
    "Say hello to the {title}, straight from our {type} shelf.",
    "Here is the {title}, part of our {type} line-up and built for real use.",
)
_SENTENCES = {
    "material": ("It is made from {v}.", "The build: {v}.", "Materials are {v}."),
    "colors": ("It comes in {v}.", "Colour options are {v}.", "Pick a colour: {v}."),
    "sizes": ("Sizes run {v}.", "Choose from sizes {v}.", "It is cut in sizes {v}."),
    "weight": ("It weighs {v}.", "On the scale it comes in at {v}.", "Weight: {v}."),
    "fit": ("On fit: {v}.", "Fit notes: {v}.", "As for fit, {v}."),
    "care": ("Care is simple: {v}.", "To look after it, {v}.", "Care: {v}."),
    "warranty": ("It is covered by a {v}.", "Backed by a {v}.", "Peace of mind: {v}."),
    "feature": ("{K}: {v}.", "For {k}, expect {v}.", "{K} comes down to this: {v}."),
}
_PADDING = (
    "Practical, well made and easy to live with.",
    "It keeps things simple so the trip can be the focus.",
    "A straightforward piece of kit that does its job season after season.",
    "Plain, useful design with nothing you do not need.",
)
_LIVELY = re.compile(r"\b(enthusias\w*|playful|fun|energetic|upbeat|excit\w*|bold)\b", re.I)


def _product_attributes(p: Product, rng: random.Random) -> dict[str, str]:
    """A random subset of the product's facts, in a fixed order."""
    attrs = {"title": p.title}
    if p.product_type:
        attrs["type"] = p.product_type
    colors = _option_values([p], _COLOR_OPTIONS)
    sizes = sorted(_option_values([p], _SIZE_OPTIONS), key=_size_order)
    optional: list[tuple[str, str | None]] = [
        ("material", _fact(p, "material")),
        ("colors", _join(colors) if colors else None),
        ("sizes", _join(sizes) if sizes else None),
        ("weight", _fact(p, "weight")),
        ("fit", _fact(p, "fit")),
        ("care", _fact(p, "care")),
    ]
    optional += [(k.lower(), v) for k, v in _facts(p) if k.lower() not in _SKIPPED_FACTS]
    optional.append(("warranty", _fact(p, "warranty")))
    present = [(k, v) for k, v in optional if v and k not in attrs]
    keep = {k for k, _ in present if rng.random() < 0.65}
    if len(keep) < 2:
        keep |= {k for k, _ in rng.sample(present, min(2, len(present)))}
    attrs.update({k: v.rstrip(".") for k, v in present if k in keep})
    return attrs


def _sentence(key: str, value: str, rng: random.Random) -> str:
    kind = key if key in _SENTENCES else "feature"
    if key in ("colors", "sizes") and len(_items(value)) == 1:
        return f"It comes in {value} only." if key == "colors" else f"One size: {value}."
    v = value if key in ("colors", "sizes") else _lower_first(value)
    return rng.choice(_SENTENCES[kind]).format(v=v, k=key, K=key.capitalize())


def _description(attrs: dict[str, str], voice: str, rng: random.Random) -> str:
    opening = rng.choice(_OPENING).format(
        title=attrs["title"], type=attrs.get("type", "own").lower()
    )
    body = [_sentence(k, v, rng) for k, v in attrs.items() if k not in ("title", "type")]
    middle = body[1:-1]
    rng.shuffle(middle)  # vary the order, keep a natural first and last fact
    sentences = [opening, *body[:1], *middle, *body[1:][-1:]] if len(body) > 1 else [opening, *body]
    padding = list(_PADDING)
    rng.shuffle(padding)
    while len(" ".join(sentences).split()) < DESCRIPTION_WORDS[0] and padding:
        sentences.append(padding.pop())
    text = " ".join(sentences)
    if _LIVELY.search(voice) and rng.random() < 0.5:
        text = text[:-1] + "!"  # a lively voice may end on one exclamation mark
    return text


def _description_example(p: Product, voice: str, rng: random.Random) -> tuple[str, str, str] | None:
    attrs = _product_attributes(p, rng)
    # Drop optional facts from the end until the text fits the word budget.
    while True:
        text = _description(attrs, voice, rng)
        if len(text.split()) <= DESCRIPTION_WORDS[1] or len(attrs) <= 2:
            break
        attrs.pop(next(reversed(attrs)))
    user = "\n".join(f"{k}: {v}" for k, v in attrs.items())
    return user, text, p.product_type or "product"


def build_description(
    cfg: StoreConfig, products: list[Product], n: int, rng: random.Random
) -> list[Example]:
    # Flagged pages (boilerplate, broken HTML) have mangled facts: not gold text.
    clean = [p for p in products if not p.flags]
    if n <= 0 or not clean:
        return []
    system = render_task_prompt(cfg, "description")
    voice = cfg.brand.voice

    def make(p: Product, r: random.Random) -> tuple[str, str, str] | None:
        return _description_example(p, voice, r)

    # A draw whose facts break a rule (a price in a spec line, say) is skipped.
    draws = _collect(n, rng, clean, make, DESCRIPTION)
    return [_example(system, u, a, "description", c, p) for p, u, a, c in draws]
