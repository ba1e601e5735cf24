"""The package's code saved inside a checkpoint, so that `trust_remote_code=True` loads it with transformers alone.

transformers runs a checkpoint's own code from flat files beside `config.json`. Each module that defines one of the
saved classes (`configuration_tall`, `modeling_tall`, `processing_tall`) is written as one file of that name, made
self-contained the way transformers' modular converter writes a model's files: the package modules it imports are
parsed with `ast` and followed transitively, and every top-level definition (class, function, constant) the file
needs is written into it, in dependency order, in place of the package-internal import. A definition goes into the
first file that needs it; later files import it from there (`from .configuration_tall import ...`), and the files are
ordered so that each imports only from earlier ones. Imports of other libraries are kept, once each. A statement that
registers into a needed definition at import time (a decorator or a call, like `@register_fusion("last")`) comes with
it. `if TYPE_CHECKING:` blocks are dropped (they never run).

A model that was itself loaded with `trust_remote_code=True` saves the files it runs, with every file they import
(transformers' `get_relative_import_files`), so its checkpoints load the same way.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PACKAGE = "tall_hf"

# An import of another library, as the name it binds: ("import", module, asname) or ("from", module, name, asname).
_ImportSpec = tuple


@dataclass(eq=False)
class _Statement:
    """A top-level statement of a package module, with the comments above it (and an attribute docstring below)."""

    module: str
    position: int  # its index among the module's statements
    text: str
    code: str  # its syntax tree, dumped: the same in two modules means the same definition
    binds: tuple[str, ...]  # the module-level names it defines
    refs: frozenset[str]  # every name it reads (a superset of the module-level ones it needs)
    effect_refs: frozenset[str] | None  # the names its import-time side effects read (decorators, a bare call)
    is_definition: bool  # a `def` or `class`


@dataclass
class _Module:
    name: str
    docstring: str | None
    future_annotations: bool
    statements: list[_Statement]
    defined: dict[str, _Statement] = field(default_factory=dict)
    imports: dict[str, _ImportSpec] = field(default_factory=dict)  # bound name -> another library's import
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # bound name -> (package module, its name)


def _is_package_module(module: str) -> bool:
    return module.split(".")[0] == PACKAGE


def _is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _names(nodes) -> frozenset[str]:
    return frozenset(n.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Name))


def _binds(node: ast.stmt) -> tuple[str, ...]:
    """The module-level names a top-level statement defines (none for a call, or an item set in a table)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return (node.name,)
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return tuple(
            n.id
            for target in targets
            for n in ast.walk(target)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        )
    if isinstance(node, ast.Expr):
        return ()
    raise ValueError(f"line {node.lineno}: a top-level `{type(node).__name__}` cannot be written into remote code.")


@cache
def _parse(module: str) -> _Module:
    """A package module's top-level statements, its imports of other libraries and its links to package modules."""
    spec = importlib.util.find_spec(module)
    path = Path(spec.origin)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parsed = _Module(module, ast.get_docstring(tree, clean=False), False, [])
    end = 0  # the last source line already given to a statement
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    if body is not tree.body:
        end = tree.body[0].end_lineno
    for node in body:
        text = "".join(lines[end : node.end_lineno]).strip("\n")
        end = node.end_lineno
        if isinstance(node, ast.Import | ast.ImportFrom):
            _read_import(parsed, node, package)
        elif _is_type_checking(node):
            continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and parsed.statements:
            parsed.statements[-1].text += "\n" + text  # an attribute docstring
        else:
            definition = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            binds = _binds(node)
            effects = node.decorator_list if definition else [] if binds else [node]
            statement = _Statement(
                module,
                len(parsed.statements),
                text,
                ast.dump(node),
                binds,
                _names([node]),
                _names(effects) if effects else None,
                definition,
            )
            parsed.statements.append(statement)
            parsed.defined.update(dict.fromkeys(statement.binds, statement))
    return parsed


def _read_import(parsed: _Module, node: ast.Import | ast.ImportFrom, package: str) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _is_package_module(alias.name):
                raise ValueError(f"{parsed.name} line {node.lineno}: write `from ... import name` forms.")
            parsed.imports[alias.asname or alias.name.split(".")[0]] = ("import", alias.name, alias.asname)
        return
    if node.module == "__future__":
        parsed.future_annotations |= any(alias.name == "annotations" for alias in node.names)
        return
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module
    for alias in node.names:
        bound = alias.asname or alias.name
        if not _is_package_module(target):
            parsed.imports[bound] = ("from", target, alias.name, alias.asname)
        elif _is_submodule(target, alias.name):
            raise ValueError(f"{parsed.name} line {node.lineno}: import names, not the module {target}.{alias.name}.")
        elif bound != alias.name:
            raise ValueError(f"{parsed.name} line {node.lineno}: package names are imported without `as`.")
        else:
            parsed.links[bound] = (target, alias.name)


