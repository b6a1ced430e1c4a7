"""Training hyperparameters: typed, validated, each default explained.

Defaults follow common LoRA SFT practice. Where they differ from the upstream
libraries' defaults (transformers.TrainingArguments / peft.LoraConfig) it says so.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(3.0, gt=0, description="Passes over the train split (HF default: 3).")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    lr: float = Field(
        2e-4,
        gt=0,
        description="Peak learning rate (HF default 5e-5 suits full fine-tuning, not LoRA).",
    )
    warmup_ratio: float = Field(
        0.05, ge=0, le=0.5, description="Share of steps for linear warm-up."
    )
    scheduler: str = Field("cosine", pattern="^(cosine|linear|constant)$")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    lora_r: int = Field(16, ge=1, description="LoRA rank (peft default: 8).")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (peft default: 8).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="peft default: 0.0.")
    target_modules: str | list[str] = Field(
        "all-linear", description="'all-linear' (peft default targets attention only) or names."
    )
    batch_tokens: int = Field(
        4096,
        ge=64,
        description="Token budget per micro-batch (padded), examples grouped by length.",
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_length: int = Field(
        2048,
        ge=32,
        description="Longer examples are truncated from the left (policy prompts are long).",
    )
    eval_every: int | None = Field(
        None, ge=1, description="Validation every N steps; default once per epoch."
    )
    early_stop_patience: int = Field(
        2, ge=0, description="Stop after this many evaluations without improvement (0: never)."
    )
    checkpoint_every: int = Field(
        50, ge=1, description="Save a resumable checkpoint every N steps."
    )
    bf16: str = Field(
        "auto",
        pattern="^(auto|on|off)$",
        description="bf16 autocast; auto = when the CPU/GPU has it.",
    )
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
