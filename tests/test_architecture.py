"""The layering of docs/architecture.md holds, and its checks can fail.

`scripts/test` runs `lint-imports` on the tree; these tests show the contract is not vacuous (a
deliberately bad import in a copy of the tree breaks it) and that SQL writes live in the store.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forma3d", "actors", "sandbox")
WRITE = re.compile(r"INSERT INTO|UPDATE +[a-z_]+ +SET|DELETE FROM")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
         "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project's packages and contract, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sql", "static"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def add_import(module: Path, statement: str) -> None:
    module.write_text(module.read_text() + f"\n{statement}  # noqa\n")


def test_the_tree_keeps_its_contracts(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tree: Path) -> None:
    add_import(tree / "forma3d/domain/orders/states.py", "import forma3d.store.orders")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "forma3d.domain is not allowed to import forma3d.store" in result.stdout
    assert "forma3d.domain.orders.states -> forma3d.store.orders" in result.stdout


def test_the_store_may_not_reach_up_to_the_actors(tree: Path) -> None:
    add_import(tree / "forma3d/store/outbox.py", "import actors.router")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "forma3d.store is not allowed to import actors" in result.stdout


def test_a_cycle_between_siblings_breaks_the_contract(tree: Path) -> None:
    # store.shipments and store.orders import each other: same layer, but a cycle.
    add_import(tree / "forma3d/store/shipments.py", "import forma3d.store.orders")
    add_import(tree / "forma3d/store/orders.py", "import forma3d.store.shipments")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "No cycles are allowed in forma3d.store" in result.stdout


def test_sql_writes_live_only_in_the_store() -> None:
    outside = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("forma3d", "store") or "migrations" in relative.parts:
                continue  # the store, and the migration runner's own bookkeeping
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if WRITE.search(line):
                    outside.append(f"{relative}:{number}: {line.strip()}")
    assert outside == []


def test_the_simulators_may_not_reach_into_the_product_runtime(tree: Path) -> None:
    add_import(tree / "sandbox/farm.py", "import forma3d.handlers.order")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert "sandbox is not allowed to import forma3d.handlers" in result.stdout
