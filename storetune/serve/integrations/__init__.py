"""Helpdesk integrations: tickets arrive by webhook, drafts go back as internal notes,
approved replies as public ones (one module per helpdesk on `base.Helpdesk`).

`mount(app)` adds the webhook routes and reads which helpdesks the environment
configures; `start(app)` / `stop(app)` run the outbox worker for the server's life.
Tests put a fast `Backoff` in `app.state.helpdesk_backoff` before starting.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from storetune.serve.integrations.base import Helpdesk
from storetune.serve.integrations.gorgias import Gorgias
from storetune.serve.integrations.outbox import Backoff, OutboxWorker
from storetune.serve.integrations.routes import helpdesk_store
from storetune.serve.integrations.routes import router as webhook_router
from storetune.serve.integrations.zendesk import Zendesk

log = logging.getLogger("storetune.integrations")
HELPDESKS: dict[str, type[Helpdesk]] = {"zendesk": Zendesk, "gorgias": Gorgias}


def configured() -> dict[str, Helpdesk]:
    """The helpdesks whose environment variables are all set."""
    return {name: kind.from_env() for name, kind in HELPDESKS.items() if not kind.missing()}


def mount(app: FastAPI) -> None:
    app.include_router(webhook_router)
    app.state.helpdesks = configured()
    app.state.helpdesk_backoff = Backoff()
    app.state.helpdesk_worker = None
    app.state.on_review_decision = lambda ticket: review_decided(app)


def start(app: FastAPI) -> OutboxWorker | None:
    """Start delivering the outbox (also what an earlier run left) when a helpdesk is set."""
    helpdesks = app.state.helpdesks
    if not helpdesks:
        return None
    worker = OutboxWorker(helpdesk_store(app), helpdesks, app.state.helpdesk_backoff)
    app.state.helpdesk_worker = worker
    worker.start()
    log.info("helpdesk integrations: %s", ", ".join(sorted(helpdesks)))
    return worker


def stop(app: FastAPI) -> None:
    worker = getattr(app.state, "helpdesk_worker", None)
    if worker is not None:
        worker.stop()
        app.state.helpdesk_worker = None
    store = getattr(app.state, "helpdesk_store", None)
    if store is not None:
        store.close()
        app.state.helpdesk_store = None


def review_decided(app: FastAPI) -> None:
    """An agent decided a draft on the review page: post its reply now, not at the next poll."""
    worker = getattr(app.state, "helpdesk_worker", None)
    if worker is not None:
        worker.wake()
