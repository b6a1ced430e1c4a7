"""The learned router: separates kinds, survives a save/load, keeps hand-over recall."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest

from storetune.errors import StoretuneError
from storetune.kinds import HAND_OVER, KINDS, kind_of, sections_for
from storetune.models.router import RouterModel, features
from storetune.train.router import (
    RECALL_TARGET,
    Labeled,
    augment,
    choose_threshold,
    labeled_from_rows,
    train_router,
    typo,
)


def bag_of_words(texts: list[str], dim: int = 64) -> np.ndarray:
    """A deterministic stand-in embedder: hashed word counts, L2-normalised."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)


TOY = {
    "returns": ["return refund window", "refund my return", "how do returns work refund"],
    "shipping": ["shipping cost canada", "how much shipping", "shipping days delivery cost"],
    "human_request": ["talk to a human agent", "real person agent please", "human agent now"],
}


def toy_items(copies: int = 4) -> list[Labeled]:
    return [Labeled(t, t, k) for k, texts in TOY.items() for t in texts for _ in range(copies)]


def test_router_separates_a_toy_set_and_round_trips(tmp_path):
    model, report = train_router(toy_items(), toy_items(1), bag_of_words)
    preds = model.predict(features(bag_of_words(["refund return"]), bag_of_words(["refund"])))
    assert preds[0].label == "returns"
    probe = features(bag_of_words(["a human agent please"]), bag_of_words(["human agent"]))
    assert model.predict(probe)[0].label == "human_request"
    assert report["val_accuracy"] == 1.0
    assert report["val_hand_over_recall"] >= RECALL_TARGET
    p = model.predict(probe)[0]
    assert p.mass(HAND_OVER) >= p.probabilities["human_request"]
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)

    model.save(tmp_path / "router")
    loaded = RouterModel.load(tmp_path / "router")
    assert loaded.classes == model.classes
    np.testing.assert_allclose(loaded.proba(probe), model.proba(probe), rtol=1e-6)
    assert loaded.info["hand_over_threshold"] == report["hand_over_threshold"]


def test_router_refuses_one_kind_and_missing_files(tmp_path):
    x = bag_of_words(["a", "b"])
    with pytest.raises(StoretuneError, match="two kinds"):
        RouterModel.fit(features(x, x), ["returns", "returns"])
    with pytest.raises(StoretuneError, match="no router"):
        RouterModel.load(tmp_path)


def test_router_learns_two_kinds_as_the_classifier_does():
    # a dataset with support and escalation examples only teaches two kinds
    from sklearn.linear_model import LogisticRegression

    items = [i for i in toy_items() if i.kind != "shipping"]
    x = features(bag_of_words([i.last for i in items]), bag_of_words([i.thread for i in items]))
    labels = [i.kind for i in items]
    model = RouterModel.fit(x, labels)
    assert model.classes == ["human_request", "returns"]
    assert [p.label for p in model.predict(x)] == labels
    clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=0)
    np.testing.assert_allclose(model.proba(x), clf.fit(x, labels).predict_proba(x), atol=1e-5)


def test_threshold_keeps_recall_on_validation():
    rng = np.random.default_rng(0)
    must = np.array([True] * 40 + [False] * 160)
    p = np.where(must, rng.uniform(0.2, 1.0, 200), rng.uniform(0.0, 0.4, 200))
    t = choose_threshold(p, must)
    assert (p[must] >= t).mean() >= RECALL_TARGET
    assert t <= 0.5
    assert choose_threshold(p, np.zeros(200, dtype=bool)) == 0.5


def test_labels_come_from_the_dataset_metadata():
    assert kind_of("support", "returns") == "returns"
    assert kind_of("support", "complaint_escalate") == "complaint"
    assert kind_of("escalation", "fraud_chargeback") == "fraud_chargeback"
    assert kind_of("lookalike", "fraud_chargeback") == "product_question"
    assert kind_of("grounded", "price") == "product_question"
    assert kind_of("safety", "injection") == "injection"
    assert kind_of("classify", "Hardware") is None
    assert {"human_request", "complaint", "legal_threat"} <= set(HAND_OVER)
    assert not KINDS["returns"].hand_over
    assert sections_for(["returns", "exchange"]) == ["returns", "sale_items", "exchanges"]
    rows = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        },
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]},
    ]
    meta = [{"task": "support", "category": "shipping"}, {"task": "classify", "category": "Hats"}]
    items = labeled_from_rows(rows, meta)
    assert len(items) == 1
    assert (items[0].last, items[0].thread, items[0].kind) == ("c", "a\nc", "shipping")


def test_typos_change_letters_not_meaning():
    rng = random.Random(0)
    text = "I would like to return my jacket and get a refund please"
    noisy = [typo(text, rng, rate=0.1) for _ in range(20)]
    assert any(n != text for n in noisy)
    assert all(abs(len(n) - len(text)) <= 8 for n in noisy)
    out = augment([Labeled(text, text, "returns")], seed=1)
    assert len(out) == 2 and out[1].kind == "returns"


