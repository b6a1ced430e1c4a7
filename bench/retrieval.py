"""Retrieval latency on a large synthetic catalog (for bench_serve and the README figures).

    python -c "from bench.retrieval import bench_retrieval as b; print(b(100_000, threads=1))"

Embedding 100,000 products with MiniLM on two CPU cores takes the better part of an
hour, so the stored product vectors here are random unit vectors: the search does
exactly the same work (one float16 matrix-vector product over every row), only the
ranking is meaningless. Everything else is real: the BM25 inverted index over the
synthetic catalog, the query embedding (real MiniLM, measured both uncached and
cached), and reading the hits' current rows from store.db to render their cards.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from storetune.store import db

_NAMES = (
    "Alder Aspen Basin Birch Bristlecone Cairn Cascade Cedar Cirque Coldwater Cornice "
    "Driftwood Ember Fireweed Foxtail Glacier Granite Headwall Highline Ironwood Juniper "
    "Kestrel Lakeshore Larch Meadow Moraine Pika Ridgeline Saddleback Sawtooth Scree "
    "Stillwater Summit Switchback Talus Tamarack Timberline Trailhead Tundra Wildcat Willow"
).split()
_KINDS = [
    ("Jackets", "Rain Jacket", ["outerwear", "rain", "waterproof"]),
    ("Jackets", "Down Parka", ["outerwear", "insulated", "winter"]),
    ("Fleece", "Grid Fleece Pullover", ["midlayer", "fleece"]),
    ("Tents", "2P Dome Tent", ["camping", "shelter", "backpacking"]),
    ("Sleeping Bags", "20°F Mummy Sleeping Bag", ["sleep", "camping"]),
    ("Backpacks", "Trail 28L Pack", ["packs", "hiking"]),
    ("Boots", "Waterproof Hiking Boot", ["footwear", "hiking"]),
    ("Shoes", "Trail Runner", ["footwear", "running"]),
    ("Headlamps", "350 Headlamp", ["lighting", "camping"]),
    ("Stoves", "Canister Stove", ["cooking", "camping"]),
    ("Socks", "Merino Hiking Socks", ["socks", "merino"]),
    ("Gloves", "Insulated Gloves", ["accessories", "skiing"]),
    ("Trekking Poles", "Cork Grip Trekking Poles", ["poles", "hiking"]),
    ("Water Bottles", "Wide-Mouth Bottle", ["hydration", "everyday"]),
]
_QUERIES = [
    "waterproof jacket for hiking in the rain",
    "warm sleeping bag for winter camping",
    "tent for two people",
    "lightweight backpack for day hikes",
    "boots for muddy trails size 10",
    "something to keep my hands warm skiing",
    "headlamp for night runs",
    "stove for cooking at camp",
    "merino socks that don't itch",
    "poles for steep descents",
    "is the Larch Rain Jacket in stock?",
    "how much is the Tamarack 2P Dome Tent",
    "Summit Down Parka price",
    "do you have the Cascade Trail Runner in blue",
    "insulated bottle for coffee",
    "fleece pullover for layering",
]


def build_catalog(root: Path, n_products: int, seed: int = 0) -> Path:
    """A synthetic active catalog with random unit vectors as its index."""
    from storetune.retrieval.embed import DIM, MODEL_NAME
    from storetune.retrieval.index import catalog_docs, content_hash

    rng = random.Random(seed)
    path = root / "store.db"
    conn = db.connect(path)
    products, variants = [], []
    for i in range(n_products):
        ptype, kind, tags = _KINDS[i % len(_KINDS)]
        title = f"{rng.choice(_NAMES)} {rng.choice(_NAMES)} {kind}"
        handle = f"p{i:06d}"
        desc = f"Made for {tags[0]} and {tags[-1]}. Material: recycled nylon. Weight: {200 + i % 700} g."
        products.append((handle, title, desc, ptype, json.dumps(tags)))
        for pos, size in enumerate(("M", "L")):
            price = f"{29 + (i * 7) % 400}.{(i % 4) * 25:02d}"
            options = json.dumps({"Size": size})
            variants.append((handle, pos, f"SKU-{i:06d}-{size}", options, price, (i + pos) % 9))
    with db.transaction(conn):
        conn.executemany(
            "INSERT INTO products (handle, title, description, product_type, tags) "
            "VALUES (?, ?, ?, ?, ?)",
            products,
        )
        conn.executemany(
            "INSERT INTO variants (product_handle, position, sku, options, price, inventory_qty) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            variants,
        )
    vectors = np.random.default_rng(seed).standard_normal((n_products, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = catalog_docs(conn)
    with db.transaction(conn):
        conn.executemany(
            "INSERT INTO index_vectors (kind, key, content_hash, label, vector) "
            "VALUES ('product', ?, ?, NULL, ?)",
            [
                (d.handle, content_hash(MODEL_NAME, d.embed_text()), v.tobytes())
                for d, v in zip(docs, vectors, strict=True)
            ],
        )
        for key, value in (("built", "bench"), ("model", MODEL_NAME), ("generation", "1")):
            conn.execute("INSERT INTO index_meta VALUES (?, ?)", (key, value))
    conn.close()
    return path


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    q = lambda f: ordered[min(len(ordered) - 1, round(f * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * q(0.95), 2),
    }


def run(
    n_products: int = 100_000, rounds: int = 4, seed: int = 0, threads: int | None = None
) -> dict[str, Any]:
    """Latency of `HybridIndex.retrieve` (k=2, as the router asks) at n_products.

    `threads` sets torch's intra-op threads for the run (restored afterwards): on a
    busy 2-core machine one thread is several times faster for these small operations."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(n_products, rounds, seed) | {"torch_threads": torch.get_num_threads()}
    finally:
        torch.set_num_threads(before)


