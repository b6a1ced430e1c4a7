"""Moved to storetune.config.rules; re-exported until the parallel branches are merged."""

from storetune.config.rules import apply_rules, describe_rules, load_rules  # noqa: F401
