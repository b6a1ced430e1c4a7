"""What a customer would get: the deployed system graded, not just the raw model.

Each held-out ticket goes through what `POST /v1/tickets` does (retrieval, prompt,
draft, grounding guard, hand-over rules, confidence) and ends in one of three
outcomes, as if the store ran `serve.review_mode: auto`:

- sent: high confidence and not escalated, so the reply goes out with no person;
- queued: waits for an agent in the review queue (medium or low confidence);
- handed over: escalated to a person.

The figure that hurts a store is the share of ALL tickets that got a wrong reply
sent without a person (wrong-and-sent); automation and hand-over recall say what
the store gains and whether it can trust the hand-over.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from storetune.eval.stats import rate_ci

OUTCOMES = ("sent", "queued", "handed_over")


@dataclass
class Outcome:
    """One ticket's fate in the deployed system, with the grade of what was sent."""

    outcome: str  # sent | queued | handed_over
    verdict: str  # the grade of the reply the system would send (after the guard)
    must_escalate: bool  # the reference hands over
    answerable: bool  # a reply could have solved it (not a hand-over, not a safety refusal)
    confidence: str = ""
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")


def outcome_of(confidence: str, escalate: bool) -> str:
    """The auto review mode's rule: only a high-confidence, non-escalated reply is sent."""
    if escalate:
        return "handed_over"
    return "sent" if confidence == "high" else "queued"


def summarize_system(outcomes: list[Outcome]) -> dict:
    """Automation, quality of what is sent, wrong-and-sent, hand-over recall, over-escalation.

    Every rate comes with its Wilson 95% interval and its k/n."""
    n = len(outcomes)
    sent = [o for o in outcomes if o.outcome == "sent"]
    must = [o for o in outcomes if o.must_escalate]
    answerable = [o for o in outcomes if o.answerable]
    count = {k: sum(o.outcome == k for o in outcomes) for k in OUTCOMES}
    return {
        "n": n,
        "outcomes": count,
        "automation": rate_ci(count["sent"], n),
        "queued": rate_ci(count["queued"], n),
        "handed_over": rate_ci(count["handed_over"], n),
        "correct_among_sent": rate_ci(sum(o.verdict == "correct" for o in sent), len(sent)),
        "wrong_among_sent": rate_ci(sum(o.verdict == "wrong" for o in sent), len(sent)),
        "wrong_and_sent": rate_ci(sum(o.verdict == "wrong" for o in sent), n),
        "escalation_recall": rate_ci(sum(o.outcome == "handed_over" for o in must), len(must)),
        "over_escalation": rate_ci(
            sum(o.outcome == "handed_over" for o in answerable), len(answerable)
        ),
        "answerable_sent": rate_ci(sum(o.outcome == "sent" for o in answerable), len(answerable)),
    }


# ---- running held-out tickets through the deployed system --------------------------------


class SystemRun:
    """Held-out tickets through what POST /v1/tickets does, without touching the queue.

    Both models get the same routed prompts (the version's router reads every ticket),
    so the comparison is of drafts, not of prompts; only the version's drafts are judged
    against its calibrated thresholds, the base model's against the defaults."""

    def __init__(self, ws, router, reader, thresholds, cases, prepared, orders=()) -> None:
        self.ws, self.router, self.reader = ws, router, reader
        self.thresholds, self.cases, self.prepared = thresholds, cases, prepared
        self.orders = list(orders)  # order tickets from store.db (order_tickets.py)

    @classmethod
    def open(cls, ws, version_dir, info, cases) -> SystemRun | None:
        from storetune.retrieval.index import index_exists
        from storetune.serve.routing import TicketInput, TicketRouter, load_thresholds, router_for
        from storetune.store import db

        # Order examples show fictional order cards that store.db cannot verify, so
        # routing would answer each with its fixed "send your order number" reply: the
        # system pass asks about the store's own orders instead (order_tickets.py).
        conv = [c for c in cases if c.task not in _CATALOG and c.task != "order"]
        if not conv or not ws.db_path.exists():
            return None
        conn = db.connect(ws.db_path)
        try:
            indexed = index_exists(conn)
        finally:
            conn.close()
        if not indexed:
            return None  # the caller says: run 'storetune index' for the system figures
        router = TicketRouter.load(ws)
        if router.classifier is not None:
            held_out = held_out_tickets(ws, info["dataset_id"])
            router.classifier = router.classifier.without(held_out)
        reader = router_for(version_dir)
        prepared = [router.prepare(TicketInput(*ticket_of(c)), reader) for c in conv]
        thresholds = load_thresholds(ws, info["name"], info["version"])
        orders = prepare_order_tickets(ws, router, reader)
        return cls(ws, router, reader, thresholds, conv, prepared, orders)

    def run(self, generate, grader, calibrated: bool) -> dict:
        """Draft every ticket with `generate`, decide as serving does, grade what is sent."""
        from storetune.serve.routing import Thresholds

        todo = [i for i, p in enumerate(self.prepared) if p.template is None]
        drafts = dict(
            zip(todo, generate([self.prepared[i].messages for i in todo], "system"), strict=True)
        )
        thresholds = self.thresholds if calibrated else Thresholds()
        outcomes, shown = [], []
        for i, (case, p) in enumerate(zip(self.cases, self.prepared, strict=True)):
            routed = self._finish(p, drafts.get(i), thresholds)
            o = _outcome(case, routed, grader)
            outcomes.append(o)
            shown.append(_example(case, p, routed, o))
        result = {"summary": summarize_system(outcomes), "examples": shown}
        if self.orders:
            result["orders"] = self.run_orders(generate, grader.store.allowed, thresholds)
        return result

    def run_orders(self, generate, allowed: tuple[str, ...], thresholds) -> dict:
        """The store's own orders asked about (order_tickets.py). Only tickets routing
        drafts reach `generate`: verified ones; an unverified one gets the fixed reply
        (and would be drafted, and counted as such, only if routing ever drafted it)."""
        from storetune.eval.order_tickets import grade, shown, summarize_orders

        start = time.time()
        todo = [i for i, t in enumerate(self.orders) if t.prepared.template is None]
        messages = [self.orders[i].prepared.messages for i in todo]
        drafts = dict(zip(todo, generate(messages, "orders") if todo else [], strict=True))
        rows = []
        for i, t in enumerate(self.orders):
            routed = self._finish(t.prepared, drafts.get(i), thresholds)
            verdict, reasons = grade(t, routed.response, allowed)
            outcome = outcome_of(routed.decision.confidence, routed.decision.escalate)
            rows.append(shown(t, routed.response, outcome, verdict, reasons))
        drafted = sum(not self.orders[i].verified for i in todo)
        summary = summarize_orders(rows, drafted)
        summary["seconds"] = round(time.time() - start, 1)  # what the order tickets cost
        return {"summary": summary, "examples": rows}

    def _finish(self, p, draft: dict | None, thresholds):
        """What serving does with a draft (or the store's fixed reply), recording nothing."""
        from storetune.serve.rules import fill

        d = draft or {
            "text": fill(p.template, self.router.cfg),
            "logprobs": [0.0],
            "finish_reason": "stop",
        }
        return self.router.finish(
            p,
            d["text"],
            [("", x) for x in d["logprobs"]],
            d["finish_reason"],
            "eval",
            thresholds,
            "auto",
            record=False,
        )

    def close(self) -> None:
        self.router.queue.close()


