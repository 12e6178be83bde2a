"""nnlib's imports run one way: the graph of module imports (top-level and inside functions,
``nnlib`` and relative ones) has no cycle, and nnlib.llama's modules import only from layers
below or beside them in ``LAYERS``."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "nnlib"

#: nnlib.llama bottom to top; a module may import from its own layer or lower ones.
LAYERS = [
    {"linear", "chat", "compare", "sampling", "models", "files"},
    {"model", "tokenizer"},
    {"weights", "gguf_tokenizer"},
    {"memory"},
    {"devices", "meta_format", "hf_format", "gguf"},
    {"checkpoint", "device_notes"},
    {"loading", "stepper"},
    {"generation", "trace"},
    {"__init__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every nnlib module ``path`` imports, wherever the import statement stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nnlib"}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "nnlib":
                continue
            if node.module:  # ``from . import x`` imports the module x, not the package
                found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return found


def import_graph() -> nx.DiGraph:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in files.items():
        graph.add_node(name)
        for target in imports_of(path):
            if target in files and target != name:
                graph.add_edge(name, target)
    return graph


def test_nnlib_has_no_import_cycle():
    graph = import_graph()
    # edges the sources certainly have, so an empty graph cannot pass for an acyclic one
    assert {("nnlib.llama.generation", "nnlib.llama.loading"), ("nnlib.llama.loading", "nnlib.llama.model")} \
        <= set(graph.edges)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_llama_modules_import_only_downwards():
    rank = {m: i for i, layer in enumerate(LAYERS) for m in layer}
    llama = {p.stem for p in (ROOT / "llama").glob("*.py")}
    assert llama <= set(rank), f"put these in LAYERS: {sorted(llama - set(rank))}"
    upward = []
    for a, b in import_graph().edges:
        if a.startswith("nnlib.llama") and b.startswith("nnlib.llama."):
            src = a.rpartition(".")[2] if a != "nnlib.llama" else "__init__"
            dst = b.rpartition(".")[2]
            if rank[dst] > rank[src]:
                upward.append(f"{src} -> {dst}")
    assert not upward, f"imports that run up a layer: {upward}"


@pytest.mark.parametrize("source, modules", [
    # in nnlib/llama/probe.py, "." is the package nnlib.llama
    ("from . import x", {"nnlib.llama.x"}),
    ("from .a import b", {"nnlib.llama.a", "nnlib.llama.a.b"}),  # b: a module or a name in a
    ("from .. import plots", {"nnlib.plots"}),
    ("from nnlib.llama.model import Transformer", {"nnlib.llama.model", "nnlib.llama.model.Transformer"}),
    ("import nnlib.plots", {"nnlib.plots"}),
    ("import numpy", set()),  # not nnlib's
])
def test_imports_are_found(source, modules):
    """The parser sees relative and absolute imports, also inside a function, and resolves them
    to the modules written out by hand above."""
    text = f"def f():\n    {source}\n"
    assert imports_of_text(text, ROOT / "llama" / "probe.py") == modules


def imports_of_text(text: str, path: Path) -> set[str]:
    original = Path.read_text
    try:
        Path.read_text = lambda self, encoding=None: text  # type: ignore[method-assign]
        return imports_of(path)
    finally:
        Path.read_text = original  # type: ignore[method-assign]
