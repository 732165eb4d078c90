"""No import circle in the package: every `import` (top-level or inside a function) of every module,
as a graph, has no cycle; and the decode path imports fresh in any order."""

import ast
import pathlib
import subprocess
import sys

import pytest

import tongues

ROOT = pathlib.Path(tongues.__file__).parent


def _modules() -> dict[str, tuple[pathlib.Path, bool]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imported(name: str, is_package: bool, node: ast.AST):
    """Dotted names an import statement may load (``from a import b``: ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module
    yield module
    yield from (f"{module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, counting the packages a dotted import initialises."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(name, is_package, node):
                parts = target.split(".")
                for i in range(2, len(parts) + 1):
                    prefix = ".".join(parts[:i])
                    # A module importing a sibling passes through its own package, which is already
                    # initialising: that is not a circle.
                    if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                        edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_finder_sees_a_circle_through_a_function_level_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = "def f():\n    from ..modeling import PreTrainedModel\n"
    node = ast.parse(source).body[0].body[0]
    assert "tongues.modeling" in set(_imported("tongues.generation.mixin", False, node))


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "tongues.modeling" in graph and "tongues.generation.mixin" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("first", ["tongues.generation", "tongues.modeling", "tongues.fast", "tongues.slot_cache",
                                   "tongues.quantization"])
def test_decode_path_modules_import_fresh_in_any_order(first):
    rest = ["tongues.modeling", "tongues.generation", "tongues.fast", "tongues.slot_cache", "tongues.quantization",
            "tongues.models.bloom"]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in [first, *rest])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
