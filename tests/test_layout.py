"""The package's layout: no import cycles between its modules, no module over MAX_LINES lines, and
subpackage __init__ files that do nothing on import. Checked statically (ast), lazy imports included,
so that a cycle hidden behind a function-level import counts too."""
import ast
import pkgutil
from pathlib import Path
from typing import Dict, List, Set

import spacy_domain_ner
from conftest import imported_names

PACKAGE = Path(spacy_domain_ner.__file__).parent
MAX_LINES = 400


def modules() -> Dict[str, Path]:
    """Every module of the package (packages by their __init__), by dotted name."""
    found = {"spacy_domain_ner": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], "spacy_domain_ner."):
        relative = Path(*info.name.split(".")[1:])
        found[info.name] = PACKAGE / relative / "__init__.py" if info.ispkg else (PACKAGE / relative).with_suffix(".py")
    return found


def imports(name: str, path: Path, known: Set[str]) -> Set[str]:
    """The package modules `name` imports anywhere in its file (top level or in functions)."""
    found = imported_names(name, path)
    # importing a.b.c runs a and a.b first, but those are side-effect free (checked below): count the module itself
    return {m for m in found if m in known and m != name}


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a path [a, b, ..., a], or [] when the graph is acyclic."""
    state: Dict[str, int] = {}  # 1: on the stack, 2: done
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_the_module_graph_has_no_cycle():
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    assert len(found) > 40 and graph["spacy_domain_ner.knowledge.mining"] >= {"spacy_domain_ner.knowledge.matcher"}
    assert find_cycle(graph) == []


def test_find_cycle_sees_lazy_imports(tmp_path):
    # the checker itself: a function-level import closing a loop is a cycle
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from .b import g\n")
    b.write_text("def g():\n    from .a import f\n")
    graph = {name: imports(name, path, {"p.a", "p.b"}) for name, path in (("p.a", a), ("p.b", b))}
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]
    assert find_cycle({"x": {"y"}, "y": set()}) == []


def test_no_module_is_too_long():
    lengths = {name: len(path.read_text(encoding="utf8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_package_init_files_have_no_side_effects():
    # docstrings and __version__ only: importing a subpackage registers and imports nothing
    for name, path in modules().items():
        if path.name != "__init__.py" or name == "spacy_domain_ner.cli":  # cli/__init__ assembles the typer app
            continue
        for node in ast.parse(path.read_text(encoding="utf8")).body:
            is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            is_version = isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]
            assert is_docstring or is_version, f"{path}: {ast.dump(node)[:80]}"
