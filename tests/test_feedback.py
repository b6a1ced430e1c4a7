"""Approved and edited drafts become chat examples: `feedback export` and the next build."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml
from test_retrieval import copy_store, indexed_store_template
from test_review import new_ticket
from typer.testing import CliRunner

from storetune.cli import app
from storetune.dataset.build import build_dataset
from storetune.dataset.validate import load_model_tokenizer
from storetune.feedback import export_feedback
from storetune.store.review import ReviewQueue
from storetune.workspace import Workspace

SYSTEM = "You are the customer support assistant.\nPolicies:\n- Returns: within 30 days."


@pytest.fixture
def reviewed(tmp_path, tiny_model_dir):
    root = copy_store(indexed_store_template(), tmp_path / "store")
    cfg = yaml.safe_load((root / "store.yaml").read_text())
    cfg["base_model"] = str(tiny_model_dir)
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    q = ReviewQueue(ws.db_path)
    customer = {"name": "Dana Whitfield", "email": "dana.w@example.org"}
    ids = {
        "approved": q.add(
            new_ticket(
                "Hi, Dana Whitfield here (dana.w@example.org). Can I return my jacket?",
                system_prompt=SYSTEM,
                customer=customer,
                thread=[
                    {"role": "customer", "content": "Hello?"},
                    {"role": "agent", "content": "Hi! How can we help?"},
                ],
            )
        ),
        "edited": q.add(new_ticket("Do you price match?", system_prompt=SYSTEM)),
        "rejected": q.add(new_ticket("Where is my parcel?")),
        "waiting": q.add(new_ticket("How warm is the parka?")),
        "sent": q.add(new_ticket("What's your return window?"), auto_send=True),
        "handover": q.add(
            new_ticket(
                "I never placed this order!",
                raw_draft="[ESCALATE] A teammate will follow up within one business day.",
                draft="A teammate will follow up within one business day.",
                response="A teammate will follow up within one business day.",
                escalate=True,
            )
        ),
    }
    q.approve(ids["approved"], "ana")
    q.edit(
        ids["edited"],
        "ben",
        "We match identical items from authorized US retailers within 14 days.",
    )
    q.reject(ids["rejected"], "ana", "needs the carrier")
    q.approve(ids["handover"], "ana")
    return ws, ids


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_approved_and_edited_drafts_with_provenance(reviewed):
    ws, ids = reviewed
    report = export_feedback(ws)
    assert (report.examples, report.approved, report.edited) == (3, 2, 1)
    rows = {r["provenance"]["ticket_id"]: r for r in read_jsonl(report.path)}
    assert set(rows) == {ids["approved"], ids["edited"], ids["handover"]}

    edited = rows[ids["edited"]]
    assert edited["provenance"] | {"time": None} == {
        "ticket_id": ids["edited"],
        "action": "edited",
        "agent": "ben",
        "time": None,
        "edited": True,
        "model": "support",
    }
    assert edited["provenance"]["time"]
    assert edited["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Do you price match?"},
        {
            "role": "assistant",
            "content": "We match identical items from authorized US retailers within 14 days.",
        },
    ]
    approved = rows[ids["approved"]]["messages"]
    assert [m["role"] for m in approved] == ["system", "user", "assistant", "user", "assistant"]
    # the customer's personal data never reaches a training file
    text = json.dumps(approved)
    assert "Dana" not in text and "Whitfield" not in text and "dana.w@example.org" not in text
    assert "<EMAIL>" in approved[3]["content"]
    assert rows[ids["approved"]]["provenance"]["edited"] is False
    # an approved hand-over teaches handing over
    assert rows[ids["handover"]]["messages"][-1]["content"].startswith("[ESCALATE] A teammate")


def test_export_command_with_out(reviewed, tmp_path):
    ws, _ = reviewed
    out = tmp_path / "exports" / "fb.jsonl"
    result = CliRunner().invoke(
        app, ["-w", str(ws.root), "feedback", "export", "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "3 examples (2 approved unchanged, 1 edited)" in result.output
    assert len(read_jsonl(out)) == 3 and not list(out.parent.glob(".fb.jsonl.*"))


def test_next_build_includes_the_feedback(reviewed, tiny_model_dir):
    ws, ids = reviewed
    # the tiny tokenizer makes examples ~3x longer than a real one: give it room
    tiny = replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)
    report = build_dataset(ws, model=tiny, progress=False)
    meta = read_jsonl(report.path / "meta.jsonl")
    fb = [m for m in meta if m["builder"] == "feedback"]
    assert sorted(m["source_ids"][0] for m in fb) == sorted(
        f"review:{ids[k]}" for k in ("approved", "edited", "handover")
    )
    assert {m["task"] for m in fb} == {"support"}
    assert sorted(m["category"] for m in fb) == [
        "feedback_approved",
        "feedback_approved",
        "feedback_edited",
    ]
    m = next(m for m in fb if m["category"] == "feedback_edited")
    row = read_jsonl(report.path / f"{m['split']}.jsonl")[m["index"]]
    assert row["messages"][-1]["content"].startswith("We match identical items")
