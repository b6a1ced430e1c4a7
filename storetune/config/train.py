"""The `train:` block of store.yaml: training hyperparameters, each default explained.

Defaults follow common LoRA SFT practice. Where they differ from the upstream
libraries' defaults (transformers.TrainingArguments / peft.LoraConfig) it says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storetune.config.errors import validate_section
from storetune.tasks import CATALOG_TASKS

# Task tags in meta.jsonl, which `train.tasks` selects from. The support adapter trains
# on the conversational tasks; each catalog task has its own tag so it can train its
# own adapter; the catalog tags are the task specs' names (`storetune.tasks`). (Here, at
# the bottom, so the config can name its default without importing the dataset stage.)
SUPPORT_TASKS = (
    "support",  # replies from resolved tickets, category = intent
    "escalation",  # hand-overs with the marker, category = reason
    "lookalike",  # sounds like a hand-over but can be answered, category = topic
    "product_qa",  # category = price|stock|material|care|fit|weight
    "recommend",  # category = occasion|budget|size
    "grounded",  # answer from retrieved snippets, category = question kind
    "no_info",  # category = irrelevant_context|missing_context
    "knowledge",  # from help-center passages, category = answer|no_answer
    "order",  # from synthetic order cards, category = the order's state (or unverified)
    "safety",  # category = fake_product|manipulation|off_topic|injection|negotiation
)
ALL_TASKS = SUPPORT_TASKS + CATALOG_TASKS


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        default_factory=lambda: list(SUPPORT_TASKS),
        description="Task tags (meta.jsonl `task`) this adapter trains on; ['all'] for every "
        "task. Default: the conversational support tasks, so catalog tasks can train their "
        "own adapter on the same base.",
    )

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
        0.05, ge=0, le=0.5, description="Share of steps for linear warm-up (HF default: 0)."
    )
    scheduler: str = Field(
        "cosine", pattern="^(cosine|linear|constant)$", description="LR decay (HF default: linear)."
    )
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
        description="Token budget per micro-batch (padded), examples grouped by length "
        "(HF default: 8 examples per device, padded to the longest).",
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    max_length: int = Field(
        2048,
        ge=32,
        description="Longer examples are truncated from the left (policy prompts are long).",
    )
    eval_every: int | None = Field(
        None, ge=1, description="Validation every N steps; default once per epoch (HF: never)."
    )
    early_stop_patience: int = Field(
        2,
        ge=0,
        description="Stop after this many evaluations without improvement, keeping the best "
        "adapter (0: never; HF: no early stopping).",
    )
    checkpoint_every: int = Field(
        50, ge=1, description="Save a resumable checkpoint every N steps (HF: 500)."
    )
    bf16: str = Field(
        "auto",
        pattern="^(auto|on|off)$",
        description="bf16 autocast; auto = when the CPU/GPU has it (HF default: off).",
    )
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    report_to: str = Field(
        "none",
        pattern="^(none|tensorboard|mlflow)$",
        description="Also log metrics.jsonl's records to TensorBoard or MLflow "
        "(same default as transformers 5: none).",
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto = CUDA when available (under `accelerate launch`, this rank's GPU).",
    )
    qlora: bool = Field(
        False,
        description="Load the frozen base in 4-bit NF4 (bitsandbytes, CUDA only); LoRA "
        "weights stay fp32.",
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, v):
        # "a,b" from the CLI or YAML is as good as a list.
        if isinstance(v, str):
            v = [t.strip() for t in v.split(",") if t.strip()]
        return v

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, v: list[str]) -> list[str]:
        # Tags are checked against the dataset at train time (a store's builders may add
        # tags); here only the shape.
        if not v:
            raise ValueError(f"give at least one task tag or 'all' (known: {', '.join(ALL_TASKS)})")
        return ["all"] if "all" in v else v

    def with_overrides(
        self, overrides: Mapping[str, Any], source: str | Path = "command line"
    ) -> TrainConfig:
        """These options with overrides (command-line options) on top, validated alike."""
        if not overrides:
            return self
        raw = {**self.model_dump(exclude_unset=True), **overrides}
        return validate_section(TrainConfig, raw, source, "train")
