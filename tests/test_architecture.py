"""The house plan of ``core/``, checked from the source (``ast``, nothing is imported).

- the import graph between core's sub-packages has no cycles;
- layers: a package imports only from itself or lower layers (foundations < vision < storage
  < events < comms < training < analytics < pipeline < accounts < cli), and storage imports nothing
  but the foundations;
- SQL is executed only inside ``core/storage``;
- the app (``Home.py``, ``pages/``, ``ui/``) uses core's public API only: no private names,
  no storage internals beyond ``open_store``/``Store``/filters/record types, never sqlite3.

Imports inside functions count as much as module-level ones: a lazy import is still a
dependency.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"

FOUNDATIONS = ("config", "errors", "text", "media", "logs", "processes")
# Lowest first; a package may import from its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (*FOUNDATIONS, "__init__"),  # core/__init__ is a docstring: importing does nothing
    ("vision",),
    ("storage",),
    ("events",),
    ("comms",),
    ("training",),
    ("analytics",),
    ("pipeline",),
    ("accounts",),
    ("cli", "__main__"),
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
# Extra restriction beyond the layer order: the store holds no domain logic.
ONLY_FOUNDATIONS = {"storage"}
SQL_CALLS = {"execute", "executemany", "executescript", "exec_driver_sql"}
DB_MODULES = ("sqlite3", "sqlalchemy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            out.append((node.lineno, module, [a.name for a in node.names]))
    return out


def _core_targets(module: str, names: list[str]) -> list[str]:
    """The core modules an import statement reaches (``from core import x`` reaches core.x)."""
    if module == "core":
        return [f"core.{n}" for n in names] if names else ["core"]
    return [module] if module.startswith("core.") else []


def _package_of(module: str) -> str:
    """core.vision.detector -> vision; core.config -> config; core -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def _package_edges() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> ['file:line', ...] (imports between different packages)."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in _core_files():
        src = _package_of(_module_name(path))
        if path == CORE / "__main__.py":
            src = "__main__"
        for line, module, names in _imports(path):
            for target in _core_targets(module, names):
                dst = _package_of(target)
                if dst != src:
                    edges[src][dst].append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_every_core_package_has_a_layer():
    """A new sub-package must be placed in the plan (and this list) before it can be used."""
    found = {_package_of(_module_name(p)) for p in _core_files()} | {"__main__"}
    assert found - set(RANK) == set(), "add these to LAYERS in tests/test_architecture.py"
    assert set(RANK) - found == set(), "LAYERS names packages that no longer exist"