def _is_submodule(package: str, name: str) -> bool:
    spec = importlib.util.find_spec(package)
    return spec.submodule_search_locations is not None and importlib.util.find_spec(f"{package}.{name}") is not None


def _resolve(module: str, name: str) -> _Statement | _ImportSpec | None:
    """What `name` is in `module`: the statement defining it, another library's import, or `None` (a builtin or a
    local name)."""
    parsed = _parse(module)
    if name in parsed.defined:
        return parsed.defined[name]
    if name in parsed.links:
        target = _resolve(*parsed.links[name])
        if target is None:
            raise ValueError(f"{module} imports {name!r} from {parsed.links[name][0]}, which does not define it.")
        return target
    return parsed.imports.get(name)


def _dependencies(statement: _Statement, names: frozenset[str] | None = None) -> list[_Statement | _ImportSpec]:
    found = (_resolve(statement.module, name) for name in sorted(statement.refs if names is None else names))
    return [target for target in found if target is not None and target is not statement]


@cache
def _closure(statement: _Statement, effects_only: bool = False) -> frozenset[_Statement]:
    """The package statements `statement` needs (those its side effects need, with `effects_only`), transitively."""
    seen: set[_Statement] = set()
    todo = [
        target
        for target in _dependencies(statement, statement.effect_refs if effects_only else None)
        if isinstance(target, _Statement)
    ]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(target for target in _dependencies(current) if isinstance(target, _Statement))
    return frozenset(seen)


