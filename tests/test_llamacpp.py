"""Exports checked by the engine that runs them: llama.cpp (llama-cpp-python, built by make).

Each test writes a fresh export, loads it in llama.cpp and compares llama.cpp's greedy
continuation with transformers' token for token: the GGUF, the Ollama export's GGUF
rendered through its Modelfile TEMPLATE, and the GGUF LoRA on its base GGUF. The tiny
models are random; the slow test does the same on the default model with an adapter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import llama_cpp  # built by make install: missing means a broken install, so the tests fail
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from storetune.models import export as ex
from storetune.runtime import load_merged
from storetune.workspace import Workspace

PROMPTS = [
    [{"role": "user", "content": "Can I return a jacket I bought 20 days ago?"}],
    [
        {"role": "system", "content": "You are the shop assistant.\nReturns: 30 days."},
        {"role": "user", "content": 'Is "Fleece Jacket" ($89.95, 2 left) machine washable?'},
    ],
    [
        {"role": "system", "content": "You are the shop assistant."},
        {"role": "user", "content": "Where is order #10234?"},
        {"role": "assistant", "content": "It shipped on 3 May."},
        {"role": "user", "content": "Thanks! Ça arrive quand ? 🙂"},
    ],
]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def needs_converters():
    if ex.llama_cpp_converters() is None:
        # make install unpacks them: their absence is a broken install, not a reason to pass
        pytest.fail("llama.cpp's converters are missing: run make install (make llama-cpp)")


# --- fixtures: registry versions with a random LoRA, no training needed ----------------


def add_version(root: Path, base_dir: Path, seed: int, b_std: float, dataset_id=None) -> Workspace:
    """models/support/v1 in workspace `root`: a rank-8 LoRA with random A and B on base_dir."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, init_lora_weights=False)
    model = get_peft_model(base, cfg)
    with torch.no_grad():  # B's size sets how far the adapter moves the model
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, b_std)
    version = root / "models" / "support" / "v1"
    model.save_pretrained(version)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(version)
    info = {"base_model_path": str(base_dir), "dataset_id": dataset_id, "tasks": ["support"]}
    (version / "version.json").write_text(json.dumps(info))
    return Workspace(root)


def tiny_llama_with_smollm_tokenizer(out: Path) -> Path:
    """A 2-layer random Llama using the default model's tokenizer (which llama.cpp's
    converter recognises as SmolLM's), from the prepared model cache."""
    from storetune.workspace import cache_dir

    smol = cache_dir() / "models" / "smollm2-135m-instruct"
    if not (smol / "tokenizer.json").exists():
        pytest.fail(
            "default model not prepared: run make install (python -m storetune.models.prepare)"
        )
    tok = AutoTokenizer.from_pretrained(smol)
    torch.manual_seed(1)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rope_theta=100000.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger logits than the default init: fewer near-ties in f16
        model.model.embed_tokens.weight.normal_(0.0, 0.5)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_ws(tmp_path_factory, tiny_model_dir) -> Workspace:
    """support@v1 on the tiny model of tests/tiny.py (its own small BPE tokenizer)."""
    return add_version(tmp_path_factory.mktemp("ws-tiny"), tiny_model_dir, seed=3, b_std=0.05)


@pytest.fixture(scope="module")
def smoltok_ws(tmp_path_factory) -> Workspace:
    """support@v1 on a tiny Llama with the default model's tokenizer."""
    base = tiny_llama_with_smollm_tokenizer(tmp_path_factory.mktemp("tiny-smoltok"))
    return add_version(tmp_path_factory.mktemp("ws-smoltok"), base, seed=4, b_std=0.2)


# --- the two sides ----------------------------------------------------------------------


def merged_model(ws: Workspace):
    version = ws.models_dir / "support" / "v1"
    info = json.loads((version / "version.json").read_text())
    return load_merged(version, Path(info["base_model_path"]))


def transformers_greedy(model, tok, text: str, n: int) -> list[int]:
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    return out[0, ids.shape[1] :].tolist()


