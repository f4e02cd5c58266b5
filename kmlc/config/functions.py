"""Importing the user's node functions from the project's ``code`` folders.

Used by the function checks and by the compiler. ``static_signature`` reads a plain
function's signature from its source instead, so that ``kmlc validate`` need not
import the project's modules (and scikit-learn, pandas... with them). Modules are
imported with the code folders first on ``sys.path``; a module of the same name
already imported from somewhere else (another project validated in the same process)
is imported afresh.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kmlc.config.nodes import split_func
from kmlc.errors import did_you_mean

__all__ = ["FunctionImportError", "code_path", "import_function", "local_modules",
           "static_signature"]


class FunctionImportError(Exception):
    """A ``func`` that cannot be imported; ``hint`` suggests the closest name."""

    def __init__(self, message: str, hint: str | None = None, code: str = "KMLC401"):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


@contextlib.contextmanager
def code_path(folders: Sequence[Path]) -> Iterator[None]:
    """Put ``folders`` first on ``sys.path`` for the duration of the block."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for entry in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def local_modules(folders: Sequence[Path]) -> list[str]:
    """Top-level module and package names found in ``folders``."""
    names = {info.name for info in pkgutil.iter_modules([str(f) for f in folders])}
    return sorted(names)


def _is_inside(module: ModuleType, folders: Sequence[Path]) -> bool:
    location = getattr(module, "__file__", None)
    if not location:
        return True
    path = Path(location).resolve()
    return any(path.is_relative_to(f.resolve()) for f in folders)


def _import_module(name: str, folders: Sequence[Path]) -> ModuleType:
    top = name.split(".")[0]
    existing = sys.modules.get(top)
    if existing is not None and top in local_modules(folders) and not _is_inside(existing, folders):
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]
        importlib.invalidate_caches()
    return importlib.import_module(name)


def import_function(func: str, folders: Sequence[Path]) -> Callable[..., Any]:
    """Import ``module.function`` (or ``module:function``) with ``folders`` on the path."""
    module_name, attr = split_func(func)
    with code_path(folders):
        try:
            module = _import_module(module_name, folders)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            if missing != module_name and not module_name.startswith(missing + "."):
                raise FunctionImportError(
                    f"importing module '{module_name}' failed: no module named '{missing}'",
                    hint="install it, or add its folder to `code`", code="KMLC402",
                ) from exc
            candidates = local_modules(folders)
            hint = did_you_mean(module_name, candidates, (
                f"modules in the code folders: {', '.join(candidates[:8])}" if candidates
                else "check `code:`, the folders put on sys.path"))
            raise FunctionImportError(f"module '{module_name}' not found", hint=hint) from exc
        except Exception as exc:
            raise FunctionImportError(
                f"importing module '{module_name}' raised {type(exc).__name__}: {exc}",
                code="KMLC402",
            ) from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            raise FunctionImportError(
                f"module '{module_name}' has no function '{attr}'",
                hint=did_you_mean(part, names), code="KMLC403",
            )
        target = getattr(target, part)
    if not callable(target):
        raise FunctionImportError(f"'{func}' is not callable", code="KMLC404")
    return target


# ---------------------------------------------------------------- reading without importing


