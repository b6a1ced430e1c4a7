"""Policies from a merchant's rules file: aliases, merging, errors, `ingest --policies`."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from storetune.chat.prompt import render_system_prompt
from storetune.cli import app
from storetune.config import load_config, load_rules
from storetune.errors import StoretuneError
from storetune.workspace import Workspace

RULES_JSON = {
    "Refund Policy": "Returns are accepted within 45 days of delivery for unworn items.",
    "shipping_zones": [
        {"zone": "Domestic", "price": "$5.50", "delivery_days": "3–5 business days"},
        {"name": "Europe", "rate": 24, "days": "6-9", "regions": "FR, DE", "carrier": "DHL"},
    ],
    "free_shipping_over": "$100",
    "size_chart": [
        {"size": "S", "chest": "34-36 in", "waist": "28-30 in"},
        {"size": "M", "chest": "38-40 in", "waist": "31-33 in"},
    ],
    "care_instructions": "Hand wash wool in cold water.",
    "support_email": "help@pine.example",
    "gift_wrap": "Gift wrapping costs $5 per order.",
}

RULES_YAML = """\
return_policy:
  window: 21 days
  conditions: unworn with tags
shipping:
  zones:
    - name: Mainland
      cost: 4.95
      days: 2-4
  free_shipping_threshold: 60
size_guide:
  Tops: {S: chest 36 in, M: chest 40 in}
  Boots: whole EU sizes 38-46
care: Brush off mud and air dry.
contact:
  email: hi@pine.example
  phone: "+1 555 0100"
