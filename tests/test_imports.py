"""No import cycle in ``uda/``: every module's module-level imports (not those inside functions), parsed with ``ast``.

``from . import x`` and other relative imports are resolved; importing ``a.b.c`` counts as importing ``a`` and
``a.b`` too (their ``__init__`` runs first), and ``from a import b`` as importing ``a.b`` when ``b`` is a module.
A module's own parent packages are not counted: they are already being imported when it runs.
A cycle fails the test with its modules in order, and so does an import back up a layer (`LAYERS`)."""

from __future__ import annotations

import ast
from pathlib import Path

UDA = Path(__file__).resolve().parents[1] / "uda"

# Allowed exceptions, by name: none. (The presets used to import the recipes' config classes, a cycle
# uda.config -> uda.config.presets -> uda.recipes -> uda.config; they now resolve them by name when built.)
KNOWN: set[tuple[str, str]] = set()


# The layers of the package, lowest first; a module may import its own layer and the layers below it. A module
# belongs to the layer of the longest prefix listed. The built-in presets are data in uda.config: their recipe
# sections are resolved by name through the registry when a preset is built, so they import no recipe.
LAYERS = [
    ("uda._errors", "uda._registry", "uda._io", "uda._utils", "uda.types", "uda.labels", "uda.plugins", "uda.term"),
    ("uda.config",),  # the schema, its checks, loading and the presets
    ("uda.losses", "uda.models", "uda.data", "uda.discriminators"),
    ("uda.translators", "uda.alignment", "uda.selftraining", "uda.evaluation"),
    ("uda.recipes",),
    ("uda.engine",),
    ("uda.cli", "uda.__main__", "uda"),
]


def layer_of(module: str) -> int:
    best = max((p for layer in LAYERS for p in layer if module == p or module.startswith(p + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def module_names() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its ``__init__``)."""
    out = {}
    for path in sorted(UDA.rglob("*.py")):
        parts = list(path.relative_to(UDA.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``uda`` modules that importing ``name`` imports at module level (parents counted)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.update(_with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.update(_with_parents(target))
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    if f"{target}.{alias.name}" in modules:
                        found.add(f"{target}.{alias.name}")
            elif isinstance(node, ast.If | ast.Try | ast.With):  # module level still (not `if TYPE_CHECKING`)
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    visit(node.orelse)
                    continue
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    # A module's own parent packages are being imported already when it runs (their import is no new edge).
    own = set(_with_parents(name))
    return {m for m in found if m in modules and m not in own}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """One shortest cycle through each strongly connected component (Tarjan), rotated to start at its smallest."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[set[str]] = []

    def strong(v: str) -> None:  # recursive Tarjan; the graph is a few hundred modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    out = []
    for comp in comps:
        out.extend(_elementary_cycles(graph, comp))
    return sorted(set(out))


def _elementary_cycles(graph: dict[str, set[str]], comp: set[str]) -> list[tuple[str, ...]]:
    """For each module of the component, the shortest cycle through it (breadth first), canonically rotated."""
    found = set()
    for start in sorted(comp):
        prev = {start: None}
        queue, hit = [start], None
        while queue and hit is None:
            nxt = []
            for v in queue:
                for w in sorted(graph[v] & comp):
                    if w == start:
                        hit = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if hit is not None:
                    break
            queue = nxt
        path = [hit]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cyc = path[::-1]
        i = cyc.index(min(cyc))
        found.add(tuple(cyc[i:] + cyc[:i]))
    return list(found)


def test_the_graph_sees_relative_parent_and_submodule_imports() -> None:
    graph = import_graph()
    assert {"uda._errors", "uda._registry", "uda.losses", "uda.losses._functional"} <= graph["uda.alignment.minent"]
    assert "uda" not in graph["uda.alignment.minent"]  # its own parents are not
    assert "uda.alignment._base" in graph["uda.alignment.minent"]  # `from ._base import ...`
    assert "uda.config.presets" in graph["uda.config"]  # `from . import presets`
    assert not any(m.startswith("uda.cli.") for m in graph["uda.cli._util"] - {"uda.cli"})  # imports in functions


def test_cycles_finds_every_cycle_of_a_made_up_graph() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(g) == [("a", "b", "c"), ("d", "e")]


def test_no_import_back_up_a_layer() -> None:
    graph = import_graph()
    up = sorted((a, b) for a, bs in graph.items() for b in bs if layer_of(b) > layer_of(a) and (a, b) not in KNOWN)
    assert not up, "imports back up a layer (LAYERS):\n" + "\n".join(
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})" for a, b in up)
    assert layer_of("uda.recipes") > layer_of("uda.config.presets") == layer_of("uda.config.schema")


def test_no_import_cycle_in_uda() -> None:
    graph = import_graph()
    gone = sorted((a, b) for a, b in KNOWN if b not in graph[a])
    assert not gone, f"a KNOWN import is gone; remove it from KNOWN: {gone}"
    for a, b in KNOWN:
        graph[a] = graph[a] - {b}
    found = cycles(graph)
    assert not found, "import cycles in uda/ (break each one):\n" + "\n".join(" -> ".join((*c, c[0])) for c in found)
