"""Bounded load on loopback: no 5xx under load, and 429 (not hangs) over capacity.

Latency figures are printed for the record (`pytest -s`), never asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest
from test_serve_support import (
    AUTH,
    GatedEngine,
    LiveServer,
    chat,
    make_workspace,
    serve_base,
    serve_engine,
    serve_models,
    wait_until,
)

from storetune.serve.app import create_app
from storetune.workspace import Workspace

# pytest finds fixtures by name in this module's namespace
FIXTURES = (serve_base, serve_engine, serve_models)

QUESTIONS = ["Return?", "Where is my order?", "Shipping to Canada?", "Is the fleece in stock?"]
MODELS = ["base", "support", "product", "support@v1"]


def _body(i: int, stream: bool = False) -> dict:
    return {
        "model": MODELS[i % len(MODELS)],
        "messages": chat(f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"),
        "max_tokens": 6,
        "stream": stream,
    }


async def _fire(url: str, total: int, concurrency: int) -> list[tuple[int, float]]:
    """`total` requests, at most `concurrency` in flight; (status, seconds) for each."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=120, limits=limits) as client:

        async def one(i: int) -> tuple[int, float]:
            async with gate:
                started = time.perf_counter()
                if i % 5 == 0:  # every fifth request streams
                    async with client.stream(
                        "POST", "/v1/chat/completions", json=_body(i, True)
                    ) as r:
                        async for _ in r.aiter_bytes():
                            pass
                        status = r.status_code
                else:
                    status = (await client.post("/v1/chat/completions", json=_body(i))).status_code
                return status, time.perf_counter() - started

        return await asyncio.gather(*(one(i) for i in range(total)))


def _report(label: str, results: list[tuple[int, float]]) -> None:
    ok = sorted(s for code, s in results if code == 200)
    if len(ok) >= 2:
        q = statistics.quantiles(ok, n=20)
        print(
            f"\n{label}: {len(ok)} ok, p50 {1000 * statistics.median(ok):.0f} ms, p95 {1000 * q[18]:.0f} ms"
        )


def test_200_requests_at_16_concurrent_without_errors(serve_base, serve_models, serve_engine):
    ws = Workspace(
        make_workspace(serve_models.parent, serve_base, {"max_concurrency": 8, "queue_size": 16})
    )
    app = create_app(ws, serve_engine)
    with LiveServer(app) as live:
        results = asyncio.run(_fire(live.url, total=200, concurrency=16))
        statuses = [code for code, _ in results]
        assert len(statuses) == 200
        assert [c for c in statuses if c >= 500] == []
        assert set(statuses) == {200}  # 16 in flight fit in 8 running + 16 queued
        _report("load 200 x 16", results)
        assert app.state.limiter.active == 0
        metrics = httpx.get(f"{live.url}/metrics").text
        assert (
            'storetune_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}'
            in metrics
        )


def test_over_capacity_burst_gets_429_not_timeouts(serve_base, tmp_path):
    """Capacity 2 running + 2 queued, engine held busy: a burst of 40 gets 36 fast 429s."""
    engine = GatedEngine.create(serve_base)
    ws = Workspace(
        make_workspace(tmp_path / "ws", serve_base, {"max_concurrency": 2, "queue_size": 2})
    )
    try:
        with LiveServer(create_app(ws, engine)) as live:

            async def burst() -> list[int]:
                async with httpx.AsyncClient(base_url=live.url, headers=AUTH, timeout=120) as c:
                    tasks = [
                        asyncio.create_task(c.post("/v1/chat/completions", json=_body(i % 4 * 4)))
                        for i in range(40)
                    ]
                    # Every refused request has its answer while the engine is still blocked:
                    # refusal never waits for capacity.
                    done = await _wait_for_refusals(tasks, 36)
                    assert engine.waiting.is_set() and not engine.gate.is_set()
                    engine.gate.set()
                    rest = await asyncio.gather(*tasks)
                    return [r.status_code for r in done] + [
                        r.status_code for r in rest if r not in done
                    ]

            statuses = asyncio.run(burst())
            assert sorted(statuses).count(429) == 36
            assert statuses.count(200) == 4
            assert not [s for s in statuses if s >= 500]
    finally:
        engine.close()


async def _wait_for_refusals(tasks, n: int):
    while True:
        finished = [t.result() for t in tasks if t.done()]
        if len(finished) >= n:
            return finished
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("concurrency", [48])
def test_unheld_burst_only_succeeds_or_is_refused(serve_base, serve_engine, tmp_path, concurrency):
    ws = Workspace(
        make_workspace(tmp_path / "ws", serve_base, {"max_concurrency": 2, "queue_size": 2})
    )
    with LiveServer(create_app(ws, serve_engine)) as live:
        results = asyncio.run(_fire(live.url, total=concurrency, concurrency=concurrency))
        statuses = [code for code, _ in results]
        assert set(statuses) <= {200, 429} and 200 in statuses
        print(
            f"\nburst {concurrency} at capacity 4: {statuses.count(429)} x 429, {statuses.count(200)} x 200"
        )
    wait_until(lambda: serve_engine.queue_depth == 0, "engine drained")
