"""Moved to storetune.config.build; re-exported until the parallel branches are merged."""

from storetune.config.build import BuildConfig, ParaphraseConfig, SafetyMix, TaskMix  # noqa: F401
