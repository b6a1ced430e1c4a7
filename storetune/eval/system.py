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
