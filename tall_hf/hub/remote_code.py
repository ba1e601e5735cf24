"""The package's code saved inside a checkpoint, so that `trust_remote_code=True` loads it with transformers alone.

transformers runs a checkpoint's own code from flat files beside `config.json`, following single-dot relative
imports (`from .module import name`). The modules that define a model, its config and its processor are copied
with every module they import from the package, each as one flat file (`tall_hf.models.modeling_composite` ->
`tall_hf__models__modeling_composite.py`) with its package-relative imports rewritten to those files; `if
TYPE_CHECKING:` blocks are dropped (they never run). Package data a module reads from files (the model card templates) is written into its
copy as a literal (`INLINED_MODULES`). The returned `auto_map` points the Auto classes at the copied classes.

A model that was itself loaded with `trust_remote_code=True` saves the copy it runs, with every module it imports
(transformers' `get_relative_import_files`), so its checkpoints load the same way.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import sys
from pathlib import Path

PACKAGE = "tall_hf"
# Modules whose copy is the value of one variable, written as a literal: they read package data (files a checkpoint's
# code does not carry).
INLINED_MODULES = {"tall_hf.model_cards": "TEMPLATES"}
_ROOT = Path(__file__).resolve().parents[1]  # the tall_hf package folder


def _source_file(module: str) -> Path | None:
    """The source file of a package module (`None` for anything else)."""
    head, *rest = module.split(".")
    if head != PACKAGE:
        return None
    candidates = [_ROOT.joinpath(*rest).with_suffix(".py")] if rest else []
    candidates.append(_ROOT.joinpath(*rest, "__init__.py"))
    return next((path for path in candidates if path.is_file()), None)


def _is_package_module(module: str) -> bool:
    return module.split(".")[0] == PACKAGE


def flat_name(module: str) -> str:
    """The flat file (module) name of a package module in a checkpoint (`tall_hf.utils.hub` -> `tall_hf__utils__hub`,
    a package's `__init__` -> `..___init__`); a module that is already a checkpoint's copy keeps its name."""
    if not _is_package_module(module):
        return module.rsplit(".", 1)[-1]
    package = _source_file(module).name == "__init__.py"
    return module.replace(".", "__") + ("___init__" if package else "")


def _imported_module(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a relative `from ... import` of `module` names."""
    parts = module.split(".")
    if _source_file(module).name != "__init__.py":
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _flatten(module: str) -> tuple[str, list[str]]:
    """The module's source with its relative imports rewritten to flat modules, and the modules it imports."""
    if module in INLINED_MODULES:
        name = INLINED_MODULES[module]
        value = getattr(importlib.import_module(module), name)
        return f'"""The copy of `{module}` in a checkpoint: its `{name}` as a literal."""\n\n{name} = {value!r}\n', []
    lines = _source_file(module).read_text(encoding="utf-8").splitlines(keepends=True)
    tree = ast.parse("".join(lines))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if _is_type_checking(node):
            for line in range(node.body[0].lineno, node.body[-1].end_lineno + 1):
                skipped.add(line)
            lines[node.body[0].lineno - 1] = " " * node.body[0].col_offset + "pass\n"
            for line in range(node.body[0].lineno + 1, node.body[-1].end_lineno + 1):
                lines[line - 1] = ""
    imported = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or not node.level or node.lineno in skipped:
            continue
        target = _imported_module(module, node)
        submodules = [f"{target}.{alias.name}" for alias in node.names if _source_file(f"{target}.{alias.name}")]
        if submodules or _source_file(target) is None:
            raise ValueError(f"{module} line {node.lineno}: write `from .{node.module or ''}.x import ...` forms.")
        imported.append(target)
        line = lines[node.lineno - 1]
        start = line.index("from", node.col_offset)
        end = line.index(" import", start)
        lines[node.lineno - 1] = f"{line[:start]}from .{flat_name(target)}{line[end:]}"
    return "".join(lines), imported


def save_remote_code(save_directory: str | os.PathLike, classes: dict[str, type]) -> dict[str, str]:
    """Copy the modules defining `classes` (`{"AutoModel": TallModel, ...}`) and everything they import from the
    package into `save_directory` as flat files; returns the `auto_map` (`{"AutoModel": "file.Class", ...}`)."""
    todo = [cls.__module__ for cls in classes.values() if _is_package_module(cls.__module__)]
    copies = [cls.__module__ for cls in classes.values() if not _is_package_module(cls.__module__)]
    if copies:
        from transformers.dynamic_module_utils import get_relative_import_files

        for module in dict.fromkeys(copies):
            source = sys.modules[module].__file__
            for path in (source, *get_relative_import_files(source)):
                shutil.copyfile(path, Path(save_directory, Path(path).name))
    done: set[str] = set()
    while todo:
        module = todo.pop()
        if module in done:
            continue
        done.add(module)
        source, imported = _flatten(module)
        Path(save_directory, f"{flat_name(module)}.py").write_text(source, encoding="utf-8")
        todo.extend(imported)
    return {auto_class: f"{flat_name(cls.__module__)}.{cls.__name__}" for auto_class, cls in classes.items()}


__all__ = ["flat_name", "save_remote_code"]
