"""Training through the real loop on a tiny Llama: adapters move, the base does not."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from storetune.chat.tokenize import IGNORE, tokenize_chat
from storetune.config import TrainConfig
from storetune.runtime import resolve_base_model
from storetune.train.data import length_batches
from storetune.train.loop import train_lora

ROWS = [
    {
        "messages": [
            {"role": "system", "content": "You are the shop assistant."},
            {"role": "user", "content": f"How long do I have to return item {i}?"},
            {
                "role": "assistant",
                "content": f"Returns are accepted within 30 days. Item {i} ships for $6.95.",
            },
        ]
    }
    for i in range(24)
]


def _cfg(**kw) -> TrainConfig:
    base = dict(
        epochs=2,
        lr=5e-3,
        batch_tokens=512,
        eval_every=3,
        checkpoint_every=2,
        early_stop_patience=0,
        seed=1,
        threads=1,
        lora_dropout=0.0,
    )
    return TrainConfig(**{**base, **kw})


def test_masking_trains_only_assistant_and_eos(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    item = tokenize_chat(tok, ROWS[0]["messages"], 512)
    trained = tok.decode(
        [t for t, lab in zip(item.input_ids, item.labels, strict=True) if lab != IGNORE]
    )
    assert trained.startswith("Returns are accepted within 30 days.")
    assert "<|im_end|>" in trained
    assert "shop assistant" not in trained and "return item" not in trained


def test_length_batches_respect_budget(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = [tokenize_chat(tok, r["messages"], 512) for r in ROWS]
    batches = length_batches(items, 200, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(items)))
    for b in batches:
        assert len(b) * max(len(items[i].input_ids) for i in b) <= 200 or len(b) == 1


def test_train_changes_adapter_not_base(tiny_model_dir, tmp_path):
    base = resolve_base_model(str(tiny_model_dir))
    before = {
        k: v.clone()
        for k, v in AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict().items()
    }
    out = tmp_path / "adapter"
    result = train_lora(base, ROWS[:20], ROWS[20:], _cfg(), tmp_path / "run", out, progress=False)
    assert result.steps > 0
    losses = [m["loss"] for m in result.metrics if m["kind"] == "train"]
    assert losses[-1] < losses[0], "training loss should fall"
    adapter = load_file(out / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b), "LoRA B starts at zero and must move"
    after = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "base weights must not change"


def test_resume_matches_uninterrupted(tiny_model_dir, tmp_path):
    base = resolve_base_model(str(tiny_model_dir))
    cfg = _cfg(epochs=1, eval_every=100, batch_tokens=64)  # several steps, so a kill lands mid-run
    full = train_lora(
        base, ROWS[:20], ROWS[20:], cfg, tmp_path / "a", tmp_path / "out-a", progress=False
    )

    def kill_at_step_3(step: int) -> None:
        if step == 3:  # a checkpoint exists from step 2; step 3's work is lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(
            base,
            ROWS[:20],
            ROWS[20:],
            cfg,
            tmp_path / "b",
            tmp_path / "out-b",
            progress=False,
            on_step=kill_at_step_3,
        )
    resumed = train_lora(
        base,
        ROWS[:20],
        ROWS[20:],
        cfg,
        tmp_path / "b",
        tmp_path / "out-b2",
        resume=True,
        progress=False,
    )
    assert resumed.steps == full.steps
    assert abs(resumed.best_val_loss - full.best_val_loss) <= 0.01 * full.best_val_loss


# --- masking edge cases ----------------------------------------------------------

MARKED = (  # the same ChatML, with HF generation markers around assistant content
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{ message['content'] + '<|im_end|>' + '\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _trained_text(tok, item) -> str:
    return tok.decode(
        [t for t, lab in zip(item.input_ids, item.labels, strict=True) if lab != IGNORE]
    )


def test_masking_multi_turn_and_template_with_markers(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    convo = [
        {"role": "system", "content": "You are the shop assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "Returns?"},
        {"role": "assistant", "content": "Within 30 days"},
    ]
    plain = tokenize_chat(tok, convo, 512)
    assert _trained_text(tok, plain) == "Hello there<|im_end|>Within 30 days<|im_end|>"
    tok.chat_template = MARKED
    marked = tokenize_chat(tok, convo, 512)
    assert marked.input_ids == plain.input_ids and marked.labels == plain.labels


def test_masking_skips_assistant_turns_with_weight_zero(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    convo = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there", "weight": 0},
        {"role": "user", "content": "Returns?"},
        {"role": "assistant", "content": "Within 30 days", "weight": 1},
    ]
    out = tokenize_chat(tok, convo, 512)
    assert _trained_text(tok, out) == "Within 30 days<|im_end|>"
    assert "Hello there" in tok.decode(out.input_ids)  # still in context


def test_masking_rejects_a_template_that_rewrites_history(tiny_model_dir):
    from storetune.errors import StoretuneError

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    # Renders only the last message, so earlier turns change as the conversation grows.
    tok.chat_template = "{{ messages[-1]['content'] }}{% if add_generation_prompt %}>{% endif %}"
    with pytest.raises(StoretuneError, match="prefix-stable"):
        tokenize_chat(tok, ROWS[0]["messages"], 512)


# --- early stop ------------------------------------------------------------------


def test_early_stop_fires_on_rising_val_loss_and_keeps_best(tiny_model_dir, tmp_path, monkeypatch):
    from storetune.train import loop

    scripted = iter([2.0, 1.0, 1.5, 1.7, 1.9, 2.1])  # best at the 2nd eval, then rising
    snapshots = []

    def fake_evaluate(model, items, batch_tokens, pad_id, rt):
        snapshots.append(
            {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
        )
        return next(scripted)

    monkeypatch.setattr(loop, "_evaluate", fake_evaluate)
    base = resolve_base_model(str(tiny_model_dir))
    cfg = _cfg(epochs=20, eval_every=2, early_stop_patience=2, batch_tokens=64)
    out = tmp_path / "out"
    result = train_lora(base, ROWS[:20], ROWS[20:], cfg, tmp_path / "run", out, progress=False)
    vals = [m for m in result.metrics if m["kind"] == "val"]
    assert result.stopped_early and len(vals) == 4  # 2nd best, 3rd and 4th worse: stop
    assert result.steps == 8 and result.epochs_run < cfg.epochs  # stopped long before the end
    assert result.best_val_loss == 1.0
    saved = load_file(out / "adapter_model.safetensors")
    best = {k.replace(".default", ""): v for k, v in snapshots[1].items()}
    last = {k.replace(".default", ""): v for k, v in snapshots[3].items()}
    for key, value in saved.items():
        assert torch.equal(value, best[key]), key
    assert any(not torch.equal(saved[k], last[k]) for k in saved), "weights moved after the best"


# --- train_model on a workspace: tasks, registry metadata, tracking, crashes ----------

CATALOG_ROWS = [
    {
        "messages": [
            {"role": "system", "content": "Classify the product."},
            {"role": "user", "content": f"Fleece Jacket {i}"},
            {"role": "assistant", "content": "Jacket"},
        ]
    }
    for i in range(8)
]


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def workspace(tmp_path, tiny_model_dir):
    """A store workspace with one dataset of support and classify examples."""
    from storetune.workspace import Workspace

    root = tmp_path / "ws"
    data = root / "datasets" / "ds-test"
    data.mkdir(parents=True)
    config = {
        "brand": {"name": "Pine Co", "voice": "friendly"},
        "base_model": str(tiny_model_dir),
        "train": {
            "lr": 5e-3,
            "batch_tokens": 256,
            "threads": 1,
            "lora_dropout": 0.0,
            "epochs": 1,
            "checkpoint_every": 2,
        },
    }
    (root / "store.yaml").write_text(yaml.safe_dump(config))
    splits = {
        "train": [(r, "support") for r in ROWS[:20]] + [(r, "classify") for r in CATALOG_ROWS[:6]],
        "val": [(r, "support") for r in ROWS[20:]] + [(r, "classify") for r in CATALOG_ROWS[6:]],
        "test": [(ROWS[0], "support")],
    }
    meta = []
    for split, rows in splits.items():
        _write_jsonl(data / f"{split}.jsonl", [r for r, _ in rows])
        meta += [{"split": split, "index": i, "task": t} for i, (_, t) in enumerate(rows)]
    _write_jsonl(data / "meta.jsonl", meta)
    (root / "datasets" / "LATEST").write_text("ds-test")
    return Workspace(root)


def test_tasks_select_examples_and_named_adapters_share_a_base(workspace):
    from storetune.io import select_rows
    from storetune.train import train_model

    rows, counts = select_rows(workspace.datasets_dir / "ds-test", "train", ["classify"])
    assert counts == {"classify": 6} and rows == CATALOG_ROWS[:6]

    logged: list[str] = []
    support, _ = train_model(workspace, "support", progress=False, log=logged.append)
    catalog, _ = train_model(
        workspace, "catalog", overrides={"tasks": "classify"}, progress=False, log=print
    )
    s_info = json.loads((support / "version.json").read_text())
    c_info = json.loads((catalog / "version.json").read_text())
    assert s_info["dataset"]["train"] == {"support": 20} and s_info["dataset"]["val"] == {
        "support": 4
    }
    assert c_info["dataset"]["train"] == {"classify": 6} and c_info["tasks"] == ["classify"]
    assert json.loads((catalog / "train_config.json").read_text())["tasks"] == ["classify"]
    assert s_info["base_model_weights_sha256"] == c_info["base_model_weights_sha256"]
    assert len(s_info["base_model_weights_sha256"]) == 64
    assert s_info["dataset_id"] == "ds-test" and s_info["eval"] is None
    # Under 500 examples: a printed warning, and a record in metrics.jsonl and version.json.
    assert any("only 20 training examples" in line for line in logged)
    metrics = [json.loads(x) for x in (support / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["kind"] == "warning" and "20 training examples" in metrics[0]["message"]
    assert s_info["warnings"] == [metrics[0]["message"]]


def test_unknown_task_names_the_tasks_present(workspace):
    from storetune.errors import StoretuneError
    from storetune.train import train_model

    with pytest.raises(StoretuneError, match="has tasks: classify, support"):
        train_model(workspace, "x", overrides={"tasks": "review_extract"}, progress=False)


def test_report_to_tensorboard_logs_the_metrics(workspace):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from storetune.train import train_model

    path, result = train_model(
        workspace, overrides={"report_to": "tensorboard", "epochs": 2}, progress=False
    )
    acc = EventAccumulator(str(path / "tensorboard"))
    acc.Reload()
    events = acc.Scalars("train/loss")
    train = [m for m in result.metrics if m["kind"] == "train"]
    assert [e.step for e in events] == [m["step"] for m in train] and len(train) == result.steps
    assert [e.value for e in events] == pytest.approx([m["loss"] for m in train], abs=1e-5)
    vals = [m["val_loss"] for m in result.metrics if m["kind"] == "val"]
    assert [e.value for e in acc.Scalars("val/loss")] == pytest.approx(vals, abs=1e-5)


def test_report_to_mlflow_without_mlflow_says_how_to_install(workspace, monkeypatch):
    import importlib.util

    from storetune.errors import StoretuneError
    from storetune.train import train_model

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a)
    )
    with pytest.raises(StoretuneError, match="pip install mlflow"):
        train_model(workspace, overrides={"report_to": "mlflow"}, progress=False)


def test_qlora_and_missing_gpu_are_clear_errors_on_cpu(workspace):
    from storetune.errors import StoretuneError
    from storetune.train.loop import setup_runtime

    with pytest.raises(StoretuneError, match="qlora needs a CUDA GPU"):
        setup_runtime(_cfg(qlora=True, device="cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(StoretuneError, match="sees no CUDA GPU"):
            setup_runtime(_cfg(device="cuda"))
        assert setup_runtime(_cfg()).device == "cpu"


_KILL_AT = """
import os, signal, sys
from storetune.train import train_model
from storetune.workspace import Workspace
ws = Workspace.resolve(sys.argv[1])
def die(step):
    if step == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
