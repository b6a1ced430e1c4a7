"""Progress of long jobs: one helper for every stage.

On a terminal: a rich bar with the rate and the ETA. When the output is not a
terminal (CI logs, nohup, pipes) rich draws nothing until the job ends, so a
40-minute training run would look hung; instead one plain line is printed at most
once a minute, and at the end, with the ETA. Disabled: nothing at all.

    with progress("embed", len(texts), enabled=show) as bar:
        for batch in batches:
            ...
            bar.advance(len(batch), loss="0.123")  # fields are optional

Several bars under one display: `progress_group(...)` yields `track(label, total)`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def output_is_terminal(stderr: bool = False) -> bool:
    from rich.console import Console

    return Console(stderr=stderr).is_terminal


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

    def advance(self, n: int = 1, **fields: object) -> None:
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


class Bar:
    """One job's progress; `advance(n, **fields)` shows each field as `name value`."""

    def advance(self, n: int = 1, **fields: object) -> None:
        pass


class _LineBar(Bar):
    def __init__(self, lines: LineProgress) -> None:
        self.lines = lines

    def advance(self, n: int = 1, **fields: object) -> None:
        self.lines.advance(n, **fields)


class _RichBar(Bar):
    def __init__(self, display, task) -> None:
        self.display, self.task = display, task

    def advance(self, n: int = 1, **fields: object) -> None:
        if fields:
            extra = " ".join(f"{k} {v}" for k, v in fields.items())
            self.display.update(self.task, advance=n, extra=extra)
        else:
            self.display.update(self.task, advance=n)


Track = Callable[..., Bar]  # track(label, total, done=0) -> Bar


@contextmanager
def progress_group(
    enabled: bool = True, *, stderr: bool = False, transient: bool = False, rate: bool = True
) -> Iterator[Track]:
    """Yields `track(label, total, done=0)`, which starts one more bar in the display.

    `stderr` keeps stdout clean for a command's own output; `transient` clears the
    bars when done; `rate` shows items per second (off where a field says it better).
    """
    if not enabled:
        yield lambda label, total, done=0: Bar()
        return
    if not output_is_terminal(stderr):
        write = _writer(stderr)
        yield lambda label, total, done=0: _LineBar(LineProgress(label, total, done, write=write))
        return
    with _rich_display(stderr, transient, rate) as display:

        def track(label: str, total: int, done: int = 0) -> Bar:
            return _RichBar(display, display.add_task(label, total=total, completed=done, extra=""))

        yield track


@contextmanager
def progress(
    label: str,
    total: int,
    enabled: bool = True,
    *,
    done: int = 0,
    stderr: bool = False,
    transient: bool = False,
    rate: bool = True,
) -> Iterator[Bar]:
    """One bar for one job (see the module docstring); `done` resumes part way."""
    with progress_group(enabled, stderr=stderr, transient=transient, rate=rate) as track:
        yield track(label, total, done)


def _writer(stderr: bool) -> Callable[[str], None]:
    # sys.stdout/stderr looked up per line: test runners and CLIs swap them.
    if stderr:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: print(line, flush=True)


def _rich_display(stderr: bool, transient: bool, rate: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:  # items per second, once rich has measured it
            return Text(_per_second(task.speed), style="progress.data.speed")

    columns = [
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}", markup=False),
        *([Rate()] if rate else []),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=Console(stderr=stderr), transient=transient)


def _per_second(speed: float | None) -> str:
    if not speed:
        return ""
    return f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.2f}/s"
