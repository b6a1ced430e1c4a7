from __future__ import annotations

import json

import pytest

from storetune.errors import StoretuneError
from storetune.models.registry import ModelRef, Registry


def _version(reg: Registry, name: str) -> int:
    v, staging = reg.staging_dir(name)
    (staging / "version.json").write_text(json.dumps({"version": v}))
    reg.publish(name, v, staging)
    return v


def test_versions_promote_and_resolve(tmp_path):
    reg = Registry(tmp_path)
    assert [_version(reg, "support") for _ in range(3)] == [1, 2, 3]
    assert reg.current("support") == 3  # latest until something is promoted
    reg.promote("support", 1)
    assert reg.resolve("support").name == "v1"
    assert reg.resolve("support@v2").name == "v2"
    with pytest.raises(StoretuneError):
        reg.resolve("support@v9")
    with pytest.raises(StoretuneError):
        reg.resolve("nothing")


def test_staging_is_invisible_until_published(tmp_path):
    reg = Registry(tmp_path)
    v, staging = reg.staging_dir("content")
    assert reg.versions("content") == []  # a killed run leaves no version behind
    reg.publish("content", v, staging)
    assert reg.versions("content") == [1]


def test_model_ref_parsing():
    assert ModelRef.parse("support@v3") == ModelRef("support", 3)
    assert ModelRef.parse("support") == ModelRef("support", None)
    with pytest.raises(StoretuneError):
        ModelRef.parse("bad name@")
