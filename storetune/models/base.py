"""Moved to storetune.runtime (base-model resolution is part of the runtime layer).

Kept as a re-export for callers not yet updated (bench/); remove once they import
storetune.runtime.
"""

from storetune.runtime import (  # noqa: F401
    DEFAULT_MODEL,
    EMBEDDING_PACKAGE,
    ResolvedModel,
    embedding_model_dir,
    fingerprint,
    load_embedder,
    resolve_base_model,
)