def llama_cpp_greedy(llm, text: str, n: int) -> list[int]:
    """llama.cpp's own greedy sampler (temp 0) on the text, tokenized by the GGUF's vocab."""
    ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    out = []
    for token in llm.generate(ids, temp=0.0, reset=True):
        out.append(token)
        if token == llm.token_eos() or len(out) == n:
            break
    return out


def open_gguf(path: Path, lora: Path | None = None):
    from storetune.llamacpp import llama_params_for

    with llama_params_for(path):  # as storetune loads it: no repacking for q8_0
        return llama_cpp.Llama(
            model_path=str(path),
            lora_path=str(lora) if lora else None,
            n_ctx=1024,
            n_threads=1,  # a correctness check: one thread stays fast on a busy machine
            seed=0,
            verbose=False,
        )


def test_quantized_ggufs_load_without_weight_repacking(tmp_path):
    """storetune loads q8_0 files with llama.cpp's weight repacking off (it crashed a
    q8_0 decode on an AVX-512 machine) and float files as llama.cpp would."""
    from storetune.llamacpp import model_params

    assert model_params(tmp_path / "m.q8_0.gguf").use_extra_bufts is False
    default = llama_cpp.llama_model_default_params().use_extra_bufts
    assert model_params(tmp_path / "m.f16.gguf").use_extra_bufts == default


def chat_texts(tok) -> list[str]:
    return [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in PROMPTS]


def assert_same_greedy(model, tok, llm, texts: list[str], n: int = 24) -> None:
    for text in texts:
        want = transformers_greedy(model, tok, text, n)
        got = llama_cpp_greedy(llm, text, n)
        assert got == want, (text, tok.decode(want), tok.decode(got))


# --- tiny model, its own tokenizer: storetune's GGUF writer ------------------------------


def test_tiny_gguf_export_loads_in_llama_cpp_and_decodes_like_transformers(tiny_ws, tmp_path):
    result = ex.export_model(
        tiny_ws, "support@v1", "gguf", out=tmp_path / "g", outtype="f32", progress=False
    )
    gguf = tmp_path / "g" / "support-v1.f32.gguf"
    llm = open_gguf(gguf)
    # Its tokenizer is unknown to llama.cpp's converter: storetune's writer names the
    # GPT-2 split rule the way llama.cpp spells it.
    assert any("storetune's GGUF writer" in n for n in result.notes), result.notes
    assert llm.metadata["tokenizer.ggml.pre"] == "gpt-2"
    model, tok = merged_model(tiny_ws)
    texts = chat_texts(tok)
    for text in texts:
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tok(text)["input_ids"]
    assert_same_greedy(model, tok, llm, texts)
    parity = json.loads((tmp_path / "g" / "parity.json").read_text())
    assert parity["engine"] == "llama.cpp" and parity["tokenizer_identical"]
    assert parity["identical"] == parity["prompts"] == ex.PARITY_PROMPTS


def test_export_parity_decoder_agrees_with_llama_cpp_sampler(tiny_ws, tmp_path):
    """The export's parity check (argmax over llama.cpp's logits, cached prefix) decodes
    what llama.cpp's own greedy sampler does."""
    model, tok = merged_model(tiny_ws)
    path = tmp_path / "m.gguf"
    ex.write_gguf(model, tok, path, "f32", "m")
    engine = ex.LlamaCppGreedy(path, n_ctx=1024)
    llm = open_gguf(path)
    for text in chat_texts(tok) * 2:  # the second round starts from a cached prefix
        out, _ = engine(engine.tokenize(text), 24, tok.eos_token_id)
        assert out == llama_cpp_greedy(llm, text, 24)


# --- tiny model, the default model's tokenizer: llama.cpp's converter -----------------------