@dataclass
class _File:
    entry: str  # the package module the file is named after and whose every statement it holds
    index: int
    statements: list[_Statement] = field(default_factory=list)
    bound: dict[str, object] = field(default_factory=dict)  # name -> its statement's code, import spec or file
    imports: dict[str, _ImportSpec] = field(default_factory=dict)
    from_files: dict[int, set[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entry.rsplit(".", 1)[-1]

    def bind(self, name: str, value: object) -> bool:
        """Bind `name` to `value`; `False` if it was already bound to the same; raises on a clash."""
        if name not in self.bound:
            self.bound[name] = value
            return True
        if self.bound[name] != value:
            raise ValueError(f"{self.name}.py: two different definitions of {name!r} would share the file.")
        return False


class _Bundler:
    """Writes the files one after another; `placed` remembers which file holds each package statement."""

    def __init__(self, entries: list[str]) -> None:
        self.entries = entries
        self.placed: dict[_Statement, _File] = {}
        self.files: list[_File] = []

    def write(self, entry: str) -> _File:
        file = _File(entry, len(self.files))
        self.files.append(file)
        for statement in _parse(entry).statements:
            self.place(statement, file)
        while self.place_registrations(file):
            pass
        return file

    def place(self, statement: _Statement, file: _File) -> None:
        self.placed[statement] = file
        if statement.binds and not any([file.bind(name, statement.code) for name in statement.binds]):
            return  # the same definition, from another module (e.g. `logger = logging.get_logger(__name__)`)
        file.statements.append(statement)
        for name in sorted(statement.refs):
            self.need(statement.module, name, file)

    def need(self, module: str, name: str, file: _File) -> None:
        target = _resolve(module, name)
        if target is None:
            return
        if isinstance(target, _Statement) and (self.placed.get(target) is file or file.bound.get(name) == target.code):
            return  # in this file already (or the same definition from another module)
        if not isinstance(target, _Statement):
            file.bind(name, target)
            file.imports[name] = target
        elif target in self.placed:
            owner = self.placed[target]
            if file.bind(name, owner):
                file.from_files.setdefault(owner.index, set()).add(name)
        elif target.module in self.entries and target.module != file.entry:
            raise ValueError(f"{file.entry} needs {name!r} of {target.module}, which imports it (an import cycle).")
        else:
            self.place(target, file)

    def place_registrations(self, file: _File) -> bool:
        """Place the statements whose import-time side effects (decorators, calls) use a placed definition, as
        `@register_fusion("last")` fills `FUSION_METHODS`; whether any was."""
        placed_any = False
        for module in sorted({statement.module for statement in self.placed}):
            for statement in _parse(module).statements:
                if statement.effect_refs is None or statement in self.placed:
                    continue
                if not _closure(statement, effects_only=True).isdisjoint(self.placed):
                    self.place(statement, file)
                    placed_any = True
        return placed_any


def _entry_order(entries: list[str]) -> list[str]:
    """The entry modules, each after those it needs definitions of (else in the given order)."""
    needs = {
        entry: {
            needed.module
            for statement in _parse(entry).statements
            for needed in _closure(statement)
            if needed.module in entries and needed.module != entry
        }
        for entry in entries
    }
    order: list[str] = []
    while len(order) < len(entries):
        ready = [entry for entry in entries if entry not in order and needs[entry] <= set(order)]
        if not ready:
            raise ValueError(f"The modules {sorted(set(entries) - set(order))} need each other's definitions.")
        order.append(ready[0])
    return order


def _module_rank(modules: set[str]) -> dict[str, int]:
    """Package modules in an order where each comes after the modules it imports from."""
    rank: dict[str, int] = {}
    visiting: set[str] = set()  # an import cycle keeps the first order found

    def visit(module: str) -> None:
        if module in rank or module in visiting:
            return
        visiting.add(module)
        for target, _ in sorted(set(_parse(module).links.values())):
            visit(target)
        rank[module] = len(rank)

    for module in sorted(modules):
        visit(module)
    return rank


def _render_imports(specs: set[_ImportSpec]) -> str:
    """`import` lines, then `from` lines, the standard library's before other libraries'."""
    sections: list[list[str]] = [[], []]
    plain = sorted({spec for spec in specs if spec[0] == "import"}, key=lambda spec: spec[1:])
    grouped: dict[str, list[str]] = {}
    for _, module, name, asname in sorted(spec for spec in specs if spec[0] == "from"):
        grouped.setdefault(module, []).append(name if asname in (None, name) else f"{name} as {asname}")
    for _, module, asname in plain:
        section = sections[module.split(".")[0] not in sys.stdlib_module_names]
        section.append(f"import {module}" + (f" as {asname}" if asname else ""))
    for module, names in sorted(grouped.items()):
        section = sections[module.split(".")[0] not in sys.stdlib_module_names]
        section.append(_from_line(module, names))
    return "\n\n".join("\n".join(section) for section in sections if section)


def _from_line(module: str, names: list[str]) -> str:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= 119:
        return line
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")"


def _render(file: _File, files: list[_File]) -> str:
    modules = {statement.module for statement in file.statements}
    rank = _module_rank(modules)
    statements = sorted(file.statements, key=lambda statement: (rank[statement.module], statement.position))
    entry = _parse(file.entry)
    inlined = sorted(modules - {file.entry}, key=rank.get)
    note = f"# Written by `{__name__}` from `{file.entry}`"
    if inlined:
        note += " and the definitions it needs from " + ", ".join(f"`{module}`" for module in inlined)
    header = [f'"""{entry.docstring}"""'] if entry.docstring is not None else []
    header.append(_wrap_comment(note + ". Edit those modules, not this file."))
    imports = ["from __future__ import annotations"] if any(_parse(m).future_annotations for m in modules) else []
    if file.imports:
        imports.append(_render_imports(set(file.imports.values())))
    relative = [_from_line(f".{files[index].name}", sorted(names)) for index, names in sorted(file.from_files.items())]
    imports += ["\n".join(relative)] if relative else []
    body, previous = "", None
    for statement in statements:
        if previous is not None:
            separated = statement.is_definition or previous.is_definition or statement.module != previous.module
            body += "\n\n\n" if separated else "\n"
        if statement.module != (previous.module if previous else file.entry):
            body += f"# from {statement.module}\n"
        body += statement.text
        previous = statement
    text = "\n\n".join(header) + "\n\n" + "\n\n".join(imports) + "\n\n\n" + body + "\n"
    ast.parse(text)  # the file is Python
    return text


def _wrap_comment(text: str, width: int = 120) -> str:
    lines, line = [], "#"
    for word in text.removeprefix("# ").split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    return "\n".join([*lines, line])


def bundle(modules: list[str]) -> dict[str, str]:
    """The self-contained source of each package module in `modules` (`{"modeling_tall": source, ...}`), in the
    order they import each other."""
    bundler = _Bundler(list(dict.fromkeys(modules)))
    for entry in _entry_order(bundler.entries):
        bundler.write(entry)
    names = [file.name for file in bundler.files]
    if len(set(names)) != len(names):
        raise ValueError(f"Two modules would be written to the same file: {names}.")
    return {file.name: _render(file, bundler.files) for file in bundler.files}


def save_remote_code(save_directory: str | os.PathLike, classes: dict[str, type]) -> dict[str, str]:
    """Write the modules defining `classes` (`{"AutoModel": TallModel, ...}`) into `save_directory`, each as one
    self-contained file (see the module docstring); returns the `auto_map` (`{"AutoModel": "file.Class", ...}`)."""
    modules = [cls.__module__ for cls in classes.values()]
    copies = [module for module in modules if not _is_package_module(module)]
    if copies:
        from transformers.dynamic_module_utils import get_relative_import_files

        for module in dict.fromkeys(copies):
            source = sys.modules[module].__file__
            for path in (source, *get_relative_import_files(source)):
                shutil.copyfile(path, Path(save_directory, Path(path).name))
    for name, source in bundle([module for module in modules if _is_package_module(module)]).items():
        Path(save_directory, f"{name}.py").write_text(source, encoding="utf-8")
    return {auto_class: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto_class, cls in classes.items()}


__all__ = ["bundle", "save_remote_code"]
