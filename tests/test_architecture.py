"""The architecture rules of ../shared/DESIGN.md are checked by a machine.

``lint-imports`` (import-linter, contracts in pyproject.toml) passes on the tree, and fails when a
forbidden import is added (shown on a copy of the tree); no module of the project imports itself
back through a cycle.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {"settlement": ROOT / "settlement", "ledger_api": ROOT / "ledger_api",
            "anchors": ROOT / "ledger-anchors" / "anchors"}


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "400"}  # one line per contract: no wrapping
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_import_contracts_hold() -> None:
    """Every import-linter contract of pyproject.toml is kept."""
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _copy_tree(tmp_path: Path) -> Path:
    for name, source in PACKAGES.items():
        shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "artifacts"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_forbidden_import_breaks_the_build(tmp_path: Path) -> None:
    """The same contracts on a copy of the tree with one forbidden import each: the auditor's
    package importing the service, the domain importing the web layer, a domain reaching into the
    dispatcher, and web3 outside the chain client. lint-imports names each broken contract."""
    tree = _copy_tree(tmp_path)
    (tree / "anchors" / "_leak.py").write_text("import settlement.core.errors\n")
    (tree / "settlement" / "domains" / "settlements" / "_leak.py").write_text(
        "import ledger_api.app\nimport settlement.pipeline.dispatcher\n")
    (tree / "settlement" / "store" / "_leak.py").write_text("import web3\n")
    result = _lint(tree, pythonpath=tree)
    assert result.returncode != 0, result.stdout
    verdicts = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in result.stdout.splitlines()
                if line.endswith((" KEPT", " BROKEN"))}
    for contract in ("anchors stands alone", "the domain never imports the web layer",
                     "never its internals", "web3 only in the chain client"):
        (verdict,) = [v for name, v in verdicts.items() if contract in name]
        assert verdict == "BROKEN", (contract, result.stdout)
    assert "4 broken" in result.stdout, result.stdout


def test_a_cycle_breaks_the_build(tmp_path: Path) -> None:
    """A lower layer importing a higher one (the store importing a domain) is refused."""
    tree = _copy_tree(tmp_path)
    (tree / "settlement" / "store" / "_cycle.py").write_text("import settlement.domains.settlements\n")
    result = _lint(tree, pythonpath=tree)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    """No import cycle among the project's modules (not only between packages)."""
    graph = grimp.build_graph("settlement", "ledger_api", "anchors")
    modules = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    assert _cycles(graph, modules) == []
