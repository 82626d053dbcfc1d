"""Imports run one way (pyproject.toml's import-linter contracts), no two modules import each
other through any chain, and the dbt plugins know nothing of the application."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bildsuche", "python_embed", "seeds_loader")
PLUGINS = ROOT / "adapter" / "dbt"
APPLICATION_WORDS = ("bildsuche", "photo")


def plugin_imports() -> dict[str, set[str]]:
    """Modules of the dbt plugins (dbt.adapters.chdb, ...) and the project modules each imports
    (inside functions too): ``from a import b`` imports module a.b where there is one, as grimp counts it."""
    parsed: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PLUGINS.rglob("*.py")):
        parts = ("dbt", *path.relative_to(PLUGINS).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        statements: list[tuple[str, list[str]]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                statements += [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                statements.append((node.module, [alias.name for alias in node.names]))
        parsed[name] = statements
    graph: dict[str, set[str]] = {}
    for name, statements in parsed.items():
        found: set[str] = set()
        for module, names in statements:
            submodules = {f"{module}.{n}" for n in names} & parsed.keys()
            found |= submodules or {module}
        graph[name] = {i for i in found if i in parsed or i.split(".")[0] in PACKAGES}
    return graph


def import_graph() -> dict[str, set[str]]:
    """Every module of the project and the project modules it imports."""
    built = grimp.build_graph(*PACKAGES, cache_dir=None)
    graph = {m: set(built.find_modules_directly_imported_by(m)) for m in built.modules}
    graph.update(plugin_imports())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import one another through some chain (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in graph:
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph.get(module, ()):
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_layer_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    assert "bildsuche.cli" in graph and "dbt.adapters.chdb.impl" in graph
    assert cycles(graph) == []


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_dbt_plugins_know_no_application() -> None:
    for module, imports in plugin_imports().items():
        assert not {i for i in imports if i.split(".")[0] in PACKAGES}, module
    for path in PLUGINS.rglob("*"):
        if path.suffix in (".py", ".sql", ".yml"):
            text = path.read_text(encoding="utf-8").lower()
            assert not [w for w in APPLICATION_WORDS if w in text], path


def loaded_by(imports: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules under ``prefixes`` that importing ``imports`` loads, in a fresh interpreter."""
    code = f"import sys, {imports}; print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return list(ast.literal_eval(done.stdout.strip()))


def test_the_store_opener_imports_no_dbt() -> None:
    # The application opens stores with the plugin's engine module: it must not cost a dbt import.
    imports = "dbt.adapters.chdb.engine, dbt.adapters.chdb.neighbours, bildsuche.store"
    assert loaded_by(imports, ("dbt.adapters.base", "dbt.cli", "dbt_common")) == []


def test_python_embed_imports_no_ray() -> None:
    # Ray is an optional extra: only `build --ray` imports it.
    imports = "python_embed, python_embed.build, python_embed.pipeline, bildsuche.cli"
    assert loaded_by(imports, ("ray.",)) == []  # `import ray` alone loads dozens of ray.* modules