def prepare_order_tickets(ws, router, reader) -> list:
    """Order tickets about store.db's own orders, routed as POST /v1/tickets would
    (`eval.order_tickets` verified ones; none when the store has no orders)."""
    from storetune.eval.order_tickets import sample_orders
    from storetune.serve.routing import TicketInput
    from storetune.store import db

    n = router.cfg.eval.order_tickets
    if not n:
        return []
    conn = db.connect(ws.db_path)
    try:
        tickets = sample_orders(conn, router.cfg.seed, n)
    finally:
        conn.close()
    for t in tickets:
        t.prepared = router.prepare(TicketInput(t.message, [], t.customer), reader)
    return tickets


def held_out_tickets(ws, dataset_id: str) -> set[str]:
    """Past tickets the system pass must not learn from: the sources of the validation
    and test examples, and every ticket of their phrasing families.

    The neighbour classifier reads every past ticket in store.db, and the held-out
    examples were built from some of them: left in, a test ticket finds itself (cosine
    1.0) with its own hand-over label, and a family held out for test finds its
    siblings, so the system would be graded on wordings it has seen."""
    from storetune.dataset.build import resolve_dataset
    from storetune.io import read_jsonl
    from storetune.store import db
    from storetune.store.records import family_from_tags

    meta = read_jsonl(resolve_dataset(ws, dataset_id) / "meta.jsonl")
    held = [m for m in meta if m["split"] != "train"]
    keys = {s for m in held for s in m.get("source_ids") or []}
    families = {m["family"] for m in held if m.get("family")}
    families -= {m["family"] for m in meta if m["split"] == "train" and m.get("family")}
    if families:
        conn = db.connect(ws.db_path)
        try:
            for source, source_id, tags in conn.execute(
                "SELECT source, source_id, tags FROM tickets"
            ):
                if family_from_tags(json.loads(tags)) in families:
                    keys.add(f"{source}:{source_id}")
        finally:
            conn.close()
    return keys


_CATALOG = ("classify", "query_rewrite", "review_extract", "description")


def ticket_of(case) -> tuple[str, list[dict]]:
    """(newest message, earlier turns) of a held-out conversation, as a helpdesk sends them."""
    turns = [m for m in case.conversation if m["role"] in ("user", "assistant")]
    thread = [
        {"role": "customer" if m["role"] == "user" else "agent", "content": m["content"]}
        for m in turns[:-1]
    ]
    return turns[-1]["content"], thread


def _outcome(case, routed, grader) -> Outcome:
    marker = grader.store.marker
    must = marker in case.gold
    outcome = outcome_of(routed.decision.confidence, routed.decision.escalate)
    verdict = grader.grade(case, routed.response).verdict
    if must and outcome == "sent":
        verdict = "wrong"  # a hand-over answered by a machine is wrong whatever it says
    return Outcome(
        outcome,
        verdict,
        must,
        answerable=not must and case.task != "safety",
        confidence=routed.decision.confidence,
        reasons=tuple(routed.decision.reasons),
    )


def _example(case, p, routed, o: Outcome) -> dict:
    return {
        "task": case.task,
        "category": case.category,
        "prompt": case.last_user,
        "gold": case.gold,
        "response": routed.response,
        "outcome": o.outcome,
        "verdict": o.verdict,
        "confidence": o.confidence,
        "reasons": list(o.reasons),
        "router": p.reading.to_dict() if p.reading else None,
    }
