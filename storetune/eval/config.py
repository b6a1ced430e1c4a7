"""Evaluation options from store.yaml's `eval:` block, validated, with release gates.

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

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storetune.errors import StoretuneError


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
    worst_examples: int = Field(12, ge=0, description="Failures shown in the HTML report.")


def eval_config(raw: dict, source: str = "store.yaml") -> EvalConfig:
    """Validate the `eval:` block; errors name the field."""
    try:
        return EvalConfig.model_validate(raw or {})
    except ValidationError as e:
        lines = [f"{source}: invalid eval options"]
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  field 'eval.{loc}': {err['msg']}")
        raise StoretuneError("\n".join(lines)) from None


@dataclass
class GateResult:
    name: str
    value: float | None
    threshold: float
    passed: bool
    op: str  # ">=" or "<="

    def message(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.1%}"
        state = "passed" if self.passed else "FAILED"
        return f"{self.name} {shown} (needs {self.op} {self.threshold:.1%}): {state}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "passed": self.passed,
        }


def check_gates(summary: dict, gates: Gates) -> list[GateResult]:
    """Each configured gate against one model's summary."""
    spec = [
        ("correct", summary.get("correct"), gates.correct_min, ">="),
        ("wrong", summary.get("wrong"), gates.wrong_max, "<="),
        ("hallucination", summary.get("hallucination"), gates.hallucination_max, "<="),
        ("escalation_f1", summary.get("escalation_f1"), gates.escalation_f1_min, ">="),
        ("over_refusal", summary.get("over_refusal"), gates.over_refusal_max, "<="),
    ]
    out = []
    for name, value, threshold, op in spec:
        if threshold is None:
            continue
        if value is None:
            # nothing to measure (e.g. no escalation cases): not a failure
            out.append(GateResult(name, None, threshold, True, op))
            continue
        ok = value >= threshold if op == ">=" else value <= threshold
        out.append(GateResult(name, value, threshold, ok, op))
    return out
