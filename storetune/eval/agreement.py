"""How often the automatic rubric agrees with a support lead's hand labels.

The labeled set (labeled/rubric_labeled.jsonl, stores in labeled/stores.json) holds
responses written and scored 3/2/1 by hand from the rubric's definition, covering every
task and safety category and the tricky cases. Each line: id, task, category, store,
context (product cards; optional passages and order: help-center passages and a verified
order card, rendered as their prompt blocks), messages (the customer's turns), gold,
response, label, note.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from storetune.chat.card import Card
from storetune.errors import StoretuneError
from storetune.eval.graders import Grader
from storetune.eval.records import SCORE, Case, Grade, StoreFacts

LABELED_DIR = Path(__file__).parent / "labeled"
LABELED_SET = LABELED_DIR / "rubric_labeled.jsonl"
_FIELDS = ("id", "task", "category", "store", "messages", "gold", "response", "label")
# optional context fields: help-center passages (text), a verified order card (a card
# dict, as meta.jsonl records it), product cards (text)
_BLOCKS = (
    ("passages", "Help center:"),
    ("order", "Order information:"),
    ("context", "Product information:"),
)


@dataclass
class Labeled:
    id: str
    case: Case
    response: str
    label: int
    note: str
    store: str


@dataclass
class Agreement:
    n: int
    agree: int
    confusion: dict[int, Counter]  # human label -> Counter(grader score)
    by_task: dict[str, tuple[int, int]]  # task -> (agree, n)
    disagreements: list[tuple[Labeled, Grade]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.agree / self.n if self.n else 0.0

    def per_label(self) -> dict[int, float]:
        """Of the responses a person scored L, the share the grader also scored L."""
        return {
            label: row[label] / sum(row.values()) for label, row in sorted(self.confusion.items())
        }

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "agreement": self.rate,
            "per_label": {str(k): v for k, v in self.per_label().items()},
            "confusion": {
                str(k): {str(s): c for s, c in v.items()} for k, v in self.confusion.items()
            },
            "by_task": {t: {"agree": a, "n": n} for t, (a, n) in self.by_task.items()},
            "disagreements": [
                {"id": x.id, "label": x.label, "grader": g.score, "reasons": g.reasons}
                for x, g in self.disagreements
            ],
        }


def load_labeled(path: Path = LABELED_SET) -> tuple[list[Labeled], dict[str, dict]]:
    """The labeled responses and the stores they belong to; errors name the file and line."""
    stores_path = path.parent / "stores.json"
    try:
        stores = json.loads(stores_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StoretuneError(f"{stores_path}: cannot read the labeled set's stores ({e})") from None
    rows: list[Labeled] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise StoretuneError(f"{path} line {n}: not valid JSON ({e.msg})") from None
        rows.append(_labeled(raw, stores, path, n))
    return rows, stores


def _labeled(raw: dict, stores: dict, path: Path, n: int) -> Labeled:
    missing = [f for f in _FIELDS if f not in raw]
    if missing:
        raise StoretuneError(f"{path} line {n}: missing field(s) {', '.join(missing)}")
    if raw["label"] not in (1, 2, 3):
        raise StoretuneError(f"{path} line {n}: field 'label' must be 1, 2 or 3")
    if raw["store"] not in stores:
        raise StoretuneError(f"{path} line {n}: store '{raw['store']}' is not in stores.json")
    system = stores[raw["store"]]["system"]
    cards = [Card.from_dict(raw["order"])] if raw.get("order") else None
    blocks = {**raw, "order": cards[0].render() if cards else None}
    # the blocks in the order the prompt renderer puts them (storetune.chat.prompt)
    for key, title in _BLOCKS:
        if blocks.get(key):
            system += f"\n{title}\n" + blocks[key]
    case = Case(
        [{"role": "system", "content": system}, *raw["messages"]],
        raw["gold"],
        raw["task"],
        raw["category"],
        "labeled",
        cards,
    )
    return Labeled(
        raw["id"], case, raw["response"], raw["label"], raw.get("note", ""), raw["store"]
    )


def measure_agreement(path: Path = LABELED_SET) -> Agreement:
    """Grade every labeled response and compare with the hand label."""
    rows, stores = load_labeled(path)
    graders: dict[str, Grader] = {}
    confusion: dict[int, Counter] = defaultdict(Counter)
    by_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    disagreements = []
    for row in rows:
        if row.store not in graders:
            spec = stores[row.store]
            store = StoreFacts(
                spec.get("marker", "[ESCALATE]"),
                tuple(spec.get("catalog", ())),
                tuple(spec.get("allowed", ())),
            )
            graders[row.store] = Grader(store, [r.case for r in rows if r.store == row.store])
        g = graders[row.store].grade(row.case, row.response)
        confusion[row.label][g.score] += 1
        by_task[row.case.task][1] += 1
        if g.score == row.label:
            by_task[row.case.task][0] += 1
        else:
            disagreements.append((row, g))
    agree = sum(c[label] for label, c in confusion.items())
    return Agreement(
        len(rows),
        agree,
        {k: Counter({s: confusion[k][s] for s in SCORE.values()}) for k in sorted(confusion)},
        {t: (a, n) for t, (a, n) in sorted(by_task.items())},
        disagreements,
    )
