"""The package's parts import one way, in the layers of LAYERS (cli -> study -> findings -> train / eval /
laws -> data / models -> ops -> helpers), so that each can be read, tested and changed without the ones
above it."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "linscale"
KERNELS = PACKAGE.parent / "kernels"


@functools.cache  # parsed once for the tests that read it (about a second each on a loaded machine)
def part_imports() -> dict[str, set[str]]:
    """For each part of linscale (a top-level module or subpackage), the other parts it imports, in any
    of its files, at module level or inside a function (a deferred import is still a dependency)."""
    graph: dict[str, set[str]] = {}
    # kernels/ sits beside the package (installed as linscale.kernels): its files are the part "kernels"
    files = [(path, path.relative_to(PACKAGE).with_suffix("").parts[0]) for path in PACKAGE.rglob("*.py")]
    for path, part in [*files, *((path, "kernels") for path in KERNELS.rglob("*.py"))]:
        targets = graph.setdefault(part, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("linscale"):
                names = node.module.split(".")[1:2] or [alias.name for alias in node.names]  # `from linscale import x`
            elif isinstance(node, ast.Import):
                names = [alias.name.split(".")[1] for alias in node.names if alias.name.startswith("linscale.")]
            else:
                continue
            # `from linscale import __version__` reads the package's own __init__, not a part
            targets.update(name if name in PARTS else "__init__" for name in names if name != part)
    return graph


# every top-level module and subpackage of linscale (kernels/ is installed as linscale.kernels)
PARTS = {path.stem for path in PACKAGE.glob("*.py")} | {path.parent.name for path in PACKAGE.glob("*/__init__.py")} \
    | {"kernels"}

# The layers, from the entry points down: a part imports only parts of its own layer or of layers below
# it (and never in a circle). A newcomer finds here where a module belongs; a new module must be placed.
LAYERS = (
    ("entry points", {"__main__", "cli", "sphinx_study"}),
    ("the study and its book", {"study", "book", "bench", "probes"}),
    ("findings and their presentation", {"findings", "compare", "tables", "plotting"}),
    ("training, evaluation, fits and the design check", {"train", "results", "eval", "laws", "design"}),
    ("data and models", {"data", "presets", "models", "flops", "architectures", "accounting"}),
    ("token-mixing ops and kernels", {"ops", "kernels"}),
    ("helpers that import no other part", {"__init__", "config", "atomic", "lazy", "processes", "_lm_eval_plugin"}),
)


def cycles(graph: dict[str, set[str]]) -> list[str]:
    def reaches(start, goal, seen=()):
        return any(t == goal or (t not in seen and reaches(t, goal, (*seen, t))) for t in graph.get(start, ()))

    return sorted(part for part in graph if reaches(part, part))


def test_the_packages_parts_import_one_way():
    graph = part_imports()
    assert {"cli", "study", "findings", "train", "eval", "laws", "data", "models", "ops", "results"} <= graph.keys()
    found = cycles(graph)
    assert not found, {part: sorted(graph[part]) for part in found}
    assert "train" in graph["results"]  # the chapters' reader of a study's preset resolves it with train's rules


def test_every_part_imports_only_its_own_layer_or_those_below():
    depth = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}
    assert sum(len(parts) for _, parts in LAYERS) == len(depth)  # a part in two layers
    assert depth.keys() == PARTS, {"in no layer": sorted(PARTS - depth.keys()),
                                   "not a part": sorted(depth.keys() - PARTS)}
    upward = {f"{part} -> {target}": f"{LAYERS[depth[part]][0]} -> {LAYERS[depth[target]][0]}"
              for part, targets in part_imports().items() for target in targets if depth[target] < depth[part]}
    assert not upward, upward


def test_every_parts_files_are_read():
    """Each part of the table is read for its imports, kernels/ too (it lies outside linscale/): a part never
    read could import upwards unnoticed."""
    assert part_imports().keys() == PARTS


def test_a_cycle_is_found():
    """The check itself: a part importing one that imports it back is a cycle, however long the way."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c"]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_every_subpackage_is_in_the_wheel():
    """pyproject.toml lists the packages by hand (kernels/ is installed as linscale.kernels): linscale.findings
    was missing from the list, so a plain `pip install .` lacked it and compare, the fits and the book failed
    on import (the editable installs of tasks.py did not show it)."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for name, folder in config["package-dir"].items():
        root = PACKAGE.parent / folder
        found |= {".".join((name, *init.parent.relative_to(root).parts)) for init in root.rglob("__init__.py")}
    assert set(config["packages"]) == found, sorted(found ^ set(config["packages"]))
