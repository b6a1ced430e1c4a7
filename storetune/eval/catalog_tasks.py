"""Graders for the catalog tasks: classification, query rewriting, review extraction, copy.

Each returns a Grade whose task_metrics feed the aggregate metrics (metrics.py), and a
verdict on the same 3/2/1 scale so every task shows in one breakdown:

classify        correct = the gold taxonomy path; partial = an ancestor of it, or only
                its leaf; wrong otherwise.
query_rewrite,  correct = valid JSON with every field right; partial = at least half
review_extract  of the fields right; wrong = invalid JSON or fewer.
description     correct = every attribute value mentioned and the voice rules kept
                (40-110 words, no "I", at most one "!", no price); partial = at least
                half the values, or a voice rule broken; wrong = an unsupported claim
                (a price or figure not in the attributes) or under half the values.
"""

from __future__ import annotations

import json
import re
from typing import Any

from storetune.eval.facts import ProductNames, normalize
from storetune.eval.hallucination import Evidence, unsupported_claims
from storetune.eval.records import Case, Grade

CATALOG_TASKS = ("classify", "query_rewrite", "review_extract", "description")
QUERY_KEYS = (
    "product_type", "color", "size", "max_price", "min_price", "in_stock", "on_sale", "keywords",
)  # fmt: skip
REVIEW_KEYS = ("sentiment", "fit", "quality", "would_recommend", "issues")
_WORD = re.compile(r"[a-z0-9]+")


def grade_catalog(case: Case, reply: str, names: ProductNames) -> Grade:
    grader = {
        "classify": _grade_classify,
        "query_rewrite": _grade_json,
        "review_extract": _grade_json,
        "description": _grade_description,
    }[case.task]
    return grader(case, reply, names)


# ---------------------------------------------------------------- classification


def taxonomy_path(text: str, lower: bool = True) -> list[str]:
    """'Category: A > B > C.' -> ['a', 'b', 'c'] (first line, label and end period dropped)."""
    line = next((ln for ln in normalize(text).strip().splitlines() if ln.strip()), "")
    if ":" in line and ">" in line.split(":", 1)[1]:
        line = line.split(":", 1)[1]
    line = line.strip().strip("`\"'").rstrip(".").strip()
    return [p.strip().lower() if lower else p.strip() for p in line.split(">") if p.strip()]


def _grade_classify(case: Case, reply: str, names: ProductNames) -> Grade:
    gold, pred = taxonomy_path(case.gold), taxonomy_path(reply)
    g = Grade("wrong", case.task, case.category)
    shown = " > ".join(taxonomy_path(case.gold, lower=False))
    # a prediction equal but for case is the gold class, shown as the gold writes it
    said = shown if pred == gold else " > ".join(taxonomy_path(reply, lower=False))
    g.task_metrics = {"gold_class": shown, "pred_class": said}
    if pred == gold:
        g.verdict = "correct"
    elif len(pred) >= 2 and gold[: len(pred)] == pred:
        g.verdict = "partial"
        g.reasons.append("stops at an ancestor of the right category")
    elif len(pred) == 1 and gold and pred[0] == gold[-1]:
        g.verdict = "partial"
        g.reasons.append("right leaf, not the full path")
    else:
        g.reasons.append(f"'{' > '.join(pred) or reply[:60]}' is not '{' > '.join(gold)}'")
    return g


# ---------------------------------------------------------------- JSON tasks


