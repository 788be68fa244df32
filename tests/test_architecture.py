"""The layout rules of docs/dev/architecture.md, checked on the source with ``ast`` (nothing is imported but
the registries):

- a package imports only packages below it in the doc's "Layers" list (lazy imports inside functions count);
- no two modules import each other, and the module-level imports have no cycle;
- no exporter module names a layer of a model family (families own that knowledge);
- every registered format has a gate, and a runtime that opens its artifacts.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "edgeport"
DOC = ROOT / "docs" / "dev" / "architecture.md"

def layers() -> list[str]:
    """The packages of the doc's "Layers" list, lowest first (a numbered list of `name` items)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\d+\.\s+`([\w.]+)`", section, flags=re.MULTILINE)
    assert names, "docs/dev/architecture.md has no '## Layers' list of `package` items"
    return names


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The edgeport module an import names (``from a.b import c`` names ``a.b.c`` when that is a module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module_level_only: bool = False) -> dict[str, set[str]]:
    """``module -> edgeport modules it imports``; ``from edgeport import __version__`` is data, not an arrow, and
    an import under ``if TYPE_CHECKING:`` never runs (an annotation's name, not an arrow)."""
    out: dict[str, set[str]] = defaultdict(set)
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                       for stmt in block.body for n in ast.walk(stmt)}
        nodes = _top_level(tree) if module_level_only else ast.walk(tree)
        for node in nodes:
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "edgeport" and all(a.name == "__version__" for a in node.names):
                    continue
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if t.split(".")[0] == "edgeport":
                    r = _resolve(t)
                    if r and r != mod:
                        out[mod].add(r)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level(tree: ast.Module):
    """Import statements run when the module is imported (not inside a function or class)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def layer_of(module: str, names: list[str]) -> int:
    """Index in ``names`` of the longest entry ``module`` is or is inside (``edgeport`` itself: the top)."""
    rel = module.removeprefix("edgeport").lstrip(".")
    if not rel:
        return len(names)
    best = None
    for i, n in enumerate(names):
        if (rel == n or rel.startswith(n + ".")) and (best is None or len(n) > len(names[best])):
            best = i
    if best is None:
        pytest.fail(f"{module} is in no package of the Layers list in docs/dev/architecture.md; add it there")
    return best


def test_every_package_is_in_the_layers_list():
    names = layers()
    assert len(names) == len(set(names)), "a package is listed twice"
    for mod in MODULES:
        layer_of(mod, names)


def test_no_package_imports_one_above_it():
    names = layers()
    bad = [f"{mod} imports {t} (above it in docs/dev/architecture.md)" for mod, targets in imports().items()
           for t in targets if layer_of(t, names) > layer_of(mod, names)]
    assert not bad, "\n".join(sorted(bad))


def test_no_two_modules_import_each_other():
    graph = imports()
    pairs = {frozenset({a, b}) for a, ts in graph.items() for b in ts if a in graph.get(b, set())}
    assert not pairs, f"modules importing each other: {sorted(map(sorted, pairs))}"


def test_module_level_imports_have_no_cycle():
    graph = imports(module_level_only=True)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(MODULES):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle at module level: " + " -> ".join(cycle)


def _family_layer_names() -> dict[str, str]:
    """Every layer name a registered family's hook modules list (``LAYER_NAMES``) -> its family."""
    from edgeport.families import FAMILIES

    out = {}
    for name, fam in FAMILIES.items():
        for hook in fam.hooks.values():
            module = importlib.import_module(hook.split(":")[0])
            for layer in getattr(module, "LAYER_NAMES", ()):
                out[layer] = name
    return out


def test_the_audio_family_lists_its_layers():
    names = _family_layer_names()
    assert {"frontend_normalize", "stem_conv", "mel_mixer"} <= set(names)


def test_no_exporter_module_names_a_family_layer():
    names = _family_layer_names()
    bad = []
    for path in sorted((SRC / "exporters").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for layer, family in names.items():
            if re.search(rf"\b{re.escape(layer)}\b", text):
                bad.append(f"{path.relative_to(ROOT)} names the {family} family's layer '{layer}'")
    assert not bad, "\n".join(bad) + "\n(ask the family: edgeport.families.family_of(handle))"


def test_every_registered_format_has_a_gate_and_a_runtime():
    from edgeport.exporters import FORMATS
    from edgeport.runtimes import EXTENSIONS, RUNTIMES
    from edgeport.validation import Gate

    for name, spec in FORMATS.items():
        assert isinstance(spec.gate, Gate), f"format {name} has no gate"
        assert spec.runtime in RUNTIMES, f"format {name}: runtime {spec.runtime} is not registered"
        if spec.extension:
            assert EXTENSIONS.get(spec.extension) == spec.runtime, f"runtimes.EXTENSIONS lacks {spec.extension}"


def test_every_edgeport_import_names_something_that_exists():
    """Each ``from edgeport.X import a`` in src/edgeport and benchmarks/ (lazy ones inside functions included)
    names a module or an attribute that exists: a name removed in one module and still imported in a function
    of another (or in a benchmark script nobody runs in the suite) fails here, not in a user's run."""
    import importlib.util

    missing = []
    for f in sorted([*SRC.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("edgeport")):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if alias.name == "*":  # a star import: every name of the module's __all__ must exist
                    missing += [f"{f.relative_to(ROOT)}:{node.lineno} {node.module}.{n}"
                                for n in getattr(module, "__all__", ["__all__"]) if not hasattr(module, n)]
                elif not hasattr(module, alias.name) and importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    missing.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
    assert not missing, "imports of names that do not exist:\n" + "\n".join(missing)
