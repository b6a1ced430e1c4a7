"""Zendesk: signed webhooks in, ticket updates out.

Webhooks: a Zendesk webhook subscribed to the ticket events `ticket.created` and
`ticket.comment_added` (payload `{"type": "zen:event-type:ticket.created", "detail":
{ticket}, "event": {...}}`), or one connected to a trigger whose JSON body carries
`{"ticket": {"id", "subject", "description", "requester": {"name", "email"}}}`.
Zendesk signs every request: base64(HMAC-SHA256(secret, timestamp + body)) in
X-Zendesk-Webhook-Signature, the timestamp in X-Zendesk-Webhook-Signature-Timestamp.

API: `PUT /api/v2/tickets/{id}.json` with a private comment (the note) or a public
one (the reply), basic auth `<email>/token:<api token>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from storetune.serve.integrations.base import (
    AgentReply,
    Draft,
    Event,
    Helpdesk,
    Ignored,
    Outgoing,
    PayloadError,
    Settings,
    TicketCreated,
    env,
    obj,
    ticket_id,
)
from storetune.store.helpdesk import NOTE, REPLY, HelpdeskLink

SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
EVENT_PREFIX = "zen:event-type:ticket."


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What Zendesk puts in X-Zendesk-Webhook-Signature for this body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Zendesk(Helpdesk):
    name = "zendesk"
    env_vars = (
        "STORETUNE_ZENDESK_SUBDOMAIN",
        "STORETUNE_ZENDESK_EMAIL",
        "STORETUNE_ZENDESK_API_TOKEN",
        "STORETUNE_ZENDESK_WEBHOOK_SECRET",
    )

    @classmethod
    def from_env(cls) -> Zendesk:
        subdomain = env("STORETUNE_ZENDESK_SUBDOMAIN")
        base = env("STORETUNE_ZENDESK_BASE_URL") or f"https://{subdomain}.zendesk.com"
        return cls(
            Settings(
                base_url=base,
                user=f"{env('STORETUNE_ZENDESK_EMAIL')}/token",  # API-token basic auth
                password=env("STORETUNE_ZENDESK_API_TOKEN"),
                webhook_secret=env("STORETUNE_ZENDESK_WEBHOOK_SECRET"),
            )
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SIGNATURE, "")
        timestamp = headers.get(TIMESTAMP, "")
        if not given or not timestamp:
            return False
        expected = signature(self.settings.webhook_secret, timestamp, body)
        return hmac.compare_digest(expected.encode(), given.encode())

    def parse(self, payload: dict[str, Any]) -> Event:
        kind = payload.get("type")
        if isinstance(kind, str):
            return _event(payload, kind)
        if isinstance(payload.get("ticket"), dict):
            return _trigger(payload)
        raise PayloadError(
            "not a Zendesk ticket event (no 'type') or trigger body (no 'ticket' object)"
        )

    def note(self, external_id: str, draft: Draft) -> list[Outgoing]:
        # additional_tags adds to the ticket's tags; "tags" would replace them all
        body = {
            "ticket": {
                "comment": {"body": draft.note_text(), "public": False},
                "additional_tags": draft.tags(),
            }
        }
        return [Outgoing(NOTE, "PUT", _ticket_path(external_id), body)]

    def reply(self, link: HelpdeskLink, text: str) -> Outgoing:
        body = {"ticket": {"comment": {"body": text, "public": True}}}
        return Outgoing(REPLY, "PUT", _ticket_path(link.external_id), body)


def _ticket_path(external_id: str) -> str:
    return f"/api/v2/tickets/{external_id}.json"


def _event(payload: dict[str, Any], kind: str) -> Event:
    """A webhook subscribed to Zendesk ticket events."""
    if not kind.startswith(EVENT_PREFIX):
        return Ignored(f"event {kind[:80]} is not a ticket event")
    detail = obj(payload.get("detail"))
    external_id = ticket_id(detail.get("id"), "detail.id")
    event = kind.removeprefix(EVENT_PREFIX)
    if event == "created":
        return _created(external_id, detail, {"id": detail.get("requester_id")})
    if event == "comment_added":
        return _comment(external_id, obj(obj(payload.get("event")).get("comment")))
    return Ignored(f"ticket event {event[:40]} is not handled")


def _trigger(payload: dict[str, Any]) -> Event:
    """A webhook connected to a trigger, with the JSON body the README gives."""
    ticket = obj(payload.get("ticket"))
    external_id = ticket_id(ticket.get("id"), "ticket.id")
    comment = obj(payload.get("comment"))
    if comment:
        return _comment(external_id, comment)
    return _created(external_id, ticket, obj(ticket.get("requester")))


def _created(external_id: str, ticket: dict, requester: dict) -> Event:
    message = str(ticket.get("description") or "").strip()
    if not message:
        raise PayloadError(f"ticket {external_id}: no description (the customer's message)")
    customer = {k: str(v) for k, v in requester.items() if k in ("name", "email") and v}
    meta = {"subject": str(ticket.get("subject") or "")}
    return TicketCreated(external_id, message, customer, _text(ticket.get("created_at")), meta)


def _comment(external_id: str, comment: dict) -> Event:
    """An agent's public comment is their reply; anything else is not ours to learn from."""
    author = obj(comment.get("author"))
    if not comment.get("is_public", comment.get("public")):
        return Ignored("private comment")
    if not (author.get("is_staff") or author.get("role") in ("agent", "admin")):
        return Ignored("comment by the customer")
    text = str(comment.get("body") or "").strip()
    if not text:
        return Ignored("empty comment")
    name = str(author.get("name") or author.get("id") or "agent")
    return AgentReply(external_id, text, name)


def _text(value: Any) -> str | None:
    return str(value) if value else None
