"""The worker that delivers what storetune owes the helpdesks.

It runs in a background thread of the server. Each round it first turns drafts that
agents approved or edited in storetune (for helpdesk tickets) into queued public
replies, then sends every due request in store.db's outbox. A request the helpdesk
does not accept (a 5xx, a 429, refused connection, a timeout, or any other refusal)
stays queued and is tried again after an exponentially growing delay; nothing is
ever dropped, and a restarted server carries on from the same rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from storetune.serve.integrations.base import Helpdesk
from storetune.store.helpdesk import HelpdeskStore, OutboxItem

log = logging.getLogger("storetune.integrations")


@dataclass
class Backoff:
    """Delay before the n-th retry: base * factor**(n-1), at most cap (seconds).
    Injectable so tests retry in milliseconds."""

    base_s: float = 5.0
    factor: float = 2.0
    cap_s: float = 900.0

    def delay(self, attempts: int) -> float:
        return min(self.cap_s, self.base_s * self.factor ** max(0, attempts - 1))


class OutboxWorker:
    """Drains the outbox in a daemon thread; `wake()` after queueing makes it go now."""

    def __init__(
        self,
        store: HelpdeskStore,
        helpdesks: dict[str, Helpdesk],
        backoff: Backoff | None = None,
        poll_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 15.0,
    ) -> None:
        self.store = store
        self.helpdesks = helpdesks
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self.clock = clock
        self.client = httpx.Client(timeout=timeout_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="storetune-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.client.close()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bug or a locked database must not end delivery for good
                log.exception("helpdesk outbox round failed; trying again")
            self._wake.wait(self._sleep())
            self._wake.clear()

    def _sleep(self) -> float:
        due = self.store.next_due(list(self.helpdesks))
        if due is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, due - self.clock()))

    # ---- one round ----

    def run_once(self) -> int:
        """Queue owed replies, then send what is due; how many requests succeeded."""
        self.queue_replies()
        down: set[str] = set()  # helpdesks that failed this round: wait for their backoff
        sent = 0
        for item in self.store.due(self.clock(), list(self.helpdesks)):
            helpdesk = self.helpdesks[item.helpdesk]
            if item.helpdesk in down:
                continue  # its first request just failed: the rest wait for the next round
            error = self._send(helpdesk, item)
            if error is None:
                self.store.sent(item)
                sent += 1
                continue
            down.add(item.helpdesk)
            delay = self.backoff.delay(item.attempts + 1)
            self.store.failed(item, error, self.clock() + delay)
            log.warning(
                "%s %s for ticket %s failed (%s); retry %d in %.1f s",
                item.helpdesk, item.purpose, item.external_id, error, item.attempts + 1, delay,
            )  # fmt: skip
        return sent

    def queue_replies(self) -> int:
        """Public replies for helpdesk tickets decided in storetune since the last round."""
        queued = 0
        for owed in self.store.owed_replies():
            helpdesk = self.helpdesks.get(owed.link.helpdesk)
            if helpdesk is None or not owed.text.strip():
                continue
            out = helpdesk.reply(owed.link, owed.text)
            queued += self.store.queue_reply(owed.link, out.method, out.path, out.body)
        return queued

    def _send(self, helpdesk: Helpdesk, item: OutboxItem) -> str | None:
        """None when the helpdesk accepted the request, else why not."""
        try:
            r = self.client.request(
                item.method, helpdesk.url(item.path), json=item.body, auth=helpdesk.auth()
            )
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"
        if r.is_success:
            return None
        return f"HTTP {r.status_code}: {r.text[:200]}"
