"""The system figures and the intervals they carry."""

from __future__ import annotations

import pytest
import yaml

from storetune.eval.stats import format_rate, rate_ci, wilson
from storetune.eval.system import Outcome, outcome_of, summarize_system


def test_wilson_matches_known_values():
    # worked by hand from Wilson's formula (z = 1.95996); 0/n and n/n have closed forms:
    # hi = z²/(n+z²) and lo = n/(n+z²)
    lo, hi = wilson(0, 40)
    assert lo == 0.0 and hi == pytest.approx(0.0876, abs=1e-4)
    lo, hi = wilson(15, 31)
    assert lo == pytest.approx(0.3197, abs=1e-3) and hi == pytest.approx(0.6516, abs=1e-3)
    lo, hi = wilson(31, 31)
    assert hi == 1.0 and lo == pytest.approx(0.8898, abs=1e-3)


def test_wilson_narrows_with_n_and_contains_the_rate():
    for k, n in [(3, 10), (30, 100), (300, 1000)]:
        lo, hi = wilson(k, n)
        assert lo < k / n < hi
    widths = [wilson(k, n)[1] - wilson(k, n)[0] for k, n in [(3, 10), (30, 100), (300, 1000)]]
    assert widths[0] > widths[1] > widths[2]


def test_wilson_rejects_impossible_counts_and_empty():
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(5, 4)
    assert rate_ci(0, 0) == {"rate": None, "k": 0, "n": 0, "ci": None}
    assert format_rate(rate_ci(0, 0)) == "–"
    assert format_rate(rate_ci(1, 4)) == "25.0% (5–70%)"


def test_outcome_rule_is_the_auto_review_mode():
    assert outcome_of("high", False) == "sent"
    assert outcome_of("medium", False) == "queued"
    assert outcome_of("low", False) == "queued"
    assert outcome_of("high", True) == "handed_over"
    with pytest.raises(ValueError):
        Outcome("dropped", "correct", False, True)


def test_system_summary_counts_what_a_store_cares_about():
    outcomes = [
        Outcome("sent", "correct", False, True),
        Outcome("sent", "correct", False, True),
        Outcome("sent", "wrong", False, True),  # wrong and sent: the one that hurts
        Outcome("queued", "wrong", False, True),  # wrong but a person sees it
        Outcome("handed_over", "correct", True, False),  # right hand-over
        Outcome("sent", "wrong", True, False),  # missed hand-over, sent
        Outcome("handed_over", "partial", False, True),  # over-escalation
        Outcome("queued", "correct", False, False),  # a safety refusal, queued
    ]
    s = summarize_system(outcomes)
    assert s["n"] == 8
    assert s["outcomes"] == {"sent": 4, "queued": 2, "handed_over": 2}
    assert s["automation"]["rate"] == pytest.approx(4 / 8)
    assert s["correct_among_sent"]["rate"] == pytest.approx(2 / 4)
    assert s["wrong_among_sent"]["rate"] == pytest.approx(2 / 4)
    assert s["wrong_and_sent"] == {**s["wrong_and_sent"], "k": 2, "n": 8}
    assert s["escalation_recall"]["k"] == 1 and s["escalation_recall"]["n"] == 2
    assert s["over_escalation"]["k"] == 1 and s["over_escalation"]["n"] == 5
    assert s["answerable_sent"]["k"] == 3
    for key in ("automation", "wrong_and_sent", "escalation_recall", "over_escalation"):
        lo, hi = s[key]["ci"]
        assert lo <= s[key]["rate"] <= hi


