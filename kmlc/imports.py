"""Importing the user's node functions from the project's ``code`` folders.

Used by the function checks and by the compiler. Modules are imported with the code
folders first on ``sys.path``; a module of the same name already imported from
somewhere else (another project validated in the same process) is imported afresh.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from kmlc.spec import split_func

__all__ = ["FunctionImportError", "code_path", "import_function", "local_modules"]


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
            close = difflib.get_close_matches(module_name, candidates, n=1)
            hint = f"did you mean '{close[0]}'?" if close else (
                f"modules in the code folders: {', '.join(candidates[:8])}" if candidates
                else "check `code:`, the folders put on sys.path")
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
            close = difflib.get_close_matches(part, names, n=1)
            raise FunctionImportError(
                f"module '{module_name}' has no function '{attr}'",
                hint=f"did you mean '{close[0]}'?" if close else None, code="KMLC403",
            )
        target = getattr(target, part)
    if not callable(target):
        raise FunctionImportError(f"'{func}' is not callable", code="KMLC404")
    return target
