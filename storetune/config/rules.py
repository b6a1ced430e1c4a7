"""Policies from a merchant's own rules file (JSON or YAML).

Merchants keep refund, shipping, sizing and care rules in files of their own, with
their own key names. `load_rules` maps the common names onto store.yaml's `policies`
schema; a key it does not recognise is kept as a free-text rule (rendered into the
system prompt), so nothing in the file is silently dropped.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from storetune.config.errors import config_error
from storetune.config.policies import (
    Contact,
    DamagedItems,
    Exchanges,
    Loyalty,
    Policies,
    Returns,
    Shipping,
)
from storetune.errors import StoretuneError
from storetune.facts import EMAIL

__all__ = ["apply_rules", "describe_rules", "load_rules"]


def _invert(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    # Every canonical name is also its own alias.
    return {alias: name for name, aliases in table.items() for alias in (name, *aliases)}


# Top-level merchant keys -> a `policies` field.
SECTION_OF = _invert(
    {
        "returns": ("return_policy", "refund_policy", "returns_policy", "refunds", "refund", "return"),
        "exchanges": ("exchange_policy", "exchange"),
        "damaged_items": ("damaged", "damages", "damage_policy", "damaged_or_missing", "defective_items"),
        "shipping": ("shipping_policy", "delivery", "delivery_policy"),
        "loyalty": ("loyalty_program", "rewards", "rewards_program"),
        "size_guide": ("size_chart", "size_charts", "sizing", "size_guides", "fit_guide"),
        "care": ("care_instructions", "care_guide", "washing"),
        "price_match": ("price_matching", "price_adjustment"),
        "cancellations": ("cancellation", "cancellation_policy"),
        "address_changes": ("address_change",),
        "order_status": ("order_tracking",),
        "contact": ("contact_info", "customer_service"),
        "changes": ("policy_changes",),
    }
)  # fmt: skip

# Top-level merchant keys that name one field inside a section.
FIELD_OF = {
    "shipping_zones": "shipping.zones",
    "free_shipping_threshold": "shipping.free_threshold",
    "free_shipping_over": "shipping.free_threshold",
    "free_shipping_minimum": "shipping.free_threshold",
    "processing_time": "shipping.processing_days",
    "processing_days": "shipping.processing_days",
    "currency": "shipping.currency",
    "return_window": "returns.window_days",
    "return_window_days": "returns.window_days",
    "support_email": "contact.email",
    "contact_email": "contact.email",
    "support_phone": "contact.phone",
    "support_hours": "contact.hours",
}

# Keys inside a section -> the schema field.
SUB_FIELDS = {
    "returns": _invert(
        {
            "window_days": ("window", "days", "return_window", "return_window_days", "return_days"),
            "condition": ("conditions", "item_condition"),
            "sale_items_final": ("final_sale", "sale_final"),
            "refund_days": ("refund_within_days", "refund_time", "refund_processing_days"),
            "return_shipping": ("return_label", "return_shipping_cost"),
        }
    ),
    "exchanges": _invert(
        {"allowed": ("enabled",), "window_days": ("window", "days"), "notes": ("note", "details")}
    ),
    "damaged_items": _invert(
        {"report_within_days": ("report_within", "report_days", "window_days"), "remedy": ()}
    ),
    "shipping": _invert(
        {
            "currency": (),
            "free_threshold": ("free_shipping_threshold", "free_shipping_over", "free_over"),
            "processing_days": ("processing_time", "handling_days", "handling_time"),
            "zones": ("shipping_zones", "rates"),
        }
    ),
    "loyalty": _invert({"name": ("program",), "earn": ("earning",), "redeem": ("redemption",)}),
    "contact": _invert(
        {
            "email": ("support_email", "contact_email"),
            "phone": ("telephone", "tel", "support_phone"),
            "hours": ("support_hours", "opening_hours"),
        }
    ),
}

ZONE_FIELDS = _invert(
    {
        "name": ("zone", "zone_name", "title"),
        "cost": ("price", "rate", "fee"),
        "days": ("delivery_days", "delivery_time", "transit_days", "transit_time", "eta"),
        "regions": ("countries", "areas", "states"),
        "days_min": ("min_days",),
        "days_max": ("max_days",),
    }
)

MODELS: dict[str, type[BaseModel]] = {
    "returns": Returns,
    "exchanges": Exchanges,
    "damaged_items": DamagedItems,
    "shipping": Shipping,
    "loyalty": Loyalty,
    "contact": Contact,
}
# The plain-text fields: a dict or table given for one is rendered to text.
TEXT_FIELDS = {n for n, f in Policies.model_fields.items() if f.annotation is str}
for _name in Policies.model_fields:
    SECTION_OF.setdefault(_name, _name)


# --- reading ------------------------------------------------------------------------


def load_rules(path: Path) -> dict[str, Any]:
    """The rules file as a `policies` mapping (not yet validated; see apply_rules)."""
    return _map(path, _read(path))[0]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StoretuneError(
            f"{path}: policy rules file not found",
            hint="check the path given to --policies or sources.policies in store.yaml",
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise StoretuneError(f"{path}: not UTF-8 text (byte {e.start})") from None
    as_json = path.suffix.lower() == ".json" or (
        path.suffix.lower() not in {".yaml", ".yml"} and text.lstrip().startswith("{")
    )
    raw = _parse_json(path, text) if as_json else _parse_yaml(path, text)
    if isinstance(raw, dict) and set(raw) == {"policies"} and isinstance(raw["policies"], dict):
        raw = raw["policies"]  # an export wrapped in one top-level key
    if not isinstance(raw, dict):
        raise StoretuneError(f"{path}: expected a mapping of policy names to rules")
    return raw


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StoretuneError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or e
        raise StoretuneError(f"{path}{where}: not valid YAML ({problem})") from None


# --- mapping ------------------------------------------------------------------------


def _norm(key: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_") or str(key)


def _map(path: Path, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    rules = _Rules(path)
    for key, value in raw.items():
        k = _norm(key)
        if k in SECTION_OF:
            rules.section(SECTION_OF[k], value, str(key))
        elif k in FIELD_OF:
            section, name = FIELD_OF[k].split(".")
            rules.section_field(section, name, value, str(key))
        else:
            rules.put(k, value, str(key))  # unknown: a free-text rule
    return rules.data, rules.origin


class _Rules:
    """The mapped rules plus, per dotted field, the merchant key it came from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.origin: dict[str, str] = {}

    def put(self, dotted: str, value: Any, key: str) -> None:
        *parents, leaf = dotted.split(".")
        node = self.data
        for p in parents:
            node = node.setdefault(p, {})
        # Two aliases for one field with different values: refuse rather than guess.
        if leaf in node and node[leaf] != value:
            raise StoretuneError(
                f"{self.path}: '{self.origin[dotted]}' and '{key}' both set {dotted}",
                hint="keep one of them",
            )
        node[leaf] = value
        self.origin[dotted] = key

    def section(self, section: str, value: Any, key: str) -> None:
        if section in TEXT_FIELDS:
            self.put(section, _text(value), key)
        elif section in MODELS and isinstance(value, dict):
            for k, v in value.items():
                self.section_field(section, k, v, key)
        elif section == "shipping" and isinstance(value, list):
            self.zones(value, key)
        elif section == "contact" and isinstance(value, str) and EMAIL.fullmatch(value.strip()):
            self.put("contact.email", value.strip(), key)
        elif section in MODELS and isinstance(value, str):
            self.prose(section, value, key)
        else:
            self.put(section, value, key)  # anything else: the schema says what is wrong

    def section_field(self, section: str, name: str, value: Any, key: str) -> None:
        field = SUB_FIELDS[section].get(_norm(name))
        if field is None:  # unknown inside a known section: still a rule, as free text
            self.put(f"{section}_{_norm(name)}", value, key)
        elif field == "zones":
            self.zones(value, key)
        else:
            self.put(f"{section}.{field}", _coerce(MODELS[section], field, value), key)

    def prose(self, section: str, text: str, key: str) -> None:
        """A section written as a sentence: kept whole, plus the numbers we can read."""
        self.put(_norm(key) if _norm(key) != section else f"{section}_policy", text, key)
        period = _period(text)
        if section in ("returns", "exchanges") and period:
            self.put(f"{section}.window_days", period[0], key)
        elif section == "damaged_items" and period:
            self.put("damaged_items.report_within_days", period[0], key)
        elif section == "contact" and (m := EMAIL.search(text)):
            self.put("contact.email", m.group(0), key)
        elif section == "shipping" and (m := re.search(r"free[^.]*?over\s*\D?(\d[\d.,]*)", text)):
            self.put("shipping.free_threshold", _number(m.group(1)), key)

    def zones(self, value: Any, key: str) -> None:
        if isinstance(value, dict):  # {"Canada": {...}} or {"Canada": 19.95}
            value = [
                {"name": n, **(z if isinstance(z, dict) else {"cost": z})} for n, z in value.items()
            ]
        if not isinstance(value, list):
            self.put("shipping.zones", value, key)
            return
        notes: list[str] = []
        zones = [_zone(z, notes) if isinstance(z, dict) else z for z in value]
        self.put("shipping.zones", zones, key)
        if notes:
            self.put("shipping_zone_notes", notes, key)


