"""Size limits of the house plan, checked from the source (``ast``, nothing is imported):

- no module in ``core/`` over 500 lines;
- no function or method in ``core/`` over 60 lines (from its ``def`` to its last line);
- no page (``Home.py``, ``pages/``) over 300 lines: pages are thin views over ``core``.

A failure lists every offender with its size, largest first, so one run shows all the work.

``DEBT`` names the offenders that are known and not yet split (issue 17), at their size
today: the check fails when a new one appears, when one of them grows, and when one of them
is fixed but still listed, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE = 500
MAX_FUNCTION = 60
MAX_PAGE = 300
# Modules whose length is data, not code, and why. Their functions are still checked.
DATA_MODULES = {
    # the append-only list of schema steps: a step is never edited or removed once shipped
    # (stores in the field have run it), so the list only grows
    "core/storage/migrations.py",
}


# Known offenders (lines at most); remove an entry when it is split.
DEBT = {
    "core/pipeline/live.py": 680,
    "core/pipeline/batch.py": 582,
    "core/pipeline/fleetbench.py _one": 99,
    "core/pipeline/bench.py run_bench": 91,
    "core/pipeline/batch.py run_batch": 77,
}


def _unpaid(found: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Offenders not covered by ``DEBT`` (new ones, or listed ones that grew); a function's
    line number is left out of its key, so edits above it do not move it."""

    def key(what: str) -> str:
        path, _, name = what.partition(" ")
        return f"{path.split(':')[0]} {name}" if name else path

    return [(what, n) for what, n in found if n > DEBT.get(key(what), 0)]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _core_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "core").rglob("*.py") if "__pycache__" not in p.parts)


def long_modules(root: Path = ROOT) -> list[tuple[str, int]]:
    """``(path, lines)`` of every core module over ``MAX_MODULE`` lines, largest first."""
    found = [(str(p.relative_to(root)), _lines(p)) for p in _core_files(root)]
    return sorted(
        ((rel, n) for rel, n in found if n > MAX_MODULE and rel not in DATA_MODULES),
        key=lambda x: -x[1],
    )


def long_functions(root: Path = ROOT) -> list[tuple[str, int]]:
    """``('path:line name', lines)`` of every core function over ``MAX_FUNCTION`` lines."""
    found = []
    for path in _core_files(root):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION:
                    found.append((f"{path.relative_to(root)}:{node.lineno} {node.name}", n))
    return sorted(found, key=lambda x: -x[1])


def long_pages(root: Path = ROOT) -> list[tuple[str, int]]:
    """``(path, lines)`` of every page over ``MAX_PAGE`` lines."""
    pages = [root / "Home.py", *sorted((root / "pages").glob("*.py"))]
    found = [(str(p.relative_to(root)), _lines(p)) for p in pages if p.is_file()]
    return sorted(((rel, n) for rel, n in found if n > MAX_PAGE), key=lambda x: -x[1])


def _report(title: str, limit: int, found: list[tuple[str, int]]) -> str:
    return f"{title} over {limit} lines:\n" + "\n".join(f"  {n:5d}  {what}" for what, n in found)


def test_no_core_module_over_500_lines():
    found = _unpaid(long_modules())
    assert not found, _report("core modules", MAX_MODULE, found)


def test_no_core_function_over_60_lines():
    found = _unpaid(long_functions())
    assert not found, _report("core functions", MAX_FUNCTION, found)


def test_the_debt_list_only_names_what_is_still_too_long():
    still = {w for w, _ in long_modules()}
    still |= {f"{w.split(' ')[0].split(':')[0]} {w.split(' ')[1]}" for w, _ in long_functions()}
    paid = sorted(set(DEBT) - still)
    assert not paid, f"split now, remove from DEBT: {paid}"


def test_no_page_over_300_lines():
    found = long_pages()
    assert not found, _report("pages", MAX_PAGE, found)


def test_the_size_checks_find_what_is_too_long(tmp_path):
    """The checks themselves, on a made-up tree: each finds exactly its offender."""
    core = tmp_path / "core" / "vision"
    core.mkdir(parents=True)
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION))  # def line + 60 = 61
    (core / "long.py").write_text(f"def too_long():\n{body}\n\ndef short():\n    return 1\n")
    (core / "big.py").write_text("x = 1\n" * (MAX_MODULE + 1))
    (core / "fits.py").write_text("x = 1\n" * MAX_MODULE)
    storage = tmp_path / "core" / "storage"
    storage.mkdir()
    (storage / "migrations.py").write_text("x = 1\n" * (MAX_MODULE + 1))
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "1_Big.py").write_text("x = 1\n" * (MAX_PAGE + 1))
    (tmp_path / "pages" / "2_Fits.py").write_text("x = 1\n" * MAX_PAGE)
    (tmp_path / "Home.py").write_text("x = 1\n")
    assert long_modules(tmp_path) == [("core/vision/big.py", MAX_MODULE + 1)]
    assert long_functions(tmp_path) == [("core/vision/long.py:1 too_long", MAX_FUNCTION + 1)]
    assert long_pages(tmp_path) == [("pages/1_Big.py", MAX_PAGE + 1)]
