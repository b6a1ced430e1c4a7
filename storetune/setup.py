"""`storetune init`: a starter store.yaml a merchant edits."""

from __future__ import annotations

from pathlib import Path

import yaml

from storetune.config import Brand, Contact, Policies, Sources, StoreConfig
from storetune.errors import StoretuneError
from storetune.workspace import Workspace


def init_workspace(ws: Workspace, brand: str, products: str | None, tickets: str | None) -> Path:
    if ws.config_path.exists():
        raise StoretuneError(f"{ws.config_path} already exists; edit it instead")
    cfg = StoreConfig(
        brand=Brand(name=brand, voice="Friendly, clear and concise."),
        policies=Policies(contact=Contact(email="support@example.com")),
        sources=Sources(products=products, tickets=tickets),
    )
    ws.root.mkdir(parents=True, exist_ok=True)
    text = "# storetune store config: brand, policies, escalation, sources.\n"
    # Empty stage sections, as before they were typed: their defaults keep following storetune's.
    raw = {**cfg.model_dump(mode="json"), "build": {}, "train": {}, "eval": {}}
    text += yaml.safe_dump(raw, sort_keys=False)
    ws.config_path.write_text(text, encoding="utf-8")
    return ws.config_path
