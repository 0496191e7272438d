"""The import layers of the package, checked from the source with the standard library only.

From the bottom up: the foundation (``animagine.errors``, ``animagine.files``,
``animagine._version`` and any other top-level module not named below), the prompt core
(``animagine.core``), metadata (``animagine.metadata``), generation (``animagine.generation``),
then the applications (``animagine.apps``) and the test helpers (``animagine.testing``) side by
side, and the entry point (``animagine.__main__``). A module may import its own layer and the
layers below, never one above; every import counts, including those inside functions and under
``TYPE_CHECKING``. The package root (``animagine/__init__.py``) re-exports all layers, so only the
top may import it.

The same rule is an import-linter contract in ``pyproject.toml`` (``nox -s lint`` runs
``lint-imports``); this test needs no extra package and also covers the private-name rule, which
reaches beyond the package into ``tests/`` and ``benchmarks/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "animagine"

#: Rank of each layer, bottom first. Modules of the same rank and group may import each other.
FOUNDATION, CORE, METADATA, GENERATION, TOP, ENTRY = range(6)
LAYERS: dict[str, int] = {
    "animagine.core": CORE,
    "animagine.metadata": METADATA,
    "animagine.generation": GENERATION,
    "animagine.apps": TOP,
    "animagine.testing": TOP,
    "animagine.__main__": ENTRY,
}
LAYER_NAMES = {
    FOUNDATION: "foundation",
    CORE: "core",
    METADATA: "metadata",
    GENERATION: "generation",
    TOP: "apps/testing",
    ENTRY: "entry point",
}


class Import(NamedTuple):
    """One imported module (and, for ``from M import name``, the name) at a place in a file."""

    path: Path
    line: int
    module: str
    name: str | None


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module of a ``from ... import``, relative imports included."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, module: str | None = None) -> Iterator[Import]:
    """Every import in a file, at any depth, as absolute module names.

    ``from M import x`` yields ``M.x`` when ``M/x.py`` or ``M/x/`` exists in the package (a
    submodule), else ``M`` with ``name="x"``. Literal ``importlib.import_module("...")`` calls
    count as imports too.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            if node.level and module is None:
                continue  # a relative import outside the package: not ours
            target = _resolve(node, module or "", is_package)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if alias.name != "*" and _is_module(submodule):
                    yield Import(path, node.lineno, submodule, None)
                else:
                    yield Import(path, node.lineno, target, alias.name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(path, node.lineno, node.args[0].value, None)


def _is_module(name: str) -> bool:
    if name != PACKAGE and not name.startswith(f"{PACKAGE}."):
        return False
    location = ROOT.joinpath(*name.split("."))
    return location.with_suffix(".py").is_file() or (location / "__init__.py").is_file()


def package_modules() -> dict[str, Path]:
    return {_module_name(path, ROOT): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer rank of a module of the package; ``None`` for the package root."""
    if module == PACKAGE:
        return None
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(f"{prefix}."):
            return rank
    return FOUNDATION


def _group(module: str) -> str:
    """The layer's own name (``animagine.apps`` and ``animagine.testing`` are separate groups)."""
    for prefix in LAYERS:
        if module == prefix or module.startswith(f"{prefix}."):
            return prefix
    return "foundation"


def layer_violations() -> list[str]:
    found = []
    for importer, path in package_modules().items():
        importer_rank = layer_of(importer)
        if importer_rank is None:
            continue  # the package root re-exports every layer
        for imp in imports_of(path, importer):
            if imp.module != PACKAGE and not imp.module.startswith(f"{PACKAGE}."):
                continue
            target_rank = layer_of(imp.module)
            where = f"{path.relative_to(ROOT)}:{imp.line}: {importer} imports {imp.module}"
            if target_rank is None:
                if importer_rank < TOP:
                    found.append(f"{where} (the package root, which re-exports every layer)")
            elif target_rank > importer_rank or (
                target_rank == importer_rank == TOP and _group(imp.module) != _group(importer)
            ):
                found.append(
                    f"{where} ({LAYER_NAMES[importer_rank]} -> {LAYER_NAMES[target_rank]})"
                )
    return found


def private_owner(module: str, name: str | None) -> str | None:
    """The package a private import belongs to, or ``None`` when the import is public.

    ``animagine.core._prompt`` (and anything in it) belongs to ``animagine.core``; an underscore
    name imported from a module belongs to that module's package (from a package: the package).
    """
    parts = module.split(".")
    for index, part in enumerate(parts[1:], start=1):
        if _is_private(part):
            return ".".join(parts[:index])
    if name is not None and _is_private(name):
        location = ROOT.joinpath(*parts)
        return module if (location / "__init__.py").is_file() else ".".join(parts[:-1])
    return None


def private_violations() -> list[str]:
    files: list[tuple[Path, str | None]] = [
        (path, module) for module, path in package_modules().items()
    ]
    for folder in ("tests", "benchmarks"):
        files += [(path, None) for path in sorted((ROOT / folder).rglob("*.py"))]
    found = []
    for path, importer in files:
        for imp in imports_of(path, importer):
            if imp.module != PACKAGE and not imp.module.startswith(f"{PACKAGE}."):
                continue
            owner = private_owner(imp.module, imp.name)
            inside = importer is not None and (
                importer == owner or importer.startswith(f"{owner}.")
            )
            if owner is not None and not inside:
                what = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
                found.append(
                    f"{path.relative_to(ROOT)}:{imp.line}: imports {what}, private to {owner}"
                )
    return found


def test_every_layer_has_modules() -> None:
    """The layer map matches the tree: a renamed subpackage must not make the checks vacuous."""
    ranks = {layer_of(module) for module in package_modules()}
    assert ranks >= {FOUNDATION, CORE, METADATA, GENERATION, TOP, ENTRY}
    for module in ("animagine.errors", "animagine._version"):
        assert layer_of(module) == FOUNDATION
        assert _is_module(module)


def test_lower_layers_never_import_higher_ones() -> None:
    assert layer_violations() == []


def test_no_private_name_crosses_a_package_boundary() -> None:
    assert private_violations() == []


def test_the_checks_see_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import animagine.core._tag\n"
        "from . import _grammar\n"
        "from ..generation import Generator\n"
        "if TYPE_CHECKING:\n"
        "    from animagine.metadata import _private_name\n"
        "def f():\n"
        "    import importlib\n"
        "    return importlib.import_module('animagine.apps.cli')\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    found = {(imp.module, imp.name) for imp in imports_of(path, "animagine.core._lint")}
    assert found >= {
        ("animagine.core._tag", None),
        ("animagine.core._grammar", None),
        ("animagine.generation", "Generator"),
        ("animagine.metadata", "_private_name"),
        ("animagine.apps.cli", None),
    }
    assert private_owner("animagine.core._tag", None) == "animagine.core"
    assert private_owner("animagine.core._tag", "Tag") == "animagine.core"
    assert private_owner("animagine.metadata", "_private_name") == "animagine.metadata"
    assert private_owner("animagine.errors", "_hidden") == "animagine"
    assert private_owner("animagine._version", None) == "animagine"
    assert private_owner("animagine.core", "Prompt") is None
    assert private_owner("animagine.__main__", None) is None
    assert layer_of("animagine.files") == FOUNDATION
    assert layer_of("animagine") is None
