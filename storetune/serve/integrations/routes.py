"""POST /v1/integrations/{zendesk,gorgias}: the helpdesks' webhooks.

No API key here: a helpdesk proves itself with its own secret (Zendesk's signature,
Gorgias's shared header), checked on the raw body before anything is parsed. A new
ticket is claimed by its helpdesk id, routed like POST /v1/tickets, and its draft
queued as an internal note; a retried webhook answers `duplicate` and routes
nothing. An agent's public reply sent from the helpdesk decides the waiting draft
as an edit (or an approval, when they sent it unchanged), which is how the text an
agent actually sent reaches the next version's training data.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import JSONResponse

from storetune.serve.integrations.base import (
    AgentReply,
    Draft,
    Helpdesk,
    PayloadError,
    TicketCreated,
)
from storetune.serve.routing import TicketInput
from storetune.serve.security import APIError
from storetune.serve.tickets import route_ticket
from storetune.store.helpdesk import HelpdeskStore
from storetune.store.review import WAITING, ReviewError, ReviewQueue

log = logging.getLogger("storetune.integrations")
router = APIRouter(prefix="/v1/integrations", include_in_schema=False)


@router.post("/{name}")
async def webhook(name: str, request: Request) -> JSONResponse:
    helpdesk = _helpdesk(request.app, name)
    body = await request.body()
    if not helpdesk.verify(request.headers, body):
        raise APIError(401, f"the {name} webhook's signature or secret is wrong",
                       type="authentication_error", code="bad_signature")  # fmt: skip
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise PayloadError("the body is not a JSON object")
        event = helpdesk.parse(payload)
    except (ValueError, PayloadError) as e:
        raise APIError(400, f"{name} webhook: {e}", code="bad_payload") from None
    if isinstance(event, TicketCreated):
        return JSONResponse(await _created(request.app, helpdesk, event))
    if isinstance(event, AgentReply):
        return JSONResponse(await asyncio.to_thread(_agent_reply, request.app, helpdesk, event))
    return JSONResponse({"status": "ignored", "reason": event.reason})


def _helpdesk(app: FastAPI, name: str) -> Helpdesk:
    from storetune.serve.integrations import HELPDESKS

    kind = HELPDESKS.get(name)
    if kind is None:
        raise APIError(404, f"no helpdesk integration named {name!r}", type="not_found_error")
    helpdesk = app.state.helpdesks.get(name)
    if helpdesk is None:
        missing = ", ".join(kind.missing())
        raise APIError(503, f"the {name} integration is not configured: set {missing}",
                       type="server_error", code="not_configured")  # fmt: skip
    return helpdesk


def helpdesk_store(app: FastAPI) -> HelpdeskStore:
    store = getattr(app.state, "helpdesk_store", None)
    if store is None:
        store = HelpdeskStore(app.state.ws.db_path)
        app.state.helpdesk_store = store
    return store


async def _created(app: FastAPI, helpdesk: Helpdesk, event: TicketCreated) -> dict:
    store = helpdesk_store(app)
    key = (helpdesk.name, event.external_id)
    meta = {**event.meta, "customer": event.customer}
    if not await asyncio.to_thread(store.claim, *key, event.created_at, meta):
        link = store.get(*key)
        return {"status": "duplicate", "ticket_id": link.review_ticket_id if link else None}
    try:
        routed = await route_ticket(app, TicketInput(event.message, [], event.customer))
    except BaseException:
        store.release(*key)  # the helpdesk's retry routes it again
        raise
    draft = Draft.from_routed(routed)
    await asyncio.to_thread(_queue_note, store, helpdesk, event.external_id, draft)
    worker = getattr(app.state, "helpdesk_worker", None)
    if worker is not None:
        worker.wake()
    log.info("%s ticket %s routed as ticket %s (%s%s)", helpdesk.name, event.external_id,
             draft.ticket_id, draft.confidence, ", escalated" if draft.escalate else "")  # fmt: skip
    return {
        "status": "routed",
        "ticket_id": draft.ticket_id,
        "confidence": draft.confidence,
        "escalate": draft.escalate,
    }


def _queue_note(store: HelpdeskStore, helpdesk: Helpdesk, external_id: str, draft: Draft) -> None:
    store.link(helpdesk.name, external_id, draft.ticket_id)
    for out in helpdesk.note(external_id, draft):
        store.enqueue(helpdesk.name, external_id, out.purpose, out.method, out.path, out.body)


def review_queue(app: FastAPI) -> ReviewQueue:
    """The app's review queue (the same object the review pages use)."""
    queue = getattr(app.state, "review_queue", None)
    if queue is None:
        queue = ReviewQueue(app.state.ws.db_path)
        app.state.review_queue = queue
    return queue


def _agent_reply(app: FastAPI, helpdesk: Helpdesk, event: AgentReply) -> dict:
    store = helpdesk_store(app)
    link = store.get(helpdesk.name, event.external_id)
    if link is None or link.review_ticket_id is None:
        return {"status": "ignored", "reason": "storetune did not route this ticket"}
    queue = review_queue(app)
    ticket = queue.get(link.review_ticket_id)
    if ticket is None or ticket.status != WAITING:
        return {"status": "ignored", "reason": "the draft was already decided"}
    # first claim the reply for the helpdesk, so the outbox never posts a second one
    if not store.answered_in_helpdesk(helpdesk.name, event.external_id):
        return {"status": "ignored", "reason": "storetune already owes or sent a reply"}
    actor = f"{helpdesk.name}:{event.author}"
    try:
        decided = queue.edit(ticket.id, actor, event.text)
    except ReviewError as e:  # decided in storetune a moment ago
        return {"status": "ignored", "reason": str(e)}
    return {"status": decided.status, "ticket_id": decided.id}
