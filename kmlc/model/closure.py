"""Model stage, what inference needs: the modules it reaches and the packages they use.

The logged model ships only the project modules that the inference steps' modules
import, directly or not (package ``__init__`` files included, no ``__pycache__``),
and requires only the distributions those modules import, the ones its packed
artifacts need to be read (their Kedro dataset's module) and to be unpickled (the
modules a pickle names, read from its opcodes without unpickling it).
"""

from __future__ import annotations

import ast
import contextlib
import os
import pickletools
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ModuleClosure", "distribution_table", "distributions", "imports_of",
           "module_closure", "pickled_modules", "pinned", "ship_modules"]


@dataclass
class ModuleClosure:
    """Project modules reached (dotted name -> file) and the other top-level imports."""

    local: dict[str, Path] = field(default_factory=dict)
    external: set[str] = field(default_factory=set)


def _local_file(module: str, code: Sequence[Path]) -> tuple[Path, Path] | None:
    """(code folder, file) of a project module, or None when it is not in ``code``."""
    parts = module.split(".")
    for folder in code:
        base = folder.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return folder, candidate
        if base.is_dir():  # a namespace package
            return folder, base
    return None


def imports_of(file: Path, module: str) -> Iterator[str]:
    """Absolute module names a file imports (relative imports resolved; any nesting)."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[:len(parts) - node.level + 1])
                target = ".".join(p for p in (base, node.module) if p)
            else:
                target = node.module or ""
            if target:
                yield target
                # `from pkg import sub` may name a submodule
                yield from (f"{target}.{alias.name}" for alias in node.names
                            if alias.name != "*")


def module_closure(modules: Iterable[str], code: Sequence[Path]) -> ModuleClosure:
    """The import closure of ``modules`` inside the project's ``code`` folders."""
    closure = ModuleClosure()
    pending = list(modules)
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        found = _local_file(module, code)
        if found is None:
            if _local_file(parts[0], code) is None:
                closure.external.add(parts[0])
            continue
        _, file = found
        if file.is_dir():
            continue
        closure.local[module] = file
        pending.extend(imports_of(file, module))
    return closure


def ship_modules(closure: ModuleClosure, code: Sequence[Path], dest: Path) -> list[Path]:
    """Copy the reached project modules under ``dest``; the top-level entries to ship."""
    tops: dict[str, Path] = {}
    for module, file in sorted(closure.local.items()):
        found = _local_file(module, code)
        assert found is not None
        folder, _ = found
        target = dest / file.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        top = file.relative_to(folder).parts[0]
        tops[top] = dest / top
    return list(tops.values())


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_MARK = object()


def pickled_modules(path: Path) -> set[str]:
    """The modules whose objects a pickle file refers to, read without unpickling it.

    The opcodes are walked with their stack effects (as ``pickletools.dis`` does), only
    strings kept, so that ``STACK_GLOBAL`` finds its module name even through the memo.
    """
    modules: set[str] = set()
    stack: list[object] = []
    memo: dict[int, object] = {}
    try:
        with path.open("rb") as handle:
            if handle.read(1) != b"\x80":  # not a pickle of protocol 2 or later
                return modules
            handle.seek(0)
            for opcode, arg, _ in pickletools.genops(handle):
                name = opcode.name
                if name in ("GLOBAL", "INST"):
                    modules.add(str(arg).split(" ")[0])
                elif name == "STACK_GLOBAL" and len(stack) >= 2 and isinstance(stack[-2], str):
                    modules.add(str(stack[-2]))
                if name == "MEMOIZE":
                    memo[len(memo)] = stack[-1] if stack else None
                    continue
                if name in _PUT_OPS:
                    memo[int(str(arg))] = stack[-1] if stack else None
                    continue
                if name == "STOP":
                    break
                before = opcode.stack_before
                if pickletools.markobject in before or (name == "POP" and stack
                                                         and stack[-1] is _MARK):
                    mark = len(stack) - 1 - stack[::-1].index(_MARK)
                    del stack[max(mark - before.index(pickletools.markobject)
                                  if pickletools.markobject in before else mark, 0):]
                elif before:
                    del stack[max(len(stack) - len(before), 0):]
                if name in _STRING_OPS:
                    stack.append(arg)
                elif name in _GET_OPS:
                    stack.append(memo.get(int(str(arg))))
                else:
                    stack.extend(_MARK if item is pickletools.markobject else None
                                 for item in opcode.stack_after)
    except (OSError, ValueError, EOFError):  # not a (complete) pickle: what was read
        pass
    return modules


_TABLE: tuple[tuple[tuple[str, int], ...], dict[str, list[str]]] | None = None


def _search_path_state() -> tuple[tuple[str, int], ...]:
    """Each folder of ``sys.path`` that holds distributions, with its modification time:
    an install or an uninstall changes it. Folders without any (a project's code,
    whose outputs change it all the time) do not count."""
    state = []
    for entry in sys.path:
        with contextlib.suppress(OSError), os.scandir(entry or ".") as found:
            if any(item.name.endswith((".dist-info", ".egg-info")) for item in found):
                state.append((entry, os.stat(entry or ".").st_mtime_ns))
    return tuple(state)


def distribution_table() -> dict[str, list[str]]:
    """Top-level module -> distributions; reads every installed distribution's files once
    (again only when a folder of ``sys.path`` changed: something was installed)."""
    from importlib import metadata  # lazy: ~40 ms (email, zipfile...), only when building

    global _TABLE
    state = _search_path_state()
    if _TABLE is None or _TABLE[0] != state:
        _TABLE = (state, dict(metadata.packages_distributions()))
    return dict(_TABLE[1])


def distributions(top_level: Iterable[str], local: Iterable[str] = ()) -> list[str]:
    """The installed distributions providing these top-level modules (stdlib skipped)."""
    by_module = distribution_table()
    skip = set(local) | set(sys.stdlib_module_names) | {"__future__"}
    dists: list[str] = []
    for name in sorted(set(top_level) - skip):
        dists.extend(by_module.get(name, []))
    return list(dict.fromkeys(dists))


def pinned(dists: Iterable[str]) -> list[str]:
    """``name==version`` of each installed distribution (kmlc never: models don't import it)."""
    from importlib import metadata  # lazy: see distribution_table

    out = []
    for dist in dict.fromkeys(dists):
        if dist.lower() == "kmlc":
            continue
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return out
