"""The package layering: contracts at the bottom import no stage, nothing in the
library reaches into the demo or the benchmarks, every module imports, and no import
names a module that is gone (the re-export shims of the contracts refactor).

The import graph is read from the source (every import statement, including the ones
inside functions), so a lazy import breaks the rule as much as a top-level one.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "storetune"

CONTRACTS = {
    "workspace", "kinds", "chat", "config", "facts", "tasks", "runtime", "llamacpp", "io",
    "progress",
    "errors", "store",
}  # fmt: skip
STAGES = {
    "cli", "demo", "serve", "eval", "train", "dataset", "ingest", "retrieval", "models",
    "clean", "monitor", "ops", "feedback",
}  # fmt: skip
# Only the command line and the demo itself may run the demo or a benchmark.
MAY_IMPORT_DEMO = {"cli", "demo"}
# Re-exports left by the contracts refactor, now deleted: their contents live in
# storetune.config (serve/train/eval/build sections, policy rules), storetune.store.review,
# storetune.runtime and storetune.chat.prompt.
DELETED_SHIMS = (
    "storetune.serve.config",
    "storetune.serve.review.queue",
    "storetune.train.config",
    "storetune.models.base",
    "storetune.eval.config",
    "storetune.store.policies",
    "storetune.dataset.config",
    "storetune.dataset.prompt",
)


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    target: str  # dotted module the statement reaches (storetune.serve.config, bench.x…)

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[Import]:
    """Every module an import statement in `path` names, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from storetune import demo` reaches storetune.demo, not just storetune.
            found += [Import(path, node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def top(target: str) -> tuple[str, str]:
    """(root package, first component below it): storetune.serve.config -> (storetune, serve)."""
    parts = target.split(".")
    return parts[0], parts[1] if len(parts) > 1 else ""


def part_of(path: Path) -> str:
    """The top-level piece of storetune a file belongs to (store, facts, serve…)."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def project_files() -> list[Path]:
    """The library, its tests and the benchmarks: every file that imports storetune."""
    return sorted(p for d in ("storetune", "tests", "bench") for p in (ROOT / d).rglob("*.py"))


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def missing_modules(files: list[Path]) -> list[Import]:
    """Imports of a storetune module that does not exist. `from a.b import c` reaches
    the module a.b.c or the name c of a.b, so one of the two must be a module."""
    bad = []
    for path in files:
        for imp in imports_of(path):
            if imp.target.split(".")[0] != "storetune":
                continue
            parent = imp.target.rpartition(".")[0]
            if not is_module(imp.target) and not is_module(parent):
                bad.append(imp)
    return bad


def contract_violations(files: list[Path]) -> list[Import]:
    bad = []
    for path in files:
        if part_of(path) not in CONTRACTS:
            continue
        for imp in imports_of(path):
            root, piece = top(imp.target)
            if root == "storetune" and piece in STAGES:
                bad.append(imp)
    return bad


def demo_or_bench_violations(files: list[Path]) -> list[Import]:
    bad = []
    for path in files:
        if part_of(path) in MAY_IMPORT_DEMO:
            continue
        for imp in imports_of(path):
            root, piece = top(imp.target)
            if root == "bench" or (root == "storetune" and piece == "demo"):
                bad.append(imp)
    return bad


def test_contracts_import_no_stage():
    bad = contract_violations(library_files())
    assert not bad, "contracts import stages:\n" + "\n".join(map(str, bad))


def test_library_does_not_import_demo_or_bench():
    bad = demo_or_bench_violations(library_files())
    assert not bad, "the library imports the demo or a benchmark:\n" + "\n".join(map(str, bad))


def test_no_import_names_a_deleted_shim():
    assert not [m for m in DELETED_SHIMS if is_module(m)], "a deleted shim is back"
    bad = missing_modules(project_files())
    assert not bad, "imports of modules that do not exist:\n" + "\n".join(map(str, bad))


def test_every_library_module_imports():
    # In a fresh interpreter, so no test's imports hide a broken one; __main__ runs the CLI.
    code = (
        "import importlib, json, pkgutil, storetune\n"
        "failed = {}\n"
        "for m in pkgutil.walk_packages(storetune.__path__, 'storetune.'):\n"
        "    if m.name.rpartition('.')[2] == '__main__':\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(m.name)\n"
        "    except Exception as e:\n"
        "        failed[m.name] = repr(e)\n"
        "print(json.dumps(failed))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    failed = json.loads(out.strip().splitlines()[-1])
    assert not failed, "modules that fail to import:\n" + "\n".join(
        f"{name}: {error}" for name, error in sorted(failed.items())
    )


def test_the_checks_catch_what_they_should(tmp_path, monkeypatch):
    # The walker sees lazy, relative and `from package import module` imports.
    pkg = tmp_path / "storetune"
    (pkg / "store").mkdir(parents=True)
    (pkg / "serve").mkdir()
    (pkg / "store" / "ok.py").write_text("from storetune.errors import StoretuneError\n")
    (pkg / "store" / "bad.py").write_text(
        "from ..serve import app\n"
        "def f():\n"
        "    from storetune import dataset\n"
        "    import storetune.demo.pipeline\n"
    )
    (pkg / "serve" / "tickets.py").write_text("import bench.bench_serve\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    files = sorted(pkg.rglob("*.py"))
    assert [(i.line, i.target) for i in contract_violations(files)] == [
        (1, "storetune.serve.app"),
        (3, "storetune.dataset"),
        (4, "storetune.demo.pipeline"),
    ]
    assert sorted((i.path.name, i.target) for i in demo_or_bench_violations(files)) == [
        ("bad.py", "storetune.demo.pipeline"),
        ("tickets.py", "bench.bench_serve"),
    ]
    # an import of a module that is gone; a name imported from a module is fine
    (pkg / "serve" / "app.py").write_text("")
    (pkg / "store" / "old.py").write_text(
        "from storetune.serve.config import ServeConfig\n"
        "from storetune.serve import app, config\n"
        "from storetune.store.ok import StoretuneError\n"
    )
    assert [(i.line, i.target) for i in missing_modules([pkg / "store" / "old.py"])] == [
        (1, "storetune.serve.config.ServeConfig"),
        (2, "storetune.serve.config"),
    ]


def test_building_a_dataset_does_not_import_the_server():
    code = (
        "import json, sys; import storetune.dataset.build; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('storetune.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = json.loads(out)
    assert "storetune.dataset.build" in loaded
    server = [m for m in loaded if m == "storetune.serve" or m.startswith("storetune.serve.")]
    assert not server, f"import storetune.dataset.build loads the server: {server}"