def test_evaluate_grades_the_deployed_system_without_touching_the_queue(tmp_path, tiny_model_dir):
    """An indexed workspace: both models get system figures from the same routed tickets,
    every ticket ends sent / queued / handed over, and nothing lands in the review queue."""
    import json
    import sqlite3

    from evalkit import make_eval_workspace

    from storetune.eval.runner import evaluate
    from storetune.retrieval.index import build_index
    from storetune.workspace import Workspace

    root = make_eval_workspace(tmp_path / "store", tiny_model_dir)
    build_index(root / "store.db", progress=False)
    ws = Workspace(root)
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg.setdefault("eval", {})["system_baseline"] = True
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    report = evaluate(ws, "support", max_new_tokens=6, progress=False, log=lambda *a: None)
    on_disk = json.loads((root / "reports" / "eval-support-v1.json").read_text())
    for name in ("base", "support-v1"):
        system = on_disk["results"][name]["system"]
        s = system["summary"]
        conversational = [
            e for e in on_disk["results"][name]["examples"] if e["task"] != "classify"
        ]
        assert s["n"] == len(conversational) == len(system["examples"]) > 0
        assert sum(s["outcomes"].values()) == s["n"]
        assert {e["outcome"] for e in system["examples"]} <= {"sent", "queued", "handed_over"}
        for key in ("automation", "wrong_and_sent", "escalation_recall", "over_escalation"):
            assert set(s[key]) == {"rate", "k", "n", "ci"}
        # a hand-over the gold asks for and the system sent is never graded right
        for e in system["examples"]:
            if "[ESCALATE]" in e["gold"] and e["outcome"] == "sent":
                assert e["verdict"] == "wrong"
    assert "ci" in on_disk["results"]["support-v1"]["summary"]
    with sqlite3.connect(root / "store.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM review_tickets").fetchone()[0] == 0
    html = (root / "reports" / "eval-support-v1.html").read_text()
    assert "The deployed system" in html and "wrong and sent" in html
    assert report["results"]["support-v1"]["system"]["summary"]["n"] == s["n"]


def test_base_model_skips_the_system_pass_unless_asked(tmp_path, tiny_model_dir):
    """By default only the version's drafts go through the deployed system (the base's
    second pass costs a third of eval's time); the base still gets its model figures."""
    from evalkit import make_eval_workspace

    from storetune.eval.runner import evaluate
    from storetune.retrieval.index import build_index
    from storetune.workspace import Workspace

    root = make_eval_workspace(tmp_path / "store", tiny_model_dir)
    build_index(root / "store.db", progress=False)
    report = evaluate(
        Workspace(root), "support", max_new_tokens=4, progress=False, log=lambda *a: None
    )
    assert "system" not in report["results"]["base"]
    assert report["results"]["base"]["summary"]["n"] > 0
    assert report["results"]["support-v1"]["system"]["summary"]["n"] > 0


def test_system_pass_never_learns_from_held_out_tickets(tmp_path):
    """A held-out ticket (and every ticket of its phrasing family) is dropped from the
    neighbour classifier, so no test ticket is graded with its own hand-over label."""
    import json

    import numpy as np

    from storetune.eval.system import held_out_tickets
    from storetune.retrieval.knn import TicketClassifier
    from storetune.store import db
    from storetune.store.records import Message, Ticket
    from storetune.workspace import Workspace

    ws = Workspace(tmp_path)
    conn = db.connect(ws.db_path)
    families = {"1": "refund.a.1", "2": "refund.a.1", "3": "refund.b.1", "4": "human.a.1"}
    for sid, family in families.items():
        db.upsert_ticket(
            conn,
            Ticket(
                sid,
                "zendesk",
                "s",
                "solved",
                [Message("customer", f"text {sid}")],
                tags=[f"phrasing:{family}"],
            ),
        )
    conn.commit()
    conn.close()
    data = ws.datasets_dir / "ds-x"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text("")
    meta = [
        {"split": "train", "source_ids": ["zendesk:3"], "family": "refund.b.1"},
        {"split": "test", "source_ids": ["zendesk:1"], "family": "refund.a.1"},
        {"split": "val", "source_ids": ["zendesk:4"], "family": "human.a.1"},
        {"split": "test", "source_ids": ["synthetic:safety:1"], "family": ""},
    ]
    (data / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))

    held = held_out_tickets(ws, "ds-x")
    # ticket 2 was never in the dataset, but shares the test ticket's wording family
    assert held == {"zendesk:1", "zendesk:2", "zendesk:4", "synthetic:safety:1"}

    keys = [f"zendesk:{i}" for i in range(1, 13)]
    matrix = np.eye(12, dtype=np.float32)
    labels = np.array([i % 2 == 0 for i in range(12)])
    clf = TicketClassifier(keys, matrix, labels, k=3)
    assert clf.predict(matrix[0]).neighbours[0].key == "zendesk:1"
    kept = clf.without(held)
    assert kept is not None and not set(kept.keys) & held and len(kept.keys) == 9
    assert kept.predict(matrix[0]).neighbours[0].similarity == 0.0
    assert clf.without(set(keys[:10])) is None  # fewer tickets left than neighbours asked