engraving: Engraved items cannot be returned.
"""


def _store(root, policies_rel: str | None = None, policies: dict | None = None):
    cfg = {"brand": {"name": "Pine Co", "voice": "Warm."}}
    if policies is not None:
        cfg["policies"] = policies
    if policies_rel:
        cfg["sources"] = {"policies": policies_rel}
    root.mkdir(parents=True, exist_ok=True)
    (root / "store.yaml").write_text(yaml.safe_dump(cfg))
    return Workspace(root)


def test_json_rules_with_aliases_reach_the_system_prompt(tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps(RULES_JSON))
    prompt = render_system_prompt(_store(tmp_path, "rules.json").config())
    assert "within 45 days of delivery" in prompt
    assert "Shipping to Domestic: $5.50, 3-5 business days." in prompt
    assert "Shipping to Europe: $24.00, 6-9 business days." in prompt
    assert "Free standard shipping on orders over $100.00." in prompt
    assert "Sizing: S (chest 34-36 in, waist 28-30 in); M (chest 38-40 in" in prompt
    assert "Care: Hand wash wool in cold water." in prompt
    assert "Contact: help@pine.example" in prompt
    # Unknown keys and the prose original are kept as free-text rules.
    assert "Gift wrap: Gift wrapping costs $5 per order." in prompt
    assert "Refund policy: Returns are accepted within 45 days" in prompt
    assert "Europe carrier: DHL" in prompt


def test_yaml_rules_with_aliases_reach_the_system_prompt(tmp_path):
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "rules.yaml").write_text(RULES_YAML)
    cfg = _store(tmp_path, "policies/rules.yaml").config()
    assert cfg.policies.returns.window_days == 21
    assert cfg.policies.returns.condition == "unworn with tags"
    prompt = render_system_prompt(cfg)
    assert "within 21 days of delivery, unworn with tags" in prompt
    assert "Shipping to Mainland: $4.95, 2-4 business days." in prompt
    assert "orders over $60.00" in prompt
    assert "Sizing: Tops: S chest 36 in, M chest 40 in; Boots: whole EU sizes 38-46" in prompt
    assert "Engraving: Engraved items cannot be returned." in prompt
    assert "Contact: hi@pine.example, +1 555 0100." in prompt


def test_rules_file_overrides_store_yaml(tmp_path):
    (tmp_path / "rules.yaml").write_text("returns:\n  window_days: 14\ncare: Rinse only.\n")
    base = {"returns": {"window_days": 60, "refund_days": 3}, "care": "Dry clean.", "x": "kept"}
    cfg = _store(tmp_path, "rules.yaml", base).config()
    assert cfg.policies.returns.window_days == 14  # the file wins
    assert cfg.policies.returns.refund_days == 3  # store.yaml fields it does not set stay
    assert cfg.policies.care == "Rinse only."
    assert cfg.policies.extra_rules() == {"x": "kept"}


def test_bad_field_type_names_file_and_field(tmp_path):
    (tmp_path / "rules.json").write_text(json.dumps({"returns": {"window_days": "soon"}}))
    with pytest.raises(StoretuneError) as e:
        _store(tmp_path, "rules.json").config()
    msg = str(e.value)
    assert "rules.json: field 'returns.window_days'" in msg
    assert "valid integer" in msg


def test_bad_aliased_field_names_the_merchant_key(tmp_path):
    rules = {"shipping_zones": [{"name": "Moon", "cost": "ask us", "days": 3}]}
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    with pytest.raises(
        StoretuneError, match=r"shipping\.zones\.0\.cost' \(from 'shipping_zones'\)"
    ):
        _store(tmp_path, "rules.json").config()


def test_invalid_json_names_file_and_line(tmp_path):
    (tmp_path / "rules.json").write_text('{\n  "care": "x",\n  "size_chart": \n}\n')
    with pytest.raises(StoretuneError, match=r"rules\.json line 4: not valid JSON"):
        _store(tmp_path, "rules.json").config()


def test_invalid_yaml_names_file_and_line(tmp_path):
    (tmp_path / "rules.yml").write_text("care: ok\nsize_guide: [S, M\nnext: 1\n")
    with pytest.raises(StoretuneError, match=r"rules\.yml line \d+: not valid YAML"):
        load_rules(tmp_path / "rules.yml")


def test_conflicting_aliases_are_refused(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"care": "a", "care_instructions": "b"}))
    with pytest.raises(StoretuneError, match="'care' and 'care_instructions' both set care"):
        load_rules(tmp_path / "r.json")


def test_ingest_policies_records_the_file_and_reports_it(tmp_path):
    from storetune.demo.store_gen import generate_demo_store

    root = tmp_path / "store"
    generate_demo_store(root, seed=0, n_products=20, n_tickets=40)
    (root / "rules.json").write_text(json.dumps(RULES_JSON))
    before = (root / "store.yaml").read_text()
    result = CliRunner().invoke(
        app, ["-w", str(root), "ingest", "--policies", str(root / "rules.json")]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "policies from rules.json" in out and "gift_wrap" in out

    after = (root / "store.yaml").read_text()
    assert yaml.safe_load(after)["sources"]["policies"] == "rules.json"
    assert after.splitlines()[0] == before.splitlines()[0]  # header comment kept
    report = json.loads((root / "reports" / "ingest.json").read_text())
    info = report["policies"]
    assert info["recorded"] is True and "shipping.zones" in info["fields"]
    assert set(info["free_text"]) >= {"gift_wrap", "refund_policy"}
    assert report["reconciles"] is True
    assert "Gift wrap:" in render_system_prompt(load_config(root / "store.yaml"))


def test_ingest_with_a_bad_policies_file_leaves_store_yaml_alone(tmp_path):
    from storetune.demo.store_gen import generate_demo_store

    root = tmp_path / "store"
    generate_demo_store(root, seed=0, n_products=20, n_tickets=40)
    (root / "rules.json").write_text('{"returns": {"window_days": [30]}}')
    before = (root / "store.yaml").read_text()
    result = CliRunner().invoke(app, ["-w", str(root), "ingest", "--policies", "x"])
    assert result.exit_code != 0
    result = CliRunner().invoke(
        app, ["-w", str(root), "ingest", "--policies", str(root / "rules.json")]
    )
    assert isinstance(result.exception, StoretuneError)
    assert "rules.json: field 'returns.window_days'" in str(result.exception)
    assert (root / "store.yaml").read_text() == before
    assert not (root / "store.db").exists()
