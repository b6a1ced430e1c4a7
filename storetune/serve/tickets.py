"""POST /v1/tickets: route a customer message to a grounded draft and a decision.

The helpdesk sends the customer's message (and the thread so far); the answer is
the reply that may be sent, how confident the router is, whether a person must
take over and why, the catalog facts used, and the ticket's id in the review
queue. GET /v1/tickets/{id} tells the helpdesk what the agent decided.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from storetune.errors import StoretuneError
from storetune.serve.engine import Engine, UnknownModelError
from storetune.serve.openai import engine_error, usage
from storetune.serve.routing import TicketInput, TicketRouter, load_thresholds
from storetune.serve.security import APIError, require_api_key, timeout_error
from storetune.workspace import Workspace

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


class ThreadTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["customer", "agent", "user", "assistant"]
    content: str


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, description="The customer's newest message.")
    thread: list[ThreadTurn] = Field(
        default_factory=list, description="Earlier turns, oldest first."
    )
    customer: dict[str, Any] = Field(
        default_factory=dict,
        description="What the helpdesk knows (email, order numbers); shown to agents and "
        "used as evidence for the customer's own details, never put in the prompt.",
    )
    model: str | None = Field(None, description="Adapter (default: the server's default).")
    max_tokens: int | None = Field(None, ge=1)


# ---- the router object, loaded once per app ----------------------------------------------


_LOCK = threading.Lock()


def ticket_router(app: FastAPI) -> TicketRouter:
    """The app's TicketRouter, loaded on first use (the embedder takes seconds)."""
    state = app.state
    with _LOCK:
        existing = getattr(state, "ticket_router", None)
        if existing is None:
            existing = TicketRouter.load(state.ws, state.cfg)
            state.ticket_router = existing
        return existing


def start_warm_up(app: FastAPI) -> None:
    """Load the router in the background when the workspace has an index, so the first
    ticket does not wait for the embedder; a workspace without one loads on demand."""
    ws: Workspace = app.state.ws
    if not ws.db_path.exists():
        return

    def warm() -> None:
        try:
            ticket_router(app)
        except StoretuneError:
            pass  # reported to the first request instead

    threading.Thread(target=warm, name="storetune-tickets-warm-up", daemon=True).start()


# ---- routes ---------------------------------------------------------------------------------


def _max_tokens(body: TicketRequest, request: Request) -> int:
    cfg = request.app.state.serve_cfg
    wanted = body.max_tokens or min(cfg.default_max_tokens, cfg.max_tokens)
    if wanted > cfg.max_tokens:
        raise APIError(
            400,
            f"max_tokens {wanted} is above this server's limit of {cfg.max_tokens} "
            "(serve.max_tokens in store.yaml)",
            param="max_tokens",
            code="max_tokens_exceeded",
        )
    return wanted


@router.post("/tickets")
async def create_ticket(body: TicketRequest, request: Request) -> JSONResponse:
    state = request.app.state
    engine: Engine = state.engine
    max_tokens = _max_tokens(body, request)
    try:
        entry = engine.resolve(body.model)
    except UnknownModelError as e:
        raise engine_error(e) from None
    timeout = state.serve_cfg.request_timeout_s
    async with state.limiter.slot():
        try:
            result = await asyncio.wait_for(
                _route(request.app, engine, entry, body, max_tokens), timeout
            )
        except TimeoutError:
            raise timeout_error(timeout) from None
    return JSONResponse(result)


async def _route(app: FastAPI, engine: Engine, entry, body: TicketRequest, max_tokens: int) -> dict:
    try:
        router_ = await asyncio.to_thread(ticket_router, app)
    except StoretuneError as e:
        raise APIError(
            503, f"ticket routing is unavailable: {e}", type="server_error", code="not_ready"
        ) from None
    ticket = TicketInput(body.message, [t.model_dump() for t in body.thread], body.customer)
    try:
        prepared = await asyncio.to_thread(router_.prepare, ticket)
    except StoretuneError as e:
        raise APIError(400, str(e), param="thread") from None
    try:
        gen = await engine.agenerate(
            prepared.messages, entry.id, max_tokens=max_tokens, temperature=0.0, logprobs=True
        )
    except APIError:
        raise
    except Exception as e:
        raise engine_error(e) from None
    name = entry.id.partition("@")[0]
    thresholds = load_thresholds(app.state.ws, name, entry.version)
    routed = await asyncio.to_thread(
        router_.finish,
        prepared,
        gen.text,
        gen.token_logprobs,
        gen.finish_reason,
        gen.model,
        thresholds,
        app.state.serve_cfg.review_mode,
    )
    return routed.body() | {"usage": usage(gen)}


@router.get("/tickets/{ticket_id}")
async def get_ticket(ticket_id: int, request: Request) -> dict:
    """Where a routed ticket stands: waiting, sent, approved, edited or rejected."""
    try:
        router_ = await asyncio.to_thread(ticket_router, request.app)
    except StoretuneError as e:
        raise APIError(503, f"ticket routing is unavailable: {e}", type="server_error") from None
    ticket = await asyncio.to_thread(router_.queue.get, ticket_id)
    if ticket is None:
        raise APIError(404, f"ticket {ticket_id} does not exist", type="not_found_error")
    return ticket.public()


# ---- benchmark hook -------------------------------------------------------------------------


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
        thresholds = load_thresholds(ws or bench_ws, entry.id.partition("@")[0], entry.version)
        texts = messages or [BENCH_MESSAGES[i % len(BENCH_MESSAGES)] for i in range(n)]
        times, tokens, prepare_s = [], [], []
        for text in texts:
            start = time.perf_counter()
            p = router_.prepare(TicketInput(text))
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


def _bench_store(ws: Workspace | None, tmp: Path):
    """A private indexed store for the benchmark: a copy of the workspace's, or the
    sample store (160 products, 300 tickets) when the workspace has none."""
    from storetune.retrieval.index import index_exists

    root = tmp / "store"
    if ws is not None and ws.db_path.exists():
        from storetune.store import db

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
    from storetune.demo.store_gen import generate_demo_store
    from storetune.ingest import ingest_workspace
    from storetune.retrieval.index import build_index

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
