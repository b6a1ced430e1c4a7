"""`python -m storetune.models.prepare`: convert the bundled default model once.

Run by `make` after installing, so the first `storetune` command does not pause
for the GGUF conversion.
"""

from storetune.quiet import quiet_libraries
from storetune.runtime import embedding_model_dir, resolve_base_model

if __name__ == "__main__":
    quiet_libraries()
    resolved = resolve_base_model()
    print(f"base model ready: {resolved.path}")
    print(f"embedding model: {embedding_model_dir()}")
