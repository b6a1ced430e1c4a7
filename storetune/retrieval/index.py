"""The hybrid catalog index: BM25 keywords + MiniLM embeddings, fused by rank.

Help-center passages live in the same index and store.db table (kind 'passage', see
storetune.retrieval.passages), built and reloaded with the catalog.

Only active, published products are indexed and returned. Embeddings are stored in
store.db (`index_vectors`, float32 blobs) with a hash of the text they came from,
so `storetune index` after a re-ingest embeds only products whose text changed.
Prices and stock are never part of the index: a hit is a handle, and the card a
reply is grounded in is rendered from the product's current rows at query time, so
a price change needs no rebuild.

Search embeds the query once (cached), scores every product with one matrix-vector
product (float16 in memory: half the bytes to read, the same ranking) and BM25 from
an inverted index, and fuses the two rankings by reciprocal-rank fusion.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from storetune.chat.card import ProductCard, render_cards
from storetune.errors import StoretuneError
from storetune.progress import progress as progress_bar
from storetune.retrieval.embed import Embedder
from storetune.retrieval.keyword import BM25Index, KeywordDoc
from storetune.retrieval.passages import (
    MIN_PASSAGE_SIMILARITY,
    PassageHit,
    PassageIndex,
    passage_rows,
)
from storetune.store import db
from storetune.store.knowledge import Passage, load_passages
from storetune.store.records import Product

_SKU_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{2,}")
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the very top ranks
CANDIDATES = 50  # per ranking, before fusion
# Keyword ranks count a little less than meaning: shoppers paraphrase more often than
# they quote titles, and an exact title scores high on both anyway.
KEYWORD_WEIGHT = 0.8
# Cosine below which an embedding hit alone is not relevant. On the sample store,
# paraphrased product questions scored 0.40-0.71 with their product and questions
# about orders or policies at most 0.26; an absent product ("kayaks") reached 0.40.
MIN_SIMILARITY = 0.36


# --- what is indexed ----------------------------------------------------------------


@dataclass
class CatalogDoc:
    handle: str
    keyword: KeywordDoc
    skus: list[str] = field(default_factory=list)

    def embed_text(self) -> str:
        # Title, type and tags only: measured on the sample store, adding the
        # description (specs, care, SKUs) blurred paraphrase matches ("sticks to help me
        # walk on steep hills" found the trekking poles 4th instead of 1st).
        k = self.keyword
        return ". ".join(x for x in (k.title, k.type, k.tags) if x)


def catalog_docs(conn: sqlite3.Connection) -> list[CatalogDoc]:
    """Searchable text of every active product, in ingest order (lean SQL, no cards)."""
    extras: dict[str, set[str]] = {}
    skus: dict[str, list[str]] = {}
    for handle, sku, options in conn.execute(
        """SELECT v.product_handle, v.sku, v.options FROM variants v
           JOIN products p ON p.handle = v.product_handle
           WHERE p.status = 'active' AND p.published = 1"""
    ):
        bag = extras.setdefault(handle, set())
        bag.update(x for x in json.loads(options).values() if x and x != "Default Title")
        if sku:
            bag.add(sku)
            skus.setdefault(handle, []).append(sku)
    docs = []
    for r in conn.execute(
        """SELECT handle, title, product_type, tags, description FROM products
           WHERE status = 'active' AND published = 1 ORDER BY rowid"""
    ):
        docs.append(
            CatalogDoc(
                r[0],
                KeywordDoc(
                    title=r[1],
                    type=r[2],
                    tags=", ".join(json.loads(r[3])),
                    options=" ".join(sorted(extras.get(r[0], ()))),
                    description=r[4],
                ),
                skus.get(r[0], []),
            )
        )
    return docs


@dataclass
class TicketDoc:
    key: str  # source:source_id
    text: str  # the customer's first message
    label: str  # escalate | answer


def ticket_docs(conn: sqlite3.Connection) -> list[TicketDoc]:
    """Historical tickets for the routing classifier: first customer message + outcome."""
    first: dict[int, str] = {}
    for tid, text in conn.execute(
        "SELECT ticket_id, text FROM messages WHERE role = 'customer' ORDER BY ticket_id, position"
    ):
        if tid not in first and text.strip():
            first[tid] = text.strip()
    docs = []
    for r in conn.execute(
        """SELECT id, source, source_id, tags, human_only FROM tickets
           WHERE human_only = 1 OR status IN ('solved', 'closed') ORDER BY id"""
    ):
        if r[0] not in first:
            continue
        escalated = bool(r[4]) or "escalated" in json.loads(r[3])
        docs.append(TicketDoc(f"{r[1]}:{r[2]}", first[r[0]], "escalate" if escalated else "answer"))
    return docs


def content_hash(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()[:24]


# --- building -----------------------------------------------------------------------


@dataclass
class IndexReport:
    products: int
    embedded: int  # product vectors computed now
    reused: int  # unchanged products whose stored vector was kept
    removed: int  # vectors of products no longer active
    tickets: int
    tickets_embedded: int
    model: str
    seconds: float
    passages: int = 0  # help-center chunks indexed
    passages_embedded: int = 0  # of which embedded now (new or changed)

    def to_dict(self) -> dict:
        return asdict(self)


def index_exists(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM index_meta WHERE key = 'built'").fetchone() is not None


def build_index(
    db_path: Path,
    embedder: Embedder | None = None,
    progress: bool = True,
    tickets: bool = True,
) -> IndexReport:
    """Create or refresh the index in store.db; embeds only new or changed texts."""
    if not Path(db_path).exists():
        raise StoretuneError(f"{db_path}: no store database", hint="run 'storetune ingest' first")
    start = time.perf_counter()
    embedder = embedder or _default_embedder()
    conn = db.connect(db_path)
    try:
        docs = catalog_docs(conn)
        p = _sync_vectors(
            conn, "product", [(d.handle, d.embed_text(), None) for d in docs], embedder, progress
        )
        kb = _sync_vectors(conn, "passage", passage_rows(conn), embedder, progress)
        t = (0, 0, 0)
        if tickets:
            tdocs = ticket_docs(conn)
            t = _sync_vectors(
                conn, "ticket", [(d.key, d.text, d.label) for d in tdocs], embedder, progress
            )
        with db.transaction(conn):
            _set_meta(conn, "built", datetime.now(UTC).isoformat(timespec="seconds"))
            _set_meta(conn, "model", embedder.name)
            _set_meta(conn, "generation", str(_generation(conn) + 1))
    finally:
        conn.close()
    return IndexReport(
        products=len(docs),
        embedded=p[0],
        reused=p[1],
        removed=p[2],
        tickets=t[0] + t[1],
        tickets_embedded=t[0],
        model=embedder.name,
        seconds=round(time.perf_counter() - start, 2),
        passages=kb[0] + kb[1],
        passages_embedded=kb[0],
    )


def _default_embedder() -> Embedder:
    from storetune.retrieval.embed import default_embedder

    return default_embedder()


def _sync_vectors(
    conn: sqlite3.Connection,
    kind: str,
    rows: list[tuple[str, str, str | None]],
    embedder: Embedder,
    progress: bool,
) -> tuple[int, int, int]:
    """Make index_vectors of `kind` match rows (key, text, label); return
    (embedded, reused, removed). Everything is embedded before one write transaction,
    so a killed run leaves the previous index intact."""
    stored = dict(
        conn.execute("SELECT key, content_hash FROM index_vectors WHERE kind = ?", (kind,))
    )
    hashes = {key: content_hash(embedder.name, text) for key, text, _ in rows}
    todo = [(key, text, label) for key, text, label in rows if stored.get(key) != hashes[key]]
    keep = {key for key, _, _ in rows}
    gone = [k for k in stored if k not in keep]
    vectors = np.zeros((0, embedder.dim), dtype=np.float32)
    if todo:
        with progress_bar(f"embed {kind}s", len(todo), progress) as bar:
            vectors = embedder.embed([text for _, text, _ in todo], on_batch=bar.advance)
    labels = {key: label for key, _, label in rows}
    with db.transaction(conn):
        conn.executemany(
            "DELETE FROM index_vectors WHERE kind = ? AND key = ?", [(kind, k) for k in gone]
        )
        conn.executemany(
            """INSERT INTO index_vectors (kind, key, content_hash, label, vector)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(kind, key) DO UPDATE SET content_hash = excluded.content_hash,
                   label = excluded.label, vector = excluded.vector""",
            [
                (kind, key, hashes[key], label, vec.astype(np.float32).tobytes())
                for (key, _, label), vec in zip(todo, vectors, strict=True)
            ],
        )
        # A label can change without the text changing (a ticket escalated later).
        conn.executemany(
            "UPDATE index_vectors SET label = ? WHERE kind = ? AND key = ?",
            [(labels[k], kind, k) for k in keep if k in stored],
        )
    return len(todo), len(rows) - len(todo), len(gone)


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO index_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM index_meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def refresh_if_indexed(db_path: Path, progress: bool = True) -> IndexReport | None:
    """Re-index after an ingest, but only where an index was built before."""
    conn = db.connect(db_path)
    try:
        exists = index_exists(conn)
    finally:
        conn.close()
    return build_index(db_path, progress=progress) if exists else None


# --- querying -----------------------------------------------------------------------


@dataclass
class Hit:
    handle: str
    score: float  # fused reciprocal-rank score
    similarity: float  # cosine with the query
    keyword: float  # BM25 score (0: no keyword match)


@dataclass
class Retrieval:
    """What a query found: current product rows and the catalog text for the prompt."""

    query: str
    products: list[Product]
    hits: list[Hit] = field(default_factory=list)

    @property
    def context(self) -> str | None:
        return render_cards([ProductCard.from_product(p) for p in self.products]) or None

    def sources(self) -> list[dict]:
        """Product facts a caller may show beside the reply."""
        score = {h.handle: h for h in self.hits}
        return [
            {
                "handle": p.handle,
                "title": p.title,
                "price": ProductCard.from_product(p).price_text(),
                "in_stock": any(v.in_stock for v in p.variants),
                "score": round(score[p.handle].score, 4) if p.handle in score else None,
            }
            for p in self.products
        ]


@dataclass
class _Loaded:
    """One `storetune index` run, loaded; replaced whole so a search never mixes two."""

    generation: int
    handles: list[str]
    keyword: BM25Index
    matrix: object  # torch float16 (n, dim), rows aligned with handles
    by_sku: dict[str, int]
    passages: PassageIndex | None = None


class HybridIndex:
    """The catalog index loaded for queries; reloads itself after `storetune index`."""

    def __init__(
        self,
        db_path: Path,
        embedder: Embedder | None = None,
        min_similarity: float = MIN_SIMILARITY,
        min_passage_similarity: float = MIN_PASSAGE_SIMILARITY,
    ) -> None:
        self.db_path = Path(db_path)
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.min_passage_similarity = min_passage_similarity
        self._local = threading.local()
        self._reload_lock = threading.Lock()
        self._state: _Loaded | None = None
        self.reload()

    # connections are per thread: a server answers from several
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.db_path)
            self._local.conn = conn
        return conn

    def reload(self) -> None:
        with self._reload_lock:
            self._state = self._load()

    def _load(self) -> _Loaded:
        import torch

        conn = self._conn()
        if not index_exists(conn):
            raise StoretuneError(
                f"{self.db_path}: the catalog has not been indexed",
                hint="run 'storetune index' (re-ingests then refresh it automatically)",
            )
        if self.embedder is None:
            self.embedder = _default_embedder()
        generation = _generation(conn)
        docs = catalog_docs(conn)
        position = {d.handle: i for i, d in enumerate(docs)}
        matrix = np.zeros((len(docs), self.embedder.dim), dtype=np.float32)
        for key, blob in conn.execute(
            "SELECT key, vector FROM index_vectors WHERE kind = 'product'"
        ):
            i = position.get(key)
            if i is not None:  # a product archived since the last index is skipped
                matrix[i] = np.frombuffer(blob, dtype=np.float32)
        return _Loaded(
            generation,
            [d.handle for d in docs],
            BM25Index([d.keyword for d in docs]),
            torch.from_numpy(matrix).to(torch.float16),
            {s.lower(): i for i, d in enumerate(docs) for s in d.skus},
            PassageIndex.load(conn, self.embedder.dim),
        )

    @property
    def generation(self) -> int:
        """Which `storetune index` run the loaded data comes from."""
        return self._state.generation if self._state else -1

    @property
    def handles(self) -> list[str]:
        return self._state.handles if self._state else []

    @property
    def keyword(self) -> BM25Index:
        return self._state.keyword if self._state else BM25Index([])

    def reload_if_stale(self) -> None:
        if _generation(self._conn()) != self.generation:
            self.reload()

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """Best k active products for the query, most relevant first (may be fewer)."""
        self.reload_if_stale()
        st = self._state
        if st is None or not query.strip() or not st.handles:
            return []
        sims = _similarities(st, self.embedder.embed_query(query))
        by_vector = _top(sims, CANDIDATES)
        by_keyword, kw = st.keyword.rank(query, CANDIDATES)
        by_sku = _sku_matches(st, query)
        fused: dict[int, float] = {}
        for ranking, weight in ((by_vector, 1.0), (by_keyword, KEYWORD_WEIGHT), (by_sku, 2.0)):
            for rank, i in enumerate(ranking.tolist()):
                fused[i] = fused.get(i, 0.0) + weight / (RRF_K + rank + 1)
        # Relevant: close in meaning, or a keyword hit that names the product's title,
        # or a SKU quoted exactly. Anything else is left out of the prompt.
        titled = set(st.keyword.title_matches(query).tolist()) & set(by_keyword.tolist())
        named = titled | set(by_sku.tolist())
        relevant = [i for i in fused if sims[i] >= self.min_similarity or i in named]
        relevant.sort(key=lambda i: (-fused[i], i))
        return [Hit(st.handles[i], fused[i], float(sims[i]), float(kw[i])) for i in relevant[:k]]

    def similarities(self, query_vec: np.ndarray) -> np.ndarray:
        """Cosine of the query with every product of the loaded index."""
        assert self._state is not None
        return _similarities(self._state, query_vec)

    def retrieve(self, query: str, k: int = 3) -> Retrieval:
        """Search, then read the hits' current rows (price, stock) from store.db."""
        hits = self.search(query, k)
        return Retrieval(query, self.current_products([h.handle for h in hits]), hits)

    def search_passages(self, query: str, k: int = 2) -> list[PassageHit]:
        """Best k help-center passages above the relevance threshold (may be none)."""
        self.reload_if_stale()
        st = self._state
        if st is None or st.passages is None or not query.strip():
            return []
        vec = self.embedder.embed_query(query)
        return st.passages.search(vec, query, k, self.min_passage_similarity)

    def retrieve_passages(self, query: str, k: int = 2) -> list[tuple[Passage, PassageHit]]:
        """Search, then read the hits' current text from store.db."""
        hits = self.search_passages(query, k)
        found = load_passages(self._conn(), [h.key for h in hits]) if hits else []
        by_key = {p.key: p for p in found}
        return [(by_key[h.key], h) for h in hits if h.key in by_key]

    def current_products(self, handles: Sequence[str]) -> list[Product]:
        """Active products by handle, in the given order, as store.db has them now."""
        if not handles:
            return []
        rows = {p.handle: p for p in db.load_products(self._conn(), True, handles=handles)}
        return [rows[h] for h in handles if h in rows]


def _similarities(st: _Loaded, query_vec: np.ndarray) -> np.ndarray:
    import torch

    q = torch.tensor(np.asarray(query_vec, dtype=np.float32), dtype=torch.float16)
    return (st.matrix @ q).float().numpy()


def _sku_matches(st: _Loaded, query: str) -> np.ndarray:
    """Products with a SKU written out in the query, in order of mention."""
    found = [st.by_sku.get(t.lower()) for t in _SKU_LIKE.findall(query)]
    return np.asarray(list(dict.fromkeys(i for i in found if i is not None)), dtype=np.int64)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    if len(scores) > n:
        idx = np.argpartition(-scores, n - 1)[:n]
    else:
        idx = np.arange(len(scores))
    return idx[np.lexsort((idx, -scores[idx]))]
