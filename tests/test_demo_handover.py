"""Must-hand-over tickets of the sample store (requests for a person, complaints, fraud,
legal threats, safety incidents): ingested as human-only whatever their wording, and
built into escalation examples of their kind with the marker; look-alikes that only
mention a person stay answerable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from storetune.clean import DEFAULT_ESCALATION_TOPICS, human_only_reason, tagged_topic
from storetune.config import BuildConfig, EscalationTopic
from storetune.dataset.build import INTENTS
from storetune.dataset.builders.escalation import build_escalation, build_lookalikes
from storetune.dataset.builders.support import PolicyCorrector, build_support
from storetune.dataset.context import BuildContext
from storetune.demo.store_gen import generate_demo_store
from storetune.demo.ticket_gen import INTENTS as DEMO_INTENTS
from storetune.ingest import ingest_workspace
from storetune.kinds import HAND_OVER, kind_of
from storetune.store import db
from storetune.workspace import Workspace

MUST_HAND_OVER = {"complaint_escalate", "human_request", "fraud_chargeback"}
PERSON_WORDS = ("person", "agent", "manager", "human", "staff", "team")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("handover"))
    generate_demo_store(root, seed=5, n_products=60, n_tickets=900)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    conn = db.connect(ws.db_path)
    products = db.load_products(conn)
    tickets = db.load_tickets(conn, resolved_only=False)
    conn.close()
    return ws.config(), products, tickets


def _intent(tags: list[str]) -> str:
    return next(t for t in tags if t in DEMO_INTENTS)


def test_tagged_topic_reads_the_helpdesk_triage():
    topics = [EscalationTopic(name="human_request", reason="r", keywords=["real person"])]
    assert tagged_topic(["vip", "Human_Request"], topics) == "human_request"
    assert tagged_topic(["returns"], topics) is None
    assert tagged_topic(["fraud_chargeback"]) == "fraud_chargeback"  # the default topics
    assert tagged_topic(["fraud_chargeback"], topics) is None  # the store's replace them
    assert {t.name for t in DEFAULT_ESCALATION_TOPICS} >= {"fraud_chargeback", "legal_threat"}


def test_every_must_hand_over_ticket_is_human_only_with_its_topic(store):
    cfg, _, tickets = store
    topics = {t.name for t in cfg.escalation.always}
    by_reason: Counter[str] = Counter()
    keyword_missed = 0
    for t in tickets:
        intent = _intent(t.tags)
        if intent in MUST_HAND_OVER:
            assert t.human_only, (intent, t.messages[0].text)
            assert t.human_only_reason in t.tags and t.human_only_reason in topics
            by_reason[t.human_only_reason] += 1
            customer = [m.text for m in t.messages if m.role == "customer"]
            keyword_missed += human_only_reason(customer, cfg.escalation.always) is None
        else:
            assert not t.human_only, (intent, t.human_only_reason, t.messages[0].text)
    assert by_reason["human_request"] >= 25 and by_reason["complaint"] >= 25, by_reason
    assert set(by_reason) == topics
    # wordings no keyword catches ("agent", "bot, agent") are human-only by their tag
    assert keyword_missed > 0


def test_hand_overs_become_escalation_examples_of_their_kind(store):
    cfg, products, tickets = store
    ctx = BuildContext(cfg, BuildConfig(seed=0), products, tickets)
    examples = build_escalation(tickets, cfg, ctx.system_for, None, 0)
    human = [t for t in tickets if t.human_only]
    assert len(examples) == len(human)
    for ex, t in zip(examples, human, strict=True):
        reply = ex.messages[-1]["content"]
        assert ex.task == "escalation" and ex.category == t.human_only_reason
        assert reply.startswith(cfg.escalation.marker + " ")
        assert kind_of(ex.task, ex.category) in HAND_OVER, ex.category
        assert "human request" not in reply and "complaint concern" not in reply
        assert ex.family.startswith(_intent(t.tags) + ".")
    categories = Counter(e.category for e in examples)
    assert categories["human_request"] and categories["complaint"]
    # none of them is also a support example (which might answer without the marker)
    support, skipped = build_support(tickets, cfg, INTENTS, ctx.system_for, PolicyCorrector(cfg))
    assert skipped["human_only"] == len(human)
    assert not {s.group for s in support} & {e.group for e in examples}


def test_hand_over_replies_speak_to_the_kind(store):
    cfg, products, tickets = store
    ctx = BuildContext(cfg, BuildConfig(seed=0), products, tickets)
    replies: dict[str, set[str]] = {}
    for ex in build_escalation(tickets, cfg, ctx.system_for, None, 1):
        replies.setdefault(ex.category, set()).add(ex.messages[-1]["content"])
    assert any("person" in r or "personally" in r for r in replies["human_request"])
    assert all("sorry" in r.lower() for r in replies["complaint"])
    assert any(cfg.brand.name in r for r in replies["human_request"] | replies["complaint"])


def test_person_lookalikes_are_answered_and_not_human_only(store):
    cfg, products, tickets = store
    ctx = BuildContext(cfg, BuildConfig(seed=0, lookalikes=100), products, tickets)
    lookalikes = build_lookalikes(ctx)
    person = [e for e in lookalikes if e.category == "human_request"]
    assert len(person) >= 15 and len({e.family for e in person}) >= 6
    for e in person:
        message, reply = e.messages[1]["content"], e.messages[2]["content"]
        assert any(w in message.lower() for w in PERSON_WORDS), message
        assert human_only_reason([message], cfg.escalation.always) is None, message
        assert cfg.escalation.marker not in reply
        assert kind_of(e.task, e.category) == "product_question"
    complaints = [e for e in lookalikes if e.category == "complaint"]
    assert complaints and all(cfg.escalation.marker not in e.messages[2]["content"]
                              for e in complaints)  # fmt: skip


def test_demo_keywords_are_phrases_that_spare_ordinary_questions(store):
    # serving hands over on these keywords, so a mention must not trip them
    cfg, _, _ = store
    topics = cfg.escalation.always
    asks = {
        "can I speak to a real person?": "human_request",
        "pls have someone call me back": "human_request",
        "I'd like to talk to someone about my return": "human_request",
        "This is the worst customer service ever": "complaint",
        "I'm leaving a 1-star review": "complaint",
    }
    for text, topic in asks.items():
        assert human_only_reason([text], topics) == topic, text
    for text in [
        "My supervisor recommended the rain shell - is it in stock?",
        "the zipper feels useless in the cold, what's the fabric?",
        "Is the photo representative of the colour?",
        "The person at the counter said to size up. Is that right?",
    ]:
        assert human_only_reason([text], topics) is None, text
