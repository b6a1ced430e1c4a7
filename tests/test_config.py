"""store.yaml's schema (storetune.config): every section typed, one error format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from storetune.cli import app
from storetune.config import (
    BuildConfig,
    EvalConfig,
    ServeConfig,
    StoreConfig,
    TrainConfig,
    format_errors,
    load_config,
)
from storetune.errors import StoretuneError
from storetune.workspace import Workspace

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_yaml(tmp_path_factory) -> dict:
    from storetune.demo.store_gen import generate_demo_store

    root = tmp_path_factory.mktemp("demo") / "store"
    generate_demo_store(root, seed=0, n_products=20, n_tickets=40)
    return yaml.safe_load((root / "store.yaml").read_text())


def _workspace(tmp_path: Path, raw: dict, **sections: dict) -> Workspace:
    root = tmp_path / "store"
    root.mkdir(exist_ok=True)
    (root / "store.yaml").write_text(yaml.safe_dump({**raw, **sections}))
    return Workspace(root)


def test_the_demo_store_loads_with_typed_sections(tmp_path, demo_yaml):
    ws = _workspace(
        tmp_path,
        demo_yaml,
        build={"product_qa": 20},
        train={"lr": 1e-4, "tasks": "support,safety"},
        eval={"gates": {"correct_min": 0.5}},
        serve={"max_tokens": 300},
    )
    cfg = ws.config()
    assert isinstance(cfg.build, BuildConfig) and cfg.build.product_qa == 20
    assert cfg.build.recommend == BuildConfig().recommend  # unset fields keep their default
    assert isinstance(cfg.train, TrainConfig) and cfg.train.lr == 1e-4
    assert cfg.train.tasks == ["support", "safety"]
    assert isinstance(cfg.eval, EvalConfig) and cfg.eval.gates.correct_min == 0.5
    assert isinstance(cfg.serve, ServeConfig) and cfg.serve.max_tokens == 300


def test_missing_sections_take_the_defaults(tmp_path, demo_yaml):
    raw = {k: v for k, v in demo_yaml.items() if k not in ("build", "train", "eval", "serve")}
    cfg = _workspace(tmp_path, raw).config()
    assert cfg.build == BuildConfig() and cfg.train == TrainConfig()
    assert cfg.eval == EvalConfig() and cfg.serve == ServeConfig()


@pytest.mark.parametrize(
    ("section", "value", "field", "problem"),
    [
        ("train", {"lr": "fast"}, "train.lr", "valid number"),
        ("train", {"lrr": 1e-4}, "train.lrr", "Extra inputs are not permitted"),
        ("build", {"product_qa": -5}, "build.product_qa", "greater than or equal to 0"),
        ("build", {"safety": {"fake_product": "many"}}, "build.safety.fake_product", "integer"),
        ("eval", {"gates": {"wrong_max": 2}}, "eval.gates.wrong_max", "less than or equal to 1"),
        ("serve", {"max_concurrency": 0}, "serve.max_concurrency", "greater than 0"),
        ("serve", {"review_mode": "yolo"}, "serve.review_mode", "'approval' or 'auto'"),
    ],
)
def test_a_bad_section_fails_at_load_naming_file_and_field(
    tmp_path, demo_yaml, section, value, field, problem
):
    ws = _workspace(tmp_path, demo_yaml, **{section: value})
    with pytest.raises(StoretuneError) as e:
        ws.config()
    assert f"{ws.config_path}: field '{field}': " in str(e.value)
    assert problem in str(e.value)
    with pytest.raises(StoretuneError, match=f"field '{field}'"):
        load_config(ws.config_path)


def test_every_problem_gets_its_own_line(tmp_path, demo_yaml):
    ws = _workspace(tmp_path, demo_yaml, train={"lr": "fast"}, serve={"max_tokens": 0})
    with pytest.raises(StoretuneError) as e:
        ws.config()
    lines = str(e.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "field 'train.lr'",
        "field 'serve.max_tokens'",
    ]
    assert all(line.startswith(f"{ws.config_path}: field '") for line in lines)


def test_the_formatter_prefixes_a_section_and_names_the_origin():
    with pytest.raises(ValidationError) as e:
        TrainConfig.model_validate({"lora_r": 0})
    text = format_errors("store.yaml", e.value, section="train", via=lambda f: "rank")
    assert text == (
        "store.yaml: field 'train.lora_r' (from 'rank'): Input should be greater than or equal to 1"
    )
    with pytest.raises(ValidationError) as e:
        StoreConfig.model_validate([])
    assert format_errors("x.yaml", e.value).startswith("x.yaml: Input should be")


def test_command_line_overrides_are_validated_in_the_same_format(tmp_path, demo_yaml):
    cfg = _workspace(tmp_path, demo_yaml, train={"lr": 1e-4, "epochs": 2}).config()
    merged = cfg.train.with_overrides({"max_steps": 3})
    assert (merged.lr, merged.epochs, merged.max_steps) == (1e-4, 2, 3)
    assert cfg.train.with_overrides({}) is cfg.train
    with pytest.raises(StoretuneError, match=r"^command line: field 'train\.lr': .*greater than 0"):
        cfg.train.with_overrides({"lr": -1.0})


def test_any_command_stops_on_a_typo_in_a_stage_section(tmp_path, demo_yaml):
    ws = _workspace(tmp_path, demo_yaml, train={"lr": "fast"})
    for args in (["ingest"], ["models", "list"], ["index"]):
        result = runner.invoke(app, ["-w", str(ws.root), *args])
        assert isinstance(result.exception, StoretuneError), (args, result.output)
        assert f"{ws.config_path}: field 'train.lr'" in str(result.exception)
    assert not ws.db_path.exists()  # ingest never started


def test_the_cli_prints_the_error_without_a_traceback(tmp_path, demo_yaml):
    ws = _workspace(tmp_path, demo_yaml, eval={"gates": {"correct_min": 1.5}})
    proc = subprocess.run(
        [sys.executable, "-m", "storetune", "models", "list", "-w", str(ws.root)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "field 'eval.gates.correct_min'" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_workspace_is_accepted_after_the_command(tmp_path, demo_yaml):
    ws = _workspace(tmp_path, demo_yaml)
    (ws.models_dir / "support" / "v1").mkdir(parents=True)
    info = {"dataset_id": "ds-1", "created": "2024-01-01", "train": {}, "tasks": ["support"]}
    (ws.models_dir / "support" / "v1" / "version.json").write_text(json.dumps(info))

    before = runner.invoke(app, ["-w", str(ws.root), "models", "list"])
    after = runner.invoke(app, ["models", "list", "-w", str(ws.root)])
    long = runner.invoke(app, ["models", "list", "--workspace", str(ws.root)])
    assert before.exit_code == after.exit_code == long.exit_code == 0, after.output
    assert "ds-1" in after.output and after.output == before.output == long.output
    # given twice, the one after the command wins
    wins = runner.invoke(
        app, ["-w", str(tmp_path / "elsewhere"), "models", "list", "-w", str(ws.root)]
    )
    assert wins.exit_code == 0 and "ds-1" in wins.output


def test_every_command_takes_the_workspace_option():
    def walk(command, path):
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        yield path, opts
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    commands = list(walk(typer.main.get_command(app), []))
    assert len(commands) > 15
    for path, opts in commands:
        assert {"-w", "--workspace"} <= opts, path


def test_the_config_package_imports_no_stage():
    code = (
        "import sys, storetune.config, storetune.workspace; "
        "print(' '.join(m for m in sys.modules if m.startswith('storetune')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    # Besides the schema, only contracts: errors, the atomic write (store.yaml), the task
    # specs (their names are the catalog tags `train.tasks` accepts) and the fact patterns.
    bottom = ("errors", "workspace", "io", "tasks", "facts")
    contracts = {"storetune", *(f"storetune.{m}" for m in bottom)}
    assert loaded - contracts and all(
        m in contracts or m.startswith("storetune.config") for m in loaded
    ), sorted(loaded)
