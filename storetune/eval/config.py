"""Moved to storetune.config.eval and eval/gates.py; re-exported until branches merge."""

from storetune.config.eval import EvalConfig, Gates, JudgeConfig, eval_config  # noqa: F401
from storetune.eval.gates import GateResult, check_gates  # noqa: F401
