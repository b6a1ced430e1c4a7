"""Export formats load back: merged, GGUF (transformers reader), Ollama Modelfile, vLLM adapter.

Loading them in llama.cpp itself: tests/test_llamacpp.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from storetune.chat.tokenize import chat_ids
from storetune.cli import app
from storetune.errors import StoretuneError
from storetune.models import export as ex
from storetune.runtime import cacheable_prefix_len, load_merged

CONVO = [
    {"role": "system", "content": "You are the shop assistant.\nReturns: 30 days."},
    {"role": "user", "content": 'Can I return "Fleece Jacket" after 20 days?'},
    {"role": "assistant", "content": "Yes, within 30 days."},
    {"role": "user", "content": "And shipping?"},
]
SMOL_STYLE = (  # SmolLM2's template: a default system prompt when none is given
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _rows(n: int) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You are the shop assistant."},
                {"role": "user", "content": f"How long do I have to return item {i}?"},
                {"role": "assistant", "content": f"Returns are accepted within 30 days. Item {i}."},
            ]
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A workspace with support@v1 trained on the tiny model (once for this module)."""
    from storetune.train import train_model
    from storetune.workspace import Workspace

    root = tmp_path_factory.mktemp("export-ws")
    data = root / "datasets" / "ds-x"
    data.mkdir(parents=True)
    rows = _rows(30)
    splits = {"train": rows[:20], "val": rows[20:26], "test": rows[26:]}
    meta = []
    for split, part in splits.items():
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
        meta += [{"split": split, "index": i, "task": "support"} for i in range(len(part))]
    (data / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    (root / "datasets" / "LATEST").write_text("ds-x")
    cfg = {
        "brand": {"name": "Pine Co", "voice": "friendly"},
        "base_model": str(tiny_model_dir),
        "train": {"lr": 1e-2, "batch_tokens": 256, "threads": 1, "epochs": 3, "bf16": "off"},
    }
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    ws = Workspace(root)
    train_model(ws, progress=False, log=lambda _m: None)
    return ws


def _ids(tokenizer, conv=CONVO):
    return tokenizer.apply_chat_template(
        conv, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]


def _adapter_logits(ws, adapter_dir, ids):
    from peft import PeftModel

    info = json.loads((ws.models_dir / "support" / "v1" / "version.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(info["base_model_path"], dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    with torch.no_grad():
        return model(ids).logits


# --- merged -------------------------------------------------------------------------


def test_merged_loads_with_automodel_and_matches_the_adapter(trained):
    result = ex.export_model(trained, "support@v1", "merged", progress=False)
    assert "model.safetensors" in result.files and "tokenizer.json" in result.files
    merged = AutoModelForCausalLM.from_pretrained(result.path).eval()
    assert not any("lora" in k for k in merged.state_dict())
    tok = AutoTokenizer.from_pretrained(result.path)
    ids = _ids(tok)
    with torch.no_grad():
        got = merged(ids).logits
    want = _adapter_logits(trained, trained.models_dir / "support" / "v1", ids)
    assert torch.allclose(got, want, atol=1e-4)
    base = AutoModelForCausalLM.from_pretrained(
        json.loads((trained.models_dir / "support/v1/version.json").read_text())["base_model_path"]
    )
    with torch.no_grad():
        assert (base(ids).logits - want).abs().max() > 1e-2, "the adapter must have changed logits"
    with pytest.raises(StoretuneError, match="already exists"):
        ex.export_model(trained, "support@v1", "merged", progress=False)


# --- gguf ---------------------------------------------------------------------------

# Largest |logit difference| allowed, as a share of the largest |logit|.
TOLERANCE = {"f32": 1e-6, "f16": 5e-3, "bf16": 3e-2, "q8_0": 3e-2}


@pytest.mark.parametrize("outtype", ["f32", "f16", "bf16", "q8_0"])
def test_gguf_round_trip_through_transformers_matches_logits(trained, tmp_path, outtype):
    model, tok = load_merged(
        trained.models_dir / "support" / "v1",
        json.loads((trained.models_dir / "support/v1/version.json").read_text())["base_model_path"],
    )
    path = tmp_path / f"m.{outtype}.gguf"
    ex.write_gguf(model, tok, path, outtype, "support-v1")
    reread, gtok = ex.load_gguf_model(path)
    ids = _ids(tok)
    with torch.no_grad():
        want, got = model(ids).logits, reread(ids).logits
    rel = ((want - got).abs().max() / want.abs().max()).item()
    assert rel <= TOLERANCE[outtype], rel
    # The tokenizer travels inside the GGUF: same ids, same template, same stop token.
    for text in ("Returns within 30 days! Ça va? 12345", CONVO[1]["content"]):
        assert gtok(text)["input_ids"] == tok(text)["input_ids"]
    assert gtok.chat_template == tok.chat_template
    assert gtok.eos_token == "<|im_end|>" and gtok.pad_token == tok.pad_token
    assert _ids(gtok).tolist() == ids.tolist()


def test_gguf_without_the_qk_permutation_would_not_round_trip(trained, tmp_path, monkeypatch):
    """Guards the test above: the permutation is what makes the logits match."""
    model, tok = load_merged(
        trained.models_dir / "support" / "v1",
        json.loads((trained.models_dir / "support/v1/version.json").read_text())["base_model_path"],
    )
    monkeypatch.setattr(ex, "permute_qk", lambda w, n: w)
    ex.write_gguf(model, tok, tmp_path / "bad.gguf", "f32", "bad")
    reread, _ = ex.load_gguf_model(tmp_path / "bad.gguf")
    ids = _ids(tok)
    with torch.no_grad():
        diff = (model(ids).logits - reread(ids).logits).abs().max() / model(ids).logits.abs().max()
    assert diff > 100 * TOLERANCE["f32"]


def test_gguf_export_via_cli_writes_parity_report(trained, tmp_path):
    out = tmp_path / "gguf"
    result = CliRunner().invoke(
        app,
        ["-w", str(trained.root), "export", "--model", "support@v1", "--format", "gguf"]
        + ["--outtype", "f32", "--out", str(out), "--parity-prompts", "6"],
    )
    assert result.exit_code == 0, result.output
    assert "6/6 identical" in result.output
    parity = json.loads((out / "parity.json").read_text())
    assert parity["prompts"] == 6 and parity["identical"] == 6 and parity["tokenizer_identical"]
    assert parity["first_token_max_abs_logit_diff"] < 1e-4
    assert (out / "support-v1.f32.gguf").stat().st_size > 0


def test_pre_tokenizer_names_are_the_ones_llama_cpp_knows():
    """llama.cpp's llama-vocab.cpp spells the GPT-2 rule "gpt-2" and refuses "gpt2";
    SmolLM2 (digits split one by one, then the GPT-2 rule) is "smollm" there."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert ex.pre_tokenizer_name({"pre_tokenizer": byte_level}) == "gpt-2"
    smol = {
        "type": "Sequence",
        "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level],
    }
    assert ex.pre_tokenizer_name({"pre_tokenizer": smol}) == "smollm"
    odd = {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, byte_level]}
    with pytest.raises(StoretuneError, match="no llama.cpp equivalent"):
        ex.pre_tokenizer_name({"pre_tokenizer": odd})


def test_gguf_without_llama_cpp_checks_parity_with_transformers(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "llama_cpp_available", lambda: False)
    monkeypatch.setattr(ex, "llama_cpp_converters", lambda: None)
    result = ex.export_model(
        trained,
        "support@v1",
        "gguf",
        out=tmp_path / "g",
        outtype="f32",
        parity_prompts=3,
        progress=False,
    )
    assert result.notes and "storetune's GGUF writer" in result.notes[0]
    assert "make llama-cpp" in result.notes[0]
    parity = json.loads((tmp_path / "g" / "parity.json").read_text())
    assert parity["engine"] == "transformers" and parity["identical"] == 3
    assert len(parity["matching_tokens"]) == 3 and parity["first_token_max_abs_logit_diff"] < 1e-4


def test_gguf_lora_export_names_the_missing_converter(trained, tmp_path, monkeypatch):
    from storetune import llamacpp

    monkeypatch.setattr(llamacpp, "llama_cpp_converters", lambda: None)
    with pytest.raises(StoretuneError, match="convert_lora_to_gguf.py") as e:
        ex.export_model(trained, "support@v1", "gguf-lora", out=tmp_path / "l", progress=False)
    assert "make llama-cpp" in e.value.hint
    assert not (tmp_path / "l").exists()


def test_gguf_export_refuses_non_llama_models():
    from transformers import Qwen2Config

    with pytest.raises(StoretuneError, match="Llama-architecture"):
        ex._llama_config(Qwen2Config(hidden_size=64, num_attention_heads=4))


def test_a_failed_export_leaves_nothing_behind(trained, tmp_path, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(ex, "write_gguf", boom)
    with pytest.raises(RuntimeError):
        ex.export_model(trained, "support@v1", "gguf", out=tmp_path / "x", progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary directory
    (tmp_path / ".x.k1ll3d").mkdir()  # what a SIGKILLed export leaves (no finally ran)
    ex.export_model(trained, "support@v1", "vllm", out=tmp_path / "x", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


# --- ollama -------------------------------------------------------------------------


def render_go_template(template: str, messages: list[dict]) -> str:
    """A small evaluator for the Go text/template subset a Modelfile TEMPLATE uses here:
    range over .Messages with $i/$m, if / else if / end, eq / ne / and, $m.Role/.Content."""
    parts = re.split(r"({{-?.*?-?}})", template, flags=re.S)
    tokens: list[tuple[str, str]] = []
    for p in parts:
        if p.startswith("{{"):
            if p.startswith("{{-") and tokens and tokens[-1][0] == "text":
                tokens[-1] = ("text", tokens[-1][1].rstrip())
            tokens.append(("action", p.strip("{}").strip("-").strip()))
        elif p:
            tokens.append(("text", p))

    def value(expr: str, env: dict):
        expr = expr.strip()
        if expr.startswith('"'):
            return json.loads(expr)
        if expr.isdigit():
            return int(expr)
        if expr.startswith("(") and expr.endswith(")"):
            return call(expr[1:-1], env)
        var, _, attr = expr.partition(".")
        obj = env[var]
        return obj[attr.lower()] if attr else obj

    def call(expr: str, env: dict):
        args = re.findall(r'\([^()]*\)|"[^"]*"|\S+', expr)
        fn, rest = args[0], [value(a, env) for a in args[1:]]
        if fn == "eq":
            return rest[0] == rest[1]
        if fn == "ne":
            return rest[0] != rest[1]
        if fn == "and":
            return all(rest)
        raise ValueError(fn)

    def run(pos: int, env: dict, out: list[str], stop=("end",)) -> int:
        while pos < len(tokens):
            kind, body = tokens[pos]
            if kind == "text":
                out.append(body)
                pos += 1
            elif body.startswith("range "):
                m = re.fullmatch(r"range \$(\w+), \$(\w+) := \.Messages", body)
                end = skip(pos + 1)
                for i, msg in enumerate(messages):
                    run(pos + 1, {**env, "$" + m.group(1): i, "$" + m.group(2): msg}, out)
                pos = end + 1
            elif body.startswith("if "):
                pos = branch(pos, env, out)
            elif body == "end" or body.startswith("else"):
                return pos
            else:
                out.append(str(value(body, env)))
                pos += 1
        return pos

    def skip(pos: int) -> int:
        """Index of the `end` closing the block that starts at pos."""
        depth = 0
        while True:
            body = tokens[pos][1] if tokens[pos][0] == "action" else ""
            if body.startswith(("if ", "range ")):
                depth += 1
            elif body == "end":
                if depth == 0:
                    return pos
                depth -= 1
            pos += 1

    def branch(pos: int, env: dict, out: list[str]) -> int:
        taken = False
        cond = tokens[pos][1][3:]
        while True:
            sub: list[str] = []
            nxt = run(pos + 1, env, sub)
            if not taken and (cond is None or call(cond, env)):
                out.extend(sub)
                taken = True
            body = tokens[nxt][1]
            if body == "end":
                return nxt + 1
            cond = body[len("else if ") :] if body.startswith("else if ") else None
            pos = nxt

    out: list[str] = []
    run(0, {}, out)
    return "".join(out)


def _modelfile_template(text: str) -> str:
    return re.search(r'TEMPLATE """(.*?)"""', text, flags=re.S).group(1)


@pytest.mark.parametrize("template", ["tiny", "smol"])
def test_modelfile_template_renders_like_the_chat_template(tiny_model_dir, template):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if template == "smol":
        tok.chat_template = SMOL_STYLE
    modelfile = ex.ollama_modelfile(tok, "m.gguf")
    assert modelfile.startswith("FROM ./m.gguf\n") and "SYSTEM" not in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'PARAMETER stop "<|im_start|>"' in modelfile
    tpl = _modelfile_template(modelfile)
    for conv in (CONVO, CONVO[1:], [CONVO[1], CONVO[2], CONVO[3]]):
        want = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        assert render_go_template(tpl, conv) == want
        if shutil.which("go"):  # the real Go text/template too, when Go is installed
            assert _render_with_go(tpl, conv) == want
    assert ("You are a helpful assistant." in tpl) == (template == "smol")


def _render_with_go(tpl: str, conv: list[dict]) -> str:
    import tempfile
    from pathlib import Path

    program = """package main
import ("encoding/json"; "os"; "text/template")
type M struct { Role string `json:"role"`; Content string `json:"content"` }
func main() {
  t, _ := os.ReadFile(os.Args[1]); var ms []M; raw, _ := os.ReadFile(os.Args[2]); json.Unmarshal(raw, &ms)
  template.Must(template.New("m").Parse(string(t))).Execute(os.Stdout, map[string]any{"Messages": ms})
}
"""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "main.go").write_text(program)
        Path(d, "t.txt").write_text(tpl)
        Path(d, "m.json").write_text(json.dumps(conv))
        run = subprocess.run(
            ["go", "run", "main.go", "t.txt", "m.json"], cwd=d, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout


def test_ollama_export_has_gguf_modelfile_and_command(trained, tmp_path):
    out = tmp_path / "ollama"
    result = ex.export_model(
        trained, "support", "ollama", out=out, parity_prompts=2, progress=False
    )
    modelfile = (out / "Modelfile").read_text()
    gguf_name = re.search(r"FROM \./(\S+)", modelfile).group(1)
    assert (out / gguf_name).exists() and gguf_name.endswith(".f16.gguf")
    assert "ollama create support-v1 -f Modelfile" in result.command
    assert (out / "ollama-create.sh").read_text().strip().endswith(result.command)
    assert json.loads((out / "parity.json").read_text())["prompts"] == 2


def test_unfaithful_chat_template_is_refused(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{{ m['content'] }}{% endfor %}"
    with pytest.raises(StoretuneError, match="chat template"):
        ex.ollama_modelfile(tok, "m.gguf")


# --- vllm ---------------------------------------------------------------------------


def test_vllm_adapter_loads_with_peft_and_names_the_serve_command(trained, tmp_path):
    out = tmp_path / "vllm"
    result = ex.export_model(trained, "support@v1", "vllm", out=out, progress=False)
    cfg = json.loads((out / "adapter_config.json").read_text())
    info = json.loads((trained.models_dir / "support/v1/version.json").read_text())
    assert cfg["base_model_name_or_path"] == info["base_model_path"]
    assert set(cfg["target_modules"]) == ex.VLLM_TARGETS  # all-linear, as short names
    expected = (
        f"vllm serve {info['base_model_path']} --enable-lora "
        f"--lora-modules support={out} --max-lora-rank 16"
    )
    assert result.command == expected
    assert expected in (out / "vllm-serve.sh").read_text()
    tok = AutoTokenizer.from_pretrained(trained.models_dir / "support" / "v1")
    ids = _ids(tok)
    assert torch.allclose(
        _adapter_logits(trained, out, ids),
        _adapter_logits(trained, trained.models_dir / "support" / "v1", ids),
    )


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"target_modules": ["q_proj", "lm_head"]}, "lm_head"),
        ({"r": 1024}, "maximum LoRA rank"),
    ],
)
def test_vllm_check_rejects_what_vllm_would(tmp_path, bad, why):
    good = {"peft_type": "LORA", "r": 16, "target_modules": ["q_proj"], "bias": "none"}
    ex.check_vllm_adapter(good, tmp_path / "adapter_config.json")
    with pytest.raises(StoretuneError, match=why):
        ex.check_vllm_adapter({**good, **bad}, tmp_path / "adapter_config.json")


def test_parity_prefix_cache_decodes_like_plain_generate(trained):
    model, tok = load_merged(
        trained.models_dir / "support" / "v1",
        json.loads((trained.models_dir / "support/v1/version.json").read_text())["base_model_path"],
    )
    convs = [r["messages"][:2] for r in _rows(4)]
    prompts = [chat_ids(tok, c) for c in convs]
    assert cacheable_prefix_len(prompts) > 10  # the shared system prompt and question start
    cached_all, _ = ex._greedy(model, tok, prompts, 12, lambda n: None)
    for ids, cached in zip(prompts, cached_all, strict=True):
        x = torch.tensor([ids])
        plain = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )[0, len(ids) :].tolist()
        assert cached == plain


def test_parity_prompts_come_from_the_versions_tasks(tmp_path):
    from storetune.workspace import Workspace

    ws = Workspace(tmp_path)
    data = ws.datasets_dir / "ds-y"
    data.mkdir(parents=True)
    rows = [
        ({"role": "user", "content": "Classify: Fleece"}, "classify"),
        ({"role": "user", "content": "Where is my order?"}, "support"),
    ]
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    m,
                    {"role": "assistant", "content": "a"},
                ]
            }
        )
        for m, _ in rows
    ]
    (data / "test.jsonl").write_text("\n".join(lines) + "\n")
    meta = [{"split": "test", "index": i, "task": t} for i, (_, t) in enumerate(rows)]
    (data / "meta.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    convs = ex.parity_conversations(ws, {"dataset_id": "ds-y", "tasks": ["classify"]}, 3)
    assert convs[0] == [{"role": "system", "content": "s"}, rows[0][0]]  # no assistant turn
    # The support row is skipped: fixed store questions fill the rest.
    assert len(convs) == 3 and convs[1] == [{"role": "user", "content": ex.FIXED_PROMPTS[0]}]
