"""Training through the real loop on a tiny Llama: adapters move, the base does not."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from storetune.models.base import resolve_base_model
from storetune.train.config import TrainConfig
from storetune.train.data import IGNORE, length_batches, tokenize_chat
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