def parse_json_object(text: str) -> dict | None:
    """The JSON object in a reply (code fences and surrounding prose allowed), or None."""
    body = re.sub(r"```(?:json)?", "", text).strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(body[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _norm_word(w: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(w).lower())


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(str(v).replace("$", "").replace(",", ""))
    except ValueError:
        return None


def field_equal(key: str, gold: Any, pred: Any) -> bool:
    """One field compared the way a search filter or a dashboard would read it."""
    if isinstance(gold, bool) or isinstance(pred, bool):
        return gold is pred
    if isinstance(gold, list) or isinstance(pred, list):
        if not isinstance(gold, list) or not isinstance(pred, list):
            return False
        if key == "issues":
            return _issues_match(gold, pred)
        return {_norm_word(x) for x in gold} == {_norm_word(x) for x in pred}
    if gold is None or pred is None:
        return gold is None and pred is None
    a, b = _as_number(gold), _as_number(pred)
    if a is not None and b is not None:
        return abs(a - b) < 1e-6
    return _norm_word(gold) == _norm_word(pred)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(str(text).lower()) if len(w) > 2}


def _issues_match(gold: list, pred: list) -> bool:
    """Free-text issues: each side's items share a word stem with one on the other side."""
    if len(gold) != len(pred):
        return False
    return all(any(_stems(a) & _stems(b) for b in pred) for a in gold) and all(
        any(_stems(a) & _stems(b) for b in gold) for a in pred
    )


def _grade_json(case: Case, reply: str, names: ProductNames) -> Grade:
    g = Grade("wrong", case.task, case.category)
    gold = parse_json_object(case.gold) or {}
    pred = parse_json_object(reply)
    if pred is None:
        g.task_metrics = {"json_valid": False, "fields": {k: False for k in gold}}
        g.reasons.append("not a JSON object")
        return g
    keys = sorted(set(gold) | set(pred))
    fields = {k: k in gold and k in pred and field_equal(k, gold[k], pred[k]) for k in keys}
    accuracy = sum(fields.values()) / len(keys) if keys else 1.0
    g.task_metrics = {"json_valid": True, "fields": fields, "field_accuracy": accuracy}
    wrong = [k for k, ok in fields.items() if not ok]
    if wrong:
        g.reasons.append("wrong or missing fields: " + ", ".join(wrong))
    g.verdict = "correct" if accuracy == 1.0 else "partial" if accuracy >= 0.5 else "wrong"
    return g


# ---------------------------------------------------------------- descriptions


def attributes(text: str) -> dict[str, str]:
    """`key: value` lines of a description request."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.strip():
            out[key.strip().lower()] = value.strip()
    return out


def value_mentioned(value: str, reply: str) -> bool:
    """A value counts when it appears, or (long values) 80% of its words do.
    Lists of short items ("Rust, Slate", "S, M, L, XL") need every item."""
    reply_n = normalize(reply)
    items = [v.strip() for v in re.split(r",|\band\b", value) if v.strip()]
    if len(items) > 1 and all(len(i.split()) <= 2 for i in items):
        return all(_item_in(i, reply_n) for i in items)
    if normalize(value).lower() in reply_n.lower():
        return True
    words = [w for w in _WORD.findall(normalize(value).lower()) if len(w) > 2 or w.isdigit()]
    have = set(_WORD.findall(reply_n.lower()))
    return bool(words) and sum(w in have for w in words) / len(words) >= 0.8


def _item_in(item: str, reply: str) -> bool:
    if len(item) <= 3 and item.isupper():  # sizes: case matters so "S" does not match "it's"
        return re.search(rf"(?<![\w']){re.escape(item)}(?![\w'])", reply) is not None
    return re.search(rf"(?<![\w]){re.escape(item.lower())}(?![\w])", reply.lower()) is not None


def voice_issues(reply: str) -> list[str]:
    text = normalize(reply)
    issues = []
    n = len(text.split())
    if not 40 <= n <= 110:
        issues.append(f"{n} words (40-110 wanted)")
    if re.search(r"\bI\b|\bI'(?:m|ve|ll|d)\b|\bmy\b", text):
        issues.append("first person")
    if text.count("!") > 1:
        issues.append(f"{text.count('!')} exclamation marks")
    if re.search(r"\$\s?\d|\bprice[ds]? (?:at|of)\b", text, re.I):
        issues.append("mentions a price")
    return issues


def _grade_description(case: Case, reply: str, names: ProductNames) -> Grade:
    g = Grade("wrong", case.task, case.category)
    attrs = attributes(case.last_user)
    covered = {k: value_mentioned(v, reply) for k, v in attrs.items()}
    coverage = sum(covered.values()) / len(covered) if covered else 1.0
    issues = voice_issues(reply)
    evidence = Evidence(case.evidence + "\n" + case.gold)
    g.hallucinations = list(
        dict.fromkeys(str(c) for c in unsupported_claims(reply, evidence, names))
    )
    g.task_metrics = {"coverage": coverage, "voice_ok": not issues, "voice_issues": issues}
    missing = [k for k, ok in covered.items() if not ok]
    g.missing = missing
    for h in g.hallucinations:
        g.reasons.append(f"unsupported {h}")
    if missing:
        g.reasons.append("misses " + ", ".join(missing))
    g.reasons += issues
    if g.hallucinations or coverage < 0.5:
        g.verdict = "wrong"
    elif coverage == 1.0 and not issues:
        g.verdict = "correct"
    else:
        g.verdict = "partial"
    return g