def _zone(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    zone: dict[str, Any] = {}
    for k, v in raw.items():
        field = ZONE_FIELDS.get(_norm(k))
        if field == "days":
            zone["days_min"], zone["days_max"] = _day_range(v)
        elif field == "cost":
            zone["cost"] = _number(v)
        elif field == "regions":
            zone["regions"] = [s.strip() for s in v.split(",")] if isinstance(v, str) else v
        elif field in ("days_min", "days_max"):
            zone[field] = _to_int(v)
        elif field:
            zone[field] = v
        else:  # carrier, notes…: the zone line cannot hold it, the free text can
            notes.append(f"{raw.get('name') or raw.get('zone') or 'zone'} {k}: {_text(v)}")
    return zone


# --- values -------------------------------------------------------------------------

_PERIOD = re.compile(
    r"(\d+)(?:\s*(?:-|–|—|to)\s*(\d+))?[\s-]*(?:business |working |calendar )?(day|week|month)s?\b",
    re.IGNORECASE,
)
_RANGE = re.compile(r"^\s*(\d+)(?:\s*(?:-|–|—|to)\s*(\d+))?\s*$")
_SCALE = {"day": 1, "week": 7, "month": 30}


def _period(text: str) -> tuple[int, int] | None:
    """(low, high) days from '30 days', '3–5 business days', '2 weeks', '3-5'."""
    m = _PERIOD.search(text)
    scale = _SCALE[m.group(3).lower()] if m else 1
    m = m or _RANGE.match(text)
    if not m:
        return None
    low = int(m.group(1))
    return low * scale, int(m.group(2) or low) * scale


def _day_range(value: Any) -> tuple[Any, Any]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _to_int(value[0]), _to_int(value[1])
    period = _period(value) if isinstance(value, str) else None
    return period or (value, value)  # unreadable: validation names the field


def _to_int(value: Any) -> Any:
    if isinstance(value, str) and (period := _period(value)):
        return period[0]
    return value


def _number(value: Any) -> Any:
    """6.95 from '$6.95', '6,95 €' or 'USD 6.95'; 0 from 'free'."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() == "free":
        return 0.0
    m = re.search(r"\d+(?:[.,]\d+)*", value)
    if not m:
        return value
    token = m.group(0)
    if "." not in token and re.fullmatch(r"\d+,\d{2}", token):
        token = token.replace(",", ".")  # a decimal comma, as in 6,95
    return float(token.replace(",", ""))


def _coerce(model: type[BaseModel], field: str, value: Any) -> Any:
    annotation = model.model_fields[field].annotation
    kinds = set(annotation.__args__) if isinstance(annotation, types.UnionType) else {annotation}
    if int in kinds:
        return _to_int(value)
    if float in kinds:
        return _number(value)
    if kinds == {str} and isinstance(value, (dict, list)):
        return _text(value)
    return value


def _text(value: Any, depth: int = 0) -> str:
    """A compact one-line rendering of a string, mapping or table (size charts)."""
    if isinstance(value, dict):
        if depth == 0:
            return "; ".join(f"{k}: {_text(v, 1)}" for k, v in value.items())
        return ", ".join(_labelled(k, v, depth) for k, v in value.items())
    if isinstance(value, list):
        rows = value
        if rows and all(isinstance(r, list) for r in rows):  # header row, then rows
            rows = [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
        sep = "; " if depth == 0 else ", "
        if rows and all(isinstance(r, dict) for r in rows):
            return sep.join(_row(r, depth) for r in rows)
        return ", ".join(_text(v, depth + 1) for v in rows)
    return "" if value is None else str(value).strip()


def _labelled(key: Any, value: Any, depth: int) -> str:
    inner = _text(value, depth + 1)
    return f"{key} ({inner})" if isinstance(value, (dict, list)) else f"{key} {inner}"


def _row(row: dict[str, Any], depth: int) -> str:
    # The first column labels the row: "S (chest 34-36 in, waist 28-30 in)".
    label, *rest = row.items()
    if not rest:
        return _text(label[1], depth + 1)
    return f"{_text(label[1], depth + 1)} ({_text(dict(rest), depth + 1)})"


# --- merging ------------------------------------------------------------------------


def apply_rules(policies: Policies, path: Path) -> Policies:
    """store.yaml's policies with the rules file merged over them (the file wins)."""
    rules, origin = _map(path, _read(path))
    merged = _merge(policies.model_dump(mode="json"), rules)
    try:
        return Policies.model_validate(merged)
    except ValidationError as e:
        raise config_error(path, e, via=_merchant_key(origin)) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        both_dicts = isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = _merge(out[k], v) if both_dicts else v
    return out


def _merchant_key(origin: dict[str, str]) -> Callable[[str], str | None]:
    """For an error on a field: the rules-file key it came from, when named differently."""

    def key_of(field: str) -> str | None:
        source = next((origin[p] for p in _prefixes(field) if p in origin), None)
        return source if source and _norm(source) != field else None

    return key_of


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def describe_rules(path: Path) -> dict[str, Any]:
    """For the ingest report: the policy fields the file sets and its free-text keys."""
    rules = load_rules(path)
    fields: list[str] = []
    for k, v in rules.items():
        nested = k in MODELS and isinstance(v, dict)
        fields += [f"{k}.{sub}" for sub in v] if nested else [k]
    free = [k for k in rules if k not in Policies.model_fields]
    return {"path": str(path), "fields": fields, "free_text": free}
