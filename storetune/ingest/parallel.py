"""Cleaning tickets on every core: the per-ticket work of a helpdesk read, in forked workers.

Rebuilding a ticket (signatures, HTML, PII scrubbing) depends on that ticket alone, and
was ~70% of an ingest of 100,000 tickets. Workers are forked so they inherit what was
gathered without it being pickled; each works on a slice of the tickets and sends back
its tickets and what it counted, which the parent merges in slice order, so the result
is the same as one process's, ticket for ticket and quarantine row for row.

Only where `fork` exists (Linux; not macOS' or Windows' default), only for reads big
enough to repay the start-up, and only when asked: `ingest_workspace` asks for the
machine's cores (`STORETUNE_INGEST_WORKERS` overrides; 1 turns it off). A reader called
from a server's threads keeps the default of one process: forking a threaded process
is not safe.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any

# below this many tickets one process is faster than starting workers
MIN_PARALLEL = 2000
CHUNK = 500
ENV = "STORETUNE_INGEST_WORKERS"

_WORK: Callable[[int, int], Any] | None = None  # set in the parent, inherited by forks


def default_workers() -> int:
    """The cores this process may use, or $STORETUNE_INGEST_WORKERS."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise ValueError(f"{ENV}={raw!r}: expected a whole number of workers") from None
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _run_slice(bounds: tuple[int, int]) -> Any:
    assert _WORK is not None, "worker started without work"
    return _WORK(*bounds)


def map_slices(
    work: Callable[[int, int], Any], n: int, workers: int, chunk: int = CHUNK
) -> Iterator[tuple[int, Any]]:
    """(slice size, work(lo, hi)) for consecutive slices of range(n), in order; in
    forked workers when `workers` > 1, n >= MIN_PARALLEL and the platform forks."""
    bounds = [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    forks = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or n < MIN_PARALLEL or not forks:
        for lo, hi in bounds:
            yield hi - lo, work(lo, hi)
        return
    global _WORK
    _WORK = work
    # objects gathered before the fork stay out of the children's collections, so
    # their pages are shared rather than copied when a collection walks them
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(bounds))) as pool:
            for (lo, hi), result in zip(bounds, pool.imap(_run_slice, bounds), strict=True):
                yield hi - lo, result
    finally:
        _WORK = None
        gc.unfreeze()
