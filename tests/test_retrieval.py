"""The hybrid catalog index on a real sample store with the bundled MiniLM."""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from storetune.cli import app
from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import ingest_workspace
from storetune.retrieval.embed import default_embedder
from storetune.retrieval.index import HybridIndex, build_index, catalog_docs, index_exists
from storetune.retrieval.knn import TicketClassifier
from storetune.store import db
from storetune.workspace import Workspace


class CountingEmbedder:
    """The real embedder, remembering which texts it was asked to embed."""

    def __init__(self) -> None:
        self.inner = default_embedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.texts: list[str] = []

    def embed(self, texts, on_batch=None):
        self.texts += texts
        return self.inner.embed(texts, on_batch)

    def embed_query(self, text):
        return self.inner.embed_query(text)


@functools.cache
def indexed_store_template() -> Path:
    """A small sample store, ingested and indexed once per test process (read-only)."""
    root = Path(tempfile.mkdtemp(prefix="storetune-indexed-")) / "store"
    atexit.register(shutil.rmtree, root.parent, True)
    generate_demo_store(root, seed=2, n_products=40, n_tickets=150)
    ingest_workspace(Workspace(root), progress=False)
    build_index(root / "store.db", progress=False)
    return root


def copy_store(src: Path, dest: Path) -> Path:
    """A private copy of a store workspace (store.db through SQLite's backup API)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("store.db*"))
    with sqlite3.connect(src / "store.db") as a, sqlite3.connect(dest / "store.db") as b:
        a.backup(b)
    a.close()
    b.close()
    return dest


@pytest.fixture(scope="module")
def store() -> Path:
    return indexed_store_template()


@pytest.fixture(scope="module")
def index(store) -> HybridIndex:
    return HybridIndex(store / "store.db")


@pytest.fixture
def copy(store, tmp_path) -> Path:
    """A private copy of the indexed store for tests that change it."""
    return copy_store(store, tmp_path / "store")


def product_rows(root: Path) -> list:
    conn = db.connect(root / "store.db")
    try:
        return db.load_products(conn)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("query", "product_type"),
    [
        ("something warm to sleep in on a cold night outdoors", "Sleeping Bags"),
        ("sticks that help me walk on steep hills", "Trekking Poles"),
        ("a pot to boil water on a camping trip", "Cookware"),
        ("shelter for one person on a backpacking trip", "Tents"),
        ("keeps my hands warm when skiing", "Gloves"),
        ("waterproof coat for women for rainy days", "Jackets"),
    ],
)
def test_paraphrased_queries_find_the_product(index, query, product_type):
    found = index.retrieve(query, k=3)
    assert found.products, query
    assert found.products[0].product_type == product_type, [p.title for p in found.products]


def test_exact_title_and_sku_rank_first(index, store):
    products = {p.title: p for p in product_rows(store) if p.active}
    tent = products["Larch 1P Dome Tent"]
    assert index.retrieve("how much is the Larch 1P Dome Tent?").products[0].handle == tent.handle
    sku = next(v.sku for v in products["Ember Fleece Mittens"].variants if v.sku)
    hit = index.retrieve(f"is {sku} in stock?").products[0]
    assert hit.title == "Ember Fleece Mittens"


def test_questions_without_a_product_get_no_context(index):
    for q in ("where is my order?", "can I return sale items", "I want to cancel my order"):
        found = index.retrieve(q)
        assert found.products == [] and found.context is None, q


def test_drafts_archived_and_unpublished_are_never_returned(index, store):
    hidden = [p for p in product_rows(store) if not p.active]
    assert {p.status for p in hidden} >= {"draft", "archived"}
    assert any(p.status == "active" and not p.published for p in hidden)
    assert {d.handle for d in catalog_docs(db.connect(store / "store.db"))}.isdisjoint(
        p.handle for p in hidden
    )
    for p in hidden:
        found = index.retrieve(p.title, k=10)
        assert p.handle not in {x.handle for x in found.products}, p.title
        assert p.title not in (found.context or "")


def test_archiving_after_indexing_hides_the_product_at_once(copy):
    index = HybridIndex(copy / "store.db")
    assert index.retrieve("Larch 1P Dome Tent").products[0].title == "Larch 1P Dome Tent"
    with sqlite3.connect(copy / "store.db") as conn:
        conn.execute("UPDATE products SET status = 'archived' WHERE title = 'Larch 1P Dome Tent'")
    titles = [p.title for p in index.retrieve("Larch 1P Dome Tent").products]
    assert "Larch 1P Dome Tent" not in titles


def test_price_and_stock_changes_need_no_rebuild(copy):
    index = HybridIndex(copy / "store.db")
    before = index.retrieve("Larch 1P Dome Tent")
    handle = before.products[0].handle
    assert "$123.45" not in before.context
    with sqlite3.connect(copy / "store.db") as conn:
        generation = conn.execute(
            "SELECT value FROM index_meta WHERE key = 'generation'"
        ).fetchone()
        conn.execute(
            "UPDATE variants SET price = '123.45', compare_at_price = NULL, inventory_qty = 0, "
            "inventory_policy = 'deny' "
            "WHERE product_handle = ?",
            (handle,),
        )
    after = index.retrieve("Larch 1P Dome Tent")
    assert after.products[0].handle == handle
    assert "price: $123.45" in after.context and "out of stock" in after.context
    assert after.sources()[0]["price"] == "$123.45" and after.sources()[0]["in_stock"] is False
    with sqlite3.connect(copy / "store.db") as conn:
        assert (
            conn.execute("SELECT value FROM index_meta WHERE key = 'generation'").fetchone()
            == generation
        )


def test_reindex_embeds_only_changed_rows(copy):
    counting = CountingEmbedder()
    again = build_index(copy / "store.db", counting, progress=False)
    assert again.embedded == 0 and again.tickets_embedded == 0 and counting.texts == []
    assert again.reused == again.products > 30
    with sqlite3.connect(copy / "store.db") as conn:
        conn.execute(
            "UPDATE products SET title = 'Larch 1P Storm Tent' WHERE title = 'Larch 1P Dome Tent'"
        )
        conn.execute("UPDATE products SET status = 'draft' WHERE title = 'Granite Titanium Pot'")
        conn.execute("UPDATE variants SET price = '1.00'")  # prices are not embedded
    index = HybridIndex(copy / "store.db", counting)
    report = build_index(copy / "store.db", counting, progress=False)
    assert (report.embedded, report.removed, report.reused) == (1, 1, again.products - 2)
    assert len(counting.texts) == 1 and counting.texts[0].startswith("Larch 1P Storm Tent")
    # a loaded index notices the rebuild and serves the new title
    assert index.retrieve("Larch 1P Storm Tent").products[0].title == "Larch 1P Storm Tent"
    assert "Granite Titanium Pot" not in [p.title for p in index.retrieve("titanium pot").products]


def test_ingest_refreshes_an_index_only_where_one_exists(copy, tmp_path):
    def generation(root: Path) -> str | None:
        with sqlite3.connect(root / "store.db") as conn:
            row = conn.execute("SELECT value FROM index_meta WHERE key = 'generation'").fetchone()
        return row[0] if row else None

    before = generation(copy)
    ingest_workspace(Workspace(copy), progress=False)
    assert int(generation(copy)) == int(before) + 1

    fresh = tmp_path / "fresh"
    generate_demo_store(fresh, seed=5, n_products=20, n_tickets=20)
    ingest_workspace(Workspace(fresh), progress=False)
    conn = db.connect(fresh / "store.db")
    assert not index_exists(conn)
    conn.close()
    with pytest.raises(Exception, match="storetune index"):
        HybridIndex(fresh / "store.db")


def test_index_command(copy):
    result = CliRunner().invoke(app, ["-w", str(copy), "index"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "0 embedded" in result.output and "reused" in result.output


def test_ticket_classifier_second_opinion(store):
    conn = db.connect(store / "store.db")
    clf = TicketClassifier.load(conn)
    conn.close()
    assert clf is not None and clf.escalated.any() and not clf.escalated.all()
    embed = default_embedder().embed_query
    fraud = clf.predict(embed("I never placed this order, someone used my stolen card! Chargeback"))
    plain = clf.predict(embed("How long do I have to return a jacket that doesn't fit?"))
    assert fraud.p_escalate >= 0.5 > plain.p_escalate
    assert len(fraud.neighbours) == clf.k and fraud.neighbours[0].similarity >= 0.4


def test_ticket_classifier_needs_both_labels():
    conn = db.connect(":memory:")
    rows = [("ticket", f"k{i}", "h", "answer", np.ones(4, np.float32).tobytes()) for i in range(12)]
    conn.executemany("INSERT INTO index_vectors VALUES (?, ?, ?, ?, ?)", rows)
    assert TicketClassifier.load(conn) is None


def test_bench_retrieval_reports_latencies():
    from bench.retrieval import bench_retrieval

    result = bench_retrieval(n_products=3000, rounds=1)
    assert result["n_products"] == 3000 and result["queries"] > 10
    for part in ("retrieve_uncached", "retrieve_cached_embedding", "vector_scoring"):
        assert result[part]["p95_ms"] >= result[part]["p50_ms"] > 0


def test_query_vector_matches_the_document_encoder():
    # A query is embedded by a direct (bf16 where supported) forward pass, documents by
    # encode() in fp32; both must land on the same unit vector for the scores to mean
    # the same thing.
    embedder = default_embedder()
    text = "a warm waterproof jacket for winter hiking, size M"
    query = embedder._encode_one(text)
    doc = embedder.embed([text])[0]
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-3
    assert float(query @ doc) > 0.9999
    other = embedder.embed(["what is your return window for sale items?"])[0]
    assert float(query @ other) < 0.9