def _run(n_products: int, rounds: int, seed: int) -> dict[str, Any]:
    from storetune.retrieval.embed import default_embedder
    from storetune.retrieval.index import HybridIndex

    embedder = default_embedder()
    embedder.embed_query("warm-up")  # the first forward pass allocates; not a query
    tmp = Path(tempfile.mkdtemp(prefix="storetune-bench-retrieval-"))
    try:
        started = time.perf_counter()
        path = build_catalog(tmp, n_products, seed)
        built = time.perf_counter() - started
        started = time.perf_counter()
        index = HybridIndex(path, embedder)
        loaded = time.perf_counter() - started
        # Distinct texts each round, so the first pass embeds every query for real.
        queries = [f"{q} ({r})" if r else q for r in range(rounds) for q in _QUERIES]
        uncached, cached, embed, vector, keyword = [], [], [], [], []
        for q in queries:
            t0 = time.perf_counter()
            vec = embedder.embed_query(q)
            embed.append(time.perf_counter() - t0)
            embedder.cache._data.pop(q, None)  # measure the whole path uncached below
            t0 = time.perf_counter()
            index.retrieve(q, k=2)
            uncached.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = index.retrieve(q, k=2)
            cached.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index.similarities(vec)
            vector.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index.keyword.top(q, 50)
            keyword.append(time.perf_counter() - t0)
            assert found.context is None or "price:" in found.context
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n_products": n_products,
        "queries": len(queries),
        "k": 2,
        "retrieve_uncached": _ms(uncached),  # query embedding + search + current rows + cards
        "retrieve_cached_embedding": _ms(cached),
        "query_embedding": _ms(embed),
        "vector_scoring": _ms(vector),
        "keyword_bm25": _ms(keyword),
        "catalog_build_s": round(built, 1),
        "index_load_s": round(loaded, 1),
        "note": "stored product vectors are random unit vectors (embedding 100k products "
        "with MiniLM on 2 cores is too slow for a benchmark); the query embedding is real",
    }


def bench_retrieval(
    n_products: int = 100_000, rounds: int = 4, seed: int = 0, threads: int | None = None
) -> dict:
    """Retrieval latency at n_products (the method is in this module's docstring)."""
    return run(n_products, rounds, seed, threads)
