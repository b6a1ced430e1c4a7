"""Moved to storetune.config.serve; re-exported until the parallel branches are merged."""

from storetune.config.serve import ReviewUser, ServeConfig  # noqa: F401