@pytest.mark.parametrize("outtype", ["f32", "f16"])
def test_converted_gguf_decodes_like_transformers(smoltok_ws, tmp_path, outtype):
    needs_converters()
    result = ex.export_model(
        smoltok_ws, "support@v1", "gguf", out=tmp_path / "g", outtype=outtype, progress=False
    )
    assert result.notes == ["written by llama.cpp's convert_hf_to_gguf.py"]
    llm = open_gguf(tmp_path / "g" / f"support-v1.{outtype}.gguf")
    assert llm.metadata["tokenizer.ggml.pre"] == "smollm"  # what llama.cpp names SmolLM2's
    model, tok = merged_model(smoltok_ws)
    assert_same_greedy(model, tok, llm, chat_texts(tok))
    parity = json.loads((tmp_path / "g" / "parity.json").read_text())
    assert parity["engine"] == "llama.cpp" and parity["tokenizer_identical"]
    assert parity["identical"] == parity["prompts"]


def test_ollama_export_gguf_and_template_decode_like_transformers(smoltok_ws, tmp_path):
    """What `ollama create` gets: the GGUF, and prompts rendered by the Modelfile TEMPLATE."""
    from test_export import render_go_template

    ex.export_model(smoltok_ws, "support@v1", "ollama", out=tmp_path / "o", progress=False)
    modelfile = (tmp_path / "o" / "Modelfile").read_text()
    gguf = tmp_path / "o" / re.search(r"FROM \./(\S+)", modelfile).group(1)
    template = re.search(r'TEMPLATE """(.*?)"""', modelfile, flags=re.S).group(1)
    stops = re.findall(r'PARAMETER stop "(.*?)"', modelfile)
    llm = open_gguf(gguf)
    model, tok = merged_model(smoltok_ws)
    assert llm.detokenize([llm.token_eos()], special=True).decode() in stops
    texts = [render_go_template(template, conv) for conv in PROMPTS]
    assert texts == chat_texts(tok)
    assert_same_greedy(model, tok, llm, texts)


def test_gguf_lora_on_base_gguf_decodes_like_the_merged_model(smoltok_ws, tmp_path):
    needs_converters()
    out = tmp_path / "l"
    result = ex.export_model(
        smoltok_ws, "support@v1", "gguf-lora", out=out, outtype="f32", progress=False
    )
    base, lora = out / "base.f32.gguf", out / "support-v1.lora.f32.gguf"
    assert result.command == f"llama-server -m {base} --lora {lora}"
    assert (out / "llama-server.sh").read_text().strip().endswith(result.command)
    with_lora = open_gguf(base, lora)
    assert with_lora.metadata.get("general.type") != "adapter"
    model, tok = merged_model(smoltok_ws)
    texts = chat_texts(tok)
    assert_same_greedy(model, tok, with_lora, texts)
    # The adapter is applied, not ignored: without it llama.cpp's logits move a lot.
    ids = with_lora.tokenize(texts[0].encode(), add_bos=True, special=True)
    _, lora_logits = ex.LlamaCppGreedy(base, 1024, lora_path=lora)(ids, 1, None)
    _, base_logits = ex.LlamaCppGreedy(base, 1024)(ids, 1, None)
    assert abs(lora_logits - base_logits).max() > 1.0
    parity = json.loads((out / "parity.json").read_text())
    assert parity["engine"] == "llama.cpp" and "LoRA GGUF" in parity["compared"]
    assert parity["identical"] == parity["prompts"]


# --- the default model -------------------------------------------------------------------

STORE_SYSTEM = (
    "You are the customer support assistant of Pine & Peak Outfitters. Only state facts "
    "found in the policies or product information below.\n"
    "Returns: within 30 days of delivery, unused, with original tags; free return label; "
    "refunds within 5 business days. Sale items are final sale.\n"
    "Shipping: free over $75; otherwise $6.95, 3-5 business days. Damaged items: report "
    "within 7 days with a photo for a free replacement or a full refund."
)
QUESTIONS = [
    "Can I return a jacket I bought 20 days ago?",
    "Where is my order #10234? It has been a week.",
    "Do you ship to Canada, and how long does it take?",
    "Is the Trailhead Fleece machine washable?",
    "My tent arrived with a broken pole. What can I do?",
    "How much is shipping on a $60 order?",
    "Can I exchange my boots for a bigger size?",
    "I bought a sale item and it doesn't fit. Can I get a refund?",
    "When will I get my refund?",
    "Do you have the Alpine Pack in green?",
    "What is your phone number?",
    "Can I change the address on my order?",
    "The zipper on my jacket broke after two months.",
    "Do you price match?",
    "I was charged twice for the same order!",
    "Can I cancel my order? I placed it an hour ago.",
    "Is there a warranty on your tents?",
    "How do I wash a down sleeping bag?",
    "Do you have gift cards?",
    "My package says delivered but I never got it.",
]


