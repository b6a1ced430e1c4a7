"""One entry point for grading: picks the rubric or a catalog-task grader by the case's task.

rubric.py           support-style replies (support, escalation, lookalike, product_qa,
                    recommend, grounded, no_info, knowledge, safety, order)
orders.py           order replies, on top of the rubric: the status facts of the order
                    card shown (verified) must be right
catalog_tasks.py    classify, query_rewrite, review_extract, description (the rules an
                    answer keeps are the task specs in storetune/tasks.py)
hallucination.py    unsupported claims, used by both
"""

from __future__ import annotations

from collections.abc import Iterable

from storetune.chat.card import OrderCard
from storetune.eval.catalog_tasks import grade_catalog
from storetune.eval.facts import ProductNames
from storetune.eval.orders import fact_errors, grade_verified
from storetune.eval.records import SCORE, Case, Grade, StoreFacts
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
        g = grade_reply(case, reply, self.store, self.names)
        if case.task == "order":
            _order_facts(g, case, reply.replace(self.store.marker, " "), self.store.allowed)
        return g


def _order_facts(g: Grade, case: Case, reply: str, allowed: tuple[str, ...]) -> None:
    """An order reply is no better than its status facts: a status or number the order
    card contradicts is wrong; an answer (not a hand-over) must state the status."""
    card = next((c for c in case.context_cards if isinstance(c, OrderCard)), None)
    if card is None:  # an unverified requester: the rubric's reference asks for the number
        return
    errors = fact_errors(card, reply, allowed)
    verdict, reasons = ("wrong", errors) if errors else ("correct", [])
    if not errors and not g.escalate_gold:
        og = grade_verified(card, reply, allowed)
        verdict, reasons = og.verdict, og.reasons
    if SCORE[verdict] < g.score:
        g.verdict = verdict
        g.reasons += reasons


def grade(case: Case, reply: str, store: StoreFacts | None = None) -> Grade:
    """Grade one reply (builds the product-name index from the case alone)."""
    return Grader(store or StoreFacts(), [case]).grade(case, reply)
