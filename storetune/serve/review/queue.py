"""Moved to storetune.store.review; this re-export goes once every caller imports it there."""

from storetune.store.review import (  # noqa: F401
    APPROVED,
    DECIDED,
    EDITED,
    REJECTED,
    SENT,
    WAITING,
    AuditRow,
    NewTicket,
    QueuedTicket,
    ReviewError,
    ReviewQueue,
    conversation,
    reviewed_tickets,
    thread_turns,
)
