"""Ingest throughput and memory on a scaled-up sample store.

Generates the demo store with STORETUNE_BENCH_TICKETS tickets (default 100,000) into
a temp dir, then, each in a fresh child process so peak memory is its own:
- storetune: `ingest_workspace` (read CSV + Zendesk pages, clean, scrub PII, write store.db)
- floor: plain `json.load` of the same Zendesk pages + `sqlite3` executemany of the raw
  ticket and comment texts in one transaction (no cleaning, no PII, no reconciling)
Reported: wall seconds, tickets/s, messages/s, peak RSS (the child's
resource.getrusage(RUSAGE_SELF).ru_maxrss, which includes the interpreter and imports;
the RSS after imports is given beside it), and storetune's time as a ratio to the floor.
Targets: ingest of 100k tickets in ≤ 60 s and ≤ 2 GB peak RSS.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench._child import rss_mb, spawn

TARGET_S, TARGET_MB = 60.0, 2048.0


def _child_generate(out: str, n: str) -> dict:
    from storetune.demo.store_gen import generate_demo_store

    start = time.perf_counter()
    s = generate_demo_store(Path(out), seed=0, n_products=160, n_tickets=int(n))
    return {
        "seconds": time.perf_counter() - start,
        "tickets": s["tickets"],
        "comments": s["comments"],
        "pages": s["ticket_pages"] + s["event_pages"],
    }


def _child_storetune(out: str, workers: str = "") -> dict:
    import resource

    from storetune.ingest import ingest_workspace
    from storetune.ingest.parallel import ENV, default_workers

    if workers:
        os.environ[ENV] = workers
    from storetune.workspace import Workspace

    base = rss_mb()
    start = time.perf_counter()
    report = ingest_workspace(Workspace(Path(out)), progress=False)
    seconds = time.perf_counter() - start
    counts = {s.name: s.counts for s in report.sources}
    return {
        "seconds": seconds,
        "rss_after_imports_mb": base,
        "peak_rss_mb": rss_mb(),
        # the largest forked cleaning worker (they share the parent's pages until written)
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "workers": default_workers(),
        "counts": counts,
        "reconciles": report.reconciles,
        "db_counts": report.db_counts,
    }


def _child_floor(out: str) -> dict:
    import sqlite3

    base = rss_mb()
    start = time.perf_counter()
    tickets, comments = [], []
    for page in sorted((Path(out) / "zendesk").glob("*.json")):
        with page.open(encoding="utf-8") as f:
            data = json.load(f)
        for t in data.get("tickets") or []:
            tickets.append((t["id"], t.get("subject") or "", t.get("description") or ""))
        for e in data.get("ticket_events") or []:
            for c in e.get("child_events") or []:
                if c.get("event_type") == "Comment":
                    comments.append((e["ticket_id"], c.get("body") or c.get("html_body") or ""))
    conn = sqlite3.connect(Path(out) / "floor.db")
    with conn:
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute("DROP TABLE IF EXISTS m")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, subject TEXT, description TEXT)")
        conn.execute("CREATE TABLE m (ticket_id INTEGER, body TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", tickets)
        conn.executemany("INSERT INTO m VALUES (?, ?)", comments)
    conn.close()
    return {
        "seconds": time.perf_counter() - start,
        "rss_after_imports_mb": base,
        "peak_rss_mb": rss_mb(),
        "tickets": len(tickets),
        "comments": len(comments),
    }


def child(name: str, *args: str) -> None:
    fn = {"generate": _child_generate, "storetune": _child_storetune, "floor": _child_floor}[name]
    result = fn(*args)
    print("RESULT " + json.dumps(result))


def run() -> dict:
    n = int(os.environ.get("STORETUNE_BENCH_TICKETS", "100000"))
    with tempfile.TemporaryDirectory(prefix="storetune-bench-ingest-") as tmp:
        gen = spawn("bench_ingest", "generate", tmp, str(n))
        floor = spawn("bench_ingest", "floor", tmp)
        ours = spawn("bench_ingest", "storetune", tmp)
        # the same ingest in one process: what the forked cleaning workers buy
        single = spawn("bench_ingest", "storetune", tmp, "1")
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "zendesk").glob("*.json")) / 2**20
    tickets = ours["counts"].get("tickets", {})
    read_tickets = tickets.get("ticket", {}).get("read", gen["tickets"])
    read_messages = tickets.get("message", {}).get("read", gen["comments"])
    secs = ours["seconds"]
    summary = {
        "tickets": read_tickets,
        "messages": read_messages,
        "generator_comments": gen["comments"],
        "zendesk_pages": gen["pages"],
        "zendesk_mb": round(size_mb, 1),
        "generate_s": round(gen["seconds"], 1),
        "storetune_s": round(secs, 1),
        "tickets_per_s": round(read_tickets / secs),
        "messages_per_s": round(read_messages / secs),
        "peak_rss_mb": round(ours["peak_rss_mb"]),
        "workers": ours["workers"],
        "worker_peak_rss_mb": round(ours["worker_peak_rss_mb"]),
        "one_process_s": round(single["seconds"], 1),
        "speedup_vs_one_process": round(single["seconds"] / secs, 2),
        "rss_after_imports_mb": round(ours["rss_after_imports_mb"]),
        "memory_measure": "child process ru_maxrss (peak RSS incl. interpreter)",
        "floor_s": round(floor["seconds"], 2),
        "floor_peak_rss_mb": round(floor["peak_rss_mb"]),
        "ratio_vs_floor": round(secs / floor["seconds"], 1),
        "reconciles": ours["reconciles"],
        "target_s": TARGET_S,
        "target_rss_mb": TARGET_MB,
        "meets_time_target": secs <= TARGET_S * n / 100_000,
        "meets_memory_target": ours["peak_rss_mb"] <= TARGET_MB,
    }
    return {
        "benchmark": "ingest",
        "summary": summary,
        "storetune": ours,
        "one_process": single,
        "floor": floor,
    }
