"""POST /v1/tickets: route a customer message to a grounded draft and a decision.

The helpdesk sends the customer's message (and the thread so far); the answer is
the reply that may be sent, how confident the router is, whether a person must
take over and why, the catalog facts used, and the ticket's id in the review
queue. GET /v1/tickets/{id} tells the helpdesk what the agent decided.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from storetune.errors import StoretuneError
from storetune.serve.engine import Engine, Generation, UnknownModelError
from storetune.serve.openai import engine_error, usage
from storetune.serve.routing import TicketInput, TicketRouter, load_thresholds, router_for
from storetune.serve.rules import fill
from storetune.serve.security import APIError, require_api_key, timeout_error
from storetune.store.review import storable_id
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


def _max_tokens(wanted: int | None, app: FastAPI) -> int:
    cfg = app.state.serve_cfg
    wanted = wanted or min(cfg.default_max_tokens, cfg.max_tokens)
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
    ticket = TicketInput(body.message, [t.model_dump() for t in body.thread], body.customer)
    return JSONResponse(await route_ticket(request.app, ticket, body.model, body.max_tokens))


async def route_ticket(
    app: FastAPI, ticket: TicketInput, model: str | None = None, max_tokens: int | None = None
) -> dict:
    """Route one ticket into the review queue under the server's admission limit and
    request timeout; what POST /v1/tickets answers (the helpdesk webhooks call it too)."""
    state = app.state
    engine: Engine = state.engine
    max_tokens = _max_tokens(max_tokens, app)
    try:
        entry = engine.resolve(model)
    except UnknownModelError as e:
        raise engine_error(e) from None
    timeout = state.serve_cfg.request_timeout_s
    async with state.limiter.slot():
        try:
            return await asyncio.wait_for(_route(app, engine, entry, ticket, max_tokens), timeout)
        except TimeoutError:
            raise timeout_error(timeout) from None


async def _route(app: FastAPI, engine: Engine, entry, ticket: TicketInput, max_tokens: int) -> dict:
    try:
        router_ = await asyncio.to_thread(ticket_router, app)
    except StoretuneError as e:
        raise APIError(
            503, f"ticket routing is unavailable: {e}", type="server_error", code="not_ready"
        ) from None
    reader = router_for(entry.path if entry.adapter_key else None)
    try:
        prepared = await asyncio.to_thread(router_.prepare, ticket, reader)
    except StoretuneError as e:
        raise APIError(400, str(e), param="thread") from None
    if prepared.template is not None:
        # the store fixed this kind's wording: nothing to generate
        gen = Generation.fixed(fill(prepared.template, router_.cfg), entry.id)
    else:
        try:
            gen = await engine.agenerate(
                prepared.messages,
                entry.id,
                max_tokens=max_tokens,
                temperature=0.0,
                logprobs=True,
                stop_repetition=True,
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
    if not storable_id(ticket_id):  # above SQLite's integers: no such ticket can exist
        raise APIError(404, f"ticket {ticket_id} does not exist", type="not_found_error")
    try:
        router_ = await asyncio.to_thread(ticket_router, request.app)
    except StoretuneError as e:
        raise APIError(503, f"ticket routing is unavailable: {e}", type="server_error") from None
    ticket = await asyncio.to_thread(router_.queue.get, ticket_id)
    if ticket is None:
        raise APIError(404, f"ticket {ticket_id} does not exist", type="not_found_error")
    return ticket.public()
