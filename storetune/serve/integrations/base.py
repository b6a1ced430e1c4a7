"""What every helpdesk integration shares: settings from the environment, the events a
webhook can carry, the outgoing requests, and the text of the internal note.

A helpdesk module (zendesk.py, gorgias.py) says how its sender is verified, how its
payloads read, and which API calls post a note, tags and a public reply; the
webhook routes and the outbox worker only talk to this base.
"""

from __future__ import annotations

import html
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from storetune.errors import StoretuneError
from storetune.store.helpdesk import HelpdeskLink


class PayloadError(StoretuneError):
    """A webhook body that is not the documented shape (the answer is 400)."""


# ---- what a webhook can carry -------------------------------------------------------------


@dataclass
class TicketCreated:
    """A new ticket: route it and post the draft back."""

    external_id: str
    message: str
    customer: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # what a later reply needs


@dataclass
class AgentReply:
    """A public reply an agent sent from the helpdesk itself."""

    external_id: str
    text: str
    author: str


@dataclass
class Ignored:
    """Anything else (a customer's follow-up, an internal note, another event)."""

    reason: str


Event = TicketCreated | AgentReply | Ignored


@dataclass
class Outgoing:
    """One API call owed to the helpdesk; the outbox stores it until it succeeds."""

    purpose: str  # note | tags | reply (storetune.store.helpdesk)
    method: str
    path: str  # below the helpdesk's base URL
    body: dict[str, Any]


@dataclass
class Draft:
    """What the router decided, as the internal note shows it."""

    ticket_id: int  # in storetune's review queue
    response: str
    confidence: str
    escalate: bool
    reasons: list[str]
    sources: list[dict] = field(default_factory=list)

    @classmethod
    def from_routed(cls, body: dict[str, Any]) -> Draft:
        return cls(
            body["ticket_id"],
            body["response"],
            body["confidence"],
            bool(body["escalate"]),
            list(body.get("reasons") or []),
            list(body.get("sources") or []),
        )

    def tags(self) -> list[str]:
        """Tags that let a helpdesk view filter storetune's tickets and hand-overs."""
        tags = ["storetune", f"storetune_{self.confidence}"]
        return [*tags, "storetune_escalate"] if self.escalate else tags

    def note_text(self) -> str:
        head = "storetune draft"
        if self.escalate:
            head += " (HAND OVER: a person must take this ticket)"
        lines = [head, f"Confidence: {self.confidence}", "", self.response, ""]
        if self.reasons:
            lines += ["Why:", *[f"- {r}" for r in self.reasons]]
        titles = [str(s.get("title")) for s in self.sources if s.get("title")]
        if titles:
            lines.append("Sources: " + "; ".join(titles))
        lines.append(f"Review queue: ticket {self.ticket_id} (approve or edit there to send)")
        return "\n".join(lines).strip()


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML paragraphs (helpdesks render the HTML body)."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


# ---- settings -----------------------------------------------------------------------------


def env(name: str) -> str:
    return os.environ.get(name, "").strip()


@dataclass
class Settings:
    """Where the helpdesk's API is and who storetune is there; secrets stay in the
    environment, never in store.yaml."""

    base_url: str
    user: str  # basic-auth user (Zendesk: '<email>/token')
    password: str  # the API token or key
    webhook_secret: str  # what proves a webhook came from the helpdesk
    extra: dict[str, str] = field(default_factory=dict)


class Helpdesk(ABC):
    """One helpdesk: verify its webhooks, read its payloads, build its API calls."""

    name: str  # path segment and store.db key: zendesk | gorgias
    env_vars: tuple[str, ...]  # what must be set for the integration to run

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def missing(cls) -> list[str]:
        return [v for v in cls.env_vars if not env(v)]

    @classmethod
    @abstractmethod
    def from_env(cls) -> Helpdesk:
        """Settings from the environment (call only when `missing()` is empty)."""

    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.settings.user, self.settings.password)

    def url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path

    @abstractmethod
    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True when the request provably came from the helpdesk (constant-time)."""

    @abstractmethod
    def parse(self, payload: dict[str, Any]) -> Event:
        """The event a verified webhook body carries; PayloadError when unreadable."""

    @abstractmethod
    def note(self, external_id: str, draft: Draft) -> list[Outgoing]:
        """The calls that put the draft on the ticket as an internal note, tagged."""

    @abstractmethod
    def reply(self, link: HelpdeskLink, text: str) -> Outgoing:
        """The call that sends the approved reply to the customer."""


def ticket_id(value: Any, where: str) -> str:
    """A helpdesk ticket id as text ("35436"); ids arrive as numbers or strings."""
    if isinstance(value, bool) or value is None:
        raise PayloadError(f"{where}: no ticket id")
    text = str(value).strip()
    if not text.isdigit() or len(text) > 19:
        raise PayloadError(f"{where}: ticket id {text[:40]!r} is not a number")
    return text


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