def _module_file(module_name: str, folders: Sequence[Path]) -> Path | None:
    """The source file of ``module_name`` in ``folders``, found without importing anything."""
    parts = module_name.split(".")
    for folder in folders:
        packages = [folder.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if not all((p / "__init__.py").is_file() for p in packages):
            continue
        base = folder.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _bound_names(statement: ast.stmt) -> set[str]:
    """Module-level names a top-level statement may bind (more is safe: it only means
    the function gets imported instead of read)."""
    names: set[str] = set()
    nodes: list[ast.AST]
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(statement.name)
        nodes = [n for n in ast.walk(statement) if isinstance(n, ast.Global)]
    else:
        nodes = list(ast.walk(statement))
    for node in nodes:
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
    return names


def _imports_resolve(tree: ast.Module, module_file: Path, folders: Sequence[Path]) -> bool:
    """Every import at the module's top level names something installed or local."""
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            names = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            if statement.level:  # relative: the sibling module or package must exist
                base = module_file.parent
                for _ in range(statement.level - 1):
                    base = base.parent
                target = base.joinpath(*(statement.module or "").split("."))
                if statement.module and not (target.with_suffix(".py").is_file()
                                             or (target / "__init__.py").is_file()):
                    return False
                continue
            names = [statement.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "__future__" or _module_file(top, folders) is not None:
                continue
            if top in sys.modules:
                continue
            try:
                if importlib.util.find_spec(top) is None:
                    return False
            except (ImportError, ValueError):
                return False
    return True


def _signature_of(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> inspect.Signature:
    args = definition.args
    kind = inspect.Parameter
    params: list[inspect.Parameter] = []
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        params.append(kind(arg.arg, kind.POSITIONAL_ONLY if index < len(args.posonlyargs)
                           else kind.POSITIONAL_OR_KEYWORD,
                           default=kind.empty if default is None else ...))
    if args.vararg:
        params.append(kind(args.vararg.arg, kind.VAR_POSITIONAL))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        params.append(kind(arg.arg, kind.KEYWORD_ONLY,
                           default=kind.empty if kw_default is None else ...))
    if args.kwarg:
        params.append(kind(args.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(params)


def _plain_functions(module_name: str, folders: Sequence[Path]
                     ) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    """The module's plain functions by name: top-level ``def`` without decorators that
    nothing else at the top level binds. ``None`` unless the module is a source file in
    ``folders`` whose top-level imports all resolve."""
    path = _module_file(module_name, folders)
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    with code_path(folders):
        if not _imports_resolve(tree, path, folders):
            return None
    binders = Counter(name for statement in tree.body for name in _bound_names(statement))
    return {s.name: s for s in tree.body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not s.decorator_list and binders[s.name] == 1}


def static_signature(func: str, folders: Sequence[Path],
                     modules: dict[str, Any] | None = None) -> inspect.Signature | None:
    """The signature of ``func`` read from its source, without importing its module.

    Only for the plain case (see ``_plain_functions``); ``None`` otherwise, or when the
    module is already imported: the caller then imports the function, which gives the
    exact answer and error messages. ``modules`` caches each module's reading across
    the nodes of one file.
    """
    module_name, attr = split_func(func)
    if not module_name or "." in attr or module_name in sys.modules:
        return None
    modules = {} if modules is None else modules
    if module_name not in modules:
        modules[module_name] = _plain_functions(module_name, folders)
    functions = modules[module_name]
    if functions is None or attr not in functions:
        return None
    return _signature_of(functions[attr])


def static_stand_in(func: str, folders: Sequence[Path],
                    modules: dict[str, Any] | None = None) -> Callable[..., Any] | None:
    """A stand-in for ``func`` built from its source, without importing its module: it has
    the function's signature, names and source (``kmlc_source``: the function's own
    source as ``inspect.getsource`` gives it, and its module file) and raises if called.

    For what reads a project without running it (``kmlc plan``, ``kmlc graph``): only
    the plain case of ``static_signature``; ``None`` otherwise (import the function).
    """
    module_name, attr = split_func(func)
    signature = static_signature(func, folders, modules)
    path = _module_file(module_name, folders) if signature is not None else None
    if signature is None or path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            whole = handle.read()
    except OSError:
        return None
    definition = _plain_functions(module_name, folders) if modules is None else modules.get(
        module_name)
    if not definition or attr not in definition:
        return None
    lines = whole.splitlines(keepends=True)
    own = "".join(inspect.getblock(lines[definition[attr].lineno - 1:]))

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{func} was read from its source, not imported: it cannot run")

    stand_in.__signature__ = signature  # type: ignore[attr-defined]
    stand_in.__name__ = stand_in.__qualname__ = attr
    stand_in.__module__ = module_name
    stand_in.kmlc_source = (own, whole)  # type: ignore[attr-defined]
    return stand_in
