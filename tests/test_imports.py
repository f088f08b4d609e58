"""The package's import graph: no module of gptkit imports itself back through others.

The graph is read from the source with `ast` (nothing is imported). An edge A -> B means A runs
`import B` / `from B import x` (B a gptkit module, or a package above one, whose __init__ runs
too). Two graphs are checked: the imports run when a module is loaded (module level, class
bodies included), and those plus the imports inside functions, which run later but still tie
the modules into one knot when they point back.
"""

import ast
from pathlib import Path

import gptkit

ROOT = Path(gptkit.__file__).parent


def module_names() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("gptkit", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


class ImportCollector(ast.NodeVisitor):
    def __init__(self, modules: set[str], include_functions: bool):
        self.modules, self.include_functions, self.found = modules, include_functions, set()

    def visit_FunctionDef(self, node):
        if self.include_functions:
            self.generic_visit(node)

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def add(self, dotted: str) -> None:
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            if ".".join(parts[:i]) in self.modules:
                self.found.add(".".join(parts[:i]))

    def visit_Import(self, node):
        for alias in node.names:
            self.add(alias.name)

    def visit_ImportFrom(self, node):
        assert node.level == 0 and node.module, f"relative import at line {node.lineno}: gptkit uses absolute ones"
        self.add(node.module)
        for alias in node.names:  # `from gptkit import paths` imports the module gptkit.paths
            self.add(f"{node.module}.{alias.name}")


def import_graph(include_functions: bool) -> dict[str, set[str]]:
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        collector = ImportCollector(set(modules), include_functions)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        graph[name] = collector.found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan), i.e. the knots."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while not component or w != v:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_should():
    top, full = import_graph(include_functions=False), import_graph(include_functions=True)
    assert "gptkit.errors" in top["gptkit.checkpoint"] and "gptkit.paths" in top["gptkit.checkpoint"]
    assert "gptkit.model" not in top["gptkit.checkpoint"] and "gptkit.model" in full["gptkit.checkpoint"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_module_level_imports_form_no_cycle():
    assert cycles(import_graph(include_functions=False)) == []


def test_imports_inside_functions_close_no_cycle_either():
    assert cycles(import_graph(include_functions=True)) == []
