"""The layering of docs/design.md, enforced on the source tree: no module imports from a lower
layer (not even inside a function), no private module or name crosses a package boundary, and no
two files import each other (directly or through others)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "lossatlas"


def _layers() -> dict[str, int]:
    """Package → layer number, read from the layer table of docs/design.md."""
    out = {}
    for line in (ROOT / "docs" / "design.md").read_text().splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|(.*?)\|", line)
        if m:
            for pkg in re.findall(r"`lossatlas\.([a-z_]+)`", m.group(2)):
                out[pkg] = int(m.group(1))
    return out


def _modules():
    """(dotted module name, its top-level part under lossatlas, path) for every source file."""
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(("lossatlas", *parts)), (parts[0] if parts else ""), path


def _imports(path: Path, module: str):
    """Absolute names imported by a file (every import statement, inside functions too):
    ``(imported module, imported name or None, line)``."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for a in node.names:
                yield target, a.name, node.lineno


def _top(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "lossatlas" and len(parts) > 1 else None


def test_design_document_lists_every_package():
    layers = _layers()
    pkgs = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    pkgs |= {p.stem for p in SRC.glob("_*.py") if p.stem not in ("__init__", "__main__")}
    assert pkgs <= set(layers), f"packages missing from docs/design.md's layer table: {sorted(pkgs - set(layers))}"


def test_no_import_points_up_a_layer():
    layers = _layers()
    bad = []
    for module, top, path in _modules():
        if top in ("", "__main__") or top not in layers:  # the package root (the face) and the entry point
            continue
        for target, _, line in _imports(path, module):
            t = _top(target)
            if t is not None and t in layers and layers[t] > layers[top]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({top}, layer {layers[top]}) imports "
                           f"{target} (layer {layers[t]})")
    assert not bad, "\n".join(bad)


def test_no_private_module_or_name_crosses_a_package():
    bad = []
    for module, top, path in _modules():
        for target, name, line in _imports(path, module):
            t = _top(target)
            if t is None or t == top or top == "":
                continue
            rest = target.split(".")[2:]
            if t.startswith("_"):  # layer 0 modules: private by name, shared on purpose
                continue
            if any(p.startswith("_") for p in rest) or (name is not None and name.startswith("_")):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}" + (f".{name}" if name else ""))
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_files():
    files = {module: path for module, _, path in _modules()}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for target, name, _ in _imports(path, module):
            for cand in (f"{target}.{name}" if name else None, target):
                if cand in files and cand != module:
                    # a package's __init__ re-exports its files: an import of the package from one
                    # of its own files is not a cycle of files (checked by the re-export's file)
                    if not module.startswith(cand + "."):
                        graph[module].add(cand)
                    break
    # Tarjan's strongly connected components
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    import sys

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert not comps, "import cycles between files: " + "; ".join(" ↔ ".join(c) for c in comps)
