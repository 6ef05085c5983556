"""The layers of the package, enforced: one direction of imports, no cycles, small files.

The layers have one source, the ``import-linter`` contracts in ``pyproject.toml`` (``lint-imports``
checks them in CI). This test reads the same contracts and adds what import-linter does not check:
cycles *inside* a layer, every module placed in a layer, files of at most 600 lines (in the packages,
benchmarks/ and scripts/) and a small top level. Every ``import`` statement of ``encoders``,
``fusion`` and ``mmrec`` counts: module level, inside functions (lazy) and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, installed with mmrec there
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("encoders", "fusion", "mmrec")
MAX_LINES = 600
#: Folders outside the packages whose Python files keep the same line limit. (tests/ is not here
#: yet: tests/test_service.py is over it.)
LINE_LIMITED_FOLDERS = ("benchmarks", "scripts")
MAX_TOP_LEVEL_MODULES = 12


def _contracts() -> list[dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _layers_from_contracts() -> tuple[list[tuple[str, ...]], list[str]]:
    """mmrec's layers and the leaf packages, lowest first, as import-linter's contracts state them."""
    mmrec_layers: list[tuple[str, ...]] = []
    leaves: list[str] = []
    for contract in _contracts():
        if contract["type"] != "layers":
            continue
        if contract.get("containers") == ["mmrec"]:  # import-linter lists layers highest first
            mmrec_layers = [tuple(f"mmrec.{n.strip()}" for n in layer.split(":")) for layer in contract["layers"]][::-1]
        elif "containers" not in contract:
            leaves = [p for p in contract["layers"][::-1] if p != "mmrec"]
    if not mmrec_layers or not leaves:
        raise RuntimeError("pyproject.toml lost its import-linter layer contracts")
    return mmrec_layers, leaves


#: mmrec's layers, lowest first: a module may import its own layer and the ones before it.
MMREC_LAYERS, LEAF_ORDER = _layers_from_contracts()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _line_limited_scripts() -> dict[str, Path]:
    """The Python files of LINE_LIMITED_FOLDERS that git tracks or would add (not ignored ones),
    by their path in the repository; every file there when git or the checkout is not at hand."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *LINE_LIMITED_FOLDERS],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [REPO / p for p in listed.split("\0") if p.endswith(".py")]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for folder in LINE_LIMITED_FOLDERS for p in (REPO / folder).rglob("*.py")]
    return {str(p.relative_to(REPO)): p for p in sorted(paths) if p.is_file()}


#: Every file under the line limit: the packages' modules by name, the scripts by path.
LINE_LIMITED = {**MODULES, **_line_limited_scripts()}


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` is or lies in (``pkg.mod.attr`` → ``pkg.mod``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    """Every project module that ``module`` imports anywhere in its body."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` imports the submodule `pkg.sub` when there is one
            targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
        else:
            continue
        for t in targets:
            resolved = _resolve(t)
            if resolved is not None and resolved != module:
                out.add(resolved)
    return out


def _allowed_child_import(src: str, dst: str) -> bool:
    """A package ``__init__`` or a ``registry`` module may import its own package's modules to register them."""
    if MODULES[src].name == "__init__.py":
        return dst.startswith(src + ".")
    if src.rsplit(".", 1)[-1] in ("registry", "registries"):
        return dst.rpartition(".")[0] == src.rpartition(".")[0]
    return False


GRAPH = {m: {d for d in _imports(m) if not _allowed_child_import(m, d)} for m in MODULES}


def _layer(module: str) -> int:
    for i, names in enumerate(MMREC_LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return -1


def test_the_layers_come_from_the_import_linter_contracts():
    assert MMREC_LAYERS[0] == ("mmrec.errors", "mmrec.config", "mmrec.names")
    assert MMREC_LAYERS[-1] == ("mmrec.cli", "mmrec.service")
    assert ("mmrec.engine",) in MMREC_LAYERS and LEAF_ORDER == ["encoders", "fusion"]


def test_the_graph_sees_lazy_and_type_checking_imports():
    # recsys.recommend names HybridCache only under TYPE_CHECKING; the engine imports lazily in methods
    assert "mmrec.recsys.hybrid_serving" in GRAPH["mmrec.recsys.recommend"]
    assert "mmrec.recsys.evaluation" in GRAPH["mmrec.engine"]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles met by a depth-first search (each as a path ending where it started)."""
    color: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        color[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if color.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in color:
                visit(d)
        stack.pop()
        color[m] = 2

    for m in sorted(graph):
        if m not in color:
            visit(m)
    return cycles


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_leaves_never_import_upwards():
    bad = []
    for m, deps in GRAPH.items():
        top = m.split(".")[0]
        for d in deps:
            dtop = d.split(".")[0]
            if top in LEAF_ORDER and (dtop == "mmrec" or LEAF_ORDER.index(dtop) > LEAF_ORDER.index(top)):
                bad.append(f"{m} -> {d}")
    assert not bad, "a leaf package imports upwards:\n" + "\n".join(sorted(bad))


def test_mmrec_layers_import_downwards_only():
    bad = []
    for m, deps in GRAPH.items():
        if not m.startswith("mmrec.") or m == "mmrec":
            continue
        for d in deps:
            if d.startswith("mmrec") and d != "mmrec" and _layer(d) > _layer(m):
                bad.append(f"{m} (layer {_layer(m)}) -> {d} (layer {_layer(d)})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_only_the_faces_import_the_engine():
    users = sorted(m for m, deps in GRAPH.items() if "mmrec.engine" in deps)
    allowed = ("mmrec.cli", "mmrec.service")
    assert all(m.startswith(allowed) for m in users), users


def test_every_module_is_in_a_layer():
    stray = [m for m in MODULES if m.startswith("mmrec.") and _layer(m) < 0]
    assert not stray, f"modules outside the layers of this test: {stray}"


@pytest.mark.parametrize("module", sorted(LINE_LIMITED))
def test_no_source_file_over_600_lines(module):
    n = len(LINE_LIMITED[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{LINE_LIMITED[module].relative_to(REPO)} has {n} lines"


def test_the_line_limit_covers_benchmarks_and_scripts():
    assert "benchmarks/build_catalog.py" in LINE_LIMITED and "scripts/build_demo_assets.py" in LINE_LIMITED


def test_mmrec_top_level_stays_small():
    top = [p.name for p in (REPO / "mmrec").glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)
