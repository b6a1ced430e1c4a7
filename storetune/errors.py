"""The one exception type for problems a user can cause and fix."""

from __future__ import annotations


class StoretuneError(Exception):
    """A user-fixable problem: bad file, bad config, missing model.

    The message names the file, line or field and says what to do; the CLI prints
    it without a traceback and exits non-zero.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base
