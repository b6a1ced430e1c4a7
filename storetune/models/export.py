"""`storetune export`: a registry version as a merged model, GGUF, Ollama model or vLLM adapter.

- merged: the LoRA folded into the base (peft merge_and_unload), saved as safetensors
  with its tokenizer; loads with AutoModelForCausalLM.
- gguf: the merged model converted for llama.cpp by llama.cpp's own
  `convert_hf_to_gguf.py` (unpacked by `make` from the llama-cpp-python source
  distribution); storetune's own writer (Llama architecture, byte-level BPE) when that
  converter is not installed or does not know the tokenizer. Then a parity check that
  runs the GGUF in llama.cpp when llama-cpp-python is installed.
- gguf-lora: the adapter as a llama.cpp LoRA GGUF (`convert_lora_to_gguf.py`) and the
  base model as a GGUF, for `llama-server -m BASE --lora ADAPTER`; parity as for gguf.
- ollama: the GGUF plus a Modelfile whose TEMPLATE is derived from the chat template
  the model was trained with (and checked to render the same text).
- vllm: the adapter in PEFT format plus the `vllm serve … --enable-lora` command.

Every export is written into a temporary directory beside the target and renamed
into place, so a killed export never leaves a half-written one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from storetune.chat.tokenize import chat_ids
from storetune.errors import StoretuneError
from storetune.io import atomic_write_json, select_rows
from storetune.llamacpp import (  # noqa: F401  (re-exported: export's public helpers)
    ConverterError,
    convert_hf_to_gguf,
    convert_lora_to_gguf,
    llama_cpp_converters,
    require_converters,
    run_converter,
)
from storetune.models.registry import ModelRef, Registry
from storetune.progress import progress as progress_bar
from storetune.runtime import greedy_generate, load_merged, load_tokenizer
from storetune.workspace import Workspace

FORMATS = ("merged", "gguf", "gguf-lora", "ollama", "vllm")
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")
PARITY_PROMPTS = 20
# Modules vLLM's LoRA layers cover in Llama-architecture models.
VLLM_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # values --max-lora-rank accepts


@dataclass
class ExportResult:
    format: str
    path: Path
    files: list[str]
    command: str | None = None
    parity: dict | None = None
    notes: list[str] = field(default_factory=list)


def export_model(
    ws: Workspace,
    model: str,
    fmt: str,
    out: Path | None = None,
    outtype: str = "f16",
    parity_prompts: int = PARITY_PROMPTS,
    max_new_tokens: int = 32,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export registry version `model` (NAME or NAME@vN) as `fmt` into `out`."""
    if fmt not in FORMATS:
        raise StoretuneError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if outtype not in GGUF_TYPES:
        raise StoretuneError(
            f"unknown GGUF type '{outtype}'; choose one of {', '.join(GGUF_TYPES)}"
        )
    registry = Registry(ws.models_dir)
    ref = ModelRef.parse(model)
    version_dir = registry.resolve(ref)
    info = registry.info(version_dir)
    label = f"{version_dir.parent.name}-{version_dir.name}"
    dest = (out or ws.root / "exports" / f"{label}-{fmt}").resolve()
    if dest.exists() and not force:
        raise StoretuneError(f"{dest} already exists", hint="pass --force to replace it, or --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*"):  # left by a killed export
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        result = _EXPORTERS[fmt](
            _Job(
                version_dir,
                info,
                label,
                tmp,
                outtype,
                parity_prompts,
                max_new_tokens,
                ws,
                progress,
                log,
            )
        )
        _replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.path = dest
    if result.command:
        result.command = result.command.replace(str(tmp), str(dest))
        (dest / _COMMAND_FILE[fmt]).write_text(_command_file(result.command), encoding="utf-8")
    result.files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    return result


@dataclass
class _Job:
    version_dir: Path
    info: dict
    label: str
    out: Path
    outtype: str
    parity_prompts: int
    max_new_tokens: int
    ws: Workspace
    progress: bool
    log: Callable[[str], None]


_COMMAND_FILE = {
    "vllm": "vllm-serve.sh",
    "ollama": "ollama-create.sh",
    "gguf-lora": "llama-server.sh",
}


