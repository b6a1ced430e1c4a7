"""store.yaml's schema, at the bottom of the package: every stage reads its options here.

    store.py     StoreConfig (the whole file), brand, escalation, sources; load_config
    policies.py  the `policies:` block
    rules.py     a merchant's own policy rules file mapped onto `policies:`
    build.py, train.py, eval.py, serve.py   the typed stage sections
    errors.py    the one error format: `<file>: field 'train.lr': <what is wrong>`

This package imports no stage.
"""

from storetune.config.build import BuildConfig, ParaphraseConfig, SafetyMix, TaskMix
from storetune.config.errors import config_error, format_errors, validate_section
from storetune.config.eval import EvalConfig, Gates, JudgeConfig, eval_config
from storetune.config.policies import (
    Contact,
    DamagedItems,
    Exchanges,
    Loyalty,
    Policies,
    PolicyChange,
    Returns,
    Shipping,
    ShippingZone,
)
from storetune.config.rules import apply_rules, describe_rules, load_rules
from storetune.config.serve import ReviewUser, ServeConfig
from storetune.config.store import (
    CONFIG_NAME,
    DEFAULT_BASE_MODEL,
    Brand,
    Escalation,
    EscalationTopic,
    Sources,
    StoreConfig,
    load_config,
    read_config,
    read_yaml,
    record_source,
)
from storetune.config.train import TrainConfig

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_BASE_MODEL",
    "Brand",
    "BuildConfig",
    "Contact",
    "DamagedItems",
    "Escalation",
    "EscalationTopic",
    "EvalConfig",
    "Exchanges",
    "Gates",
    "JudgeConfig",
    "Loyalty",
    "ParaphraseConfig",
    "Policies",
    "PolicyChange",
    "Returns",
    "ReviewUser",
    "SafetyMix",
    "ServeConfig",
    "Shipping",
    "ShippingZone",
    "Sources",
    "StoreConfig",
    "TaskMix",
    "TrainConfig",
    "apply_rules",
    "config_error",
    "describe_rules",
    "eval_config",
    "format_errors",
    "load_config",
    "load_rules",
    "read_config",
    "read_yaml",
    "record_source",
    "validate_section",
]
