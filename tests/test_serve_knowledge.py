"""Help-center passages end to end: three knowledge sources ingested into an indexed
store, retrieved for /v1/tickets, shown in the prompt, returned as sources, and the
facts they state accepted by the grounding guard (and nothing they don't state)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from test_retrieval import CountingEmbedder, copy_store, indexed_store_template
from test_serve_support import AUTH
from test_serve_tickets import ScriptedEngine, configure

from storetune.demo.help_center import WARRANTY_FORM
from storetune.ingest import ingest_workspace
from storetune.retrieval.index import build_index
from storetune.serve.app import create_app
from storetune.workspace import Workspace

PAGES = {
    "pages": [
        {
            "id": 77,
            "title": "Gift cards",
            "handle": "gift-cards",
            "body_html": "<h2>Balance</h2><p>Gift cards never expire and can be used online "
            "for any product, including sale items.</p>",
            "updated_at": "2025-04-01T12:00:00-07:00",
            "published_at": "2024-01-01T00:00:00-07:00",
        }
    ]
}
STOVE_MD = (
    "# Camp stove safety\n\n## Ventilation\n\nNever run a camp stove inside a tent or "
    "vestibule: carbon monoxide builds up fast. Cook at least 10 feet downwind of your tent.\n"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    root = copy_store(indexed_store_template(), tmp_path_factory.mktemp("kb") / "store")
    pages = root / "pages.json"
    pages.write_text(json.dumps(PAGES), encoding="utf-8")
    folder = root / "docs"
    folder.mkdir()
    (folder / "stove-safety.md").write_text(STOVE_MD, encoding="utf-8")
    ws = Workspace(configure(root))
    # each ingest refreshes the existing index (the template's help center is indexed)
    ingest_workspace(ws, knowledge=pages, progress=False, configured_sources=False)
    ingest_workspace(ws, knowledge=folder, progress=False, configured_sources=False)
    return ws


@pytest.fixture(scope="module")
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture(scope="module")
def client(workspace, engine):
    with TestClient(create_app(workspace, engine)) as c:
        yield c


def ask(client, engine, message: str, reply: str = "Happy to help.") -> tuple[dict, str]:
    engine.reply = lambda messages: (reply, -0.05)
    r = client.post("/v1/tickets", json={"message": message}, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json(), engine.prompts[-1][0][0]["content"]


def passages(body: dict) -> list[tuple[str, str]]:
    return [(s["title"], s["heading"]) for s in body["sources"] if s.get("type") == "passage"]


def test_each_source_shows_up_in_tickets(client, engine):
    body, system = ask(client, engine, "How do I make a warranty claim for a broken zipper?")
    assert ("Warranty", "How to make a claim") in passages(body)
    claim = next(s for s in body["sources"] if s["heading"] == "How to make a claim")
    assert claim["url"].startswith("https://support.cedarsummit.example.com/hc/en-us/articles/")
    assert "Help center:\n[Warranty > How to make a claim]" in system
    assert "help-center passages" in system.splitlines()[1]

    body, system = ask(client, engine, "Do gift cards expire?")
    assert passages(body)[0] == ("Gift cards", "Balance")
    page = next(s for s in body["sources"] if s.get("type") == "passage")
    assert page["url"] == "https://www.cedarsummit.example.com/pages/gift-cards"
    assert page["key"] == "shopify_page:77#0" and page["similarity"] >= 0.40
    assert "Gift cards never expire" in system

    body, _ = ask(client, engine, "is it ok to cook with my stove inside the tent when it rains?")
    assert ("Camp stove safety", "Ventilation") in passages(body)


def test_unrelated_questions_get_no_passage(client, engine):
    for message in ("How much is the Larch 1P Dome Tent?", "I want to speak to a manager"):
        body, system = ask(client, engine, message)
        assert passages(body) == [] and "Help center:" not in system


def test_guard_accepts_what_a_passage_states_and_nothing_else(client, engine):
    question = "How long does a warranty repair take and where do I file it?"
    good = f"Repairs take 10-15 business days; you can file the claim at {WARRANTY_FORM}."
    body, _ = ask(client, engine, question, good)
    assert body["signals"]["blocked"] == [] and body["response"] == good
    bad = "Repairs take 2-3 business days at https://www.cedarsummit.example.com/fix-it."
    body, _ = ask(client, engine, question, bad)
    kinds = sorted(f["kind"] for f in body["signals"]["blocked"])
    assert kinds == ["days", "url"] and body["confidence"] == "low"


def test_a_changed_article_is_the_only_one_re_embedded(workspace, tmp_path):
    root = copy_store(workspace.root, tmp_path / "copy")
    ws = Workspace(root)
    (root / "docs" / "stove-safety.md").write_text(
        STOVE_MD.replace("10 feet", "15 feet"), encoding="utf-8"
    )
    report = ingest_workspace(ws, knowledge=root / "docs", progress=False, configured_sources=False)
    assert report.source("knowledge").upserts["changed"] == 1
    counting = CountingEmbedder()
    again = build_index(ws.db_path, counting, progress=False)
    # the refresh inside ingest already embedded the change: nothing is left to embed
    assert (again.passages_embedded, again.embedded, again.tickets_embedded) == (0, 0, 0)
    (root / "docs" / "stove-safety.md").write_text(
        STOVE_MD.replace("10 feet", "20 feet"), encoding="utf-8"
    )
    import storetune.retrieval.index as index_module

    # with no index refresh on ingest, the next `storetune index` embeds that one chunk
    saved = index_module.refresh_if_indexed
    index_module.refresh_if_indexed = lambda *a, **k: None
    try:
        ingest_workspace(ws, knowledge=root / "docs", progress=False, configured_sources=False)
    finally:
        index_module.refresh_if_indexed = saved
    third = build_index(ws.db_path, counting, progress=False)
    assert third.passages_embedded == 1 and len(counting.texts) == 1
    assert "20 feet" in counting.texts[0] and third.passages == again.passages
