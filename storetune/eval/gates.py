"""Release gates: each configured threshold (store.yaml `eval.gates`) against a summary."""

from __future__ import annotations

from dataclasses import dataclass

from storetune.config.eval import Gates


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