train_model(ws, "support", overrides={"epochs": 2, "batch_tokens": 64}, progress=False, on_step=die)
"""


def test_kill_9_then_resume_matches_an_uninterrupted_run(workspace):
    from typer.testing import CliRunner

    from storetune.cli import app
    from storetune.models.registry import Registry
    from storetune.train import train_model

    _, full = train_model(
        workspace, "reference", overrides={"epochs": 2, "batch_tokens": 64}, progress=False
    )
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT, str(workspace.root), "5"], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert Registry(workspace.models_dir).versions("support") == []  # nothing half-published
    runner = CliRunner()
    refused = runner.invoke(app, ["-w", str(workspace.root), "train", "--resume", "--epochs", "3"])
    assert refused.exit_code != 0
    assert "--epochs (saved: 2.0, given: 3.0)" in str(refused.exception)
    assert (workspace.models_dir / "support" / ".run" / "checkpoint").exists()  # nothing lost
    # The same value as the saved run is no contradiction.
    out = runner.invoke(app, ["-w", str(workspace.root), "train", "--resume", "--epochs", "2"])
    assert out.exit_code == 0, out.output
    assert "resuming at step 4" in out.output  # checkpoint every 2 steps: step 5 was lost
    # Not a terminal: plain progress lines instead of a bar drawn only at the end.
    assert f"train {full.steps}/{full.steps} loss" in out.output
    info = json.loads((workspace.models_dir / "support" / "v1" / "version.json").read_text())
    assert info["train"]["steps"] == full.steps
    assert abs(info["train"]["best_val_loss"] - full.best_val_loss) <= 0.01 * full.best_val_loss
    assert not (workspace.models_dir / "support" / ".run").exists()


_DIE_WHILE_PUBLISHING = """
import os, signal, sys
import storetune.train as t
from storetune.workspace import Workspace
def die(*a, **k):  # killed after the adapter and version.json are in staging
    os.kill(os.getpid(), signal.SIGKILL)
