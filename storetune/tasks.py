"""The catalog tasks, defined once: what an answer looks like and the rules it must keep.

The dataset builder (`dataset/builders/tasks.py`) keeps a generated target only when
its task's `problems` are empty, and the grader (`eval/catalog_tasks.py`) reads replies
and checks them with the same functions, so every target the builder writes passes the
grader and every rule the grader penalises is one the builder enforces.

- classify: a product title -> one taxonomy path of this catalog.
- query_rewrite: a shopper's search -> a JSON object of filters (`QUERY_FIELDS`).
- review_extract: a customer review -> a JSON object with exactly `REVIEW_FIELDS`.
- description: ``key: value`` attribute lines -> a 40-110 word description that
  mentions every value and keeps the voice rules (`voice_breaches`).

A spec also lists the values it allows, as the block the task prompt shows
(`allowed_text`). The instruction sentences themselves are still rendered by the
prompt module (`render_task_prompt`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storetune.errors import StoretuneError
from storetune.facts import normalize  # a value typed with “ ” or – is found typed plainly

QUERY_FIELDS = (
    "product_type",
    "color",
    "size",
    "max_price",
    "min_price",
    "in_stock",
    "on_sale",
    "keywords",
)
REVIEW_FIELDS = ("sentiment", "fit", "quality", "would_recommend", "issues")
REVIEW_SENTIMENTS = ("positive", "negative", "mixed")
REVIEW_FITS = ("runs small", "true to size", "runs large")
REVIEW_QUALITY = ("high", "low")
# Sizing is not an issue: the `fit` field carries it, so one fact has one label.
REVIEW_ISSUES = (
    "color",
    "comfort",
    "durability",
    "missing parts",
    "packaging",
    "shipping",
    "smell",
    "stitching",
    "waterproofing",
    "zipper",
)
# The values each single-valued review field may take (null where a review may not say).
REVIEW_LABELS: dict[str, tuple] = {
    "sentiment": REVIEW_SENTIMENTS,
    "fit": (*REVIEW_FITS, None),
    "quality": (*REVIEW_QUALITY, None),
    "would_recommend": (True, False, None),
}
DESCRIPTION_WORDS = (40, 110)

_WORD = re.compile(r"[a-z0-9]+")


# --- classify ----------------------------------------------------------------------------


def taxonomy_text(paths: list[str]) -> str:
    """The allowed classes as the classify prompt lists them."""
    return "Taxonomy paths:\n" + "\n".join(f"- {path}" for path in paths)


def taxonomy_path(text: str, lower: bool = True) -> list[str]:
    """The class an answer names: 'Category: A > B > C.' -> ['a', 'b', 'c'] (first line;
    a leading label, quotes and the end period dropped)."""
    line = next((ln for ln in normalize(text).strip().splitlines() if ln.strip()), "")
    if ":" in line and ">" in line.split(":", 1)[1]:
        line = line.split(":", 1)[1]
    line = line.strip().strip("`\"'").rstrip(".").strip()
    return [p.strip().lower() if lower else p.strip() for p in line.split(">") if p.strip()]


def class_problems(answer: str, taxonomy: list[str]) -> list[str]:
    """Problems with a classify answer: it must be one listed path, exactly as listed."""
    if answer not in taxonomy:
        return [f"{answer[:60]!r} is not one of this catalog's taxonomy paths"]
    if " > ".join(taxonomy_path(answer, lower=False)) != answer:
        return [f"{answer!r} does not read back as a taxonomy path"]
    return []


# --- JSON answers --------------------------------------------------------------------------


def parse_json_object(text: str) -> dict | None:
    """The JSON object in an answer (code fences and surrounding prose allowed), or None."""
    body = re.sub(r"```(?:json)?", "", text).strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(body[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _json_problems(answer: str, validate: Callable[[dict], list[str]]) -> list[str]:
    obj = parse_json_object(answer)
    return ["not a JSON object"] if obj is None else validate(obj)


# --- query rewrite -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueryVocab:
    """Values a search filter may take in one catalog."""

    product_type: list[str]
    color: list[str]
    size: list[str]
    keywords: list[str]


def query_text(v: QueryVocab) -> str:
    """The allowed keys and values as the query_rewrite prompt lists them."""
    lines = [f"Keys: {', '.join(QUERY_FIELDS)}"]
    lines.append(f"product_type: {' | '.join(v.product_type)}")
    if v.color:
        lines.append(f"color: {' | '.join(v.color)}")
    if v.size:
        lines.append(f"size: {' | '.join(v.size)}")
    lines += [
        "max_price, min_price: numbers",
        "in_stock, on_sale: true or false",
        "keywords: list of other lowercase words from the search",
    ]
    return "\n".join(lines)


def validate_query(obj: object, vocab: QueryVocab | None) -> list[str]:
    """Problems with a query_rewrite answer (empty when it is valid). Without a vocabulary
    only the keys and value types are checked, not whether this catalog has the values."""
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    problems = [f"unknown key {k!r}" for k in obj if k not in QUERY_FIELDS]
    if vocab is not None:
        allowed = {"product_type": vocab.product_type, "color": vocab.color, "size": vocab.size}
        for key, values in allowed.items():
            if key in obj and obj[key] not in values:
                problems.append(f"{key} {obj[key]!r} is not in this catalog")
    for key in ("max_price", "min_price"):
        val = obj.get(key, 0)
        if isinstance(val, bool) or not isinstance(val, int | float) or val < 0:
            problems.append(f"{key} must be a non-negative number")
    for key in ("in_stock", "on_sale"):
        if key in obj and not isinstance(obj[key], bool):
            problems.append(f"{key} must be true or false")
    kw = obj.get("keywords", [])
    if not isinstance(kw, list) or not all(isinstance(w, str) and w == w.lower() for w in kw):
        problems.append("keywords must be a list of lowercase strings")
    return problems


# --- review extraction -------------------------------------------------------------------


def review_text() -> str:
    """The review schema as the review_extract prompt lists it."""
    return "\n".join(
        [
            f"Keys: {', '.join(sorted(REVIEW_FIELDS))}",
            f"sentiment: {' | '.join(REVIEW_SENTIMENTS)}",
            f"fit: {' | '.join(REVIEW_FITS)} | null",
            f"quality: {' | '.join(REVIEW_QUALITY)} | null",
            "would_recommend: true | false | null",
            f"issues: sorted list, each one of: {', '.join(REVIEW_ISSUES)}",
        ]
    )


def validate_review(obj: object) -> list[str]:
    """Problems with a review_extract answer (empty when it follows the schema)."""
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    if set(obj) != set(REVIEW_FIELDS):
        return [f"keys must be exactly {sorted(REVIEW_FIELDS)}, got {sorted(obj)}"]
    problems = [
        f"{key} {obj[key]!r} is not one of: {', '.join(json.dumps(v) for v in allowed)}"
        for key, allowed in REVIEW_LABELS.items()
        if obj[key] not in allowed
    ]
    issues = obj["issues"]
    if not isinstance(issues, list) or any(i not in REVIEW_ISSUES for i in issues):
        problems.append(f"issues must be a list drawn from: {', '.join(REVIEW_ISSUES)}")
    elif issues != sorted(set(issues)):
        problems.append("issues must be sorted and without repeats")
    return problems


# --- descriptions ------------------------------------------------------------------------


def description_attributes(user_text: str) -> dict[str, str]:
    """The `key: value` attribute lines of a description request."""
    attrs: dict[str, str] = {}
    for line in user_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.strip():
            attrs[key.strip().lower()] = value.strip()
    return attrs


def _short_items(value: str) -> list[str]:
    """The items of a list value ('Moss, Sand and Black', 'S, M, L'), or [] for one value."""
    items = [v.strip() for v in re.split(r",|\band\b", value) if v.strip()]
    return items if len(items) > 1 and all(len(i.split()) <= 2 for i in items) else []


def _item_in(item: str, text: str) -> bool:
    if len(item) <= 3 and item.isupper():  # sizes: case matters so "S" does not match "it's"
        return re.search(rf"(?<![\w']){re.escape(item)}(?![\w'])", text) is not None
    return re.search(rf"(?<![\w]){re.escape(item.lower())}(?![\w])", text.lower()) is not None


def _unmentioned(value: str, text: str) -> list[str]:
    """The parts of an attribute value a text leaves out: the missing items of a list
    value; for one value, the value unless it appears or 80% of its words do."""
    text = normalize(text)
    items = _short_items(value)
    if items:
        return [i for i in items if not _item_in(i, text)]
    low = text.lower()
    if normalize(value).lower() in low:
        return []
    words = [w for w in _WORD.findall(normalize(value).lower()) if len(w) > 2 or w.isdigit()]
    have = set(_WORD.findall(low))
    return [] if words and sum(w in have for w in words) / len(words) >= 0.8 else [value]


def value_mentioned(value: str, text: str) -> bool:
    """Whether a description mentions an attribute value (every item of a list value)."""
    return not _unmentioned(value, text)


def missing_attribute_values(text: str, attrs: dict[str, str]) -> list[str]:
    """'key: item' for every attribute value (or list item) a description leaves out."""
    return [f"{key}: {part}" for key, value in attrs.items() for part in _unmentioned(value, text)]


_FIRST_PERSON_RE = re.compile(r"\bI\b|\bI'(?:m|ve|ll|d)\b|\b[Mm]y\b")
_PRICE_RE = re.compile(r"[$€£]\s?\d|\b\d+[.,]\d{2}\b|\b(usd|eur|price[sd]?|costs?)\b", re.I)
_STOCK_RE = re.compile(
    r"\b(in\s+stock|out\s+of\s+stock|sold\s+out|back\s?order\w*|available\s+now"
    r"|ships?\s+(today|now)|limited\s+stock|only\s+\d+\s+left|while\s+supplies\s+last)\b",
    re.I,
)


@dataclass(frozen=True)
class VoiceBreach:
    """One voice rule a description breaks; `found` is what broke it."""

    rule: str  # words | first_person | exclamations | price | stock
    found: str

    def message(self) -> str:
        """How a rejected training target is explained."""
        lo, hi = DESCRIPTION_WORDS
        return {
            "words": f"{self.found} words, expected {lo}-{hi}",
            "first_person": f"first person singular ('{self.found}')",
            "exclamations": f"{self.found} exclamation marks, at most 1",
            "price": "mentions a price",
            "stock": "makes a stock claim",
        }[self.rule]

    def label(self) -> str:
        """How an eval report names it (the part before ' (' is the kind it counts)."""
        lo, hi = DESCRIPTION_WORDS
        return {
            "words": f"{self.found} words ({lo}-{hi} wanted)",
            "first_person": "first person",
            "exclamations": f"{self.found} exclamation marks",
            "price": "mentions a price",
            "stock": "makes a stock claim",
        }[self.rule]


def voice_breaches(text: str) -> list[VoiceBreach]:
    """The description voice rules a text breaks: 40-110 words, no 'I' or 'my', at most
    one '!', no price, no stock claim."""
    out = []
    n = len(text.split())
    lo, hi = DESCRIPTION_WORDS
    if not lo <= n <= hi:
        out.append(VoiceBreach("words", str(n)))
    if m := _FIRST_PERSON_RE.search(text):
        out.append(VoiceBreach("first_person", m.group()))
    if text.count("!") > 1:
        out.append(VoiceBreach("exclamations", str(text.count("!"))))
    if m := _PRICE_RE.search(text):
        out.append(VoiceBreach("price", m.group()))
    if m := _STOCK_RE.search(text):
        out.append(VoiceBreach("stock", m.group()))
    return out


def description_problems(text: str) -> list[str]:
    """The voice rules a description breaks, worded for a rejected training target."""
    return [b.message() for b in voice_breaches(text)]


def voice_issues(text: str) -> list[str]:
    """The voice rules a description breaks, worded for an eval report."""
    return [b.label() for b in voice_breaches(text)]


def _description_problems(answer: str, user: str) -> list[str]:
    return description_problems(answer) + [
        f"misses {m}" for m in missing_attribute_values(answer, description_attributes(user))
    ]


# --- the specs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    """One catalog task: what its answer is and the rules an answer must keep.

    `problems(answer, user, allowed)` lists what is wrong with an answer to the user
    message (empty: a valid answer); `allowed` is what this catalog allows (the taxonomy
    for classify, a QueryVocab for query_rewrite, unused by the others).
    `allowed_text(allowed)` is that list as the task prompt shows it.
    """

    name: str
    problems: Callable[[str, str, Any], list[str]]
    allowed_text: Callable[[Any], str | None]
    fields: tuple[str, ...] = ()  # keys of a JSON answer
    labels: dict[str, tuple] = field(default_factory=dict)  # fixed values of a JSON field


CLASSIFY = TaskSpec(
    "classify",
    problems=lambda answer, user, taxonomy: class_problems(answer, taxonomy),
    allowed_text=taxonomy_text,
)
QUERY_REWRITE = TaskSpec(
    "query_rewrite",
    problems=lambda answer, user, vocab: _json_problems(
        answer, lambda obj: validate_query(obj, vocab)
    ),
    allowed_text=query_text,
    fields=QUERY_FIELDS,
)
REVIEW_EXTRACT = TaskSpec(
    "review_extract",
    problems=lambda answer, user, _: _json_problems(answer, validate_review),
    allowed_text=lambda _: review_text(),
    fields=REVIEW_FIELDS,
    labels={**REVIEW_LABELS, "issues": REVIEW_ISSUES},
)
DESCRIPTION = TaskSpec(
    "description",
    problems=lambda answer, user, _: _description_problems(answer, user),
    allowed_text=lambda _: None,
)

TASKS: dict[str, TaskSpec] = {
    s.name: s for s in (CLASSIFY, QUERY_REWRITE, REVIEW_EXTRACT, DESCRIPTION)
}
CATALOG_TASKS = tuple(TASKS)


def task_spec(name: str) -> TaskSpec:
    """The spec of one catalog task; an unknown name is a user error."""
    if name not in TASKS:
        raise StoretuneError(
            f"unknown catalog task {name!r}", hint=f"use one of: {', '.join(CATALOG_TASKS)}"
        )
    return TASKS[name]
