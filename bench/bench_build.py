"""Dataset build + validation throughput and memory on a scaled-up sample store.

Setup (not timed): the demo store with STORETUNE_BENCH_BUILD_TICKETS tickets (default
105,000, which yields ~100,000 examples once the catalog builders are added and
duplicates removed) is generated and ingested into a temp workspace.

Then, each in a fresh child process so peak memory is its own:
- storetune: `build_dataset` — every builder, dedupe (exact + MinHash near-duplicates),
  grouped stratified split, atomic write, and validation of the written files with the
  default model's tokenizer and chat template;
- floor: read the same tickets from store.db and write each thread as one chat JSONL
  line with `json.dumps` (no builders, no dedupe, no split, no validation).
Reported: wall seconds, examples/s, peak RSS (child ru_maxrss), the ratio to the floor.
Target: build + validate of 100,000 examples in <= 120 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench._child import rss_mb, spawn

TARGET_S = 120.0


def _child_setup(out: str, n: str) -> dict:
    from storetune.demo.store_gen import generate_demo_store
    from storetune.ingest import ingest_workspace
    from storetune.workspace import Workspace

    start = time.perf_counter()
    generate_demo_store(Path(out), seed=0, n_products=160, n_tickets=int(n))
    ingest_workspace(Workspace(Path(out)), progress=False)
    return {"seconds": time.perf_counter() - start}


def _child_storetune(out: str) -> dict:
    from storetune.dataset.build import build_dataset
    from storetune.workspace import Workspace

    base = rss_mb()
    start = time.perf_counter()
    report = build_dataset(Workspace(Path(out)))
    seconds = time.perf_counter() - start
    data = report.to_dict()
    return {
        "seconds": seconds,
        "rss_after_imports_mb": base,
        "peak_rss_mb": rss_mb(),
        "examples": sum(data["counts"].values()),
        "counts": data["counts"],
        "notes": data.get("notes", {}),
        "by_task": {t: sum(c.values()) for t, c in data["by_task"].items()},
    }


def _child_floor(out: str) -> dict:
    from storetune.store import db

    base = rss_mb()
    start = time.perf_counter()
    conn = db.connect(Path(out) / "store.db")
    tickets = db.load_tickets(conn, resolved_only=True)
    conn.close()
    n = 0
    with (Path(out) / "floor.jsonl").open("w", encoding="utf-8") as f:
        for t in tickets:
            msgs = [
                {"role": "user" if m.role == "customer" else "assistant", "content": m.text}
                for m in t.public_messages()
            ]
            f.write(json.dumps({"messages": msgs}, ensure_ascii=False) + "\n")
            n += 1
    return {
        "seconds": time.perf_counter() - start,
        "rss_after_imports_mb": base,
        "peak_rss_mb": rss_mb(),
        "examples": n,
    }


def child(name: str, *args: str) -> None:
    fn = {"setup": _child_setup, "storetune": _child_storetune, "floor": _child_floor}[name]
    print("RESULT " + json.dumps(fn(*args)))


def run() -> dict:
    n = int(os.environ.get("STORETUNE_BENCH_BUILD_TICKETS", "105000"))
    with tempfile.TemporaryDirectory(prefix="storetune-bench-build-") as tmp:
        setup = spawn("bench_build", "setup", tmp, str(n))
        floor = spawn("bench_build", "floor", tmp)
        ours = spawn("bench_build", "storetune", tmp)
    secs = ours["seconds"]
    per_100k = secs * 100_000 / max(ours["examples"], 1)
    summary = {
        "tickets_generated": n,
        "examples": ours["examples"],
        "setup_generate_ingest_s": round(setup["seconds"], 1),
        "storetune_build_validate_s": round(secs, 1),
        "examples_per_s": round(ours["examples"] / secs),
        "seconds_per_100k_examples": round(per_100k, 1),
        "peak_rss_mb": round(ours["peak_rss_mb"]),
        "rss_after_imports_mb": round(ours["rss_after_imports_mb"]),
        "floor_s": round(floor["seconds"], 1),
        "floor_examples": floor["examples"],
        "floor_peak_rss_mb": round(floor["peak_rss_mb"]),
        "ratio_vs_floor": round(secs / floor["seconds"], 1),
        "target_s_per_100k": TARGET_S,
        "meets_time_target": per_100k <= TARGET_S,
    }
    return {"benchmark": "build", "summary": summary, "storetune": ours, "floor": floor}