def _cycles(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    """Each import cycle as 'a -> b -> a  (where)'."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return [" -> ".join(c) + "  (" + "; ".join(edges[c[-2]][c[-1]][:2]) + ")" for c in cycles]


def _layer_violations(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    wrong = []
    for src, targets in sorted(edges.items()):
        for dst, where in sorted(targets.items()):
            if dst not in RANK or src not in RANK:
                continue  # reported by test_every_core_package_has_a_layer
            if RANK[dst] > RANK[src]:
                wrong.append(f"{src} imports {dst} (a higher layer) at {', '.join(where[:3])}")
            elif src in ONLY_FOUNDATIONS and dst not in FOUNDATIONS:
                wrong.append(
                    f"{src} imports {dst} (storage may use only the foundations) at "
                    f"{', '.join(where[:3])}"
                )
    return wrong


def test_no_import_cycles_between_core_packages():
    cycles = _cycles(_package_edges())
    assert not cycles, "import cycles between core packages:\n" + "\n".join(cycles)


def test_packages_import_only_their_own_or_lower_layers():
    wrong = _layer_violations(_package_edges())
    assert not wrong, "\n".join(wrong)


# Pairs the layer order allows but the plan keeps apart, and why.
KEPT_APART = {
    ("pipeline", "training"): "pipeline reaches training only through core.vision.taps.FrameTap",
}


def _kept_apart_violations(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    return [
        f"{src} imports {dst} at {', '.join(edges[src][dst][:3])}: {why}"
        for (src, dst), why in KEPT_APART.items()
        if edges.get(src, {}).get(dst)
    ]


def test_packages_kept_apart_do_not_import_each_other():
    wrong = _kept_apart_violations(_package_edges())
    assert not wrong, "\n".join(wrong)
    assert _kept_apart_violations({"pipeline": {"training": ["core/pipeline/x.py:1"]}})


def test_the_checks_catch_cycles_and_upward_imports():
    edges = {
        "vision": {"events": ["core/vision/x.py:1"]},
        "events": {"vision": ["core/events/y.py:2"]},
        "storage": {"vision": ["core/storage/z.py:3"]},
        "pipeline": {"analytics": ["core/pipeline/ok.py:4"]},
    }
    assert _cycles(edges) == ["events -> vision -> events  (core/vision/x.py:1)"]
    wrong = _layer_violations(edges)
    assert len(wrong) == 2
    assert wrong[0].startswith("storage imports vision (storage may use only the foundations)")
    assert wrong[1].startswith("vision imports events (a higher layer)")


def test_the_layer_check_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """The scanner itself: an import inside a function and a relative import both count."""
    pkg = tmp_path / "core" / "vision"
    pkg.mkdir(parents=True)
    probe = pkg / "probe.py"
    probe.write_text(
        "def f():\n    from core.storage import open_store\nfrom ..events import rules\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = [t for _, m, n in _imports(probe) for t in _core_targets(m, n)]
    assert sorted(_package_of(t) for t in found) == ["events", "storage"]


def _app_files() -> list[Path]:
    return [
        ROOT / "Home.py",
        *sorted((ROOT / "pages").glob("*.py")),
        *sorted((ROOT / "ui").glob("*.py")),
    ]


def _python_outside_storage() -> list[Path]:
    files = [p for p in _core_files() if "storage" not in p.relative_to(CORE).parts[:1]]
    for folder in ("ui", "pages", "scripts", "models"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [*files, ROOT / "Home.py"]


def test_sql_is_executed_only_in_core_storage():
    found = []
    for path in _python_outside_storage():
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
            ):
                found.append(f"{rel}:{node.lineno} calls .{node.func.attr}()")
        for line, module, _ in _imports(path):
            if module.split(".")[0] in DB_MODULES:
                found.append(f"{rel}:{line} imports {module}")
    assert not found, "SQL belongs in core/storage (use a repository):\n" + "\n".join(found)


def _record_types(module: str) -> set[str]:
    """Public dataclasses defined in a core.storage module (the typed rows it returns)."""
    mod = importlib.import_module(module)
    return {
        name
        for name, obj in vars(mod).items()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == module
        and not name.startswith("_")
    }


STORAGE_PUBLIC = {"open_store", "Store"}
STORAGE_INTERNAL = {
    "core.storage.database",
    "core.storage.schema",
    "core.storage.migrations",
    "core.storage.bulk",
}


def _app_import_problems(path: Path) -> list[str]:
    rel = path.relative_to(ROOT)
    problems = []
    core_names: set[str] = set()
    for line, module, names in _imports(path):
        where = f"{rel}:{line}"
        if module.split(".")[0] in DB_MODULES:
            problems.append(f"{where} imports {module}")
            continue
        if not (module == "core" or module.startswith("core.")):
            continue
        if any(part.startswith("_") for part in module.split(".")):
            problems.append(f"{where} imports the private module {module}")
        if names:
            core_names.update(names)
            private = [n for n in names if n.startswith("_")]
            if private:
                problems.append(f"{where} imports private names {private} from {module}")
        else:
            core_names.add(module.split(".")[0])
        if not module.startswith("core.storage"):
            continue
        if module in STORAGE_INTERNAL or not names:
            problems.append(f"{where} reaches into {module}")
        elif module == "core.storage":
            extra = sorted(set(names) - STORAGE_PUBLIC)
            if extra:
                problems.append(
                    f"{where} imports {extra} from core.storage (only {sorted(STORAGE_PUBLIC)})"
                )
        elif module != "core.storage.filters":
            extra = sorted(set(names) - _record_types(module))
            if extra:
                problems.append(f"{where} imports {extra} from {module}: not record types")
    # private attributes of what came from core (core.x._y, DETECTORS._free ...)
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in core_names:
                problems.append(f"{rel}:{node.lineno} uses the private {ast.unparse(node)}")
    return problems


@pytest.mark.parametrize("path", _app_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_uses_only_public_core_api(path):
    problems = _app_import_problems(path)
    assert not problems, "\n".join(problems)


def test_app_import_check_catches_violations(tmp_path, monkeypatch):
    """The check itself fails for each kind of violation."""
    page = tmp_path / "pages" / "9_Bad.py"
    page.parent.mkdir()
    page.write_text(
        "import sqlite3\n"
        "from core.vision.detector import _train_imgsz\n"
        "from core.storage.database import Database\n"
        "from core.storage import open_store, close_store\n"
        "from core.storage.events import EventRepo, EpisodeRecord\n"
        "from core.vision.detector import DETECTORS\n"
        "DETECTORS._free.clear()\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    problems = _app_import_problems(page)
    text = "\n".join(problems)
    assert "imports sqlite3" in text
    assert "_train_imgsz" in text
    assert "core.storage.database" in text
    assert "close_store" in text
    assert "EventRepo" in text and "EpisodeRecord" not in text
    assert "DETECTORS._free" in text
    assert len(problems) == 6