t.plot_loss = die
t.train_model(Workspace.resolve(sys.argv[1]), "support", progress=False)
"""


def test_killed_while_writing_the_version_leaves_no_version(workspace):
    from storetune.models.registry import Registry
    from storetune.train import train_model

    proc = subprocess.run(
        [sys.executable, "-c", _DIE_WHILE_PUBLISHING, str(workspace.root)], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    staging = workspace.models_dir / "support" / ".staging-v1"
    assert (staging / "version.json").exists()  # it got that far...
    reg = Registry(workspace.models_dir)
    assert reg.versions("support") == [] and reg.names() == []  # ...yet no version exists
    path, _ = train_model(workspace, "support", progress=False)
    assert path.name == "v1" and not staging.exists() and reg.current("support") == 1


_DDP_RANK = """
import json, sys
from pathlib import Path
from storetune.runtime import resolve_base_model
from storetune.config import TrainConfig
from storetune.train.loop import train_lora
model_dir, rows_file, out = sys.argv[1:4]
rows = json.loads(Path(rows_file).read_text())
cfg = TrainConfig.model_validate(json.loads(sys.argv[4]))
r = train_lora(resolve_base_model(model_dir), rows[:20], rows[20:], cfg,
               Path(out) / "run", Path(out) / "adapter", progress=False)
