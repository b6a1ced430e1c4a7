"""store.yaml: the whole schema, read and validated in one go.

Every section is typed here, so a typo anywhere in the file (`train.lr: fast`) stops
any command that loads the workspace, naming the file and the field, instead of
surfacing later in the one stage that reads that section.
"""

from __future__ import annotations

from itertools import takewhile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from storetune.config.build import BuildConfig
from storetune.config.errors import validate_section
from storetune.config.eval import EvalConfig
from storetune.config.policies import Policies
from storetune.config.rules import apply_rules
from storetune.config.serve import ServeConfig
from storetune.config.train import TrainConfig
from storetune.errors import StoretuneError
from storetune.io import atomic_write_text

CONFIG_NAME = "store.yaml"
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Brand(_Strict):
    name: str = Field(description="Store name as customers know it.")
    voice: str = Field(description="How replies should sound, in a sentence or two.")
    sign_off: str = Field("", description="Closing line of every reply, e.g. '— The Acme team'.")
    website: str = Field("", description="Store URL, the only URL replies may mention.")


class EscalationTopic(_Strict):
    name: str
    reason: str
    keywords: list[str] = Field(description="Lower-case phrases that force a hand-over.")


TEMPLATE_FIELDS = ("brand", "email", "phone", "hours", "website")


class Escalation(_Strict):
    marker: str = Field("[ESCALATE]", description="Token sequence the model emits to hand over.")
    always: list[EscalationTopic] = []
    handover: str = Field(
        "Thanks for your message. A member of our team will check the details and get back "
        "to you shortly.",
        description="What the customer is told when a person takes over and the draft did not "
        "already say so; placeholders as in `templates`.",
    )
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Fixed replies by ticket kind (e.g. legal_threat, fraud_chargeback, "
        "safety_incident): the router sends the template instead of a generated draft. "
        "Placeholders {brand} {email} {phone} {hours} {website} are filled from store.yaml.",
    )

    @field_validator("handover")
    @classmethod
    def _handover_placeholders(cls, text: str) -> str:
        _check_placeholders(text)
        return text

    @field_validator("templates")
    @classmethod
    def _known_placeholders(cls, templates: dict[str, str]) -> dict[str, str]:
        for text in templates.values():
            _check_placeholders(text)
        return templates


def _check_placeholders(text: str) -> None:
    import string

    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )


class Sources(_Strict):
    products: str | None = Field(
        None, description="Shopify product CSV/JSON, relative to store.yaml."
    )
    tickets: str | None = Field(None, description="Helpdesk export file or directory.")
    tickets_format: str = Field("auto", description="auto, zendesk, …")
    orders: str | None = Field(
        None, description="Shopify orders CSV or Admin REST order JSON (store.db only)."
    )
    knowledge: str | None = Field(
        None,
        description="Help-center export (Zendesk Help Center or Shopify pages/blog JSON) "
        "or a folder of Markdown/HTML articles.",
    )
    policies: str | None = Field(
        None, description="Policy rules file (JSON or YAML); merged over `policies`, wins."
    )


class StoreConfig(_Strict):
    brand: Brand
    policies: Policies = Policies()
    escalation: Escalation = Escalation()
    sources: Sources = Sources()
    base_model: str = Field(
        DEFAULT_BASE_MODEL, description="Model name, local directory or hub id."
    )
    seed: int = 0
    build: BuildConfig = Field(
        default_factory=BuildConfig, description="Dataset builder options (config/build.py)."
    )
    train: TrainConfig = Field(
        default_factory=TrainConfig, description="Training options (config/train.py)."
    )
    eval: EvalConfig = Field(
        default_factory=EvalConfig, description="Evaluation options (config/eval.py)."
    )
    serve: ServeConfig = Field(
        default_factory=ServeConfig, description="storetune serve options (config/serve.py)."
    )


def read_config(path: Path) -> StoreConfig:
    """store.yaml alone, every section validated; errors name the file and field."""
    return validate_section(StoreConfig, read_yaml(path), path)


def load_config(path: Path, policies: Path | None = None) -> StoreConfig:
    """store.yaml validated whole, with its policy rules file merged over `policies`.

    The rules file is `policies`, else sources.policies; its errors name that file.
    """
    cfg = read_config(path)
    rules = policies or (path.parent / cfg.sources.policies if cfg.sources.policies else None)
    if rules is None:
        return cfg
    return cfg.model_copy(update={"policies": apply_rules(cfg.policies, rules)})


def read_yaml(path: Path) -> dict[str, Any]:
    """store.yaml as a mapping, not yet validated."""
    if not path.exists():
        raise StoretuneError(
            f"{path}: no store config found",
            hint="run 'storetune init' or 'storetune demo-store DIR' to create one",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise StoretuneError(
            f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})"
        ) from None
    if not isinstance(raw, dict):
        raise StoretuneError(f"{path}: expected a mapping at the top level")
    return raw


def record_source(path: Path, what: str, value: str) -> None:
    """Set sources.<what> in store.yaml, touching nothing else but the formatting."""
    text = path.read_text(encoding="utf-8")
    raw = read_yaml(path)
    raw["sources"] = {**(raw.get("sources") or {}), what: value}
    # The leading comment block is kept; yaml.safe_dump would drop it.
    lines = text.splitlines(keepends=True)
    header = "".join(takewhile(lambda line: line.startswith("#"), lines))
    body = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=88)
    atomic_write_text(path, header + body)  # a killed run never leaves half a store.yaml
