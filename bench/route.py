"""Ticket routing latency without HTTP (retrieve, prompt, generate, check, queue).

Used by bench_serve; kept out of the library so that serving imports neither the
demo store generator nor ingest. Drafts always go to a throw-away copy of the
store, never the workspace's review queue.
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from storetune.config import StoreConfig
from storetune.demo.store_gen import generate_demo_store
from storetune.ingest import ingest_workspace
from storetune.retrieval.index import build_index, index_exists
from storetune.serve.engine import Engine
from storetune.serve.routing import TicketInput, TicketRouter, load_thresholds, router_for
from storetune.store import db
from storetune.workspace import Workspace

BENCH_MESSAGES = [
    "How much is the Tamarack 2.5L Rain Jacket?",
    "Can I return a sale item?",
    "Do you ship to Canada, and how long does it take?",
    "I need a warm sleeping bag for winter camping, what do you have?",
    "Where is my order #48213? It's been a week.",
    "Is the Meadow 2P Basecamp Tent in stock?",
    "My package arrived with a broken zipper on the jacket",
    "Can I change the shipping address on my order?",
    "Someone used my card on your site, I never ordered this",
    "What size pack should I get for a 18 inch torso?",
]


def bench_route(
    engine: Engine,
    ws: Workspace | None = None,
    messages: list[str] | None = None,
    n: int = 20,
    model: str | None = None,
    max_tokens: int = 80,
) -> dict[str, Any]:
    """Per-ticket routing latency (retrieve, prompt, generate, check, queue) without HTTP.

    Uses the workspace's indexed store.db when it has one, else a sample store built
    for the run; drafts always go to a throw-away copy, never the workspace's queue."""
    tmp = Path(tempfile.mkdtemp(prefix="storetune-bench-route-"))
    try:
        bench_ws, cfg = _bench_store(ws, tmp)
        router_ = TicketRouter.load(bench_ws, cfg)
        entry = engine.resolve(model)
        # the version's router, as serving reads tickets (none for the base)
        reader = router_for(entry.path if entry.adapter_key else None)
        thresholds = load_thresholds(ws or bench_ws, entry.id.partition("@")[0], entry.version)
        texts = messages or [BENCH_MESSAGES[i % len(BENCH_MESSAGES)] for i in range(n)]
        times, tokens, prepare_s = [], [], []
        for text in texts:
            start = time.perf_counter()
            p = router_.prepare(TicketInput(text), reader)
            prepare_s.append(time.perf_counter() - start)
            gen = engine.generate(p.messages, entry.id, max_tokens=max_tokens, logprobs=True)
            router_.finish(
                p, gen.text, gen.token_logprobs, gen.finish_reason, gen.model, thresholds
            )
            times.append(time.perf_counter() - start)
            tokens.append(gen.completion_tokens)
        router_.queue.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "tickets": len(times),
        "max_tokens": max_tokens,
        "mean_completion_tokens": round(statistics.fmean(tokens), 1) if tokens else 0,
        "route_p50_ms": round(1000 * _quantile(times, 0.5), 1),
        "route_p95_ms": round(1000 * _quantile(times, 0.95), 1),
        "prepare_p50_ms": round(1000 * _quantile(prepare_s, 0.5), 2),
    }


def _bench_store(ws: Workspace | None, tmp: Path) -> tuple[Workspace, StoreConfig]:
    """A private indexed store for the benchmark: a copy of the workspace's, or the
    sample store (160 products, 300 tickets) when the workspace has none."""
    root = tmp / "store"
    if ws is not None and ws.db_path.exists():
        conn = db.connect(ws.db_path)
        indexed = index_exists(conn)
        conn.close()
        if indexed:
            root.mkdir()
            # SQLite's backup API: a plain file copy would miss what is still in the WAL
            with sqlite3.connect(ws.db_path) as src, sqlite3.connect(root / "store.db") as dst:
                src.backup(dst)
            src.close()
            dst.close()
            (root / "store.yaml").write_bytes(ws.config_path.read_bytes())
            return Workspace(root), ws.config()
    generate_demo_store(root, seed=0, n_products=160, n_tickets=300)
    sample = Workspace(root)
    ingest_workspace(sample, progress=False)
    build_index(sample.db_path, progress=False)
    return sample, sample.config()


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