Path(out, "result.json").write_text(json.dumps({"steps": r.steps, "val": r.best_val_loss}))
"""


def test_two_processes_match_one_with_gradient_accumulation(tiny_model_dir, tmp_path):
    """torchrun (what `accelerate launch` runs) with 2 CPU ranks, gloo: each rank takes
    half of every step's micro-batches, so it must equal 1 process with grad_accum=2."""
    base = resolve_base_model(str(tiny_model_dir))
    cfg = dict(
        epochs=1, batch_tokens=64, eval_every=3, seed=1, threads=1, lora_dropout=0.0, lr=5e-3
    )
    single = train_lora(
        base,
        ROWS[:20],
        ROWS[20:],
        _cfg(**cfg, grad_accum=2),
        tmp_path / "r1",
        tmp_path / "one",
        progress=False,
    )
    (tmp_path / "rows.json").write_text(json.dumps(ROWS))
    script = tmp_path / "rank.py"
    script.write_text(_DDP_RANK)
    ddp_cfg = json.dumps({**cfg, "early_stop_patience": 0, "checkpoint_every": 2})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(tiny_model_dir),
            str(tmp_path / "rows.json"),
            str(tmp_path / "ddp"),
            ddp_cfg,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert ddp["steps"] == single.steps > 1
    assert ddp["val"] == pytest.approx(single.best_val_loss, rel=1e-4)
    one = load_file(tmp_path / "one" / "adapter_model.safetensors")
    two = load_file(tmp_path / "ddp" / "adapter" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5), k