def _command_file(command: str) -> str:
    return f"#!/bin/sh\n# written by storetune export\n{command}\n"


def _replace_dir(tmp: Path, dest: Path) -> None:
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


# -- merged ---------------------------------------------------------------------------


def _base_path(info: dict) -> Path:
    path = Path(info["base_model_path"])
    if not (path / "config.json").exists():
        raise StoretuneError(
            f"base model of this version not found at {path}",
            hint="re-create it (for the bundled default: python -m storetune.models.prepare)",
        )
    return path


def _export_merged(job: _Job) -> ExportResult:
    model, tokenizer = load_merged(job.version_dir, _base_path(job.info))
    model.save_pretrained(job.out, safe_serialization=True)
    tokenizer.save_pretrained(job.out)
    return ExportResult("merged", job.out, [])


# -- gguf -----------------------------------------------------------------------------


def _export_gguf(job: _Job) -> ExportResult:
    model, tokenizer = load_merged(job.version_dir, _base_path(job.info))
    gguf_path = job.out / f"{job.label}.{job.outtype}.gguf"
    result = ExportResult("gguf", job.out, [])
    result.notes.append(
        write_model_gguf(model, tokenizer, gguf_path, job.outtype, job.label, job.progress)
    )
    _parity(job, result, model, tokenizer, gguf_path)
    return result


def _export_gguf_lora(job: _Job) -> ExportResult:
    """The adapter as a llama.cpp LoRA GGUF beside the base model as a GGUF."""
    base = _base_path(job.info)
    converters = require_converters("GGUF LoRA export needs llama.cpp's convert_lora_to_gguf.py")
    lora = job.out / f"{job.label}.lora.{job.outtype}.gguf"
    base_gguf = job.out / f"base.{job.outtype}.gguf"
    job.log(f"converting the adapter with {converters / 'convert_lora_to_gguf.py'}")
    convert_lora_to_gguf(job.version_dir, base, lora, job.outtype)
    job.log(f"converting the base model with {converters / 'convert_hf_to_gguf.py'}")
    convert_hf_to_gguf(base, base_gguf, job.outtype, base.name)
    result = ExportResult("gguf-lora", job.out, [])
    result.command = shlex.join(["llama-server", "-m", str(base_gguf), "--lora", str(lora)])
    model, tokenizer = load_merged(job.version_dir, base)
    _parity(job, result, model, tokenizer, base_gguf, lora)
    return result


def _parity(job: _Job, result: ExportResult, model, tokenizer, gguf_path, lora=None) -> None:
    if not job.parity_prompts:
        return
    if lora is not None and not llama_cpp_available():
        result.notes.append(
            "parity not checked: llama-cpp-python is not installed (make llama-cpp)"
        )
        return
    prompts = parity_conversations(job.ws, job.info, job.parity_prompts)
    result.parity = check_parity(
        model,
        tokenizer,
        gguf_path,
        prompts,
        job.max_new_tokens,
        job.outtype,
        job.progress,
        lora_path=lora,
    )
    atomic_write_json(job.out / "parity.json", result.parity)


def _export_ollama(job: _Job) -> ExportResult:
    result = _export_gguf(job)
    tokenizer = load_tokenizer(job.version_dir)
    gguf_name = next(job.out.glob("*.gguf")).name
    (job.out / "Modelfile").write_text(ollama_modelfile(tokenizer, gguf_name), encoding="utf-8")
    result.format = "ollama"
    result.command = f"cd {shlex.quote(str(job.out))} && ollama create {job.label} -f Modelfile"
    return result


def write_model_gguf(
    model, tokenizer, path: Path, outtype: str, name: str, progress: bool = False
) -> str:
    """Write a merged model as GGUF, preferring llama.cpp's converter; says which wrote it."""
    if llama_cpp_converters() is None:
        write_gguf(model, tokenizer, path, outtype, name, progress)
        return "written by storetune's GGUF writer (llama.cpp's converter is not installed: make llama-cpp)"
    hf_dir = path.with_name(f".{path.name}.hf")
    try:
        model.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
        convert_hf_to_gguf(hf_dir, path, outtype, name)
        return "written by llama.cpp's convert_hf_to_gguf.py"
    except ConverterError as e:
        if "pre-tokenizer was not recognized" not in e.output:
            raise
        path.unlink(missing_ok=True)
        write_gguf(model, tokenizer, path, outtype, name, progress)
        return (
            "written by storetune's GGUF writer: llama.cpp's converter does not know this "
            f"tokenizer; pre-tokenizer set to '{_gguf_pre_tokenizer(tokenizer)}'"
        )
    finally:
        shutil.rmtree(hf_dir, ignore_errors=True)


