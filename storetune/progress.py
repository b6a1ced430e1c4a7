"""Progress of long jobs when the output is not a terminal (CI logs, nohup, pipes).

rich draws nothing there until the job ends, so a 40-minute training run would look
hung; instead one plain line is printed at most once a minute, and at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def output_is_terminal() -> bool:
    from rich.console import Console

    return Console().is_terminal


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class LineProgress:
    """`label done/total [fields] elapsed H:MM:SS eta H:MM:SS`, at most every `every_s`."""

    def __init__(
        self,
        label: str,
        total: int,
        done: int = 0,
        every_s: float = 60.0,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.done, self.every_s = label, total, done, every_s
        self.write = write or (lambda line: print(line, flush=True))
        self.clock = clock
        self.started = clock()
        self.first = done
        self.last = self.started

    def advance(self, n: int = 1, **fields: str) -> None:
        self.done += n
        now = self.clock()
        if now - self.last < self.every_s and self.done < self.total:
            return
        self.last = now
        elapsed = now - self.started
        per_item = elapsed / max(self.done - self.first, 1)
        eta = per_item * max(self.total - self.done, 0)
        extra = "".join(f" {k} {v}" for k, v in fields.items())
        self.write(
            f"{self.label} {self.done}/{self.total}{extra} "
            f"elapsed {_clock(elapsed)} eta {_clock(eta)}"
        )
