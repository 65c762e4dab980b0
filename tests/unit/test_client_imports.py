"""The client's modules import each other in one direction (see the layering in
client/_tensor.py), and Tensor's methods are defined with its classes.

Read from the source (the AST), so that an import hidden inside a function to hold a
circle apart counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "client"

# Imported inside functions on purpose: they bring in grpc and the generated code, or the
# worker's engine, which `import remotegrad` must not need (the worker imports it).
DEFERRED = frozenset({"remotegrad._remote", "remotegrad._engine"})


def _module_name(path: Path) -> str:
    parts = ["remotegrad", *path.relative_to(CLIENT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in CLIENT.rglob("*.py")}


def _target(module: str, name: str | None) -> str | None:
    """The client module an import of `module` (or `from module import name`) runs."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    m = module
    while m not in MODULES and "." in m:
        m = m.rsplit(".", 1)[0]
    # remotegrad.proto, .worker, ... are other packages: not the client's __init__
    return m if m in MODULES and (m != "remotegrad" or module == "remotegrad") else None


def _imports(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        found = [_target(a.name, None) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[:len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module
        found = [_target(module, a.name) for a in node.names]
    else:
        return []
    return [f for f in found if f is not None]


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _edges(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(what the module imports when it is imported, what its functions import)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    top: set[str] = set()
    local: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if _type_checking(node):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        (local if in_function else top).update(i for i in _imports(node, package) if i != name)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return top, local


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


EDGES = {name: _edges(name, path) for name, path in MODULES.items()}


def test_module_imports_have_no_cycle():
    graph = {name: top for name, (top, _) in EDGES.items()}
    assert _cycle(graph) is None, f"client modules import in a circle: {_cycle(graph)}"


def test_no_import_inside_a_function_holds_a_circle_apart():
    """The package's own modules (client/*.py): with the imports their functions make added
    (all but the deferred ones), the graph still has no cycle."""
    graph = {name: set(top) for name, (top, _) in EDGES.items()}
    for name, (_, local) in EDGES.items():
        if name.count(".") == 1:
            graph[name] |= local - DEFERRED
    assert _cycle(graph) is None, f"a function-level import closes a circle: {_cycle(graph)}"


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_nothing_patches_methods_onto_tensor():
    """Tensor's attributes come from class bodies: no setattr(Tensor, ...) or
    Tensor.x = ... anywhere in the client."""
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "setattr" and node.args
                    and isinstance(node.args[0], ast.Name) and node.args[0].id == "Tensor"):
                found.append(f"{name}:{node.lineno}")
            targets = node.targets if isinstance(node, ast.Assign) else []
            found += [f"{name}:{node.lineno}" for t in targets
                      if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                      and t.value.id == "Tensor"]
    assert not found, f"attributes patched onto Tensor at {found}"