# -- storetune's GGUF writer (when llama.cpp's converter is absent or does not fit) -----


def _llama_config(config) -> dict:
    """The Llama hyperparameters llama.cpp needs, or a clear error for other models."""
    arch = (getattr(config, "architectures", None) or ["?"])[0]
    if config.model_type != "llama":
        raise StoretuneError(
            f"GGUF export supports Llama-architecture models; this base is '{config.model_type}' ({arch})",
            hint="use --format merged or vllm for this model",
        )
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise StoretuneError(
            "GGUF export: Llama models with attention/MLP biases are not supported"
        )
    # transformers 5 keeps RoPE settings in rope_parameters (rope_scaling before).
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise StoretuneError(
            f"GGUF export: RoPE scaling '{rope.get('rope_type')}' is not supported (default RoPE only)"
        )
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {
        "heads": config.num_attention_heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        "head_dim": head_dim,
        "rope_theta": float(theta),
    }


def write_gguf(
    model, tokenizer, path: Path, outtype: str, name: str, progress: bool = False
) -> None:
    """Write a merged Llama model and its tokenizer as a llama.cpp GGUF file."""
    import gguf

    config = model.config
    hp = _llama_config(config)
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(hp["heads"])
    writer.add_head_count_kv(hp["kv_heads"])
    writer.add_rope_dimension_count(hp["head_dim"])
    if hp["head_dim"] != config.hidden_size // hp["heads"]:
        writer.add_key_length(hp["head_dim"])
        writer.add_value_length(hp["head_dim"])
    writer.add_rope_freq_base(hp["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(_file_type(outtype))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_tokenizer(writer, tokenizer, config.vocab_size)
    for gguf_name, data, qtype in _gguf_tensors(model, hp, outtype):
        writer.add_tensor(gguf_name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=progress)
    writer.close()


def _file_type(outtype: str):
    import gguf

    t = gguf.LlamaFileType
    return {"f32": t.ALL_F32, "f16": t.MOSTLY_F16, "bf16": t.MOSTLY_BF16, "q8_0": t.MOSTLY_Q8_0}[
        outtype
    ]


def permute_qk(weight, n_head: int):
    """llama.cpp's rotary layout: each head's two halves interleaved row-wise.

    transformers' GGUF loader applies the inverse when it reads attn_q / attn_k.
    """
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _gguf_tensors(model, hp: dict, outtype: str):
    """(gguf name, numpy data, ggml type) for every weight, in llama.cpp's layout."""
    import gguf
    import numpy as np

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, model.config.num_hidden_layers)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when output.weight is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise StoretuneError(f"GGUF export: no llama.cpp name for tensor '{hf_name}'")
        data = tensor.detach().float().cpu().numpy()
        if name.endswith("attn_q.weight"):
            data = permute_qk(data, hp["heads"])
        elif name.endswith("attn_k.weight"):
            data = permute_qk(data, hp["kv_heads"])
        yield name, *_encode(np.ascontiguousarray(data), outtype)


def _encode(data, outtype: str):
    """Norms (1-D) stay f32 as llama.cpp keeps them; matrices take the out-type."""
    import gguf
    import numpy as np

    q = gguf.GGMLQuantizationType
    if data.ndim == 1 or outtype == "f32":
        return data.astype(np.float32), q.F32
    if outtype == "f16":
        return data.astype(np.float16), q.F16
    kind = q.BF16 if outtype == "bf16" else q.Q8_0
    if kind == q.Q8_0 and data.shape[-1] % gguf.GGML_QUANT_SIZES[q.Q8_0][0]:
        return data.astype(np.float16), q.F16  # rows not a whole number of blocks
    return gguf.quants.quantize(data, kind), kind


def _add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    """gpt2-style BPE metadata: tokens, types, merges, special ids, chat template."""
    import gguf

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    if backend["model"]["type"] != "BPE" or not _is_byte_level(backend):
        raise StoretuneError(
            "GGUF export supports byte-level BPE tokenizers (GPT-2 / Llama-3 / SmolLM style) only"
        )
    added = {t["id"]: t for t in backend.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        token = tokenizer.convert_ids_to_tokens(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(token)
            special = added[i].get("special", False)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(backend))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for setter, token_id in (
        (writer.add_bos_token_id, tokenizer.bos_token_id),
        (writer.add_eos_token_id, tokenizer.eos_token_id),
        (writer.add_unk_token_id, tokenizer.unk_token_id),
        (writer.add_pad_token_id, tokenizer.pad_token_id),
    ):
        if token_id is not None:
            setter(token_id)
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    writer.add_add_bos_token(
        tokenizer.bos_token_id is not None and probe[0] == tokenizer.bos_token_id
    )
    writer.add_add_eos_token(
        tokenizer.eos_token_id is not None and probe[-1] == tokenizer.eos_token_id
    )
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _is_byte_level(backend: dict) -> bool:
    pre = backend.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    return any(p.get("type") == "ByteLevel" for p in parts)


def _gguf_pre_tokenizer(tokenizer) -> str:
    return pre_tokenizer_name(json.loads(tokenizer.backend_tokenizer.to_str()))


def pre_tokenizer_name(backend: dict) -> str:
    """The llama.cpp pre-tokenizer name whose split rule matches this tokenizer's.

    Names as llama.cpp's llama-vocab.cpp spells them: its GPT-2 rule is "gpt-2" ("gpt2"
    is refused as unknown); "smollm" is that rule after splitting off each digit.
    """
    pre = backend.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # the GPT-2 split regex, built into ByteLevel
    parts = pre.get("pretokenizers", [])
    if [p.get("type") for p in parts] == ["Digits", "ByteLevel"]:
        if parts[0].get("individual_digits") and parts[1].get("use_regex", True):
            return "smollm"
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    for part in parts:
        regex = (part.get("pattern") or {}).get("Regex")
        if part.get("type") == "Split" and regex:
            for name, known in GGUF_PRE_TOKENIZER_SPLITS.items():
                if known == regex:
                    return name
    raise StoretuneError(
        "GGUF export: this tokenizer's pre-tokenizer has no llama.cpp equivalent known to storetune",
        hint="use --format merged or vllm for this model",
    )


# -- parity -----------------------------------------------------------------------------


FIXED_PROMPTS = [
    "Can I return a jacket I bought 20 days ago?",
    "Where is my order?",
    "Do you ship to Canada, and how long does it take?",
    "Is the fleece machine washable?",
    "My tent arrived with a broken pole. What can I do?",
]


def parity_conversations(ws: Workspace, info: dict, n: int) -> list[list[dict]]:
    """Up to n prompts (system + user turns) from the test split of the version's tasks,
    topped up with fixed store questions when the dataset is gone or too small."""
    data_dir = ws.datasets_dir / str(info.get("dataset_id"))
    rows: list[dict] = []
    if (data_dir / "test.jsonl").exists():
        tasks = info.get("tasks") or ["all"]
        rows, _ = select_rows(
            data_dir, "test", tasks if (data_dir / "meta.jsonl").exists() else ["all"]
        )
    convs = []
    for row in rows:
        msgs = row["messages"]
        last_user = max((i for i, m in enumerate(msgs) if m["role"] == "user"), default=None)
        if last_user is not None:
            convs.append(msgs[: last_user + 1])
    convs += [[{"role": "user", "content": p}] for p in FIXED_PROMPTS * n]
    return convs[:n]


def check_parity(
    model,
    tokenizer,
    gguf_path: Path,
    conversations,
    max_new_tokens: int,
    outtype: str,
    progress: bool,
    lora_path: Path | None = None,
) -> dict:
    """Greedy replies of the merged HF model vs the GGUF in the engine that runs it.

    That engine is llama.cpp (llama-cpp-python) when installed: it tokenizes the rendered
    chat text itself with the GGUF's vocabulary, as a server given the text would. Without
    it, the GGUF is read back with transformers (a LoRA GGUF cannot be checked then).
    """
    if llama_cpp_available():
        return _llama_cpp_parity(
            model, tokenizer, gguf_path, conversations, max_new_tokens, progress, lora_path
        ) | {"outtype": outtype}
    if lora_path is not None:
        raise StoretuneError("a LoRA GGUF is checked in llama.cpp only: install llama-cpp-python")
    return _transformers_parity(
        model, tokenizer, gguf_path, conversations, max_new_tokens, progress
    ) | {"outtype": outtype}


def _parity_report(tokenizer, runs, diffs, max_new_tokens: int, compared: str) -> dict:
    identical = sum(hf == gg for hf, gg in runs)
    return {
        "prompts": len(runs),
        "identical": identical,
        "agreement": round(identical / max(len(runs), 1), 4),
        "max_new_tokens": max_new_tokens,
        "decoding": "greedy",
        "compared": compared,
        "first_token_max_abs_logit_diff": round(max(diffs, default=0.0), 6),
        # Per prompt: the reference reply's length (end-of-turn token included) and how
        # many generated tokens agree before the first difference.
        "reply_tokens": [len(hf) for hf, _ in runs],
        "matching_tokens": [_common_prefix(hf, gg) for hf, gg in runs],
        "mismatches": [
            {"index": i, "hf": tokenizer.decode(hf), "gguf": tokenizer.decode(gg)}
            for i, (hf, gg) in enumerate(runs)
            if hf != gg
        ][:5],
    }


def _llama_cpp_parity(
    model, tokenizer, gguf_path, conversations, max_new_tokens, progress, lora_path
) -> dict:
    import llama_cpp

    prompts = [chat_ids(tokenizer, conv) for conv in conversations]
    texts = [_chat_text(tokenizer, conv) for conv in conversations]
    n_ctx = max(len(p) for p in prompts) + max_new_tokens + 16
    engine = LlamaCppGreedy(gguf_path, n_ctx, lora_path=lora_path)
    engine_prompts = [engine.tokenize(t) for t in texts]
    runs, diffs = [], []
    with progress_bar("parity", 2 * len(prompts), progress) as bar:
        hf_ids, hf_logits = _greedy(model, tokenizer, prompts, max_new_tokens, bar.advance)
        for hf, hf_first, engine_ids in zip(hf_ids, hf_logits, engine_prompts, strict=True):
            gg, gg_first = engine(engine_ids, max_new_tokens, tokenizer.eos_token_id)
            runs.append((hf, gg))
            diffs.append(float(abs(hf_first.numpy() - gg_first).max()))
            bar.advance(1)
    what = "GGUF + LoRA GGUF" if lora_path else "GGUF"
    return _parity_report(
        tokenizer,
        runs,
        diffs,
        max_new_tokens,
        f"merged HF model (fp32, transformers) vs the {what} run by llama.cpp "
        f"(llama-cpp-python {llama_cpp.__version__})",
    ) | {
        "engine": "llama.cpp",
        # The GGUF's own vocabulary splits the rendered chat text into the same ids,
        # and llama.cpp stops on the same end-of-turn token.
        "tokenizer_identical": engine_prompts == prompts
        and engine.eos_id == tokenizer.eos_token_id,
    }


def _transformers_parity(model, tokenizer, gguf_path, conversations, max_new_tokens, progress):
    reread, gguf_tok = load_gguf_model(gguf_path)
    prompts = [chat_ids(tokenizer, conv) for conv in conversations]
    same_tokens = all(
        chat_ids(gguf_tok, c) == ids for c, ids in zip(conversations, prompts, strict=True)
    )
    with progress_bar("parity", 2 * len(prompts), progress) as bar:
        hf_out = _greedy(model, tokenizer, prompts, max_new_tokens, bar.advance)
        gg_out = _greedy(reread, tokenizer, prompts, max_new_tokens, bar.advance)
    runs = list(zip(hf_out[0], gg_out[0], strict=True))
    diffs = [(hf - gg).abs().max().item() for hf, gg in zip(hf_out[1], gg_out[1], strict=True)]
    return _parity_report(
        tokenizer,
        runs,
        diffs,
        max_new_tokens,
        "merged HF model vs GGUF loaded by transformers (gguf_file=); "
        "llama-cpp-python is not installed",
    ) | {"engine": "transformers", "tokenizer_identical": same_tokens}


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppGreedy:
    """Greedy decoding of a GGUF in llama.cpp (llama-cpp-python's low-level calls).

    Argmax over the logits llama.cpp computes, stopping at `eos_id` as transformers'
    generate does; the key/value cache of the previous prompt's common prefix is kept,
    so prompts sharing the store's system prompt prefill it once.
    """

    def __init__(
        self,
        gguf_path: Path,
        n_ctx: int,
        lora_path: Path | None = None,
        n_threads: int | None = None,
    ) -> None:
        from llama_cpp import Llama

        from storetune.llamacpp import llama_params_for

        with llama_params_for(gguf_path):  # no weight repacking for q8_0 (see there)
            self.llm = Llama(
                model_path=str(gguf_path),
                lora_path=str(lora_path) if lora_path else None,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=0,
                verbose=False,
            )
        self.eos_id = self.llm.token_eos()

    def tokenize(self, text: str) -> list[int]:
        """The GGUF's own tokenization, special tokens and its BOS rule included."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def logits(self, ids: list[int]):
        """Logits after `ids`, computing only what the cached prefix does not cover."""
        import llama_cpp
        import numpy as np

        cached = self.llm.input_ids[: self.llm.n_tokens].tolist()
        keep = min(_common_prefix(cached, ids), len(ids) - 1)
        self.llm.n_tokens = keep  # eval() drops the cache past this point
        self.llm.eval(ids[keep:])
        row = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(self.llm.n_vocab(),)).copy()

    def __call__(self, ids: list[int], max_new_tokens: int, eos_id: int | None):
        """(generated token ids, logits of the first generated position)."""
        seq, out = list(ids), []
        first = logits = self.logits(seq)
        while len(out) < max_new_tokens:
            token = int(logits.argmax())
            out.append(token)
            if token == eos_id or len(out) == max_new_tokens:
                break
            seq.append(token)
            logits = self.logits(seq)
        return out, first


def _chat_text(tokenizer, conv) -> str:
    return tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)


def _greedy(model, tokenizer, prompts, max_new_tokens: int, advance):
    """(generated ids, first-token logits) per prompt: one prompt at a time, so no
    padding enters the comparison; the shared policy prompt is prefilled once."""
    return greedy_generate(
        model,
        prompts,
        max_new_tokens,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        batch_size=1,
        on_batch=advance,
        first_logits=True,
    )


def load_gguf_model(gguf_path: Path):
    """A GGUF read back with transformers, dequantised, as storetune.runtime does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.eval()
    return model, AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)


# -- ollama -----------------------------------------------------------------------------

_SENTINEL = "\u2063STORETUNE\u2063"


def chat_pieces(tokenizer) -> dict:
    """The chat template as per-role text before/after each message's content.

    Derived by rendering probe conversations; raises when the template does not fit
    that shape (then no faithful Ollama TEMPLATE can be written).
    """

    def render(msgs, gen=False):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    def msg(role):
        return {"role": role, "content": _SENTINEL}

    pieces = {}
    convo = [msg("system"), msg("user"), msg("assistant")]
    for i, m in enumerate(convo):
        chunk = render(convo[: i + 1])[len(render(convo[:i])) if i else 0 :]
        if chunk.count(_SENTINEL) != 1:
            raise StoretuneError(
                "chat template: cannot find each message's text to build a TEMPLATE"
            )
        pieces[m["role"]] = tuple(chunk.split(_SENTINEL))
    first_user = render([msg("user")])
    user_chunk = "".join((pieces["user"][0], _SENTINEL, pieces["user"][1]))
    if not first_user.endswith(user_chunk):
        raise StoretuneError(
            "chat template: a conversation without a system message renders unlike the rest"
        )
    pieces["default_system"] = first_user[: -len(user_chunk)]
    pieces["generation"] = render(convo[:2], gen=True)[len(render(convo[:2])) :]
    return pieces


def ollama_template(pieces: dict) -> str:
    """A Go text/template over Ollama's .Messages reproducing the chat template."""
    roles = ("system", "user", "assistant")
    for text in [
        *(p for r in roles for p in pieces[r]),
        pieces["default_system"],
        pieces["generation"],
    ]:
        if "{{" in text or '"""' in text:
            raise StoretuneError(
                "chat template text contains '{{' or '\"\"\"'; cannot write a Modelfile"
            )
    out = "{{ range $i, $m := .Messages }}"
    if pieces["default_system"]:
        out += f'{{{{ if and (eq $i 0) (ne $m.Role "system") }}}}{pieces["default_system"]}{{{{ end }}}}'
    for n, role in enumerate(roles):
        pre, post = pieces[role]
        keyword = "if" if n == 0 else "else if"
        out += f'{{{{ {keyword} eq $m.Role "{role}" }}}}{pre}{{{{ $m.Content }}}}{post}'
    return out + "{{ end }}{{ end }}" + pieces["generation"]


def ollama_modelfile(tokenizer, gguf_name: str) -> str:
    """Modelfile: FROM the GGUF, TEMPLATE from the chat template, stop tokens, no SYSTEM.

    No SYSTEM line: storetune sends the store's system prompt with every request.
    """
    pieces = chat_pieces(tokenizer)
    template = ollama_template(pieces)
    stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    # Also stop at a special token that opens a turn (ChatML's <|im_start|>): a model
    # that skips its end-of-turn token must not write the customer's next message.
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    specials = [t["content"] for t in backend.get("added_tokens", []) if t.get("special")]
    stops += [s for s in specials if s in pieces["user"][0] and s not in stops]
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{template}"""']
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    return "\n".join(lines) + "\n"


# -- vllm -------------------------------------------------------------------------------


def _export_vllm(job: _Job) -> ExportResult:
    cfg_path = job.version_dir / "adapter_config.json"
    adapter_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    base = str(_base_path(job.info))
    check_vllm_adapter(adapter_cfg, cfg_path)
    adapter_cfg["base_model_name_or_path"] = base
    atomic_write_json(job.out / "adapter_config.json", adapter_cfg)
    shutil.copy2(
        job.version_dir / "adapter_model.safetensors", job.out / "adapter_model.safetensors"
    )
    rank = next((r for r in VLLM_RANKS if r >= adapter_cfg["r"]), adapter_cfg["r"])
    name = job.version_dir.parent.name
    command = shlex.join(
        [
            "vllm",
            "serve",
            base,
            "--enable-lora",
            "--lora-modules",
            f"{name}={job.out}",
            "--max-lora-rank",
            str(rank),
        ]
    )
    return ExportResult("vllm", job.out, [], command=command)


def check_vllm_adapter(cfg: dict, path: Path) -> None:
    """Refuse adapters vLLM would reject at load time, naming the field."""
    problems = []
    if cfg.get("peft_type") != "LORA":
        problems.append(f"peft_type is {cfg.get('peft_type')!r}, vLLM serves LORA only")
    targets = cfg.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else targets
    if extra := sorted(set(targets) - VLLM_TARGETS):
        problems.append(f"target_modules {extra} are not LoRA-capable in vLLM's Llama layers")
    if cfg.get("use_dora"):
        problems.append("use_dora is true (DoRA is not supported by vLLM)")
    if cfg.get("bias", "none") != "none":
        problems.append(f"bias is {cfg.get('bias')!r} (vLLM needs 'none')")
    if cfg.get("modules_to_save"):
        problems.append("modules_to_save is set (vLLM loads LoRA weights only)")
    if int(cfg.get("r", 0)) > VLLM_RANKS[-1]:
        problems.append(f"r={cfg.get('r')} exceeds vLLM's maximum LoRA rank {VLLM_RANKS[-1]}")
    if problems:
        raise StoretuneError(f"{path}: not servable by vLLM: " + "; ".join(problems))


_EXPORTERS = {
    "merged": _export_merged,
    "gguf": _export_gguf,
    "gguf-lora": _export_gguf_lora,
    "ollama": _export_ollama,
    "vllm": _export_vllm,
}