def test_skipping_peft_input_cast_under_bf16_changes_no_number(tiny_model_dir):
    """The bf16 path turns off peft's fp32 copy of LoRA inputs; loss and grads must not move."""
    from storetune.train.data import collate
    from storetune.train.loop import assistant_loss, load_model_for_training

    base = resolve_base_model(str(tiny_model_dir))
    model, tok = load_model_for_training(base, _cfg(), use_bf16=True)
    model.train()
    items = [tokenize_chat(tok, r["messages"], 512) for r in ROWS[:4]]
    ids, mask, labels = collate(items, tok.pad_token_id)
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert layers and not any(m.cast_input_dtype_enabled for m in layers)

    def loss_and_grads(cast: bool):
        for m in layers:
            m.cast_input_dtype_enabled = cast
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, n = assistant_loss(model, ids, mask, labels)
        (loss / n).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
        return loss.item(), grads

    fast_loss, fast = loss_and_grads(False)
    slow_loss, slow = loss_and_grads(True)
    assert fast_loss == slow_loss
    assert all(torch.equal(fast[k], slow[k]) for k in fast)


def test_loss_over_the_cached_prefix_equals_the_plain_loss(tiny_model_dir):
    """The shared prompt runs once per batch (runtime's prefix cache): the loss and the
    LoRA gradients equal the plain forward's, and the first reply token keeps its loss."""
    from storetune.train.data import collate
    from storetune.train.loop import assistant_loss, load_model_for_training, shared_prefix_len

    base = resolve_base_model(str(tiny_model_dir))
    model, tok = load_model_for_training(base, _cfg(), use_bf16=False)
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # zero at start: give the prefix's LoRA a gradient to carry
            torch.nn.init.normal_(p, std=0.05)
    model.train()
    system = "You are the shop assistant. Returns within 30 days; shipping $6.95. " * 3
    replies = ["Returns are accepted within 30 days.", "Within 30 days of delivery.", "Yes!"]
    items = [
        tokenize_chat(
            tok,
            [
                {"role": "system", "content": system},
                {"role": "user", "content": "How long do I have to return it?"},
                {"role": "assistant", "content": reply},
            ],
            512,
        )
        for reply in replies
    ]
    first_trained = min(next(i for i, lab in enumerate(t.labels) if lab != IGNORE) for t in items)
    prefix = shared_prefix_len(items)
    # The conversations agree up to the replies: the prefix is as long as the rule allows.
    assert prefix == first_trained - 1 > 20
    ids, mask, labels = collate(items, tok.pad_token_id)

    def loss_and_grads(prefix_len: int):
        model.zero_grad()
        loss, n = assistant_loss(model, ids, mask, labels, prefix_len)
        loss.backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
        return loss.item(), n, grads

    plain_loss, plain_n, plain = loss_and_grads(0)
    cached_loss, cached_n, cached = loss_and_grads(prefix)
    assert cached_n == plain_n == sum(t.trainable for t in items)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    for k in plain:
        torch.testing.assert_close(cached[k], plain[k], rtol=1e-4, atol=1e-6)
    # One token more would swallow the position that predicts the first reply token.
    _, too_far_n = assistant_loss(model, ids, mask, labels, prefix + 1)
    assert too_far_n == plain_n - len(items)
