"""Workspace paths and the store.yaml schema.

A workspace is one directory per store (see docs/architecture.md). Everything read from
store.yaml is validated here so later stages can trust it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storetune.errors import StoretuneError
from storetune.serve.config import ServeConfig

CONFIG_NAME = "store.yaml"
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Brand(_Strict):
    name: str = Field(description="Store name as customers know it.")
    voice: str = Field(description="How replies should sound, in a sentence or two.")
    sign_off: str = Field("", description="Closing line of every reply, e.g. '— The Acme team'.")
    website: str = Field("", description="Store URL, the only URL replies may mention.")


class Returns(_Strict):
    window_days: int = Field(30, ge=0, description="Days after delivery a return is accepted.")
    condition: str = "unused, with original tags"
    sale_items_final: bool = Field(True, description="Sale (discounted) items cannot be returned.")
    refund_days: int = Field(5, ge=0, description="Business days to refund once received.")
    return_shipping: str = "free prepaid return label"


class Exchanges(_Strict):
    allowed: bool = True
    window_days: int = Field(30, ge=0)
    notes: str = ""


class DamagedItems(_Strict):
    report_within_days: int = Field(7, ge=0, description="Days to report damage or a missing item.")
    remedy: str = "a free replacement or a full refund; a photo of the damage is needed"


class ShippingZone(_Strict):
    name: str
    regions: list[str] = []
    cost: float = Field(ge=0, description="Standard shipping cost in the store currency.")
    days_min: int = Field(ge=0)
    days_max: int = Field(ge=0)


class Shipping(_Strict):
    currency: str = "USD"
    free_threshold: float | None = Field(
        None, description="Order value for free standard shipping."
    )
    processing_days: int = Field(1, ge=0, description="Business days before an order ships.")
    zones: list[ShippingZone] = []


class Loyalty(_Strict):
    name: str
    earn: str
    redeem: str


class Contact(_Strict):
    email: str
    phone: str = ""
    hours: str = ""


class PolicyChange(_Strict):
    date: str = Field(description="ISO date the change took effect.")
    field: str = Field(description="Dotted policy field, e.g. returns.window_days.")
    old: Any
    new: Any


class Policies(BaseModel):
    # Unknown keys are kept (extra="allow") and rendered as free text rules.
    model_config = ConfigDict(extra="allow")

    returns: Returns = Returns()
    exchanges: Exchanges = Exchanges()
    damaged_items: DamagedItems = DamagedItems()
    shipping: Shipping = Shipping()
    loyalty: Loyalty | None = None
    size_guide: str = ""
    care: str = ""
    price_match: str = ""
    cancellations: str = ""
    address_changes: str = ""
    order_status: str = ""
    contact: Contact | None = None
    changes: list[PolicyChange] = Field(
        default_factory=list,
        description="Past policy changes, newest last (used to spot stale answers).",
    )

    def extra_rules(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EscalationTopic(_Strict):
    name: str
    reason: str
    keywords: list[str] = Field(description="Lower-case phrases that force a hand-over.")


class Escalation(_Strict):
    marker: str = Field("[ESCALATE]", description="Token sequence the model emits to hand over.")
    always: list[EscalationTopic] = []


class Sources(_Strict):
    products: str | None = Field(
        None, description="Shopify product CSV/JSON, relative to store.yaml."
    )
    tickets: str | None = Field(None, description="Helpdesk export file or directory.")
    tickets_format: str = Field("auto", description="auto, zendesk, …")
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
    build: dict[str, Any] = Field(default_factory=dict, description="Dataset builder options.")
    train: dict[str, Any] = Field(
        default_factory=dict, description="Training options (TrainConfig)."
    )
    eval: dict[str, Any] = Field(default_factory=dict, description="Evaluation options.")
    serve: ServeConfig = Field(
        default_factory=ServeConfig, description="storetune serve options (serve/config.py)."
    )


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid store config"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        lines.append(f"  field '{loc}': {e['msg']}")
    return "\n".join(lines)


def load_config(path: Path, policies: Path | None = None) -> StoreConfig:
    """Read and validate a store.yaml; errors name the file and field.

    A policy rules file (`policies`, else sources.policies) is merged over the
    `policies` block; its errors name the rules file.
    """
    raw = _read_yaml(path)
    try:
        cfg = StoreConfig.model_validate(raw)
    except ValidationError as e:
        raise StoretuneError(_format_validation_error(path, e)) from None
    rules = policies or (path.parent / cfg.sources.policies if cfg.sources.policies else None)
    if rules is None:
        return cfg
    # Imported here: storetune.store.policies maps onto this module's schema.
    from storetune.store.policies import apply_rules

    return cfg.model_copy(update={"policies": apply_rules(cfg.policies, rules)})


def _read_yaml(path: Path) -> dict[str, Any]:
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
    raw = _read_yaml(path)
    raw["sources"] = {**(raw.get("sources") or {}), what: value}
    # The leading comment block is kept; yaml.safe_dump would drop it.
    lines = text.splitlines(keepends=True)
    header = "".join(takewhile(lambda line: line.startswith("#"), lines))
    body = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=88)
    # temp file + rename: a killed run never leaves half a store.yaml
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    os.replace(tmp, path)


def dump_config(cfg: StoreConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=False), sort_keys=False)


@dataclass(frozen=True)
class Workspace:
    """Paths inside one store's workspace directory."""

    root: Path

    @classmethod
    def resolve(cls, root: str | Path | None = None) -> Workspace:
        chosen = root or os.environ.get("STORETUNE_WORKSPACE") or "."
        return cls(Path(chosen).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def db_path(self) -> Path:
        return self.root / "store.db"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def config(self, policies: Path | None = None) -> StoreConfig:
        return load_config(self.config_path, policies)

    def source_path(self, rel: str | None, what: str) -> Path:
        if not rel:
            raise StoretuneError(
                f"{self.config_path}: field 'sources.{what}' is not set",
                hint=f"set sources.{what} in store.yaml or pass the path on the command line",
            )
        p = Path(rel)
        return p if p.is_absolute() else (self.root / p)


def cache_dir() -> Path:
    """Where converted base models live (STORETUNE_CACHE, else the user cache dir)."""
    env = os.environ.get("STORETUNE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "storetune"
