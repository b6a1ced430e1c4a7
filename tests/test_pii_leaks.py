"""Issue 16, item 2: no string of the extended PII set reaches a dataset file, and
`storetune build` warns when text that looks like personal data is left."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from storetune.clean.pii_eval import DEFAULT_PATH, HARD_PATH, load
from storetune.dataset.build import _pii_left, build_dataset, build_summary, pii_warning
from storetune.dataset.example import Example
from storetune.dataset.validate import load_model_tokenizer
from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import ingest_workspace
from storetune.workspace import Workspace

N_LABELED = 60  # the generated set's first rows, beside every hand-written hard case


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return replace(load_model_tokenizer(str(tiny_model_dir)), context=1 << 16)


def _inject(root: Path, rows: list[dict]) -> None:
    """Each labeled text becomes a customer's opening message (and its requester takes the
    row's helpdesk name), in the demo store's Zendesk export."""
    zdir = root / "zendesk"
    events_pages = sorted(zdir.glob("ticket_events-*.json"))
    ticket_pages = sorted(zdir.glob("tickets-*.json"))
    bodies: dict[int, tuple[str, dict]] = {}
    queue = list(rows)
    for path in events_pages:
        page = json.loads(path.read_text(encoding="utf-8"))
        for event in page["ticket_events"]:
            for child in event["child_events"]:
                if child.get("event_type") != "Comment" or event["ticket_id"] in bodies:
                    continue
                if not queue:
                    break
                row = queue.pop(0)
                body = row["text"]
                child["body"] = body
                child["html_body"] = "<p>" + html.escape(body).replace("\n", "<br>") + "</p>"
                bodies[event["ticket_id"]] = (body, row)
        path.write_text(json.dumps(page), encoding="utf-8")
    assert not queue, "the demo store has too few tickets for the labeled rows"
    for path in ticket_pages:
        page = json.loads(path.read_text(encoding="utf-8"))
        users = {u["id"]: u for u in page["users"]}
        for t in page["tickets"]:
            if t["id"] in bodies:
                body, row = bodies[t["id"]]
                t["description"] = body
                if row.get("names") and t.get("requester_id") in users:
                    users[t["requester_id"]]["name"] = row["names"][0]
        path.write_text(json.dumps(page), encoding="utf-8")


@pytest.fixture(scope="module")
def leaked(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("pii-leaks")
    generate_demo_store(root, seed=3, n_products=30, n_tickets=220)
    rows = load(HARD_PATH) + load(DEFAULT_PATH)[:N_LABELED]
    for row in rows:
        assert row["text"]
    _inject(root, rows)
    ws = Workspace(root)
    ingest_workspace(ws, progress=False)
    report = build_dataset(ws, model=tiny, progress=False)
    catalog = (root / "products.csv").read_text(encoding="utf-8").lower()
    strings = {row["text"][s["start"] : s["end"]] for row in rows for s in row["spans"]}
    # a first name that is also a catalog word ("Olive") stays in product text by design,
    # and an order number equal to a demo ticket's id is in meta.jsonl's source ids
    ticket_ids = {
        str(t["id"])
        for page in (root / "zendesk").glob("tickets-*.json")
        for t in json.loads(page.read_text(encoding="utf-8"))["tickets"]
    }
    strings = {s for s in strings if s.lower() not in catalog and s not in ticket_ids}
    return ws, report, strings


def test_no_labeled_pii_string_in_any_dataset_file(leaked):
    ws, report, strings = leaked
    assert len(strings) >= 120
    files = [p for p in report.path.iterdir() if p.is_file()]
    assert {"train.jsonl", "val.jsonl", "test.jsonl", "meta.jsonl"} <= {p.name for p in files}
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    # JSONL escapes nothing but quotes, backslashes and control characters (ensure_ascii
    # is off): decode each line's strings so a value is found as written
    decoded = "\n".join(
        json.dumps(json.loads(line), ensure_ascii=False)
        for p in files
        if p.suffix == ".jsonl"
        for line in p.read_text(encoding="utf-8").splitlines()
    )
    leaks = sorted(
        s for s in strings if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", text + "\n" + decoded)
    )
    assert leaks == []


def test_the_injected_tickets_reached_the_dataset(leaked):
    ws, report, _ = leaked
    train = (report.path / "train.jsonl").read_text(encoding="utf-8")
    # the texts are in, with their personal data replaced
    assert "<NAME>" in train and "<ADDRESS>" in train and "<PHONE>" in train


def test_a_clean_build_has_no_warning(leaked):
    ws, report, _ = leaked
    assert report.pii_left["examples"] == 0, report.pii_left
    assert pii_warning(report) is None


def test_build_warns_naming_examples_and_types(leaked):
    ws, _, _ = leaked
    sys = {"role": "system", "content": "Call us at 503-555-0100."}
    examples = [
        Example([sys, {"role": "user", "content": "Where is my jacket?"}], "support", "a", "b"),
        Example(
            [
                sys,
                {"role": "user", "content": "Ship to 14 Birch Lane, Portland, OR 97201."},
                {"role": "assistant", "content": "Sure, call me on 00 44 20 7946 0958."},
            ],
            "support",
            "a",
            "b",
            source_ids=["zendesk:42"],
        ),  # fmt: skip
        Example([sys, {"role": "user", "content": "I'm maya@example.com"}], "support", "a", "b"),
    ]
    left = _pii_left(ws, examples, ["train", "train", "test"])
    assert left["examples"] == 2
    assert left["by_type"] == {"ADDRESS": 1, "EMAIL": 1, "PHONE": 1}
    assert left["shown"][0] == {
        "id": "train:1",
        "types": ["ADDRESS", "PHONE"],
        "source_ids": ["zendesk:42"],
    }
    report = replace_report(leaked[1], left)
    line = pii_warning(report)
    assert "2 example(s)" in line and "train:1 (ADDRESS/PHONE)" in line and "test:0 (EMAIL)" in line
    assert "maya@example.com" not in line  # the warning never repeats the value
    from rich.console import Console

    console = Console(record=True, width=300)
    console.print(build_summary(report))
    assert "possible personal data left in 2 example(s)" in console.export_text()


def replace_report(report, left):
    from dataclasses import replace as dc_replace

    return dc_replace(report, pii_left=left)