def test_real_embedder_generalises_to_unseen_wordings():
    """The bundled MiniLM: wordings not in training still land on their kind."""
    from storetune.retrieval.embed import MiniLMEmbedder

    train = {
        "returns": [
            "How do I return an item?",
            "Can I send this back for a refund?",
            "What is your return policy?",
            "I want my money back for these boots",
            "How long do I have to return something?",
            "Is the refund to my card?",
        ],
        "shipping": [
            "How much is shipping?",
            "Do you ship to Canada?",
            "How long does delivery take?",
            "What does standard shipping cost?",
            "Is there free shipping?",
            "When will it arrive if I order today?",
        ],
        "human_request": [
            "I want to talk to a person",
            "Can I speak to an agent?",
            "Get me a human please",
            "Is there someone I can call?",
            "I'd like to speak with a representative",
            "Connect me to customer service staff",
        ],
        "cancellation": [
            "Please cancel my order",
            "I need to cancel what I bought",
            "Can I cancel it?",
            "Stop my order, I changed my mind",
            "How do I cancel an order?",
            "Cancel the purchase I just made",
        ],
    }
    unseen = {
        "returns": [
            "in which cases can I ask for a refund?",
            "sent back the tent, where's my refund",
        ],
        "shipping": ["whats the delivery fee to alaska", "how many days to ship to toronto"],
        "human_request": ["pls real human not a bot", "can somebody from your team phone me"],
        "cancellation": ["dont want it anymore, please cancel", "cancel order asap"],
    }
    embed = MiniLMEmbedder().embed
    items = [Labeled(t, t, k) for k, ts in train.items() for t in ts]
    model, _ = train_router(items, [], embed)
    probes = [(t, k) for k, ts in unseen.items() for t in ts]
    x = features(embed([t for t, _ in probes]), embed([t for t, _ in probes]))
    right = sum(p.label == k for p, (_, k) in zip(model.predict(x), probes, strict=True))
    assert right >= 7, f"{right}/8 unseen wordings routed to their kind"


REPLIES = {
    "returns": "you can return it within 30 days for a refund",
    "shipping": "shipping costs 6.95 and takes 3 to 5 days",
    "human_request": "[ESCALATE] a teammate will follow up",
}


def with_replies(items: list[Labeled]) -> list[Labeled]:
    return [Labeled(i.last, i.thread, i.kind, REPLIES[i.kind]) for i in items]


def test_reply_check_reads_which_question_a_reply_answers(tmp_path):
    """Trained on reference replies, the check reads an on-topic reply as its kind; the
    agreement with the router's reading separates a draft answering the question asked
    from one answering another; it is saved and loaded with the router."""
    from storetune.models.router import REPLY_CHECK_DIR, agreement
    from storetune.train.router import agreement_threshold, reply_text, train_reply_check

    train, val = with_replies(toy_items()), with_replies(toy_items(4))
    router, _ = train_router(train, val, bag_of_words)
    check, report = train_reply_check(train, val, bag_of_words, "[ESCALATE]")
    assert report["val_accuracy"] == 1.0
    assert reply_text("[ESCALATE] a teammate", "[ESCALATE]") == "a teammate"
    reading = router.predict(features(bag_of_words(["refund my return"]), bag_of_words(["x"])))[0]
    assert reading.label == "returns"
    on = check.predict(bag_of_words(["a return within 30 days gets a refund"]))[0]
    off = check.predict(bag_of_words(["shipping takes 3 to 5 days"]))[0]
    assert agreement(reading, on) > 0.5 > agreement(reading, off)
    threshold = agreement_threshold(router, check, val, bag_of_words, "[ESCALATE]")
    assert agreement(reading, off) < threshold <= agreement(reading, on)

    router.save(tmp_path / "router")
    check.save(tmp_path / "router" / REPLY_CHECK_DIR)
    loaded = RouterModel.load(tmp_path / "router")
    assert loaded.reply_check is not None and loaded.reply_check.classes == check.classes
    (tmp_path / "old").mkdir()
    router.save(tmp_path / "old")
    assert RouterModel.load(tmp_path / "old").reply_check is None  # versions before the check


def test_routing_flags_a_draft_that_answers_another_question():
    """The ticket router's hook: the version's reply check against the router's reading,
    with the threshold chosen at training time; no check (older versions), no verdict."""
    from types import SimpleNamespace

    from storetune.serve.routing import TicketRouter
    from storetune.train.router import agreement_threshold, train_reply_check

    train, val = with_replies(toy_items()), with_replies(toy_items(4))
    router, _ = train_router(train, val, bag_of_words)
    check, _ = train_reply_check(train, val, bag_of_words, "[ESCALATE]")
    check.info["agree_threshold"] = agreement_threshold(
        router, check, val, bag_of_words, "[ESCALATE]"
    )
    embedder = SimpleNamespace(embed_query=lambda text: bag_of_words([text])[0])
    ticket_router = TicketRouter.__new__(TicketRouter)
    ticket_router.index = SimpleNamespace(embedder=embedder)
    reading = router.predict(features(bag_of_words(["refund my return"]), bag_of_words(["x"])))[0]
    p = SimpleNamespace(reading=reading, reply_check=check)
    assert ticket_router._off_topic(p, "a return within 30 days gets a refund") is None
    why = ticket_router._off_topic(p, "shipping takes 3 to 5 days")
    assert why and "'shipping' answer" in why and "returns" in why
    assert ticket_router._off_topic(SimpleNamespace(reading=reading, reply_check=None), "x") is None
