"""The package's modules import one another in one direction only: no two modules import each other,
directly or through others, counting imports inside functions (a lazy import is still a dependency)."""

import ast
from pathlib import Path

import training_health

PACKAGE = Path(training_health.__file__).parent


def import_graph() -> dict[str, set[str]]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            # The package root only re-exports lazily (__getattr__); importing it is not a dependency cycle.
            graph[name] |= {t for t in targets if t in modules and t not in (name, "training_health")}
    return graph


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for following in graph[node]:
            if following == start:
                return [*path, start]
            if following not in seen:
                seen.add(following)
                stack.append((following, [*path, following]))
    return None


def test_no_two_modules_import_each_other():
    graph = import_graph()
    assert "training_health.plugin" in graph and graph["training_health.plugin"], "the graph was not read"
    cycles = [cycle for module in sorted(graph) if (cycle := cycle_through(graph, module))]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_detector_finds_a_cycle():
    """The negative control: a graph with a loop through a third module is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycle_through(graph, "a") == ["a", "b", "c", "a"] and cycle_through(graph, "d") is None
