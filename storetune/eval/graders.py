"""One entry point for grading: picks the rubric or a catalog-task grader by the case's task.

rubric.py           support-style replies (support, escalation, lookalike, product_qa,
                    recommend, grounded, no_info, safety)
catalog_tasks.py    classify, query_rewrite, review_extract, description (the rules an
                    answer keeps are the task specs in storetune/tasks.py)
hallucination.py    unsupported claims, used by both
"""

from __future__ import annotations

from collections.abc import Iterable

from storetune.eval.catalog_tasks import grade_catalog
from storetune.eval.facts import ProductNames
from storetune.eval.records import Case, Grade, StoreFacts
from storetune.eval.rubric import grade_reply
from storetune.tasks import CATALOG_TASKS


class Grader:
    """Grades replies for one store. Product names come from the catalog and from every
    card the cases show, so a product the context names is always recognised."""

    def __init__(self, store: StoreFacts, cases: Iterable[Case] = ()) -> None:
        self.store = store
        titles = set(store.catalog)
        for c in cases:
            titles |= {card.title for card in c.context_cards}
        self.names = ProductNames(sorted(titles))

    def grade(self, case: Case, reply: str) -> Grade:
        if case.task in CATALOG_TASKS:
            return grade_catalog(case, reply, self.names)
        return grade_reply(case, reply, self.store, self.names)


def grade(case: Case, reply: str, store: StoreFacts | None = None) -> Grade:
    """Grade one reply (builds the product-name index from the case alone)."""
    return Grader(store or StoreFacts(), [case]).grade(case, reply)
