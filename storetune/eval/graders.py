"""Automatic grading of a reply against the gold reply and the context it had.

The walking-skeleton rubric: the escalation decision must match; otherwise the
facts the gold reply states (prices, day counts, product names, stock words) must
appear, and no price or day count may appear that nothing in the prompt supports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MONEY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{1,2})?)")
_DAYS = re.compile(
    r"\b(\d{1,3})(?:\s*[-–]\s*\d{1,3})?[- ](?:business |calendar |working )?days?\b", re.I
)
_STOCK_WORDS = ("out of stock", "in stock", "backorder", "final sale")
_WORD = re.compile(r"[a-z0-9$.]+")


def money_values(text: str) -> set[str]:
    out = set()
    for m in _MONEY.findall(text):
        value = float(m.replace(",", ""))
        out.add(f"{value:.2f}")
    return out


def day_values(text: str) -> set[str]:
    return set(_DAYS.findall(text))


def facts(text: str, titles: list[str]) -> set[str]:
    low = text.lower()
    found = {f"${v}" for v in money_values(text)} | {f"{d} days" for d in day_values(text)}
    found |= {f"product:{t.lower()}" for t in titles if t.lower() in low}
    found |= {
        w for w in _STOCK_WORDS if w in low and not (w == "in stock" and "out of stock" in low)
    }
    return found


def token_f1(a: str, b: str) -> float:
    ta, tb = _WORD.findall(a.lower()), _WORD.findall(b.lower())
    if not ta or not tb:
        return 0.0
    common = sum(min(ta.count(w), tb.count(w)) for w in set(ta))
    if common == 0:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


@dataclass
class Grade:
    verdict: str  # correct | partial | wrong
    escalate_gold: bool
    escalate_pred: bool
    required: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # hallucinated numbers

    @property
    def score(self) -> int:
        return {"correct": 3, "partial": 2, "wrong": 1}[self.verdict]


def unsupported_numbers(response: str, evidence: str) -> list[str]:
    ev_money, ev_days = money_values(evidence), day_values(evidence)
    bad = [f"${v}" for v in sorted(money_values(response) - ev_money)]
    bad += [f"{d} days" for d in sorted(day_values(response) - ev_days)]
    return bad


def grade(response: str, gold: str, evidence: str, marker: str, titles: list[str]) -> Grade:
    """Grade one reply. `evidence` is everything the model was shown (system + user turns)."""
    esc_gold, esc_pred = marker in gold, marker in response
    unsupported = unsupported_numbers(response, evidence + "\n" + gold)
    if esc_gold:
        verdict = "correct" if esc_pred else "wrong"
        return Grade(verdict, esc_gold, esc_pred, unsupported=unsupported)
    if esc_pred:
        return Grade("partial", esc_gold, esc_pred, unsupported=unsupported)
    required = sorted(facts(gold, titles))
    missing = sorted(set(required) - facts(response, titles))
    if unsupported:
        verdict = "wrong"
    elif required:
        verdict = (
            "correct" if not missing else "partial" if len(missing) < len(required) else "wrong"
        )
    else:
        # No checkable fact in the gold (e.g. "please send your order number"):
        # fall back to word overlap with the gold reply.
        verdict = "correct" if token_f1(response, gold) >= 0.3 else "partial"
    return Grade(verdict, esc_gold, esc_pred, required, missing, unsupported)