def store_dataset(root: Path) -> str:
    """A test split of 20 store questions under the store's system prompt."""
    data = root / "datasets" / "ds-parity"
    data.mkdir(parents=True)
    rows = [
        {
            "messages": [
                {"role": "system", "content": STORE_SYSTEM},
                {"role": "user", "content": q},
                {"role": "assistant", "content": "-"},
            ]
        }
        for q in QUESTIONS
    ]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = [{"split": "test", "index": i, "task": "support"} for i in range(len(rows))]
    (data / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    return "ds-parity"


# Share of the 20 prompts whose 32 greedy tokens must be identical to transformers'
# (fp32), and share whose first OPENING tokens must be. f16 rounds the weights only.
# q8_0 rounds them to 8 bits per weight (transformers on the dequantised q8_0 weights
# gave 14/20 identical replies) and llama.cpp also runs its q8_0 products on 8-bit
# activations, so replies part at near-ties earlier: measured 8/20 identical, every
# reply's first 4 tokens the same (docs/training.md).
AGREEMENT = {"f16": 0.9, "q8_0": 0.3}
OPENING, OPENING_AGREEMENT = 4, 0.9


@pytest.mark.slow
def test_default_model_with_adapter_agrees_in_llama_cpp(tmp_path):
    """The default model with a (random, small) adapter merged, exported as f16 and q8_0
    GGUF: llama.cpp's greedy replies to 20 store questions vs transformers'."""
    needs_converters()
    from storetune.runtime import resolve_base_model

    base = resolve_base_model().path
    ws = add_version(tmp_path, base, seed=5, b_std=0.002, dataset_id=store_dataset(tmp_path))
    model, tok = merged_model(ws)
    texts = [
        tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in ex.parity_conversations(ws, {"dataset_id": "ds-parity", "tasks": ["support"]}, 20)
    ]
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    want = ex._greedy(model, tok, prompts, 32, None)[0]
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    with torch.no_grad():  # the adapter moves the model, if only a little
        ids = torch.tensor([prompts[0]])
        assert (base_model(ids).logits - model(ids).logits).abs().max() > 0.1
    report = {}
    for outtype in ("f16", "q8_0"):
        out = tmp_path / f"export-{outtype}"
        ex.export_model(
            ws, "support", "gguf", out=out, outtype=outtype, parity_prompts=0, progress=False
        )
        llm = open_gguf(out / f"support-v1.{outtype}.gguf")
        assert llm.metadata["tokenizer.ggml.pre"] == "smollm"
        assert [llm.tokenize(t.encode(), add_bos=True, special=True) for t in texts] == prompts
        got = [llama_cpp_greedy(llm, t, 32) for t in texts]
        pairs = list(zip(got, want, strict=True))
        matching = [ex._common_prefix(g, w) for g, w in pairs]
        identical = sum(g == w for g, w in pairs) / len(pairs)
        opening = sum(ex._common_prefix(g, w) >= min(OPENING, len(w)) for g, w in pairs)
        opening /= len(pairs)
        report[outtype] = {"identical": identical, "opening": opening, "matching": matching}
        print(f"{outtype}: {report[outtype]}")
    for outtype, r in report.items():
        assert r["identical"] >= AGREEMENT[outtype], report
        assert r["opening"] >= OPENING_AGREEMENT, report
