"""The `eval:` block of store.yaml: release gates and the optional LLM judge.

eval:
  gates:
    correct_min: 0.85        # share of replies graded correct
    wrong_max: 0.05          # share graded wrong
    hallucination_max: 0.02  # share with any unsupported claim
    escalation_f1_min: null  # optional
    over_refusal_max: null   # optional
  judge:                     # optional LLM judge, off by default
    enabled: false
    base_url: http://localhost:8000/v1
    model: judge-model
    api_key_env: STORETUNE_JUDGE_API_KEY
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storetune.config.errors import validate_section


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Gates(_Strict):
    correct_min: float = Field(0.85, ge=0, le=1, description="Fail below this share correct.")
    wrong_max: float = Field(0.05, ge=0, le=1, description="Fail above this share wrong.")
    hallucination_max: float = Field(
        0.02, ge=0, le=1, description="Fail above this share of replies with an unsupported claim."
    )
    escalation_f1_min: float | None = Field(None, ge=0, le=1, description="Optional.")
    over_refusal_max: float | None = Field(None, ge=0, le=1, description="Optional.")


class JudgeConfig(_Strict):
    enabled: bool = Field(False, description="Also score replies with an LLM judge.")
    base_url: str = Field("http://localhost:8000/v1", description="OpenAI-compatible API root.")
    model: str = Field("judge", description="Model name sent to the endpoint.")
    api_key_env: str = Field(
        "STORETUNE_JUDGE_API_KEY", description="Environment variable holding the API key."
    )
    timeout_s: float = Field(60.0, gt=0)


class EvalConfig(_Strict):
    gates: Gates = Gates()
    judge: JudgeConfig = JudgeConfig()
    batch_size: int = Field(16, ge=1, description="Conversations per generation batch.")
    engine: Literal["auto", "llamacpp", "torch"] = Field(
        "auto",
        description="What generates the replies graded: as serve.engine (auto: llamacpp "
        "when installed); the GGUF copies use serve.gguf_type.",
    )
    worst_examples: int = Field(12, ge=0, description="Failures shown in the HTML report.")
    system: bool = Field(
        True,
        description="Also grade the deployed system (router, focused prompt, draft, guard, "
        "hand-over rules, confidence) on the same tickets; needs an indexed store.db.",
    )
    system_baseline: bool = Field(
        False,
        description="Also send the base model's drafts through the deployed system (a "
        "second system pass, as long as the version's: a third of eval's time); the "
        "version's system figures and the base's model figures come either way.",
    )
    order_tickets: int = Field(
        30,
        ge=0,
        description="Verified order tickets the system pass drafts, asked about the store's own "
        "orders in store.db (at most 8 per status kind; never written to a dataset); up to 8 "
        "unverified ones per kind get routing's fixed reply, with no generation. 0: none.",
    )


def eval_config(raw: Any, source: str = "store.yaml") -> EvalConfig:
    """An `eval:` block validated on its own; errors name the field as 'eval.…'."""
    return validate_section(EvalConfig, raw or {}, source, "eval")
