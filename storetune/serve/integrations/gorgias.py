"""Gorgias: HTTP-integration webhooks in, ticket messages out.

Webhooks: a Gorgias HTTP integration (triggers "ticket created" and "ticket message
created", method POST, JSON) whose headers carry the shared secret in
X-Storetune-Secret (Gorgias does not sign its requests). Its body is the form the
README gives, rendered by Gorgias's template variables; nested objects in the shape of
Gorgias's Ticket and Message (`{"ticket": {"id", "customer", "messages"}, "message":
{...}}`) read too.

API: `POST /api/tickets/{id}/messages` (channel `internal-note` for the note, the
ticket's channel for the reply) and `POST /api/tickets/{id}/tags`, basic auth
`<user email>:<API key>`.
"""

from __future__ import annotations

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
    text_to_html,
    ticket_id,
)
from storetune.store.helpdesk import NOTE, REPLY, TAGS, HelpdeskLink

SECRET_HEADER = "X-Storetune-Secret"
NOTE_CHANNEL = "internal-note"
CREATED = ("ticket_created", "ticket-created")


class Gorgias(Helpdesk):
    name = "gorgias"
    env_vars = (
        "STORETUNE_GORGIAS_DOMAIN",
        "STORETUNE_GORGIAS_USER",
        "STORETUNE_GORGIAS_API_KEY",
        "STORETUNE_GORGIAS_SECRET",
    )

    @classmethod
    def from_env(cls) -> Gorgias:
        domain = env("STORETUNE_GORGIAS_DOMAIN")
        user = env("STORETUNE_GORGIAS_USER")
        return cls(
            Settings(
                base_url=env("STORETUNE_GORGIAS_BASE_URL") or f"https://{domain}.gorgias.com",
                user=user,
                password=env("STORETUNE_GORGIAS_API_KEY"),
                webhook_secret=env("STORETUNE_GORGIAS_SECRET"),
                # the address replies go out from (the support mailbox), else the API user
                extra={"from": env("STORETUNE_GORGIAS_FROM") or user},
            )
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = headers.get(SECRET_HEADER, "")
        expected = self.settings.webhook_secret
        return bool(given) and hmac.compare_digest(expected.encode(), given.encode())

    def parse(self, payload: dict[str, Any]) -> Event:
        ticket = obj(payload.get("ticket"))
        external_id = ticket_id(ticket.get("id", payload.get("ticket_id")), "ticket id")
        message = _message(payload, ticket)
        event = str(payload.get("event") or "")
        if _truthy(message.get("from_agent")):
            return _agent_message(external_id, message)
        if event and event not in CREATED:
            return Ignored(f"event {event[:40]} from the customer is not a new ticket")
        return _created(external_id, payload, ticket, message)

    def note(self, external_id: str, draft: Draft) -> list[Outgoing]:
        text = draft.note_text()
        message = {
            "channel": NOTE_CHANNEL,
            "via": "api",
            "from_agent": True,
            "sender": {"email": self.settings.user},
            "body_text": text,
            "body_html": text_to_html(text),
        }
        path = f"/api/tickets/{external_id}"
        return [
            Outgoing(NOTE, "POST", f"{path}/messages", message),
            Outgoing(TAGS, "POST", f"{path}/tags", {"names": draft.tags()}),
        ]

    def reply(self, link: HelpdeskLink, text: str) -> Outgoing:
        channel = str(link.meta.get("channel") or "email")
        customer = str(link.meta.get("customer_email") or "")
        sender = self.settings.user
        message: dict[str, Any] = {
            "channel": channel,
            "via": "api",
            "from_agent": True,
            "sender": {"email": sender},
            "body_text": text,
            "body_html": text_to_html(text),
        }
        if customer:
            message["receiver"] = {"email": customer}
            message["source"] = {
                "type": channel,
                "from": {"address": self.settings.extra.get("from") or sender},
                "to": [{"address": customer}],
            }
        return Outgoing(REPLY, "POST", f"/api/tickets/{link.external_id}/messages", message)


def _message(payload: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
    """The message the webhook is about: `message` (object or the form's fields), else
    the ticket's first message."""
    given = payload.get("message")
    if isinstance(given, dict):
        return given
    if isinstance(given, str):
        return {
            "body_text": given,
            "from_agent": payload.get("from_agent"),
            "channel": payload.get("channel"),
            "sender": {"email": payload.get("sender_email"), "name": payload.get("sender_name")},
        }
    messages = [m for m in ticket.get("messages") or [] if isinstance(m, dict)]
    return messages[0] if messages else {}


def _created(external_id: str, payload: dict, ticket: dict, message: dict) -> Event:
    text = str(message.get("body_text") or message.get("stripped_text") or "").strip()
    if not text:
        raise PayloadError(f"ticket {external_id}: no message text (message.body_text)")
    customer_obj = obj(ticket.get("customer"))
    customer = {
        "email": customer_obj.get("email") or payload.get("customer_email"),
        "name": customer_obj.get("name") or payload.get("customer_name"),
    }
    customer = {k: str(v) for k, v in customer.items() if v}
    channel = ticket.get("channel") or message.get("channel") or payload.get("channel")
    meta = {
        "subject": str(ticket.get("subject") or payload.get("subject") or ""),
        "channel": str(channel or "email"),
        "customer_email": customer.get("email", ""),
    }
    created = ticket.get("created_datetime") or payload.get("created_datetime")
    return TicketCreated(external_id, text, customer, str(created) if created else None, meta)


def _agent_message(external_id: str, message: dict) -> Event:
    if message.get("channel") == NOTE_CHANNEL or message.get("public") is False:
        return Ignored("internal note")
    text = str(message.get("body_text") or message.get("stripped_text") or "").strip()
    if not text:
        return Ignored("empty message")
    sender = obj(message.get("sender"))
    return AgentReply(external_id, text, str(sender.get("email") or sender.get("name") or "agent"))


def _truthy(value: Any) -> bool:
    # template variables render booleans as text ("True", "true")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
