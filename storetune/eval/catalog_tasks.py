"""Graders for the catalog tasks: classification, query rewriting, review extraction, copy.

What an answer looks like and the rules it keeps are the task specs in storetune/tasks.py,
which the dataset builder enforces on its targets; these graders read replies and check
rules with the same functions. Each returns a Grade whose task_metrics feed the aggregate
metrics (metrics.py), and a verdict on the same 3/2/1 scale so every task shows in one
breakdown:

classify        correct = the gold taxonomy path; partial = an ancestor of it, or only
                its leaf; wrong otherwise.
query_rewrite,  correct = valid JSON with every field right; partial = at least half
review_extract  of the fields right; wrong = invalid JSON or fewer.
                A JSON reply that breaks the task's schema (an unknown key, a value
                outside its allowed set) says so in its reasons and `schema_problems`.
description     correct = every attribute value mentioned and the voice rules kept
                (40-110 words, no "I" or "my", at most one "!", no price, no stock
                claim); partial = at least half the values, or a voice rule broken;
                wrong = an unsupported claim (a price or figure not in the attributes)
                or under half the values.
"""

from __future__ import annotations

import re
from typing import Any

from storetune.eval.facts import ProductNames
from storetune.eval.hallucination import Evidence, unsupported_claims
from storetune.eval.records import Case, Grade
from storetune.tasks import (
    description_attributes,
    parse_json_object,
    taxonomy_path,
    validate_query,
    validate_review,
    value_mentioned,
    voice_issues,
)

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
    # Fields are compared as a search filter would read them ("200" is 200), so the
    # schema is reported beside the verdict rather than deciding it.
    schema = _schema_problems(case.task, pred)
    g.task_metrics = {
        "json_valid": True,
        "fields": fields,
        "field_accuracy": accuracy,
        "schema_problems": schema,
    }
    wrong = [k for k, ok in fields.items() if not ok]
    if wrong:
        g.reasons.append("wrong or missing fields: " + ", ".join(wrong))
    if schema:
        g.reasons.append("breaks the schema: " + "; ".join(schema))
    g.verdict = "correct" if accuracy == 1.0 else "partial" if accuracy >= 0.5 else "wrong"
    return g


def _schema_problems(task: str, obj: dict) -> list[str]:
    """The task spec's schema check; the catalog's own filter values are not known here."""
    return validate_query(obj, None) if task == "query_rewrite" else validate_review(obj)


# ---------------------------------------------------------------- descriptions


def _grade_description(case: Case, reply: str, names: ProductNames) -> Grade:
    g = Grade("wrong", case.task, case.category)
    attrs = description_attributes(case.last_user)
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
